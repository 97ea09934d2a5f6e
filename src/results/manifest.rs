//! `run.json`: the manifest `cooc` and `merge` write beside their outputs, typed so that every
//! reader (`stats`, `bench`) deserialises the same struct the writer serialises (see
//! docs/formats.md, "`run.json` of `cooc`").

use crate::config::Config;
use crate::data::WindowTokens;
use crate::inputs::CentringRule;
use crate::provenance::{input_name, mismatches, Reread};
use crate::report::rfc3339;
use crate::results::layout::RUN_JSON;
use crate::results::set::{Ownership, PublishedSet, SetRecord};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// What a `cooc` (or `merge`) run counted, how, and per-threshold statistics.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CoocManifest {
    pub tool: String,
    pub version: String,
    pub sae_id: String,
    /// `merge` only: the number of shards summed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shards: Option<usize>,
    /// The model's source (absent after `merge`, as for the fields down to `window_tokens`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hook: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sae: Option<SaeInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_size: Option<usize>,
    /// What starts each window and what separates documents inside one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_tokens: Option<WindowTokens>,
    /// Which tokens make a batch (absent in manifests written before it was recorded, whose
    /// runs counted the first tokens).
    #[serde(default)]
    pub batch_rule: BatchRule,
    pub windows_read: u64,
    #[serde(default)]
    pub batches_counted: u64,
    /// `n_batches × tokens_per_batch`: exact for `first_tokens`, an upper bound for
    /// `special_removed`.
    pub tokens_requested: u64,
    pub tokens_counted: u64,
    pub data_exhausted: bool,
    pub thresholds: Vec<ThresholdStats>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timings: Option<Timings>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elapsed_s: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_per_second: Option<f64>,
    pub config: Config,
    /// How, when and by which build the run was made (absent in older manifests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_info: Option<RunInfo>,
    /// The set's files with sizes and SHA-256, and the fingerprints of its inputs.
    #[serde(flatten)]
    pub set: SetRecord,
}

/// The saecooc version (`Cargo.toml`).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The source commit this binary was built from (`{sha}` or `{sha}-dirty`; `unknown` outside a
/// git checkout; `SAECOOC_GIT_COMMIT` at build time overrides it), set by build.rs.
pub const COMMIT: &str = env!("SAECOOC_GIT_COMMIT");

/// How, when and by which build a stage ran: recorded as `run_info` in every manifest saecooc
/// writes. It is not part of a set's id, so reruns with the same inputs keep their set ids.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    pub version: String,
    /// See [`COMMIT`].
    pub commit: String,
    /// The command line (argv, lossily UTF-8).
    pub command_line: Vec<String>,
    /// UTC, RFC 3339 (`2026-01-02T03:04:05Z`).
    pub started: String,
    pub finished: String,
    /// The stage's full effective settings: its config and command-line options, and the
    /// values it derived from them.
    pub settings: serde_json::Value,
}

/// A stage's start, for its [`RunInfo`].
#[derive(Debug, Clone, Copy)]
pub struct RunStart(std::time::SystemTime);

impl RunStart {
    /// Now.
    pub fn now() -> Self {
        Self(std::time::SystemTime::now())
    }

    /// The run's record, finished now, with its `settings`.
    pub fn finish(&self, settings: serde_json::Value) -> RunInfo {
        RunInfo {
            version: VERSION.to_string(),
            commit: COMMIT.to_string(),
            command_line: std::env::args_os()
                .map(|a| a.to_string_lossy().into_owned())
                .collect(),
            started: rfc3339(self.0),
            finished: rfc3339(std::time::SystemTime::now()),
            settings,
        }
    }
}

/// What `cooc` owns in an SAE results folder besides the files run.json lists: every
/// `feature_acts_cooc_*` file (those of thresholds no longer asked for are stale).
pub fn cooc_ownership() -> Ownership {
    Ownership {
        dirs: Vec::new(),
        prefixes: vec!["feature_acts_cooc_".into()],
    }
}

