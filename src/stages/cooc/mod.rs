//! `saecooc cooc`: model + SAE + text → co-occurrence counts, Jaccard matrices and totals.
//!
//! For each SAE: read windows in order, run the model to the SAE's hook (centring the residual
//! stream of LayerNorm models as TransformerLens does), drop special-token positions when
//! configured, encode with the folded SAE, and count every threshold in the same pass.
//! Which tokens make the `n_batches` batches follows [`BatchRule`]: with special-token removal
//! exactly the original's batches; without it the first `n_batches × tokens_per_batch` tokens
//! in order (the original's shuffle buffer is not reproducible). Fewer only if the data runs
//! out, which is reported and recorded.

mod counting;
mod outputs;
mod shards;
pub mod state;

pub use shards::{merge, Shard};

use crate::activations::{ActivationStream, Batch, DeviceCuts, HookedSae};
use crate::config::{Accumulator, Config, Run, StageCommon};
use crate::harness;
use crate::inputs::{resolve, InputSpec, ResolveOptions, ResolvedRun};
use crate::pairs::triangle;
use crate::pairs::{CoocCounts, Storage};
use crate::provenance::Inputs;
use crate::results::layout::{check_creatable, sae_results_dir, shard_file};
use crate::results::manifest::{
    BatchRule, CoocManifest, RunStart, SaeInfo, ThresholdStats, Timings, VERSION,
};
use crate::sae::{encode_slices, threshold_cut};
use anyhow::{ensure, Context, Result};
use candle_core::Device;
use counting::{Counting, Encoded, Slice};
use outputs::{with_counting_settings, write_outputs, Kept};
use serde::Serialize;
use shards::{checkpoint_file, lock_output};
use std::path::{Path, PathBuf};
use std::sync::Arc;
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
}

/// What one SAE's run produced.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    pub sae_id: String,
    pub out_dir: PathBuf,
    pub tokens_counted: u64,
    pub tokens_per_second: f64,
}

/// Runs `cooc` for every SAE of the config.
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
    config
        .generation
        .sae_ids
        .iter()
        .map(|sae_id| {
            run_sae(config, &resolved, options, sae_id)
                .with_context(|| format!("cooc for SAE {sae_id} failed"))
        })
        .collect()
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

fn run_sae(
    config: &Config,
    resolved: &ResolvedRun,
    options: &CoocOptions,
    sae_id: &str,
) -> Result<RunSummary> {
    let g = &config.generation;
    let started = Instant::now();
    let run_start = RunStart::now();
    let mut timings = Timings::default();
    let out_dir = results_dir(config, options, sae_id);
    let shard = options.shard;
    let mut inputs = timed(&mut timings.load_s, || HookedSae::load(resolved, sae_id))?;
    // Locked before any counting: a second writer is refused now.
    let lock = lock_output(&out_dir, shard)?;

    let mut stream = inputs.runner.stream(
        resolved,
        config.run.prompts_per_batch,
        g.remove_special_tokens,
    )?;
    let (cuts, counters) = threshold_counters(config, &inputs)?;
    let checkpoint = checkpoint_file(&out_dir, shard);
    let fingerprints = timed(&mut timings.load_s, || {
        crate::provenance::fingerprint(
            &resolved.input_sources(
                sae_id,
                &inputs.runner.dataset,
                stream.dataset_files(),
                crate::provenance::settings_text(config, sae_id)?,
            )?,
            shard.map(|s| (s.index, s.count)),
        )
    })?;
    // Before counting: what becomes of the thresholds of the set in the folder this run does
    // not count (a shard publishes nothing; `merge` decides).
    let set_inputs = with_counting_settings(fingerprints.clone(), config, sae_id)?;
    let kept = match shard {
        Some(_) => Kept::default(),
        None => Kept::decide(
            &out_dir,
            &g.activation_thresholds,
            &set_inputs,
            options.replace,
        )?,
    };
    let pass = Pass {
        config,
        options,
        sae_id,
        device: &resolved.device,
        checkpoint,
        fingerprints,
    };
    let mut counted = pass.count(cuts, counters, &mut inputs, &mut stream, &mut timings)?;
    if let Some(s) = shard {
        let position = pass.final_position(&counted, &stream);
        return save_shard(
            &out_dir,
            s,
            &mut counted.counters,
            &position,
            &pass.checkpoint,
            sae_id,
            started,
        );
    }
    let mut staging = harness::begin_cooc_set(&lock, set_inputs)?;
    let thresholds = timed(&mut timings.write_s, || {
        let written = write_outputs(
            staging.root(),
            &g.activation_thresholds,
            &mut counted.counters,
            config.run.matrix_format,
        )?;
        kept.carry(&mut staging, written)
    })?;
    let measured = Measured::of(thresholds, timings, started, counted.tokens);
    let tokens_per_second = measured.tokens_per_second;
    let manifest = pass.manifest(&inputs, &stream, &counted, measured, &run_start);
    staging.publish(|record| manifest.to_json(record))?;
    let _ = std::fs::remove_file(&pass.checkpoint);
    Ok(RunSummary {
        sae_id: sae_id.to_string(),
        out_dir,
        tokens_counted: counted.tokens,
        tokens_per_second,
    })
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

/// One SAE's counting pass: what it counts with, and where it checkpoints.
struct Pass<'a> {
    config: &'a Config,
    options: &'a CoocOptions,
    sae_id: &'a str,
    device: &'a Device,
    checkpoint: PathBuf,
    /// Fingerprints of the inputs, recorded in checkpoints and shard files.
    fingerprints: Inputs,
}

