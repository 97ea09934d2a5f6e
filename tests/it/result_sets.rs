//! A results folder is always whole: each stage's outputs are published as one set under the
//! folder's lock, readers refuse incomplete or mixed sets, interrupted publishes are refused
//! then completed, stale outputs of earlier runs (those their manifests list) are removed, and
//! write errors name the file.

use crate::common;
use crate::common::{assert_ok, config_text, fixture, results_dir, saecooc, stderr};
use saecooc::results::set::PublishedSet;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

fn write_config(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// `--config CONFIG --results-dir RESULTS`.
fn config_args<'a>(config: &'a Path, results: &'a Path) -> [&'a std::ffi::OsStr; 4] {
    [
        "--config".as_ref(),
        config.as_os_str(),
        "--results-dir".as_ref(),
        results.as_os_str(),
    ]
}

fn stage(name: &str, config: &Path, results: &Path) -> std::process::Command {
    let mut cmd = saecooc(&["--quiet", name]);
    cmd.args(config_args(config, results));
    cmd
}

/// `saecooc stats` over `results`, into `dir/stats`.
fn run_stats(results: &Path, dir: &Path) -> Output {
    saecooc(&["stats", "--results-dir"])
        .arg(results)
        .arg("--out")
        .arg(dir.join("stats"))
        .output()
        .unwrap()
}

/// Checks the cooc set of `dir` the way every reader does, and that its count matrices agree
/// with its totals (the diagonal of C is the totals: a mixed set breaks this).
fn assert_whole_cooc_set(dir: &Path) {
    let set = PublishedSet::open(dir, "cooc", "run.json").unwrap();
    let record = set.record.as_ref().expect("a manifest with files");
    assert_eq!(record.files.len(), 9);
    for f in &record.files {
        set.verify(&dir.join(&f.path)).unwrap();
    }
    for tag in ["0_0", "1_5", "3_0"] {
        let read = |kind: &str| {
            let path = dir.join(format!("feature_acts_cooc_{kind}_threshold_{tag}.npz"));
            saecooc::io::npz::read_npz(&path).unwrap().remove(0).1
        };
        let (total, acts) = (read("total"), read("activations"));
        let n = acts.shape[0];
        let (c, a) = (total.to_f32(), acts.to_f32());
        for i in 0..n {
            assert_eq!(
                c[i * n + i],
                a[i],
                "diag(C) ≠ totals at latent {i}, threshold {tag}"
            );
        }
    }
}

fn no_leftovers(root: &Path) {
    let left: Vec<PathBuf> = common::files_under(root)
        .into_iter()
        .filter(|f| {
            let s = f.to_string_lossy();
            s.contains(".partial-") || s.contains(".staging-")
        })
        .collect();
    assert!(left.is_empty(), "leftovers: {left:?}");
}

#[test]
fn a_second_writer_is_refused_and_the_survivors_set_is_whole() {
    let dir = tempfile::tempdir().unwrap();
    // Enough text for a run of some seconds.
    let options = saecooc::synth::SynthOptions {
        documents: 3000,
        ..common::small_options()
    };
    let p = saecooc::synth::write_all(&dir.path().join("inputs"), &options).unwrap();
    let config = write_config(dir.path(), "run.toml", &config_text(&p, 200, ""));
    let results = dir.path().join("results");
    let lock_file = results_dir(&results, 200).join(".saecooc.lock");
    let mut first = stage("cooc", &config, &results).spawn().unwrap();
    let started = Instant::now();
    let holder = format!("pid {}", first.id());
    while !std::fs::read_to_string(&lock_file).is_ok_and(|t| t.contains(&holder)) {
        assert!(started.elapsed() < Duration::from_secs(60), "no lock taken");
        std::thread::sleep(Duration::from_millis(10));
    }
    let second = stage("cooc", &config, &results).output().unwrap();
    assert!(
        first.try_wait().unwrap().is_none(),
        "the first run ended too soon"
    );
    assert!(!second.status.success());
    let err = stderr(&second);
    assert!(
        err.contains("is in use by another saecooc process"),
        "{err}"
    );
    assert!(
        err.contains(&holder) && err.contains("`saecooc cooc`, started 20"),
        "{err}"
    );
    assert!(first.wait().unwrap().success());
    assert_whole_cooc_set(&results_dir(&results, 200));
    no_leftovers(&results);
}