impl CoocManifest {
    /// The manifest's bytes, recording `set`.
    pub fn to_json(&self, set: &SetRecord) -> Result<Vec<u8>> {
        let mut m = self.clone();
        m.set = set.clone();
        Ok(serde_json::to_vec_pretty(&m)?)
    }

    /// Reads `dir/run.json`.
    pub fn read(dir: &Path) -> Result<Self> {
        let path = dir.join(RUN_JSON);
        let bytes =
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not a saecooc cooc manifest", path.display()))
    }
}

impl CoocManifest {
    /// Where the run read input `key` from (`sae`, `model`, `tokenizer`, `dataset`), as the
    /// manifest records it (`merge` records only the config).
    fn place_of(&self, key: &str) -> Option<String> {
        let src = &self.config.source;
        let model = || self.model.clone().or_else(|| src.model.clone());
        match key {
            "sae" => self
                .sae
                .as_ref()
                .map(|s| s.source.clone())
                .or_else(|| src.sae.clone()),
            "model" => model(),
            "tokenizer" => src.tokenizer.clone().or_else(model),
            "dataset" => self.dataset.clone().or_else(|| src.dataset.clone()),
            _ => None,
        }
    }
}

/// Refuses to let `stage` go on when an input it reads again (`now`: the SAE, model,
/// tokenizer, dataset; fingerprinted by `now`) differs from what `cooc` counted in `dir`, as
/// its run.json records (the cooc set `cooc`). A folder without a saecooc manifest is not
/// checked (its note is printed where it is opened).
pub fn check_counted_inputs(
    dir: &Path,
    cooc: &PublishedSet,
    now: impl FnOnce() -> Result<Reread>,
    stage: &str,
) -> Result<()> {
    let Some(record) = &cooc.record else {
        return Ok(());
    };
    let now = now()?;
    let found = mismatches(&record.inputs, &now.inputs);
    if found.is_empty() {
        return Ok(());
    }
    let manifest = CoocManifest::read(dir)?;
    let unknown = || "(not recorded)".to_string();
    let lines: Vec<String> = found
        .iter()
        .map(|m| {
            format!(
                "  {}: counted {} (fingerprint {}), now {} (fingerprint {})",
                input_name(&m.key),
                manifest.place_of(&m.key).unwrap_or_else(unknown),
                m.counted,
                now.places.get(&m.key).cloned().unwrap_or_else(unknown),
                m.now
            )
        })
        .collect();
    bail!(
        "`saecooc {stage}` would read other inputs than `saecooc cooc` counted in {} (its {RUN_JSON} records their fingerprints):\n{}\nrerun `saecooc cooc` with this config, or point the config's [source] at the inputs that were counted",
        dir.display(),
        lines.join("\n")
    )
}

/// The SAE a run encoded with.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SaeInfo {
    pub source: String,
    pub d_in: usize,
    pub d_sae: usize,
    pub architecture: String,
    pub neuronpedia_id: Option<String>,
    pub residual_centred: bool,
    /// What decided `residual_centred`: "model layer norm", "SAE cfg" or "[source] override"
    /// (absent in manifests written before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub centring_rule: Option<CentringRule>,
    /// TopK SAEs: whether the k latents are chosen on "unscaled" or "decoder-norm-scaled"
    /// pre-activations (the SAE cfg's `rescale_acts_by_decoder_norm`); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topk_selection: Option<String>,
}

/// Which tokens make up the `n_batches` batches that are counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BatchRule {
    /// The first `n_batches × tokens_per_batch` tokens of the window stream, read
    /// `prompts_per_batch` windows at a time (the original drew them from an unseeded shuffle
    /// buffer, which cannot be reproduced; saecooc reads them in order).
    #[default]
    FirstTokens,
    /// The original's batch with special tokens removed: the next `prompts_per_batch` windows,
    /// special-token positions dropped in row-major order, then the first `tokens_per_batch`
    /// positions kept (GPT-2 at context 128: at most 8 × 127 = 1,016 tokens).
    SpecialRemoved,
}

