//! RMSNorm decoder-only transformers up to a residual-stream hook: the Llama family (SmolLM2,
//! Llama 2/3: RoPE, grouped-query attention, SwiGLU, tied or untied embeddings) and Gemma-2
//! (RMSNorm with `1 + w`, embeddings scaled by √d_model, attention-logit soft-capping,
//! alternating sliding-window/global attention, GeGLU, norms before and after attention and MLP).
//!
//! candle-transformers' versions expose no hidden states and cannot stop early, so this is our
//! own. Weight names follow Hugging Face (`model.layers.N.self_attn.q_proj.weight`, ...); GGUF
//! files are renamed to these at load (see `gguf.rs`), and keep llama.cpp's interleaved RoPE
//! layout of the query/key weights.

use super::kernels::{self, Act, AttentionShape, Heads, RopeTables};
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
    Gemma2,
}

/// What the forward pass needs from a `config.json` (`llama`, `mistral`, `qwen2`-like, or
/// `gemma2`).
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
    pub rope_theta: f64,
    pub max_positions: usize,
    pub tie_embeddings: bool,
    /// GeGLU (tanh GELU) instead of SwiGLU.
    pub gelu_mlp: bool,
    /// Gemma-2: `tanh(scores / c) · c` on attention logits.
    pub attn_softcap: Option<f64>,
    /// Gemma-2: window of the sliding-window layers, in tokens.
    pub sliding_window: Option<usize>,
    /// Which layers use the sliding window (Gemma-2's `layer_types`; default: even layers).
    pub sliding_layers: Vec<bool>,
    /// Gemma-2: `tanh(logits / c) · c` on the output logits.
    pub final_softcap: Option<f64>,
    /// Scores are multiplied by this (1/√head_dim; Gemma-2: query_pre_attn_scalar^-½).
    pub attn_scale: f64,
    /// Query/key weights in llama.cpp's interleaved RoPE layout (GGUF).
    pub rope_interleaved: bool,
}

impl DecoderConfig {
    /// Reads a Hugging Face `config.json` (already parsed); `file` names it in errors. A key
    /// present with the wrong type is an error naming it; absent keys take their defaults.
    pub fn from_json(cfg: &Value, file: &str) -> Result<Self> {
        let keys = JsonKeys::new(cfg, file)?;
        let family = match keys.str("model_type")? {
            Some("gemma2") => Family::Gemma2,
            _ => Family::Llama,
        };
        let gemma = family == Family::Gemma2;
        let need = |key: &str| keys.require(key, keys.positive(key)?);
        let hidden_size = need("hidden_size")?;
        let n_heads = need("num_attention_heads")?;
        let head_dim = keys.positive("head_dim")?.unwrap_or(hidden_size / n_heads);
        let n_kv_heads = keys.positive("num_key_value_heads")?.unwrap_or(n_heads);
        ensure!(
            n_heads % n_kv_heads == 0,
            "{file}: {n_heads} attention heads are not a multiple of {n_kv_heads} key/value heads"
        );
        if let Some(scaling) = keys.get("rope_scaling") {
            bail!("{file}: rope_scaling {scaling} is not supported yet");
        }
        // transformers 5 writes `rope_parameters: {rope_theta, rope_type}`.
        let rope = keys.object("rope_parameters")?;
        if let Some(kind) = rope.map(|r| r.str("rope_type")).transpose()?.flatten() {
            ensure!(
                kind == "default",
                "{file}: rope_type '{kind}' is not supported yet (only the default RoPE)"
            );
        }
        let rope_theta = match keys.positive_number("rope_theta")? {
            Some(theta) => theta,
            None => rope
                .map(|r| r.positive_number("rope_theta"))
                .transpose()?
                .flatten()
                .unwrap_or(10_000.0),
        };
        let n_layers = need("num_hidden_layers")?;
        let sliding_layers: Vec<bool> = match keys.strings("layer_types")? {
            Some(types) if gemma => types.iter().map(|&t| t == "sliding_attention").collect(),
            _ => (0..n_layers).map(|l| gemma && l % 2 == 0).collect(),
        };
        let act = match keys.str("hidden_activation")? {
            Some(act) => act,
            None => {
                keys.str("hidden_act")?
                    .unwrap_or(if gemma { "gelu_pytorch_tanh" } else { "silu" })
            }
        };
        let gelu_mlp = match act {
            "silu" | "swish" => false,
            "gelu_pytorch_tanh" | "gelu_new" | "gelu" => true,
            other => bail!("{file}: hidden activation '{other}' is not supported"),
        };
        // Gemma-2's own keys, read for Gemma-2 only.
        let gemma_number = |key: &str| -> Result<Option<f64>> {
            Ok(if gemma {
                keys.positive_number(key)?
            } else {
                None
            })
        };
        let attn_scale = match gemma_number("query_pre_attn_scalar")? {
            Some(q) => q.powf(-0.5),
            None => (head_dim as f64).powf(-0.5),
        };
        Ok(Self {
            family,
            vocab_size: need("vocab_size")?,
            hidden_size,
            n_layers,
            sliding_layers,
            n_heads,
            n_kv_heads,
            head_dim,
            intermediate_size: need("intermediate_size")?,
            rms_norm_eps: keys.positive_number("rms_norm_eps")?.unwrap_or(1e-6),
            rope_theta,
            max_positions: keys.positive("max_position_embeddings")?.unwrap_or(4096),
            tie_embeddings: keys.bool("tie_word_embeddings")?.unwrap_or(gemma),
            gelu_mlp,
            attn_softcap: gemma_number("attn_logit_softcapping")?,
            sliding_window: if gemma {
                keys.positive("sliding_window")?
            } else {
                None
            },
            final_softcap: gemma_number("final_logit_softcapping")?,
            attn_scale,
            rope_interleaved: keys.bool("rope_interleaved")?.unwrap_or(false),
        })
    }

