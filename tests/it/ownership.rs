//! saecooc deletes or replaces only what it wrote: `--out` folders holding someone else's
//! files are refused, old outputs are removed only where a saecooc manifest lists them and
//! never through a symbolic link, thresholds counted on the same inputs accumulate instead of
//! vanishing (`--replace` to replace them), and what killed runs left is removed by the next.

use crate::common;
use crate::common::{
    assert_ok, config_text, export, files_under, fixture, results_dir, run_stats, saecooc, stderr,
};
use crate::explorer_fixture::{write_wide, WideSpec};
use saecooc::results::set::PublishedSet;
use std::path::Path;
use std::process::Output;

fn wide_results(dir: &Path) -> std::path::PathBuf {
    let results = dir.join("results");
    write_wide(
        &results,
        &WideSpec {
            subgraphs: vec![(3, 2)],
            pca: vec![(3, 1)],
            cap: 20,
            n_batches: 10,
            seed: 3,
        },
    );
    results
}

#[test]
fn export_refuses_an_out_folder_whose_data_or_index_it_did_not_write() {
    let dir = tempfile::tempdir().unwrap();
    let results = wide_results(dir.path());
    // A project folder with its own data/ and index.html: `--out .` there used to wipe them.
    let project = dir.path().join("project");
    std::fs::create_dir_all(project.join("data")).unwrap();
    std::fs::write(project.join("data/measurements.csv"), "mine").unwrap();
    let out = export(&results, &project);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains(&project.join("data").display().to_string())
            && err.contains("empty or new output folder"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(project.join("data/measurements.csv")).unwrap(),
        "mine"
    );
    std::fs::remove_dir_all(project.join("data")).unwrap();
    std::fs::write(project.join("index.html"), "my page").unwrap();
    let out = export(&results, &project);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("index.html"), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(project.join("index.html")).unwrap(),
        "my page"
    );

    // A new folder: written, with the manifest; exporting again replaces its own site, and
    // a file beside it is left alone.
    let site = dir.path().join("site");
    assert_ok(&export(&results, &site));
    assert!(site.join(".saecooc-site.json").is_file());
    std::fs::write(site.join("README.txt"), "notes").unwrap();
    assert_ok(&export(&results, &site));
    assert!(site.join("data/index.js").is_file());
    assert_eq!(
        std::fs::read_to_string(site.join("README.txt")).unwrap(),
        "notes"
    );
    // A file someone put into the site's data/ would be lost with it: refused.
    std::fs::write(site.join("data/added.js"), "x").unwrap();
    let out = export(&results, &site);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("data"), "{}", stderr(&out));
    assert!(site.join("data/added.js").is_file());
}

#[test]
fn export_removes_the_temporary_folders_of_killed_exports_only() {
    let dir = tempfile::tempdir().unwrap();
    let results = wide_results(dir.path());
    let site = dir.path().join("site");
    assert_ok(&export(&results, &site));
    // What killed exports leave (pids that do not run), one of a running process (this test),
    // a link with the same naming, and a name that only looks alike.
    for name in [".data-new-999999991", ".data-old-999999992"] {
        std::fs::create_dir_all(site.join(name).join("sub")).unwrap();
        std::fs::write(site.join(name).join("sub/x.js"), "old").unwrap();
    }
    let alive = site.join(format!(".data-new-{}", std::process::id()));
    std::fs::create_dir_all(&alive).unwrap();
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::fs::write(elsewhere.join("keep.txt"), "keep").unwrap();
    std::os::unix::fs::symlink(&elsewhere, site.join(".data-old-999999993")).unwrap();
    std::fs::create_dir_all(site.join(".data-new-backup")).unwrap();
    assert_ok(&export(&results, &site));
    assert!(!site.join(".data-new-999999991").exists());
    assert!(!site.join(".data-old-999999992").exists());
    assert!(alive.is_dir(), "a running process's folder removed");
    assert!(site.join(".data-new-backup").is_dir());
    assert!(std::fs::symlink_metadata(site.join(".data-old-999999993")).is_ok());
    assert!(elsewhere.join("keep.txt").is_file());
}

#[test]
fn export_never_copies_a_stats_figure_through_a_symlink() {
    let dir = tempfile::tempdir().unwrap();
    let results = wide_results(dir.path());
    // `stats` beside the results, where export finds it; then a figure it listed swapped for a
    // link to someone else's file (the stats manifest lists names, not hashes).
    let stats = dir.path().join("stats");
    run_stats(&results, &stats);
    let secret = dir.path().join("secret.txt");
    std::fs::write(&secret, "not for the site").unwrap();
    std::fs::remove_file(stats.join("size_effects.png")).unwrap();
    std::os::unix::fs::symlink(&secret, stats.join("size_effects.png")).unwrap();
    let site = dir.path().join("site");
    // The explorer is still written, without the stats figures, and says why.
    let out = export(&results, &site);
    assert_ok(&out);
    assert!(
        stderr(&out).contains("size_effects.png") && stderr(&out).contains("symbolic link"),
        "{}",
        stderr(&out)
    );
    let copied: Vec<Vec<u8>> = files_under(&site.join("data"))
        .iter()
        .map(|f| std::fs::read(f).unwrap())
        .collect();
    assert!(!copied.is_empty());
    assert!(!copied
        .iter()
        .any(|bytes| bytes.windows(16).any(|w| w == b"not for the site")));
}

