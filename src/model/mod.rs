//! Language models that expose the residual stream at a hook and stop there.
//!
//! Every architecture implements [`ResidualModel`]; [`load_model`] picks one from the
//! `model_type` in the model's `config.json`. Only the blocks up to the hook are loaded
//! (safetensors are memory-mapped, so the rest of the file is never read).

pub mod decoder;
pub mod gemma;
pub mod gemma2;
pub mod gemma3;
pub mod gguf;
pub mod gpt2;
pub mod gpt_neox;
pub mod hook_set;
pub mod kernels;
pub mod llama;
pub mod mistral;
pub mod moe;
pub mod qwen;
pub mod rope;

use crate::hub::{Hub, HubRepo, Location};
use crate::json_keys::JsonKeys;
use anyhow::{ensure, Context, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use std::fmt;
use std::path::{Path, PathBuf};

/// Which activation a hook reads, in TransformerLens' vocabulary (see docs/formats.md, "Hooks").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HookKind {
    /// `hook_embed`: TransformerLens' W_E rows for the tokens (no positions; Gemma's √d_model
    /// scale included, as TransformerLens folds it into W_E).
    Embed,
    /// Input of block L (`blocks.L.hook_resid_pre`).
    ResidPre,
    /// Between attention and MLP of block L (`blocks.L.hook_resid_mid`): resid_pre + attn_out.
    ResidMid,
    /// Output of block L (`blocks.L.hook_resid_post`).
    ResidPost,
    /// What attention adds to the residual stream (`blocks.L.hook_attn_out`; after Gemma's
    /// post-attention norm).
    AttnOut,
    /// What the MLP adds to the residual stream (`blocks.L.hook_mlp_out`; after Gemma's
    /// post-feedforward norm).
    MlpOut,
    /// `blocks.L.attn.hook_z`: every head's weighted values, heads concatenated
    /// (`[n_heads · d_head]`), the input of the attention output projection.
    Z,
    /// The MLP's input after its norm (`blocks.L.ln2.hook_normalized`, `blocks.L.mlp.hook_in`):
    /// what a transcoder's encoder reads.
    MlpInput,
}

/// A hook: a kind at a layer (`layer` is 0 for [`HookKind::Embed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HookPoint {
    pub layer: usize,
    pub kind: HookKind,
}

/// The hook names saecooc reads, for messages.
pub const HOOK_NAMES: &str = "hook_embed, blocks.L.hook_resid_pre, blocks.L.hook_resid_mid, \
    blocks.L.hook_resid_post, blocks.L.hook_attn_out, blocks.L.hook_mlp_out, blocks.L.attn.hook_z, \
    blocks.L.ln2.hook_normalized (or blocks.L.mlp.hook_in), and the Hugging Face module names \
    model.layers.L.output, model.layers.L.self_attn.o_proj.input, \
    model.layers.L.pre_feedforward_layernorm.output, model.layers.L.post_attention_layernorm.output, \
    model.layers.L.post_feedforward_layernorm.output";

impl HookPoint {
    /// Parses a TransformerLens hook name (`blocks.8.hook_resid_pre`, `blocks.3.attn.hook_z`,
    /// `hook_embed`, ...) or a Hugging Face module name as SAELens' `hf_hook_name` spells it
    /// (`model.layers.5.self_attn.o_proj.input`, ...).
    pub fn parse(name: &str) -> Result<Self> {
        let bad = || anyhow::anyhow!("unsupported hook '{name}': saecooc reads {HOOK_NAMES}");
        if name == "hook_embed" {
            return Ok(Self {
                layer: 0,
                kind: HookKind::Embed,
            });
        }
        let (rest, tl) = match name.strip_prefix("blocks.") {
            Some(rest) => (rest, true),
            None => (name.strip_prefix("model.layers.").ok_or_else(bad)?, false),
        };
        let (layer, hook) = rest.split_once('.').ok_or_else(bad)?;
        let layer = layer.parse().map_err(|_| bad())?;
        let kind = if tl {
            match hook {
                "hook_resid_pre" => HookKind::ResidPre,
                "hook_resid_mid" | "hook_mlp_in" => HookKind::ResidMid,
                "hook_resid_post" => HookKind::ResidPost,
                "hook_attn_out" => HookKind::AttnOut,
                "hook_mlp_out" => HookKind::MlpOut,
                "attn.hook_z" => HookKind::Z,
                "ln2.hook_normalized" | "mlp.hook_in" => HookKind::MlpInput,
                _ => return Err(bad()),
            }
        } else {
            match hook {
                "output" => HookKind::ResidPost,
                "self_attn.o_proj.input" => HookKind::Z,
                "pre_feedforward_layernorm.output"
                | "post_attention_layernorm.output"
                | "mlp.input" => HookKind::MlpInput,
                "post_feedforward_layernorm.output" | "mlp.output" => HookKind::MlpOut,
                _ => return Err(bad()),
            }
        };
        Ok(Self { layer, kind })
    }

