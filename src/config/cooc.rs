//! The `cooc` config (also read by `graphs`): the original's `[generation]`, `[analysis]` and
//! legacy `[pca]` tables plus saecooc's `[source]` and `[run]`.

use super::checks::{check_name, check_range, check_sae_ids, check_thresholds};
use super::{Run, Source};
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
    /// The file the config was loaded from (none for text parsed in memory), for errors.
    #[serde(skip)]
    pub file: Option<PathBuf>,
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

impl Config {
    /// A config of `generation`, `source` and `run`, with the default `[analysis]`.
    pub fn new(generation: Generation, source: Source, run: Run) -> Self {
        Self {
            generation,
            analysis: Analysis::default(),
            pca: None,
            source,
            run,
            file: None,
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
        let config = Self::parse(&text)
            .with_context(|| format!("invalid config file {}", path.display()))?;
        Ok(Self {
            file: Some(path.to_path_buf()),
            ..config
        })
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
    use std::path::PathBuf;

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
    }
}
