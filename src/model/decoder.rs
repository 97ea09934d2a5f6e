//! RMSNorm decoder-only transformers up to a hook: the Llama layout (Llama 2/3, SmolLM2,
//! Mistral, Qwen2: RoPE, grouped-query attention, SwiGLU), Qwen3 and Gemma 3 (RMSNorm over each
//! query/key head), Gemma 1 (RMSNorm with `1 + w`, embeddings scaled by √d_model, GeGLU),
//! Gemma 2/3 (Gemma 1's plus sliding-window and global layers, norms before and after attention
//! and MLP), and Qwen3 MoE (Qwen3 with sparse mixture-of-experts MLPs, `moe.rs`). Each
//! family's `config.json` is read in its own file (`llama.rs`, `mistral.rs`, `qwen.rs`,
//! `gemma.rs`, `gemma2.rs`, `gemma3.rs`); RoPE frequencies in `rope.rs`.
//!
//! candle-transformers' versions expose no hidden states and cannot stop early, so this is our
//! own. Weight names follow Hugging Face (`model.layers.N.self_attn.q_proj.weight`, ...); GGUF
//! files are renamed to these at load (see `gguf.rs`), and keep llama.cpp's interleaved RoPE
//! layout of the query/key weights. The hooks read what Hugging Face's modules compute (see
//! docs/formats.md, "Hooks").

use super::hook_set::{one_hook, BlockRun, HookSet, Reading};
use super::kernels::{self, Act, AttentionShape, Heads, RopeTables};
use super::moe::{MoeConfig, SparseMoe};
use super::rope::RopeSpec;
use super::{gemma, gemma2, gemma3, llama, mistral, qwen};
use super::{HookKind, HookPoint, ResidualModel};
use crate::json_keys::JsonKeys;
use anyhow::{bail, ensure, Context, Result};
use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{Embedding, Linear, VarBuilder};
use serde_json::Value;

/// Which member of the family.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Family {
    Llama,
    Mistral,
    Qwen2,
    Qwen3,
    Qwen3Moe,
    Gemma,
    Gemma2,
    Gemma3,
}

impl Family {
    /// RMSNorm multiplies by `1 + w`, embeddings are scaled by √d_model, the MLP is GeGLU.
    pub fn is_gemma(self) -> bool {
        matches!(self, Self::Gemma | Self::Gemma2 | Self::Gemma3)
    }

    /// Norms after attention and after the MLP too (and one before the MLP of its own).
    pub fn has_sandwich_norms(self) -> bool {
        matches!(self, Self::Gemma2 | Self::Gemma3)
    }

    /// An RMSNorm over each query and key head before RoPE (`q_norm`, `k_norm`).
    pub fn has_head_norms(self) -> bool {
        matches!(self, Self::Qwen3 | Self::Qwen3Moe | Self::Gemma3)
    }
}

/// What the forward pass needs from a `config.json`, whichever family it comes from.
#[derive(Debug, Clone)]
pub struct DecoderConfig {
    pub family: Family,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub n_layers: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub head_dim: usize,
    pub intermediate_size: usize,
    pub rms_norm_eps: f64,
    /// RoPE of every layer (Gemma 3: of the global layers).
    pub rope: RopeSpec,
    /// Gemma 3: RoPE of the sliding-window layers.
    pub local_rope: Option<RopeSpec>,
    pub max_positions: usize,
    pub tie_embeddings: bool,
    /// GeGLU (tanh GELU) instead of SwiGLU.
    pub gelu_mlp: bool,
    /// Gemma 2: `tanh(scores / c) · c` on attention logits.
    pub attn_softcap: Option<f64>,
    /// Window of the sliding-window layers, in tokens.
    pub sliding_window: Option<usize>,
    /// Which layers use the sliding window.
    pub sliding_layers: Vec<bool>,
    /// Gemma 2: `tanh(logits / c) · c` on the output logits.
    pub final_softcap: Option<f64>,
    /// Scores are multiplied by this (1/√head_dim; Gemma: query_pre_attn_scalar^-½).
    pub attn_scale: f64,
    /// Query/key weights in llama.cpp's interleaved RoPE layout (GGUF).
    pub rope_interleaved: bool,
    /// Qwen3 MoE: the experts, and which layers route to them.
    pub moe: Option<MoeConfig>,
}

