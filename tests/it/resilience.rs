//! Sharded runs and resumption: a merged sharded run and a run killed with SIGKILL then
//! resumed both give exactly the outputs of an uninterrupted run; a checkpoint or shard from
//! other inputs (config, SAE, corpus), or a copied shard, is refused, naming what changed.

use crate::common;
use crate::common::{assert_ok, config_text, results_dir, saecooc, stderr};
use saecooc::io::npz::read_npz;
use saecooc::synth::{self, SynthOptions, SynthPaths};
use std::path::Path;

const KINDS: [&str; 3] = ["total", "jaccard", "activations"];
const TAGS: [&str; 3] = ["0_0", "1_5", "3_0"];

fn fixture(dir: &Path) -> SynthPaths {
    let options = SynthOptions {
        d_sae: 256,
        documents: 3000,
        ..SynthOptions::default()
    };
    synth::write_all(&dir.join("inputs"), &options).unwrap()
}

fn cooc(config: &Path, results: &Path, extra: &[&str]) -> std::process::Output {
    let mut cmd = saecooc(&["--quiet", "cooc", "--config"]);
    cmd.arg(config)
        .arg("--results-dir")
        .arg(results)
        .args(extra);
    cmd.output().unwrap()
}

/// Every output array of two results folders is identical.
fn assert_same_outputs(a: &Path, b: &Path) {
    for tag in TAGS {
        for kind in KINDS {
            let name = format!("feature_acts_cooc_{kind}_threshold_{tag}.npz");
            let (x, y) = (
                read_npz(&a.join(&name)).unwrap(),
                read_npz(&b.join(&name)).unwrap(),
            );
            assert_eq!(x, y, "{name} differs");
        }
    }
    let run = |d: &Path| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(d.join("run.json")).unwrap()).unwrap()
    };
    let (ra, rb) = (run(a), run(b));
    assert_eq!(ra["tokens_counted"], rb["tokens_counted"]);
    for k in 0..3 {
        for key in ["l0_mean", "l0_std", "l0_histogram", "dead_latents"] {
            assert_eq!(ra["thresholds"][k][key], rb["thresholds"][k][key], "{key}");
        }
    }
}

#[test]
fn merged_shards_equal_the_unsharded_run() {
    let dir = tempfile::tempdir().unwrap();
    let p = fixture(dir.path());
    let config = dir.path().join("run.toml");
    std::fs::write(&config, config_text(&p, 5, "")).unwrap();
    let (whole, split) = (dir.path().join("whole"), dir.path().join("split"));
    assert_ok(&cooc(&config, &whole, &[]));
    for i in 0..3 {
        assert_ok(&cooc(&config, &split, &["--shard", &format!("{i}/3")]));
    }
    // Merging with a shard missing is refused.
    let out = saecooc(&[
        "merge",
        "--config",
        config.to_str().unwrap(),
        "--shards",
        "4",
        "--results-dir",
        split.to_str().unwrap(),
    ])
    .output()
    .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("shard 0 of 4 is missing"));
    let out = saecooc(&[
        "--quiet",
        "merge",
        "--config",
        config.to_str().unwrap(),
        "--shards",
        "3",
        "--results-dir",
        split.to_str().unwrap(),
    ])
    .output()
    .unwrap();
    assert_ok(&out);
    assert_same_outputs(&results_dir(&whole, 5), &results_dir(&split, 5));
}

/// Starts a long run into `results`, and SIGKILLs it once it has saved a checkpoint; returns
/// the checkpoint.
fn interrupted_run(config: &Path, results: &Path, n_batches: usize) -> std::path::PathBuf {
    let checkpoint = results_dir(results, n_batches).join("checkpoint.npz");
    let mut cmd = saecooc(&[
        "--quiet",
        "cooc",
        "--config",
        config.to_str().unwrap(),
        "--checkpoint-every",
        "3",
    ]);
    cmd.arg("--results-dir").arg(results);
    common::kill_once_written(cmd, std::slice::from_ref(&checkpoint));
    assert!(
        !results_dir(results, n_batches).join("run.json").exists(),
        "the run was not interrupted"
    );
    checkpoint
}

