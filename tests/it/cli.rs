//! End-to-end tests of the `saecooc` binary on synthetic inputs written in the real formats.

use crate::common::{
    assert_ok, check_python, config_text, files_under, fixture, results_dir, run_cooc,
};
use saecooc::synth::{self, SynthOptions};
use std::path::Path;
use std::process::Command;

#[test]
fn cooc_outputs_read_back_with_numpy() {
    let dir = tempfile::tempdir().unwrap();
    let paths = fixture(dir.path());
    // Without special-token removal, exactly n_batches × tokens_per_batch = 6 × 500 tokens.
    let config = config_text(&paths, 6, "").replace(
        "remove_special_tokens = true",
        "remove_special_tokens = false",
    );
    let (out, results) = run_cooc(dir.path(), &config);
    assert_ok(&out);
    let d = results_dir(&results, 6);
    let names: Vec<String> = files_under(&d)
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for ts in ["0_0", "1_5", "3_0"] {
        for kind in ["total", "jaccard", "activations"] {
            let name = format!("feature_acts_cooc_{kind}_threshold_{ts}.npz");
            assert!(names.contains(&name), "missing {name} in {names:?}");
        }
    }
    assert!(!names.iter().any(|n| n.contains("partial")), "{names:?}");
    check_python("check_cooc_outputs.py", [d.as_os_str(), "3000".as_ref()]);
}

#[test]
fn running_out_of_data_is_reported_and_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let paths = fixture(dir.path());
    let config_path = dir.path().join("run.toml");
    std::fs::write(&config_path, config_text(&paths, 1000, "")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_saecooc"))
        .args(["cooc", "--config"])
        .arg(&config_path)
        .arg("--results-dir")
        .arg(dir.path().join("results"))
        .output()
        .unwrap();
    assert_ok(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("data ran out"), "{stderr}");
    let run: serde_json::Value = serde_json::from_slice(
        &std::fs::read(results_dir(&dir.path().join("results"), 1000).join("run.json")).unwrap(),
    )
    .unwrap();
    let counted = run["tokens_counted"].as_u64().unwrap();
    assert!(counted > 0 && counted < 500_000, "{counted}");
    assert_eq!(run["data_exhausted"], serde_json::Value::Bool(true));
}

/// Runs a broken setup and checks: failure, the message, and no output file.
fn assert_fails_cleanly(dir: &Path, config: &str, expected: &[&str]) {
    let (out, results) = run_cooc(dir, config);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "should fail: {stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    for e in expected {
        assert!(stderr.contains(e), "expected '{e}' in: {stderr}");
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        files_under(&results).is_empty(),
        "outputs left behind: {:?}",
        files_under(&results)
    );
}

#[test]
fn missing_model_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = fixture(dir.path());
    std::fs::remove_file(p.model.join("model.safetensors")).unwrap();
    assert_fails_cleanly(
        dir.path(),
        &config_text(&p, 2, ""),
        &["has no model.safetensors", "model"],
    );
}

#[test]
fn corrupt_safetensors() {
    let dir = tempfile::tempdir().unwrap();
    let p = fixture(dir.path());
    let path = p.model.join("model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    assert_fails_cleanly(
        dir.path(),
        &config_text(&p, 2, ""),
        &["model.safetensors", "not a valid safetensors file"],
    );
}

#[test]
fn sae_width_differs_from_model_width() {
    let dir = tempfile::tempdir().unwrap();
    let p = fixture(dir.path());
    let cfg_path = p.sae.join("cfg.json");
    // A 32-wide SAE for a 64-wide model.
    let narrow = SynthOptions {
        d_model: 32,
        d_sae: 256,
        documents: 400,
        ..SynthOptions::default()
    };
    let other = synth::write_all(&dir.path().join("narrow"), &narrow).unwrap();
    for f in ["cfg.json", "sae_weights.safetensors"] {
        std::fs::copy(other.sae.join(f), p.sae.join(f)).unwrap();
    }
    assert!(cfg_path.exists());
    assert_fails_cleanly(
        dir.path(),
        &config_text(&p, 2, ""),
        &["d_in = 32", "width 64"],
    );
}

