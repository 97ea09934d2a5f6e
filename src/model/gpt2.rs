//! GPT-2 (Hugging Face `GPT2Model` weights, Conv1D layout) up to a hook, and the LayerNorm-model
//! parts GPT-NeoX shares with it.
//!
//! candle-transformers has no GPT-2, so this is written here. Weight names follow
//! `openai-community/gpt2` (`wte`, `wpe`, `h.N.attn.c_attn`, ...), with or without the
//! `transformer.` prefix that `GPT2LMHeadModel.save_pretrained` adds. Conv1D weights are stored
//! `[in, out]`, so they multiply from the right without a transpose.

use super::hook_set::{BlockRun, HookSet, Reading};
use super::kernels::{self, Act, AttentionShape, Heads, RopeTables};
use super::{HookKind, HookPoint, ResidualModel};
use crate::json_keys::JsonKeys;
use anyhow::{bail, ensure, Context, Result};
use candle_core::{DType, Device, Module, Tensor, D};
use candle_nn::{Embedding, LayerNorm, VarBuilder};

/// The fields of a Hugging Face GPT-2 `config.json` that the forward pass needs.
#[derive(Debug, Clone)]
pub struct Gpt2Config {
    pub vocab_size: usize,
    pub n_positions: usize,
    pub n_embd: usize,
    pub n_layer: usize,
    pub n_head: usize,
    pub layer_norm_epsilon: f64,
    pub activation_function: String,
}

impl Gpt2Config {
    /// Reads a parsed GPT-2 `config.json` (`file` names it in errors): the sizes must be
    /// positive integers, `layer_norm_epsilon` (default 1e-5) a number > 0 and
    /// `activation_function` (default `gelu_new`) a string.
    pub fn from_json(cfg: &serde_json::Value, file: &str) -> Result<Self> {
        let keys = JsonKeys::new(cfg, file)?;
        let size = |key: &str| keys.require(key, keys.positive(key)?);
        Ok(Self {
            vocab_size: size("vocab_size")?,
            n_positions: size("n_positions")?,
            n_embd: size("n_embd")?,
            n_layer: size("n_layer")?,
            n_head: size("n_head")?,
            layer_norm_epsilon: keys.positive_number("layer_norm_epsilon")?.unwrap_or(1e-5),
            activation_function: keys
                .str("activation_function")?
                .unwrap_or("gelu_new")
                .to_string(),
        })
    }
}

#[derive(Debug, Clone, Copy)]
pub(super) enum Activation {
    /// tanh approximation (`gelu_new`, `gelu_pytorch_tanh`, `gelu_fast`).
    GeluTanh,
    /// exact erf GELU (`gelu`).
    GeluErf,
    Relu,
}

impl Activation {
    /// The activation `key` (for the message: `activation_function`, `hidden_act`) names.
    pub(super) fn from_name(name: &str, key: &str) -> Result<Self> {
        Ok(match name {
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Self::GeluTanh,
            "gelu" => Self::GeluErf,
            "relu" => Self::Relu,
            other => bail!(
                "{key} '{other}' is not supported (saecooc runs gelu_new, gelu_pytorch_tanh, \
                 gelu_fast, gelu and relu)"
            ),
        })
    }

    fn apply(self, x: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Self::GeluTanh => x.gelu(),
            Self::GeluErf => x.gelu_erf(),
            Self::Relu => x.relu(),
        }
    }

    /// The CPU kernel that fuses this activation with the bias add, if there is one.
    fn kernel(self) -> Option<Act> {
        match self {
            Self::GeluTanh => Some(Act::GeluTanh),
            Self::Relu => Some(Act::Relu),
            Self::GeluErf => None,
        }
    }
}

/// How a forward pass runs: the fused CPU kernels (f32 on the CPU) or candle tensor operations
/// (any device, any dtype). Both work on rows `[batch · seq, width]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Exec {
    Kernels,
    Tensors,
}

impl Exec {
    /// The kernels for f32 on the CPU, tensor operations elsewhere.
    pub(super) fn for_weights(device: &Device, dtype: DType) -> Self {
        if device.is_cpu() && dtype == DType::F32 {
            Self::Kernels
        } else {
            Self::Tensors
        }
    }
}

