//! Runs that can be reproduced and told apart: every stage after `cooc` refuses an SAE, model,
//! tokenizer or dataset other than the one `cooc` counted (their fingerprints in run.json),
//! `export` refuses broken h5 files and node tables even without a manifest, and every manifest
//! records the stage's settings, when it ran, its command line and the build that made it.

use crate::common;
use crate::common::{
    assert_ok, config_text, fixture, pca_config, prepare, read_json, results_dir, run_stage,
    saecooc, stderr,
};
use saecooc::results::node_table::read_node_table;
use saecooc::synth::{self, SynthOptions, SynthPaths};
use std::path::Path;
use std::process::Output;

const ANALYSIS: &str = "\n[analysis]\nmin_subgraph_size = 20\nmax_subgraph_size = 40\nskip_subgraph_plots = true\nskip_subgraph_pickles = true\n";

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
    run_stage(
        dir,
        &format!("{stage}-run.toml"),
        stage,
        text,
        results,
        extra,
    )
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

/// `saecooc export` of `results` into `dir/site`.
fn export(dir: &Path, results: &Path) -> Output {
    common::export(results, &dir.join("site"))
}

/// Runs `code` in Python with h5py and numpy, `f` the h5 file opened for writing and `g` its
/// first subgraph group.
fn corrupt_h5(h5: &Path, code: &str) {
    let script = format!(
        "import h5py, numpy as np\nf = h5py.File({:?}, 'r+')\ng = f[sorted(k for k in f if k.startswith('subgraph_'))[0]]\n{code}\nf.close()\n",
        h5.display().to_string()
    );
    let out = common::python().args(["-c", &script]).output().unwrap();
    assert_ok(&out);
}

#[test]
fn export_refuses_broken_h5_groups_and_node_tables_of_unchecked_folders() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (p, results) = prepare(d);
    assert_ok(&run(d, "pca", &pca_config(&p, 2, 4, 20), &results, &[]));
    let sae = results_dir(&results, 6);
    let pca_dir = sae.join("blocks_1_hook_resid_pre_pca_for_streamlit");
    // As the original's scripts leave them: no saecooc manifest anywhere.
    for manifest in [
        sae.join("run.json"),
        sae.join("graphs_run.json"),
        pca_dir.join("pca_run.json"),
    ] {
        std::fs::remove_file(manifest).unwrap();
    }
    let mut h5s: Vec<_> = common::files_under(&pca_dir)
        .into_iter()
        .filter(|f| f.extension().is_some_and(|e| e == "h5"))
        .collect();
    h5s.sort();
    let h5 = h5s.remove(0);
    let table = sae.join("dataframes/node_info_df_1_5.csv");
    let pristine_h5 = std::fs::read(&h5).unwrap();
    let pristine_table = std::fs::read(&table).unwrap();
    assert_ok(&export(d, &results));

    let refused = |what: &str, wants: &[&str]| {
        let out = export(d, &results);
        assert!(!out.status.success(), "exported {what}");
        let err = stderr(&out);
        for want in wants {
            assert!(err.contains(want), "{what}: missing {want:?} in: {err}");
        }
        std::fs::write(&h5, &pristine_h5).unwrap();
        std::fs::write(&table, &pristine_table).unwrap();
    };
    let h5_name = h5.display().to_string();
    corrupt_h5(
        &h5,
        "del g['pca_df/PC2']\ng['pca_df/PC2'] = np.zeros(2, 'f4')",
    );
    refused(
        "2 PC values",
        &[&h5_name, "subgraph_", "pca_df/PC2 has 2 values"],
    );
    corrupt_h5(&h5, "g['all_graph_feature_acts'][0, 0] = np.nan");
    refused(
        "a NaN activation",
        &[&h5_name, "all_graph_feature_acts holds NaN"],
    );
    corrupt_h5(
        &h5,
        "g['all_max_feature_info'][0, 1] = 1e6\ng['all_max_feature_info'][0, 2] = 1",
    );
    refused(
        "a max latent out of range",
        &[&h5_name, "all_max_feature_info names latent 1000000"],
    );
    let text = String::from_utf8(pristine_table.clone()).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let first = lines[1].split_once(',').unwrap().1.to_string();
    lines[1] = format!("99999,{first}");
    std::fs::write(&table, lines.join("\n") + "\n").unwrap();
    refused(
        "a node id out of range",
        &[&table.display().to_string(), "lists latent 99999"],
    );
}

/// Checks a manifest's `run_info`: this build, RFC 3339 UTC times in order, the command line
/// of `stage`; returns its settings.
fn run_info<'a>(manifest: &'a serde_json::Value, stage: &str) -> &'a serde_json::Value {
    let info = &manifest["run_info"];
    assert_eq!(
        info["version"],
        env!("CARGO_PKG_VERSION"),
        "{stage}: {info}"
    );
    assert_eq!(
        info["commit"],
        env!("SAECOOC_GIT_COMMIT"),
        "{stage}: {info}"
    );
    let (started, finished) = (
        info["started"].as_str().unwrap(),
        info["finished"].as_str().unwrap(),
    );
    for t in [started, finished] {
        let b = t.as_bytes();
        assert!(
            t.len() == 20 && b[4] == b'-' && b[10] == b'T' && t.ends_with('Z') && t > "2020",
            "{stage}: {t} is not RFC 3339 UTC"
        );
    }
    assert!(started <= finished, "{stage}: {started} > {finished}");
    let argv: Vec<&str> = info["command_line"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(argv.contains(&stage), "{stage}: {argv:?}");
    &info["settings"]
}

