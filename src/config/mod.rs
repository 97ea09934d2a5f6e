//! Run configuration: the original pipeline's TOML files plus saecooc's own keys.
//!
//! The original's `[generation]`, `[analysis]` and `[pca]` tables load unchanged (see
//! docs/formats.md, "Inputs"). saecooc adds two optional tables:
//! `[source]` says where model, tokenizer, SAE and text come from (a Hugging Face repo id or a
//! local path; defaults come from the built-in table of the paper's releases), and `[run]`
//! holds device, window and batch sizes and the results folder.

pub use crate::io::pyfmt::check_name;
use crate::io::pyfmt::neat_sae_id;
use anyhow::{bail, ensure, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Display;
use std::ops::{Bound, RangeBounds};
use std::path::{Path, PathBuf};

/// The most windows one forward pass takes (`run.prompts_per_batch`).
pub const MAX_PROMPTS_PER_BATCH: usize = 65_536;
/// The longest window (`run.context_size`): 128k tokens, the longest context of the models
/// saecooc loads (each model's own limit is checked when it is loaded).
pub const MAX_CONTEXT_SIZE: usize = 131_072;
/// The most tokens one forward pass takes (`run.prompts_per_batch × context_size`).
pub const MAX_FORWARD_TOKENS: usize = 1 << 24;
/// The most memory one tensor of 4-byte values sized by the inputs may take (e.g. the residual
/// stream of one forward pass): far above any sensible run, well below sizes that abort on
/// allocation.
pub const MAX_TENSOR_BYTES: u64 = 16 << 30;
/// The most `run.dense_limit_gib` may give (4 TiB).
pub const MAX_DENSE_LIMIT_GIB: f64 = 4096.0;

/// Checks that `value` of `key` (a config key or a command-line flag) lies in `range`; the
/// error names both and the bounds.
pub fn check_range<T: PartialOrd + Display>(
    key: &str,
    value: T,
    range: impl RangeBounds<T>,
) -> Result<()> {
    if range.contains(&value) {
        return Ok(());
    }
    let lower = match range.start_bound() {
        Bound::Included(a) => Some(format!("at least {a}")),
        Bound::Excluded(a) => Some(format!("above {a}")),
        Bound::Unbounded => None,
    };
    let upper = match range.end_bound() {
        Bound::Included(b) => Some(format!("at most {b}")),
        Bound::Excluded(b) => Some(format!("below {b}")),
        Bound::Unbounded => None,
    };
    let bounds: Vec<String> = [lower, upper].into_iter().flatten().collect();
    bail!("{key} is {value}: it must be {}", bounds.join(" and "))
}

/// [`check_range`] for a float, which must also be finite (NaN and ±inf are refused).
pub fn check_finite(key: &str, value: f64, range: impl RangeBounds<f64>) -> Result<()> {
    ensure!(
        value.is_finite(),
        "{key} is {value}: it must be a finite number"
    );
    check_range(key, value, range)
}

/// Checks that a tensor of 4-byte values (float32, u32) of shape `dims`, described by `what`,
/// fits in [`MAX_TENSOR_BYTES`], in arithmetic that cannot overflow.
pub fn check_tensor_size(what: &str, dims: &[usize]) -> Result<()> {
    let bytes = dims
        .iter()
        .try_fold(4u128, |acc, &d| acc.checked_mul(d as u128));
    if bytes.is_some_and(|b| b <= MAX_TENSOR_BYTES as u128) {
        return Ok(());
    }
    let shape: Vec<String> = dims.iter().map(ToString::to_string).collect();
    bail!(
        "{what} would be {} values of 4 bytes, more than the {} GiB one tensor may take",
        shape.join(" × "),
        MAX_TENSOR_BYTES >> 30
    )
}

/// Checks activation thresholds: each finite and 0 or more (below 0 every latent is active on
/// every token), no two alike.
pub fn check_thresholds(key: &str, thresholds: &[f64]) -> Result<()> {
    for (i, &t) in thresholds.iter().enumerate() {
        ensure!(
            t.is_finite() && !t.is_sign_negative(),
            "{key} contains {t}: a threshold must be a finite number, 0 or more (below 0 every latent is active on every token)"
        );
        ensure!(
            !thresholds[..i].contains(&t),
            "{key} contains {t} twice: give each threshold once"
        );
    }
    Ok(())
}

/// Checks each SAE id of `key` with [`check_name`], and that no two share a results folder
/// (their neat ids, `.` and `/` as `_`, are the folder names).
pub fn check_sae_ids(key: &str, ids: &[String]) -> Result<()> {
    for (i, id) in ids.iter().enumerate() {
        check_name(key, id)?;
        let neat = neat_sae_id(id);
        if let Some(other) = ids[..i].iter().find(|o| neat_sae_id(o) == neat) {
            bail!("{key} names {other:?} and {id:?}, which share the results folder {neat:?}: give each SAE once");
        }
    }
    Ok(())
}

/// A whole configuration file for `cooc` (and later `graphs`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub generation: Generation,
    #[serde(default)]
    pub analysis: Analysis,
    /// The original's legacy `[pca]` table; accepted and kept, not used by `cooc`.
    #[serde(default)]
    pub pca: Option<LegacyPca>,
    #[serde(default)]
    pub source: Source,
    #[serde(default)]
    pub run: Run,
}

