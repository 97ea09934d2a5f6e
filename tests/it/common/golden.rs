//! The golden forward passes of `tests/fixtures/`: tiny random models saved by transformers'
//! `save_pretrained`, and transformers' hook values for a fixed token batch.

use super::repo_path;
use candle_core::{Device, Tensor};
use std::collections::HashMap;
use std::path::PathBuf;

/// `tests/fixtures`.
pub fn fixtures() -> PathBuf {
    repo_path("tests/fixtures")
}

/// transformers' values at every hook of the tiny `name` model.
pub fn golden(name: &str) -> HashMap<String, Tensor> {
    candle_core::safetensors::load(
        fixtures().join(format!("golden/{name}_tiny_hooks.safetensors")),
        &Device::Cpu,
    )
    .unwrap()
}

/// max |ours − theirs| / max |theirs|.
pub fn max_rel_err(ours: &Tensor, theirs: &Tensor) -> f32 {
    assert_eq!(ours.dims(), theirs.dims());
    let diff = (ours - theirs).unwrap().abs().unwrap().max_all().unwrap();
    let scale = theirs.abs().unwrap().max_all().unwrap();
    diff.to_scalar::<f32>().unwrap() / scale.to_scalar::<f32>().unwrap()
}

/// `hook_embed` and every hook of layers `0..n_layers`, TransformerLens' names.
pub fn every_hook(n_layers: usize) -> Vec<String> {
    let kinds = [
        "hook_resid_pre",
        "hook_resid_mid",
        "hook_resid_post",
        "hook_attn_out",
        "hook_mlp_out",
        "attn.hook_z",
        "ln2.hook_normalized",
    ];
    std::iter::once("hook_embed".to_string())
        .chain((0..n_layers).flat_map(|l| kinds.map(|k| format!("blocks.{l}.{k}"))))
        .collect()
}
