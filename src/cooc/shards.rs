//! Sharded runs and checkpoints: which windows a shard counts, where partial counts and
//! checkpoints go, the fingerprints that keep them apart, and `saecooc merge`.

use super::outputs::write_outputs;
use super::{state, RunSummary};
use crate::config::Config;
use crate::pairs::CoocCounts;
use crate::results::layout::sae_results_dir;
use crate::results::manifest::{BatchRule, CoocManifest};
use anyhow::{ensure, Result};
use std::path::{Path, PathBuf};

/// One share of a sharded run: windows `w` with `w mod count == index`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    /// Parses `i/n` (0 ≤ i < n).
    pub fn parse(s: &str) -> Result<Self> {
        let bad = || anyhow::anyhow!("--shard {s}: expected i/n with 0 <= i < n, e.g. 0/4");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count): (usize, usize) = (
            i.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        ensure!(count > 0 && index < count, bad());
        Ok(Self { index, count })
    }
}

/// `{out_dir}/shards/shard_{i}_of_{n}.npz`: a shard's partial counts.
pub fn shard_file(out_dir: &Path, index: usize, count: usize) -> PathBuf {
    out_dir
        .join("shards")
        .join(format!("shard_{index}_of_{count}.npz"))
}

/// The checkpoint of an unsharded run or of one shard.
pub(super) fn checkpoint_file(out_dir: &Path, shard: Option<Shard>) -> PathBuf {
    match shard {
        Some(s) => out_dir
            .join("shards")
            .join(format!("checkpoint_{}_of_{}.npz", s.index, s.count)),
        None => out_dir.join("checkpoint.npz"),
    }
}

/// Identifies a run: config, SAE and the shard split (`extra`).
pub(super) fn run_fingerprint(config: &Config, sae_id: &str, extra: &str) -> Result<String> {
    let mut c = config.clone();
    c.run.results_dir = PathBuf::new();
    Ok(state::fingerprint(&format!(
        "{}|{sae_id}|{extra}",
        serde_json::to_string(&c)?
    )))
}

/// Tells the partial counts of a split into `count` shards apart.
pub(super) fn shards_fingerprint(config: &Config, sae_id: &str, count: usize) -> Result<String> {
    run_fingerprint(config, sae_id, &format!("{count} shards"))
}

/// `saecooc merge`: sums the partial counts of a run split into `shards` shards into the
/// usual outputs (identical to an unsharded run's).
pub fn merge(
    config: &Config,
    results_dir: Option<PathBuf>,
    shards: usize,
) -> Result<Vec<RunSummary>> {
    ensure!(shards > 0, "--shards must be at least 1");
    let g = &config.generation;
    let root = results_dir.unwrap_or_else(|| config.run.results_dir.clone());
    let mut out = Vec::new();
    for sae_id in &g.sae_ids {
        let dir = sae_results_dir(
            &root,
            &g.model_name,
            &g.sae_release_short,
            sae_id,
            g.n_batches,
        );
        let expected = shards_fingerprint(config, sae_id, shards)?;
        let mut total: Option<(Vec<CoocCounts>, state::Position)> = None;
        for i in 0..shards {
            let path = shard_file(&dir, i, shards);
            ensure!(
                path.is_file(),
                "shard {i} of {shards} is missing ({}): run `saecooc cooc --shard {i}/{shards}` with this config",
                path.display()
            );
            let n = state::saved_latents(&path)?;
            let (counts, position) =
                state::load_checked(&path, g.activation_thresholds.len(), n, &expected)?;
            ensure!(
                position.complete,
                "{} is not a finished shard",
                path.display()
            );
            match &mut total {
                None => total = Some((counts, position)),
                Some((sum, first)) => {
                    ensure!(
                        first.counted_global == position.counted_global,
                        "shards disagree on the tokens counted ({} vs {}): were they run on the same data?",
                        first.counted_global,
                        position.counted_global
                    );
                    for (a, b) in sum.iter_mut().zip(counts) {
                        a.merge(b)?;
                    }
                }
            }
        }
        let (mut counters, position) = total.expect("at least one shard");
        let thresholds = write_outputs(
            &dir,
            &g.activation_thresholds,
            &mut counters,
            config.run.matrix_format,
        )?;
        CoocManifest {
            tool: "saecooc".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            sae_id: sae_id.clone(),
            shards: Some(shards),
            model: None,
            hook: None,
            sae: None,
            dataset: None,
            context_size: None,
            window_tokens: None,
            batch_rule: BatchRule::of(config),
            windows_read: position.windows_read,
            batches_counted: position.batches,
            tokens_requested: config.tokens_to_count(),
            tokens_counted: counters[0].tokens(),
            data_exhausted: position.data_exhausted,
            thresholds,
            timings: None,
            elapsed_s: None,
            tokens_per_second: None,
            config: config.clone(),
        }
        .write(&dir)?;
        out.push(RunSummary {
            sae_id: sae_id.clone(),
            out_dir: dir,
            tokens_counted: counters[0].tokens(),
            tokens_per_second: 0.0,
        });
    }
    Ok(out)
}