/// A Hugging Face Conv1D: `y = x W + b` with `W` stored `[in, out]`.
pub(super) struct Conv1D {
    weight: Tensor,
    bias: Tensor,
    /// `bias` on the host, for the CPU kernels.
    bias_host: Vec<f32>,
}

impl Conv1D {
    fn load(vb: VarBuilder, d_in: usize, d_out: usize) -> Result<Self> {
        Self::new(vb.get((d_in, d_out), "weight")?, vb.get(d_out, "bias")?)
    }

    /// A `torch.nn.Linear` (`weight` stored `[out, in]`) as a Conv1D.
    pub(super) fn load_linear(vb: VarBuilder, d_in: usize, d_out: usize) -> Result<Self> {
        let weight = vb.get((d_out, d_in), "weight")?.t()?.contiguous()?;
        Self::new(weight, vb.get(d_out, "bias")?)
    }

    /// From `weight` `[in, out]` and `bias` `[out]`.
    pub(super) fn new(weight: Tensor, bias: Tensor) -> Result<Self> {
        Ok(Self {
            weight,
            bias_host: bias.to_dtype(DType::F32)?.to_vec1()?,
            bias,
        })
    }

    /// What the layer outputs for every input that `norm` normalises, `norm.bias · W + b`:
    /// the part of its output that TransformerLens' `fold_ln` moves into the bias.
    pub(super) fn constant_output(&self, norm: &Norm) -> Result<Tensor> {
        let bias = norm.layer.bias().map_or_else(
            || self.bias.zeros_like(),
            |nb| {
                nb.unsqueeze(0)?
                    .matmul(&self.weight)?
                    .squeeze(0)?
                    .add(&self.bias)
            },
        )?;
        Ok(bias)
    }

    /// `act(x W + b)` for rows `x` (`[n, in]`, CPU): one product, then the bias and the
    /// activation in place.
    fn forward_rows(&self, x: &Tensor, act: Act) -> Result<Tensor> {
        let y = x.matmul(&self.weight)?;
        let cols = self.bias_host.len();
        kernels::update(&y, |v| {
            kernels::bias_act(v, Some(&self.bias_host), act, cols)
        })?;
        Ok(y)
    }

    /// `x W + b` for rows `x` (`[n, in]`).
    pub(super) fn forward(&self, x: &Tensor, exec: Exec) -> Result<Tensor> {
        match exec {
            Exec::Kernels => self.forward_rows(x, Act::Identity),
            Exec::Tensors => Ok(x.matmul(&self.weight)?.broadcast_add(&self.bias)?),
        }
    }

    /// `act(x W + b)` for rows `x`, fused where the kernels have the activation.
    pub(super) fn forward_act(&self, x: &Tensor, act: Activation, exec: Exec) -> Result<Tensor> {
        match (exec, act.kernel()) {
            (Exec::Kernels, Some(kernel)) => self.forward_rows(x, kernel),
            _ => Ok(act.apply(&self.forward(x, exec)?)?),
        }
    }

    /// `x W + b + residual` for rows `x` (with the kernels: added in place).
    pub(super) fn forward_plus(&self, x: &Tensor, residual: &Tensor, exec: Exec) -> Result<Tensor> {
        if exec == Exec::Tensors {
            return Ok((self.forward(x, exec)? + residual)?);
        }
        let y = x.matmul(&self.weight)?;
        let cols = self.bias_host.len();
        kernels::with_data(residual, |r| {
            kernels::update(&y, |v| {
                kernels::add_residual(v, Some(&self.bias_host), r, cols)
            })
        })??;
        Ok(y)
    }
}

/// The causal mask of a window of `s` tokens (0 on and below the diagonal, −∞ above), `[s, s]`.
pub(super) fn causal_mask(s: usize, dtype: DType, device: &Device) -> Result<Tensor> {
    let mask: Vec<f32> = (0..s)
        .flat_map(|i| (0..s).map(move |j| if j > i { f32::NEG_INFINITY } else { 0.0 }))
        .collect();
    Ok(Tensor::from_vec(mask, (s, s), device)?.to_dtype(dtype)?)
}

