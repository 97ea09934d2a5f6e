//! GPT-2 (Hugging Face `GPT2Model` weights, Conv1D layout) up to a residual-stream hook.
//!
//! candle-transformers has no GPT-2, so this is written here. Weight names follow
//! `openai-community/gpt2` (`wte`, `wpe`, `h.N.attn.c_attn`, ...), with or without the
//! `transformer.` prefix that `GPT2LMHeadModel.save_pretrained` adds. Conv1D weights are stored
//! `[in, out]`, so they multiply from the right without a transpose.

use super::{HookPoint, ResidualModel};
use anyhow::{bail, ensure, Result};
use candle_core::{Device, Module, Tensor, D};
use candle_nn::{Embedding, LayerNorm, VarBuilder};
use serde::Deserialize;

/// The fields of a Hugging Face GPT-2 `config.json` that the forward pass needs.
#[derive(Debug, Clone, Deserialize)]
pub struct Gpt2Config {
    pub vocab_size: usize,
    pub n_positions: usize,
    pub n_embd: usize,
    pub n_layer: usize,
    pub n_head: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_epsilon: f64,
    #[serde(default = "default_activation")]
    pub activation_function: String,
}

fn default_eps() -> f64 {
    1e-5
}

fn default_activation() -> String {
    "gelu_new".into()
}

#[derive(Debug, Clone, Copy)]
enum Activation {
    /// tanh approximation (`gelu_new`, `gelu_pytorch_tanh`, `gelu_fast`).
    GeluTanh,
    /// exact erf GELU (`gelu`).
    GeluErf,
    Relu,
}

impl Activation {
    fn from_name(name: &str) -> Result<Self> {
        Ok(match name {
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Self::GeluTanh,
            "gelu" => Self::GeluErf,
            "relu" => Self::Relu,
            other => bail!("GPT-2 activation_function '{other}' is not supported"),
        })
    }

    fn apply(self, x: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Self::GeluTanh => x.gelu(),
            Self::GeluErf => x.gelu_erf(),
            Self::Relu => x.relu(),
        }
    }
}

/// A Hugging Face Conv1D: `y = x W + b` with `W` stored `[in, out]`.
struct Conv1D {
    weight: Tensor,
    bias: Tensor,
}

impl Conv1D {
    fn load(vb: VarBuilder, d_in: usize, d_out: usize) -> Result<Self> {
        Ok(Self {
            weight: vb.get((d_in, d_out), "weight")?,
            bias: vb.get(d_out, "bias")?,
        })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let (b, s, d) = x.dims3()?;
        let y = x
            .reshape((b * s, d))?
            .matmul(&self.weight)?
            .broadcast_add(&self.bias)?;
        y.reshape((b, s, ()))
    }
}

struct Attention {
    c_attn: Conv1D,
    c_proj: Conv1D,
    n_head: usize,
}

impl Attention {
    fn forward(&self, x: &Tensor, mask: &Tensor) -> candle_core::Result<Tensor> {
        let (b, s, d) = x.dims3()?;
        let head_dim = d / self.n_head;
        let qkv = self.c_attn.forward(x)?;
        let split = |i: usize| -> candle_core::Result<Tensor> {
            qkv.narrow(D::Minus1, i * d, d)?
                .reshape((b, s, self.n_head, head_dim))?
                .transpose(1, 2)?
                .contiguous()
        };
        let (q, k, v) = (split(0)?, split(1)?, split(2)?);
        let scores = (q.matmul(&k.t()?.contiguous()?)? / (head_dim as f64).sqrt())?;
        let probs = candle_nn::ops::softmax_last_dim(&scores.broadcast_add(mask)?)?;
        let y = probs.matmul(&v)?.transpose(1, 2)?.reshape((b, s, d))?;
        self.c_proj.forward(&y)
    }
}

struct Block {
    ln_1: LayerNorm,
    attn: Attention,
    ln_2: LayerNorm,
    c_fc: Conv1D,
    c_proj: Conv1D,
    activation: Activation,
}

