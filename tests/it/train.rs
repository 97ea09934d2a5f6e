//! `saecooc train-sae` end to end on the synthetic GPT-2: the SAE it writes reloads in SAELens
//! format and encodes exactly as its raw weights say (brute force in f64), and `cooc` runs on it.

use crate::common;
use crate::common::{assert_ok, config_text, fixture, results_dir, run_cooc, saecooc};
use candle_core::{Device, Tensor};
use saecooc::hub::{Hub, Location};
use saecooc::sae::{Sae, SaeDefaults, SaeFiles};
use std::path::Path;

fn train(dir: &Path, architecture: &str, out: &Path) -> serde_json::Value {
    let out_arg = out.to_str().unwrap();
    let o = saecooc(&[
        "--quiet",
        "train-sae",
        "--config",
        dir.join("run.toml").to_str().unwrap(),
        "--hook",
        "blocks.1.hook_resid_pre",
        "--d-sae",
        "96",
        "--architecture",
        architecture,
        "--k",
        "6",
        "--l1-coefficient",
        "0.002",
        "--lr",
        "3e-3",
        "--tokens",
        "12288",
        "--batch-tokens",
        "512",
        "--buffer-tokens",
        "4096",
        "--buffer-passes",
        "2",
        "--heldout-tokens",
        "2048",
        "--out",
        out_arg,
    ])
    .output()
    .unwrap();
    assert_ok(&o);
    serde_json::from_slice(&std::fs::read(out.join("training.json")).unwrap()).unwrap()
}

/// TopK encode from the raw SAELens weights in f64 by SAELens' rule for an SAE trained as
/// train-sae trains (`rescale_acts_by_decoder_norm` false): the k largest pre-activations as the
/// weights give them, through ReLU; then times the decoder norms, as saecooc folds them.
fn brute_force_topk(weights: &Path, x: &[f32], d_in: usize, k: usize) -> Vec<f64> {
    let t = candle_core::safetensors::load(weights, &Device::Cpu).unwrap();
    let get = |n: &str| t[n].flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let (w_enc, b_enc, w_dec, b_dec) = (get("W_enc"), get("b_enc"), get("W_dec"), get("b_dec"));
    let d_sae = b_enc.len();
    let norms: Vec<f64> = (0..d_sae)
        .map(|i| {
            w_dec[i * d_in..(i + 1) * d_in]
                .iter()
                .map(|&v| (v as f64).powi(2))
                .sum::<f64>()
                .sqrt()
        })
        .collect();
    let mut out = Vec::new();
    for row in x.chunks_exact(d_in) {
        let pre: Vec<f64> = (0..d_sae)
            .map(|i| {
                let dot: f64 = (0..d_in)
                    .map(|j| (row[j] as f64 - b_dec[j] as f64) * w_enc[j * d_sae + i] as f64)
                    .sum();
                dot + b_enc[i] as f64
            })
            .collect();
        let mut sorted = pre.clone();
        sorted.sort_by(|a, b| b.total_cmp(a));
        let kth = sorted[k - 1];
        out.extend(pre.iter().zip(&norms).map(
            |(&p, &n)| {
                if p >= kth {
                    p.max(0.0) * n
                } else {
                    0.0
                }
            },
        ));
    }
    out
}

