//! `--sae-id` (repeatable) on `cooc`, `graphs`, `pca` and `stats`: only the chosen SAEs of a
//! config run, with the same outputs as in a run of the whole config.

use crate::common::{
    assert_ok, config_text, pca_config, saecooc, stderr, two_sae_fixture, with_both_saes,
    COPIED_SAE, FIXTURE_SAE,
};
use saecooc::synth::SynthPaths;
use std::path::{Path, PathBuf};

const FIRST: &str = FIXTURE_SAE;
const SECOND: &str = COPIED_SAE;

/// Writes the two-SAE run config (graphs sizes as `cooc_and_graphs` sets them) into `dir`.
fn write_config(dir: &Path, p: &SynthPaths) -> PathBuf {
    let analysis = "\n[analysis]\nmin_subgraph_size = 20\nmax_subgraph_size = 40\nskip_subgraph_plots = true\nskip_subgraph_pickles = true\n";
    let path = dir.join("run.toml");
    std::fs::write(&path, with_both_saes(config_text(p, 6, analysis))).unwrap();
    path
}

/// Runs `saecooc -q {stage} --config {config} --results-dir {results} {extra}`.
fn run(stage: &str, config: &Path, results: &Path, extra: &[&str]) -> std::process::Output {
    saecooc(&["--quiet", stage, "--config"])
        .arg(config)
        .arg("--results-dir")
        .arg(results)
        .args(extra)
        .output()
        .unwrap()
}

/// The SAE folders of the synthetic release under `results`.
fn sae_folders(results: &Path) -> Vec<String> {
    let release = results.join("synthetic-gpt2/synthetic");
    let mut names: Vec<String> = std::fs::read_dir(release)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn sae_dir(results: &Path, sae: &str) -> PathBuf {
    results.join(format!(
        "synthetic-gpt2/synthetic/{}/n_batches_6",
        sae.replace('.', "_")
    ))
}

/// The count files (`*.npz`) of a folder, by name.
fn npz_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "npz"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect();
    files.sort();
    files
}

#[test]
fn cooc_with_sae_id_writes_only_that_sae_with_the_counts_of_the_full_run() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = two_sae_fixture(d);
    let config = write_config(d, &p);
    let (full, one) = (d.join("full"), d.join("one"));
    assert_ok(&run("cooc", &config, &full, &[]));
    assert_ok(&run(
        "cooc",
        &config,
        &one,
        &["--sae-id", SECOND, "--sae-id", SECOND],
    ));

    assert_eq!(sae_folders(&one), vec!["blocks_0_hook_resid_pre"]);
    let counted = npz_files(&sae_dir(&one, SECOND));
    assert_eq!(
        counted.len(),
        9,
        "3 thresholds × total, jaccard, activations"
    );
    assert!(
        counted == npz_files(&sae_dir(&full, SECOND)),
        "the counts differ from the full run's"
    );
    let inputs = |results: &Path| {
        crate::common::read_json(&sae_dir(results, SECOND).join("run.json"))["inputs"].clone()
    };
    assert_eq!(inputs(&one), inputs(&full), "the fingerprints differ");
}

#[test]
fn an_unknown_sae_id_names_the_config_the_closest_ids_and_the_list() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = two_sae_fixture(d);
    let config = write_config(d, &p);
    let results = d.join("results");
    let out = run(
        "cooc",
        &config,
        &results,
        &["--sae-id", "blocks.1.hook_resid_post"],
    );
    let err = stderr(&out);
    assert!(!out.status.success());
    assert!(
        err.contains(&format!("config {}", config.display()))
            && err.contains("--sae-id blocks.1.hook_resid_post (closest: blocks.1.hook_resid_pre")
            && err.contains(&format!("it lists: {FIRST}, {SECOND}")),
        "{err}"
    );
    assert!(crate::common::files_under(&results).is_empty());
}

#[test]
fn graphs_pca_and_stats_run_only_the_chosen_sae() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = two_sae_fixture(d);
    let config = write_config(d, &p);
    let results = d.join("results");
    assert_ok(&run("cooc", &config, &results, &[]));
    let only_first = ["--sae-id", FIRST];

    assert_ok(&run("graphs", &config, &results, &only_first));
    let graphed = |sae: &str| sae_dir(&results, sae).join("edge_thresholds.csv").is_file();
    assert!(
        graphed(FIRST) && !graphed(SECOND),
        "graphs ran on the other SAE"
    );

    // The second SAE has no node tables: only the first can be analysed.
    let pca = d.join("pca.toml");
    std::fs::write(&pca, with_both_saes(pca_config(&p, 2, 4, 50))).unwrap();
    assert_ok(&run("pca", &pca, &results, &only_first));
    let analysed = |sae: &str| {
        let neat = sae.replace('.', "_");
        sae_dir(&results, sae)
            .join(format!("{neat}_pca_for_streamlit"))
            .is_dir()
    };
    assert!(
        analysed(FIRST) && !analysed(SECOND),
        "pca ran on the other SAE"
    );

    let out = saecooc(&["--quiet", "stats", "--results-dir"])
        .arg(&results)
        .arg("--out")
        .arg(d.join("stats"))
        .args(only_first)
        .output()
        .unwrap();
    assert_ok(&out);
    let summary = std::fs::read_to_string(d.join("stats/summary.csv")).unwrap();
    let rows: Vec<&str> = summary.lines().skip(1).collect();
    assert!(
        !rows.is_empty() && rows.iter().all(|r| r.contains("blocks_1_hook_resid_pre")),
        "{summary}"
    );
}