impl Block {
    fn load(vb: VarBuilder, cfg: &Gpt2Config, activation: Activation) -> Result<Self> {
        let d = cfg.n_embd;
        let eps = cfg.layer_norm_epsilon;
        Ok(Self {
            ln_1: candle_nn::layer_norm(d, eps, vb.pp("ln_1"))?,
            attn: Attention {
                c_attn: Conv1D::load(vb.pp("attn.c_attn"), d, 3 * d)?,
                c_proj: Conv1D::load(vb.pp("attn.c_proj"), d, d)?,
                n_head: cfg.n_head,
            },
            ln_2: candle_nn::layer_norm(d, eps, vb.pp("ln_2"))?,
            c_fc: Conv1D::load(vb.pp("mlp.c_fc"), d, 4 * d)?,
            c_proj: Conv1D::load(vb.pp("mlp.c_proj"), 4 * d, d)?,
            activation,
        })
    }

    fn forward(&self, x: &Tensor, mask: &Tensor) -> candle_core::Result<Tensor> {
        let x = (x + self.attn.forward(&self.ln_1.forward(x)?, mask)?)?;
        let h = self
            .activation
            .apply(&self.c_fc.forward(&self.ln_2.forward(&x)?)?)?;
        x + self.c_proj.forward(&h)?
    }
}

/// GPT-2 truncated after the blocks that its hook needs.
pub struct Gpt2 {
    wte: Embedding,
    wpe: Embedding,
    blocks: Vec<Block>,
    config: Gpt2Config,
    hook: HookPoint,
    device: Device,
}

impl Gpt2 {
    /// Loads embeddings and the blocks before `hook` from `vb` (prefix detected).
    pub fn load(vb: VarBuilder, config: Gpt2Config, hook: HookPoint) -> Result<Self> {
        ensure!(
            config.n_head > 0 && config.n_embd.is_multiple_of(config.n_head),
            "GPT-2 config: n_embd {} is not divisible by n_head {}",
            config.n_embd,
            config.n_head
        );
        let vb = if vb.contains_tensor("transformer.wte.weight") {
            vb.pp("transformer")
        } else {
            vb
        };
        let activation = Activation::from_name(&config.activation_function)?;
        let wte = candle_nn::embedding(config.vocab_size, config.n_embd, vb.pp("wte"))?;
        let wpe = candle_nn::embedding(config.n_positions, config.n_embd, vb.pp("wpe"))?;
        let blocks = (0..hook.blocks_needed())
            .map(|i| Block::load(vb.pp(format!("h.{i}")), &config, activation))
            .collect::<Result<Vec<_>>>()?;
        let device = vb.device().clone();
        Ok(Self {
            wte,
            wpe,
            blocks,
            config,
            hook,
            device,
        })
    }

    fn causal_mask(&self, s: usize) -> candle_core::Result<Tensor> {
        let mask: Vec<f32> = (0..s)
            .flat_map(|i| (0..s).map(move |j| if j > i { f32::NEG_INFINITY } else { 0.0 }))
            .collect();
        Tensor::from_vec(mask, (s, s), &self.device)
    }
}

impl ResidualModel for Gpt2 {
    fn d_model(&self) -> usize {
        self.config.n_embd
    }

    fn hook(&self) -> HookPoint {
        self.hook
    }

    fn max_positions(&self) -> usize {
        self.config.n_positions
    }

    fn uses_layer_norm(&self) -> bool {
        true
    }

    fn residual(&self, tokens: &Tensor) -> Result<Tensor> {
        let (_, s) = tokens.dims2()?;
        ensure!(
            s <= self.config.n_positions,
            "window of {s} tokens is longer than the model's {} positions",
            self.config.n_positions
        );
        let positions = Tensor::arange(0u32, s as u32, &self.device)?;
        let mut x = self
            .wte
            .forward(tokens)?
            .broadcast_add(&self.wpe.forward(&positions)?)?;
        let mask = self.causal_mask(s)?;
        for block in &self.blocks {
            x = block.forward(&x, &mask)?;
        }
        Ok(x)
    }

    fn token_embeddings(&self) -> Tensor {
        self.wte.embeddings().clone()
    }
}
