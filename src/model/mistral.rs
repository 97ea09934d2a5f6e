//! The `config.json` of Mistral (`model_type` `mistral`): the Llama layout with every layer
//! attending within `sliding_window` tokens when that is set.

use super::decoder::{DecoderConfig, Family};
use crate::json_keys::JsonKeys;
use anyhow::Result;

/// transformers' `sliding_window` when `config.json` omits the key (`null` turns it off).
const DEFAULT_SLIDING_WINDOW: usize = 4096;

/// Reads a Mistral `config.json`.
pub fn config(keys: &JsonKeys) -> Result<DecoderConfig> {
    let mut cfg = DecoderConfig::common(keys, Family::Mistral, &[])?;
    cfg.sliding_window = match keys.positive("sliding_window")? {
        Some(window) => Some(window),
        None if keys.is_null("sliding_window") => None,
        None => Some(DEFAULT_SLIDING_WINDOW),
    };
    cfg.sliding_layers = vec![true; cfg.n_layers];
    Ok(cfg)
}
