//! Sharded runs and checkpoints: which windows a shard counts, where partial counts and
//! checkpoints go, the locks that keep concurrent runs apart, and `saecooc merge`, which
//! refuses shards that are copies or were computed from different inputs.

use super::outputs::{with_counting_settings, write_outputs, Kept};
use super::{state, RunSummary};
use crate::config::Config;
use crate::harness;
use crate::io::hash::sha256_bytes;
use crate::pairs::CoocCounts;
use crate::provenance::{changed, settings_text, shard_name, Inputs};
use crate::results::layout::{sae_results_dir, shard_checkpoint_file, shard_file, CHECKPOINT_NPZ};
use crate::results::lock::FolderLock;
use crate::results::manifest::{BatchRule, CoocManifest, RunStart, ThresholdStats, VERSION};
use crate::results::stage::Stage;
use anyhow::{ensure, Result};
use std::path::{Path, PathBuf};

/// One share of a sharded run: windows `w` with `w mod count == index`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    /// Parses `i/n` (0 ≤ i < n).
    pub fn parse(s: &str) -> Result<Self> {
        let bad =
            || anyhow::anyhow!("--shard {s}: expected I/N with 0 <= I < N (e.g. 0/4), or auto");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count): (usize, usize) = (
            i.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        ensure!(count > 0 && index < count, bad());
        Ok(Self { index, count })
    }
}

/// What `--shard` asks for: a share given outright (`i/n`), or the one the cluster scheduler
/// gave this task (`auto`; `auto/n` where the scheduler gives no count, as in a Kubernetes
/// indexed Job), read from its variables where the command line is resolved.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ShardRequest {
    Given(Shard),
    Auto { count: Option<usize> },
}

impl ShardRequest {
    /// Parses `i/n`, `auto` or `auto/n` (n ≥ 1).
    pub fn parse(s: &str) -> Result<Self> {
        let Some(rest) = s.trim().strip_prefix("auto") else {
            return Shard::parse(s).map(Self::Given);
        };
        if rest.is_empty() {
            return Ok(Self::Auto { count: None });
        }
        let count = rest.strip_prefix('/').and_then(|n| n.trim().parse().ok());
        let count = count.filter(|&n: &usize| n > 0).ok_or_else(|| {
            anyhow::anyhow!("--shard {s}: expected auto or auto/N with N >= 1, e.g. auto/8")
        })?;
        Ok(Self::Auto { count: Some(count) })
    }
}

/// The checkpoint of an unsharded run or of one shard.
pub(super) fn checkpoint_file(out_dir: &Path, shard: Option<Shard>) -> PathBuf {
    match shard {
        Some(s) => shard_checkpoint_file(out_dir, s.index, s.count),
        None => out_dir.join(CHECKPOINT_NPZ),
    }
}

/// Locks what a run writes: the SAE results folder (completing or cleaning up what an
/// interrupted run left there), or for a shard only its own share of `shards/`.
pub(super) fn lock_output(out_dir: &Path, shard: Option<Shard>) -> Result<FolderLock> {
    match shard {
        Some(s) => harness::lock_shard(out_dir, s.index, s.count),
        None => harness::lock_folder(out_dir, Stage::Cooc),
    }
}

/// Loads shard `i` of `n` and checks that it is that shard, finished, and computed from the
/// same inputs as `first` (the first shard's) and the current config (`settings`).
fn load_shard(
    path: &Path,
    (i, n): (usize, usize),
    thresholds: usize,
    settings: &str,
    first: Option<&Inputs>,
) -> Result<(Vec<CoocCounts>, state::Position)> {
    let latents = state::saved_latents(path)?;
    let (counts, position) = state::load(path, thresholds, latents)?;
    let inputs = &position.inputs;
    ensure!(
        !inputs.is_empty(),
        "{} was written by an older saecooc that recorded no input fingerprints; rerun that shard",
        path.display()
    );
    let holds = inputs.get("shard").map_or("none", String::as_str);
    ensure!(
        holds == shard_name(Some((i, n))),
        "{} holds the counts of shard {holds}, not {i}/{n} (a copied or renamed shard file?); rerun `saecooc cooc --shard {i}/{n}`",
        path.display()
    );
    ensure!(
        position.complete,
        "{} is not a finished shard",
        path.display()
    );
    ensure!(
        inputs.get("settings").map(String::as_str) == Some(settings),
        "{} was counted with another config or SAE id than this one",
        path.display()
    );
    if let Some(first) = first {
        let without_shard = |m: &Inputs| {
            let mut m = m.clone();
            m.remove("shard");
            m
        };
        let differ = changed(&without_shard(first), &without_shard(inputs));
        ensure!(
            differ.is_empty(),
            "{} and shard 0 were computed from different inputs ({} differ); rerun the shards with the same inputs",
            path.display(),
            differ.join(", ")
        );
    }
    Ok((counts, position))
}

