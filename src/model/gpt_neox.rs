//! GPT-NeoX / Pythia (Hugging Face `GPTNeoXForCausalLM` weights) up to a hook.
//!
//! The blocks are GPT-2's LayerNorm blocks ([`super::gpt2::Block`]) with three differences,
//! all handled while loading: `nn.Linear` weights (stored `[out, in]`), the fused
//! `query_key_value` laid out per head (`[n_heads, 3, head_dim]` rows, reordered here to
//! `[3, n_heads, head_dim]`), and rotary embeddings on the first `rotary_pct · head_dim` values
//! of each query and key head (no position embeddings). Blocks are parallel by default
//! (`use_parallel_residual`: the MLP reads the block's input, so there is no `hook_resid_mid`).
//! Weight names carry the `gpt_neox.` prefix of `GPTNeoXForCausalLM` (or none).

use super::gpt2::{self, Activation, Attention, Block, Conv1D, Exec, Norm, Rotary};
use super::{HookKind, HookPoint, ResidualModel};
use crate::json_keys::JsonKeys;
use anyhow::{bail, ensure, Context, Result};
use candle_core::{Device, Module, Tensor};
use candle_nn::{Embedding, VarBuilder};

/// The fields of a Hugging Face GPT-NeoX `config.json` that the forward pass needs.
#[derive(Debug, Clone)]
pub struct NeoxConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    pub layer_norm_eps: f64,
    /// Values of each head that rotate: `int(head_dim · rotary_pct)`, as transformers rounds.
    pub rotary_dims: usize,
    pub rotary_emb_base: f64,
    pub hidden_act: String,
    pub use_parallel_residual: bool,
}

impl NeoxConfig {
    /// Reads a parsed GPT-NeoX `config.json` (`file` names it in errors). `rotary_pct` and
    /// `rotary_emb_base` are read as old configs spell them or under `rope_parameters`
    /// (`partial_rotary_factor`, `rope_theta`) as transformers 5 writes them; defaults are
    /// transformers' (0.25, 10000, `gelu`, parallel, eps 1e-5, 2048 positions).
    pub fn from_json(cfg: &serde_json::Value, file: &str) -> Result<Self> {
        let keys = JsonKeys::new(cfg, file)?;
        let size = |key: &str| keys.require(key, keys.positive(key)?);
        let rope = keys.object("rope_parameters")?;
        if let Some(scaling) = keys.get("rope_scaling").filter(|v| !v.is_null()) {
            bail!("{file}: rope_scaling {scaling} is not supported for GPT-NeoX");
        }
        if let Some(kind) = rope
            .as_ref()
            .map(|r| r.str("rope_type"))
            .transpose()?
            .flatten()
        {
            ensure!(
                kind == "default",
                "{file}: rope_type '{kind}' is not supported for GPT-NeoX (only the default RoPE)"
            );
        }
        let from_rope = |key: &str| -> Result<Option<f64>> {
            Ok(rope.as_ref().map(|r| r.number(key)).transpose()?.flatten())
        };
        let rotary_pct = match keys.number("rotary_pct")? {
            Some(pct) => pct,
            None => from_rope("partial_rotary_factor")?.unwrap_or(0.25),
        };
        let rotary_emb_base = match keys.positive_number("rotary_emb_base")? {
            Some(base) => base,
            None => from_rope("rope_theta")?.unwrap_or(10000.0),
        };
        ensure!(
            keys.bool("attention_bias")?.unwrap_or(true),
            "{file}: attention_bias = false is not supported (GPT-NeoX's attention has biases)"
        );
        let hidden_size = size("hidden_size")?;
        let heads = size("num_attention_heads")?;
        ensure!(
            hidden_size.is_multiple_of(heads),
            "{file}: hidden_size {hidden_size} is not divisible by num_attention_heads {heads}"
        );
        let head_dim = hidden_size / heads;
        ensure!(
            (0.0..=1.0).contains(&rotary_pct),
            "{file}: rotary_pct {rotary_pct} is not between 0 and 1"
        );
        let rotary_dims = (head_dim as f64 * rotary_pct) as usize;
        ensure!(
            rotary_dims.is_multiple_of(2),
            "{file}: rotary_pct {rotary_pct} of head_dim {head_dim} gives {rotary_dims} rotary values, an odd number"
        );
        Ok(Self {
            vocab_size: size("vocab_size")?,
            hidden_size,
            num_hidden_layers: size("num_hidden_layers")?,
            num_attention_heads: heads,
            intermediate_size: size("intermediate_size")?,
            max_position_embeddings: keys.positive("max_position_embeddings")?.unwrap_or(2048),
            layer_norm_eps: keys.positive_number("layer_norm_eps")?.unwrap_or(1e-5),
            rotary_dims,
            rotary_emb_base,
            hidden_act: keys.str("hidden_act")?.unwrap_or("gelu").to_string(),
            use_parallel_residual: keys.bool("use_parallel_residual")?.unwrap_or(true),
        })
    }

