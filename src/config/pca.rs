//! The `pca` config: the original's `config_pca_streamlit_maxexamples.toml` plus saecooc's
//! `[source]` and `[run]`.

use super::checks::{check_name, check_range, check_sae_ids, check_thresholds};
use super::{Run, Source};
use anyhow::{ensure, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

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
    /// The file the config was loaded from (none for text parsed in memory), for errors.
    #[serde(skip)]
    pub file: Option<std::path::PathBuf>,
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
        let config = Self::parse(&text)
            .with_context(|| format!("invalid PCA config file {}", path.display()))?;
        Ok(Self {
            file: Some(path.to_path_buf()),
            ..config
        })
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

    #[test]
    fn pca_names_that_would_leave_their_folder_are_refused_with_the_key() {
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
