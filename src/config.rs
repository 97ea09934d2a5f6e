//! Run configuration: the original pipeline's TOML files plus saecooc's own keys.
//!
//! The original's `[generation]`, `[analysis]` and `[pca]` tables load unchanged (see
//! docs/formats.md, "Inputs"). saecooc adds two optional tables:
//! `[source]` says where model, tokenizer, SAE and text come from (a Hugging Face repo id or a
//! local path; defaults come from the built-in table of the paper's releases), and `[run]`
//! holds device, window and batch sizes and the results folder.

use anyhow::{bail, ensure, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

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
    /// Text: a `.txt` (one document per non-empty line), `.jsonl` or `.parquet` file, a folder of
    /// them, or a hub dataset repo (its parquet files are downloaded).
    pub dataset: Option<String>,
    pub dataset_revision: Option<String>,
    /// Only hub/folder parquet files whose path contains this (e.g. `train`).
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
#[derive(Debug, Clone, Default, clap::Args)]
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

/// Compute device.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum DeviceKind {
    #[default]
    Cpu,
    Cuda,
}

/// `[run]`: how to run.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Run {
    pub device: DeviceKind,
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
    /// The explorer app's tables (`[streamlit]`, `[releases]`, `[models]`,
    /// `[recommended_views]`): kept as they are for `export`.
    #[serde(default)]
    pub streamlit: Option<toml::Value>,
    #[serde(default)]
    pub releases: Option<toml::Value>,
    #[serde(default)]
    pub models: Option<toml::Value>,
    #[serde(default)]
    pub recommended_views: Option<toml::Value>,
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
    /// The explorer's loading options; kept for `export`.
    #[serde(default)]
    pub load_options: Option<toml::Value>,
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
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("invalid PCA config file {}", path.display()))
    }

    /// Parses and validates PCA config text.
    pub fn parse(text: &str) -> Result<Self> {
        let config: PcaConfig =
            toml::from_str(text).map_err(|e| anyhow::anyhow!("{}", e.to_string().trim_end()))?;
        let p = &config.processing;
        ensure!(
            !config.model.sae_ids.is_empty(),
            "model.sae_ids is empty: name at least one SAE"
        );
        ensure!(
            p.n_batches_reconstruction > 0,
            "processing.n_batches_reconstruction must be at least 1"
        );
        ensure!(
            !p.subgraph_sizes_to_plot.is_empty(),
            "processing.subgraph_sizes_to_plot is empty"
        );
        ensure!(
            p.max_examples != Some(0),
            "processing.max_examples must be at least 1"
        );
        ensure!(
            !config.model.name.starts_with("gemma") || p.remove_special_tokens,
            "Gemma requires removing special tokens: set processing.remove_special_tokens = true"
        );
        ensure!(
            config.run.prompts_per_batch > 0,
            "run.prompts_per_batch must be at least 1"
        );
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
        let text = std::fs::read_to_string(path)
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
        ensure!(g.n_batches > 0, "generation.n_batches must be at least 1");
        ensure!(
            !g.sae_ids.is_empty(),
            "generation.sae_ids is empty: name at least one SAE"
        );
        ensure!(
            !g.activation_thresholds.is_empty(),
            "generation.activation_thresholds is empty: give at least one threshold"
        );
        for t in &g.activation_thresholds {
            ensure!(
                t.is_finite(),
                "generation.activation_thresholds contains {t}, which is not finite"
            );
        }
        let r = &self.run;
        ensure!(
            r.tokens_per_batch > 0,
            "run.tokens_per_batch must be at least 1"
        );
        ensure!(
            r.prompts_per_batch > 0,
            "run.prompts_per_batch must be at least 1"
        );
        ensure!(
            self.tokens_to_count() <= u32::MAX as u64,
            "generation.n_batches × run.tokens_per_batch = {} tokens: at most {} can be counted in one run",
            self.tokens_to_count(),
            u32::MAX
        );
        ensure!(
            r.dense_limit_gib.is_finite() && r.dense_limit_gib >= 0.0,
            "run.dense_limit_gib is {}: give the GiB the dense count triangles may use (default 10)",
            r.dense_limit_gib
        );
        if let Some(c) = r.context_size {
            ensure!(
                c >= 2,
                "run.context_size is {c}: it must be at least 2 (BOS plus one token)"
            );
        }
        ensure!(
            !g.model_name.starts_with("gemma") || g.remove_special_tokens,
            "Gemma requires removing special tokens (as in the original): set generation.remove_special_tokens = true"
        );
        let a = &self.analysis;
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
        self.generation.n_batches as u64 * self.run.tokens_per_batch as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