/// What a counting pass counted: tokens and batches over all shards (the budget and the
/// stopping point are global, so the shards of a split count exactly the tokens of the
/// unsharded run), and the counts of this run's share.
struct Counted {
    counters: Vec<CoocCounts>,
    tokens: u64,
    batches: u64,
    data_exhausted: bool,
}

/// What the run measured besides the counts, for its manifest.
struct Measured {
    thresholds: Vec<ThresholdStats>,
    timings: Timings,
    elapsed: f64,
    tokens_per_second: f64,
}

impl Measured {
    /// What a run that started at `started` and counted `tokens` tokens measured.
    fn of(
        thresholds: Vec<ThresholdStats>,
        timings: Timings,
        started: Instant,
        tokens: u64,
    ) -> Self {
        let processing =
            timings.tokenize_s + timings.forward_s + timings.encode_s + timings.count_s;
        Self {
            thresholds,
            elapsed: started.elapsed().as_secs_f64(),
            tokens_per_second: tokens as f64 / processing.max(1e-9),
            timings,
        }
    }
}

impl Pass<'_> {
    /// Counts the batches of `stream` into `counters` (one per active-latent cut of `cuts`)
    /// until the run's budget is met or the data runs out, continuing from the checkpoint
    /// with `--resume` and saving one every `--checkpoint-every` batches.
    fn count(
        &self,
        cuts: Vec<Vec<f32>>,
        mut counters: Vec<CoocCounts>,
        inputs: &mut HookedSae,
        stream: &mut ActivationStream,
        timings: &mut Timings,
    ) -> Result<Counted> {
        let (config, shard) = (self.config, self.options.shard);
        let rule = BatchRule::of(config);
        let d_sae = inputs.sae.cfg.d_sae;
        let (mut tokens, mut batches) = resume(
            self.options,
            &self.checkpoint,
            &mut counters,
            d_sae,
            &self.fingerprints,
            stream,
            timings,
        )?;
        // With an accelerator the thresholds are applied there and counting overlaps the next
        // slice; on the CPU the host does both in turn.
        let device_cuts = if self.device.is_cpu() {
            None
        } else {
            Some(DeviceCuts::new(&cuts, d_sae, self.device)?)
        };
        let mut counting = Counting::new(counters, cuts, device_cuts.is_some());
        let target = config.tokens_to_count();
        let bar = rule.progress_bar(target, config.generation.n_batches, self.sae_id);
        while !rule.done(config, tokens, batches) {
            let budget = rule.budget(config, tokens);
            let Some(mut batch) = timed(&mut timings.tokenize_s, || stream.next_batch(budget))?
            else {
                break;
            };
            tokens += batch.positions.len() as u64;
            batches += 1;
            if let Some(s) = shard {
                batch.retain_windows(|w| w % s.count as u64 == s.index as u64);
            }
            if !batch.positions.is_empty() {
                let (device, cuts) = (self.device, device_cuts.as_ref());
                count_batch(batch, inputs, device, cuts, &mut counting, timings)?;
            }
            bar.set_position(match rule {
                BatchRule::FirstTokens => tokens,
                BatchRule::SpecialRemoved => batches,
            });
            if self.checkpoint_due(batches) && !rule.done(config, tokens, batches) {
                let counted = (tokens, batches, stream.windows_read());
                self.save_checkpoint(&mut counting, counted, timings)?;
            }
        }
        let counters = timed(&mut timings.count_s, || counting.finish())?;
        bar.finish_and_clear();
        let data_exhausted = !rule.done(config, tokens, batches);
        self.check_counted(tokens, batches, data_exhausted, inputs, stream)?;
        Ok(Counted {
            counters,
            tokens,
            batches,
            data_exhausted,
        })
    }

    /// Whether a checkpoint is due after `batches` batches.
    fn checkpoint_due(&self, batches: u64) -> bool {
        let every = self.options.checkpoint_every as u64;
        every > 0 && batches.is_multiple_of(every)
    }

    /// Saves the counts so far as the checkpoint, after `(tokens, batches, windows read)`.
    fn save_checkpoint(
        &self,
        counting: &mut Counting,
        (tokens, batches, windows_read): (u64, u64, u64),
        timings: &mut Timings,
    ) -> Result<()> {
        let position = state::Position {
            inputs: self.fingerprints.clone(),
            counted_global: tokens,
            batches,
            windows_read,
            complete: false,
            data_exhausted: false,
        };
        timed(&mut timings.write_s, || {
            state::save(&self.checkpoint, counting.wait()?, &position)
        })
    }

    /// Refuses a pass that counted nothing, and notes one the data ran out for.
    fn check_counted(
        &self,
        tokens: u64,
        batches: u64,
        data_exhausted: bool,
        inputs: &HookedSae,
        stream: &ActivationStream,
    ) -> Result<()> {
        ensure!(tokens > 0, "dataset {} yielded no tokens to count (is it empty, or shorter than one window of {} tokens?)", inputs.runner.dataset.describe(), inputs.runner.context_size);
        if data_exhausted {
            crate::report::note(format_args!(
                "warning: the data ran out after {tokens} tokens in {batches} of {} batches ({} windows); results record the true count",
                self.config.generation.n_batches,
                stream.windows_read()
            ));
        }
        Ok(())
    }

    /// The position of a finished pass, as a shard file records it.
    fn final_position(&self, counted: &Counted, stream: &ActivationStream) -> state::Position {
        state::Position {
            inputs: self.fingerprints.clone(),
            counted_global: counted.tokens,
            batches: counted.batches,
            windows_read: stream.windows_read(),
            complete: true,
            data_exhausted: counted.data_exhausted,
        }
    }

    /// The `run.json` of the set this pass counted with `inputs` from `stream`.
    fn manifest(
        &self,
        inputs: &HookedSae,
        stream: &ActivationStream,
        counted: &Counted,
        measured: Measured,
        run_start: &RunStart,
    ) -> CoocManifest {
        let config = self.config;
        let runner = &inputs.runner;
        CoocManifest {
            tool: "saecooc".into(),
            version: VERSION.into(),
            sae_id: self.sae_id.to_string(),
            shards: None,
            model: Some(runner.model_source.clone()),
            hook: Some(runner.hook.to_string()),
            sae: Some(sae_info(inputs, runner.centred)),
            dataset: Some(runner.dataset.describe()),
            context_size: Some(runner.context_size),
            window_tokens: Some(runner.window_tokens),
            batch_rule: BatchRule::of(config),
            windows_read: stream.windows_read(),
            batches_counted: counted.batches,
            tokens_requested: config.tokens_to_count(),
            tokens_counted: counted.tokens,
            data_exhausted: counted.data_exhausted,
            thresholds: measured.thresholds,
            timings: Some(measured.timings),
            elapsed_s: Some(measured.elapsed),
            tokens_per_second: Some(measured.tokens_per_second),
            config: config.clone(),
            run_info: Some(run_start.finish(serde_json::json!({
                "config": config,
                "options": self.options,
                "sae_id": self.sae_id,
            }))),
            set: Default::default(),
        }
    }
}

