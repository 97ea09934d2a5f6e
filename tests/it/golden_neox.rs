//! GPT-NeoX (Pythia) forward pass against Hugging Face transformers and TransformerLens.
//!
//! `tests/fixtures/tiny-pythia/` is a random-initialised GPT-NeoX (3 layers, d 64, 4 heads of
//! 16 with rotary on the first 4 values, parallel attention and MLP, vocab 1000) saved by
//! `GPTNeoXForCausalLM.save_pretrained`; `tests/fixtures/golden/neox_tiny_hooks.safetensors`
//! holds, for a fixed token batch, transformers' values at every hook (`hf.*`) and
//! TransformerLens' `run_with_cache` with `from_pretrained`'s processing (`tl.*`), and the same
//! for the weights run as sequential blocks (`seq.*`, `use_parallel_residual = false`). All
//! come from `scripts/golden/gen_neox_golden.py` (the CPU kernels run here; the unit tests of
//! `src/model/gpt_neox.rs` check the tensor path against them). Tolerance: max |ours − theirs|
//! ≤ 1e-4 × max |theirs| at every hook.

use crate::common::golden::{fixtures, golden, max_rel_err};
use candle_core::{DType, Device, Tensor};
use saecooc::hub::{Hub, Location};
use saecooc::model::{load_model, transformer_lens_view, HookPoint, ModelFiles};
use std::collections::HashMap;
use std::path::Path;

fn files(dir: &Path) -> ModelFiles {
    let hub = Hub::from_env(false).unwrap();
    ModelFiles::resolve(&Location::Local(dir.to_path_buf()), &hub).unwrap()
}

/// The hooks of the model, TransformerLens' names (`hook_resid_mid` only for sequential blocks).
fn hooks(sequential: bool) -> Vec<String> {
    let mut kinds = vec![
        "hook_resid_pre",
        "hook_resid_post",
        "hook_attn_out",
        "hook_mlp_out",
        "attn.hook_z",
        "ln2.hook_normalized",
    ];
    if sequential {
        kinds.push("hook_resid_mid");
    }
    std::iter::once("hook_embed".to_string())
        .chain((0..3).flat_map(|l| kinds.iter().map(move |k| format!("blocks.{l}.{k}"))))
        .collect()
}

/// Every hook of the model in `dir` against the golden keys under `prefix`.
fn check_every_hook(dir: &Path, prefix: &str) {
    let g = golden("neox");
    let tokens = g["tokens"].to_dtype(DType::U32).unwrap();
    let files = files(dir);
    for hook in hooks(!prefix.is_empty()) {
        let point = HookPoint::parse(&hook).unwrap();
        let model = load_model(&files, point, &Device::Cpu).unwrap();
        let ours = model.activations(&tokens).unwrap();
        assert_eq!(model.width(), ours.dim(2).unwrap(), "{hook}");
        let processed = transformer_lens_view(&*model, &ours).unwrap();
        if let Some(hf) = g.get(&format!("{prefix}hf.{hook}")) {
            let err = max_rel_err(&ours, hf);
            assert!(err <= 1e-4, "{prefix}{hook}: {err} against transformers");
        }
        let err = max_rel_err(&processed, &g[&format!("{prefix}tl.{hook}")]);
        assert!(err <= 1e-4, "{prefix}{hook}: {err} against TransformerLens");
    }
}

/// Copies the fixture with `config.json` changed by `edit` and tensor names rewritten by
/// `rename` (None drops the tensor).
fn edited_copy(
    dir: &Path,
    edit: impl Fn(&mut serde_json::Map<String, serde_json::Value>),
    rename: impl Fn(&str) -> Option<String>,
) {
    let src = fixtures().join("tiny-pythia");
    let text = std::fs::read_to_string(src.join("config.json")).unwrap();
    let mut cfg: serde_json::Value = serde_json::from_str(&text).unwrap();
    edit(cfg.as_object_mut().unwrap());
    std::fs::write(dir.join("config.json"), cfg.to_string()).unwrap();
    let tensors =
        candle_core::safetensors::load(src.join("model.safetensors"), &Device::Cpu).unwrap();
    let kept: HashMap<String, Tensor> = tensors
        .into_iter()
        .filter_map(|(k, t)| rename(&k).map(|k| (k, t)))
        .collect();
    candle_core::safetensors::save(&kept, dir.join("model.safetensors")).unwrap();
}