impl DecoderConfig {
    /// Reads a Hugging Face `config.json` (already parsed) by its `model_type` (`llama` for
    /// any other); `file` names it in errors. A key present with the wrong type is an error
    /// naming it; absent keys take transformers' defaults.
    pub fn from_json(cfg: &Value, file: &str) -> Result<Self> {
        let keys = JsonKeys::new(cfg, file)?;
        match keys.str("model_type")? {
            Some("gemma2") => gemma2::config(&keys),
            Some("gemma3_text") => gemma3::config(&keys),
            Some("gemma3") => gemma3::multimodal_config(&keys),
            Some("qwen2") => qwen::config(&keys, Family::Qwen2),
            Some("qwen3") => qwen::config(&keys, Family::Qwen3),
            Some("qwen3_moe") => qwen::moe_config(&keys),
            Some("gemma") => gemma::config(&keys),
            Some("mistral") => mistral::config(&keys),
            _ => llama::config(&keys),
        }
    }

    /// The keys every family reads alike, with `defaults` for the sizes that `config.json` may
    /// omit (the others are required): no sliding window, scores scaled by 1/√head_dim, RoPE
    /// from `rope_theta` (default 10000) and its scaling.
    pub(super) fn common(
        keys: &JsonKeys,
        family: Family,
        defaults: &[(&str, usize)],
    ) -> Result<Self> {
        let file = keys.file();
        let default = |key: &str| defaults.iter().find(|(k, _)| *k == key).map(|d| d.1);
        let need = |key: &str| keys.require(key, keys.positive(key)?.or(default(key)));
        let hidden_size = need("hidden_size")?;
        let n_heads = need("num_attention_heads")?;
        let head_dim = match keys.positive("head_dim")?.or(default("head_dim")) {
            Some(d) => d,
            None => hidden_size / n_heads,
        };
        let n_kv_heads = keys
            .positive("num_key_value_heads")?
            .or(default("num_key_value_heads"))
            .unwrap_or(n_heads);
        ensure!(
            n_heads % n_kv_heads == 0,
            "{file}: {n_heads} attention heads are not a multiple of {n_kv_heads} key/value heads"
        );
        let n_layers = need("num_hidden_layers")?;
        Ok(Self {
            family,
            vocab_size: need("vocab_size")?,
            hidden_size,
            n_layers,
            n_heads,
            n_kv_heads,
            head_dim,
            intermediate_size: need("intermediate_size")?,
            rms_norm_eps: keys.positive_number("rms_norm_eps")?.unwrap_or(1e-6),
            rope: RopeSpec::from_config(keys, 10_000.0)?,
            local_rope: None,
            max_positions: keys
                .positive("max_position_embeddings")?
                .or(default("max_position_embeddings"))
                .unwrap_or(4096),
            tie_embeddings: keys
                .bool("tie_word_embeddings")?
                .unwrap_or(family.is_gemma()),
            gelu_mlp: gelu_mlp(keys, family)?,
            attn_softcap: None,
            sliding_window: None,
            sliding_layers: vec![false; n_layers],
            final_softcap: None,
            attn_scale: (head_dim as f64).powf(-0.5),
            rope_interleaved: keys.bool("rope_interleaved")?.unwrap_or(false),
            moe: None,
        })
    }

    /// Sets which layers slide: as `layer_types` lists them (`sliding_attention`), else as
    /// `default` says for each layer.
    pub(super) fn read_sliding_layers(
        &mut self,
        keys: &JsonKeys,
        default: impl Fn(usize) -> bool,
    ) -> Result<()> {
        self.sliding_layers = match keys.strings("layer_types")? {
            Some(types) => {
                ensure!(
                    types.len() == self.n_layers,
                    "{}: layer_types lists {} layers, num_hidden_layers is {}",
                    keys.file(),
                    types.len(),
                    self.n_layers
                );
                types.iter().map(|&t| t == "sliding_attention").collect()
            }
            None => (0..self.n_layers).map(default).collect(),
        };
        Ok(())
    }

    /// Whether `layer` attends within a sliding window.
    fn is_sliding(&self, layer: usize) -> bool {
        self.sliding_window.is_some() && self.sliding_layers.get(layer).copied().unwrap_or(false)
    }
}

/// Whether the MLP is GeGLU (`hidden_activation` or `hidden_act`; Gemma's default tanh GELU)
/// rather than SwiGLU (`silu`, the others' default).
fn gelu_mlp(keys: &JsonKeys, family: Family) -> Result<bool> {
    let act = match keys.str("hidden_activation")? {
        Some(act) => act,
        None => keys.str("hidden_act")?.unwrap_or(if family.is_gemma() {
            "gelu_pytorch_tanh"
        } else {
            "silu"
        }),
    };
    Ok(match act {
        "silu" | "swish" => false,
        "gelu_pytorch_tanh" | "gelu_new" | "gelu" => true,
        other => bail!(
            "{}: hidden activation '{other}' is not supported",
            keys.file()
        ),
    })
}

