//! End-to-end tests of `saecooc subspace` on the tiny synthetic world: the same PCA as `pca`
//! for the same subgraph, the representative points, the clustered heat map's orders and the
//! custom prompts' placement checked independently in Python (numpy, scipy, scikit-learn:
//! tests/python/check_subspace.py), the h5 group read back, and bad inputs; one folder per
//! results folder and graphs set (two results folders' subgraphs of the same id never replace
//! each other, and `export` pairs each with its own); `--subgraph-of-token` checked against
//! the rule computed in Python from the node table (tests/python/subgraph_of_token.py).

use crate::common::{
    assert_ok, check_python, cooc_and_graphs, fixture, pca_config, prepare, python, read_json,
    results_dir, run_stage, saecooc,
};
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
    run_stage(dir, &format!("{stage}.toml"), stage, config, results, extra)
}

/// The subspace folders of subgraph `sid` at threshold 1.5 (one per results folder and graphs
/// set analysed), in name order.
fn subspace_folders(figures: &Path, sid: i64) -> Vec<PathBuf> {
    let sae = figures.join(format!("synthetic-gpt2/synthetic/{NEAT}"));
    let prefix = format!("pca_1_5_subgraph_{sid}_");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&sae)
        .map(|r| r.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    found.retain(|p| {
        p.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with(&prefix)
    });
    found.sort();
    found
}