impl BatchRule {
    /// The rule a config asks for.
    pub fn of(config: &Config) -> Self {
        if config.generation.remove_special_tokens {
            Self::SpecialRemoved
        } else {
            Self::FirstTokens
        }
    }
}

/// Per-threshold statistics of the latents.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ThresholdStats {
    pub threshold: f64,
    pub tag: String,
    /// Mean active latents per token.
    pub l0_mean: f64,
    pub l0_std: f64,
    /// Tokens by number of active latents (index = active latents).
    pub l0_histogram: Vec<u64>,
    /// Latents that never fired.
    pub dead_latents: usize,
    /// Latents active on more than 10% of tokens.
    pub dense_latents: usize,
    /// Largest per-latent firing frequency.
    pub max_firing_frequency: f64,
    pub files: Vec<String>,
}

/// Wall-clock seconds spent in each part of a run.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Timings {
    pub load_s: f64,
    pub tokenize_s: f64,
    pub forward_s: f64,
    pub encode_s: f64,
    pub count_s: f64,
    pub write_s: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::parse(
            "[generation]\nn_batches = 2\nmodel_name = \"m\"\nsae_release_short = \"r\"\nsae_ids = [\"s\"]\nactivation_thresholds = [1.5]\n",
        )
        .unwrap()
    }

    #[test]
    fn times_are_rfc3339_utc() {
        let at = |s: u64| rfc3339(std::time::UNIX_EPOCH + std::time::Duration::from_secs(s));
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(at(1_767_323_045), "2026-01-02T03:04:05Z");
        assert_eq!(at(4_107_542_399), "2100-02-28T23:59:59Z");
    }

    #[test]
    fn a_written_manifest_reads_back_and_old_ones_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = CoocManifest {
            tool: "saecooc".into(),
            version: "0".into(),
            sae_id: "s".into(),
            shards: None,
            model: Some("m".into()),
            hook: Some("blocks.0.hook_resid_pre".into()),
            sae: None,
            dataset: None,
            context_size: Some(32),
            window_tokens: Some(WindowTokens {
                begin: Some(1),
                separator: None,
            }),
            batch_rule: BatchRule::SpecialRemoved,
            windows_read: 16,
            batches_counted: 2,
            tokens_requested: 8192,
            tokens_counted: 1000,
            data_exhausted: false,
            thresholds: vec![],
            timings: Some(Timings::default()),
            elapsed_s: Some(1.0),
            tokens_per_second: Some(1000.0),
            config: config(),
            run_info: Some(RunStart::now().finish(serde_json::json!({"k": 1}))),
            set: SetRecord::default(),
        };
        let bytes = manifest.to_json(&SetRecord::default()).unwrap();
        std::fs::write(dir.path().join(RUN_JSON), bytes).unwrap();
        let back = CoocManifest::read(dir.path()).unwrap();
        assert_eq!(
            serde_json::to_value(&back).unwrap(),
            serde_json::to_value(&manifest).unwrap()
        );
        let text = std::fs::read_to_string(dir.path().join(RUN_JSON)).unwrap();
        assert!(
            text.contains("\"batch_rule\": \"special_removed\""),
            "{text}"
        );
        assert!(!text.contains("shards"), "{text}");

        // A manifest from before the batch rule and centring rule were recorded.
        let mut old = serde_json::to_value(&manifest).unwrap();
        let obj = old.as_object_mut().unwrap();
        obj.remove("batch_rule");
        obj.remove("batches_counted");
        obj.remove("run_info");
        std::fs::write(dir.path().join(RUN_JSON), old.to_string()).unwrap();
        let back = CoocManifest::read(dir.path()).unwrap();
        assert_eq!(back.batch_rule, BatchRule::FirstTokens);
        assert_eq!(back.tokens_counted, 1000);
        assert_eq!(back.run_info, None);

        std::fs::write(dir.path().join(RUN_JSON), "{}").unwrap();
        let err = format!("{:#}", CoocManifest::read(dir.path()).unwrap_err());
        assert!(err.contains("not a saecooc cooc manifest"), "{err}");
    }
}
