//! The `config.json` of Gemma 1 (`model_type` `gemma`: gemma-2b, gemma-7b): the Llama layout
//! with Gemma's RMSNorm `x · (1 + w)`, embeddings scaled by √d_model, GeGLU (the legacy
//! `hidden_act` "gelu" of the released configs means the tanh approximation), an explicit
//! `head_dim` and tied embeddings; no norms after attention or MLP, no soft-capping. gemma-2b
//! has a single key/value head (multi-query attention).

use super::decoder::{DecoderConfig, Family};
use crate::json_keys::JsonKeys;
use anyhow::Result;

/// Reads a Gemma 1 `config.json`.
pub fn config(keys: &JsonKeys) -> Result<DecoderConfig> {
    DecoderConfig::common(keys, Family::Gemma, &[])
}
