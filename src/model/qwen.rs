//! The `config.json` of Qwen2 (`qwen2`: the Llama layout with q/k/v biases), Qwen3
//! (`qwen3`: an RMSNorm over each query and key head, no biases, explicit `head_dim`) and
//! Qwen3 MoE (`qwen3_moe`: Qwen3 with sparse mixture-of-experts MLPs, see `moe.rs`). All
//! slide a window over the layers from `max_window_layers` on when `use_sliding_window` is set.

use super::decoder::{DecoderConfig, Family};
use super::moe::MoeConfig;
use crate::json_keys::JsonKeys;
use anyhow::Result;

/// Reads a Qwen2 or Qwen3 (`family`) `config.json`.
pub fn config(keys: &JsonKeys, family: Family) -> Result<DecoderConfig> {
    let mut cfg = DecoderConfig::common(keys, family, &[])?;
    if keys.bool("use_sliding_window")?.unwrap_or(false) {
        cfg.sliding_window = Some(keys.positive("sliding_window")?.unwrap_or(4096));
        let from = keys.count("max_window_layers")?.unwrap_or(28);
        cfg.read_sliding_layers(keys, |layer| layer >= from)?;
    }
    Ok(cfg)
}

/// Reads a Qwen3 MoE `config.json`: Qwen3's keys and the experts'.
pub fn moe_config(keys: &JsonKeys) -> Result<DecoderConfig> {
    let mut cfg = config(keys, Family::Qwen3Moe)?;
    cfg.moe = MoeConfig::from_keys(keys, cfg.n_layers)?;
    Ok(cfg)
}
