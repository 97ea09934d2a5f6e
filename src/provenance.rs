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

/// The files and settings a run's counts depend on.
pub struct InputSources<'a> {
    pub sae_files: Vec<PathBuf>,
    pub model_files: Vec<PathBuf>,
    pub tokenizer: &'a tokenizers::Tokenizer,
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
    inputs.insert("sae".into(), files_hash(&sources.sae_files, sha256_file)?);
    let weights = |p: &Path| sampled_sha256(p, Sampling::WEIGHTS);
    inputs.insert("model".into(), files_hash(&sources.model_files, weights)?);
    let tokenizer = sources
        .tokenizer
        .to_string(false)
        .map_err(|e| anyhow::anyhow!("cannot serialise the tokenizer: {e}"))?;
    inputs.insert("tokenizer".into(), sha256_bytes(tokenizer.as_bytes()));
    let dataset = if sources.dataset_files.is_empty() {
        sha256_bytes(sources.dataset.as_bytes())
    } else {
        files_hash(&sources.dataset_files, |p| {
            sampled_sha256(p, Sampling::TEXT)
        })?
    };
    inputs.insert("dataset".into(), dataset);
    inputs.insert("settings".into(), sha256_bytes(sources.settings.as_bytes()));
    inputs.insert("shard".into(), shard_name(shard));
    Ok(inputs)
}

/// `i/n`, or `none` for an unsharded run.
pub fn shard_name(shard: Option<(usize, usize)>) -> String {
    shard.map_or("none".into(), |(i, n)| format!("{i}/{n}"))
}

/// The settings that fix windows, batches and thresholds: the config without the results
/// folder, and the SAE id.
pub fn settings_text(config: &crate::config::Config, sae_id: &str) -> Result<String> {
    let mut c = config.clone();
    c.run.results_dir = PathBuf::new();
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