/// RMSNorm: `x / rms(x) · w` (Llama) or `· (1 + w)` (Gemma).
struct RmsNorm {
    weight: Tensor,
    eps: f64,
}

impl RmsNorm {
    fn load(vb: VarBuilder, d: usize, cfg: &DecoderConfig) -> Result<Self> {
        let w = vb.get(d, "weight")?;
        let weight = if cfg.family.is_gemma() { (w + 1.0)? } else { w };
        Ok(Self {
            weight,
            eps: cfg.rms_norm_eps,
        })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        if x.dtype() == DType::F64 {
            // candle's fused kernel has no f64 (the tests' high-precision tensor path).
            return candle_nn::ops::rms_norm_slow(x, &self.weight, self.eps as f32);
        }
        candle_nn::ops::rms_norm(x, &self.weight, self.eps as f32)
    }
}

/// A linear layer with its weight stored `[in, out]` (several Hugging Face `[out, in]`
/// projections of the same input side by side), so that rows multiply from the right.
pub(super) struct Dense {
    weight: Tensor,
    bias: Option<Tensor>,
    bias_host: Option<Vec<f32>>,
}

impl Dense {
    /// Loads the projections `names` (each `[out_i, in]`, with a bias when `bias`) as one.
    pub(super) fn load(
        vb: &VarBuilder,
        names: &[(&str, usize)],
        d_in: usize,
        bias: bool,
    ) -> Result<Self> {
        let mut weights = Vec::new();
        let mut biases = Vec::new();
        for &(name, d_out) in names {
            weights.push(vb.pp(name).get((d_out, d_in), "weight")?.t()?);
            if bias {
                biases.push(vb.pp(name).get(d_out, "bias")?);
            }
        }
        let weight = Tensor::cat(&weights, 1)?.contiguous()?;
        let bias = if bias {
            Some(Tensor::cat(&biases, 0)?)
        } else {
            None
        };
        let bias_host = match &bias {
            Some(b) if b.device().is_cpu() => Some(b.to_dtype(DType::F32)?.to_vec1()?),
            _ => None,
        };
        Ok(Self {
            weight,
            bias,
            bias_host,
        })
    }

    /// `x W + b` for `x` `[batch, seq, in]` (any device).
    pub(super) fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let y = x.broadcast_matmul(&self.weight)?;
        match &self.bias {
            Some(b) => y.broadcast_add(b),
            None => Ok(y),
        }
    }

    /// `x W + b` for rows `x` `[n, in]` (CPU), the bias added in place.
    pub(super) fn forward_rows(&self, x: &Tensor) -> Result<Tensor> {
        let y = x.matmul(&self.weight)?;
        if let Some(b) = &self.bias_host {
            kernels::update(&y, |v| {
                kernels::bias_act(v, Some(b), Act::Identity, b.len())
            })?;
        }
        Ok(y)
    }
}

/// Gemma 3 and Qwen3: an RMSNorm over each query and key head, before RoPE.
struct HeadNorms {
    q: RmsNorm,
    k: RmsNorm,
    /// The weights as host floats, for the CPU kernels.
    q_host: Vec<f32>,
    k_host: Vec<f32>,
}

impl HeadNorms {
    fn load(vb: &VarBuilder, cfg: &DecoderConfig) -> Result<Self> {
        let q = RmsNorm::load(vb.pp("q_norm"), cfg.head_dim, cfg)?;
        let k = RmsNorm::load(vb.pp("k_norm"), cfg.head_dim, cfg)?;
        let host = |n: &RmsNorm| -> Result<Vec<f32>> {
            Ok(if n.weight.device().is_cpu() {
                n.weight.to_dtype(DType::F32)?.to_vec1()?
            } else {
                Vec::new()
            })
        };
        Ok(Self {
            q_host: host(&q)?,
            k_host: host(&k)?,
            q,
            k,
        })
    }
}

struct Attention {
    /// q, k and v projections side by side.
    qkv: Dense,
    o: Dense,
    head_norms: Option<HeadNorms>,
    n_heads: usize,
    n_kv_heads: usize,
    head_dim: usize,
}

impl Attention {
    fn load(vb: VarBuilder, cfg: &DecoderConfig) -> Result<Self> {
        let (d, hd) = (cfg.hidden_size, cfg.head_dim);
        let bias = vb.contains_tensor("q_proj.bias");
        let (q, kv) = (cfg.n_heads * hd, cfg.n_kv_heads * hd);
        Ok(Self {
            qkv: Dense::load(
                &vb,
                &[("q_proj", q), ("k_proj", kv), ("v_proj", kv)],
                d,
                bias,
            )?,
            o: Dense::load(&vb, &[("o_proj", d)], q, false)?,
            head_norms: if cfg.family.has_head_norms() {
                Some(HeadNorms::load(&vb, cfg)?)
            } else {
                None
            },
            n_heads: cfg.n_heads,
            n_kv_heads: cfg.n_kv_heads,
            head_dim: hd,
        })
    }

