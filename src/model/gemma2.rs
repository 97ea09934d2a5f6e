//! The `config.json` of Gemma 2 (`model_type` `gemma2`): Gemma's norms and scaling, attention
//! and final logit soft-capping, sliding-window layers (`layer_types`; by default the even
//! layers), scores scaled by `query_pre_attn_scalar^-½`.

use super::decoder::{DecoderConfig, Family};
use crate::json_keys::JsonKeys;
use anyhow::Result;

/// Reads a Gemma 2 `config.json`.
pub fn config(keys: &JsonKeys) -> Result<DecoderConfig> {
    let mut cfg = DecoderConfig::common(keys, Family::Gemma2, &[])?;
    cfg.sliding_window = keys.positive("sliding_window")?;
    cfg.read_sliding_layers(keys, |layer| layer % 2 == 0)?;
    if let Some(q) = keys.positive_number("query_pre_attn_scalar")? {
        cfg.attn_scale = q.powf(-0.5);
    }
    cfg.attn_softcap = keys.positive_number("attn_logit_softcapping")?;
    cfg.final_softcap = keys.positive_number("final_logit_softcapping")?;
    Ok(cfg)
}
