//! Fingerprints of the inputs that decide a run's counts, recorded in every checkpoint, shard
//! and `run.json`, so that `--resume` and `merge` refuse to combine counts from different
//! inputs and can say which input changed.
//!
//! - `sae`: SHA-256 of every SAE file (cfg.json and weights, or Gemma Scope's params.npz);
//! - `model`: the model's config.json and weights ([`sampled_sha256`] with
//!   [`Sampling::WEIGHTS`]: whole below 64 MiB, else size, mtime and 16 blocks of 1 MiB);
//! - `tokenizer`: SHA-256 of the loaded tokenizer's own JSON serialisation;
//! - `dataset`: each local text file's name and sampled hash ([`Sampling::TEXT`]: whole below
//!   1 MiB, else size, mtime and 4 blocks of 64 KiB); a hub dataset: its repo and revision;
//! - `settings`: the config (minus the results folder) and the SAE id, which fix windowing,
//!   batches and thresholds;
//! - `shard`: `i/n` of a sharded run, `none` otherwise.

use crate::io::hash::{sampled_sha256, sha256_bytes, sha256_file, Sampling};
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Input name → fingerprint.
pub type Inputs = BTreeMap<String, String>;

/// What a run's counts depend on: the fingerprints of the loaded SAE, model and tokenizer
/// (see [`crate::inputs::ResolvedRun`]), the dataset files and the settings.
pub struct InputSources {
    pub sae: String,
    pub model: String,
    pub tokenizer: String,
    /// Local dataset files, in reading order (empty for a hub dataset).
    pub dataset_files: Vec<PathBuf>,
    /// How the dataset is named (a path or `hf:repo@revision`).
    pub dataset: String,
    /// The settings text (see [`settings_text`]).
    pub settings: String,
}

/// Fingerprints every input of a run; `shard` is `i/n` for a sharded run.
pub fn fingerprint(sources: &InputSources, shard: Option<(usize, usize)>) -> Result<Inputs> {
    let mut inputs = Inputs::new();
    inputs.insert("sae".into(), sources.sae.clone());
    inputs.insert("model".into(), sources.model.clone());
    inputs.insert("tokenizer".into(), sources.tokenizer.clone());
    inputs.insert(
        "dataset".into(),
        dataset_fingerprint(&sources.dataset_files, &sources.dataset)?,
    );
    inputs.insert("settings".into(), sha256_bytes(sources.settings.as_bytes()));
    inputs.insert("shard".into(), shard_name(shard));
    Ok(inputs)
}

/// The `sae` fingerprint: SHA-256 of every SAE file.
pub fn sae_fingerprint(files: &[PathBuf]) -> Result<String> {
    files_hash(files, sha256_file)
}

/// The `model` fingerprint: config.json and weights, sampled.
pub fn model_fingerprint(files: &[PathBuf]) -> Result<String> {
    files_hash(files, |p| sampled_sha256(p, Sampling::WEIGHTS))
}

/// The `tokenizer` fingerprint: SHA-256 of its own JSON serialisation.
pub fn tokenizer_fingerprint(tokenizer: &tokenizers::Tokenizer) -> Result<String> {
    let json = tokenizer
        .to_string(false)
        .map_err(|e| anyhow::anyhow!("cannot serialise the tokenizer: {e}"))?;
    Ok(sha256_bytes(json.as_bytes()))
}

/// The `dataset` fingerprint: the local `files` (sampled), or the name of a hub dataset.
pub fn dataset_fingerprint(files: &[PathBuf], name: &str) -> Result<String> {
    if files.is_empty() {
        Ok(sha256_bytes(name.as_bytes()))
    } else {
        files_hash(files, |p| sampled_sha256(p, Sampling::TEXT))
    }
}

/// Inputs a later stage reads again (a subset of `sae`, `model`, `tokenizer`, `dataset`),
/// fingerprinted as `cooc` fingerprints them, with where each was read from now.
#[derive(Debug, Clone, Default)]
pub struct Reread {
    pub inputs: Inputs,
    /// Input name → the path or hub location read now.
    pub places: BTreeMap<String, String>,
}

impl Reread {
    /// Records input `key` read from `place` with `fingerprint`.
    pub fn add(&mut self, key: &str, place: String, fingerprint: String) {
        self.inputs.insert(key.to_string(), fingerprint);
        self.places.insert(key.to_string(), place);
    }
}

