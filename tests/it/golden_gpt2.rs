//! GPT-2 forward pass against Hugging Face transformers and TransformerLens.
//!
//! `tests/fixtures/tiny-gpt2/` is a random-initialised GPT-2 (3 layers, d 64, 4 heads, vocab
//! 1000) saved by `GPT2LMHeadModel.save_pretrained`; `tests/fixtures/golden/gpt2_tiny_hooks.safetensors`
//! holds, for a fixed token batch, transformers' residual stream before and after every block,
//! transformers' values at the other hooks (`hf.*`) and TransformerLens' `run_with_cache` of the
//! same weights with `from_pretrained`'s processing at every hook (`tl.*`). All come from
//! `scripts/golden/gen_gpt2_golden.py`. Tolerance: max |ours − theirs| ≤ 1e-4 × max |theirs| at
//! every hook.

use crate::common;
use crate::common::golden::{fixtures, max_rel_err};
use candle_core::{DType, Device, Tensor};
use saecooc::hub::{Hub, Location};
use saecooc::model::{load_model, transformer_lens_view, HookPoint, ModelFiles};
use std::collections::HashMap;
use std::path::Path;

fn golden() -> HashMap<String, Tensor> {
    common::golden::golden("gpt2")
}

fn tokens(golden: &HashMap<String, Tensor>) -> Tensor {
    golden["tokens"].to_dtype(DType::U32).unwrap()
}

fn residual_at(model_dir: &Path, hook: &str, tokens: &Tensor) -> Tensor {
    let hub = Hub::from_env(false).unwrap();
    let files = ModelFiles::resolve(&Location::Local(model_dir.to_path_buf()), &hub).unwrap();
    let model = load_model(&files, HookPoint::parse(hook).unwrap(), &Device::Cpu).unwrap();
    model.activations(tokens).unwrap()
}

fn hooks() -> Vec<String> {
    (0..3)
        .flat_map(|l| {
            [
                format!("blocks.{l}.hook_resid_pre"),
                format!("blocks.{l}.hook_resid_post"),
            ]
        })
        .collect()
}

#[test]
fn every_hook_matches_transformers() {
    let golden = golden();
    let tokens = tokens(&golden);
    for hook in hooks() {
        let ours = residual_at(&fixtures().join("tiny-gpt2"), &hook, &tokens);
        let err = max_rel_err(&ours, &golden[&hook]);
        assert!(err <= 1e-4, "{hook}: max relative error {err}");
    }
}

/// Every hook saecooc reads, TransformerLens' names.
fn every_hook() -> Vec<String> {
    crate::common::golden::every_hook(3)
}

/// At every hook the model's activations equal transformers' (where the golden file has them)
/// and, as TransformerLens processes them, TransformerLens' own.
#[test]
fn every_hook_matches_transformers_and_transformer_lens() {
    let golden = golden();
    let tokens = tokens(&golden);
    let hub = Hub::from_env(false).unwrap();
    let dir = fixtures().join("tiny-gpt2");
    let files = ModelFiles::resolve(&Location::Local(dir), &hub).unwrap();
    for hook in every_hook() {
        let model = load_model(&files, HookPoint::parse(&hook).unwrap(), &Device::Cpu).unwrap();
        let ours = model.activations(&tokens).unwrap();
        assert_eq!(model.width(), ours.dim(2).unwrap(), "{hook}");
        if let Some(hf) = golden.get(&format!("hf.{hook}")) {
            let err = max_rel_err(&ours, hf);
            assert!(
                err <= 1e-4,
                "{hook}: max relative error {err} against transformers"
            );
        }
        let processed = transformer_lens_view(&*model, &ours).unwrap();
        let err = max_rel_err(&processed, &golden[&format!("tl.{hook}")]);
        assert!(
            err <= 1e-4,
            "{hook}: max relative error {err} against TransformerLens"
        );
    }
}

/// Copies the fixture with tensor names rewritten by `rename` (None drops the tensor).
fn rewritten_copy(dir: &Path, rename: impl Fn(&str) -> Option<String>) {
    std::fs::create_dir_all(dir).unwrap();
    let src = fixtures().join("tiny-gpt2");
    std::fs::copy(src.join("config.json"), dir.join("config.json")).unwrap();
    let tensors =
        candle_core::safetensors::load(src.join("model.safetensors"), &Device::Cpu).unwrap();
    let renamed: HashMap<String, Tensor> = tensors
        .into_iter()
        .filter_map(|(k, t)| rename(&k).map(|k| (k, t)))
        .collect();
    candle_core::safetensors::save(&renamed, dir.join("model.safetensors")).unwrap();
}

#[test]
fn weights_with_and_without_the_transformer_prefix_agree() {
    let golden = golden();
    let tokens = tokens(&golden);
    let dir = tempfile::tempdir().unwrap();
    // The fixture carries `transformer.`; the hub's openai-community/gpt2 does not.
    rewritten_copy(dir.path(), |k| {
        Some(k.strip_prefix("transformer.").unwrap_or(k).to_string())
    });
    let hook = "blocks.2.hook_resid_post";
    let err = max_rel_err(&residual_at(dir.path(), hook, &tokens), &golden[hook]);
    assert!(err <= 1e-4, "unprefixed: {err}");
}

#[test]
fn the_forward_pass_stops_at_the_hook() {
    let golden = golden();
    let tokens = tokens(&golden);
    let dir = tempfile::tempdir().unwrap();
    // Without block 2 and the final layer norm the model still reaches blocks.2.hook_resid_pre.
    rewritten_copy(dir.path(), |k| {
        (!k.contains("h.2.") && !k.contains("ln_f")).then(|| k.to_string())
    });
    let hook = "blocks.2.hook_resid_pre";
    let err = max_rel_err(&residual_at(dir.path(), hook, &tokens), &golden[hook]);
    assert!(err <= 1e-4, "{err}");
    // ... but asking for a hook after block 2 names the missing tensor.
    let hub = Hub::from_env(false).unwrap();
    let files = ModelFiles::resolve(&Location::Local(dir.path().to_path_buf()), &hub).unwrap();
    let err = load_model(
        &files,
        HookPoint::parse("blocks.2.hook_resid_post").unwrap(),
        &Device::Cpu,
    )
    .err()
    .unwrap();
    assert!(format!("{err:#}").contains("h.2."), "{err:#}");
}