#[test]
fn an_interrupted_write_keeps_the_previous_set_and_an_interrupted_publish_is_refused_then_completed(
) {
    let dir = tempfile::tempdir().unwrap();
    let p = fixture(dir.path());
    let analysis = "\n[analysis]\nmin_subgraph_size = 20\nmax_subgraph_size = 40\nskip_subgraph_plots = true\n";
    let config = write_config(dir.path(), "run.toml", &config_text(&p, 6, analysis));
    let results = dir.path().join("results");
    let d = results_dir(&results, 6);
    assert_ok(&stage("cooc", &config, &results).output().unwrap());
    let before = std::fs::read(d.join("run.json")).unwrap();

    // A second run over other text, killed once its files are written but before publishing.
    let text = std::fs::read_to_string(&p.corpus).unwrap();
    let reversed: String = text.lines().rev().map(|l| format!("{l}\n")).collect();
    std::fs::write(&p.corpus, reversed).unwrap();
    let out = stage("cooc", &config, &results)
        .env("SAECOOC_TEST_ABORT", "staged")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert_eq!(std::fs::read(d.join("run.json")).unwrap(), before);
    assert_whole_cooc_set(&d);
    // Readers accept the previous set as it is.
    assert_ok(&stage("graphs", &config, &results).output().unwrap());

    // A run killed after moving two of its files: readers refuse the folder.
    let out = stage("cooc", &config, &results)
        .env("SAECOOC_TEST_ABORT", "moved:2")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stats = run_stats(&results, dir.path());
    assert!(!stats.status.success());
    assert!(
        stderr(&stats).contains("was interrupted while publishing its results"),
        "{}",
        stderr(&stats)
    );
    // The next writer of the folder completes the publish; graphs then rebuild from it.
    assert_ok(&stage("graphs", &config, &results).output().unwrap());
    assert_ne!(std::fs::read(d.join("run.json")).unwrap(), before);
    assert_whole_cooc_set(&d);
    let graphs = PublishedSet::open(&d, "graphs", "graphs_run.json").unwrap();
    let cooc = PublishedSet::open(&d, "cooc", "run.json").unwrap();
    graphs.check_built_from("cooc", &cooc, "graphs").unwrap();
    no_leftovers(&results);

    // A count matrix of another run dropped into the folder is refused by readers.
    let other = dir.path().join("other");
    std::fs::write(&p.corpus, &text).unwrap();
    assert_ok(&stage("cooc", &config, &other).output().unwrap());
    let name = "feature_acts_cooc_total_threshold_1_5.npz";
    std::fs::copy(results_dir(&other, 6).join(name), d.join(name)).unwrap();
    let stats = run_stats(&results, dir.path());
    assert!(!stats.status.success());
    let err = stderr(&stats);
    assert!(err.contains(name) && err.contains("run.json"), "{err}");

    // Graphs computed from an earlier cooc set are refused by their readers.
    assert_ok(&stage("cooc", &config, &results).output().unwrap());
    let stats = run_stats(&results, dir.path());
    assert!(!stats.status.success());
    assert!(
        stderr(&stats).contains("graphs_run.json")
            && stderr(&stats).contains("rerun `saecooc graphs`"),
        "{}",
        stderr(&stats)
    );
}

#[test]
fn rerunning_graphs_with_other_sizes_leaves_no_stale_files() {
    let dir = tempfile::tempdir().unwrap();
    let p = fixture(dir.path());
    let analysis = |min: usize, max: usize| {
        format!("\n[analysis]\nmin_subgraph_size = {min}\nmax_subgraph_size = {max}\nmin_subgraph_size_to_plot = 2\n")
    };
    let config = write_config(
        dir.path(),
        "run.toml",
        &config_text(&p, 6, &analysis(20, 40)),
    );
    let results = dir.path().join("results");
    let d = results_dir(&results, 6);
    assert_ok(&stage("cooc", &config, &results).output().unwrap());
    assert_ok(&stage("graphs", &config, &results).output().unwrap());
    // A file from an older run, before manifests.
    std::fs::write(d.join("graphs_1_5/subgraph_9999.html"), "old").unwrap();
    let first = common::files_under(&d).len();
    let config = write_config(dir.path(), "run.toml", &config_text(&p, 6, &analysis(3, 6)));
    assert_ok(&stage("graphs", &config, &results).output().unwrap());
    let graphs = PublishedSet::open(&d, "graphs", "graphs_run.json").unwrap();
    let listed: std::collections::BTreeSet<String> = graphs
        .record
        .unwrap()
        .files
        .into_iter()
        .map(|f| f.path)
        .collect();
    for sub in [
        "graphs_0_0",
        "graphs_1_5",
        "subgraph_objects",
        "dataframes",
        "thresholded_matrices",
    ] {
        for f in common::files_under(&d.join(sub)) {
            let rel = f.strip_prefix(&d).unwrap().to_string_lossy().into_owned();
            if rel == "graphs_1_5/subgraph_9999.html" {
                continue;
            }
            assert!(
                listed.contains(&rel),
                "stale {rel} after the second graphs run"
            );
        }
    }
    // Not listed by any manifest: not saecooc's to remove.
    assert!(d.join("graphs_1_5/subgraph_9999.html").exists());
    assert_ne!(common::files_under(&d).len(), first);
    no_leftovers(&results);
}