/// The manifest without its run record (what two runs of the same inputs share).
fn without_run_info(mut manifest: serde_json::Value) -> serde_json::Value {
    manifest.as_object_mut().unwrap().remove("run_info");
    manifest
}

#[test]
fn every_manifest_records_settings_times_command_line_and_build() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (p, results) = prepare(d);
    let sae = results_dir(&results, 6);

    let version = saecooc(&["--version"]).output().unwrap();
    assert_ok(&version);
    let version = String::from_utf8_lossy(&version.stdout).into_owned();
    assert!(
        version.contains(env!("CARGO_PKG_VERSION")) && version.contains(env!("SAECOOC_GIT_COMMIT")),
        "{version}"
    );

    let cooc = read_json(&sae.join("run.json"));
    let s = run_info(&cooc, "cooc");
    assert_eq!(s["config"]["generation"]["n_batches"], 6);
    assert_eq!(s["options"]["checkpoint_every"], 50);

    // graphs: its subgraph-size range and seed; a rerun gets the same set id.
    let graphs = read_json(&sae.join("graphs_run.json"));
    let s = run_info(&graphs, "graphs");
    assert_eq!(s["config"]["analysis"]["min_subgraph_size"], 20);
    assert_eq!(s["config"]["analysis"]["max_subgraph_size"], 40);
    assert!(s["config"]["analysis"]["random_seed"].is_number(), "{s}");
    assert_ok(&run(
        d,
        "graphs",
        &config_text(&p, 6, ANALYSIS),
        &results,
        &[],
    ));
    let again = read_json(&sae.join("graphs_run.json"));
    assert_ne!(again["run_info"], graphs["run_info"]);
    assert_eq!(without_run_info(again), without_run_info(graphs));

    let pca_dir = sae.join("blocks_1_hook_resid_pre_pca_for_streamlit");
    assert_ok(&run(d, "pca", &pca_config(&p, 2, 4, 20), &results, &[]));
    let s = run_info(&read_json(&pca_dir.join("pca_run.json")), "pca").clone();
    assert_eq!(s["config"]["processing"]["max_examples"], 20);
    assert_eq!(s["config"]["processing"]["n_batches_reconstruction"], 2);
    assert_eq!(s["options"]["one_pass_per_subgraph"], false);

    let sid = some_subgraph(&results);
    let figures = d.join("figures");
    let out = run(
        d,
        "subspace",
        &pca_config(&p, 2, 4, 20),
        &results,
        &["--subgraph", &sid, "--out", figures.to_str().unwrap()],
    );
    assert_ok(&out);
    let summary = common::files_under(&figures)
        .into_iter()
        .find(|f| f.file_name().is_some_and(|n| n == "subspace.json"))
        .unwrap();
    let s = run_info(&read_json(&summary), "subspace").clone();
    assert_eq!(s["options"]["subgraph"].to_string(), sid);
    assert_eq!(s["batches"], 2);
    assert_eq!(s["activation_threshold"], 1.5);

    let stats = d.join("stats");
    let out = run(
        d,
        "stats",
        &config_text(&p, 6, ANALYSIS),
        &results,
        &["--out", stats.to_str().unwrap()],
    );
    assert_ok(&out);
    let s = run_info(&read_json(&stats.join("stats_run.json")), "stats").clone();
    assert!(s["token_pass"]["batches"].is_number(), "{s}");

    let site = d.join("site");
    let out = saecooc(&["--quiet", "export", "--results-dir"])
        .arg(&results)
        .arg("--figures-dir")
        .arg(&figures)
        .arg("--out")
        .arg(&site)
        .output()
        .unwrap();
    assert_ok(&out);
    let index = std::fs::read_to_string(site.join("data/index.js")).unwrap();
    let start = index.find('{').unwrap();
    let end = index.rfind('}').unwrap();
    let index: serde_json::Value = serde_json::from_str(&index[start..=end]).unwrap();
    let s = run_info(&index, "export");
    assert_eq!(s["results_dir"], results.to_str().unwrap());

    // merge of a sharded run.
    let sharded = d.join("sharded");
    let config = d.join("run.toml");
    for shard in ["0/2", "1/2"] {
        let out = saecooc(&["--quiet", "cooc", "--shard", shard, "--config"])
            .arg(&config)
            .arg("--results-dir")
            .arg(&sharded)
            .output()
            .unwrap();
        assert_ok(&out);
    }
    let out = saecooc(&["--quiet", "merge", "--shards", "2", "--config"])
        .arg(&config)
        .arg("--results-dir")
        .arg(&sharded)
        .output()
        .unwrap();
    assert_ok(&out);
    let merged = read_json(&results_dir(&sharded, 6).join("run.json"));
    assert_eq!(run_info(&merged, "merge")["shards"], 2);

    // train-sae's training.json.
    let trained = d.join("trained");
    let out = saecooc(&["--quiet", "train-sae", "--config"])
        .arg(&config)
        .args([
            "--hook",
            "blocks.1.hook_resid_pre",
            "--d-sae",
            "32",
            "--tokens",
            "2048",
            "--batch-tokens",
            "256",
            "--buffer-tokens",
            "1024",
            "--heldout-tokens",
            "256",
            "--out",
        ])
        .arg(&trained)
        .output()
        .unwrap();
    assert_ok(&out);
    let s = run_info(&read_json(&trained.join("training.json")), "train-sae").clone();
    assert_eq!(s["options"]["d_sae"], 32);
}
