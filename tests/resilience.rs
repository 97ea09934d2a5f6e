//! Sharded runs and resumption: a merged sharded run and a run killed with SIGKILL then
//! resumed both give exactly the outputs of an uninterrupted run; a checkpoint from another
//! config is refused.

mod common;

use common::{assert_ok, config_text, results_dir, saecooc};
use saecooc::io::npz::read_npz;
use saecooc::synth::{self, SynthOptions, SynthPaths};
use std::path::Path;
use std::time::{Duration, Instant};

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

#[test]
fn a_killed_run_resumes_to_the_same_counts() {
    let dir = tempfile::tempdir().unwrap();
    let p = fixture(dir.path());
    let config = dir.path().join("run.toml");
    std::fs::write(&config, config_text(&p, 200, "")).unwrap();
    let (whole, killed) = (dir.path().join("whole"), dir.path().join("killed"));
    assert_ok(&cooc(&config, &whole, &[]));

    let checkpoint = results_dir(&killed, 200).join("checkpoint.npz");
    let mut child = saecooc(&[
        "--quiet",
        "cooc",
        "--config",
        config.to_str().unwrap(),
        "--checkpoint-every",
        "3",
    ])
    .arg("--results-dir")
    .arg(&killed)
    .spawn()
    .unwrap();
    let started = Instant::now();
    while !checkpoint.is_file() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no checkpoint appeared"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run finished before it could be killed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(150));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(
        !results_dir(&killed, 200).join("run.json").exists(),
        "the run was not interrupted"
    );

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
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("different config"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

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
}