    /// `blocks.0.hook_resid_pre`: the embeddings alone (loads no transformer block).
    pub fn embeddings() -> Self {
        Self {
            layer: 0,
            kind: HookKind::ResidPre,
        }
    }

    /// Number of transformer blocks that must be loaded to reach this hook (the last of them
    /// may run only in part).
    pub fn blocks_needed(&self) -> usize {
        match self.kind {
            HookKind::Embed | HookKind::ResidPre => self.layer,
            _ => self.layer + 1,
        }
    }

    /// True for the hooks that are the residual stream or what a block writes into it, which
    /// TransformerLens' `center_writing_weights` centres on LayerNorm models (see
    /// docs/formats.md, "Residual stream centring"); false for `hook_z` and the MLP's input.
    pub fn in_written_stream(&self) -> bool {
        !matches!(self.kind, HookKind::Z | HookKind::MlpInput)
    }

    /// Checks that an architecture (`arch`, for the message) that reads only `kinds` can read
    /// this hook.
    pub fn check_kind(&self, kinds: &[HookKind], arch: &str) -> Result<()> {
        ensure!(
            kinds.contains(&self.kind),
            "saecooc cannot read hook {self} of a {arch} model yet (it reads {})",
            kinds
                .iter()
                .map(|&kind| Self {
                    layer: self.layer,
                    kind
                }
                .to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        Ok(())
    }

    /// Where the hook comes in a forward pass: hooks compare in the order the activations are
    /// computed (`hook_embed`, then each block's resid_pre, hook_z, attn_out, resid_mid, the
    /// MLP's input, mlp_out and resid_post). The deepest of a set decides how far a pass runs.
    pub fn forward_order(&self) -> (usize, u8) {
        let step = match self.kind {
            HookKind::Embed => 0,
            HookKind::ResidPre => 1,
            HookKind::Z => 2,
            HookKind::AttnOut => 3,
            HookKind::ResidMid => 4,
            HookKind::MlpInput => 5,
            HookKind::MlpOut => 6,
            HookKind::ResidPost => 7,
        };
        (self.layer, step)
    }

    /// Checks that the hook exists in a model with `n_layers` blocks.
    pub fn check_within(&self, n_layers: usize, model: &str) -> Result<()> {
        ensure!(
            self.layer < n_layers,
            "hook {self} is beyond the model: {model} has {n_layers} layers (blocks.0 to blocks.{})",
            n_layers.saturating_sub(1)
        );
        Ok(())
    }
}

impl fmt::Display for HookPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            HookKind::Embed => return f.write_str("hook_embed"),
            HookKind::ResidPre => "hook_resid_pre",
            HookKind::ResidMid => "hook_resid_mid",
            HookKind::ResidPost => "hook_resid_post",
            HookKind::AttnOut => "hook_attn_out",
            HookKind::MlpOut => "hook_mlp_out",
            HookKind::Z => "attn.hook_z",
            HookKind::MlpInput => "ln2.hook_normalized",
        };
        write!(f, "blocks.{}.{kind}", self.layer)
    }
}