    /// Whether `layer` attends within a sliding window.
    fn is_sliding(&self, layer: usize) -> bool {
        self.sliding_window.is_some() && self.sliding_layers.get(layer).copied().unwrap_or(false)
    }
}

/// RMSNorm: `x / rms(x) · w` (Llama) or `· (1 + w)` (Gemma).
struct RmsNorm {
    weight: Tensor,
    eps: f64,
}

impl RmsNorm {
    fn load(vb: VarBuilder, d: usize, cfg: &DecoderConfig) -> Result<Self> {
        let w = vb.get(d, "weight")?;
        let weight = match cfg.family {
            Family::Gemma2 => (w + 1.0)?,
            Family::Llama => w,
        };
        Ok(Self {
            weight,
            eps: cfg.rms_norm_eps,
        })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        candle_nn::ops::rms_norm(x, &self.weight, self.eps as f32)
    }
}

/// A linear layer with its weight stored `[in, out]` (several Hugging Face `[out, in]`
/// projections of the same input side by side), so that rows multiply from the right.
struct Dense {
    weight: Tensor,
    bias: Option<Tensor>,
    bias_host: Option<Vec<f32>>,
}

impl Dense {
    /// Loads the projections `names` (each `[out_i, in]`, with a bias when `bias`) as one.
    fn load(vb: &VarBuilder, names: &[(&str, usize)], d_in: usize, bias: bool) -> Result<Self> {
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
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let y = x.broadcast_matmul(&self.weight)?;
        match &self.bias {
            Some(b) => y.broadcast_add(b),
            None => Ok(y),
        }
    }

    /// `x W + b` for rows `x` `[n, in]` (CPU), the bias added in place.
    fn forward_rows(&self, x: &Tensor) -> Result<Tensor> {
        let y = x.matmul(&self.weight)?;
        if let Some(b) = &self.bias_host {
            kernels::update(&y, |v| {
                kernels::bias_act(v, Some(b), Act::Identity, b.len())
            })?;
        }
        Ok(y)
    }
}

struct Attention {
    /// q, k and v projections side by side.
    qkv: Dense,
    o: Dense,
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
            n_heads: cfg.n_heads,
            n_kv_heads: cfg.n_kv_heads,
            head_dim: hd,
        })
    }

    /// Attention with candle tensor operations (any device), `x` `[batch, seq, d]`.
    fn forward(
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
        let q = rope.apply(&heads(0, self.n_heads)?)?;
        let k = rope.apply(&heads(q_width, self.n_kv_heads)?)?;
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
        let y = probs
            .matmul(&v)?
            .transpose(1, 2)?
            .reshape((b, s, self.n_heads * self.head_dim))?;
        self.o.forward(&y)
    }

    /// The same attention with the CPU kernels, `x` `[rows, d]` in windows of `seq` rows:
    /// one product for q, k and v, RoPE in place, all heads at once, the output product.
    fn forward_rows(
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
        self.o.forward_rows(&kernels::tensor(y, rows, q_width)?)
    }
}

/// Rotary position embedding tables for one window length.
struct Rope {
    cos: Tensor,
    sin: Tensor,
    interleaved: bool,
}