/// With `--resume`, continues from the checkpoint when there is one: its counts replace
/// `counters` and `stream` skips the windows it read. Returns the tokens and batches counted
/// so far over all shards (none without a checkpoint).
fn resume(
    options: &CoocOptions,
    checkpoint: &Path,
    counters: &mut Vec<CoocCounts>,
    d_sae: usize,
    fingerprints: &Inputs,
    stream: &mut ActivationStream,
    timings: &mut Timings,
) -> Result<(u64, u64)> {
    if options.resume && checkpoint.is_file() {
        let (saved, position) =
            state::load_checked(checkpoint, counters.len(), d_sae, fingerprints)?;
        *counters = saved;
        let counted_global = position.counted_global;
        timed(&mut timings.tokenize_s, || {
            stream.skip_windows(position.windows_read)
        })?;
        crate::report::note(format_args!(
            "resuming from {} ({} windows, {counted_global} tokens)",
            checkpoint.display(),
            position.windows_read
        ));
        return Ok((counted_global, position.batches));
    } else if options.resume {
        crate::report::note(format_args!(
            "no checkpoint at {}: starting from the beginning",
            checkpoint.display()
        ));
    }
    Ok((0, 0))
}

/// Runs the model on `batch`, encodes its residual a slice of rows at a time (thresholded on
/// the accelerator when `device_cuts` is given) and hands each slice to `counting`.
fn count_batch(
    batch: Batch,
    inputs: &mut HookedSae,
    device: &Device,
    device_cuts: Option<&DeviceCuts>,
    counting: &mut Counting,
    timings: &mut Timings,
) -> Result<()> {
    let d_sae = inputs.sae.cfg.d_sae;
    let resid = timed(&mut timings.forward_s, || {
        inputs.runner.batch_residual(&batch, device)
    })?;
    // The input scaling of `expected_average_only_in` SAEs is set from the whole first
    // batch; wide SAEs are then encoded a slice of rows at a time.
    inputs.sae.calibrate_normalization(&resid)?;
    let batch = Arc::new(batch);
    for (first_row, rows) in encode_slices(batch.positions.len(), d_sae) {
        let x = resid.narrow(0, first_row, rows)?;
        let encoded = timed(&mut timings.encode_s, || match device_cuts {
            Some(cuts) => Ok(Encoded::Bits(cuts.apply(&inputs.sae.encode(&x)?)?)),
            None => {
                let mut acts = counting.buffer();
                inputs.encode_into(&x, &mut acts)?;
                Ok(Encoded::Dense(acts))
            }
        })?;
        let slice = Slice {
            batch: Arc::clone(&batch),
            first_row,
            encoded,
        };
        timed(&mut timings.count_s, || counting.submit(slice))?;
    }
    Ok(())
}

/// Saves a shard's counts and final position as its shard file, and drops its checkpoint.
fn save_shard(
    out_dir: &Path,
    s: Shard,
    counters: &mut [CoocCounts],
    position: &state::Position,
    checkpoint: &Path,
    sae_id: &str,
    started: Instant,
) -> Result<RunSummary> {
    let path = shard_file(out_dir, s.index, s.count);
    state::save(&path, counters, position)?;
    let _ = std::fs::remove_file(checkpoint);
    let mine = counters.first().map_or(0, |c| c.tokens());
    Ok(RunSummary {
        sae_id: sae_id.to_string(),
        out_dir: path,
        tokens_counted: mine,
        tokens_per_second: mine as f64 / started.elapsed().as_secs_f64().max(1e-9),
    })
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
    /// The progress bar of a run that counts `target` tokens or `n_batches` batches.
    fn progress_bar(self, target: u64, n_batches: usize, sae_id: &str) -> crate::report::Bar {
        match self {
            BatchRule::FirstTokens => crate::report::bar(target, sae_id, "tokens"),
            BatchRule::SpecialRemoved => crate::report::bar(n_batches as u64, sae_id, "batches"),
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