/// Causal attention with candle tensor operations: `q`, `k`, `v` `[batch, heads, seq, head_dim]`
/// give every head's weighted values, heads concatenated, as rows `[batch · seq, heads · head_dim]`.
pub(super) fn attention_tensors(q: &Tensor, k: &Tensor, v: &Tensor) -> Result<Tensor> {
    let (b, h, s, head_dim) = q.dims4()?;
    let mask = causal_mask(s, q.dtype(), q.device())?;
    let scores = (q.matmul(&k.t()?.contiguous()?)? / (head_dim as f64).sqrt())?;
    let probs = candle_nn::ops::softmax_last_dim(&scores.broadcast_add(&mask)?)?;
    Ok(probs
        .matmul(v)?
        .transpose(1, 2)?
        .reshape((b * s, h * head_dim))?)
}

/// Rotary position embeddings on the first `dims` values of every query and key head (GPT-NeoX:
/// partial rotary, the rotated pairs `(i, i + dims/2)`).
pub(super) struct Rotary {
    pub dims: usize,
    pub base: f64,
}

impl Rotary {
    /// Rotates the queries and keys of `qkv` (rows `[q | k | v]` of windows of `seq` tokens,
    /// CPU) in place.
    fn apply_rows(&self, qkv: &Tensor, seq: usize, n_heads: usize, head_dim: usize) -> Result<()> {
        let tables = RopeTables::new(seq, self.dims, self.base, false);
        let d = n_heads * head_dim;
        kernels::update(qkv, |data| {
            for col in [0, d] {
                tables.apply_to_heads(data, 3 * d, col, n_heads, head_dim, seq);
            }
        })?;
        Ok(())
    }

    /// `x` (`[batch, heads, seq, head_dim]`) with its first `dims` values of each head rotated.
    fn apply_tensor(&self, x: &Tensor) -> Result<Tensor> {
        let (_, _, seq, head_dim) = x.dims4()?;
        let tables = RopeTables::new(seq, self.dims, self.base, false);
        let table = |v: Vec<f32>| -> Result<Tensor> {
            Ok(Tensor::from_vec(v, (seq, self.dims / 2), x.device())?.to_dtype(x.dtype())?)
        };
        let (cos, sin) = (table(tables.cos)?, table(tables.sin)?);
        let rotated = candle_nn::rotary_emb::rope(
            &x.narrow(D::Minus1, 0, self.dims)?.contiguous()?,
            &cos,
            &sin,
        )?;
        let kept = x.narrow(D::Minus1, self.dims, head_dim - self.dims)?;
        Ok(Tensor::cat(&[&rotated, &kept], D::Minus1)?.contiguous()?)
    }
}

/// Causal self-attention with the query, key and value projections fused as GPT-2's `c_attn`
/// (outputs `[q | k | v]`, heads side by side in each).
pub(super) struct Attention {
    pub c_attn: Conv1D,
    pub c_proj: Conv1D,
    pub n_head: usize,
    pub rotary: Option<Rotary>,
}

impl Attention {
    /// Every head's weighted values (`hook_z`), heads concatenated, for rows `normed` of windows
    /// of `seq` tokens.
    fn z(&self, normed: &Tensor, seq: usize, exec: Exec) -> Result<Tensor> {
        let (rows, d) = normed.dims2()?;
        let head_dim = d / self.n_head;
        let qkv = self.c_attn.forward(normed, exec)?;
        if exec == Exec::Tensors {
            let split = |i: usize| -> Result<Tensor> {
                let heads = qkv
                    .narrow(D::Minus1, i * d, d)?
                    .reshape((rows / seq, seq, self.n_head, head_dim))?
                    .transpose(1, 2)?
                    .contiguous()?;
                match (&self.rotary, i) {
                    (Some(rotary), 0 | 1) => rotary.apply_tensor(&heads),
                    _ => Ok(heads),
                }
            };
            return attention_tensors(&split(0)?, &split(1)?, &split(2)?);
        }
        if let Some(rotary) = &self.rotary {
            rotary.apply_rows(&qkv, seq, self.n_head, head_dim)?;
        }
        let shape = AttentionShape {
            seq,
            n_heads: self.n_head,
            n_kv_heads: self.n_head,
            head_dim,
            scale: 1.0 / (head_dim as f32).sqrt(),
            softcap: None,
            window: None,
        };
        let y = kernels::with_data(&qkv, |data| {
            let part = |col| Heads {
                data,
                stride: 3 * d,
                col,
            };
            kernels::causal_attention(part(0), part(d), part(2 * d), rows, shape)
        })??;
        kernels::tensor(y, rows, d)
    }
}