/// `saecooc merge`: sums the partial counts of a run split into `shards` shards into the
/// usual outputs (identical to an unsharded run's). The previous set's other thresholds are
/// kept or refused as by `cooc` (`replace`: replace the whole set).
pub fn merge(
    config: &Config,
    results_dir: Option<PathBuf>,
    shards: usize,
    replace: bool,
) -> Result<Vec<RunSummary>> {
    ensure!(shards > 0, "--shards must be at least 1");
    let run_start = RunStart::now();
    let root = results_dir.unwrap_or_else(|| config.run.results_dir.clone());
    let merge = Merge {
        config,
        root: &root,
        shards,
        replace,
        run_start: &run_start,
    };
    config
        .generation
        .sae_ids
        .iter()
        .map(|sae_id| merge.sae(sae_id))
        .collect()
}

/// One `merge` run, the same for every SAE of the config.
struct Merge<'a> {
    config: &'a Config,
    /// The results root the SAE results folders are under.
    root: &'a Path,
    shards: usize,
    replace: bool,
    run_start: &'a RunStart,
}

impl Merge<'_> {
    /// Sums the shards of `sae_id` and publishes them as its results folder's `cooc` set.
    fn sae(&self, sae_id: &str) -> Result<RunSummary> {
        let (config, shards) = (self.config, self.shards);
        let g = &config.generation;
        let dir = sae_results_dir(
            self.root,
            &g.model_name,
            &g.sae_release_short,
            sae_id,
            g.n_batches,
        );
        let lock = harness::lock_for_merge(&dir)?;
        let settings = sha256_bytes(settings_text(config, sae_id)?.as_bytes());
        let (mut counters, position) =
            sum_shards(&dir, shards, g.activation_thresholds.len(), &settings)?;
        let mut inputs = with_counting_settings(position.inputs.clone(), config, sae_id)?;
        inputs.insert("shard".into(), format!("merged {shards}"));
        let kept = Kept::decide(&dir, &g.activation_thresholds, &inputs, self.replace)?;
        let mut staging = harness::begin_cooc_set(&lock, inputs)?;
        let counted = write_outputs(
            staging.root(),
            &g.activation_thresholds,
            &mut counters,
            config.run.matrix_format,
        )?;
        let thresholds = kept.carry(&mut staging, counted)?;
        let tokens_counted = counters[0].tokens();
        let manifest = self.manifest(sae_id, &position, tokens_counted, thresholds);
        staging.publish(|record| manifest.to_json(record))?;
        Ok(RunSummary {
            sae_id: sae_id.to_string(),
            out_dir: dir,
            tokens_counted,
            tokens_per_second: 0.0,
        })
    }

    /// The `run.json` of the merged set of `sae_id`: what the shards counted (`position`, the
    /// first shard's), `tokens_counted` over all of them, and its `thresholds`.
    fn manifest(
        &self,
        sae_id: &str,
        position: &state::Position,
        tokens_counted: u64,
        thresholds: Vec<ThresholdStats>,
    ) -> CoocManifest {
        let config = self.config;
        CoocManifest {
            tool: "saecooc".into(),
            version: VERSION.into(),
            sae_id: sae_id.to_string(),
            shards: Some(self.shards),
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
            tokens_counted,
            data_exhausted: position.data_exhausted,
            thresholds,
            timings: None,
            elapsed_s: None,
            tokens_per_second: None,
            config: config.clone(),
            run_info: Some(self.run_start.finish(serde_json::json!({
                "config": config,
                "results_dir": self.root,
                "shards": self.shards,
                "sae_id": sae_id,
            }))),
            set: Default::default(),
        }
    }
}

/// The counts of the `shards` shards in the results folder `dir` summed, with the first
/// shard's position; each shard checked by [`load_shard`], and all of them for the same
/// tokens counted.
fn sum_shards(
    dir: &Path,
    shards: usize,
    thresholds: usize,
    settings: &str,
) -> Result<(Vec<CoocCounts>, state::Position)> {
    let shard = |i| existing_shard_file(dir, i, shards);
    let (mut sum, first) = load_shard(&shard(0)?, (0, shards), thresholds, settings, None)?;
    for i in 1..shards {
        let (counts, position) = load_shard(
            &shard(i)?,
            (i, shards),
            thresholds,
            settings,
            Some(&first.inputs),
        )?;
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
    Ok((sum, first))
}

/// The shard file of shard `i` of `n` in the results folder `dir`, refused when missing.
fn existing_shard_file(dir: &Path, i: usize, n: usize) -> Result<PathBuf> {
    let path = shard_file(dir, i, n);
    ensure!(
        path.is_file(),
        "shard {i} of {n} is missing ({}): run `saecooc cooc --shard {i}/{n}` with this config",
        path.display()
    );
    Ok(path)
}