/// One input a later stage re-reads that differs from what was counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    pub key: String,
    pub counted: String,
    pub now: String,
}

/// The inputs of `now` whose fingerprints differ from those recorded in `counted` (inputs
/// that `counted` does not record are not compared).
pub fn mismatches(counted: &Inputs, now: &Inputs) -> Vec<Mismatch> {
    now.iter()
        .filter_map(|(k, v)| {
            let c = counted.get(k)?;
            (c != v).then(|| Mismatch {
                key: k.clone(),
                counted: c.clone(),
                now: v.clone(),
            })
        })
        .collect()
}

/// What input `key` is, for messages (`the SAE (its weights or cfg.json)`, ...).
pub fn input_name(key: &str) -> &str {
    describe(key)
}

/// `i/n`, or `none` for an unsharded run.
pub fn shard_name(shard: Option<(usize, usize)>) -> String {
    shard.map_or("none".into(), |(i, n)| format!("{i}/{n}"))
}

/// The settings that fix windows, batches and thresholds: the config without the results
/// folder, and the SAE id. The config's list of SAEs stands as this SAE alone, so an SAE of a
/// sweep has the settings of a config of that SAE alone (and of `--sae-id` picking it).
pub fn settings_text(config: &crate::config::Config, sae_id: &str) -> Result<String> {
    let mut c = config.clone();
    c.run.results_dir = PathBuf::new();
    c.generation.sae_ids = vec![sae_id.to_string()];
    Ok(format!("{}|{sae_id}", serde_json::to_string(&c)?))
}

/// One hash over the names and hashes of `files`.
fn files_hash(files: &[PathBuf], hash: impl Fn(&Path) -> Result<String>) -> Result<String> {
    let mut text = String::new();
    for f in files {
        let name = f.file_name().unwrap_or_default().to_string_lossy();
        let h = hash(f).with_context(|| format!("cannot fingerprint {}", f.display()))?;
        text.push_str(&format!("{name}\t{h}\n"));
    }
    Ok(sha256_bytes(text.as_bytes()))
}

/// What each input is, for messages.
fn describe(key: &str) -> &str {
    match key {
        "sae" => "the SAE (its weights or cfg.json)",
        "model" => "the model's weights or config.json",
        "tokenizer" => "the tokenizer",
        "dataset" => "the dataset files",
        "settings" => "the config (windowing, batches, thresholds) or SAE id",
        "shard" => "the shard",
        other => other,
    }
}

/// The inputs that differ between `saved` and `now`, described (empty: the same inputs).
pub fn changed(saved: &Inputs, now: &Inputs) -> Vec<String> {
    let keys: std::collections::BTreeSet<&String> = saved.keys().chain(now.keys()).collect();
    keys.into_iter()
        .filter(|k| saved.get(*k) != now.get(*k))
        .map(|k| match (saved.get(k), now.get(k)) {
            (Some(a), Some(b)) if k == "shard" => format!("the shard ({a} then, {b} now)"),
            _ => describe(k).to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_reread_inputs_that_were_recorded_and_differ_are_mismatches() {
        let counted: Inputs = [("sae", "1"), ("model", "2"), ("settings", "3")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut now = Reread::default();
        now.add("sae", "b/sae".into(), "9".into());
        now.add("model", "a/model".into(), "2".into());
        now.add("dataset", "c.txt".into(), "5".into());
        assert_eq!(
            mismatches(&counted, &now.inputs),
            [Mismatch {
                key: "sae".into(),
                counted: "1".into(),
                now: "9".into()
            }]
        );
        assert_eq!(now.places["sae"], "b/sae");
    }

    #[test]
    fn changed_inputs_are_named() {
        let a: Inputs = [("sae", "1"), ("dataset", "2"), ("shard", "0/2")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert!(changed(&a, &a).is_empty());
        let mut b = a.clone();
        b.insert("dataset".into(), "3".into());
        b.insert("shard".into(), "1/2".into());
        assert_eq!(
            changed(&a, &b),
            ["the dataset files", "the shard (0/2 then, 1/2 now)"]
        );
        b.remove("sae");
        assert_eq!(changed(&a, &b)[1], "the SAE (its weights or cfg.json)");
    }
}