/// A model that runs up to a hook and returns the activations there.
pub trait ResidualModel: Send + Sync {
    /// Width of the residual stream.
    fn d_model(&self) -> usize;
    /// Width of the activations at the hook (d_model, or n_heads · d_head for `hook_z`).
    fn width(&self) -> usize {
        self.width_at(self.hook())
    }
    /// Width of the activations at `hook` (d_model unless the architecture says otherwise).
    fn width_at(&self, _hook: HookPoint) -> usize {
        self.d_model()
    }
    /// The hook this model stops at.
    fn hook(&self) -> HookPoint;
    /// Longest window the model accepts.
    fn max_positions(&self) -> usize;
    /// True for LayerNorm models, whose residual stream TransformerLens centres (see
    /// docs/formats.md, "Residual stream centring").
    fn uses_layer_norm(&self) -> bool;
    /// Runs `tokens` (u32, `[batch, seq]`) as far as the hook needs and returns the activations
    /// there, `[batch, seq, width]`: the one-hook case of [`ResidualModel::activations_at`].
    fn activations(&self, tokens: &Tensor) -> Result<Tensor> {
        hook_set::one_hook(self.activations_at(tokens, &[self.hook()])?)
    }
    /// The activations at each of `hooks` (every one at or before [`ResidualModel::hook`] in
    /// forward order), `[batch, seq, width_at(hook)]` each, from one forward pass. Each equals,
    /// bit for bit, what a model stopping at that hook returns from
    /// [`ResidualModel::activations`].
    fn activations_at(&self, tokens: &Tensor, hooks: &[HookPoint]) -> Result<Vec<Tensor>>;
    /// [`ResidualModel::z_value_bias`] of `hook` (None for models without it).
    fn z_value_bias_at(&self, _hook: HookPoint) -> Result<Option<Tensor>> {
        Ok(None)
    }
    /// The token embedding matrix W_E `[vocab, d_model]` as stored (not centred).
    fn token_embeddings(&self) -> Tensor;
    /// At `hook_z`, the constant part of every head's values (`[n_heads · d_head]`, heads
    /// concatenated) that the activations include: the value bias `b_V`, plus the norm's bias
    /// times `W_V` on LayerNorm models. TransformerLens' `fold_ln` folds the latter into `b_V`
    /// and `fold_value_biases` moves `b_V` into the output bias, so its `hook_z` lacks both.
    /// None at other hooks and for models without them.
    fn z_value_bias(&self) -> Result<Option<Tensor>> {
        self.z_value_bias_at(self.hook())
    }
}

/// The activations `acts` that `model` returned at its hook as TransformerLens' default
/// processing gives them (`fold_ln`, `center_writing_weights`, `fold_value_biases`): centred
/// per position at hooks in the written stream, less the value bias at `hook_z`, unchanged
/// elsewhere (see docs/formats.md, "Hooks").
pub fn transformer_lens_view(model: &dyn ResidualModel, acts: &Tensor) -> Result<Tensor> {
    transformer_lens_view_at(model, model.hook(), acts)
}

/// [`transformer_lens_view`] of the activations `acts` at `hook`, read in a pass that may run
/// further.
pub fn transformer_lens_view_at(
    model: &dyn ResidualModel,
    hook: HookPoint,
    acts: &Tensor,
) -> Result<Tensor> {
    if hook.in_written_stream() {
        return center_per_position(acts);
    }
    match model.z_value_bias_at(hook)? {
        Some(b_v) => Ok(acts.broadcast_sub(&b_v.to_dtype(acts.dtype())?)?),
        None => Ok(acts.clone()),
    }
}

/// The files of a model: `config.json` and its safetensors weights.
#[derive(Debug, Clone)]
pub struct ModelFiles {
    /// Where they came from, for messages.
    pub source: String,
    pub config: PathBuf,
    pub weights: Vec<PathBuf>,
    /// The folder that holds `config.json` (tokenizer files are looked up there too).
    pub dir: PathBuf,
}

/// Token ids that the original treats as special: {BOS, EOS, PAD} from `config.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpecialTokens {
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    pub pad: Option<u32>,
}

