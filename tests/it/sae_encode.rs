//! SAE loading and encoding against an independent reference: plain f64 loops over the raw
//! (unfolded) weights, written from the SAELens / Gemma Scope formulas. Tolerance: 1e-5
//! relative to the largest activation (f32 matmul vs f64 loops).

use candle_core::{Device, Tensor};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use saecooc::hub::{Hub, Location};
use saecooc::io::npz::NpzWriter;
use saecooc::sae::{Sae, SaeDefaults, SaeFiles};
use std::collections::HashMap;
use std::path::Path;

struct Raw {
    d_in: usize,
    d_sae: usize,
    w_enc: Vec<f32>,
    b_enc: Vec<f32>,
    w_dec: Vec<f32>,
    b_dec: Vec<f32>,
    threshold: Vec<f32>,
}

fn random_raw(d_in: usize, d_sae: usize, seed: u64) -> Raw {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut v = |n: usize, lo: f32, hi: f32| {
        (0..n)
            .map(|_| rng.random_range(lo..hi))
            .collect::<Vec<f32>>()
    };
    Raw {
        d_in,
        d_sae,
        w_enc: v(d_in * d_sae, -1.0, 1.0),
        b_enc: v(d_sae, -0.5, 0.3),
        // Decoder rows with norms far from 1, so folding matters.
        w_dec: v(d_sae * d_in, -2.0, 2.0),
        b_dec: v(d_in, -0.5, 0.5),
        threshold: v(d_sae, 0.0, 0.6),
    }
}

/// Reference activations for one token, from the raw weights.
fn reference(raw: &Raw, x: &[f32], apply_b_dec: bool, jump: bool) -> Vec<f64> {
    (0..raw.d_sae)
        .map(|i| {
            let norm = (0..raw.d_in)
                .map(|j| (raw.w_dec[i * raw.d_in + j] as f64).powi(2))
                .sum::<f64>()
                .sqrt();
            let mut pre = raw.b_enc[i] as f64;
            for (j, &xj) in x.iter().enumerate() {
                let xin = xj as f64
                    - if apply_b_dec {
                        raw.b_dec[j] as f64
                    } else {
                        0.0
                    };
                pre += xin * raw.w_enc[j * raw.d_sae + i] as f64;
            }
            // Folding multiplies the pre-activation and the threshold by the decoder norm.
            let pre = pre * norm;
            let theta = raw.threshold[i] as f64 * norm;
            if pre > 0.0 && (!jump || pre > theta) {
                pre
            } else {
                0.0
            }
        })
        .collect()
}

fn write_saelens(dir: &Path, raw: &Raw, cfg: serde_json::Value, with_threshold: bool) {
    std::fs::create_dir_all(dir).unwrap();
    let cpu = Device::Cpu;
    let mut t = HashMap::new();
    t.insert(
        "W_enc".to_string(),
        Tensor::from_slice(&raw.w_enc, (raw.d_in, raw.d_sae), &cpu).unwrap(),
    );
    t.insert(
        "b_enc".to_string(),
        Tensor::from_slice(&raw.b_enc, raw.d_sae, &cpu).unwrap(),
    );
    t.insert(
        "W_dec".to_string(),
        Tensor::from_slice(&raw.w_dec, (raw.d_sae, raw.d_in), &cpu).unwrap(),
    );
    t.insert(
        "b_dec".to_string(),
        Tensor::from_slice(&raw.b_dec, raw.d_in, &cpu).unwrap(),
    );
    if with_threshold {
        t.insert(
            "threshold".to_string(),
            Tensor::from_slice(&raw.threshold, raw.d_sae, &cpu).unwrap(),
        );
    }
    candle_core::safetensors::save(&t, dir.join("sae_weights.safetensors")).unwrap();
    std::fs::write(dir.join("cfg.json"), cfg.to_string()).unwrap();
}

fn encode(sae: &Sae, x: &[f32], n: usize) -> Vec<f32> {
    let xt = Tensor::from_slice(x, (n, sae.cfg.d_in), &Device::Cpu).unwrap();
    sae.encode(&xt)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap()
}

fn assert_matches_reference(sae: &Sae, raw: &Raw, apply_b_dec: bool, jump: bool) {
    let mut rng = StdRng::seed_from_u64(99);
    let n = 40;
    let x: Vec<f32> = (0..n * raw.d_in)
        .map(|_| rng.random_range(-2.0..2.0))
        .collect();
    let got = encode(sae, &x, n);
    let mut fired = 0;
    for t in 0..n {
        let want = reference(raw, &x[t * raw.d_in..(t + 1) * raw.d_in], apply_b_dec, jump);
        let scale = want.iter().fold(1.0f64, |m, v| m.max(v.abs()));
        for i in 0..raw.d_sae {
            let g = got[t * raw.d_sae + i] as f64;
            fired += (want[i] > 0.0) as usize;
            assert!(
                (g - want[i]).abs() <= 1e-5 * scale,
                "token {t} latent {i}: got {g}, want {}",
                want[i]
            );
        }
    }
    assert!(
        fired > 20,
        "the test should exercise firing latents ({fired})"
    );
}