impl Rope {
    fn new(cfg: &DecoderConfig, s: usize, device: &Device) -> candle_core::Result<Self> {
        let half = cfg.head_dim / 2;
        let inv: Vec<f32> = (0..half)
            .map(|i| (1.0 / cfg.rope_theta.powf(2.0 * i as f64 / cfg.head_dim as f64)) as f32)
            .collect();
        let inv = Tensor::from_vec(inv, (1, half), device)?;
        let pos = Tensor::arange(0u32, s as u32, device)?
            .to_dtype(DType::F32)?
            .reshape((s, 1))?;
        let freqs = pos.broadcast_mul(&inv)?;
        Ok(Self {
            cos: freqs.cos()?,
            sin: freqs.sin()?,
            interleaved: cfg.rope_interleaved,
        })
    }

    /// The tables in `dtype` (the model's).
    fn in_dtype(self, dtype: DType) -> candle_core::Result<Self> {
        Ok(Self {
            cos: self.cos.to_dtype(dtype)?,
            sin: self.sin.to_dtype(dtype)?,
            interleaved: self.interleaved,
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

struct Mlp {
    /// gate and up projections side by side.
    gate_up: Dense,
    down: Dense,
    intermediate: usize,
    gelu: bool,
}

impl Mlp {
    fn load(vb: VarBuilder, cfg: &DecoderConfig) -> Result<Self> {
        let (d, f) = (cfg.hidden_size, cfg.intermediate_size);
        Ok(Self {
            gate_up: Dense::load(&vb, &[("gate_proj", f), ("up_proj", f)], d, false)?,
            down: Dense::load(&vb, &[("down_proj", d)], f, false)?,
            intermediate: f,
            gelu: cfg.gelu_mlp,
        })
    }

    /// The MLP with candle tensor operations (any device).
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let pair = self.gate_up.forward(x)?;
        let f = self.intermediate;
        let g = pair.narrow(2, 0, f)?;
        let g = if self.gelu { g.gelu()? } else { g.silu()? };
        self.down.forward(&(g * pair.narrow(2, f, f)?)?)
    }

    /// The same MLP on rows with the CPU kernels.
    fn forward_rows(&self, x: &Tensor) -> Result<Tensor> {
        let rows = x.dim(0)?;
        let f = self.intermediate;
        let pair = self.gate_up.forward_rows(x)?;
        let act = if self.gelu { Act::GeluTanh } else { Act::Silu };
        let gated = kernels::with_data(&pair, |p| kernels::gated(p, act, f))?;
        drop(pair);
        self.down.forward_rows(&kernels::tensor(gated, rows, f)?)
    }
}

struct Block {
    input_norm: RmsNorm,
    attn: Attention,
    /// Llama: before the MLP. Gemma-2: after attention.
    post_attention_norm: RmsNorm,
    /// Gemma-2 only: before / after the MLP.
    pre_feedforward_norm: Option<RmsNorm>,
    post_feedforward_norm: Option<RmsNorm>,
    mlp: Mlp,
    sliding: bool,
}

impl Block {
    fn load(vb: VarBuilder, cfg: &DecoderConfig, layer: usize) -> Result<Self> {
        let d = cfg.hidden_size;
        let gemma = cfg.family == Family::Gemma2;
        let optional = |name: &str| -> Result<Option<RmsNorm>> {
            Ok(if gemma {
                Some(RmsNorm::load(vb.pp(name), d, cfg)?)
            } else {
                None
            })
        };
        Ok(Self {
            input_norm: RmsNorm::load(vb.pp("input_layernorm"), d, cfg)?,
            attn: Attention::load(vb.pp("self_attn"), cfg)?,
            post_attention_norm: RmsNorm::load(vb.pp("post_attention_layernorm"), d, cfg)?,
            pre_feedforward_norm: optional("pre_feedforward_layernorm")?,
            post_feedforward_norm: optional("post_feedforward_layernorm")?,
            mlp: Mlp::load(vb.pp("mlp"), cfg)?,
            sliding: cfg.is_sliding(layer),
        })
    }

    fn forward(
        &self,
        x: &Tensor,
        rope: &Rope,
        masks: &Masks,
        cfg: &DecoderConfig,
    ) -> candle_core::Result<Tensor> {
        let mask = if self.sliding {
            &masks.sliding
        } else {
            &masks.causal
        };
        let a = self
            .attn
            .forward(&self.input_norm.forward(x)?, rope, mask, cfg)?;
        match (&self.pre_feedforward_norm, &self.post_feedforward_norm) {
            (Some(pre), Some(post)) => {
                let h = (x + self.post_attention_norm.forward(&a)?)?;
                let m = self.mlp.forward(&pre.forward(&h)?)?;
                &h + post.forward(&m)?
            }
            _ => {
                let h = (x + a)?;
                let m = self.mlp.forward(&self.post_attention_norm.forward(&h)?)?;
                &h + m
            }
        }
    }

    /// The same block with the CPU kernels, `x` `[rows, d]` in windows of `seq` rows.
    fn forward_rows(
        &self,
        x: &Tensor,
        rope: &RopeTables,
        seq: usize,
        cfg: &DecoderConfig,
    ) -> Result<Tensor> {
        let window = if self.sliding {
            cfg.sliding_window
        } else {
            None
        };
        let a = self
            .attn
            .forward_rows(&self.input_norm.forward(x)?, rope, seq, window, cfg)?;
        let gemma = (&self.pre_feedforward_norm, &self.post_feedforward_norm);
        let h = match gemma {
            (Some(_), Some(_)) => self.post_attention_norm.forward(&a)?,
            _ => a,
        };
        add_in_place(&h, x)?;
        let m = match gemma {
            (Some(pre), Some(post)) => post.forward(&self.mlp.forward_rows(&pre.forward(&h)?)?)?,
            _ => self
                .mlp
                .forward_rows(&self.post_attention_norm.forward(&h)?)?,
        };
        add_in_place(&m, &h)?;
        Ok(m)
    }
}

/// `y ← y + x` for CPU rows (y freshly made, not shared).
fn add_in_place(y: &Tensor, x: &Tensor) -> Result<()> {
    let cols = y.dim(1)?;
    kernels::with_data(x, |x| {
        kernels::update(y, |v| kernels::add_residual(v, None, x, cols))
    })?
}

struct Masks {
    causal: Tensor,
    sliding: Tensor,
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

/// A Llama-family or Gemma-2 model truncated after the blocks its hook needs.
pub struct Decoder {
    embed: Embedding,
    blocks: Vec<Block>,
    /// Final norm and LM head, only when loaded with [`Decoder::load_with_head`].
    head: Option<(RmsNorm, Linear)>,
    cfg: DecoderConfig,
    hook: HookPoint,
    device: Device,
}

impl Decoder {
    /// Loads embeddings and the blocks before `hook` from `vb` (Hugging Face names).
    pub fn load(vb: VarBuilder, cfg: DecoderConfig, hook: HookPoint) -> Result<Self> {
        hook.check_within(cfg.n_layers, "the model")?;
        let vb_model = vb.pp("model");
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
        let norm = RmsNorm::load(vb.pp("model.norm"), model.cfg.hidden_size, &model.cfg)?;
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

    fn run_blocks(&self, tokens: &Tensor, n_blocks: usize) -> Result<Tensor> {
        let (_, s) = tokens.dims2()?;
        ensure!(
            s <= self.cfg.max_positions,
            "window of {s} tokens is longer than the model's {} positions",
            self.cfg.max_positions
        );
        let mut x = self.embed.forward(tokens)?;
        if self.cfg.family == Family::Gemma2 {
            x = (x * (self.cfg.hidden_size as f64).sqrt())?;
        }
        if self.device.is_cpu() && x.dtype() == DType::F32 {
            return self.run_blocks_cpu(x, n_blocks);
        }
        let dtype = x.dtype();
        let rope = Rope::new(&self.cfg, s, &self.device)?.in_dtype(dtype)?;
        let masks = Masks {
            causal: mask(s, None, &self.device)?.to_dtype(dtype)?,
            sliding: mask(s, self.cfg.sliding_window, &self.device)?.to_dtype(dtype)?,
        };
        for block in &self.blocks[..n_blocks] {
            x = block.forward(&x, &rope, &masks, &self.cfg)?;
        }
        Ok(x)
    }

    /// [`Decoder::run_blocks`] with the CPU kernels, from the embeddings `x`
    /// `[batch, seq, d]`.
    fn run_blocks_cpu(&self, x: Tensor, n_blocks: usize) -> Result<Tensor> {
        let (b, s, d) = x.dims3()?;
        let cfg = &self.cfg;
        let rope = RopeTables::new(s, cfg.head_dim, cfg.rope_theta, cfg.rope_interleaved);
        let mut x = x.reshape((b * s, d))?.contiguous()?;
        for block in &self.blocks[..n_blocks] {
            x = block.forward_rows(&x, &rope, s, cfg)?;
        }
        Ok(x.reshape((b, s, d))?)
    }

    /// Next-token logits `[batch, seq, vocab]` (needs [`Decoder::load_with_head`]).
    pub fn logits(&self, tokens: &Tensor) -> Result<Tensor> {
        let (norm, head) = self
            .head
            .as_ref()
            .context("the model was loaded without its LM head")?;
        let x = self.run_blocks(tokens, self.blocks.len())?;
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

    fn hook(&self) -> HookPoint {
        self.hook
    }

    fn max_positions(&self) -> usize {
        self.cfg.max_positions
    }

    fn uses_layer_norm(&self) -> bool {
        false
    }

    fn activations(&self, tokens: &Tensor) -> Result<Tensor> {
        self.run_blocks(tokens, self.blocks.len())
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