/// `[generation]`: what to count (original keys).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Generation {
    /// Number of batches of `run.tokens_per_batch` tokens to count; also names `n_batches_{N}`.
    pub n_batches: usize,
    /// Model name as in TransformerLens, e.g. `gpt2-small`, `gemma-2-2b`.
    pub model_name: String,
    /// Short release name, e.g. `res-jb`, `res-jb-feature-splitting`, `gemma-scope-2b-pt-res`.
    pub sae_release_short: String,
    /// Present in the original's Gemma configs; unused (the release is derived).
    #[serde(default)]
    pub sae_release: Option<String>,
    /// SAELens SAE ids, e.g. `blocks.8.hook_resid_pre`.
    pub sae_ids: Vec<String>,
    /// Activation thresholds t: latent i is active iff `act_i > t + θ_i`.
    pub activation_thresholds: Vec<f64>,
    /// The original's shuffle-buffer size; accepted, unused (saecooc reads windows in order).
    #[serde(default)]
    pub n_batches_in_buffer: Option<usize>,
    /// Drop BOS/EOS/PAD positions before counting.
    #[serde(default)]
    pub remove_special_tokens: bool,
    /// Legacy key of the original's test config; accepted, unused.
    #[serde(default)]
    pub remove_first_token: Option<bool>,
}

/// `[analysis]`: graph settings used by `graphs` (original keys and defaults).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Analysis {
    pub random_seed: u64,
    pub min_subgraph_size: usize,
    pub max_subgraph_size: usize,
    pub min_subgraph_size_to_plot: usize,
    pub skip_subgraph_plots: bool,
    pub skip_subgraph_pickles: bool,
    pub include_metrics: bool,
}

impl Default for Analysis {
    fn default() -> Self {
        Self {
            random_seed: 1234,
            min_subgraph_size: 150,
            max_subgraph_size: 200,
            min_subgraph_size_to_plot: 4,
            skip_subgraph_plots: false,
            skip_subgraph_pickles: false,
            include_metrics: false,
        }
    }
}

/// `[pca]`: the original's legacy candidate settings (kept for compatibility).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LegacyPca {
    #[serde(default)]
    pub candidate_sizes: Vec<usize>,
    #[serde(default)]
    pub candidates_per_size: Option<usize>,
    #[serde(default)]
    pub n_batches_reconstruction: Option<usize>,
    #[serde(default)]
    pub recalculate_results: Option<bool>,
}

/// `[source]`: where the inputs come from. Each is a Hugging Face repo id (`owner/name`,
/// optionally `hf:owner/name`) or a local path. Unset entries come from the built-in table.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// Model weights: a folder with `config.json` + `*.safetensors`, or a hub model repo.
    pub model: Option<String>,
    pub model_revision: Option<String>,
    /// Tokenizer: `tokenizer.json`, a folder with it (or `vocab.json` + `merges.txt`), or a hub
    /// repo. Default: the model's.
    pub tokenizer: Option<String>,
    /// SAE: a hub repo, a folder or a file. `{sae_id}` / `{neat_sae_id}` in it are replaced;
    /// otherwise the SAE's subfolder (from the built-in table, else the sae id) is appended. A
    /// local path may also be the SAE's own folder or its `params.npz` /
    /// `sae_weights.safetensors` / `cfg.json` file.
    pub sae: Option<String>,
    pub sae_revision: Option<String>,
    /// Text: a `.txt` (one document per line, as Python's `str.splitlines`), `.jsonl`,
    /// `.jsonl.zst`, `.jsonl.gz` or `.parquet` file, a folder of them, or a hub dataset repo (its
    /// parquet files if it has any, else its other text files; with nothing readable on `main`,
    /// its `refs/convert/parquet` conversion), read in sorted path order.
    pub dataset: Option<String>,
    pub dataset_revision: Option<String>,
    /// Only hub/folder text files whose path contains this (e.g. `train/`).
    pub dataset_files: Option<String>,
    /// Column / JSON field that holds the text (default `text`).
    pub text_field: Option<String>,
    /// Whether the residual stream (and W_E for top tokens) is centred per position, as
    /// TransformerLens' `center_writing_weights` makes it. Unset: decided by the model (centred
    /// for LayerNorm models such as GPT-2, never for RMSNorm ones) unless the SAE's cfg.json
    /// turns it off. `true` is refused for RMSNorm models, which TransformerLens never centres.
    /// Left out of the serialized config when unset, so fingerprints of existing checkpoints
    /// stay valid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub center_writing_weights: Option<bool>,
}

/// Command-line options shared by the stages that run on a config (`cooc`, `graphs`, `pca`),
/// flattened into each stage's options.
#[derive(Debug, Clone, Default, clap::Args, Serialize)]
pub struct StageCommon {
    /// Results folder, overriding [run] results_dir (default results/). For `graphs` it may
    /// also be one SAE's folder (the one holding its Jaccard files).
    #[arg(long)]
    pub results_dir: Option<PathBuf>,
    /// Compute device, overriding [run] device.
    #[arg(long, value_enum)]
    pub device: Option<DeviceKind>,
    /// Print nothing but errors (the global --quiet).
    #[arg(skip)]
    pub quiet: bool,
}

impl StageCommon {
    /// The results folder: `--results-dir` when given, else `[run] results_dir`.
    pub fn results_root(&self, run: &Run) -> PathBuf {
        self.results_dir
            .clone()
            .unwrap_or_else(|| run.results_dir.clone())
    }
}

/// Compute device.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum DeviceKind {
    #[default]
    Cpu,
    Cuda,
}

