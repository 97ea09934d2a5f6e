//! Every hook of every layer of the RMSNorm decoder families against Hugging Face
//! transformers: Llama, Gemma 2, Gemma 3 (text, and the multimodal layout rebuilt from it),
//! Qwen3, Llama 3.x RoPE scaling, Mistral, Gemma 1 (multi-query) and Qwen3 MoE (routed experts).
//!
//! `tests/fixtures/tiny-NAME/` are random-initialised models saved by `save_pretrained`;
//! `tests/fixtures/golden/NAME_tiny_hooks.safetensors` hold the tensors transformers' modules
//! compute at each hook, captured with forward hooks (`scripts/golden/gen_decoder_golden.py`).
//! Tolerance: max |ours − theirs| ≤ 1e-4 × max |theirs|, on the f32 CPU kernels and on the
//! candle-tensor path in f64.

use crate::common::golden::{every_hook, fixtures, golden, max_rel_err};
use candle_core::{DType, Device, Tensor};
use saecooc::hub::{Hub, Location};
use saecooc::model::{load_model_as, HookPoint, ModelFiles};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::Path;

/// The tiny models of `tests/fixtures/`, one per family.
pub const FAMILIES: [&str; 8] = [
    "llama",
    "gemma2",
    "gemma3",
    "qwen3",
    "llama3",
    "mistral",
    "gemma",
    "qwen3_moe",
];

fn files(path: &Path) -> ModelFiles {
    let hub = Hub::from_env(false).unwrap();
    ModelFiles::resolve(&Location::Local(path.to_path_buf()), &hub).unwrap()
}

/// Checks every hook of the model at `model_path` in `dtype` against the golden file `name`;
/// returns the largest relative error.
pub fn check_every_hook(model_path: &Path, name: &str, dtype: DType) -> f32 {
    let g = golden(name);
    let tokens = g["tokens"].to_dtype(DType::U32).unwrap();
    let files = files(model_path);
    let mut worst = 0f32;
    for hook in every_hook(3) {
        let point = HookPoint::parse(&hook).unwrap();
        let model = load_model_as(&files, point, &Device::Cpu, dtype).unwrap();
        let ours = model.activations(&tokens).unwrap();
        assert_eq!(ours.dtype(), dtype, "{name} {hook}");
        let theirs = &g[&hook];
        assert_eq!(model.width(), theirs.dim(2).unwrap(), "{name} {hook} width");
        let err = max_rel_err(&ours.to_dtype(DType::F32).unwrap(), theirs);
        assert!(
            err <= 1e-4,
            "{name} {hook} ({dtype:?}): max relative error {err}"
        );
        worst = worst.max(err);
    }
    eprintln!("{name} {dtype:?}: every hook within {worst:e} of transformers");
    worst
}

#[test]
fn every_family_matches_transformers_at_every_hook() {
    for name in FAMILIES {
        let dir = fixtures().join(format!("tiny-{name}"));
        check_every_hook(&dir, name, DType::F32);
    }
}

#[test]
fn the_tensor_path_matches_transformers_at_every_hook() {
    for name in FAMILIES {
        let dir = fixtures().join(format!("tiny-{name}"));
        check_every_hook(&dir, name, DType::F64);
    }
}

/// tiny-gemma3 rewritten as a multimodal `gemma3` checkpoint in `dir`: its config nested as
/// `text_config`, its weights renamed from `model.` to `prefix.`.
fn write_multimodal_gemma3(dir: &Path, text_config: Value, prefix: &str) {
    let source = fixtures().join("tiny-gemma3");
    let weights =
        candle_core::safetensors::load(source.join("model.safetensors"), &Device::Cpu).unwrap();
    let renamed: HashMap<String, Tensor> = weights
        .into_iter()
        .map(|(name, t)| match name.strip_prefix("model.") {
            Some(rest) => (format!("{prefix}.{rest}"), t),
            None => (name, t),
        })
        .collect();
    candle_core::safetensors::save(&renamed, dir.join("model.safetensors")).unwrap();
    let config = json!({"model_type": "gemma3", "architectures": ["Gemma3ForConditionalGeneration"],
                        "text_config": text_config, "vision_config": {"model_type": "siglip_vision_model"}});
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
}