impl SpecialTokens {
    /// The distinct special ids.
    pub fn ids(&self) -> Vec<u32> {
        let mut ids: Vec<u32> = [self.bos, self.eos, self.pad]
            .into_iter()
            .flatten()
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }
}

impl SpecialTokens {
    /// The special ids of a parsed `config.json` (`file` names it in errors): each key is a
    /// token id or a list of them (the first is used), a key of another type an error.
    pub fn from_config(cfg: &serde_json::Value, file: &str) -> Result<Self> {
        let keys = JsonKeys::new(cfg, file)?;
        let first = |key: &str| -> Result<Option<u32>> {
            Ok(keys.token_ids(key)?.and_then(|ids| ids.first().copied()))
        };
        Ok(Self {
            bos: first("bos_token_id")?,
            eos: first("eos_token_id")?,
            pad: first("pad_token_id")?,
        })
    }
}

/// The token ids of a `config.json` (`file`), each with its key, for checking them against the
/// vocabulary: every id of `bos_token_id`, `eos_token_id` and `pad_token_id`, lists included.
pub fn config_token_ids(cfg: &serde_json::Value, file: &str) -> Result<Vec<(String, u32)>> {
    let keys = JsonKeys::new(cfg, file)?;
    let mut out = Vec::new();
    for key in ["bos_token_id", "eos_token_id", "pad_token_id"] {
        for id in keys.token_ids(key)?.unwrap_or_default() {
            out.push((key.to_string(), id));
        }
    }
    Ok(out)
}

impl ModelFiles {
    /// Finds `config.json` and the weights in a local folder or hub repo.
    pub fn resolve(location: &Location, hub: &Hub) -> Result<Self> {
        match location {
            Location::Local(dir) => Self::from_dir(dir),
            Location::Hub { repo, revision } => {
                let at = HubRepo::model(repo, revision);
                let config = hub.get(at, "config.json")?;
                let weights = match hub.try_get(at, "model.safetensors") {
                    Some(w) => vec![w],
                    None => {
                        let index =
                            hub.get(at, "model.safetensors.index.json")
                                .with_context(|| {
                                    format!("hub repo {repo} has no safetensors weights")
                                })?;
                        shard_names(&index)?
                            .iter()
                            .map(|f| hub.get(at, f))
                            .collect::<Result<_>>()?
                    }
                };
                let dir = config.parent().unwrap_or(Path::new(".")).to_path_buf();
                Ok(Self {
                    source: location.describe(),
                    config,
                    weights,
                    dir,
                })
            }
        }
    }

    fn from_dir(dir: &Path) -> Result<Self> {
        if dir.is_file() && dir.extension().is_some_and(|e| e == "gguf") {
            return Ok(Self {
                source: dir.display().to_string(),
                config: dir.to_path_buf(),
                weights: vec![dir.to_path_buf()],
                dir: dir.parent().unwrap_or(Path::new(".")).to_path_buf(),
            });
        }
        ensure!(
            dir.is_dir(),
            "model folder {} does not exist",
            dir.display()
        );
        let config = dir.join("config.json");
        ensure!(
            config.is_file(),
            "model folder {} has no config.json",
            dir.display()
        );
        let index = dir.join("model.safetensors.index.json");
        let weights = if dir.join("model.safetensors").is_file() {
            vec![dir.join("model.safetensors")]
        } else if index.is_file() {
            shard_names(&index)?.iter().map(|f| dir.join(f)).collect()
        } else {
            let mut found: Vec<PathBuf> = std::fs::read_dir(dir)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
                .collect();
            found.sort();
            found
        };
        ensure!(
            !weights.is_empty(),
            "model folder {} has no model.safetensors (saecooc reads safetensors weights)",
            dir.display()
        );
        for w in &weights {
            ensure!(w.is_file(), "model weights file {} is missing", w.display());
        }
        Ok(Self {
            source: dir.display().to_string(),
            config,
            weights,
            dir: dir.to_path_buf(),
        })
    }

