//! Run configuration: the original pipeline's TOML files plus saecooc's own keys.
//!
//! The original's `[generation]`, `[analysis]` and `[pca]` tables load unchanged (see
//! docs/formats.md, "Inputs"). saecooc adds two optional tables:
//! `[source]` says where model, tokenizer, SAE and text come from (a Hugging Face repo id or a
//! local path; defaults come from SAELens' release registry), and `[run]`
//! holds device, window and batch sizes and the results folder.
//!
//! Here: the tables both schemas share (`[source]`, `[run]`) and the command-line options of
//! the stages that read a config. `cooc.rs` holds the `cooc`/`graphs` schema, `pca.rs` the
//! `pca` schema, `checks.rs` the range and name checks both use.

mod checks;
mod cooc;
mod pca;

use anyhow::{bail, ensure, Result};
pub use checks::*;
pub use cooc::{Analysis, Config, Generation, LegacyPca};
pub use pca::*;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// `[source]`: where the inputs come from. Each is a Hugging Face repo id (`owner/name`,
/// optionally `hf:owner/name`) or a local path. Unset entries come from SAELens' release registry.
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
    /// otherwise the SAE's subfolder (the registry's path, else the sae id) is appended. A
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

/// Options shared by the stages that run on a config (`cooc`, `graphs`, `pca`, `subspace`),
/// part of each one's options.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StageCommon {
    /// Results folder, overriding [run] results_dir (default results/). For `graphs` it may
    /// also be one SAE's folder (the one holding its Jaccard files).
    pub results_dir: Option<PathBuf>,
    /// Compute device, overriding [run] device.
    pub device: Option<DeviceKind>,
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
}
