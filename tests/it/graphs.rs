//! End-to-end tests of `saecooc graphs`: outputs checked by an independent re-implementation
//! in Python (numpy/scipy/pandas/networkx), matrices written by numpy as the original pipeline
//! wrote them, and bad inputs.

use crate::common::{
    assert_ok, check_python, config_text, files_under, fixture, results_dir, run_cooc, saecooc,
};
use saecooc::io::npz::NpzWriter;
use saecooc::synth::SynthPaths;
use std::path::{Path, PathBuf};
use std::process::Output;

const ANALYSIS: &str = "
[analysis]
min_subgraph_size = 20
max_subgraph_size = 40
min_subgraph_size_to_plot = 3
include_metrics = true
";

/// Gives the fixture's SAE a Neuronpedia id, so links are written.
fn set_neuronpedia_id(p: &SynthPaths, id: &str) {
    let cfg = p.sae.join("cfg.json");
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        "\"neuronpedia_id\": null",
        &format!("\"neuronpedia_id\": \"{id}\""),
    );
    assert!(text.contains(id));
    std::fs::write(cfg, text).unwrap();
}

fn run_graphs(dir: &Path, extra_args: &[&str]) -> Output {
    let mut cmd = saecooc(&["--quiet", "graphs", "--config"]);
    cmd.arg(dir.join("run.toml")).args(extra_args);
    cmd.output().unwrap()
}

fn check_with_python(d: &Path, min: usize, max: usize, np_id: &str) {
    let (min, max) = (min.to_string(), max.to_string());
    check_python(
        "check_graphs.py",
        [
            d.as_os_str(),
            min.as_ref(),
            max.as_ref(),
            np_id.as_ref(),
            "synthetic-gpt2".as_ref(),
        ],
    );
}