/// tiny-gemma3's `config.json` as transformers 4 wrote Gemma 3 configs: `rope_theta`,
/// `rope_local_base_freq`, `rope_scaling` and `sliding_window_pattern` instead of
/// `rope_parameters` and `layer_types`.
fn gemma3_config_transformers_4() -> Value {
    let text = std::fs::read_to_string(fixtures().join("tiny-gemma3/config.json")).unwrap();
    let mut cfg: Value = serde_json::from_str(&text).unwrap();
    let obj = cfg.as_object_mut().unwrap();
    obj.remove("rope_parameters");
    obj.remove("layer_types");
    obj.insert("rope_theta".into(), json!(1_000_000.0));
    obj.insert("rope_local_base_freq".into(), json!(10_000.0));
    obj.insert(
        "rope_scaling".into(),
        json!({"rope_type": "linear", "factor": 8.0}),
    );
    // Layers 0 and 2 slide, layer 1 is global: every second layer is global.
    obj.insert("sliding_window_pattern".into(), json!(2));
    cfg
}

#[test]
fn multimodal_gemma3_reads_its_language_model() {
    let new_config: Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("tiny-gemma3/config.json")).unwrap(),
    )
    .unwrap();
    for (text_config, prefix) in [
        (new_config, "model.language_model"),
        (gemma3_config_transformers_4(), "language_model.model"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        write_multimodal_gemma3(dir.path(), text_config, prefix);
        check_every_hook(dir.path(), "gemma3", DType::F32);
    }
}

#[test]
fn gemma3_text_config_of_transformers_4_reads_the_same() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        fixtures().join("tiny-gemma3/model.safetensors"),
        dir.path().join("model.safetensors"),
    )
    .unwrap();
    let config = gemma3_config_transformers_4().to_string();
    std::fs::write(dir.path().join("config.json"), config).unwrap();
    check_every_hook(dir.path(), "gemma3", DType::F32);
}

#[test]
fn rope_types_saecooc_cannot_compute_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let source = fixtures().join("tiny-llama3");
    std::fs::copy(
        source.join("model.safetensors"),
        dir.path().join("model.safetensors"),
    )
    .unwrap();
    let text = std::fs::read_to_string(source.join("config.json")).unwrap();
    let mut cfg: Value = serde_json::from_str(&text).unwrap();
    cfg["rope_parameters"]["rope_type"] = json!("yarn");
    std::fs::write(dir.path().join("config.json"), cfg.to_string()).unwrap();
    let hook = HookPoint::parse("blocks.0.hook_resid_post").unwrap();
    let err = match load_model_as(&files(dir.path()), hook, &Device::Cpu, DType::F32) {
        Ok(_) => panic!("yarn RoPE was accepted"),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        err.contains("config.json: rope_type 'yarn' is not supported yet"),
        "{err}"
    );
}

#[test]
fn the_forward_pass_stops_at_the_hook() {
    let g = golden("gemma3");
    let tokens = g["tokens"].to_dtype(DType::U32).unwrap();
    let source = fixtures().join("tiny-gemma3");
    let weights =
        candle_core::safetensors::load(source.join("model.safetensors"), &Device::Cpu).unwrap();
    // Without block 2 and the final norm the model still reaches blocks.2.hook_resid_pre.
    let kept: HashMap<String, Tensor> = weights
        .into_iter()
        .filter(|(name, _)| !name.contains("layers.2.") && name != "model.norm.weight")
        .collect();
    let dir = tempfile::tempdir().unwrap();
    candle_core::safetensors::save(&kept, dir.path().join("model.safetensors")).unwrap();
    std::fs::copy(source.join("config.json"), dir.path().join("config.json")).unwrap();
    let files = files(dir.path());
    let load = |hook: &str| {
        let point = HookPoint::parse(hook).unwrap();
        load_model_as(&files, point, &Device::Cpu, DType::F32)
    };
    let hook = "blocks.2.hook_resid_pre";
    let ours = load(hook).unwrap().activations(&tokens).unwrap();
    let err = max_rel_err(&ours, &g[hook]);
    assert!(err <= 1e-4, "{hook}: max relative error {err}");
    // ... but any hook inside block 2 names its missing tensors.
    let err = format!("{:#}", load("blocks.2.attn.hook_z").err().unwrap());
    assert!(err.contains("layers.2."), "{err}");
}