#[test]
fn hook_layer_beyond_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let p = fixture(dir.path());
    let cfg_path = p.sae.join("cfg.json");
    let text = std::fs::read_to_string(&cfg_path)
        .unwrap()
        .replace("blocks.1.hook_resid_pre", "blocks.7.hook_resid_pre");
    std::fs::write(&cfg_path, text).unwrap();
    assert_fails_cleanly(
        dir.path(),
        &config_text(&p, 2, ""),
        &["blocks.7.hook_resid_pre", "beyond the model", "2 layers"],
    );
}

#[test]
fn empty_dataset() {
    let dir = tempfile::tempdir().unwrap();
    let p = fixture(dir.path());
    std::fs::write(&p.corpus, "\n\n   \n").unwrap();
    assert_fails_cleanly(
        dir.path(),
        &config_text(&p, 2, ""),
        &["corpus.txt", "no tokens"],
    );
}

#[test]
fn malformed_and_unknown_config() {
    let dir = tempfile::tempdir().unwrap();
    let p = fixture(dir.path());
    let broken = config_text(&p, 2, "").replace("[source]", "[source");
    assert_fails_cleanly(dir.path(), &broken, &["run.toml"]);
    let unknown = config_text(&p, 2, "activation_threshold = 1.0");
    assert_fails_cleanly(dir.path(), &unknown, &["run.toml", "activation_threshold"]);
}

#[test]
fn synth_writes_a_runnable_config() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    let status = Command::new(env!("CARGO_BIN_EXE_saecooc"))
        .args([
            "--quiet",
            "synth",
            "--documents",
            "300",
            "--d-sae",
            "128",
            "--out",
        ])
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    let config = saecooc::config::Config::load(&out.join("cooc.toml")).unwrap();
    assert_eq!(
        config.source.model.as_deref(),
        Some(out.join("model").to_str().unwrap())
    );
    let text = std::fs::read_to_string(out.join("cooc.toml"))
        .unwrap()
        .replace("n_batches = 8", "n_batches = 2");
    let (res, results) = run_cooc(dir.path(), &text);
    assert_ok(&res);
    assert_eq!(files_under(&results).len(), 7);
}

/// `-q` prints nothing but errors: `merge`, which said that it completed an interrupted publish
/// even under `-q`, says nothing; without `-q` it says so, and prints its summary.
#[test]
fn quiet_silences_merge() {
    let dir = tempfile::tempdir().unwrap();
    let paths = fixture(dir.path());
    let config = dir.path().join("run.toml");
    std::fs::write(&config, config_text(&paths, 6, "")).unwrap();
    let results = dir.path().join("results");
    let run = |args: &[&str], abort: Option<&str>| {
        let mut cmd = crate::common::saecooc(args);
        cmd.arg("--config")
            .arg(&config)
            .arg("--results-dir")
            .arg(&results);
        if let Some(point) = abort {
            cmd.env("SAECOOC_TEST_ABORT", point);
        }
        cmd.output().unwrap()
    };
    for shard in ["0/2", "1/2"] {
        assert_ok(&run(&["-q", "cooc", "--shard", shard], None));
    }
    let interrupted_merge = || {
        let out = run(&["-q", "merge", "--shards", "2"], Some("moved:2"));
        assert!(!out.status.success(), "the merge was not interrupted");
    };
    interrupted_merge();
    let quiet = run(&["-q", "merge", "--shards", "2"], None);
    assert_ok(&quiet);
    assert!(
        quiet.stdout.is_empty() && quiet.stderr.is_empty(),
        "-q printed: {}{}",
        String::from_utf8_lossy(&quiet.stdout),
        String::from_utf8_lossy(&quiet.stderr)
    );
    interrupted_merge();
    let loud = run(&["merge", "--shards", "2"], None);
    assert_ok(&loud);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&loud.stdout),
        String::from_utf8_lossy(&loud.stderr),
    );
    assert!(stdout.contains("merged 2 shards"), "{stdout}");
    assert!(
        stderr.contains("completing the `saecooc cooc` publish"),
        "{stderr}"
    );
}