/// The only subspace folder of subgraph `sid`.
fn subspace_folder(figures: &Path, sid: i64) -> PathBuf {
    let found = subspace_folders(figures, sid);
    assert_eq!(found.len(), 1, "{found:?}");
    found[0].clone()
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
    let folder = subspace_with_prompts(
        dir.path(),
        &config,
        &results,
        (sid, &figures, &prompts),
        &["--points", "0,2"],
    );
    let summary = read_json(&folder.join("subspace.json"));

    // The same examples and PCA as `pca` for that subgraph.
    let pca_dir = results_dir(&results, 6).join(format!("{NEAT}_pca_for_streamlit"));
    let pca_run = read_json(&pca_dir.join("pca_run.json"));
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
    assert!(subspace_folders(&figures, sid).is_empty());

    // A subgraph of one latent is said to be one, and nothing is drawn for it.
    let table = results_dir(&results, 6).join("dataframes/node_info_df_1_5.csv");
    let single = read_node_table(&table)
        .unwrap()
        .into_iter()
        .find(|r| r.subgraph_size == 1)
        .expect("the fixture has a one-latent subgraph");
    let out = run(
        dir.path(),
        "subspace",
        &config,
        &results,
        &["--subgraph", &single.subgraph_id.to_string(), "--out", fig],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let said = (
        format!("subgraph {} of ", single.subgraph_id),
        format!("node_info_df_1_5.csv is one latent ({})", single.node_id),
    );
    assert!(
        !out.status.success() && stderr.contains(&said.0) && stderr.contains(&said.1),
        "{stderr}"
    );
    assert!(subspace_folders(&figures, single.subgraph_id).is_empty());
}

/// The subgraph ids of a node table.
fn subgraph_ids(results: &Path, n_batches: usize) -> Vec<i64> {
    let table = results_dir(results, n_batches).join("dataframes/node_info_df_1_5.csv");
    read_node_table(&table)
        .unwrap()
        .iter()
        .map(|r| r.subgraph_id)
        .collect()
}

fn export(results: &Path, figures: &Path, site: &Path) -> Output {
    saecooc(&["export", "--results-dir"])
        .arg(results)
        .arg("--figures-dir")
        .arg(figures)
        .arg("--out")
        .arg(site)
        .output()
        .unwrap()
}

/// The `subspaces` entries of an exported site's index.
fn exported_subspaces(site: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(site.join("data/index.js")).unwrap();
    let (open, close) = (text.find('(').unwrap(), text.rfind(");").unwrap());
    let args: serde_json::Value =
        serde_json::from_str(&format!("[{}]", &text[open + 1..close])).unwrap();
    args[1]["subspaces"].as_array().unwrap().clone()
}

/// Two results folders (n_batches 6 and 5) each with a subgraph of the same id analysed: two
/// folders, each naming its results folder and graphs set, both intact after the other's run,
/// and both exported with their own node table; a folder of an older version (no results tag)
/// is still exported; a subspace whose graphs set was replaced is left out with a note.
#[test]
fn two_results_folders_keep_their_own_subspace_of_the_same_id() {
    let dir = tempfile::tempdir().unwrap();
    let p = fixture(dir.path());
    let results = cooc_and_graphs(dir.path(), &p, 6);
    cooc_and_graphs(dir.path(), &p, 5);
    let (planted, _) = planted_subgraph(&results);
    let sid = if subgraph_ids(&results, 5).contains(&planted) {
        planted
    } else {
        0
    };
    let figures = dir.path().join("figures");
    let base = pca_config(&p, 10, 4, 400);
    let analyse = |n_batches: usize| {
        let config = base.replace(
            "n_batches_generation = 6",
            &format!("n_batches_generation = {n_batches}"),
        );
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
                "--out",
                figures.to_str().unwrap(),
            ],
        );
        assert_ok(&out);
    };
    analyse(6);
    analyse(5);
    let folders = subspace_folders(&figures, sid);
    assert_eq!(
        folders.len(),
        2,
        "one folder per results folder: {folders:?}"
    );
    for folder in &folders {
        let summary = read_json(&folder.join("subspace.json"));
        let table = PathBuf::from(summary["node_table"].as_str().unwrap());
        let n_batches = if table.starts_with(results_dir(&results, 6)) {
            6
        } else {
            5
        };
        assert!(table.starts_with(results_dir(&results, n_batches)));
        let graphs = read_json(&results_dir(&results, n_batches).join("graphs_run.json"));
        let set_id = graphs["set_id"].as_str().unwrap();
        assert_eq!(summary["inputs"]["graphs"], set_id);
        let name = folder.file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(
            name,
            format!(
                "pca_1_5_subgraph_{sid}_n_batches_{n_batches}_graphs_{}",
                &set_id[..8]
            )
        );
        assert_eq!(summary["folder"], folder.to_str().unwrap());
    }

    // A folder as older versions named it (the same set, renamed, without a results tag).
    let old = folders[0].with_file_name(format!("pca_1_5_subgraph_{sid}"));
    std::fs::rename(&folders[0], &old).unwrap();
    let mut summary = read_json(&old.join("subspace.json"));
    let old_name = folders[0]
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    for f in summary["files"].as_array_mut().unwrap() {
        let path = f["path"].as_str().unwrap().to_string();
        f["path"] = path
            .replacen(&old_name, &format!("pca_1_5_subgraph_{sid}"), 1)
            .into();
    }
    std::fs::write(old.join("subspace.json"), summary.to_string()).unwrap();
    analyse(if folders[0].to_string_lossy().contains("n_batches_6") {
        6
    } else {
        5
    });

    // Every folder exported, each with its own key, none left out.
    let site = dir.path().join("site");
    let out = export(&results, &figures, &site);
    assert_ok(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("left out"), "{stderr}");
    let entries = exported_subspaces(&site);
    assert_eq!(entries.len(), 3, "{entries:?}");
    let mut keys: Vec<&str> = entries.iter().map(|e| e["key"].as_str().unwrap()).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 3, "{keys:?}");
    let old_key = format!("synthetic-gpt2__synthetic__{NEAT}__1_5__{sid}");
    assert!(keys.contains(&old_key.as_str()), "{keys:?}");
    for e in &entries {
        assert_eq!(e["subgraph"], sid);
        assert!(site.join(e["file"].as_str().unwrap()).is_file());
        let tag = e["results"].as_str().unwrap();
        assert_eq!(tag.is_empty(), e["key"] == old_key.as_str(), "{e}");
    }

    // `graphs` rerun in one results folder (another set there now): that folder's subspaces
    // are left out, with a note, rather than shown with another set's node table.
    let manifest = results_dir(&results, 5).join("graphs_run.json");
    let mut graphs = read_json(&manifest);
    graphs["set_id"] = "0123456789abcdef".into();
    std::fs::write(&manifest, graphs.to_string()).unwrap();
    let out = export(&results, &figures, &site);
    assert_ok(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let noted = stderr.matches("left out of the explorer").count();
    let in_5 = subspace_folders(&figures, sid)
        .iter()
        .chain([&old])
        .filter(|f| {
            read_json(&f.join("subspace.json"))["node_table"]
                .as_str()
                .unwrap()
                .contains("n_batches_5")
        })
        .count();
    assert!(in_5 >= 1);
    assert_eq!(noted, in_5, "{stderr}");
    assert!(
        stderr.contains("which no results folder holds now"),
        "{stderr}"
    );
    assert_eq!(exported_subspaces(&site).len(), 3 - in_5);
}

