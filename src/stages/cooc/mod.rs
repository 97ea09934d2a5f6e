//! `saecooc cooc`: model + SAE + text → co-occurrence counts, Jaccard matrices and totals.
//!
//! Read windows in order, run the model to the SAE's hook (centring the residual stream of
//! LayerNorm models as TransformerLens does), drop special-token positions when configured,
//! encode with the folded SAE, and count every threshold in the same pass. The SAEs of a config
//! share that pass: the model runs once per batch, to the deepest of their hooks, for as many of
//! them as the memory plan puts together ([`plan`]); each SAE's files are those of a run of it
//! alone.
//! Which tokens make the `n_batches` batches follows [`BatchRule`]: with special-token removal
//! exactly the original's batches; without it the first `n_batches × tokens_per_batch` tokens
//! in order (the original's shuffle buffer is not reproducible). Fewer only if the data runs
//! out, which is reported and recorded.

mod counting;
mod outputs;
mod pass;
pub mod plan;
mod sae_count;
mod shards;
pub mod state;

pub use shards::{merge, Shard, ShardRequest};

use crate::activations::{load_sweep, stream_groups, HookedSae};
use crate::config::{Accumulator, Config, Run, StageCommon};
use crate::inputs::{resolve, InputSpec, ResolveOptions};
use crate::pairs::triangle;
use crate::pairs::{CoocCounts, Storage};
use crate::resources::MemoryLimit;
use crate::results::layout::{check_creatable, sae_results_dir};
use crate::results::manifest::{BatchRule, SaeInfo};
use crate::sae::threshold_cut;
use anyhow::{ensure, Context, Result};
use plan::Plan;
use sae_count::{PassSettings, SaeCount};
use serde::Serialize;
use std::path::PathBuf;
use std::time::Instant;

/// Command-line options of a `cooc` run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CoocOptions {
    pub common: StageCommon,
    /// Count only share I of N (windows w with w mod N = I) and write partial counts to
    /// shards/shard_I_of_N.npz; `saecooc merge --shards N` sums them.
    pub shard: Option<Shard>,
    /// Continue from the checkpoint of an interrupted run (refused, naming the input, if the
    /// config, SAE, model, tokenizer or dataset files changed since).
    pub resume: bool,
    /// Save a checkpoint every this many batches (0: never).
    pub checkpoint_every: usize,
    /// Replace the folder's whole cooc set. Without it, the thresholds of an earlier run that
    /// this one does not count are kept when counted from the same inputs, and the run is
    /// refused when they were not.
    pub replace: bool,
    /// The memory the SAEs of one pass may use, in GiB (default: detected).
    pub memory_limit_gib: Option<f64>,
}

/// What one SAE's run produced.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    pub sae_id: String,
    pub out_dir: PathBuf,
    pub tokens_counted: u64,
    pub tokens_per_second: f64,
}

/// Runs `cooc` for every SAE of the config: the memory plan first, then one pass over the data
/// for each group of SAEs it makes. Each SAE's summary line is printed when it is done.
pub fn run(config: &Config, options: &CoocOptions) -> Result<Vec<RunSummary>> {
    // An unwritable results folder is refused before the inputs are resolved (or fetched); the
    // folder is created (and locked) only once they have loaded, so inputs that cannot be
    // loaded leave nothing.
    for sae_id in &config.generation.sae_ids {
        check_creatable(&results_dir(config, options, sae_id))
            .with_context(|| format!("cooc for SAE {sae_id} failed"))?;
    }
    let resolved = resolve(
        InputSpec::of_config(config),
        &ResolveOptions {
            device: options.common.device,
            stage: Some("cooc"),
        },
    )?;
    let plan = Plan::new(
        config,
        &resolved,
        &config.generation.sae_ids,
        memory_limit(options)?,
    )?;
    if config.generation.sae_ids.len() > 1 {
        plan.describe().iter().for_each(crate::report::note);
    }
    let settings = PassSettings {
        config,
        options,
        resolved: &resolved,
    };
    let mut summaries = Vec::new();
    for pass in &plan.passes {
        let ids: Vec<String> = pass.iter().map(|s| s.sae_id.clone()).collect();
        summaries.extend(run_planned_pass(&settings, &ids)?);
    }
    Ok(summaries)
}

