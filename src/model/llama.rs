//! The `config.json` of Llama-layout models (`model_type` `llama`: Llama 2/3.x, SmolLM2, and
//! GGUF files renamed to it): RoPE (Llama 3.1's `llama3` scaling included), grouped-query
//! attention, SwiGLU, RMSNorm `x · w`.

use super::decoder::{DecoderConfig, Family};
use crate::json_keys::JsonKeys;
use anyhow::Result;

/// Reads a Llama `config.json`; sizes are required, the rest take transformers' defaults.
pub fn config(keys: &JsonKeys) -> Result<DecoderConfig> {
    DecoderConfig::common(keys, Family::Llama, &[])
}
