//! Many hooks in one forward pass: a model loaded to its last layer's `hook_resid_post` reads
//! every hook of every layer in one `activations_at` call, and each result equals, bit for bit,
//! what a model loaded to that hook alone returns (no tolerance: the bits of every value), on
//! the f32 CPU kernels and on the candle-tensor path (f64 and bf16), for every family of
//! `tests/fixtures` (GPT-2, GPT-NeoX parallel and sequential, the RMSNorm decoders).

use crate::common::golden::{every_hook, fixtures};
use candle_core::{DType, Device, Tensor};
use saecooc::hub::{Hub, Location};
use saecooc::model::{
    load_model_as, load_model_for, transformer_lens_view, transformer_lens_view_at, HookKind,
    HookPoint, ModelFiles, ResidualModel,
};
use std::path::Path;

fn files(dir: &Path) -> ModelFiles {
    let hub = Hub::from_env(false).unwrap();
    ModelFiles::resolve(&Location::Local(dir.to_path_buf()), &hub).unwrap()
}

/// The bits of every value of `t` (upcast to f64, which is exact from f32 and bf16).
fn bits(t: &Tensor) -> Vec<u64> {
    let values = t.to_dtype(DType::F64).unwrap().flatten_all().unwrap();
    values
        .to_vec1::<f64>()
        .unwrap()
        .into_iter()
        .map(f64::to_bits)
        .collect()
}

/// Every hook of the 3-layer fixtures (`hook_resid_mid` only where the blocks have one),
/// in no order (the deepest not first), with a duplicate.
fn hooks(has_resid_mid: bool) -> Vec<HookPoint> {
    let all: Vec<HookPoint> = every_hook(3)
        .iter()
        .map(|h| HookPoint::parse(h).unwrap())
        .filter(|h| has_resid_mid || h.kind != HookKind::ResidMid)
        .collect();
    let odd = all.iter().skip(1).step_by(2).rev();
    let mut shuffled: Vec<HookPoint> = odd.chain(all.iter().step_by(2)).copied().collect();
    shuffled.push(all[5]);
    assert_eq!(shuffled.len(), all.len() + 1);
    shuffled
}

/// Checks the model of `dir` in `dtype`: every hook read in one pass equals its single-hook
/// model's activations, width, value bias and TransformerLens view, bit for bit.
fn check_one_pass(dir: &Path, dtype: DType, has_resid_mid: bool) {
    let name = dir.display();
    let files = files(dir);
    let hooks = hooks(has_resid_mid);
    let ids: Vec<u32> = (0..2 * 9).map(|i| (i * 37 + 5) % 1000).collect();
    let tokens = Tensor::from_vec(ids, (2, 9), &Device::Cpu).unwrap();
    let model = load_model_for(&files, &hooks, &Device::Cpu, dtype).unwrap();
    assert_eq!(model.hook().to_string(), "blocks.2.hook_resid_post");
    let all = model.activations_at(&tokens, &hooks).unwrap();
    assert_eq!(all.len(), hooks.len());
    for (&hook, acts) in hooks.iter().zip(&all) {
        let alone = load_model_as(&files, hook, &Device::Cpu, dtype).unwrap();
        let expected = alone.activations(&tokens).unwrap();
        let at = format!("{name} {dtype:?} {hook}");
        assert_eq!(acts.dims(), expected.dims(), "{at}");
        assert_eq!(acts.dtype(), dtype, "{at}");
        assert!(bits(acts) == bits(&expected), "{at}: values differ");
        assert_eq!(model.width_at(hook), alone.width(), "{at} width");
        let bias = |m: &dyn ResidualModel, h| m.z_value_bias_at(h).unwrap().map(|b| bits(&b));
        assert_eq!(bias(&*model, hook), bias(&*alone, hook), "{at} value bias");
        if hook.kind == HookKind::Z && model.uses_layer_norm() {
            assert!(bias(&*model, hook).is_some(), "{at}: no value bias");
        }
        let view = transformer_lens_view_at(&*model, hook, acts).unwrap();
        let alone_view = transformer_lens_view(&*alone, &expected).unwrap();
        assert!(
            bits(&view) == bits(&alone_view),
            "{at}: TransformerLens views differ"
        );
    }
}

/// tiny-pythia with sequential blocks, written in `dir`.
fn sequential_pythia(dir: &Path) {
    let src = fixtures().join("tiny-pythia");
    let text = std::fs::read_to_string(src.join("config.json")).unwrap();
    let mut cfg: serde_json::Value = serde_json::from_str(&text).unwrap();
    cfg["use_parallel_residual"] = false.into();
    std::fs::write(dir.join("config.json"), cfg.to_string()).unwrap();
    std::fs::copy(src.join("model.safetensors"), dir.join("model.safetensors")).unwrap();
}

#[test]
fn every_hook_read_in_one_pass_equals_its_own_pass_bit_for_bit() {
    let seq = tempfile::tempdir().unwrap();
    sequential_pythia(seq.path());
    // candle's CPU LayerNorm has no f64: the LayerNorm models take the tensor path in bf16.
    let layer_norm = [DType::F32, DType::BF16];
    let mut models = vec![
        (fixtures().join("tiny-gpt2"), true, &layer_norm[..]),
        (fixtures().join("tiny-pythia"), false, &layer_norm),
        (seq.path().to_path_buf(), true, &layer_norm),
    ];
    let rms_norm = [DType::F32, DType::F64, DType::BF16];
    for family in crate::golden_decoder_hooks::FAMILIES {
        models.push((fixtures().join(format!("tiny-{family}")), true, &rms_norm));
    }
    for (dir, has_resid_mid, dtypes) in models {
        for &dtype in dtypes {
            check_one_pass(&dir, dtype, has_resid_mid);
        }
    }
}

#[test]
fn load_model_for_refuses_a_bad_hook_among_good_ones_as_loading_it_alone_does() {
    let hook = |name: &str| HookPoint::parse(name).unwrap();
    let cases = [
        ("tiny-pythia", "blocks.1.hook_resid_mid"),
        ("tiny-llama", "blocks.7.attn.hook_z"),
        ("tiny-gpt2", "blocks.3.hook_resid_pre"),
    ];
    for (fixture, bad) in cases {
        let files = files(&fixtures().join(fixture));
        let hooks = [
            hook("blocks.0.hook_resid_post"),
            hook(bad),
            hook("blocks.2.hook_mlp_out"),
        ];
        let alone = load_model_as(&files, hook(bad), &Device::Cpu, DType::F32);
        let together = load_model_for(&files, &hooks, &Device::Cpu, DType::F32);
        let (alone, together) = (alone.err().unwrap(), together.err().unwrap());
        assert_eq!(format!("{together:#}"), format!("{alone:#}"), "{fixture}");
        assert!(together.to_string().contains(bad), "{fixture}: {together}");
    }
}