/// The memory limit of a sweep: `--memory-limit-gib`, else what the machine says.
fn memory_limit(options: &CoocOptions) -> Result<Option<MemoryLimit>> {
    match options.memory_limit_gib {
        Some(gib) => {
            crate::config::check_finite(
                "--memory-limit-gib",
                gib,
                (std::ops::Bound::Excluded(0.0), std::ops::Bound::Unbounded),
            )?;
            Ok(Some(MemoryLimit::given(gib, "--memory-limit-gib")))
        }
        None => Ok(MemoryLimit::detect()),
    }
}

/// Loads the SAEs `ids` and one model for them, and counts each group of them that reads the
/// same windows in one pass.
fn run_planned_pass(settings: &PassSettings, ids: &[String]) -> Result<Vec<RunSummary>> {
    let started = Instant::now();
    let saes = load_sweep(settings.resolved, ids).with_context(|| failed(ids))?;
    let load_s = started.elapsed().as_secs_f64();
    let groups = stream_groups(&saes);
    let mut saes: Vec<Option<HookedSae>> = saes.into_iter().map(Some).collect();
    let mut summaries = Vec::new();
    for group in groups {
        let members: Vec<(String, HookedSae)> = group
            .iter()
            .map(|&i| {
                (
                    ids[i].clone(),
                    saes[i].take().expect("each SAE in one group"),
                )
            })
            .collect();
        summaries.extend(count_group(settings, members, load_s)?);
    }
    Ok(summaries)
}

/// Counts the SAEs of `members`, which read the same windows, in one pass over the data, and
/// finishes each (shard file or published set) in order.
fn count_group(
    settings: &PassSettings,
    members: Vec<(String, HookedSae)>,
    load_s: f64,
) -> Result<Vec<RunSummary>> {
    let config = settings.config;
    let ids: Vec<String> = members.iter().map(|(id, _)| id.clone()).collect();
    let runner = &members[0].1.runner;
    let mut stream = runner.stream(
        settings.resolved,
        config.run.prompts_per_batch,
        config.generation.remove_special_tokens,
    )?;
    let dataset_files = stream.dataset_files();
    let mut saes = members
        .into_iter()
        .map(|(id, inputs)| {
            SaeCount::prepare(settings, &id, inputs, dataset_files.clone(), load_s)
                .with_context(|| failed(std::slice::from_ref(&id)))
        })
        .collect::<Result<Vec<_>>>()?;
    let progress = BatchRule::of(config).progress(config, &ids);
    let end = pass::count_pass(settings, &mut saes, &mut stream, &progress)
        .with_context(|| failed(&ids))?;
    let summaries = saes
        .into_iter()
        .enumerate()
        .map(|(i, sae)| {
            let id = sae.sae_id.clone();
            let summary = sae
                .finish(settings, &end)
                .with_context(|| failed(std::slice::from_ref(&id)))?;
            progress.finish_item(i, summary.line());
            Ok(summary)
        })
        .collect();
    progress.finish();
    summaries
}

/// The context of an error in the count of the SAEs `ids`.
fn failed(ids: &[String]) -> String {
    format!("cooc for SAE {} failed", ids.join(", "))
}

impl RunSummary {
    /// The line a finished SAE prints.
    pub fn line(&self) -> String {
        format!(
            "{}: counted {} tokens ({:.0} tokens/s) → {}",
            self.sae_id,
            self.tokens_counted,
            self.tokens_per_second,
            self.out_dir.display()
        )
    }
}

/// The results folder of `sae_id`.
fn results_dir(config: &Config, options: &CoocOptions, sae_id: &str) -> PathBuf {
    let g = &config.generation;
    sae_results_dir(
        &options.common.results_root(&config.run),
        &g.model_name,
        &g.sae_release_short,
        sae_id,
        g.n_batches,
    )
}