#[test]
fn every_hook_matches_transformers_and_transformer_lens() {
    let dir = fixtures().join("tiny-pythia");
    check_every_hook(&dir, "");
}

#[test]
fn sequential_blocks_match_at_every_hook() {
    let dir = tempfile::tempdir().unwrap();
    edited_copy(
        dir.path(),
        |cfg| {
            cfg.insert("use_parallel_residual".into(), false.into());
        },
        |k| Some(k.to_string()),
    );
    check_every_hook(dir.path(), "seq.");
}

/// Hub Pythia configs spell the rotary settings `rotary_pct` / `rotary_emb_base`, without
/// `rope_parameters`; a checkpoint saved from the base model has no `gpt_neox.` prefix.
#[test]
fn old_config_keys_and_unprefixed_weights_read_the_same() {
    let g = golden("neox");
    let tokens = g["tokens"].to_dtype(DType::U32).unwrap();
    let dir = tempfile::tempdir().unwrap();
    edited_copy(
        dir.path(),
        |cfg| {
            cfg.remove("rope_parameters");
            cfg.insert("rotary_pct".into(), 0.25.into());
            cfg.insert("rotary_emb_base".into(), 10000.into());
        },
        |k| Some(k.strip_prefix("gpt_neox.").unwrap_or(k).to_string()),
    );
    let hook = "blocks.2.attn.hook_z";
    let err = error_at(&files(dir.path()), hook, &tokens, &g);
    assert!(err <= 1e-4, "old config keys: {err}");
    // Without the rotary settings the default (0.25 of the head) applies.
    let bare = tempfile::tempdir().unwrap();
    edited_copy(
        bare.path(),
        |cfg| {
            cfg.remove("rope_parameters");
        },
        |k| Some(k.to_string()),
    );
    let err = error_at(&files(bare.path()), hook, &tokens, &g);
    assert!(err <= 1e-4, "default rotary_pct: {err}");
}

#[test]
fn parallel_blocks_have_no_resid_mid() {
    let files = files(&fixtures().join("tiny-pythia"));
    let hook = HookPoint::parse("blocks.1.hook_resid_mid").unwrap();
    let err = load_model(&files, hook, &Device::Cpu).err().unwrap();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("use_parallel_residual") && msg.contains("blocks.1.hook_resid_mid"),
        "{msg}"
    );
}

#[test]
fn the_forward_pass_stops_at_the_hook() {
    let g = golden("neox");
    let tokens = g["tokens"].to_dtype(DType::U32).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Without layer 2, the final norm and the head the model still reaches blocks.2.hook_resid_pre.
    edited_copy(
        dir.path(),
        |_| {},
        |k| {
            let dropped = ["layers.2.", "final_layer_norm", "head"];
            (!dropped.iter().any(|d| k.contains(d))).then(|| k.to_string())
        },
    );
    let files = files(dir.path());
    let hook = "blocks.2.hook_resid_pre";
    let model = load_model(&files, HookPoint::parse(hook).unwrap(), &Device::Cpu).unwrap();
    let err = max_rel_err(
        &model.activations(&tokens).unwrap(),
        &g[&format!("hf.{hook}")],
    );
    assert!(err <= 1e-4, "{err}");
    let err = load_model(
        &files,
        HookPoint::parse("blocks.2.attn.hook_z").unwrap(),
        &Device::Cpu,
    )
    .err()
    .unwrap();
    assert!(format!("{err:#}").contains("layers.2."), "{err:#}");
}

/// Max relative error of the model in `files` at `hook` against transformers' golden.
fn error_at(files: &ModelFiles, hook: &str, tokens: &Tensor, g: &HashMap<String, Tensor>) -> f32 {
    let model = load_model(files, HookPoint::parse(hook).unwrap(), &Device::Cpu).unwrap();
    max_rel_err(
        &model.activations(tokens).unwrap(),
        &g[&format!("hf.{hook}")],
    )
}