    /// True when the weights are one GGUF file (its metadata stands in for `config.json`).
    pub fn is_gguf(&self) -> bool {
        self.config.extension().is_some_and(|e| e == "gguf")
    }

    /// Parsed `config.json` (for a GGUF file: one synthesised from its metadata).
    pub fn config_json(&self) -> Result<serde_json::Value> {
        if self.is_gguf() {
            return gguf::Gguf::read(&self.config)?.config_json();
        }
        let text = crate::encoding::read_text_file(&self.config)?;
        serde_json::from_str(&text)
            .with_context(|| format!("{} is not valid JSON", self.config.display()))
    }

    /// BOS/EOS/PAD ids from `config.json`.
    pub fn special_tokens(&self) -> Result<SpecialTokens> {
        SpecialTokens::from_config(&self.config_json()?, &self.config_name())
    }

    /// The file `config.json` stands for, as errors name it (the GGUF file for GGUF weights).
    pub fn config_name(&self) -> String {
        self.config.display().to_string()
    }
}

fn shard_names(index: &Path) -> Result<Vec<String>> {
    let text = crate::encoding::read_text_file(index)?;
    let json: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not valid JSON", index.display()))?;
    let map = json
        .get("weight_map")
        .and_then(|m| m.as_object())
        .with_context(|| format!("{} has no weight_map", index.display()))?;
    let mut names: Vec<String> = map
        .values()
        .filter_map(|v| v.as_str().map(String::from))
        .collect();
    names.sort();
    names.dedup();
    // The names become paths in the model's folder: none may leave it.
    for name in &names {
        crate::io::pyfmt::check_name(&format!("a shard of {}", index.display()), name)?;
    }
    Ok(names)
}

/// The weights: safetensors are memory-mapped and read only when a layer asks for them; GGUF
/// tensors of the first `blocks` blocks (and embeddings, norms, head) are dequantized to f32.
pub fn weights_var_builder(
    files: &ModelFiles,
    blocks: usize,
    device: &Device,
) -> Result<VarBuilder<'static>> {
    weights_var_builder_as(files, blocks, device, DType::F32)
}

/// [`weights_var_builder`] giving the weights as `dtype`.
pub fn weights_var_builder_as(
    files: &ModelFiles,
    blocks: usize,
    device: &Device,
    dtype: DType,
) -> Result<VarBuilder<'static>> {
    if files.is_gguf() {
        let tensors = gguf::Gguf::read(&files.config)?.tensors(blocks, device)?;
        return Ok(VarBuilder::from_tensors(tensors, dtype, device));
    }
    for w in &files.weights {
        check_safetensors_header(w)?;
        check_float_parameters(w)?;
    }
    // SAFETY: the files are not modified while mapped (they are inputs we only read).
    unsafe { VarBuilder::from_mmaped_safetensors(&files.weights, dtype, device) }
        .with_context(|| format!("cannot read model weights from {}", files.source))
}

/// Validates a safetensors file's header and size so a corrupt file gives a clear error.
pub fn check_safetensors_header(path: &Path) -> Result<()> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    // SAFETY: read-only mapping of an input file.
    let bytes = unsafe { memmap2::Mmap::map(&file) }
        .with_context(|| format!("cannot map {}", path.display()))?;
    safetensors::SafeTensors::deserialize(&bytes)
        .map(|_| ())
        .map_err(|e| anyhow::anyhow!("{} is not a valid safetensors file: {e}", path.display()))
}

/// The header of the safetensors file `path` (its tensors' names, dtypes and shapes), the
/// values left unread.
fn safetensors_header(path: &Path) -> Result<safetensors::tensor::Metadata> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    // SAFETY: read-only mapping of an input file.
    let bytes = unsafe { memmap2::Mmap::map(&file) }
        .with_context(|| format!("cannot map {}", path.display()))?;
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes)
        .map_err(|e| anyhow::anyhow!("{} is not a valid safetensors file: {e}", path.display()))?;
    Ok(header)
}