    /// Checks that the model has `hook`: a parallel model has no `hook_resid_mid`.
    pub fn check_hook(&self, hook: HookPoint) -> Result<()> {
        ensure!(
            !(self.use_parallel_residual && hook.kind == HookKind::ResidMid),
            "hook {hook} does not exist in a GPT-NeoX model with use_parallel_residual = true: \
             attention and MLP both read hook_resid_pre (TransformerLens has no hook_resid_mid \
             there either); use blocks.{}.hook_resid_pre or hook_resid_post",
            hook.layer
        );
        Ok(())
    }

    fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }
}

/// The fused `query_key_value` projection reordered from GPT-NeoX's per-head rows
/// (`[n_heads, 3, head_dim]`) to `[q | k | v]` as GPT-2's `c_attn`.
fn load_query_key_value(vb: VarBuilder, cfg: &NeoxConfig) -> Result<Conv1D> {
    let (d, h, hd) = (cfg.hidden_size, cfg.num_attention_heads, cfg.head_dim());
    let per_head_to_qkv = |t: Tensor, cols: usize| -> Result<Tensor> {
        Ok(t.reshape((h, 3, hd, cols))?
            .transpose(0, 1)?
            .reshape((3 * d, cols))?)
    };
    let weight = per_head_to_qkv(vb.get((3 * d, d), "weight")?, d)?;
    let bias = per_head_to_qkv(vb.get(3 * d, "bias")?, 1)?.flatten_all()?;
    Conv1D::new(weight.t()?.contiguous()?, bias.contiguous()?)
}

fn load_block(vb: VarBuilder, cfg: &NeoxConfig, activation: Activation) -> Result<Block> {
    let (d, eps) = (cfg.hidden_size, cfg.layer_norm_eps);
    let rotary = (cfg.rotary_dims > 0).then_some(Rotary {
        dims: cfg.rotary_dims,
        base: cfg.rotary_emb_base,
    });
    Ok(Block {
        ln_1: Norm::load(vb.pp("input_layernorm"), d, eps)?,
        attn: Attention {
            c_attn: load_query_key_value(vb.pp("attention.query_key_value"), cfg)?,
            c_proj: Conv1D::load_linear(vb.pp("attention.dense"), d, d)?,
            n_head: cfg.num_attention_heads,
            rotary,
        },
        ln_2: Norm::load(vb.pp("post_attention_layernorm"), d, eps)?,
        c_fc: Conv1D::load_linear(vb.pp("mlp.dense_h_to_4h"), d, cfg.intermediate_size)?,
        c_proj: Conv1D::load_linear(vb.pp("mlp.dense_4h_to_h"), cfg.intermediate_size, d)?,
        activation,
        parallel: cfg.use_parallel_residual,
    })
}

/// GPT-NeoX truncated after the blocks that its hook needs.
pub struct GptNeox {
    embed_in: Embedding,
    blocks: Vec<Block>,
    config: NeoxConfig,
    hook: HookPoint,
    device: Device,
}

impl GptNeox {
    /// Loads the embeddings and the blocks before `hook` from `vb` (prefix detected). A parallel
    /// model has no `hook_resid_mid`: asking for it is an error.
    pub fn load(vb: VarBuilder, config: NeoxConfig, hook: HookPoint) -> Result<Self> {
        config.check_hook(hook)?;
        let vb = if vb.contains_tensor("gpt_neox.embed_in.weight") {
            vb.pp("gpt_neox")
        } else {
            vb
        };
        let activation = Activation::from_name(&config.hidden_act, "GPT-NeoX hidden_act")?;
        let embed_in =
            candle_nn::embedding(config.vocab_size, config.hidden_size, vb.pp("embed_in"))?;
        let blocks = (0..hook.blocks_needed())
            .map(|i| {
                load_block(vb.pp(format!("layers.{i}")), &config, activation)
                    .with_context(|| format!("GPT-NeoX layer {i}"))
            })
            .collect::<Result<Vec<_>>>()?;
        let device = vb.device().clone();
        Ok(Self {
            embed_in,
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
            s <= self.config.max_position_embeddings,
            "window of {s} tokens is longer than the model's {} positions",
            self.config.max_position_embeddings
        );
        for &hook in hooks {
            self.config.check_hook(hook)?;
        }
        let token = self.embed_in.forward(tokens)?;
        let loaded = (self.blocks.as_slice(), self.hook);
        gpt2::read_hooks(loaded, hooks, token, |t| Ok(t.clone()), exec)
    }
}

impl ResidualModel for GptNeox {
    fn d_model(&self) -> usize {
        self.config.hidden_size
    }