/// The float type the language model runs in (`[run] dtype`). The SAE always encodes in f32.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ModelDType {
    /// Full precision, the default: what the golden tests check (within 1e-4 of transformers).
    #[default]
    F32,
    /// bfloat16 weights and activations (CUDA only: candle's CPU matrix product has none).
    Bf16,
    /// float16 (runs on the CPU too; Gemma-2's activations can overflow it).
    F16,
}

impl ModelDType {
    /// The candle dtype on `device`; bf16 on the CPU is refused with the alternatives.
    pub fn on(self, device: &candle_core::Device) -> Result<candle_core::DType> {
        use candle_core::DType;
        match self {
            Self::F32 => Ok(DType::F32),
            Self::F16 => Ok(DType::F16),
            Self::Bf16 if device.is_cpu() => bail!(
                "run.dtype = \"bf16\" needs device = \"cuda\": candle's CPU matrix product has no bf16 (use \"f32\", or \"f16\" to try reduced precision on the CPU)"
            ),
            Self::Bf16 => Ok(DType::BF16),
        }
    }
}

/// `[run]`: how to run.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Run {
    pub device: DeviceKind,
    /// The float type the language model runs in; f32 by default (see [`ModelDType`]).
    pub dtype: ModelDType,
    /// Tokens per window including the leading BOS; default from the SAE's config, else 128.
    pub context_size: Option<usize>,
    /// Start every window with BOS; default: the SAE config's `prepend_bos`, else true.
    pub prepend_bos: Option<bool>,
    /// The token put between two documents inside a window: `"bos"`, `"eos"`, `"none"` or a
    /// token id. Default: `"bos"` when windows start with BOS, else `"none"` (SAELens 3, which
    /// the original pinned; SAELens 6's `ActivationsStore.from_sae` uses `"bos"` always).
    pub sequence_separator: Option<crate::data::TokenSpec>,
    /// Windows per forward pass.
    pub prompts_per_batch: usize,
    /// Tokens counted per batch (after special-token removal).
    pub tokens_per_batch: usize,
    /// Where results go: `{results_dir}/{model}/{release_short}/{neat_sae_id}/n_batches_{N}/`.
    pub results_dir: PathBuf,
    /// Where pair counts accumulate (see [`Accumulator`]).
    pub accumulator: Accumulator,
    /// Memory the dense triangles of all thresholds may take under `accumulator = "auto"` (GiB).
    pub dense_limit_gib: f64,
    /// File format of the count and Jaccard matrices (see [`MatrixFormat`]).
    pub matrix_format: MatrixFormat,
}

impl Default for Run {
    fn default() -> Self {
        Self {
            device: DeviceKind::Cpu,
            dtype: ModelDType::F32,
            context_size: None,
            prepend_bos: None,
            sequence_separator: None,
            prompts_per_batch: 8,
            tokens_per_batch: 4096,
            results_dir: PathBuf::from("results"),
            accumulator: Accumulator::Auto,
            dense_limit_gib: 10.0,
            matrix_format: MatrixFormat::Auto,
        }
    }
}

impl Run {
    /// Range checks of the `[run]` keys, before any input is opened.
    pub fn validate(&self) -> Result<()> {
        check_range(
            "run.prompts_per_batch",
            self.prompts_per_batch,
            1..=MAX_PROMPTS_PER_BATCH,
        )?;
        check_range(
            "run.tokens_per_batch",
            self.tokens_per_batch,
            1..=u32::MAX as usize,
        )?;
        check_finite(
            "run.dense_limit_gib",
            self.dense_limit_gib,
            0.0..=MAX_DENSE_LIMIT_GIB,
        )?;
        if let Some(c) = self.context_size {
            check_range("run.context_size", c, 2..=MAX_CONTEXT_SIZE)?;
            self.check_forward_tokens(c)?;
        }
        Ok(())
    }

    /// Checks one forward pass of `prompts_per_batch` windows of `context_size` tokens through
    /// a `d_model`-wide model, once both are known: at most [`MAX_FORWARD_TOKENS`] tokens and a
    /// residual stream within [`MAX_TENSOR_BYTES`].
    pub fn check_forward(&self, context_size: usize, d_model: usize) -> Result<()> {
        self.check_forward_tokens(context_size)?;
        check_tensor_size(
            "one forward pass's residual stream (run.prompts_per_batch × context_size × d_model)",
            &[self.prompts_per_batch, context_size, d_model],
        )
    }

    fn check_forward_tokens(&self, context_size: usize) -> Result<()> {
        let tokens = self.prompts_per_batch.saturating_mul(context_size);
        ensure!(
            tokens <= MAX_FORWARD_TOKENS,
            "run.prompts_per_batch × context_size = {} × {context_size} = {tokens} tokens in one forward pass: at most {MAX_FORWARD_TOKENS}",
            self.prompts_per_batch
        );
        Ok(())
    }
}

/// `[run] accumulator`: where pair counts accumulate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Accumulator {
    /// Dense while the triangles of all thresholds fit in `dense_limit_gib`, else sparse.
    #[default]
    Auto,
    /// The u32 upper triangle: fastest; F(F+1)/2 × 4 bytes per threshold.
    Dense,
    /// Sorted sparse pairs: memory grows with the pairs that co-occur (wide SAEs).
    Sparse,
}

/// `[run] matrix_format`: how the count and Jaccard matrices are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MatrixFormat {
    /// Dense up to [`MatrixFormat::DENSE_MAX_LATENTS`] latents, CSR above.
    #[default]
    Auto,
    /// `np.savez_compressed` of the F×F float32 matrix (`arr_0`), as the original writes.
    Dense,
    /// `scipy.sparse.save_npz` of a CSR float32 matrix (`scipy.sparse.load_npz` opens it).
    Csr,
}