/// The name and shape of every tensor of the safetensors file `path`, from its header.
pub fn safetensors_shapes(path: &Path) -> Result<Vec<(String, Vec<usize>)>> {
    let header = safetensors_header(path)?;
    Ok(header
        .tensors()
        .into_iter()
        .map(|(name, info)| (name, info.shape.clone()))
        .collect())
}

/// Checks that every parameter (`*.weight`, `*.bias`) of the safetensors file `path` is floats
/// (f16, bf16, f32 or f64): the weights are converted to the run's dtype as they are read, so an
/// integer tensor would otherwise become weights silently. Other tensors (buffers such as
/// `position_ids`) are not read and not checked.
pub fn check_float_parameters(path: &Path) -> Result<()> {
    use safetensors::Dtype;
    let header = safetensors_header(path)?;
    let mut tensors: Vec<_> = header.tensors().into_iter().collect();
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, info) in tensors {
        let parameter = name.ends_with(".weight") || name.ends_with(".bias");
        let float = matches!(
            info.dtype,
            Dtype::F16 | Dtype::BF16 | Dtype::F32 | Dtype::F64
        );
        ensure!(
            !parameter || float,
            "{}: tensor '{name}' has dtype {:?}: model weights must be floats (F16, BF16, F32 or F64)",
            path.display(),
            info.dtype
        );
    }
    Ok(())
}

/// Writes `tensors` as a safetensors file, atomically, with the usual permissions (0666 less
/// the umask): the safetensors crate's own writer renames a 0600 temporary file into place.
pub fn save_safetensors<K>(
    tensors: &std::collections::HashMap<K, Tensor>,
    path: &Path,
) -> Result<()>
where
    K: AsRef<str> + Ord + fmt::Display,
{
    let bytes = safetensors::serialize(tensors.iter(), None)
        .with_context(|| format!("cannot serialize the tensors of {}", path.display()))?;
    crate::io::atomic::write_synced(path, &bytes)
}

/// Loads the model described by `files`, stopping at `hook`, in f32.
pub fn load_model(
    files: &ModelFiles,
    hook: HookPoint,
    device: &Device,
) -> Result<Box<dyn ResidualModel>> {
    load_model_as(files, hook, device, DType::F32)
}

/// Every hook kind.
const EVERY_HOOK: &[HookKind] = &[
    HookKind::Embed,
    HookKind::ResidPre,
    HookKind::ResidMid,
    HookKind::ResidPost,
    HookKind::AttnOut,
    HookKind::MlpOut,
    HookKind::Z,
    HookKind::MlpInput,
];

/// The architectures saecooc runs, by `config.json` `model_type`, each with its display name
/// and the hook kinds it can stop at.
pub const ARCHITECTURES: &[(&str, &str, &[HookKind])] = &[
    ("gpt2", "GPT-2", EVERY_HOOK),
    ("llama", "Llama", EVERY_HOOK),
    ("mistral", "Mistral", EVERY_HOOK),
    ("qwen2", "Qwen2", EVERY_HOOK),
    ("qwen3", "Qwen3", EVERY_HOOK),
    ("qwen3_moe", "Qwen3 MoE", EVERY_HOOK),
    ("gemma", "Gemma", EVERY_HOOK),
    ("gemma2", "Gemma 2", EVERY_HOOK),
    ("gemma3_text", "Gemma 3", EVERY_HOOK),
    ("gemma3", "Gemma 3 (multimodal)", EVERY_HOOK),
    ("gpt_neox", "GPT-NeoX", EVERY_HOOK),
];

/// The display name and readable hook kinds of `model_type`, or why saecooc cannot run it.
pub fn architecture(model_type: &str) -> Result<(&'static str, &'static [HookKind])> {
    let supported = || {
        ARCHITECTURES
            .iter()
            .map(|(t, _, _)| *t)
            .collect::<Vec<_>>()
            .join(", ")
    };
    ARCHITECTURES
        .iter()
        .find(|(t, _, _)| *t == model_type)
        .map(|(_, name, hooks)| (*name, *hooks))
        .ok_or_else(|| {
            anyhow::anyhow!(
                "model_type '{model_type}' is not supported (supported: {})",
                supported()
            )
        })
}