/// A LayerNorm with its parameters on the host too, for the CPU kernels.
pub(super) struct Norm {
    layer: LayerNorm,
    /// The same normalisation without weight and bias.
    unscaled: LayerNorm,
    weight: Vec<f32>,
    bias: Vec<f32>,
    eps: f32,
}

impl Norm {
    pub(super) fn load(vb: VarBuilder, d: usize, eps: f64) -> Result<Self> {
        let layer = candle_nn::layer_norm(d, eps, vb)?;
        let ones = layer.weight().ones_like()?;
        Ok(Self {
            weight: layer.weight().to_dtype(DType::F32)?.to_vec1()?,
            bias: layer
                .bias()
                .map(|b| b.to_dtype(DType::F32)?.to_vec1())
                .transpose()?
                .unwrap_or_else(|| vec![0.0; d]),
            eps: eps as f32,
            unscaled: LayerNorm::new(ones.clone(), ones.zeros_like()?, eps),
            layer,
        })
    }

    /// The LayerNorm of rows `x`.
    pub(super) fn forward(&self, x: &Tensor, exec: Exec) -> Result<Tensor> {
        if exec == Exec::Tensors {
            return Ok(self.layer.forward(x)?);
        }
        let (rows, d) = x.dims2()?;
        let y = kernels::with_data(x, |x| {
            kernels::layer_norm(x, &self.weight, &self.bias, self.eps, d)
        })?;
        kernels::tensor(y, rows, d)
    }

    /// `(x − mean)/√(var + eps)` without the weight and bias: TransformerLens'
    /// `hook_normalized` once `fold_ln` has folded them into the next layer.
    pub(super) fn normalize(&self, x: &Tensor) -> Result<Tensor> {
        Ok(self.unscaled.forward(x)?)
    }
}

/// A pre-norm transformer block with LayerNorms: attention, then an MLP that reads the stream
/// after attention (GPT-2) or, `parallel`, the block's input (GPT-NeoX's
/// `use_parallel_residual`); both outputs are added to the stream.
pub(super) struct Block {
    pub ln_1: Norm,
    pub attn: Attention,
    pub ln_2: Norm,
    pub c_fc: Conv1D,
    pub c_proj: Conv1D,
    pub activation: Activation,
    pub parallel: bool,
}

impl Block {
    fn load(vb: VarBuilder, cfg: &Gpt2Config, activation: Activation) -> Result<Self> {
        let d = cfg.n_embd;
        let eps = cfg.layer_norm_epsilon;
        Ok(Self {
            ln_1: Norm::load(vb.pp("ln_1"), d, eps)?,
            attn: Attention {
                c_attn: Conv1D::load(vb.pp("attn.c_attn"), d, 3 * d)?,
                c_proj: Conv1D::load(vb.pp("attn.c_proj"), d, d)?,
                n_head: cfg.n_head,
                rotary: None,
            },
            ln_2: Norm::load(vb.pp("ln_2"), d, eps)?,
            c_fc: Conv1D::load(vb.pp("mlp.c_fc"), d, 4 * d)?,
            c_proj: Conv1D::load(vb.pp("mlp.c_proj"), 4 * d, d)?,
            activation,
            parallel: false,
        })
    }