#[test]
fn graphs_never_deletes_or_writes_through_a_symlinked_folder() {
    let dir = tempfile::tempdir().unwrap();
    let (p, results) = common::prepare(dir.path());
    let d = results_dir(&results, 6);
    // histograms/ replaced by a link to a folder of someone else's files, one of them with a
    // name graphs writes.
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::fs::write(elsewhere.join("unrelated.txt"), "theirs").unwrap();
    std::fs::write(elsewhere.join("subgraph_density_1_5.png"), "theirs").unwrap();
    std::fs::rename(d.join("histograms"), dir.path().join("saved")).unwrap();
    std::os::unix::fs::symlink(&elsewhere, d.join("histograms")).unwrap();
    let analysis = "\n[analysis]\nmin_subgraph_size = 3\nmax_subgraph_size = 6\nskip_subgraph_plots = true\nskip_subgraph_pickles = true\n";
    std::fs::write(dir.path().join("run.toml"), config_text(&p, 6, analysis)).unwrap();
    let out = saecooc(&["--quiet", "graphs", "--config"])
        .arg(dir.path().join("run.toml"))
        .arg("--results-dir")
        .arg(&results)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("symbolic link"), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(elsewhere.join("unrelated.txt")).unwrap(),
        "theirs"
    );
    assert_eq!(
        std::fs::read_to_string(elsewhere.join("subgraph_density_1_5.png")).unwrap(),
        "theirs"
    );
    // The previous graphs set is still whole (the refusal came before anything moved).
    std::fs::remove_file(d.join("histograms")).unwrap();
    std::fs::rename(dir.path().join("saved"), d.join("histograms")).unwrap();
    PublishedSet::open(&d, "graphs", "graphs_run.json").unwrap();
}

fn cooc_with(dir: &Path, config: &str, extra: &[&str]) -> Output {
    let path = dir.join("run.toml");
    std::fs::write(&path, config).unwrap();
    saecooc(&["--quiet", "cooc", "--config"])
        .arg(&path)
        .arg("--results-dir")
        .arg(dir.join("results"))
        .args(extra)
        .output()
        .unwrap()
}

fn stage(dir: &Path, name: &str, extra: &[&str]) -> Output {
    saecooc(&["--quiet", name, "--config"])
        .arg(dir.join("run.toml"))
        .arg("--results-dir")
        .arg(dir.join("results"))
        .args(extra)
        .output()
        .unwrap()
}

fn stats(dir: &Path) -> Output {
    saecooc(&["--quiet", "stats", "--results-dir"])
        .arg(dir.join("results"))
        .arg("--out")
        .arg(dir.join("stats"))
        .output()
        .unwrap()
}

fn listed_tags(d: &Path) -> Vec<String> {
    let set = PublishedSet::open(d, "cooc", "run.json").unwrap();
    let record = set.record.unwrap();
    for f in &record.files {
        set_verify(d, &f.path);
    }
    let run: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("run.json")).unwrap()).unwrap();
    run["thresholds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["tag"].as_str().unwrap().to_string())
        .collect()
}

fn set_verify(d: &Path, rel: &str) {
    PublishedSet::open(d, "cooc", "run.json")
        .unwrap()
        .verify(&d.join(rel))
        .unwrap();
}