    /// Every head's weighted values, heads side by side (`hook_z`, the input of `o_proj`),
    /// with candle tensor operations (any device), `x` `[batch, seq, d]`.
    fn z(
        &self,
        x: &Tensor,
        rope: &Rope,
        mask: &Tensor,
        cfg: &DecoderConfig,
    ) -> candle_core::Result<Tensor> {
        let (b, s, _) = x.dims3()?;
        let qkv = self.qkv.forward(x)?;
        let (q_width, kv_width) = (
            self.n_heads * self.head_dim,
            self.n_kv_heads * self.head_dim,
        );
        let heads = |start: usize, n: usize| -> candle_core::Result<Tensor> {
            qkv.narrow(2, start, n * self.head_dim)?
                .reshape((b, s, n, self.head_dim))?
                .transpose(1, 2)?
                .contiguous()
        };
        let (mut q, mut k) = (heads(0, self.n_heads)?, heads(q_width, self.n_kv_heads)?);
        if let Some(norms) = &self.head_norms {
            q = norms.q.forward(&q)?;
            k = norms.k.forward(&k)?;
        }
        let (q, k) = (rope.apply(&q)?, rope.apply(&k)?);
        let v = heads(q_width + kv_width, self.n_kv_heads)?;
        // Grouped-query attention: repeat each key/value head for its query heads.
        let groups = self.n_heads / self.n_kv_heads;
        let repeat = |t: Tensor| -> candle_core::Result<Tensor> {
            if groups == 1 {
                return Ok(t);
            }
            t.unsqueeze(2)?
                .expand((b, self.n_kv_heads, groups, s, self.head_dim))?
                .reshape((b, self.n_heads, s, self.head_dim))
        };
        let (k, v) = (repeat(k)?, repeat(v)?.contiguous()?);
        let mut scores = (q.matmul(&k.t()?.contiguous()?)? * cfg.attn_scale)?;
        if let Some(cap) = cfg.attn_softcap {
            scores = ((scores / cap)?.tanh()? * cap)?;
        }
        let probs = candle_nn::ops::softmax_last_dim(&scores.broadcast_add(mask)?)?;
        probs
            .matmul(&v)?
            .transpose(1, 2)?
            .reshape((b, s, self.n_heads * self.head_dim))
    }

    /// The same `hook_z` with the CPU kernels, `x` `[rows, d]` in windows of `seq` rows: one
    /// product for q, k and v, head norms and RoPE in place, all heads at once.
    fn z_rows(
        &self,
        x: &Tensor,
        rope: &RopeTables,
        seq: usize,
        window: Option<usize>,
        cfg: &DecoderConfig,
    ) -> Result<Tensor> {
        let rows = x.dim(0)?;
        let qkv = self.qkv.forward_rows(x)?;
        let hd = self.head_dim;
        let (q_width, kv_width) = (self.n_heads * hd, self.n_kv_heads * hd);
        let stride = q_width + 2 * kv_width;
        kernels::update(&qkv, |v| {
            if let Some(norms) = &self.head_norms {
                let eps = cfg.rms_norm_eps as f32;
                kernels::rms_norm_heads(v, stride, 0, self.n_heads, &norms.q_host, eps);
                kernels::rms_norm_heads(v, stride, q_width, self.n_kv_heads, &norms.k_host, eps);
            }
            rope.apply(v, stride, 0, self.n_heads, seq);
            rope.apply(v, stride, q_width, self.n_kv_heads, seq);
        })?;
        let shape = AttentionShape {
            seq,
            n_heads: self.n_heads,
            n_kv_heads: self.n_kv_heads,
            head_dim: hd,
            scale: cfg.attn_scale as f32,
            softcap: cfg.attn_softcap.map(|c| c as f32),
            window,
        };
        let y = kernels::with_data(&qkv, |data| {
            let part = |col| Heads { data, stride, col };
            kernels::causal_attention(
                part(0),
                part(q_width),
                part(q_width + kv_width),
                rows,
                shape,
            )
        })??;
        kernels::tensor(y, rows, q_width)
    }
}

/// Rotary position embedding tables for one window length.
struct Rope {
    cos: Tensor,
    sin: Tensor,
    interleaved: bool,
}