impl MatrixFormat {
    /// The widest SAE whose matrices `auto` writes dense (a 65,536² float32 matrix is 17 GB).
    pub const DENSE_MAX_LATENTS: usize = 65_536;

    /// True when matrices of `n_latents` latents are written as CSR.
    pub fn is_csr(self, n_latents: usize) -> bool {
        match self {
            MatrixFormat::Auto => n_latents > Self::DENSE_MAX_LATENTS,
            MatrixFormat::Dense => false,
            MatrixFormat::Csr => true,
        }
    }
}

/// A `pca` config: the original's `config_pca_streamlit_maxexamples.toml` (see docs/formats.md,
/// "Inputs"), loaded unchanged, plus saecooc's `[source]` and `[run]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PcaConfig {
    pub generation: PcaGeneration,
    pub model: PcaModel,
    pub processing: Processing,
    #[serde(default)]
    pub source: Source,
    #[serde(default)]
    pub run: Run,
    /// The original explorer app's tables: accepted (every key checked), unused.
    #[serde(default)]
    pub streamlit: Option<Streamlit>,
    #[serde(default)]
    pub releases: Option<Releases>,
    #[serde(default)]
    pub models: Option<Models>,
    /// `[recommended_views.{view}]`: the explorer's example buttons, used by `export`.
    #[serde(default)]
    pub recommended_views: Option<RecommendedViews>,
}

/// `[recommended_views]`: each view under its key, in the file's order (the order of the
/// explorer's buttons). A view with a missing, mistyped or unknown key is refused, naming the
/// view and the key.
#[derive(Debug, Clone, Default)]
pub struct RecommendedViews(pub Vec<(String, RecommendedViewConfig)>);

impl<'de> Deserialize<'de> for RecommendedViews {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let table = toml::Table::deserialize(deserializer)?;
        table
            .into_iter()
            .map(|(view, value)| {
                let parsed = value.try_into::<RecommendedViewConfig>().map_err(|e| {
                    serde::de::Error::custom(format!(
                        "recommended_views.{view}: {}",
                        e.to_string().trim_end()
                    ))
                })?;
                Ok((view, parsed))
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }
}

impl Serialize for RecommendedViews {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(k, v)| (k, v)))
    }
}

/// `[streamlit]` of a PCA config (the original app's settings).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Streamlit {
    #[serde(default)]
    pub remove_token_counts: Option<bool>,
    /// Display name of each model.
    #[serde(default)]
    pub models: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub dev: Option<StreamlitDev>,
}

/// `[streamlit.dev]` of a PCA config.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StreamlitDev {
    #[serde(default)]
    pub show_max_examples: Option<bool>,
    #[serde(default)]
    pub show_batch_size: Option<bool>,
}

/// `[releases]` of a PCA config: `generation_batch_sizes`, `n_batches` per release.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Releases {
    #[serde(default)]
    pub generation_batch_sizes: Option<BTreeMap<String, usize>>,
}

/// `[models]` of a PCA config: the original app's per-model and per-release lists
/// (`batch_sizes` is the older config's name of `pca_batch_sizes`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Models {
    #[serde(default)]
    pub pca_batch_sizes: Option<BTreeMap<String, usize>>,
    #[serde(default)]
    pub batch_sizes: Option<BTreeMap<String, usize>>,
    #[serde(default)]
    pub max_examples: Option<BTreeMap<String, usize>>,
    #[serde(default)]
    pub releases: Option<BTreeMap<String, Vec<String>>>,
    #[serde(default)]
    pub sae_ids: Option<BTreeMap<String, Vec<String>>>,
}

/// One `[recommended_views.{view}]` of a PCA config: a subgraph the explorer offers as an
/// example (`sae_id` is the neat id, the SAE's folder name).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RecommendedViewConfig {
    /// The button's label (default: the view's key).
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    pub model: String,
    pub sae_release: String,
    pub sae_id: String,
    pub size: i64,
    pub subgraph: i64,
}

/// `[processing.load_options]` of a PCA config: the original app's loading switches;
/// accepted, unused.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LoadOptions {
    #[serde(default)]
    pub thresholded_matrix: Option<bool>,
    #[serde(default)]
    pub use_max_examples: Option<bool>,
    #[serde(default)]
    pub fired_tokens: Option<bool>,
    #[serde(default)]
    pub reconstructions: Option<bool>,
    #[serde(default)]
    pub graph_feature_acts: Option<bool>,
    #[serde(default)]
    pub feature_acts: Option<bool>,
    #[serde(default)]
    pub max_feature_info: Option<bool>,
    #[serde(default)]
    pub examples_found: Option<bool>,
    #[serde(default)]
    pub token_dfs: Option<bool>,
}

/// `[generation]` of a PCA config.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PcaGeneration {
    /// Which `n_batches_{N}` results folder holds the node tables.
    pub n_batches_generation: usize,
}

/// `[model]` of a PCA config.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PcaModel {
    pub name: String,
    pub sae_release_short: String,
    pub sae_ids: Vec<String>,
}