    /// Runs the block on rows `x` (`[rows, d]`, windows of `seq` rows) as far as `run` needs,
    /// capturing what it reads, each computed as a pass stopping there computes it; returns
    /// the block's output when it ran whole. A parallel block has no `ResidMid` (its loader
    /// refuses it) and its MLP input comes first.
    fn forward(
        &self,
        x: &Tensor,
        seq: usize,
        exec: Exec,
        run: &mut BlockRun,
    ) -> Result<Option<Tensor>> {
        if self.parallel && !run.read_with(HookKind::MlpInput, || self.ln_2.normalize(x))? {
            return Ok(None);
        }
        let z = self.attn.z(&self.ln_1.forward(x, exec)?, seq, exec)?;
        if !run.read(HookKind::Z, &z)
            || !run.read_with(HookKind::AttnOut, || self.attn.c_proj.forward(&z, exec))?
        {
            return Ok(None);
        }
        let mid = self.attn.c_proj.forward_plus(&z, x, exec)?;
        if !run.read(HookKind::ResidMid, &mid) {
            return Ok(None);
        }
        if !self.parallel && !run.read_with(HookKind::MlpInput, || self.ln_2.normalize(&mid))? {
            return Ok(None);
        }
        let mlp_reads = if self.parallel { x } else { &mid };
        let normed = self.ln_2.forward(mlp_reads, exec)?;
        let h = self.c_fc.forward_act(&normed, self.activation, exec)?;
        if !run.read_with(HookKind::MlpOut, || self.c_proj.forward(&h, exec))? {
            return Ok(None);
        }
        let out = self.c_proj.forward_plus(&h, &mid, exec)?;
        run.read(HookKind::ResidPost, &out);
        Ok(Some(out))
    }
}

/// The constant part of `hook_z` at `hook` when it is a `hook_z` (see
/// [`ResidualModel::z_value_bias`]): the value columns of `ln_1.bias · W_qkv + b_qkv` of its
/// block.
pub(super) fn z_value_bias(blocks: &[Block], hook: HookPoint) -> Result<Option<Tensor>> {
    if hook.kind != HookKind::Z {
        return Ok(None);
    }
    let block = blocks
        .get(hook.layer)
        .with_context(|| format!("internal: hook {hook} is beyond the blocks loaded"))?;
    let constant = block.attn.c_attn.constant_output(&block.ln_1)?;
    let d = constant.dim(0)? / 3;
    Ok(Some(constant.narrow(0, 2 * d, d)?))
}

