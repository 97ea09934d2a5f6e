//! Centring of the residual stream follows the model (TransformerLens centres LayerNorm models),
//! not the SAE's file format: the same SAE as a SAELens folder and as a Gemma Scope
//! `params.npz` gives identical counts on the synthetic GPT-2; the SAE's cfg.json and
//! `[source] center_writing_weights` can turn centring off, and run.json says which rule
//! decided.

use crate::common::{assert_ok, config_text, files_under, fixture, results_dir, run_cooc};
use candle_core::Device;
use saecooc::io::npz::NpzWriter;
use saecooc::synth::SynthPaths;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

const SAE_ID: &str = "blocks.1.hook_resid_pre";

/// The synthetic SAE's weights, with `b_dec` folded into `b_enc` (b_enc − b_dec·W_enc) so the
/// SAE reads the stream without `apply_b_dec_to_input`, as a Gemma Scope SAE does.
struct Weights {
    d_in: usize,
    d_sae: usize,
    w_enc: Vec<f32>,
    b_enc: Vec<f32>,
    w_dec: Vec<f32>,
    b_dec: Vec<f32>,
}

fn read_synthetic_sae(sae_dir: &Path) -> Weights {
    let loaded =
        candle_core::safetensors::load(sae_dir.join("sae_weights.safetensors"), &Device::Cpu)
            .unwrap();
    let get = |k: &str| -> (Vec<usize>, Vec<f32>) {
        let t = &loaded[k];
        (
            t.dims().to_vec(),
            t.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
        )
    };
    let (shape, w_enc) = get("W_enc");
    let (d_in, d_sae) = (shape[0], shape[1]);
    let (_, b_enc) = get("b_enc");
    let (_, w_dec) = get("W_dec");
    let (_, b_dec) = get("b_dec");
    let b_enc = (0..d_sae)
        .map(|i| {
            let shift: f64 = (0..d_in)
                .map(|j| b_dec[j] as f64 * w_enc[j * d_sae + i] as f64)
                .sum();
            (b_enc[i] as f64 - shift) as f32
        })
        .collect();
    Weights {
        d_in,
        d_sae,
        w_enc,
        b_enc,
        w_dec,
        b_dec,
    }
}

/// The weights as a SAELens folder (JumpReLU, zero threshold, no `b_dec` on the input);
/// `center` is written into `model_from_pretrained_kwargs` when given.
fn write_saelens(dir: &Path, w: &Weights, center: Option<bool>) {
    std::fs::create_dir_all(dir).unwrap();
    let cpu = Device::Cpu;
    let t = |v: &[f32], shape: &[usize]| candle_core::Tensor::from_slice(v, shape, &cpu).unwrap();
    let mut tensors = HashMap::new();
    tensors.insert("W_enc".to_string(), t(&w.w_enc, &[w.d_in, w.d_sae]));
    tensors.insert("b_enc".to_string(), t(&w.b_enc, &[w.d_sae]));
    tensors.insert("W_dec".to_string(), t(&w.w_dec, &[w.d_sae, w.d_in]));
    tensors.insert("b_dec".to_string(), t(&w.b_dec, &[w.d_in]));
    tensors.insert("threshold".to_string(), t(&vec![0.0; w.d_sae], &[w.d_sae]));
    candle_core::safetensors::save(&tensors, dir.join("sae_weights.safetensors")).unwrap();
    let mut cfg = serde_json::json!({
        "architecture": "jumprelu",
        "d_in": w.d_in,
        "d_sae": w.d_sae,
        "hook_name": SAE_ID,
        "apply_b_dec_to_input": false,
        "normalize_activations": "none",
        "context_size": 32,
    });
    if let Some(c) = center {
        cfg["model_from_pretrained_kwargs"] = serde_json::json!({ "center_writing_weights": c });
    }
    std::fs::write(dir.join("cfg.json"), cfg.to_string()).unwrap();
}

/// The same weights as a Gemma Scope `params.npz` (np.savez layout; JumpReLU, zero threshold).
fn write_params_npz(dir: &Path, w: &Weights) {
    std::fs::create_dir_all(dir).unwrap();
    let mut npz = NpzWriter::create(&dir.join("params.npz"), false).unwrap();
    npz.add_array("W_enc", &[w.d_in, w.d_sae], &w.w_enc)
        .unwrap();
    npz.add_array("W_dec", &[w.d_sae, w.d_in], &w.w_dec)
        .unwrap();
    npz.add_array("b_enc", &[w.d_sae], &w.b_enc).unwrap();
    npz.add_array("b_dec", &[w.d_in], &w.b_dec).unwrap();
    npz.add_array("threshold", &[w.d_sae], &vec![0f32; w.d_sae])
        .unwrap();
    npz.finish().unwrap();
}