impl Rope {
    /// Tables for positions `0..s` at the inverse frequencies `inv_freq`, in `dtype`.
    fn new(
        inv_freq: &[f32],
        s: usize,
        interleaved: bool,
        dtype: DType,
        device: &Device,
    ) -> candle_core::Result<Self> {
        let half = inv_freq.len();
        let inv = Tensor::from_vec(inv_freq.to_vec(), (1, half), device)?;
        let pos = Tensor::arange(0u32, s as u32, device)?
            .to_dtype(DType::F32)?
            .reshape((s, 1))?;
        let freqs = pos.broadcast_mul(&inv)?;
        Ok(Self {
            cos: freqs.cos()?.to_dtype(dtype)?,
            sin: freqs.sin()?.to_dtype(dtype)?,
            interleaved,
        })
    }

    fn apply(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        if self.interleaved {
            candle_nn::rotary_emb::rope_i(x, &self.cos, &self.sin)
        } else {
            candle_nn::rotary_emb::rope(x, &self.cos, &self.sin)
        }
    }
}

pub(super) struct Mlp {
    /// gate and up projections side by side.
    gate_up: Dense,
    down: Dense,
    intermediate: usize,
    gelu: bool,
}

impl Mlp {
    /// Loads a gated MLP of `f` hidden units.
    pub(super) fn load(vb: VarBuilder, cfg: &DecoderConfig, f: usize) -> Result<Self> {
        let d = cfg.hidden_size;
        Ok(Self {
            gate_up: Dense::load(&vb, &[("gate_proj", f), ("up_proj", f)], d, false)?,
            down: Dense::load(&vb, &[("down_proj", d)], f, false)?,
            intermediate: f,
            gelu: cfg.gelu_mlp,
        })
    }

    /// The MLP with candle tensor operations (any device).
    pub(super) fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let pair = self.gate_up.forward(x)?;
        let f = self.intermediate;
        let g = pair.narrow(2, 0, f)?;
        let g = if self.gelu { g.gelu()? } else { g.silu()? };
        self.down.forward(&(g * pair.narrow(2, f, f)?)?)
    }

    /// The same MLP on rows with the CPU kernels.
    pub(super) fn forward_rows(&self, x: &Tensor) -> Result<Tensor> {
        let rows = x.dim(0)?;
        let f = self.intermediate;
        let pair = self.gate_up.forward_rows(x)?;
        let act = if self.gelu { Act::GeluTanh } else { Act::Silu };
        let gated = kernels::with_data(&pair, |p| kernels::gated(p, act, f))?;
        drop(pair);
        self.down.forward_rows(&kernels::tensor(gated, rows, f)?)
    }
}

/// How the blocks run: candle tensor operations `[batch, seq, d]` on any device
/// ([`TensorPass`]) or the CPU kernels on rows `[batch · seq, d]` ([`RowsPass`]).
trait Pass {
    /// `hook_z` of `block`'s attention on its normalised input `x`.
    fn z(&self, block: &Block, x: &Tensor) -> Result<Tensor>;
    fn dense(&self, dense: &Dense, x: &Tensor) -> Result<Tensor>;
    fn mlp(&self, mlp: &FeedForward, x: &Tensor) -> Result<Tensor>;
    /// `y + x`, `y` (freshly made) consumed.
    fn add(&self, y: Tensor, x: &Tensor) -> Result<Tensor>;
}

/// RoPE tables and attention masks of one window length, for the tensor path.
struct TensorPass<'a> {
    /// RoPE of the global layers, and of the sliding-window layers when they have their own.
    rope: Rope,
    local_rope: Option<Rope>,
    causal: Tensor,
    sliding: Tensor,
    cfg: &'a DecoderConfig,
}

impl Pass for TensorPass<'_> {
    fn z(&self, block: &Block, x: &Tensor) -> Result<Tensor> {
        let (rope, mask) = match (block.sliding, &self.local_rope) {
            (true, Some(local)) => (local, &self.sliding),
            (true, None) => (&self.rope, &self.sliding),
            (false, _) => (&self.rope, &self.causal),
        };
        Ok(block.attn.z(x, rope, mask, self.cfg)?)
    }

    fn dense(&self, dense: &Dense, x: &Tensor) -> Result<Tensor> {
        Ok(dense.forward(x)?)
    }

    fn mlp(&self, mlp: &FeedForward, x: &Tensor) -> Result<Tensor> {
        match mlp {
            FeedForward::Dense(m) => Ok(m.forward(x)?),
            FeedForward::Sparse(m) => m.forward(x),
        }
    }

    fn add(&self, y: Tensor, x: &Tensor) -> Result<Tensor> {
        Ok((y + x)?)
    }
}

/// RoPE tables of one window length `seq`, for the CPU kernels.
struct RowsPass<'a> {
    rope: RopeTables,
    local_rope: Option<RopeTables>,
    seq: usize,
    cfg: &'a DecoderConfig,
}