    fn hook(&self) -> HookPoint {
        self.hook
    }

    fn max_positions(&self) -> usize {
        self.config.max_position_embeddings
    }

    fn uses_layer_norm(&self) -> bool {
        true
    }

    fn activations_at(&self, tokens: &Tensor, hooks: &[HookPoint]) -> Result<Vec<Tensor>> {
        let exec = Exec::for_weights(&self.device, self.embed_in.embeddings().dtype());
        self.run(tokens, hooks, exec)
    }

    fn z_value_bias_at(&self, hook: HookPoint) -> Result<Option<Tensor>> {
        gpt2::z_value_bias(&self.blocks, hook)
    }

    fn token_embeddings(&self) -> Tensor {
        self.embed_in.embeddings().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::hook_set::one_hook;
    use candle_core::DType;

    /// The tiny Pythia of `tests/fixtures`, as parallel or sequential blocks, up to `hook`.
    fn fixture_model(hook: &str, parallel: bool) -> GptNeox {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny-pythia");
        let text = std::fs::read_to_string(dir.join("config.json")).unwrap();
        let mut config =
            NeoxConfig::from_json(&serde_json::from_str(&text).unwrap(), "config.json").unwrap();
        config.use_parallel_residual = parallel;
        let tensors =
            candle_core::safetensors::load(dir.join("model.safetensors"), &Device::Cpu).unwrap();
        let vb = VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu);
        GptNeox::load(vb, config, HookPoint::parse(hook).unwrap()).unwrap()
    }

    fn max_abs(t: &Tensor) -> f32 {
        t.abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    }

    /// The CPU kernels and the candle-tensor path (the one other devices and dtypes run) agree
    /// at every hook, for parallel and sequential blocks.
    #[test]
    fn cpu_kernels_match_the_tensor_path() {
        let kinds = [
            "hook_resid_pre",
            "attn.hook_z",
            "hook_attn_out",
            "hook_resid_mid",
            "ln2.hook_normalized",
            "hook_mlp_out",
            "hook_resid_post",
        ];
        let ids: Vec<u32> = (0..3 * 11).map(|i| (i * 37 % 1000) as u32).collect();
        let tokens = Tensor::from_vec(ids, (3, 11), &Device::Cpu).unwrap();
        for parallel in [true, false] {
            for kind in kinds {
                if parallel && kind == "hook_resid_mid" {
                    continue;
                }
                let hook = format!("blocks.1.{kind}");
                let model = fixture_model(&hook, parallel);
                let at = [model.hook];
                let fast = one_hook(model.run(&tokens, &at, Exec::Kernels).unwrap()).unwrap();
                let slow = one_hook(model.run(&tokens, &at, Exec::Tensors).unwrap()).unwrap();
                let diff = max_abs(&(&fast - &slow).unwrap());
                let scale = max_abs(&slow);
                assert!(
                    diff <= 1e-5 * scale,
                    "{hook} parallel={parallel}: {diff} (scale {scale})"
                );
            }
        }
    }

    #[test]
    fn odd_rotary_widths_and_rope_scaling_are_refused() {
        let base = serde_json::json!({
            "vocab_size": 10, "hidden_size": 8, "num_hidden_layers": 1,
            "num_attention_heads": 2, "intermediate_size": 16, "rotary_pct": 0.0,
        });
        let with = |key: &str, value: serde_json::Value| {
            let mut cfg = base.clone();
            cfg[key] = value;
            NeoxConfig::from_json(&cfg, "c.json").map(|c| c.rotary_dims)
        };
        assert_eq!(
            NeoxConfig::from_json(&base, "c.json").unwrap().rotary_dims,
            0
        );
        assert_eq!(with("rotary_pct", 0.5.into()).unwrap(), 2);
        let err = with("rotary_pct", 0.25.into()).unwrap_err().to_string();
        assert!(err.contains("odd"), "{err}");
        let err = with("rope_scaling", serde_json::json!({"type": "linear"}))
            .unwrap_err()
            .to_string();
        assert!(err.contains("rope_scaling"), "{err}");
    }
}