#[test]
fn outputs_match_an_independent_python_reimplementation() {
    let dir = tempfile::tempdir().unwrap();
    let p = fixture(dir.path());
    set_neuronpedia_id(&p, "synthetic-gpt2/1-res-test");
    let (out, results) = run_cooc(dir.path(), &config_text(&p, 6, ANALYSIS));
    assert_ok(&out);
    let out = run_graphs(dir.path(), &["--results-dir", results.to_str().unwrap()]);
    assert_ok(&out);
    let d = results_dir(&results, 6);
    check_with_python(&d, 20, 40, "synthetic-gpt2/1-res-test");

    // Subgraphs of 3 or more latents get an HTML page, and nothing is left half-written.
    let names: Vec<String> = files_under(&d)
        .iter()
        .map(|p| p.strip_prefix(&d).unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(
        !names
            .iter()
            .any(|n| n.contains("partial") || n.contains(".tmp")),
        "{names:?}"
    );
    let table = std::fs::read_to_string(d.join("dataframes/node_info_df_1_5.csv")).unwrap();
    let mut sizes = std::collections::BTreeMap::new();
    for line in table.lines().skip(1) {
        let cells: Vec<&str> = line.splitn(5, ',').collect();
        sizes.insert(
            cells[2].parse::<usize>().unwrap(),
            cells[3].parse::<usize>().unwrap(),
        );
    }
    for (sid, size) in sizes {
        let page = d.join(format!("graphs_1_5/subgraph_{sid}.html"));
        assert_eq!(page.exists(), size >= 3, "subgraph {sid} of size {size}");
    }
}

/// Matrices written by numpy's `savez_compressed`, as the original pipeline wrote them: a
/// block of 5 at 0.8, 3 at 0.4 and 2 at 0.2 (the original's test_find_threshold case), read
/// from an SAE folder given directly with --results-dir.
#[test]
fn reads_matrices_written_by_numpy() {
    let dir = tempfile::tempdir().unwrap();
    let p = fixture(dir.path());
    let folder = dir.path().join("from-python");
    std::fs::create_dir_all(&folder).unwrap();
    check_python("write_jaccard_blocks.py", [&folder]);
    let analysis =
        "\n[analysis]\nmin_subgraph_size = 4\nmax_subgraph_size = 6\nskip_subgraph_plots = true\n";
    std::fs::write(dir.path().join("run.toml"), config_text(&p, 1, analysis)).unwrap();
    let out = run_graphs(dir.path(), &["--results-dir", folder.to_str().unwrap()]);
    assert_ok(&out);
    assert_eq!(
        std::fs::read_to_string(folder.join("edge_thresholds.csv")).unwrap(),
        "activation_threshold,edge_threshold\n1.5,0.5\n"
    );
    let table = std::fs::read_to_string(folder.join("dataframes/node_info_df_1_5.csv")).unwrap();
    let rows: Vec<Vec<&str>> = table
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    assert_eq!(rows.len(), 256);
    // node_id, activity_threshold, subgraph_id, subgraph_size, feature_activations
    assert_eq!(&rows[0][..5], ["0", "1.5", "0", "5", "0.0"]);
    assert_eq!(&rows[4][..5], ["4", "1.5", "0", "5", "4.0"]);
    assert_eq!(&rows[5][..5], ["5", "1.5", "1", "1", "5.0"]);
    assert_eq!(&rows[10][..5], ["10", "1.5", "6", "1", "10.0"]);
    // Every subgraph as GraphML, singletons included.
    assert!(folder
        .join("subgraph_objects/activation_1_5/subgraph_251.graphml")
        .exists());
    assert!(!folder.join("graphs_1_5").exists(), "plots were skipped");
}

/// A failing run: exit status, message and no node table.
fn assert_fails(dir: &Path, args: &[&str], expected: &[&str]) {
    let out = run_graphs(dir, args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "should fail: {stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    for e in expected {
        assert!(stderr.contains(e), "expected '{e}' in: {stderr}");
    }
    let left: Vec<PathBuf> = files_under(dir)
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("node_info_df"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

fn write_matrix(path: &Path, rows: usize, cols: usize, value: impl Fn(usize, usize) -> f32) {
    let mut w = NpzWriter::create(path, true).unwrap();
    w.add_f32_rows("arr_0", rows, cols, |i, row| {
        for (j, x) in row.iter_mut().enumerate() {
            *x = value(i, j);
        }
    })
    .unwrap();
    w.finish().unwrap();
}

#[test]
fn bad_inputs_give_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let p = fixture(dir.path());
    std::fs::write(dir.path().join("run.toml"), config_text(&p, 3, "")).unwrap();
    let results = dir.path().join("results");
    let results_arg = results.to_str().unwrap();

    // No results folder yet.
    assert_fails(
        dir.path(),
        &["--results-dir", results_arg],
        &["n_batches_3", "does not exist", "saecooc cooc"],
    );

    // The folder exists but holds no Jaccard matrices.
    let d = results_dir(&results, 3);
    std::fs::create_dir_all(&d).unwrap();
    assert_fails(
        dir.path(),
        &["--results-dir", results_arg],
        &["no Jaccard matrices", "n_batches_3"],
    );

    // A matrix that is not square.
    let jaccard = d.join("feature_acts_cooc_jaccard_threshold_1_5.npz");
    let mut w = NpzWriter::create(
        &d.join("feature_acts_cooc_activations_threshold_1_5.npz"),
        true,
    )
    .unwrap();
    w.add_array("arr_0", &[256], &vec![1f32; 256]).unwrap();
    w.finish().unwrap();
    write_matrix(&jaccard, 256, 200, |_, _| 0.0);
    assert_fails(
        dir.path(),
        &["--results-dir", results_arg],
        &[
            "feature_acts_cooc_jaccard_threshold_1_5.npz",
            "not square",
            "[256, 200]",
        ],
    );

    // A matrix of the wrong size for the SAE.
    write_matrix(&jaccard, 100, 100, |_, _| 0.0);
    assert_fails(
        dir.path(),
        &["--results-dir", results_arg],
        &["100 × 100", "256 latents"],
    );

    // NaN inside.
    write_matrix(&jaccard, 256, 256, |i, j| {
        if (i, j) == (3, 7) {
            f32::NAN
        } else {
            0.0
        }
    });
    assert_fails(
        dir.path(),
        &["--results-dir", results_arg],
        &[
            "NaN at [3, 7]",
            "feature_acts_cooc_jaccard_threshold_1_5.npz",
        ],
    );

    // An SAE id that is not in the config.
    assert_fails(
        dir.path(),
        &["--sae-id", "blocks.9.hook_resid_pre"],
        &[
            "--sae-id blocks.9.hook_resid_pre",
            "blocks.1.hook_resid_pre",
        ],
    );
}