/// `--subgraph-of-token` picks the subgraph the rule gives, computed independently with h5py
/// from `pca`'s h5 files, says which and why, and refuses a token no analysed subgraph's
/// examples have (no folder written), a run without `pca` results, or a second way of naming
/// the subgraph.
#[test]
fn subgraph_of_token_picks_by_the_rule_from_pca_results() {
    let dir = tempfile::tempdir().unwrap();
    let (p, results) = prepare(dir.path());
    let config = pca_config(&p, 10, 4, 400);
    let figures = dir.path().join("figures");
    let fig = figures.to_str().unwrap();
    let path = dir.path().join("subspace.toml");
    std::fs::write(&path, &config).unwrap();
    let subspace = |extra: &[&str]| {
        saecooc(&["subspace", "--config"])
            .arg(&path)
            .arg("--results-dir")
            .arg(&results)
            .args(["--out", fig])
            .args(extra)
            .output()
            .unwrap()
    };
    // Before `pca`: nothing to choose from.
    let out = subspace(&["--subgraph-of-token", " the"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("run `saecooc pca` first"),
        "{stderr}"
    );
    assert_ok(&run(dir.path(), "pca", &config, &results, &[]));

    let folder = results_dir(&results, 6);
    let table = folder.join("dataframes/node_info_df_1_5.csv");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/subgraph_of_token.py");
    let expected = python()
        .arg(&script)
        .arg(&folder)
        .arg(NEAT)
        .arg(&table)
        .output()
        .expect("python with pandas (SAECOOC_PYTHON)");
    assert_ok(&expected);
    let expected: serde_json::Value = serde_json::from_slice(&expected.stdout).unwrap();
    let (token, sid) = (
        expected["token"].as_str().unwrap(),
        expected["subgraph"].as_i64().unwrap(),
    );
    // (The synthetic world's subgraphs fire on tokens of their own: the tie-breaks between
    // subgraphs are unit-tested in src/subspace/choose.rs.)
    let out = subspace(&["--subgraph-of-token", token]);
    assert_ok(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("subgraph {sid} (")),
        "expected {expected}: {stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "({} of {})",
            expected["count"], expected["examples"]
        )),
        "{stderr}"
    );
    let summary = read_json(&subspace_folder(&figures, sid).join("subspace.json"));
    assert_eq!(summary["subgraph_id"], sid);

    // A token no analysed subgraph's examples have: a clear error, nothing written.
    let out = subspace(&["--subgraph-of-token", " zz-no-such-token"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("has the token \" zz-no-such-token\"") && stderr.contains("pca_run.json"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    let sae = figures.join(format!("synthetic-gpt2/synthetic/{NEAT}"));
    let folders = std::fs::read_dir(&sae)
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_dir())
        .count();
    assert_eq!(folders, 1, "a failed choice wrote a folder");

    // Exactly one way of naming the subgraph.
    let out = subspace(&["--subgraph-of-token", token, "--subgraph", "0"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot be used with"));
    let out = subspace(&[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--subgraph"));
}

/// `[run] dtype = "f16"` runs the custom prompts too (their residual stream is converted to f32
/// before centring and the SAE, as the data's windows are), and places them where the f32 run
/// does: the same rows, PCs within 2% of the largest |PC| and latent activations within 2% of
/// the largest activation (f16 keeps ~3 significant digits through two small layers).
/// Runs `subspace` on subgraph `sid` at threshold 1.5 with the prompts file, writing under
/// `figures` (plus `extra` flags); checks it succeeded and returns the subspace folder.
fn subspace_with_prompts(
    dir: &Path,
    config: &str,
    results: &Path,
    (sid, figures, prompts): (i64, &Path, &Path),
    extra: &[&str],
) -> PathBuf {
    let sid_text = sid.to_string();
    let mut args = vec!["--subgraph", &sid_text, "--threshold", "1.5"];
    args.extend_from_slice(extra);
    args.extend([
        "--out",
        figures.to_str().unwrap(),
        "--prompts",
        prompts.to_str().unwrap(),
    ]);
    assert_ok(&run(dir, "subspace", config, results, &args));
    subspace_folder(figures, sid)
}

#[test]
fn f16_prompts_are_placed_as_in_f32() {
    let dir = tempfile::tempdir().unwrap();
    let (p, results) = prepare(dir.path());
    let (sid, size) = planted_subgraph(&results);
    let config = config_for(&p, size);
    let prompts = prompts_file(dir.path(), &p.corpus);
    let placed = |dtype: &str| {
        let config = format!("{config}dtype = \"{dtype}\"\n");
        let figures = dir.path().join(format!("figures_{dtype}"));
        let folder = subspace_with_prompts(
            dir.path(),
            &config,
            &results,
            (sid, &figures, &prompts),
            &[],
        );
        let latents: Vec<u32> = read_json(&folder.join("subspace.json"))["latents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect();
        let csv = folder.join(format!("prompts_subgraph_{sid}.csv"));
        saecooc::results::subspace_summary::read_prompt_rows(&csv, &latents).unwrap()
    };
    let (full, half) = (placed("f32"), placed("f16"));
    assert!(!full.line.is_empty(), "no prompt token fires the subgraph");
    assert_eq!((&half.line, &half.tokens), (&full.line, &full.tokens));
    let largest = |rows: &[f32]| rows.iter().fold(0f32, |m, v| m.max(v.abs()));
    let pcs: Vec<f32> = full.pcs.iter().flatten().copied().collect();
    let acts: Vec<f32> = full.acts.iter().flatten().copied().collect();
    let (pc_tol, act_tol) = (0.02 * largest(&pcs), 0.02 * largest(&acts));
    for (a, b) in half.pcs.iter().flatten().zip(&pcs) {
        assert!((a - b).abs() <= pc_tol, "f16 PC {a} vs f32 {b}");
    }
    for (a, b) in half.acts.iter().flatten().zip(&acts) {
        assert!((a - b).abs() <= act_tol, "f16 activation {a} vs f32 {b}");
    }
}

/// The `count` largest subgraphs of the fixture's node table (size, then id order).
fn largest_subgraphs(results: &Path, count: usize) -> Vec<(i64, usize)> {
    let table = results_dir(results, 6).join("dataframes/node_info_df_1_5.csv");
    let mut sizes: Vec<(i64, usize)> = read_node_table(&table)
        .unwrap()
        .iter()
        .map(|r| (r.subgraph_id, r.subgraph_size))
        .collect();
    sizes.sort_by_key(|&(sid, size)| (std::cmp::Reverse(size), sid));
    sizes.dedup();
    sizes.truncate(count);
    assert_eq!(sizes.len(), count, "fewer than {count} subgraphs");
    sizes
}

/// `saecooc -q subspace` of subgraph `sid` at threshold 1.5 into `figures`, started.
fn spawn_subspace(config: &Path, results: &Path, figures: &Path, sid: i64) -> std::process::Child {
    saecooc(&["--quiet", "subspace", "--config"])
        .arg(config)
        .arg("--results-dir")
        .arg(results)
        .args([
            "--threshold",
            "1.5",
            "--subgraph",
            &sid.to_string(),
            "--out",
        ])
        .arg(figures)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// The most subspace lock files seen at once in the SAE's figures folder `sae` while any of
/// `runs` runs (polled every 2 ms).
fn most_locks_held_at_once(sae: &Path, runs: &mut [std::process::Child]) -> usize {
    let mut most = 0;
    while runs.iter_mut().any(|r| r.try_wait().unwrap().is_none()) {
        let held = std::fs::read_dir(sae).map_or(0, |entries| {
            (entries.flatten())
                .filter(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    name.starts_with(".pca_") && name.ends_with(".lock")
                })
                .count()
        });
        most = most.max(held);
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    most
}

/// Four `subspace` runs on different subgraphs of one SAE, started together, all succeed
/// (each locks only its own folder), each folder a complete set with no staging folder left;
/// a run on a subgraph whose folder another process holds is refused, naming the holder.
#[test]
fn subspaces_of_different_subgraphs_run_in_parallel() {
    let dir = tempfile::tempdir().unwrap();
    let (p, results) = prepare(dir.path());
    let subgraphs = largest_subgraphs(&results, 4);
    let config = dir.path().join("subspace.toml");
    std::fs::write(&config, config_for(&p, subgraphs[0].1)).unwrap();
    let figures = dir.path().join("figures");
    let sae = figures.join(format!("synthetic-gpt2/synthetic/{NEAT}"));
    let mut runs: Vec<_> = subgraphs
        .iter()
        .map(|&(sid, _)| spawn_subspace(&config, &results, &figures, sid))
        .collect();
    let most_held = most_locks_held_at_once(&sae, &mut runs);
    assert!(
        most_held >= 2,
        "the runs never held their locks at once ({most_held})"
    );
    for (run, (sid, _)) in runs.into_iter().zip(&subgraphs) {
        let out = run.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "subgraph {sid}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for &(sid, _) in &subgraphs {
        let folder = subspace_folder(&figures, sid);
        assert_eq!(read_json(&folder.join("subspace.json"))["subgraph_id"], sid);
    }
    let mut entries: Vec<String> = std::fs::read_dir(&sae)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    entries.sort();
    assert_eq!(entries.len(), subgraphs.len(), "leftovers: {entries:?}");

    // The first subgraph's folder held by another process: a second writer is refused.
    let (sid, _) = subgraphs[0];
    let folder = subspace_folder(&figures, sid);
    let name = folder.file_name().unwrap().to_str().unwrap();
    let held = saecooc::results::lock::FolderLock::acquire_output(&sae, name, "subspace").unwrap();
    let out = spawn_subspace(&config, &results, &figures, sid)
        .wait_with_output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a second writer of {name} ran");
    assert!(
        err.contains("is in use by another saecooc process")
            && err.contains(&format!("pid {}", std::process::id()))
            && err.contains(name),
        "{err}"
    );
    // Another subgraph runs while that one is held.
    let other = spawn_subspace(&config, &results, &figures, subgraphs[1].0);
    assert_ok(&other.wait_with_output().unwrap());
    drop(held);
    assert_eq!(subspace_folders(&figures, sid), vec![folder]);
}

/// The same subgraph twice at once: one run publishes, the other is refused as in use (or,
/// had it started after the first ended, would replace it); never two writers of one folder.
#[test]
fn the_same_subgraph_twice_in_parallel_is_refused_once() {
    let dir = tempfile::tempdir().unwrap();
    let (p, results) = prepare(dir.path());
    let (sid, size) = planted_subgraph(&results);
    let config = dir.path().join("subspace.toml");
    std::fs::write(&config, config_for(&p, size)).unwrap();
    let figures = dir.path().join("figures");
    let runs: Vec<_> = (0..2)
        .map(|_| spawn_subspace(&config, &results, &figures, sid))
        .collect();
    let outs: Vec<_> = runs
        .into_iter()
        .map(|r| r.wait_with_output().unwrap())
        .collect();
    let refused: Vec<String> = outs
        .iter()
        .filter(|o| !o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
        .collect();
    assert!(refused.len() <= 1, "{refused:?}");
    for err in &refused {
        assert!(
            err.contains("is in use by another saecooc process"),
            "{err}"
        );
    }
    let folder = subspace_folder(&figures, sid);
    assert_eq!(read_json(&folder.join("subspace.json"))["subgraph_id"], sid);
}