impl Pass for RowsPass<'_> {
    fn z(&self, block: &Block, x: &Tensor) -> Result<Tensor> {
        let rope = match (block.sliding, &self.local_rope) {
            (true, Some(local)) => local,
            _ => &self.rope,
        };
        let window = if block.sliding {
            self.cfg.sliding_window
        } else {
            None
        };
        block.attn.z_rows(x, rope, self.seq, window, self.cfg)
    }

    fn dense(&self, dense: &Dense, x: &Tensor) -> Result<Tensor> {
        dense.forward_rows(x)
    }

    fn mlp(&self, mlp: &FeedForward, x: &Tensor) -> Result<Tensor> {
        match mlp {
            FeedForward::Dense(m) => m.forward_rows(x),
            FeedForward::Sparse(m) => m.forward_rows(x),
        }
    }

    fn add(&self, y: Tensor, x: &Tensor) -> Result<Tensor> {
        add_in_place(&y, x)?;
        Ok(y)
    }
}

/// A block's MLP: one gated MLP, or (Qwen3 MoE) experts chosen per token by a router.
enum FeedForward {
    Dense(Mlp),
    Sparse(SparseMoe),
}

impl FeedForward {
    /// The MLP of `layer`: sparse where `cfg.moe` routes that layer, else dense.
    fn load(vb: VarBuilder, cfg: &DecoderConfig, layer: usize) -> Result<Self> {
        Ok(match &cfg.moe {
            Some(moe) if moe.is_sparse(layer) => Self::Sparse(SparseMoe::load(vb, cfg, moe)?),
            _ => Self::Dense(Mlp::load(vb, cfg, cfg.intermediate_size)?),
        })
    }
}

struct Block {
    /// Before attention (`input_layernorm`).
    input_norm: RmsNorm,
    attn: Attention,
    /// Gemma 2/3: on attention's output (`post_attention_layernorm`).
    attn_out_norm: Option<RmsNorm>,
    /// Before the MLP (Llama: `post_attention_layernorm`; Gemma: `pre_feedforward_layernorm`).
    mlp_norm: RmsNorm,
    mlp: FeedForward,
    /// Gemma 2/3: on the MLP's output (`post_feedforward_layernorm`).
    mlp_out_norm: Option<RmsNorm>,
    sliding: bool,
}

impl Block {
    fn load(vb: VarBuilder, cfg: &DecoderConfig, layer: usize) -> Result<Self> {
        let d = cfg.hidden_size;
        let norm = |name: &str| RmsNorm::load(vb.pp(name), d, cfg);
        let (attn_out_norm, mlp_norm, mlp_out_norm) = if cfg.family.has_sandwich_norms() {
            (
                Some(norm("post_attention_layernorm")?),
                norm("pre_feedforward_layernorm")?,
                Some(norm("post_feedforward_layernorm")?),
            )
        } else {
            (None, norm("post_attention_layernorm")?, None)
        };
        Ok(Self {
            input_norm: norm("input_layernorm")?,
            attn: Attention::load(vb.pp("self_attn"), cfg)?,
            attn_out_norm,
            mlp_norm,
            mlp: FeedForward::load(vb.pp("mlp"), cfg, layer)?,
            mlp_out_norm,
            sliding: cfg.is_sliding(layer),
        })
    }

    /// Runs the block on `x` (as `pass` runs blocks) as far as `run` needs, capturing what it
    /// reads; returns the block's output when it ran whole. attn_out and mlp_out are captured
    /// as copies when the block goes on, as `pass.add` may write into them.
    fn forward(&self, pass: &impl Pass, x: &Tensor, run: &mut BlockRun) -> Result<Option<Tensor>> {
        let z = pass.z(self, &self.input_norm.forward(x)?)?;
        if !run.read(HookKind::Z, &z) {
            return Ok(None);
        }
        let attn_out = norm_if(&self.attn_out_norm, pass.dense(&self.attn.o, &z)?)?;
        let Some(attn_out) = run.read_owned(HookKind::AttnOut, attn_out)? else {
            return Ok(None);
        };
        let mid = pass.add(attn_out, x)?;
        if !run.read(HookKind::ResidMid, &mid) {
            return Ok(None);
        }
        let mlp_in = self.mlp_norm.forward(&mid)?;
        if !run.read(HookKind::MlpInput, &mlp_in) {
            return Ok(None);
        }
        let mlp_out = norm_if(&self.mlp_out_norm, pass.mlp(&self.mlp, &mlp_in)?)?;
        let Some(mlp_out) = run.read_owned(HookKind::MlpOut, mlp_out)? else {
            return Ok(None);
        };
        let out = pass.add(mlp_out, &mid)?;
        run.read(HookKind::ResidPost, &out);
        Ok(Some(out))
    }
}

