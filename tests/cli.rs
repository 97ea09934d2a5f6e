//! End-to-end tests of the `saecooc` binary on synthetic inputs written in the real formats.

mod common;

use common::{assert_ok, config_text, files_under, fixture, python, results_dir, run_cooc};
use saecooc::synth::{self, SynthOptions};
use std::path::Path;
use std::process::Command;

const NUMPY_CHECK: &str = r#"
import json, sys
import numpy as np
d, expected_tokens = sys.argv[1], int(sys.argv[2])
run = json.load(open(f"{d}/run.json"))
assert run["tokens_counted"] == expected_tokens, run["tokens_counted"]
for th in run["thresholds"]:
    ts = th["tag"]
    C = np.load(f"{d}/feature_acts_cooc_total_threshold_{ts}.npz")["arr_0"]
    J = np.load(f"{d}/feature_acts_cooc_jaccard_threshold_{ts}.npz")["arr_0"]
    a = np.load(f"{d}/feature_acts_cooc_activations_threshold_{ts}.npz")["arr_0"]
    assert C.dtype == np.float32 and J.dtype == np.float32 and a.dtype == np.float32
    assert C.shape == (256, 256) and J.shape == (256, 256) and a.shape == (256,)
    assert (C == C.T).all() and (J == J.T).all()
    assert (np.diag(C) == a).all()
    assert (C <= np.minimum(a[:, None], a[None, :])).all()
    assert a.max() <= expected_tokens
    # Mean L0 = sum of per-latent totals / tokens.
    assert abs(a.sum() / expected_tokens - th["l0_mean"]) < 1e-9 * max(1, th["l0_mean"]), (a.sum(), th)
    assert th["dead_latents"] == int((a == 0).sum())
    with np.errstate(divide="ignore", invalid="ignore"):
        ref = C / (a[:, None] + a[None, :] - C)
    ref = np.nan_to_num(ref, nan=0.0, posinf=1.0, neginf=0.0).astype(np.float32)
    assert np.array_equal(ref, J)
    assert set(np.unique(np.diag(J))) <= {0.0, 1.0}
    print(ts, int(a.sum()), float(J[np.triu_indices(256, 1)].max()))
# Higher thresholds fire less.
sums = [np.load(f"{d}/feature_acts_cooc_activations_threshold_{th['tag']}.npz")["arr_0"].sum() for th in run["thresholds"]]
assert sums[0] > sums[1] > sums[2] > 0, sums
"#;

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
    let check = python()
        .args(["-c", NUMPY_CHECK])
        .arg(&d)
        .arg("3000")
        .output()
        .expect("python3 with numpy is needed for this test (.ci/run installs it)");
    assert!(
        check.status.success(),
        "numpy check failed:\n{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
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
