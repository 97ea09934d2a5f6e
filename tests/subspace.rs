//! End-to-end tests of `saecooc subspace` on the tiny synthetic world: the same PCA as `pca`
//! for the same subgraph, the representative points, the clustered heat map's orders and the
//! custom prompts' placement checked independently in Python (numpy, scipy, scikit-learn:
//! tests/python/check_subspace.py), the h5 group read back, and bad inputs.

mod common;

use common::{assert_ok, check_python, pca_config, prepare, results_dir, saecooc};
use saecooc::results::h5::read_pca_file;
use saecooc::results::node_table::read_node_table;
use std::path::{Path, PathBuf};
use std::process::Output;

const NEAT: &str = "blocks_1_hook_resid_pre";

/// The largest subgraph of the fixture's node table (a planted group of the synthetic SAE).
fn planted_subgraph(results: &Path) -> (i64, usize) {
    let table = results_dir(results, 6).join("dataframes/node_info_df_1_5.csv");
    let rows = read_node_table(&table).unwrap();
    let best = rows
        .iter()
        .max_by_key(|r| (r.subgraph_size, std::cmp::Reverse(r.subgraph_id)))
        .unwrap();
    assert!(best.subgraph_size >= 3, "no subgraph of 3+ latents");
    (best.subgraph_id, best.subgraph_size)
}

fn config_for(p: &saecooc::synth::SynthPaths, size: usize) -> String {
    pca_config(p, 10, 4, 400).replace(
        "subgraph_sizes_to_plot = [2, 3, 4, 5, 6]",
        &format!("subgraph_sizes_to_plot = [{size}]"),
    )
}

fn run(dir: &Path, stage: &str, config: &str, results: &Path, extra: &[&str]) -> Output {
    let path = dir.join(format!("{stage}.toml"));
    std::fs::write(&path, config).unwrap();
    saecooc(&["--quiet", stage, "--config"])
        .arg(&path)
        .arg("--results-dir")
        .arg(results)
        .args(extra)
        .output()
        .unwrap()
}

fn subspace_folder(figures: &Path, sid: i64) -> PathBuf {
    figures.join(format!(
        "synthetic-gpt2/synthetic/{NEAT}/pca_1_5_subgraph_{sid}"
    ))
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Prompts from the corpus (so the subgraph fires on some) and one that is unlikely to fire.
fn prompts_file(dir: &Path, corpus: &Path) -> PathBuf {
    let text = std::fs::read_to_string(corpus).unwrap();
    let mut lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .take(6)
        .collect();
    lines.push("zzz");
    let path = dir.join("prompts.txt");
    std::fs::write(&path, lines.join("\n")).unwrap();
    path
}

#[test]
fn subspace_matches_pca_and_the_python_references() {
    let dir = tempfile::tempdir().unwrap();
    let (p, results) = prepare(dir.path());
    let (sid, size) = planted_subgraph(&results);
    let config = config_for(&p, size);
    assert_ok(&run(dir.path(), "pca", &config, &results, &[]));
    let figures = dir.path().join("figures");
    let prompts = prompts_file(dir.path(), &p.corpus);
    let out = run(
        dir.path(),
        "subspace",
        &config,
        &results,
        &[
            "--subgraph",
            &sid.to_string(),
            "--threshold",
            "1.5",
            "--points",
            "0,2",
            "--out",
            figures.to_str().unwrap(),
            "--prompts",
            prompts.to_str().unwrap(),
        ],
    );
    assert_ok(&out);
    let folder = subspace_folder(&figures, sid);
    let summary = json(&folder.join("subspace.json"));

    // The same examples and PCA as `pca` for that subgraph.
    let pca_dir = results_dir(&results, 6).join(format!("{NEAT}_pca_for_streamlit"));
    let pca_run = json(&pca_dir.join("pca_run.json"));
    let report = pca_run["subgraphs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["subgraph_id"] == sid)
        .unwrap()
        .clone();
    assert_eq!(summary["examples"], report["examples"]);
    assert_eq!(summary["latents"], report["latents"]);
    let ratio = |v: &serde_json::Value| -> Vec<f64> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect()
    };
    for (a, b) in ratio(&summary["pca"]["explained_variance_ratio"])
        .iter()
        .zip(ratio(&report["explained_variance_ratio"]))
    {
        assert!(
            (a - b).abs() <= 1e-5,
            "explained variance ratio {a} vs pca's {b}"
        );
    }
    let h5 = pca_dir.join(format!(
        "400cap_graph_analysis_results_size_{size}_nbatch_10.h5"
    ));
    let theirs = read_pca_file(&[h5]).unwrap();
    let theirs = theirs.iter().find(|g| g.subgraph_id == sid).unwrap();
    let ours =
        read_pca_file(&[folder.join(format!("graph_analysis_results_subgraph_{sid}.h5"))]).unwrap();
    assert_eq!(ours.len(), 1);
    let scale = theirs.pcs.iter().fold(0f32, |m, v| m.max(v.abs()));
    assert_eq!(ours[0].pcs.len(), theirs.pcs.len());
    for (a, b) in ours[0].pcs.iter().zip(&theirs.pcs) {
        assert!((a - b).abs() <= 1e-5 * scale, "PC {a} vs pca's {b}");
    }
    assert_eq!(ours[0].tokens, theirs.tokens);
    assert_eq!(ours[0].contexts, theirs.contexts);

    // Figures and data files exist; chosen points have their folders.
    for name in [
        format!("pca_plot_graph_{sid}_token.png"),
        format!("pca_plot_graph_{sid}_token.html"),
        format!("pca_heatmap_{sid}.html"),
        format!("pca_decoder_df_subgraph_{sid}.csv"),
        "pca_with_highlights.png".into(),
        "rep_point_5/non_zero_feature_activations_comparison.png".into(),
        "point_2/bar_plot_point_2.html".into(),
        format!("prompts_subgraph_{sid}.csv"),
    ] {
        assert!(folder.join(&name).is_file(), "{name} missing");
    }
    let page =
        std::fs::read_to_string(folder.join(format!("pca_plot_graph_{sid}_token.html"))).unwrap();
    assert!(page.contains("Context: ") && page.contains("data:image/png;base64,"));
    assert!(!page.contains("<script src"), "self-contained");
    let prompts_report = &summary["prompts"];
    assert_eq!(prompts_report["prompts"], 7);
    assert!(
        prompts_report["examples"].as_u64().unwrap() > 0,
        "{summary}"
    );

    // Representative points, heat map orders and prompt placement, independently.
    check_python(
        "check_subspace.py",
        [
            folder.as_os_str(),
            p.sae.join("sae_weights.safetensors").as_os_str(),
        ],
    );
}

#[test]
fn unknown_subgraph_and_points_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (p, results) = prepare(dir.path());
    let (sid, size) = planted_subgraph(&results);
    let config = config_for(&p, size);
    let figures = dir.path().join("figures");
    let fig = figures.to_str().unwrap();
    let out = run(
        dir.path(),
        "subspace",
        &config,
        &results,
        &["--subgraph", "99999", "--out", fig],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("subgraph 99999 is not in node table"),
        "{stderr}"
    );
    let out = run(
        dir.path(),
        "subspace",
        &config,
        &results,
        &[
            "--subgraph",
            &sid.to_string(),
            "--points",
            "1000000",
            "--out",
            fig,
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("--points 1000000"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    // A failed run leaves no folder behind.
    assert!(!subspace_folder(&figures, sid).exists());
}
