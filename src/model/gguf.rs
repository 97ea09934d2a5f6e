//! Llama-family GGUF files (llama.cpp's format, e.g. SmolLM2-135M-Instruct.Q4_1.gguf): the
//! configuration and tokenizer from the metadata, tensors dequantized to f32 at load and
//! renamed to Hugging Face names so [`super::decoder::Decoder`] loads them.
//!
//! llama.cpp's converter stores the query/key weights permuted for its interleaved RoPE; the
//! config we synthesise says `rope_interleaved`, and the decoder applies RoPE that way.

use anyhow::{bail, Context, Result};
use candle_core::quantized::gguf_file::{Content, Value};
use candle_core::{Device, Tensor};
use serde_json::json;
use std::collections::HashMap;
use std::path::Path;

/// The parsed header of a GGUF file.
pub struct Gguf {
    pub content: Content,
    path: std::path::PathBuf,
}

fn open(path: &Path) -> Result<std::io::BufReader<std::fs::File>> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    Ok(std::io::BufReader::new(file))
}

impl Gguf {
    /// Reads the header (metadata and tensor table) of `path`.
    pub fn read(path: &Path) -> Result<Self> {
        let content = Content::read(&mut open(path)?)
            .map_err(|e| anyhow::anyhow!("{} is not a valid GGUF file: {e}", path.display()))?;
        Ok(Self {
            content,
            path: path.to_path_buf(),
        })
    }

    fn meta(&self, key: &str) -> Result<&Value> {
        self.content
            .metadata
            .get(key)
            .with_context(|| format!("{}: GGUF metadata has no {key}", self.path.display()))
    }

    fn meta_u32(&self, key: &str) -> Result<u32> {
        self.meta(key)?
            .to_u32()
            .map_err(|e| anyhow::anyhow!("{}: {key}: {e}", self.path.display()))
    }

    fn architecture(&self) -> Result<String> {
        Ok(self
            .meta("general.architecture")?
            .to_string()
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .clone())
    }

    /// A Hugging Face-style `config.json` for the model in the file.
    pub fn config_json(&self) -> Result<serde_json::Value> {
        let arch = self.architecture()?;
        if arch != "llama" {
            bail!(
                "{}: GGUF architecture '{arch}' is not supported (supported: llama)",
                self.path.display()
            );
        }
        let key = |k: &str| format!("{arch}.{k}");
        let heads = self.meta_u32(&key("attention.head_count"))?;
        let f = |k: &str, default: f64| -> f64 {
            self.content
                .metadata
                .get(&key(k))
                .and_then(|v| v.to_f32().ok())
                .map_or(default, |v| v as f64)
        };
        let vocab = match self.content.metadata.get("tokenizer.ggml.tokens") {
            Some(tokens) => tokens.to_vec().map(|v| v.len()).unwrap_or(0),
            None => self.meta_u32(&key("vocab_size"))? as usize,
        };
        let tied = !self.content.tensor_infos.contains_key("output.weight");
        let special = |k: &str| {
            self.content
                .metadata
                .get(&format!("tokenizer.ggml.{k}_token_id"))
                .and_then(|v| v.to_u32().ok())
        };
        Ok(json!({
            "model_type": "llama",
            "vocab_size": vocab,
            "hidden_size": self.meta_u32(&key("embedding_length"))?,
            "num_hidden_layers": self.meta_u32(&key("block_count"))?,
            "num_attention_heads": heads,
            "num_key_value_heads": self.content.metadata.get(&key("attention.head_count_kv")).and_then(|v| v.to_u32().ok()).unwrap_or(heads),
            "intermediate_size": self.meta_u32(&key("feed_forward_length"))?,
            "rms_norm_eps": f("attention.layer_norm_rms_epsilon", 1e-5),
            "rope_theta": f("rope.freq_base", 10_000.0),
            "max_position_embeddings": self.content.metadata.get(&key("context_length")).and_then(|v| v.to_u32().ok()).unwrap_or(2048),
            "tie_word_embeddings": tied,
            "rope_interleaved": true,
            "bos_token_id": special("bos"),
            "eos_token_id": special("eos"),
            "pad_token_id": special("padding"),
        }))
    }