/// Runs `cooc` in `dir` with the SAE under `sae_root/{SAE_ID}` and `source_extra` appended to
/// `[source]`; returns the results folder.
fn cooc(dir: &Path, p: &SynthPaths, sae_root: &Path, source_extra: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let paths = SynthPaths {
        model: p.model.clone(),
        sae: sae_root.join(SAE_ID),
        corpus: p.corpus.clone(),
    };
    let config =
        config_text(&paths, 6, "").replace("\n[run]\n", &format!("{source_extra}\n\n[run]\n"));
    assert!(config.contains(source_extra));
    let (out, results) = run_cooc(dir, &config);
    assert_ok(&out);
    results_dir(&results, 6)
}

/// The count files (totals, Jaccard, per-latent activations) of a results folder, by name.
fn count_files(d: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = files_under(d)
        .into_iter()
        .filter(|f| f.extension().is_some_and(|e| e == "npz"))
        .map(|f| {
            (
                f.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&f).unwrap(),
            )
        })
        .collect();
    files.sort();
    assert_eq!(files.len(), 9, "{:?}", files_under(d));
    files
}

fn sae_info(d: &Path) -> serde_json::Value {
    let run: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("run.json")).unwrap()).unwrap();
    run["sae"].clone()
}

#[test]
fn a_params_npz_sae_on_a_layernorm_model_reads_the_centred_stream() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = fixture(d);
    let w = read_synthetic_sae(&p.sae);
    write_saelens(&d.join("lens").join(SAE_ID), &w, None);
    write_params_npz(&d.join("scope").join(SAE_ID), &w);

    let lens = cooc(&d.join("a"), &p, &d.join("lens"), "");
    let scope = cooc(&d.join("b"), &p, &d.join("scope"), "");
    assert!(sae_info(&scope)["source"]
        .as_str()
        .unwrap()
        .ends_with("params.npz"));
    for info in [sae_info(&lens), sae_info(&scope)] {
        assert_eq!(info["residual_centred"], true, "{info}");
        assert_eq!(info["centring_rule"], "model layer norm", "{info}");
    }
    let (a, b) = (count_files(&lens), count_files(&scope));
    for ((name_a, bytes_a), (name_b, bytes_b)) in a.iter().zip(&b) {
        assert_eq!(name_a, name_b);
        assert!(
            bytes_a == bytes_b,
            "{name_a} differs between the SAELens folder and params.npz"
        );
    }
}

#[test]
fn centring_can_be_turned_off_by_the_sae_cfg_or_source() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = fixture(d);
    let w = read_synthetic_sae(&p.sae);
    write_saelens(&d.join("lens").join(SAE_ID), &w, None);
    write_saelens(&d.join("lens_off").join(SAE_ID), &w, Some(false));
    write_params_npz(&d.join("scope").join(SAE_ID), &w);

    let centred = count_files(&cooc(&d.join("a"), &p, &d.join("lens"), ""));

    // [source] center_writing_weights = false: the raw stream, other counts, recorded.
    let off = cooc(
        &d.join("b"),
        &p,
        &d.join("scope"),
        "center_writing_weights = false",
    );
    let info = sae_info(&off);
    assert_eq!(info["residual_centred"], false, "{info}");
    assert_eq!(info["centring_rule"], "[source] override", "{info}");
    let raw = count_files(&off);
    assert_ne!(centred, raw, "centring should change the counts");

    // The SAE's cfg.json saying false gives the same raw-stream counts.
    let cfg_off = cooc(&d.join("c"), &p, &d.join("lens_off"), "");
    let info = sae_info(&cfg_off);
    assert_eq!(info["residual_centred"], false, "{info}");
    assert_eq!(info["centring_rule"], "SAE cfg", "{info}");
    assert!(count_files(&cfg_off) == raw);

    // [source] wins over the SAE's cfg.
    let forced = cooc(
        &d.join("e"),
        &p,
        &d.join("lens_off"),
        "center_writing_weights = true",
    );
    let info = sae_info(&forced);
    assert_eq!(info["residual_centred"], true, "{info}");
    assert_eq!(info["centring_rule"], "[source] override", "{info}");
    assert!(count_files(&forced) == centred);
}
