//! Runs that can be reproduced and told apart: every stage after `cooc` refuses an SAE, model,
//! tokenizer or dataset other than the one `cooc` counted (their fingerprints in run.json),
//! `export` refuses broken h5 files and node tables even without a manifest, and every manifest
//! records the stage's settings, when it ran, its command line and the build that made it.

mod common;

use common::{assert_ok, config_text, fixture, pca_config, prepare, results_dir, saecooc};
use saecooc::results::node_table::read_node_table;
use saecooc::synth::{self, SynthOptions, SynthPaths};
use std::path::Path;
use std::process::Output;

const ANALYSIS: &str = "\n[analysis]\nmin_subgraph_size = 20\nmax_subgraph_size = 40\nskip_subgraph_plots = true\nskip_subgraph_pickles = true\n";

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A second synthetic world of the same widths from another seed.
fn other_world(dir: &Path) -> SynthPaths {
    let options = SynthOptions {
        seed: 7,
        ..common::small_options()
    };
    synth::write_all(&dir.join("other"), &options).unwrap()
}

fn paths(model: &Path, sae: &Path, corpus: &Path) -> SynthPaths {
    SynthPaths {
        model: model.to_path_buf(),
        sae: sae.to_path_buf(),
        corpus: corpus.to_path_buf(),
    }
}

/// `saecooc STAGE --config CONFIG --results-dir RESULTS EXTRA…` with `text` as the config.
fn run(dir: &Path, stage: &str, text: &str, results: &Path, extra: &[&str]) -> Output {
    let config = dir.join(format!("{stage}-run.toml"));
    std::fs::write(&config, text).unwrap();
    saecooc(&["--quiet", stage, "--config"])
        .arg(&config)
        .arg("--results-dir")
        .arg(results)
        .args(extra)
        .output()
        .unwrap()
}

/// Asserts `out` failed because `input` differs from what was counted, naming both places.
fn assert_refused(out: &Output, input: &str, counted: &Path, now: &Path) {
    assert!(!out.status.success(), "accepted another {input}");
    let err = stderr(out);
    for want in [
        input,
        "than `saecooc cooc` counted",
        &counted.display().to_string(),
        &now.display().to_string(),
        "rerun `saecooc cooc`",
    ] {
        assert!(err.contains(want), "missing {want:?} in: {err}");
    }
}

/// A subgraph of two or more latents in the fixture's node table.
fn some_subgraph(results: &Path) -> String {
    let table = results_dir(results, 6).join("dataframes/node_info_df_1_5.csv");
    let rows = read_node_table(&table).unwrap();
    let row = rows.iter().find(|r| r.subgraph_size >= 3).unwrap();
    row.subgraph_id.to_string()
}

#[test]
fn stages_after_cooc_refuse_another_sae_model_or_dataset_of_the_same_width() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (p, results) = prepare(d);
    let q = other_world(d);
    let sae_dir = |s: &SynthPaths| s.sae.parent().unwrap().to_path_buf();
    let other_sae = paths(&p.model, &q.sae, &p.corpus);
    let other_model = paths(&q.model, &p.sae, &p.corpus);
    let other_corpus = paths(&p.model, &p.sae, &q.corpus);

    // graphs reads the SAE, the model's embeddings and the tokenizer.
    let out = run(
        d,
        "graphs",
        &config_text(&other_sae, 6, ANALYSIS),
        &results,
        &[],
    );
    assert_refused(&out, "the SAE", &sae_dir(&p), &sae_dir(&q));
    let out = run(
        d,
        "graphs",
        &config_text(&other_model, 6, ANALYSIS),
        &results,
        &[],
    );
    assert_refused(&out, "the model", &p.model, &q.model);
    assert_ok(&run(
        d,
        "graphs",
        &config_text(&p, 6, ANALYSIS),
        &results,
        &[],
    ));

    // pca and subspace gather with the SAE, model, tokenizer and dataset.
    let pca = |w: &SynthPaths| pca_config(w, 2, 4, 20);
    let out = run(d, "pca", &pca(&other_sae), &results, &[]);
    assert_refused(&out, "the SAE", &sae_dir(&p), &sae_dir(&q));
    let out = run(d, "pca", &pca(&other_corpus), &results, &[]);
    assert_refused(&out, "the dataset", &p.corpus, &q.corpus);
    let sid = some_subgraph(&results);
    let figures = d.join("figures");
    let subspace_args = ["--subgraph", &sid, "--out", figures.to_str().unwrap()];
    let out = run(d, "subspace", &pca(&other_sae), &results, &subspace_args);
    assert_refused(&out, "the SAE", &sae_dir(&p), &sae_dir(&q));

    // stats' token pass.
    let stats_out = d.join("stats").display().to_string();
    let out = run(
        d,
        "stats",
        &config_text(&other_sae, 6, ANALYSIS),
        &results,
        &["--out", &stats_out],
    );
    assert_refused(&out, "the SAE", &sae_dir(&p), &sae_dir(&q));

    // The counted inputs are accepted.
    assert_ok(&run(d, "pca", &pca(&p), &results, &[]));
    assert_ok(&run(
        d,
        "stats",
        &config_text(&p, 6, ANALYSIS),
        &results,
        &["--out", &stats_out],
    ));
}

#[test]
fn a_folder_without_a_manifest_is_read_with_the_note_whatever_the_sae() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = fixture(d);
    let (out, results) = common::run_cooc(d, &config_text(&p, 6, ANALYSIS));
    assert_ok(&out);
    std::fs::remove_file(results_dir(&results, 6).join("run.json")).unwrap();
    let q = other_world(d);
    let out = run(
        d,
        "graphs",
        &config_text(&paths(&p.model, &q.sae, &p.corpus), 6, ANALYSIS),
        &results,
        &[],
    );
    // Nothing records what was counted: the run goes on as before manifests existed.
    assert_ok(&out);
}