#[test]
fn trained_sae_round_trips_and_runs_in_cooc() {
    let dir = tempfile::tempdir().unwrap();
    let p = fixture(dir.path());
    std::fs::write(dir.path().join("run.toml"), config_text(&p, 2, "")).unwrap();
    let out = dir.path().join("trained/blocks.1.hook_resid_pre");
    let report = train(dir.path(), "topk", &out);
    assert_eq!(report["steps"], 24);
    assert_eq!(report["heldout_l0"].as_f64().unwrap(), 6.0);
    let ev = report["heldout_explained_variance"].as_f64().unwrap();
    assert!(ev > 0.3 && ev < 1.0, "held-out explained variance {ev}");

    // Reload through the SAELens loader and compare with the raw weights.
    let hub = Hub::from_env(false).unwrap();
    let files = SaeFiles::resolve(&Location::Local(out.clone()), "", &hub).unwrap();
    let sae = Sae::load(&files, &SaeDefaults::default(), &Device::Cpu).unwrap();
    assert_eq!((sae.cfg.d_in, sae.cfg.d_sae), (64, 96));
    assert_eq!(sae.cfg.hook_name, "blocks.1.hook_resid_pre");
    let cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("cfg.json")).unwrap()).unwrap();
    assert_eq!(cfg["rescale_acts_by_decoder_norm"], false);
    assert_eq!(sae.selection_rule(), Some("unscaled"));
    let x: Vec<f32> = (0..5 * 64)
        .map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0)
        .collect();
    let ours = sae
        .encode(&Tensor::from_slice(&x, (5, 64), &Device::Cpu).unwrap())
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    let want = brute_force_topk(&out.join("sae_weights.safetensors"), &x, 64, 6);
    let scale = want.iter().fold(0f64, |m, v| m.max(v.abs()));
    for (i, (a, b)) in ours.iter().zip(&want).enumerate() {
        assert!(
            (*a as f64 - b).abs() <= 1e-4 * scale,
            "latent {i}: {a} vs {b}"
        );
    }

    // cooc runs on the trained SAE.
    let config = config_text(&p, 2, "").replace(
        &format!("sae = \"{}\"", p.sae.parent().unwrap().display()),
        &format!("sae = \"{}\"", out.parent().unwrap().display()),
    );
    let (o, results) = run_cooc(dir.path(), &config);
    assert_ok(&o);
    let run: serde_json::Value =
        serde_json::from_slice(&std::fs::read(results_dir(&results, 2).join("run.json")).unwrap())
            .unwrap();
    // TopK with k = 6: at most 6 latents per token at threshold 0.
    let l0 = run["thresholds"][0]["l0_mean"].as_f64().unwrap();
    assert!(l0 > 0.0 && l0 <= 6.0, "{l0}");
}

#[test]
fn standard_sae_trains_with_an_l1_penalty() {
    let dir = tempfile::tempdir().unwrap();
    let p = fixture(dir.path());
    std::fs::write(dir.path().join("run.toml"), config_text(&p, 2, "")).unwrap();
    let out = dir.path().join("standard");
    let report = train(dir.path(), "standard", &out);
    let cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("cfg.json")).unwrap()).unwrap();
    assert_eq!(cfg["architecture"], "standard");
    let ev = report["heldout_explained_variance"].as_f64().unwrap();
    let l0 = report["heldout_l0"].as_f64().unwrap();
    assert!(ev > 0.3, "{report}");
    assert!(l0 > 0.0 && l0 < 96.0, "{report}");
}

/// Files written by `synth` and `train-sae` get the usual permissions (0666 less the umask), so
/// other users of a shared results folder can read them: 0644 under umask 022.
#[test]
fn synth_and_train_sae_files_follow_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let synth = dir.path().join("synth");
    let trained = dir.path().join("trained");
    let under_umask_022 = |args: &[&str]| {
        let o = std::process::Command::new("sh")
            .args(["-c", "umask 022; exec \"$0\" \"$@\""])
            .arg(env!("CARGO_BIN_EXE_saecooc"))
            .args(args)
            .output()
            .unwrap();
        assert_ok(&o);
    };
    let synth_arg = synth.to_str().unwrap();
    under_umask_022(&[
        "--quiet",
        "synth",
        "--out",
        synth_arg,
        "--d-sae",
        "64",
        "--documents",
        "200",
        "--random-jaccard",
        "4",
    ]);
    under_umask_022(&[
        "--quiet",
        "train-sae",
        "--config",
        synth.join("cooc.toml").to_str().unwrap(),
        "--hook",
        "blocks.1.hook_resid_pre",
        "--d-sae",
        "16",
        "--k",
        "4",
        "--tokens",
        "512",
        "--batch-tokens",
        "256",
        "--buffer-tokens",
        "512",
        "--heldout-tokens",
        "256",
        "--out",
        trained.to_str().unwrap(),
    ]);
    let files = common::files_under(dir.path());
    for name in [
        "model.safetensors",
        "sae_weights.safetensors",
        "training.json",
    ] {
        assert!(
            files.iter().any(|f| f.ends_with(name)),
            "no {name} in {files:?}"
        );
    }
    for f in files {
        let mode = std::fs::metadata(&f).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644, "{} has mode {mode:o}", f.display());
    }
}