fn timed<T>(acc: &mut f64, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let start = Instant::now();
    let out = f();
    *acc += start.elapsed().as_secs_f64();
    out
}

/// The active-latent cut of each activation threshold of the config for the SAE of
/// `inputs`, and an empty pair store for each, of the kind `[run]` asks for.
fn threshold_counters(
    config: &Config,
    inputs: &HookedSae,
) -> Result<(Vec<Vec<f32>>, Vec<CoocCounts>)> {
    let cuts: Vec<Vec<f32>> = config
        .generation
        .activation_thresholds
        .iter()
        .map(|&t| threshold_cut(t, &inputs.sae.threshold))
        .collect();
    let d_sae = inputs.sae.cfg.d_sae;
    let storage = pair_storage(&config.run, d_sae, cuts.len())?;
    let counters = cuts
        .iter()
        .map(|_| CoocCounts::with_storage(d_sae, storage))
        .collect();
    Ok((cuts, counters))
}

/// The manifest's description of the SAE `inputs` counted with (`center`: whether the
/// residual was centred).
fn sae_info(inputs: &HookedSae, center: bool) -> SaeInfo {
    SaeInfo {
        source: inputs.sae.source.clone(),
        d_in: inputs.sae.cfg.d_in,
        d_sae: inputs.sae.cfg.d_sae,
        architecture: format!("{:?}", inputs.sae.cfg.architecture),
        neuronpedia_id: inputs.sae.cfg.neuronpedia_id.clone(),
        residual_centred: center,
        centring_rule: Some(inputs.runner.centring_rule),
        topk_selection: inputs.sae.selection_rule().map(String::from),
    }
}

impl BatchRule {
    /// The progress display of a pass of `config` counting the SAEs `ids`: tokens or batches.
    fn progress(self, config: &Config, ids: &[String]) -> crate::report::PassProgress {
        match self {
            BatchRule::FirstTokens => {
                crate::report::pass_progress("cooc", ids, config.tokens_to_count(), "tokens")
            }
            BatchRule::SpecialRemoved => {
                let n_batches = config.generation.n_batches as u64;
                crate::report::pass_progress("cooc", ids, n_batches, "batches")
            }
        }
    }

    /// Positions the next batch may count, after `counted` tokens.
    fn budget(self, config: &Config, counted: u64) -> u64 {
        match self {
            Self::FirstTokens => config.tokens_to_count() - counted,
            Self::SpecialRemoved => config.run.tokens_per_batch as u64,
        }
    }

    /// True once `counted` tokens in `batches` batches complete the run.
    fn done(self, config: &Config, counted: u64, batches: u64) -> bool {
        match self {
            Self::FirstTokens => counted >= config.tokens_to_count(),
            Self::SpecialRemoved => batches >= config.generation.n_batches as u64,
        }
    }
}

/// The pair store for `thresholds` accumulators of `n_latents` latents under `[run]`.
fn pair_storage(run: &Run, n_latents: usize, thresholds: usize) -> Result<Storage> {
    let limit = (run.dense_limit_gib * (1u64 << 30) as f64) as u128;
    let dense_bytes = triangle::triangle_bytes(n_latents) * thresholds as u128;
    match run.accumulator {
        Accumulator::Auto => Ok(Storage::auto(n_latents, thresholds, limit)),
        Accumulator::Sparse => Ok(Storage::Sparse),
        Accumulator::Dense => {
            ensure!(
                dense_bytes <= limit,
                "run.accumulator = \"dense\" needs {:.1} GiB for {thresholds} triangle(s) of {n_latents} latents, above run.dense_limit_gib = {}: raise the limit or use accumulator = \"sparse\"",
                dense_bytes as f64 / (1u64 << 30) as f64,
                run.dense_limit_gib
            );
            Ok(Storage::Dense)
        }
    }
}