/// `x` through `norm` when there is one.
fn norm_if(norm: &Option<RmsNorm>, x: Tensor) -> Result<Tensor> {
    Ok(match norm {
        Some(n) => n.forward(&x)?,
        None => x,
    })
}

/// `y ← y + x` for CPU rows (y freshly made, not shared).
fn add_in_place(y: &Tensor, x: &Tensor) -> Result<()> {
    let cols = y.dim(1)?;
    kernels::with_data(x, |x| {
        kernels::update(y, |v| kernels::add_residual(v, None, x, cols))
    })?
}

fn mask(s: usize, window: Option<usize>, device: &Device) -> candle_core::Result<Tensor> {
    let values: Vec<f32> = (0..s)
        .flat_map(|i| {
            (0..s).map(move |j| {
                let outside = window.is_some_and(|w| i >= j + w);
                if j > i || outside {
                    f32::NEG_INFINITY
                } else {
                    0.0
                }
            })
        })
        .collect();
    Tensor::from_vec(values, (s, s), device)
}

/// An RMSNorm decoder truncated after the blocks its hook needs.
pub struct Decoder {
    embed: Embedding,
    blocks: Vec<Block>,
    /// Final norm and LM head, only when loaded with [`Decoder::load_with_head`].
    head: Option<(RmsNorm, Linear)>,
    cfg: DecoderConfig,
    hook: HookPoint,
    device: Device,
}

/// Where the language model's weights sit: `model.` for a causal LM, and for Gemma 3's
/// multimodal checkpoints `model.language_model.` (transformers 5) or `language_model.model.`
/// (transformers 4).
const WEIGHT_PREFIXES: [&str; 3] = ["model", "model.language_model", "language_model.model"];

/// The prefix of [`WEIGHT_PREFIXES`] under which `vb` holds the token embeddings.
fn weight_prefix(vb: &VarBuilder) -> Result<&'static str> {
    WEIGHT_PREFIXES
        .into_iter()
        .find(|p| vb.contains_tensor(&format!("{p}.embed_tokens.weight")))
        .with_context(|| {
            format!(
                "the weights have no token embeddings (looked for embed_tokens.weight under {})",
                WEIGHT_PREFIXES.join(", ")
            )
        })
}