/// Reads `hooks` (`[batch, seq, width]` each) in one pass of the model `loaded` (its blocks,
/// and the hook it was loaded to): `token` is the token embeddings `[batch, seq, d]` (what
/// `hook_embed` reads), `stream` makes the input of block 0 from them.
pub(super) fn read_hooks(
    loaded: (&[Block], HookPoint),
    hooks: &[HookPoint],
    token: Tensor,
    stream: impl FnOnce(&Tensor) -> Result<Tensor>,
    exec: Exec,
) -> Result<Vec<Tensor>> {
    let (blocks, hook) = loaded;
    let set = HookSet::new(hooks);
    set.check_loaded(blocks.len(), hook)?;
    let (b, s, d) = token.dims3()?;
    let mut reading = Reading::new(&set);
    reading.embed(&token);
    if set.needs_input() {
        let x = stream(&token)?.reshape((b * s, d))?.contiguous()?;
        reading.input(&x);
        reading.run_blocks(x, |layer, x, run| blocks[layer].forward(x, s, exec, run))?;
    }
    reading.finish(|t| Ok(t.reshape((b, s, ()))?))
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
        let activation =
            Activation::from_name(&config.activation_function, "GPT-2 activation_function")?;
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

    /// The activations at `hooks` from one pass, as `exec` runs it.
    fn run(&self, tokens: &Tensor, hooks: &[HookPoint], exec: Exec) -> Result<Vec<Tensor>> {
        let (_, s) = tokens.dims2()?;
        ensure!(
            s <= self.config.n_positions,
            "window of {s} tokens is longer than the model's {} positions",
            self.config.n_positions
        );
        let with_positions = |token: &Tensor| -> Result<Tensor> {
            let positions = Tensor::arange(0u32, s as u32, &self.device)?;
            Ok(token.broadcast_add(&self.wpe.forward(&positions)?)?)
        };
        let token = self.wte.forward(tokens)?;
        read_hooks(
            (&self.blocks, self.hook),
            hooks,
            token,
            with_positions,
            exec,
        )
    }

    fn exec(&self) -> Exec {
        Exec::for_weights(&self.device, self.wte.embeddings().dtype())
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

    fn activations_at(&self, tokens: &Tensor, hooks: &[HookPoint]) -> Result<Vec<Tensor>> {
        self.run(tokens, hooks, self.exec())
    }

    fn z_value_bias_at(&self, hook: HookPoint) -> Result<Option<Tensor>> {
        z_value_bias(&self.blocks, hook)
    }

    fn token_embeddings(&self) -> Tensor {
        self.wte.embeddings().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::hook_set::one_hook;
    use candle_core::DType;
    use rand::{Rng, SeedableRng};
    use std::collections::HashMap;

    /// A random 2-layer GPT-2 with every parameter non-trivial.
    fn random_model(activation: &str, hook: &str) -> Gpt2 {
        let config = Gpt2Config {
            vocab_size: 50,
            n_positions: 16,
            n_embd: 32,
            n_layer: 2,
            n_head: 4,
            layer_norm_epsilon: 1e-5,
            activation_function: activation.into(),
        };
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let mut tensors = HashMap::new();
        let mut add = |name: String, shape: &[usize], base: f32| {
            let n = shape.iter().product();
            let v: Vec<f32> = (0..n)
                .map(|_| base + rng.random_range(-0.3..0.3f32))
                .collect();
            tensors.insert(name, Tensor::from_vec(v, shape, &Device::Cpu).unwrap());
        };
        add("wte.weight".into(), &[50, 32], 0.0);
        add("wpe.weight".into(), &[16, 32], 0.0);
        for l in 0..2 {
            for ln in ["ln_1", "ln_2"] {
                add(format!("h.{l}.{ln}.weight"), &[32], 1.0);
                add(format!("h.{l}.{ln}.bias"), &[32], 0.0);
            }
            for (name, i, o) in [
                ("attn.c_attn", 32, 96),
                ("attn.c_proj", 32, 32),
                ("mlp.c_fc", 32, 128),
                ("mlp.c_proj", 128, 32),
            ] {
                add(format!("h.{l}.{name}.weight"), &[i, o], 0.0);
                add(format!("h.{l}.{name}.bias"), &[o], 0.0);
            }
        }
        let vb = VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu);
        Gpt2::load(vb, config, HookPoint::parse(hook).unwrap()).unwrap()
    }

    /// The largest absolute value of `t`.
    fn max_abs(t: &Tensor) -> f32 {
        t.abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    }

    /// The CPU kernels and the candle-tensor path (the one other devices run) agree at every
    /// hook.
    #[test]
    fn cpu_kernels_match_the_tensor_path() {
        let hooks = [
            "hook_embed",
            "blocks.1.hook_resid_pre",
            "blocks.1.attn.hook_z",
            "blocks.1.hook_attn_out",
            "blocks.1.hook_resid_mid",
            "blocks.1.ln2.hook_normalized",
            "blocks.1.hook_mlp_out",
            "blocks.1.hook_resid_post",
        ];
        for activation in ["gelu_new", "gelu", "relu"] {
            for hook in hooks {
                let model = random_model(activation, hook);
                let ids: Vec<u32> = (0..3 * 11).map(|i| (i * 7 % 50) as u32).collect();
                let tokens = Tensor::from_vec(ids, (3, 11), &Device::Cpu).unwrap();
                let at = [model.hook];
                let fast = one_hook(model.run(&tokens, &at, Exec::Kernels).unwrap()).unwrap();
                let slow = one_hook(model.run(&tokens, &at, Exec::Tensors).unwrap()).unwrap();
                assert_eq!(fast.dims(), [3, 11, 32], "{hook}");
                let diff = max_abs(&(&fast - &slow).unwrap());
                let scale = max_abs(&slow);
                assert!(
                    diff <= 1e-5 * scale,
                    "{activation} {hook}: {diff} (scale {scale})"
                );
            }
        }
    }
}