/// The deepest of `hooks` in forward order (see [`HookPoint::forward_order`]).
pub fn deepest_hook(hooks: &[HookPoint]) -> Option<HookPoint> {
    hooks.iter().copied().max_by_key(HookPoint::forward_order)
}

/// Loads the model once for every hook of `hooks`: up to the deepest, each hook checked as
/// [`load_model_as`] checks its own (the same refusals, the same messages).
/// [`ResidualModel::activations_at`] then reads them all in one pass.
pub fn load_model_for(
    files: &ModelFiles,
    hooks: &[HookPoint],
    device: &Device,
    dtype: DType,
) -> Result<Box<dyn ResidualModel>> {
    let deepest = deepest_hook(hooks).context("internal: a model loaded for no hook")?;
    let config = ModelConfig::read(files)?;
    for &hook in hooks {
        config.check_hook(hook, files)?;
    }
    config.load(files, deepest, device, dtype)
}

/// [`load_model`] with the weights, and so the forward pass, in `dtype`. Only f32 runs the CPU
/// kernels; other dtypes take the candle-tensor path on any device.
pub fn load_model_as(
    files: &ModelFiles,
    hook: HookPoint,
    device: &Device,
    dtype: DType,
) -> Result<Box<dyn ResidualModel>> {
    let config = ModelConfig::read(files)?;
    config.check_hook(hook, files)?;
    config.load(files, hook, device, dtype)
}

/// The configuration of one of the [`ARCHITECTURES`].
enum ArchConfig {
    Gpt2(gpt2::Gpt2Config),
    Neox(gpt_neox::NeoxConfig),
    Decoder(Box<decoder::DecoderConfig>),
}

/// A model's `config.json`, read for its architecture.
struct ModelConfig {
    /// The architecture's display name and the hook kinds it reads.
    arch: &'static str,
    kinds: &'static [HookKind],
    config: ArchConfig,
}

impl ModelConfig {
    /// Reads the `config.json` of `files` by its `model_type`.
    fn read(files: &ModelFiles) -> Result<Self> {
        let cfg = files.config_json()?;
        let file = files.config_name();
        let model_type = JsonKeys::new(&cfg, &file)?.str("model_type")?.unwrap_or("");
        ensure!(
            !model_type.is_empty(),
            "{} has no model_type",
            files.config.display()
        );
        let (arch, kinds) =
            architecture(model_type).with_context(|| format!("{}", files.config.display()))?;
        let config = match model_type {
            "gpt2" => ArchConfig::Gpt2(gpt2::Gpt2Config::from_json(&cfg, &file)?),
            "gpt_neox" => ArchConfig::Neox(gpt_neox::NeoxConfig::from_json(&cfg, &file)?),
            _ => ArchConfig::Decoder(Box::new(decoder::DecoderConfig::from_json(&cfg, &file)?)),
        };
        Ok(Self {
            arch,
            kinds,
            config,
        })
    }

    /// Checks that the model can stop at `hook`: a kind it reads, a layer it has, a hook its
    /// blocks have.
    fn check_hook(&self, hook: HookPoint, files: &ModelFiles) -> Result<()> {
        hook.check_kind(self.kinds, self.arch)?;
        let n_layers = match &self.config {
            ArchConfig::Gpt2(c) => c.n_layer,
            ArchConfig::Neox(c) => c.num_hidden_layers,
            ArchConfig::Decoder(c) => c.n_layers,
        };
        hook.check_within(n_layers, &files.source)?;
        match &self.config {
            ArchConfig::Neox(c) => c.check_hook(hook),
            _ => Ok(()),
        }
    }