fn load(dir: &Path, defaults: &SaeDefaults) -> Sae {
    let hub = Hub::from_env(false).unwrap();
    let files = SaeFiles::resolve(&Location::Local(dir.to_path_buf()), "", &hub).unwrap();
    Sae::load(&files, defaults, &Device::Cpu).unwrap()
}

#[test]
fn saelens_jumprelu_with_b_dec_matches_reference() {
    let dir = tempfile::tempdir().unwrap();
    let raw = random_raw(6, 16, 1);
    let cfg = serde_json::json!({"d_in": 6, "d_sae": 16, "hook_name": "blocks.3.hook_resid_post",
        "architecture": "jumprelu", "apply_b_dec_to_input": true, "normalize_activations": "none",
        "neuronpedia_id": "m/3-x"});
    write_saelens(dir.path(), &raw, cfg, true);
    let sae = load(dir.path(), &SaeDefaults::default());
    assert_eq!(sae.cfg.hook_name, "blocks.3.hook_resid_post");
    assert_eq!(sae.cfg.neuronpedia_id.as_deref(), Some("m/3-x"));
    // Folded: unit decoder rows, thresholds scaled by the norms.
    for i in 0..16 {
        let row = &sae.w_dec[i * 6..(i + 1) * 6];
        let norm: f32 = row.iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5);
        assert!((sae.threshold[i] - raw.threshold[i] * sae.decoder_norms[i]).abs() < 1e-6);
    }
    assert_matches_reference(&sae, &raw, true, true);
}

#[test]
fn saelens_standard_without_b_dec_matches_reference() {
    let dir = tempfile::tempdir().unwrap();
    let raw = random_raw(5, 12, 2);
    let cfg = serde_json::json!({"d_in": 5, "hook_point": "blocks.0.hook_resid_pre",
        "apply_b_dec_to_input": false});
    write_saelens(dir.path(), &raw, cfg, false);
    let sae = load(dir.path(), &SaeDefaults::default());
    assert!(sae.threshold.iter().all(|&t| t == 0.0));
    assert_matches_reference(&sae, &raw, false, false);
}

#[test]
fn gemma_scope_params_npz_matches_reference() {
    let dir = tempfile::tempdir().unwrap();
    let raw = random_raw(6, 16, 3);
    // np.savez layout (stored, keys without .npy).
    let mut w = NpzWriter::create(&dir.path().join("params.npz"), false).unwrap();
    w.add_array("W_enc", &[6, 16], &raw.w_enc).unwrap();
    w.add_array("W_dec", &[16, 6], &raw.w_dec).unwrap();
    w.add_array("b_enc", &[16], &raw.b_enc).unwrap();
    w.add_array("b_dec", &[6], &raw.b_dec).unwrap();
    w.add_array("threshold", &[16], &raw.threshold).unwrap();
    w.finish().unwrap();
    let defaults = SaeDefaults {
        hook_name: Some("blocks.12.hook_resid_post".into()),
        ..Default::default()
    };
    let sae = load(dir.path(), &defaults);
    assert_eq!(sae.cfg.hook_name, "blocks.12.hook_resid_post");
    assert!(!sae.cfg.apply_b_dec_to_input);
    assert_matches_reference(&sae, &raw, false, true);
}

#[test]
fn topk_keeps_the_k_largest() {
    let dir = tempfile::tempdir().unwrap();
    let raw = random_raw(4, 10, 4);
    let cfg = serde_json::json!({"d_in": 4, "hook_name": "blocks.0.hook_resid_pre", "architecture": "topk",
        "activation_fn_kwargs": {"k": 3}, "apply_b_dec_to_input": false,
        "rescale_acts_by_decoder_norm": true});
    write_saelens(dir.path(), &raw, cfg, false);
    let sae = load(dir.path(), &SaeDefaults::default());
    let mut rng = StdRng::seed_from_u64(5);
    let x: Vec<f32> = (0..20 * 4).map(|_| rng.random_range(-2.0..2.0)).collect();
    let got = encode(&sae, &x, 20);
    for t in 0..20 {
        let relu = reference(&raw, &x[t * 4..(t + 1) * 4], false, false);
        let mut sorted = relu.clone();
        sorted.sort_by(|a, b| b.total_cmp(a));
        for i in 0..10 {
            let want = if relu[i] >= sorted[2] { relu[i] } else { 0.0 };
            assert!(
                (got[t * 10 + i] as f64 - want).abs() < 1e-4,
                "token {t} latent {i}"
            );
        }
    }
}