#[test]
fn thresholds_accumulate_over_runs_on_the_same_inputs_and_replace_needs_a_flag() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let p = fixture(dir);
    let analysis = "\n[analysis]\nmin_subgraph_size = 20\nmax_subgraph_size = 40\nskip_subgraph_plots = true\nskip_subgraph_pickles = true\n";
    let text = config_text(&p, 6, analysis);
    let with = |list: &str| text.replace("activation_thresholds = [0.0, 1.5, 3]", list);
    let d = results_dir(&dir.join("results"), 6);

    assert_ok(&cooc_with(
        dir,
        &with("activation_thresholds = [0.0, 1.5]"),
        &[],
    ));
    assert_ok(&stage(dir, "graphs", &[]));
    let graphs_before = std::fs::read(d.join("graphs_run.json")).unwrap();
    let first = std::fs::read(d.join("feature_acts_cooc_jaccard_threshold_1_5.npz")).unwrap();

    // One more threshold, same inputs: the earlier two are kept, byte for byte.
    assert_ok(&cooc_with(dir, &with("activation_thresholds = [0.5]"), &[]));
    assert_eq!(listed_tags(&d), ["0_5", "0_0", "1_5"]);
    for tag in ["0_0", "0_5", "1_5"] {
        for kind in ["total", "jaccard", "activations"] {
            let f = d.join(format!("feature_acts_cooc_{kind}_threshold_{tag}.npz"));
            assert!(f.is_file(), "{} missing", f.display());
        }
    }
    assert_eq!(
        std::fs::read(d.join("feature_acts_cooc_jaccard_threshold_1_5.npz")).unwrap(),
        first
    );
    // The graphs set was built from thresholds cooc kept: still valid for its readers.
    assert_ok(&stats(dir));
    assert_eq!(
        std::fs::read(d.join("graphs_run.json")).unwrap(),
        graphs_before
    );
    // graphs now covers all three.
    assert_ok(&stage(dir, "graphs", &[]));
    assert!(d.join("dataframes/node_info_df_0_5.csv").is_file());
    assert!(d.join("dataframes/node_info_df_0_0.csv").is_file());

    // Other counting settings: the earlier thresholds cannot be kept; refused, naming them.
    let changed = with("activation_thresholds = [0.5]")
        .replace("tokens_per_batch = 500", "tokens_per_batch = 400");
    let out = cooc_with(dir, &changed, &[]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("0_0, 1_5")
            && err.contains("--replace")
            && err.contains("activation_thresholds"),
        "{err}"
    );
    assert_eq!(listed_tags(&d), ["0_5", "0_0", "1_5"]);

    // --replace replaces the whole set.
    assert_ok(&cooc_with(dir, &changed, &["--replace"]));
    assert_eq!(listed_tags(&d), ["0_5"]);
    assert!(!d
        .join("feature_acts_cooc_jaccard_threshold_1_5.npz")
        .exists());
    // The graphs set's counts really changed: its readers refuse it.
    let out = stats(dir);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("rerun `saecooc graphs`"),
        "{}",
        stderr(&out)
    );
    // graphs would drop the thresholds cooc no longer has: refused without --replace.
    let out = stage(dir, "graphs", &[]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("0, 1.5") && err.contains("--replace"), "{err}");
    assert!(d.join("dataframes/node_info_df_1_5.csv").is_file());
    assert_ok(&stage(dir, "graphs", &["--replace"]));
    assert!(!d.join("dataframes/node_info_df_1_5.csv").exists());
    assert!(d.join("dataframes/node_info_df_0_5.csv").is_file());
    assert_ok(&stats(dir));
}

/// A small `saecooc synth` into `out`.
fn synth(out: &Path) -> Output {
    saecooc(&[
        "--quiet",
        "synth",
        "--d-sae",
        "64",
        "--documents",
        "50",
        "--out",
    ])
    .arg(out)
    .output()
    .unwrap()
}

#[test]
fn out_folders_of_stats_train_and_synth_holding_foreign_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    // synth: a folder with someone's corpus.txt.
    let synth_out = dir.join("demo");
    std::fs::create_dir_all(&synth_out).unwrap();
    std::fs::write(synth_out.join("corpus.txt"), "my corpus").unwrap();
    let out = synth(&synth_out);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("corpus.txt"), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(synth_out.join("corpus.txt")).unwrap(),
        "my corpus"
    );
    // A new folder, then the same again: synth replaces what it wrote.
    let synth_out = dir.join("demo2");
    for _ in 0..2 {
        let out = synth(&synth_out);
        assert_ok(&out);
    }

    // train-sae: a folder holding an SAE someone else trained, refused before training.
    let sae_out = dir.join("my-sae");
    std::fs::create_dir_all(&sae_out).unwrap();
    std::fs::write(sae_out.join("cfg.json"), "{}").unwrap();
    let out = saecooc(&[
        "--quiet",
        "train-sae",
        "--hook",
        "blocks.1.hook_resid_pre",
        "--d-sae",
        "64",
        "--tokens",
        "512",
        "--config",
    ])
    .arg(synth_out.join("cooc.toml"))
    .arg("--out")
    .arg(&sae_out)
    .output()
    .unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("cfg.json"), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(sae_out.join("cfg.json")).unwrap(),
        "{}"
    );

    // stats: someone's summary.csv; a dead run's temporary file is removed.
    let p = fixture(dir);
    let analysis = "\n[analysis]\nmin_subgraph_size = 20\nmax_subgraph_size = 40\n";
    assert_ok(&cooc_with(dir, &config_text(&p, 6, analysis), &[]));
    let stats_out = dir.join("stats");
    std::fs::create_dir_all(&stats_out).unwrap();
    std::fs::write(stats_out.join("summary.csv"), "mine").unwrap();
    let out = stats(dir);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("summary.csv"), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(stats_out.join("summary.csv")).unwrap(),
        "mine"
    );
    std::fs::remove_file(stats_out.join("summary.csv")).unwrap();
    std::fs::write(stats_out.join(".summary.json.partial-999999999"), "half").unwrap();
    std::fs::write(stats_out.join("notes.txt"), "mine").unwrap();
    assert_ok(&stats(dir));
    assert_ok(&stats(dir));
    assert!(!stats_out.join(".summary.json.partial-999999999").exists());
    assert!(stats_out.join("summary.csv").is_file());
    assert!(stats_out.join("notes.txt").is_file());
}
