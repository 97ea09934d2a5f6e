//! Llama-family GGUF files (llama.cpp's format, e.g. SmolLM2-135M-Instruct.Q4_1.gguf): the
//! configuration and tokenizer from the metadata, tensors dequantized to f32 at load and
//! renamed to Hugging Face names so [`super::decoder::Decoder`] loads them.
//!
//! llama.cpp's converter stores the query/key weights permuted for its interleaved RoPE; the
//! config we synthesise says `rope_interleaved`, and the decoder applies RoPE that way.

use anyhow::{bail, ensure, Context, Result};
use candle_core::quantized::gguf_file::{Content, Value};
use candle_core::{Device, Tensor};
use serde_json::json;
use std::collections::HashMap;
use std::path::Path;
use tokenizers::models::bpe::BPE;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{AddedToken, Tokenizer};

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

    /// An optional metadata key holding a whole number ≥ 0 (of any GGUF integer type): None
    /// when absent, an error naming key and file when of another type or negative.
    fn meta_opt_uint(&self, key: &str) -> Result<Option<u64>> {
        let Some(v) = self.content.metadata.get(key) else {
            return Ok(None);
        };
        let n: Option<u64> = match v {
            Value::U8(x) => Some(*x as u64),
            Value::U16(x) => Some(*x as u64),
            Value::U32(x) => Some(*x as u64),
            Value::U64(x) => Some(*x),
            Value::I8(x) => u64::try_from(*x).ok(),
            Value::I16(x) => u64::try_from(*x).ok(),
            Value::I32(x) => u64::try_from(*x).ok(),
            Value::I64(x) => u64::try_from(*x).ok(),
            _ => None,
        };
        n.map(Some).with_context(|| {
            format!(
                "{}: GGUF metadata {key} must be a whole number ≥ 0, found {v:?}",
                self.path.display()
            )
        })
    }

    /// An optional metadata key holding a finite number > 0 (f32, f64 or an integer).
    fn meta_opt_positive(&self, key: &str) -> Result<Option<f64>> {
        let Some(v) = self.content.metadata.get(key) else {
            return Ok(None);
        };
        let x = match v {
            Value::F32(x) => Some(*x as f64),
            Value::F64(x) => Some(*x),
            _ => self.meta_opt_uint(key).ok().flatten().map(|n| n as f64),
        };
        x.filter(|x| x.is_finite() && *x > 0.0)
            .map(Some)
            .with_context(|| {
                format!(
                    "{}: GGUF metadata {key} must be a number > 0, found {v:?}",
                    self.path.display()
                )
            })
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
        // GGUF stores these as f32: read as such, they give the values the models ran with.
        let f = |k: &str, default: f64| -> Result<f64> {
            Ok(self
                .meta_opt_positive(&key(k))?
                .map_or(default, |v| v as f32 as f64))
        };
        let vocab = match self.content.metadata.get("tokenizer.ggml.tokens") {
            Some(tokens) => tokens.to_vec().map(|v| v.len()).unwrap_or(0),
            None => self.meta_u32(&key("vocab_size"))? as usize,
        };
        let tied = !self.content.tensor_infos.contains_key("output.weight");
        let special = |k: &str| -> Result<Option<u64>> {
            self.meta_opt_uint(&format!("tokenizer.ggml.{k}_token_id"))
        };
        let uint_or = |k: &str, default: u64| -> Result<u64> {
            Ok(self.meta_opt_uint(&key(k))?.unwrap_or(default))
        };
        Ok(json!({
            "model_type": "llama",
            "vocab_size": vocab,
            "hidden_size": self.meta_u32(&key("embedding_length"))?,
            "num_hidden_layers": self.meta_u32(&key("block_count"))?,
            "num_attention_heads": heads,
            "num_key_value_heads": uint_or("attention.head_count_kv", heads as u64)?,
            "intermediate_size": self.meta_u32(&key("feed_forward_length"))?,
            "rms_norm_eps": f("attention.layer_norm_rms_epsilon", 1e-5)?,
            "rope_theta": f("rope.freq_base", 10_000.0)?,
            "max_position_embeddings": uint_or("context_length", 2048)?,
            "tie_word_embeddings": tied,
            "rope_interleaved": true,
            "bos_token_id": special("bos")?,
            "eos_token_id": special("eos")?,
            "pad_token_id": special("padding")?,
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
        gguf_tokenizer(&self.content.metadata, &self.path)
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

/// The byte-level BPE tokenizer stored in GGUF metadata (`tokenizer.ggml.tokens`, `.merges`,
/// `.token_type`, `.pre`). Control tokens become special tokens; the `smollm` pre-tokenizer
/// splits digits individually before the GPT-2 regex, as SmolLM2's `tokenizer.json` does.
pub fn gguf_tokenizer(
    metadata: &std::collections::HashMap<String, candle_core::quantized::gguf_file::Value>,
    path: &Path,
) -> Result<Tokenizer> {
    use tokenizers::pre_tokenizers::digits::Digits;
    use tokenizers::pre_tokenizers::sequence::Sequence;
    use tokenizers::pre_tokenizers::PreTokenizerWrapper;
    let strings = |key: &str| -> Result<Vec<String>> {
        let value = metadata
            .get(key)
            .with_context(|| format!("{}: GGUF metadata has no {key}", path.display()))?;
        value
            .to_vec()
            .map_err(|e| anyhow::anyhow!("{}: {key}: {e}", path.display()))?
            .iter()
            .map(|v| {
                v.to_string()
                    .cloned()
                    .map_err(|e| anyhow::anyhow!("{}: {key}: {e}", path.display()))
            })
            .collect()
    };
    let model = metadata
        .get("tokenizer.ggml.model")
        .and_then(|v| v.to_string().ok().cloned())
        .unwrap_or_default();
    ensure!(
        model == "gpt2",
        "{}: GGUF tokenizer model '{model}' is not supported (supported: gpt2 byte-level BPE)",
        path.display()
    );
    let tokens = strings("tokenizer.ggml.tokens")?;
    let merges: Vec<(String, String)> = strings("tokenizer.ggml.merges")?
        .into_iter()
        .map(|m| {
            m.split_once(' ')
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .with_context(|| format!("{}: bad merge '{m}'", path.display()))
        })
        .collect::<Result<_>>()?;
    let vocab: tokenizers::models::bpe::Vocab = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), i as u32))
        .collect();
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .build()
        .map_err(|e| anyhow::anyhow!("{}: cannot build the BPE tokenizer: {e}", path.display()))?;
    let mut tokenizer = Tokenizer::new(bpe);
    let byte_level = ByteLevel::new(false, true, true);
    let pre = metadata
        .get("tokenizer.ggml.pre")
        .and_then(|v| v.to_string().ok().cloned())
        .unwrap_or_default();
    if pre == "smollm" {
        tokenizer.with_pre_tokenizer(Some(Sequence::new(vec![
            PreTokenizerWrapper::Digits(Digits::new(true)),
            PreTokenizerWrapper::ByteLevel(byte_level),
        ])));
    } else {
        tokenizer.with_pre_tokenizer(Some(byte_level));
    }
    tokenizer.with_decoder(Some(ByteLevel::default()));
    let types: Vec<i64> = metadata
        .get("tokenizer.ggml.token_type")
        .and_then(|v| v.to_vec().ok())
        .map(|v| {
            v.iter()
                .map(|t| t.to_i32().map(|x| x as i64).unwrap_or(1))
                .collect()
        })
        .unwrap_or_default();
    let special: Vec<AddedToken> = tokens
        .iter()
        .zip(&types)
        .filter(|(_, &t)| t == 3)
        .map(|(tok, _)| AddedToken::from(tok.clone(), true))
        .collect();
    tokenizer
        .add_special_tokens(special)
        .map_err(|e| anyhow::anyhow!("{}: cannot add special tokens: {e}", path.display()))?;
    Ok(tokenizer)
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