/// `[processing]` of a PCA config.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Processing {
    /// Skip BOS/EOS/PAD positions (required for Gemma).
    #[serde(default)]
    pub remove_special_tokens: bool,
    /// Batches (of `run.prompts_per_batch` windows) to search for examples.
    pub n_batches_reconstruction: usize,
    /// Which node table (`node_info_df_{ts}.csv`) to read.
    pub activation_threshold: f64,
    pub subgraph_sizes_to_plot: Vec<usize>,
    /// Stop collecting a subgraph's examples once it has this many (none: no cap).
    #[serde(default)]
    pub max_examples: Option<usize>,
    /// Drop the examples beyond `max_examples` from the last batch.
    #[serde(default)]
    pub trim_excess: bool,
    /// Legacy key; accepted, unused (`save_options.feature_acts` decides).
    #[serde(default)]
    pub save_all_feature_acts: bool,
    #[serde(default)]
    pub save_options: SaveOptions,
    /// The original app's loading options; accepted, unused.
    #[serde(default)]
    pub load_options: Option<LoadOptions>,
}

/// `[processing.save_options]`: which datasets go into each `subgraph_{sid}` group.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SaveOptions {
    pub fired_tokens: bool,
    pub top_3_tokens: bool,
    pub context: bool,
    pub reconstructions: bool,
    pub graph_feature_acts: bool,
    pub feature_acts: bool,
    pub max_feature_info: bool,
    pub examples_found: bool,
    pub token_dfs: bool,
    pub pca: bool,
}

impl Default for SaveOptions {
    /// The options of the original's shipped config.
    fn default() -> Self {
        Self {
            fired_tokens: false,
            top_3_tokens: true,
            context: true,
            reconstructions: false,
            graph_feature_acts: true,
            feature_acts: false,
            max_feature_info: true,
            examples_found: false,
            token_dfs: false,
            pca: true,
        }
    }
}

impl PcaConfig {
    /// Reads and validates a PCA config file; errors name the file and the key.
    pub fn load(path: &Path) -> Result<Self> {
        let text = crate::encoding::read_text_file(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("invalid PCA config file {}", path.display()))
    }

    /// Parses and validates PCA config text.
    pub fn parse(text: &str) -> Result<Self> {
        let config: PcaConfig =
            toml::from_str(text).map_err(|e| anyhow::anyhow!("{}", e.to_string().trim_end()))?;
        let p = &config.processing;
        check_range(
            "generation.n_batches_generation",
            config.generation.n_batches_generation,
            1..,
        )?;
        ensure!(
            !config.model.sae_ids.is_empty(),
            "model.sae_ids is empty: name at least one SAE"
        );
        check_name("model.name", &config.model.name)?;
        check_name("model.sae_release_short", &config.model.sae_release_short)?;
        check_sae_ids("model.sae_ids", &config.model.sae_ids)?;
        for (view, v) in config.recommended_views.iter().flat_map(|r| &r.0) {
            let key = |k: &str| format!("recommended_views.{view}.{k}");
            check_name(&key("model"), &v.model)?;
            check_name(&key("sae_release"), &v.sae_release)?;
            check_name(&key("sae_id"), &v.sae_id)?;
        }
        check_range(
            "processing.n_batches_reconstruction",
            p.n_batches_reconstruction,
            1..,
        )?;
        check_thresholds("processing.activation_threshold", &[p.activation_threshold])?;
        ensure!(
            !p.subgraph_sizes_to_plot.is_empty(),
            "processing.subgraph_sizes_to_plot is empty"
        );
        for &size in &p.subgraph_sizes_to_plot {
            check_range("processing.subgraph_sizes_to_plot", size, 1..)?;
        }
        if let Some(max) = p.max_examples {
            check_range("processing.max_examples", max, 1..)?;
        }
        ensure!(
            !config.model.name.starts_with("gemma") || p.remove_special_tokens,
            "Gemma requires removing special tokens: set processing.remove_special_tokens = true"
        );
        config.source.validate()?;
        config.run.validate()?;
        Ok(config)
    }

    /// The equivalent `cooc`-style config, so inputs resolve as for the other stages.
    pub fn as_config(&self) -> Config {
        Config {
            generation: Generation {
                n_batches: self.generation.n_batches_generation,
                model_name: self.model.name.clone(),
                sae_release_short: self.model.sae_release_short.clone(),
                sae_release: None,
                sae_ids: self.model.sae_ids.clone(),
                activation_thresholds: vec![self.processing.activation_threshold],
                n_batches_in_buffer: None,
                remove_special_tokens: self.processing.remove_special_tokens,
                remove_first_token: None,
            },
            analysis: Analysis::default(),
            pca: None,
            source: self.source.clone(),
            run: self.run.clone(),
        }
    }
}

impl Generation {
    /// The `[generation]` of a run on `sae_ids` of `model_name` / `sae_release_short`.
    pub fn new(
        model_name: &str,
        sae_release_short: &str,
        sae_ids: Vec<String>,
        activation_thresholds: Vec<f64>,
        n_batches: usize,
        remove_special_tokens: bool,
    ) -> Self {
        Self {
            n_batches,
            model_name: model_name.into(),
            sae_release_short: sae_release_short.into(),
            sae_release: None,
            sae_ids,
            activation_thresholds,
            n_batches_in_buffer: None,
            remove_special_tokens,
            remove_first_token: None,
        }
    }
}

impl Source {
    /// Checks the revisions, which name folders of the hub cache (`refs/{revision}`), as
    /// [`check_name`] does (`main`, a tag, a commit, `refs/convert/parquet`).
    pub fn validate(&self) -> Result<()> {
        for (key, revision) in [
            ("source.model_revision", &self.model_revision),
            ("source.sae_revision", &self.sae_revision),
            ("source.dataset_revision", &self.dataset_revision),
        ] {
            if let Some(r) = revision {
                check_name(key, r)?;
            }
        }
        Ok(())
    }