#[test]
fn pca_says_which_sizes_have_no_subgraphs_and_writes_no_file_for_them() {
    let dir = tempfile::tempdir().unwrap();
    let (p, results) = common::prepare(dir.path());
    let text = common::pca_config(&p, 3, 16, 50).replace(
        "subgraph_sizes_to_plot = [2, 3, 4, 5, 6]",
        "subgraph_sizes_to_plot = [3, 997]",
    );
    let config = write_config(dir.path(), "pca.toml", &text);
    let out = saecooc(&["pca"])
        .args(config_args(&config, &results))
        .output()
        .unwrap();
    assert_ok(&out);
    let err = stderr(&out);
    assert!(err.contains("no subgraphs of size 997"), "{err}");
    let pca_dir = results_dir(&results, 6).join("blocks_1_hook_resid_pre_pca_for_streamlit");
    let h5: Vec<String> = std::fs::read_dir(&pca_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".h5"))
        .collect();
    assert_eq!(
        h5,
        ["50cap_graph_analysis_results_size_3_nbatch_3.h5"].map(String::from)
    );

    let text = text.replace(
        "subgraph_sizes_to_plot = [3, 997]",
        "subgraph_sizes_to_plot = [997, 998]",
    );
    let config = write_config(dir.path(), "pca.toml", &text);
    let out = saecooc(&["pca"])
        .args(config_args(&config, &results))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no subgraphs of the requested sizes [997, 998]"),
        "{}",
        stderr(&out)
    );
    // The previous pca set is untouched.
    assert!(pca_dir
        .join("50cap_graph_analysis_results_size_3_nbatch_3.h5")
        .is_file());
}

#[test]
fn stats_refuses_a_node_table_of_another_width() {
    let dir = tempfile::tempdir().unwrap();
    let (_, results) = common::prepare(dir.path());
    let d = results_dir(&results, 6);
    // As the original's scripts leave a folder (no manifests), with a node table of 100 rows.
    std::fs::remove_file(d.join("run.json")).unwrap();
    std::fs::remove_file(d.join("graphs_run.json")).unwrap();
    let table = d.join("dataframes/node_info_df_1_5.csv");
    let text = std::fs::read_to_string(&table).unwrap();
    let short: Vec<&str> = text.lines().take(101).collect();
    std::fs::write(&table, short.join("\n") + "\n").unwrap();
    let out = run_stats(&results, dir.path());
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("has 100 rows but the cooc totals beside it have 256 latents"),
        "{err}"
    );
    assert!(err.contains("has no saecooc manifest"), "{err}");
}

#[test]
fn a_write_error_names_the_file_and_keeps_the_previous_set() {
    let dir = tempfile::tempdir().unwrap();
    let p = fixture(dir.path());
    let config = write_config(dir.path(), "run.toml", &config_text(&p, 6, ""));
    let results = dir.path().join("results");
    let d = results_dir(&results, 6);
    assert_ok(&stage("cooc", &config, &results).output().unwrap());
    let before = std::fs::read(d.join("run.json")).unwrap();
    // A file size limit of 64 KiB stands in for a full disk (writes fail with EFBIG).
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg("trap '' XFSZ; ulimit -f 128; exec \"$@\"")
        .arg("sh")
        .arg(env!("CARGO_BIN_EXE_saecooc"))
        .args(["--quiet", "cooc", "--config"])
        .arg(&config)
        .arg("--results-dir")
        .arg(&results)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("cannot write") && err.contains("feature_acts_cooc_"),
        "{err}"
    );
    assert!(!err.contains("ZipWriter"), "{err}");
    assert_eq!(std::fs::read(d.join("run.json")).unwrap(), before);
    assert_whole_cooc_set(&d);
    no_leftovers(&results);
}

#[test]
fn an_unwritable_results_folder_is_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let p = fixture(dir.path());
    // The model is missing too: the folder must be refused first.
    let text = config_text(&p, 6, "").replace(&p.model.display().to_string(), "/nonexistent/model");
    let config = write_config(dir.path(), "run.toml", &text);
    let blocker = dir.path().join("a-file");
    std::fs::write(&blocker, "").unwrap();
    let out = stage("cooc", &config, &blocker.join("results"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("cannot create results folder"), "{err}");
    assert!(!err.contains("nonexistent"), "{err}");
}