#[test]
fn broken_sae_files_give_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::from_env(false).unwrap();
    let raw = random_raw(4, 8, 6);
    let cfg = serde_json::json!({"d_in": 4, "d_sae": 9, "hook_name": "blocks.0.hook_resid_pre"});
    write_saelens(dir.path(), &raw, cfg, false);
    let files = SaeFiles::resolve(&Location::Local(dir.path().to_path_buf()), "", &hub).unwrap();
    let err = format!(
        "{:#}",
        Sae::load(&files, &SaeDefaults::default(), &Device::Cpu)
            .err()
            .unwrap()
    );
    assert!(
        err.contains("d_sae = 9") && err.contains("8 columns"),
        "{err}"
    );

    std::fs::write(
        dir.path().join("sae_weights.safetensors"),
        b"\x10\x00\x00\x00\x00\x00\x00\x00{\"a\":",
    )
    .unwrap();
    let err = format!(
        "{:#}",
        Sae::load(&files, &SaeDefaults::default(), &Device::Cpu)
            .err()
            .unwrap()
    );
    assert!(err.contains("not a valid safetensors file"), "{err}");

    let empty = tempfile::tempdir().unwrap();
    let err = format!(
        "{:#}",
        SaeFiles::resolve(&Location::Local(empty.path().to_path_buf()), "", &hub).unwrap_err()
    );
    assert!(err.contains("neither cfg.json"), "{err}");
}

/// The golden TopK SAEs that SAELens 6.54.12 itself built and saved (one random SAE, d_in 16,
/// d_sae 64, k 4, decoder norms 0.1–2.0, saved once with `rescale_acts_by_decoder_norm` false
/// and once true; scripts/golden/gen_topk_golden.py), with SAELens' encodings of 64 inputs.
/// Both rules pick different latents on every one of these rows, so selecting on the wrong
/// pre-activations cannot pass. Each SAE must pick exactly SAELens' active set; its folded
/// activations must equal SAELens' times the decoder norms (unscaled: SAELens' encode is
/// unfolded) or SAELens' encode itself (scaled: it already multiplies by the norms), within
/// 1e-5 of the row's largest activation (at least 1): f32 on both sides, summed in another order.
#[test]
fn topk_selects_its_latents_by_its_own_rule_as_saelens_does() {
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden");
    let t = candle_core::safetensors::load(golden.join("saelens_topk.safetensors"), &Device::Cpu)
        .unwrap();
    let f32s = |name: &str| t[name].flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let (rows, d_sae, k) = (64, 64, 4);
    let x = &t["x"];
    let golden_norms = f32s("decoder_norms");
    for (name, rule) in [("unscaled", "unscaled"), ("scaled", "decoder-norm-scaled")] {
        let sae = load(
            &golden.join(format!("topk_sae_{name}")),
            &SaeDefaults::default(),
        );
        // SAELens 6 keeps the hook under `metadata`.
        assert_eq!(sae.cfg.hook_name, "blocks.0.hook_resid_pre");
        assert_eq!(sae.selection_rule(), Some(rule), "{name}");
        for (a, b) in sae.decoder_norms.iter().zip(&golden_norms) {
            assert!((a - b).abs() <= 1e-6 * b, "{name}: decoder norm {a} vs {b}");
        }
        let got = sae
            .encode(x)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let want = f32s(&format!("{name}.folded"));
        let active = t[format!("{name}.active").as_str()]
            .flatten_all()
            .unwrap()
            .to_vec1::<i64>()
            .unwrap();
        let mut fired = 0;
        for r in 0..rows {
            let got_row = &got[r * d_sae..(r + 1) * d_sae];
            let want_row = &want[r * d_sae..(r + 1) * d_sae];
            let ours: Vec<i64> = (0..d_sae as i64)
                .filter(|&i| got_row[i as usize] > 0.0)
                .collect();
            let theirs: Vec<i64> = active[r * k..(r + 1) * k]
                .iter()
                .copied()
                .filter(|&i| i >= 0)
                .collect();
            assert_eq!(ours, theirs, "{name}: active latents of row {r}");
            fired += ours.len();
            let scale = want_row.iter().fold(1f32, |m, v| m.max(v.abs()));
            for i in 0..d_sae {
                assert!(
                    (got_row[i] - want_row[i]).abs() <= 1e-5 * scale,
                    "{name}: row {r} latent {i}: {} vs SAELens {}",
                    got_row[i],
                    want_row[i]
                );
            }
        }
        assert!(fired > rows * 2, "{name}: only {fired} activations");
    }
}
