//! The `config.json` of Gemma 3: `gemma3_text` (270m, 1b) and `gemma3` (4b and larger,
//! multimodal: the language model's keys nested under `text_config`, its weights under their
//! own prefix, see `decoder.rs`). Gemma 2's layout without soft-capping by default, plus an
//! RMSNorm over each query and key head; sliding-window layers (`layer_types`, else all but
//! every `sliding_window_pattern`-th) use RoPE base `rope_local_base_freq`, global layers
//! `rope_theta` with their own `rope_scaling` (linear on 4b and larger). transformers 5 writes
//! both RoPEs as `rope_parameters: {sliding_attention: {...}, full_attention: {...}}`.

use super::decoder::{DecoderConfig, Family};
use super::rope::RopeSpec;
use crate::json_keys::JsonKeys;
use anyhow::{Context, Result};

/// transformers' `Gemma3TextConfig` defaults for the sizes a `text_config` may omit.
const DEFAULTS: &[(&str, usize)] = &[
    ("vocab_size", 262_208),
    ("hidden_size", 2304),
    ("intermediate_size", 9216),
    ("num_hidden_layers", 26),
    ("num_attention_heads", 8),
    ("num_key_value_heads", 4),
    ("head_dim", 256),
    ("max_position_embeddings", 131_072),
];

/// Reads a `gemma3_text` `config.json` (or a multimodal one's `text_config`).
pub fn config(keys: &JsonKeys) -> Result<DecoderConfig> {
    let mut cfg = DecoderConfig::common(keys, Family::Gemma3, DEFAULTS)?;
    cfg.sliding_window = Some(keys.positive("sliding_window")?.unwrap_or(4096));
    let pattern = keys.positive("sliding_window_pattern")?.unwrap_or(6);
    cfg.read_sliding_layers(keys, |layer| (layer + 1) % pattern != 0)?;
    let q = keys
        .positive_number("query_pre_attn_scalar")?
        .unwrap_or(256.0);
    cfg.attn_scale = q.powf(-0.5);
    cfg.attn_softcap = keys.positive_number("attn_logit_softcapping")?;
    cfg.final_softcap = keys.positive_number("final_logit_softcapping")?;
    let (global, local) = ropes(keys)?;
    cfg.rope = global;
    cfg.local_rope = Some(local);
    Ok(cfg)
}

/// Reads a multimodal `gemma3` `config.json`: its `text_config`.
pub fn multimodal_config(keys: &JsonKeys) -> Result<DecoderConfig> {
    let text = keys.object("text_config")?.with_context(|| {
        format!(
            "{}: a gemma3 (multimodal) config.json needs a text_config object",
            keys.file()
        )
    })?;
    config(&text)
}

/// The RoPE of the global and of the sliding-window layers.
fn ropes(keys: &JsonKeys) -> Result<(RopeSpec, RopeSpec)> {
    let per_type = keys.object("rope_parameters")?;
    let of_type = |layer_type: &'static str| -> Result<Option<JsonKeys>> {
        Ok(match &per_type {
            Some(p) => p.object(layer_type)?,
            None => None,
        })
    };
    let global = match of_type("full_attention")? {
        Some(p) => RopeSpec::from_params(Some(&p), 1_000_000.0)?,
        None => RopeSpec::from_config(keys, 1_000_000.0)?,
    };
    let local = match of_type("sliding_attention")? {
        Some(p) => RopeSpec::from_params(Some(&p), 10_000.0)?,
        None => RopeSpec::plain(
            keys.positive_number("rope_local_base_freq")?
                .unwrap_or(10_000.0),
        ),
    };
    Ok((global, local))
}