    /// Dequantized tensors under Hugging Face names, skipping blocks from `first_unused_block` on
    /// (so a model stopped early loads only what it runs).
    pub fn tensors(
        &self,
        first_unused_block: usize,
        device: &Device,
    ) -> Result<HashMap<String, Tensor>> {
        let mut reader = open(&self.path)?;
        let mut out = HashMap::new();
        for name in self.content.tensor_infos.keys() {
            let Some(hf) = hf_name(name) else { continue };
            if block_of(name).is_some_and(|b| b >= first_unused_block) {
                continue;
            }
            let q = self
                .content
                .tensor(&mut reader, name, device)
                .map_err(|e| {
                    anyhow::anyhow!("{}: cannot read tensor {name}: {e}", self.path.display())
                })?;
            let t = q.dequantize(device).map_err(|e| {
                anyhow::anyhow!("{}: cannot dequantize {name}: {e}", self.path.display())
            })?;
            out.insert(hf, t);
        }
        Ok(out)
    }

    /// The tokenizer stored in the metadata (`tokenizer.ggml.*`, byte-level BPE).
    pub fn tokenizer(&self) -> Result<tokenizers::Tokenizer> {
        crate::data::gguf_tokenizer(&self.content.metadata, &self.path)
    }
}

fn block_of(name: &str) -> Option<usize> {
    name.strip_prefix("blk.")?.split('.').next()?.parse().ok()
}

/// `blk.3.attn_q.weight` → `model.layers.3.self_attn.q_proj.weight`, etc.
pub fn hf_name(name: &str) -> Option<String> {
    match name {
        "token_embd.weight" => return Some("model.embed_tokens.weight".into()),
        "output_norm.weight" => return Some("model.norm.weight".into()),
        "output.weight" => return Some("lm_head.weight".into()),
        _ => {}
    }
    let rest = name.strip_prefix("blk.")?;
    let (layer, part) = rest.split_once('.')?;
    let (part, suffix) = part.rsplit_once('.')?;
    let hf = match part {
        "attn_norm" => "input_layernorm",
        "ffn_norm" => "post_attention_layernorm",
        "attn_q" => "self_attn.q_proj",
        "attn_k" => "self_attn.k_proj",
        "attn_v" => "self_attn.v_proj",
        "attn_output" => "self_attn.o_proj",
        "ffn_gate" => "mlp.gate_proj",
        "ffn_up" => "mlp.up_proj",
        "ffn_down" => "mlp.down_proj",
        _ => return None,
    };
    Some(format!("model.layers.{layer}.{hf}.{suffix}"))
}

/// llama.cpp's permutation of query/key rows for interleaved RoPE (`convert_hf_to_gguf.py`'s
/// `permute`), for writing test files: `[out, in]` rows regrouped per head.
pub fn permute_for_interleaved_rope(w: &Tensor, n_heads: usize) -> Result<Tensor> {
    let (out, inp) = w.dims2()?;
    Ok(w.reshape((n_heads, 2, out / n_heads / 2, inp))?
        .transpose(1, 2)?
        .contiguous()?
        .reshape((out, inp))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_hugging_face() {
        assert_eq!(
            hf_name("blk.12.attn_k.weight").unwrap(),
            "model.layers.12.self_attn.k_proj.weight"
        );
        assert_eq!(
            hf_name("blk.0.ffn_norm.weight").unwrap(),
            "model.layers.0.post_attention_layernorm.weight"
        );
        assert_eq!(
            hf_name("token_embd.weight").unwrap(),
            "model.embed_tokens.weight"
        );
        assert_eq!(hf_name("rope_freqs.weight"), None);
        assert_eq!(block_of("blk.7.ffn_up.weight"), Some(7));
    }
}
