//! The `config.json` of Qwen2 (`qwen2`: the Llama layout with q/k/v biases) and Qwen3
//! (`qwen3`: an RMSNorm over each query and key head, no biases, explicit `head_dim`). Both
//! slide a window over the layers from `max_window_layers` on when `use_sliding_window` is set.

use super::decoder::{DecoderConfig, Family};
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