    /// Loads the model up to `hook` (already checked).
    fn load(
        self,
        files: &ModelFiles,
        hook: HookPoint,
        device: &Device,
        dtype: DType,
    ) -> Result<Box<dyn ResidualModel>> {
        let vb = weights_var_builder_as(files, hook.blocks_needed(), device, dtype)?;
        let (arch, source) = (self.arch, &files.source);
        let context = || format!("cannot load {arch} weights from {source}");
        Ok(match self.config {
            ArchConfig::Gpt2(c) => Box::new(gpt2::Gpt2::load(vb, c, hook).with_context(context)?),
            ArchConfig::Neox(c) => {
                Box::new(gpt_neox::GptNeox::load(vb, c, hook).with_context(context)?)
            }
            ArchConfig::Decoder(c) => {
                Box::new(decoder::Decoder::load(vb, *c, hook).with_context(context)?)
            }
        })
    }
}

/// Subtracts each position's mean over d_model, as TransformerLens' `center_writing_weights`
/// makes the residual stream of LayerNorm models (see docs/formats.md, "Residual stream
/// centring").
pub fn center_per_position(x: &Tensor) -> Result<Tensor> {
    Ok(x.broadcast_sub(&x.mean_keepdim(candle_core::D::Minus1)?)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_names_that_leave_the_model_folder_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let index = dir.path().join("model.safetensors.index.json");
        let write = |shard: &str| {
            let json = serde_json::json!({"weight_map": {"wte.weight": shard}});
            std::fs::write(&index, json.to_string()).unwrap();
        };
        write("model-00001-of-00002.safetensors");
        assert_eq!(
            shard_names(&index).unwrap(),
            ["model-00001-of-00002.safetensors"]
        );
        write("../../elsewhere.safetensors");
        let err = shard_names(&index).unwrap_err().to_string();
        assert!(err.contains("a shard of") && err.contains("`..`"), "{err}");
    }

    #[test]
    fn hook_names_round_trip() {
        let h = HookPoint::parse("blocks.8.hook_resid_pre").unwrap();
        assert_eq!(
            h,
            HookPoint {
                layer: 8,
                kind: HookKind::ResidPre
            }
        );
        assert_eq!(h.to_string(), "blocks.8.hook_resid_pre");
        assert_eq!(h.blocks_needed(), 8);
        assert_eq!(
            HookPoint::parse("blocks.0.hook_resid_post")
                .unwrap()
                .blocks_needed(),
            1
        );
        for name in [
            "hook_embed",
            "blocks.2.hook_resid_mid",
            "blocks.2.hook_attn_out",
            "blocks.2.hook_mlp_out",
            "blocks.2.attn.hook_z",
            "blocks.2.ln2.hook_normalized",
        ] {
            assert_eq!(HookPoint::parse(name).unwrap().to_string(), name);
        }
        let hf = |name: &str| HookPoint::parse(name).unwrap().to_string();
        assert_eq!(hf("model.layers.4.output"), "blocks.4.hook_resid_post");
        assert_eq!(
            hf("model.layers.4.self_attn.o_proj.input"),
            "blocks.4.attn.hook_z"
        );
        assert_eq!(
            hf("model.layers.4.pre_feedforward_layernorm.output"),
            "blocks.4.ln2.hook_normalized"
        );
        assert_eq!(hf("blocks.4.mlp.hook_in"), "blocks.4.ln2.hook_normalized");
        assert_eq!(hf("blocks.4.hook_mlp_in"), "blocks.4.hook_resid_mid");
        let err = HookPoint::parse("blocks.8.hook_scores").unwrap_err();
        assert!(
            err.to_string().contains("saecooc reads hook_embed"),
            "{err}"
        );
        let err = HookPoint::parse("blocks.12.hook_resid_pre")
            .unwrap()
            .check_within(12, "gpt2")
            .unwrap_err();
        assert!(err.to_string().contains("beyond the model"), "{err}");
    }

    #[test]
    fn centering_makes_each_position_mean_zero() {
        let x = Tensor::new(&[[[1f32, 2., 3., 6.], [0., 0., 4., 0.]]], &Device::Cpu).unwrap();
        let c = center_per_position(&x).unwrap().to_vec3::<f32>().unwrap();
        assert_eq!(c[0][0], vec![-2., -1., 0., 3.]);
        assert_eq!(c[0][1], vec![-1., -1., 3., -1.]);
    }
}