#[test]
fn a_killed_run_resumes_to_the_same_counts() {
    let dir = tempfile::tempdir().unwrap();
    let p = fixture(dir.path());
    let config = dir.path().join("run.toml");
    std::fs::write(&config, config_text(&p, 200, "")).unwrap();
    let (whole, killed) = (dir.path().join("whole"), dir.path().join("killed"));
    assert_ok(&cooc(&config, &whole, &[]));
    let checkpoint = interrupted_run(&config, &killed, 200);

    // A checkpoint from a different config is refused.
    let other = dir.path().join("other.toml");
    std::fs::write(
        &other,
        config_text(&p, 200, "").replace("tokens_per_batch = 500", "tokens_per_batch = 400"),
    )
    .unwrap();
    let moved = dir.path().join("moved");
    std::fs::create_dir_all(results_dir(&moved, 200)).unwrap();
    std::fs::copy(&checkpoint, results_dir(&moved, 200).join("checkpoint.npz")).unwrap();
    let out = cooc(&other, &moved, &["--resume"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("the config"), "{}", stderr(&out));

    assert_ok(&cooc(
        &config,
        &killed,
        &["--resume", "--checkpoint-every", "3"],
    ));
    assert!(
        !checkpoint.exists(),
        "the checkpoint is removed when the run completes"
    );
    assert_same_outputs(&results_dir(&whole, 200), &results_dir(&killed, 200));
    let leftovers: Vec<_> = common::files_under(&killed)
        .into_iter()
        .filter(|f| {
            f.to_string_lossy().contains(".partial-") || f.to_string_lossy().contains(".staging-")
        })
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// Flips one byte of `path` at `offset` from the end.
fn flip_byte(path: &Path, from_end: usize) -> Vec<u8> {
    let original = std::fs::read(path).unwrap();
    let mut bytes = original.clone();
    let k = bytes.len() - from_end;
    bytes[k] ^= 0x40;
    std::fs::write(path, &bytes).unwrap();
    original
}

#[test]
fn resuming_after_the_sae_or_the_corpus_changed_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let p = fixture(dir.path());
    let config = dir.path().join("run.toml");
    std::fs::write(&config, config_text(&p, 200, "")).unwrap();
    let results = dir.path().join("results");
    interrupted_run(&config, &results, 200);

    // The SAE retrained in place (here: one weight changed).
    let sae_weights = p.sae.join("sae_weights.safetensors");
    let original = flip_byte(&sae_weights, 3);
    let out = cooc(&config, &results, &["--resume"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("the SAE"), "{}", stderr(&out));
    assert!(stderr(&out).contains("checkpoint.npz"), "{}", stderr(&out));
    std::fs::write(&sae_weights, original).unwrap();

    // The corpus replaced by another of the same name.
    let text = std::fs::read_to_string(&p.corpus).unwrap();
    std::fs::write(&p.corpus, format!("{text}one more document\n")).unwrap();
    let out = cooc(&config, &results, &["--resume"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("the dataset files"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("the SAE"), "{}", stderr(&out));
    std::fs::write(&p.corpus, text).unwrap();

    // With the inputs restored it resumes.
    assert_ok(&cooc(&config, &results, &["--resume"]));
}

#[test]
fn merge_refuses_a_copied_shard_and_shards_of_other_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let p = fixture(dir.path());
    let config = dir.path().join("run.toml");
    std::fs::write(&config, config_text(&p, 5, "")).unwrap();
    let split = dir.path().join("split");
    for i in 0..2 {
        assert_ok(&cooc(&config, &split, &["--shard", &format!("{i}/2")]));
    }
    let shards = results_dir(&split, 5).join("shards");
    let merge = || {
        saecooc(&[
            "--quiet",
            "merge",
            "--config",
            config.to_str().unwrap(),
            "--shards",
            "2",
        ])
        .arg("--results-dir")
        .arg(&split)
        .output()
        .unwrap()
    };
    let second = std::fs::read(shards.join("shard_1_of_2.npz")).unwrap();
    std::fs::copy(
        shards.join("shard_0_of_2.npz"),
        shards.join("shard_1_of_2.npz"),
    )
    .unwrap();
    let out = merge();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("holds the counts of shard 0/2, not 1/2"),
        "{}",
        stderr(&out)
    );
    assert!(!results_dir(&split, 5).join("run.json").exists());

    // Shard 1 counted after the corpus changed.
    std::fs::write(shards.join("shard_1_of_2.npz"), second).unwrap();
    let text = std::fs::read_to_string(&p.corpus).unwrap();
    std::fs::write(&p.corpus, format!("{text}one more document\n")).unwrap();
    assert_ok(&cooc(&config, &split, &["--shard", "1/2"]));
    let out = merge();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("the dataset files"),
        "{}",
        stderr(&out)
    );
    std::fs::write(&p.corpus, text).unwrap();
    assert_ok(&cooc(&config, &split, &["--shard", "1/2"]));
    assert_ok(&merge());
}