impl Decoder {
    /// Loads embeddings and the blocks before `hook` from `vb` (Hugging Face names).
    pub fn load(vb: VarBuilder, cfg: DecoderConfig, hook: HookPoint) -> Result<Self> {
        hook.check_within(cfg.n_layers, "the model")?;
        let vb_model = vb.pp(weight_prefix(&vb)?);
        let embed =
            candle_nn::embedding(cfg.vocab_size, cfg.hidden_size, vb_model.pp("embed_tokens"))?;
        let blocks = (0..hook.blocks_needed())
            .map(|i| Block::load(vb_model.pp(format!("layers.{i}")), &cfg, i))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            embed,
            blocks,
            head: None,
            device: vb.device().clone(),
            cfg,
            hook,
        })
    }

    /// Loads the whole model with its final norm and LM head (for next-token checks).
    pub fn load_with_head(vb: VarBuilder, cfg: DecoderConfig) -> Result<Self> {
        let last = HookPoint {
            layer: cfg.n_layers - 1,
            kind: HookKind::ResidPost,
        };
        let mut model = Self::load(vb.clone(), cfg, last)?;
        let vb_model = vb.pp(weight_prefix(&vb)?);
        let norm = RmsNorm::load(vb_model.pp("norm"), model.cfg.hidden_size, &model.cfg)?;
        let lm_head = if model.cfg.tie_embeddings || !vb.contains_tensor("lm_head.weight") {
            Linear::new(model.embed.embeddings().clone(), None)
        } else {
            candle_nn::linear_no_bias(
                model.cfg.hidden_size,
                model.cfg.vocab_size,
                vb.pp("lm_head"),
            )?
        };
        model.head = Some((norm, lm_head));
        Ok(model)
    }

    /// The model's configuration.
    pub fn config(&self) -> &DecoderConfig {
        &self.cfg
    }

    /// The activations at `hooks` from one pass (`hook_embed`: TransformerLens' W_E rows,
    /// which for Gemma carry the √d_model scale, as does the stream entering block 0).
    fn run(&self, tokens: &Tensor, hooks: &[HookPoint]) -> Result<Vec<Tensor>> {
        let (b, s) = tokens.dims2()?;
        ensure!(
            s <= self.cfg.max_positions,
            "window of {s} tokens is longer than the model's {} positions",
            self.cfg.max_positions
        );
        let set = HookSet::new(hooks);
        set.check_loaded(self.blocks.len(), self.hook)?;
        let mut x = self.embed.forward(tokens)?;
        if self.cfg.family.is_gemma() {
            // transformers multiplies by √d_model rounded to the model's dtype.
            let scale = Tensor::new(&[(self.cfg.hidden_size as f64).sqrt() as f32], &self.device)?
                .to_dtype(x.dtype())?;
            x = x.broadcast_mul(&scale)?;
        }
        let mut reading = Reading::new(&set);
        reading.embed(&x);
        reading.input(&x);
        if !set.blocks().is_empty() {
            if self.device.is_cpu() && x.dtype() == DType::F32 {
                self.run_rows(x, &mut reading)?;
            } else {
                self.run_tensors(x, &mut reading)?;
            }
        }
        reading.finish(|t| Ok(t.reshape((b, s, ()))?))
    }

    /// The blocks with candle tensor operations, from the embeddings `x` `[batch, seq, d]`.
    fn run_tensors(&self, x: Tensor, reading: &mut Reading) -> Result<()> {
        let (dtype, s) = (x.dtype(), x.dim(1)?);
        let rope = |inv: &[f32]| Rope::new(inv, s, self.cfg.rope_interleaved, dtype, &self.device);
        let pass = TensorPass {
            rope: rope(&self.cfg.rope.inv_freq(self.cfg.head_dim))?,
            local_rope: self
                .cfg
                .local_rope
                .as_ref()
                .map(|r| rope(&r.inv_freq(self.cfg.head_dim)))
                .transpose()?,
            causal: mask(s, None, &self.device)?.to_dtype(dtype)?,
            sliding: mask(s, self.cfg.sliding_window, &self.device)?.to_dtype(dtype)?,
            cfg: &self.cfg,
        };
        reading.run_blocks(x, |layer, x, run| self.blocks[layer].forward(&pass, x, run))
    }

    /// The blocks with the CPU kernels, from the embeddings `x` `[batch, seq, d]`.
    fn run_rows(&self, x: Tensor, reading: &mut Reading) -> Result<()> {
        let (b, s, d) = x.dims3()?;
        let cfg = &self.cfg;
        let tables = |inv: Vec<f32>| RopeTables::from_inv_freq(s, &inv, cfg.rope_interleaved);
        let pass = RowsPass {
            rope: tables(cfg.rope.inv_freq(cfg.head_dim)),
            local_rope: cfg
                .local_rope
                .as_ref()
                .map(|r| tables(r.inv_freq(cfg.head_dim))),
            seq: s,
            cfg,
        };
        let rows = x.reshape((b * s, d))?.contiguous()?;
        reading.run_blocks(rows, |layer, x, run| {
            self.blocks[layer].forward(&pass, x, run)
        })
    }

    /// Next-token logits `[batch, seq, vocab]` (needs [`Decoder::load_with_head`]).
    pub fn logits(&self, tokens: &Tensor) -> Result<Tensor> {
        let (norm, head) = self
            .head
            .as_ref()
            .context("the model was loaded without its LM head")?;
        let x = one_hook(self.run(tokens, &[self.hook])?)?;
        let logits = head.forward(&norm.forward(&x)?)?;
        Ok(match self.cfg.final_softcap {
            Some(cap) => ((logits / cap)?.tanh()? * cap)?,
            None => logits,
        })
    }
}

impl ResidualModel for Decoder {
    fn d_model(&self) -> usize {
        self.cfg.hidden_size
    }

    fn width_at(&self, hook: HookPoint) -> usize {
        match hook.kind {
            HookKind::Z => self.cfg.n_heads * self.cfg.head_dim,
            _ => self.cfg.hidden_size,
        }
    }

    fn hook(&self) -> HookPoint {
        self.hook
    }

    fn max_positions(&self) -> usize {
        self.cfg.max_positions
    }

    fn uses_layer_norm(&self) -> bool {
        false
    }

    fn activations_at(&self, tokens: &Tensor, hooks: &[HookPoint]) -> Result<Vec<Tensor>> {
        self.run(tokens, hooks)
    }

    fn token_embeddings(&self) -> Tensor {
        self.embed.embeddings().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sliding_mask_keeps_the_last_window_tokens() {
        let m = mask(4, Some(2), &Device::Cpu)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        let allowed: Vec<Vec<bool>> = m
            .iter()
            .map(|r| r.iter().map(|v| *v == 0.0).collect())
            .collect();
        assert_eq!(
            allowed,
            [
                [true, false, false, false],
                [true, true, false, false],
                [false, true, true, false],
                [false, false, true, true]
            ]
        );
    }
}