    /// Local model, SAE and dataset paths (everything else from the defaults).
    pub fn local(model: &Path, sae: &Path, dataset: &Path) -> Self {
        Self {
            model: Some(model.display().to_string()),
            sae: Some(sae.display().to_string()),
            dataset: Some(dataset.display().to_string()),
            ..Self::default()
        }
    }
}

impl Config {
    /// A config of `generation`, `source` and `run`, with the default `[analysis]`.
    pub fn new(generation: Generation, source: Source, run: Run) -> Self {
        Self {
            generation,
            analysis: Analysis::default(),
            pca: None,
            source,
            run,
        }
    }

    /// The config as TOML text that [`Config::parse`] reads back into the same config: the one
    /// template every config saecooc writes (`synth`, `bench`) comes from.
    pub fn to_toml(&self) -> Result<String> {
        toml::to_string(self).context("cannot write the config as TOML")
    }

    /// Reads and validates a config file; errors name the file and the key.
    pub fn load(path: &Path) -> Result<Self> {
        let text = crate::encoding::read_text_file(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("invalid config file {}", path.display()))
    }

    /// Parses and validates config text.
    pub fn parse(text: &str) -> Result<Self> {
        let config: Config =
            toml::from_str(text).map_err(|e| anyhow::anyhow!("{}", e.to_string().trim_end()))?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<()> {
        let g = &self.generation;
        check_range("generation.n_batches", g.n_batches, 1..)?;
        ensure!(
            !g.sae_ids.is_empty(),
            "generation.sae_ids is empty: name at least one SAE"
        );
        check_name("generation.model_name", &g.model_name)?;
        check_name("generation.sae_release_short", &g.sae_release_short)?;
        check_sae_ids("generation.sae_ids", &g.sae_ids)?;
        self.source.validate()?;
        ensure!(
            !g.activation_thresholds.is_empty(),
            "generation.activation_thresholds is empty: give at least one threshold"
        );
        check_thresholds("generation.activation_thresholds", &g.activation_thresholds)?;
        self.run.validate()?;
        ensure!(
            self.tokens_to_count() <= u32::MAX as u64,
            "generation.n_batches × run.tokens_per_batch = {} tokens: at most {} can be counted in one run",
            self.tokens_to_count(),
            u32::MAX
        );
        ensure!(
            !g.model_name.starts_with("gemma") || g.remove_special_tokens,
            "Gemma requires removing special tokens (as in the original): set generation.remove_special_tokens = true"
        );
        let a = &self.analysis;
        check_range("analysis.max_subgraph_size", a.max_subgraph_size, 1..)?;
        if a.min_subgraph_size > a.max_subgraph_size {
            bail!(
                "analysis.min_subgraph_size ({}) is larger than analysis.max_subgraph_size ({})",
                a.min_subgraph_size,
                a.max_subgraph_size
            );
        }
        Ok(())
    }

    /// Total tokens to count per SAE.
    pub fn tokens_to_count(&self) -> u64 {
        (self.generation.n_batches as u64).saturating_mul(self.run.tokens_per_batch as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bf16_on_the_cpu_is_refused_with_the_alternatives() {
        let cpu = candle_core::Device::Cpu;
        let err = ModelDType::Bf16.on(&cpu).unwrap_err().to_string();
        assert!(err.contains("cuda") && err.contains("f16"), "{err}");
        assert_eq!(ModelDType::F16.on(&cpu).unwrap(), candle_core::DType::F16);
        assert_eq!(
            ModelDType::default().on(&cpu).unwrap(),
            candle_core::DType::F32
        );
    }

    #[test]
    fn the_originals_pca_config_loads_unchanged() {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/pca-streamlit-maxexamples.toml");
        let c = PcaConfig::load(&path).unwrap();
        assert_eq!(c.generation.n_batches_generation, 1000);
        assert_eq!(c.processing.max_examples, Some(5000));
        assert_eq!(
            c.processing.subgraph_sizes_to_plot,
            (4..=13).collect::<Vec<_>>()
        );
        assert!(c.processing.save_options.pca && !c.processing.save_options.token_dfs);
        assert!(c.recommended_views.is_some());
        let as_cooc = c.as_config();
        assert_eq!(as_cooc.generation.n_batches, 1000);
        assert_eq!(as_cooc.generation.activation_thresholds, [1.5]);

        let text = std::fs::read_to_string(&path).unwrap();
        let gemma = text.replace("name = \"gpt2-small\"", "name = \"gemma-2-2b\"");
        let err = PcaConfig::parse(&gemma).unwrap_err().to_string();
        assert!(
            err.contains("Gemma requires removing special tokens"),
            "{err}"
        );
        let typo = text.replace("trim_excess", "trim_exces");
        let err = PcaConfig::parse(&typo).unwrap_err().to_string();
        assert!(err.contains("trim_exces"), "{err}");
        let negative = text.replace("activation_threshold = 1.5", "activation_threshold = -1.5");
        let err = PcaConfig::parse(&negative).unwrap_err().to_string();
        assert!(
            err.contains("processing.activation_threshold contains -1.5"),
            "{err}"
        );
        let huge = format!("{text}\n[run]\nprompts_per_batch = 1000000000000000000\n");
        let err = PcaConfig::parse(&huge).unwrap_err().to_string();
        assert!(
            err.contains("run.prompts_per_batch is 1000000000000000000"),
            "{err}"
        );
    }

    const ORIGINAL_FEATURE_SPLIT: &str = r#"
['generation']
n_batches = 500
model_name = "gpt2-small"
sae_release_short = "res-jb-feature-splitting"
sae_ids = ["blocks.8.hook_resid_pre_24576"]
activation_thresholds = [1.5, 0, 10]
n_batches_in_buffer = 16
remove_special_tokens = false

['analysis']
random_seed = 1234
min_subgraph_size = 150
max_subgraph_size = 200
min_subgraph_size_to_plot = 4
skip_subgraph_plots = false
skip_subgraph_pickles = false
include_metrics = true

['pca']
candidate_sizes = [5, 7, 12]
candidates_per_size = 3
n_batches_reconstruction = 50
recalculate_results = false
"#;

    #[test]
    fn original_config_loads_unchanged() {
        let c = Config::parse(ORIGINAL_FEATURE_SPLIT).unwrap();
        assert_eq!(c.generation.n_batches, 500);
        assert_eq!(c.generation.activation_thresholds, vec![1.5, 0.0, 10.0]);
        assert!(c.analysis.include_metrics);
        assert_eq!(c.pca.unwrap().candidate_sizes, vec![5, 7, 12]);
        assert_eq!(c.run.tokens_per_batch, 4096);
        assert_eq!(c.run.results_dir, PathBuf::from("results"));
    }

    #[test]
    fn unknown_and_missing_keys_are_named() {
        let unknown =
            ORIGINAL_FEATURE_SPLIT.replace("n_batches = 500", "n_batches = 500\nn_bacthes = 3");
        let err = format!("{:#}", Config::parse(&unknown).unwrap_err());
        assert!(err.contains("n_bacthes"), "{err}");

        let missing =
            ORIGINAL_FEATURE_SPLIT.replace("sae_ids = [\"blocks.8.hook_resid_pre_24576\"]", "");
        let err = format!("{:#}", Config::parse(&missing).unwrap_err());
        assert!(err.contains("sae_ids"), "{err}");

        let bad_run = format!("{ORIGINAL_FEATURE_SPLIT}\n[run]\ntokens_per_batch = 0\n");
        let err = format!("{:#}", Config::parse(&bad_run).unwrap_err());
        assert!(err.contains("run.tokens_per_batch"), "{err}");

        let bad_device = format!("{ORIGINAL_FEATURE_SPLIT}\n[run]\ndevice = \"tpu\"\n");
        let err = format!("{:#}", Config::parse(&bad_device).unwrap_err());
        assert!(err.contains("tpu"), "{err}");
    }

    /// The error of `ORIGINAL_FEATURE_SPLIT` with `from` replaced by `to`.
    fn error_with(from: &str, to: &str) -> String {
        let text = ORIGINAL_FEATURE_SPLIT.replace(from, to);
        assert_ne!(text, ORIGINAL_FEATURE_SPLIT, "{from} is not in the config");
        format!("{:#}", Config::parse(&text).unwrap_err())
    }

    #[test]
    fn out_of_range_values_are_named_with_their_value() {
        let thresholds = "activation_thresholds = [1.5, 0, 10]";
        for (bad, want) in [
            ("[1.5, -0.5]", "contains -0.5"),
            ("[-0.0]", "contains -0"),
            ("[nan]", "contains NaN"),
            ("[0, inf]", "contains inf"),
            ("[1.5, 0, 1.5]", "contains 1.5 twice"),
        ] {
            let err = error_with(thresholds, &format!("activation_thresholds = {bad}"));
            assert!(
                err.contains("generation.activation_thresholds") && err.contains(want),
                "{bad}: {err}"
            );
        }
        for (run, want) in [
            (
                "prompts_per_batch = 1000000000000",
                "run.prompts_per_batch is 1000000000000",
            ),
            ("prompts_per_batch = 0", "run.prompts_per_batch is 0"),
            ("context_size = 1", "run.context_size is 1"),
            ("context_size = 1000000", "run.context_size is 1000000"),
            (
                "context_size = 1024\nprompts_per_batch = 65536",
                "= 67108864 tokens",
            ),
            ("dense_limit_gib = nan", "run.dense_limit_gib is NaN"),
            ("dense_limit_gib = 1e9", "run.dense_limit_gib is 1000000000"),
        ] {
            let text = format!("{ORIGINAL_FEATURE_SPLIT}\n[run]\n{run}\n");
            let err = format!("{:#}", Config::parse(&text).unwrap_err());
            assert!(err.contains(want), "{run}: {err}");
        }
        let err = error_with("n_batches = 500", "n_batches = 9223372036854775807");
        assert!(err.contains("at most 4294967295 can be counted"), "{err}");
    }

    #[test]
    fn forward_pass_sizes_are_checked_once_the_model_is_known() {
        let run = Run {
            prompts_per_batch: 4096,
            ..Run::default()
        };
        run.check_forward(128, 768).unwrap();
        let err = run.check_forward(1024, 4096).unwrap_err().to_string();
        assert!(
            err.contains("4096 × 1024 × 4096 values of 4 bytes"),
            "{err}"
        );
        let err = check_tensor_size("x", &[usize::MAX, usize::MAX, 2]).unwrap_err();
        assert!(err.to_string().contains("more than the 16 GiB"), "{err}");
    }

    #[test]
    fn malformed_toml_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broken.toml");
        std::fs::write(&path, "[generation\nn_batches = 1").unwrap();
        let err = format!("{:#}", Config::load(&path).unwrap_err());
        assert!(err.contains("broken.toml"), "{err}");
        let err = format!(
            "{:#}",
            Config::load(&dir.path().join("absent.toml")).unwrap_err()
        );
        assert!(err.contains("absent.toml"), "{err}");
    }

    #[test]
    fn names_that_would_leave_their_folder_are_refused_with_the_key() {
        for ok in [
            "gpt2-small",
            "google/gemma-2-2b",
            "layer_12/width_16k/canonical",
            "a.b",
            "100%",
        ] {
            check_name("k", ok).unwrap();
        }
        for (bad, want) in [
            ("", "may not be empty"),
            ("../x", "`..`"),
            ("..", "`..`"),
            (".", "`.`"),
            ("a/./b", "`.`"),
            ("a//b", "empty"),
            ("a/", "empty"),
            ("/etc", "absolute"),
            ("a\\b", "`\\`"),
            ("a\0b", "control characters"),
            ("a\nb", "control characters"),
        ] {
            let err = error_with(
                "model_name = \"gpt2-small\"",
                &format!("model_name = {}", toml::Value::from(bad)),
            );
            assert!(
                err.contains("generation.model_name is") && err.contains(want),
                "{bad:?}: {err}"
            );
        }
        let err = error_with(
            "sae_release_short = \"res-jb-feature-splitting\"",
            "sae_release_short = \"/abs\"",
        );
        assert!(
            err.contains("generation.sae_release_short is \"/abs\""),
            "{err}"
        );
        let err = error_with("\"blocks.8.hook_resid_pre_24576\"]", "\"../../x\"]");
        assert!(err.contains("generation.sae_ids is \"../../x\""), "{err}");
        let err = error_with(
            "\"blocks.8.hook_resid_pre_24576\"]",
            "\"blocks.8.hook_resid_pre_24576\", \"blocks_8.hook_resid_pre_24576\"]",
        );
        assert!(
            err.contains("share the results folder \"blocks_8_hook_resid_pre_24576\""),
            "{err}"
        );
        let revision = format!("{ORIGINAL_FEATURE_SPLIT}\n[source]\nsae_revision = \"../../x\"\n");
        let err = format!("{:#}", Config::parse(&revision).unwrap_err());
        assert!(err.contains("source.sae_revision is \"../../x\""), "{err}");
        let parquet = format!(
            "{ORIGINAL_FEATURE_SPLIT}\n[source]\ndataset_revision = \"refs/convert/parquet\"\n"
        );
        Config::parse(&parquet).unwrap();
        let hub = ORIGINAL_FEATURE_SPLIT.replace("\"gpt2-small\"", "\"openai-community/gpt2\"");
        assert_eq!(
            Config::parse(&hub).unwrap().generation.model_name,
            "openai-community/gpt2"
        );

        let pca = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/pca-streamlit-maxexamples.toml"),
        )
        .unwrap();
        for (from, to, want) in [
            (
                "name = \"gpt2-small\"",
                "name = \"../up\"",
                "model.name is \"../up\"",
            ),
            (
                "sae_release_short = \"res-jb\"",
                "sae_release_short = \"\"",
                "model.sae_release_short is \"\"",
            ),
            (
                "sae_ids = [\"blocks.0.hook_resid_pre\"]",
                "sae_ids = [\"/x\"]",
                "model.sae_ids is \"/x\"",
            ),
            (
                "sae_id = \"blocks_8_hook_resid_pre\"",
                "sae_id = \"..\"",
                "recommended_views.gpt2_day.sae_id is \"..\"",
            ),
        ] {
            let text = pca.replacen(from, to, 1);
            assert_ne!(text, pca, "{from}");
            let err = format!("{:#}", PcaConfig::parse(&text).unwrap_err());
            assert!(err.contains(want), "{to}: {err}");
        }
    }

    #[test]
    fn every_table_of_the_pca_config_refuses_unknown_and_mistyped_keys() {
        let pca = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/pca-streamlit-maxexamples.toml"),
        )
        .unwrap();
        let views = PcaConfig::parse(&pca).unwrap().recommended_views.unwrap();
        let keys: Vec<&str> = views.0.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys.len(), 5);
        for (from, to, want) in [
            (
                "remove_token_counts = true",
                "remove_token_count = true",
                "remove_token_count",
            ),
            (
                "show_batch_size = true",
                "show_batch_sizes = true",
                "show_batch_sizes",
            ),
            (
                "[releases.generation_batch_sizes]",
                "[releases.generation_batch_size]",
                "generation_batch_size",
            ),
            (
                "[models.max_examples]",
                "[models.max_example]",
                "max_example",
            ),
            (
                "thresholded_matrix = true",
                "thresholded_matrixx = true",
                "thresholded_matrixx",
            ),
            ("res-jb = 1000", "res-jb = \"many\"", "many"),
            (
                "subgraph = 3240",
                "subgrph = 3240",
                "recommended_views.gpt2_day: unknown field `subgrph`",
            ),
            (
                "size = 8",
                "size = \"8\"",
                "recommended_views.gpt2_day: invalid type",
            ),
            (
                "sae_release = \"res-jb\"",
                "",
                "recommended_views.gpt2_day: missing field `sae_release`",
            ),
        ] {
            let text = pca.replacen(from, to, 1);
            assert_ne!(text, pca, "{from}");
            let err = format!("{:#}", PcaConfig::parse(&text).unwrap_err());
            assert!(err.contains(want), "{to}: {err}");
        }
        // The older app config's name of the PCA batch sizes.
        let older = pca.replace("[models.pca_batch_sizes]", "[models.batch_sizes]");
        assert_ne!(older, pca);
        PcaConfig::parse(&older).unwrap();
    }
}
