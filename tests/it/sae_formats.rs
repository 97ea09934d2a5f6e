//! The SAE formats of SAELens' registry (`conversion_func`): each fixture of
//! `tests/fixtures/sae-formats/FORMAT/` is a tiny random SAE in that format's real file layout,
//! and SAELens' own loader for the format, with `fold_W_dec_norm()`, encoded its inputs
//! (scripts/golden/gen_sae_formats_golden.py). saecooc reads the same files through
//! `SaeFiles::resolve_any` + `Sae::load` and must give the same hook, sizes and activations
//! (and `Sae::read_config`, from headers alone, the same hook, sizes and architecture):
//! max |ours − SAELens| ≤ 1e-4 · max |SAELens| (f32 products summed in another order).

use crate::common::golden::{fixtures, max_rel_err};
use crate::common::read_json;
use candle_core::{Device, Tensor};
use saecooc::hub::{Hub, Location};
use saecooc::sae::{Sae, SaeDefaults, SaeFiles, SaeFormat};

const TOLERANCE: f32 = 1e-4;

/// Loads every case of `format`'s fixture as the registry would describe it and compares
/// its encode with SAELens'. Returns the largest relative error.
fn check_format(format: &str) -> f32 {
    let root = fixtures().join("sae-formats").join(format);
    let cases = read_json(&root.join("cases.json"));
    let golden =
        candle_core::safetensors::load(root.join("golden.safetensors"), &Device::Cpu).unwrap();
    let hub = Hub::from_env(false).unwrap();
    let mut worst = 0f32;
    for (case, want) in cases.as_object().unwrap() {
        let defaults = SaeDefaults {
            format: SaeFormat::from_conversion_func(Some(format)).unwrap(),
            norm_scaling_factor: want["norm_scaling_factor"].as_f64(),
            repo_id: want["repo_id"].as_str().map(String::from),
            ..SaeDefaults::default()
        };
        let folder = want["folder"].as_str().unwrap();
        let files =
            SaeFiles::resolve_any(&Location::Local(root.clone()), &[folder], &hub, &defaults)
                .unwrap_or_else(|e| panic!("{format}/{case}: {e:#}"));
        let sae = Sae::load(&files, &defaults, &Device::Cpu)
            .unwrap_or_else(|e| panic!("{format}/{case}: {e:#}"));
        // SAELens' hook, or its Hugging Face spelling where it records one
        let hooks = [&want["hook_name"], &want["hf_hook_name"]];
        assert!(
            hooks
                .iter()
                .any(|h| h.as_str() == Some(sae.cfg.hook_name.as_str())),
            "{format}/{case}: hook {} is none of {hooks:?}",
            sae.cfg.hook_name
        );
        assert_eq!(sae.cfg.d_in as u64, want["d_in"].as_u64().unwrap());
        assert_eq!(sae.cfg.d_sae as u64, want["d_sae"].as_u64().unwrap());
        let header_only = Sae::read_config(&files, &defaults).unwrap();
        let read =
            |c: &saecooc::sae::SaeConfig| (c.d_in, c.d_sae, c.hook_name.clone(), c.architecture);
        assert_eq!(
            read(&header_only),
            read(&sae.cfg),
            "{format}/{case}: read_config"
        );
        let x = &golden[&format!("{case}.x")];
        let theirs: &Tensor = &golden[&format!("{case}.acts")];
        let active = theirs
            .gt(0f32)
            .unwrap()
            .to_dtype(candle_core::DType::F32)
            .unwrap();
        assert!(active.sum_all().unwrap().to_scalar::<f32>().unwrap() > 0.0);
        let err = max_rel_err(&sae.encode(x).unwrap(), theirs);
        eprintln!("{format}/{case}: max relative error {err:.2e}");
        assert!(err <= TOLERANCE, "{format}/{case}: {err} > {TOLERANCE}");
        worst = worst.max(err);
    }
    worst
}

#[test]
fn gemma_scope_2_encodes_as_saelens_does() {
    check_format("gemma_3");
}

#[test]
fn gemma_scope_encodes_as_saelens_does() {
    check_format("gemma_2");
}

#[test]
fn llama_scope_encodes_as_saelens_does() {
    check_format("llama_scope");
}

#[test]
fn llama_scope_r1_distill_encodes_as_saelens_does() {
    check_format("llama_scope_r1_distill");
}

#[test]
fn dictionary_learning_encodes_as_saelens_does() {
    check_format("dictionary_learning_1");
}

#[test]
fn gemma_scope_transcoders_encode_as_saelens_does() {
    check_format("gemma_2_transcoder");
}

#[test]
fn mwhanna_transcoders_encode_as_saelens_does() {
    check_format("mwhanna_transcoder");
}

#[test]
fn qwen_scope_encodes_as_saelens_does() {
    check_format("qwen_scope");
}

#[test]
fn connor_rob_hook_z_encodes_as_saelens_does() {
    check_format("connor_rob_hook_z");
}

#[test]
fn goodfire_encodes_as_saelens_does() {
    check_format("goodfire");
}

#[test]
fn deepseek_r1_encodes_as_saelens_does() {
    check_format("deepseek_r1");
}
