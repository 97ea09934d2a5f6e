//! One SAE's part of a counting pass: its locked results folder, its counters (from its
//! checkpoint with `--resume`), the encoding and counting of each batch it reads, its
//! checkpoints, and at the end its shard file or published set. What it writes is what a run of
//! that SAE alone writes, whichever pass it shares.

use super::counting::{Counting, Encoded, Slice};
use super::outputs::{with_counting_settings, write_outputs, Kept};
use super::shards::{checkpoint_file, lock_output};
use super::{results_dir, sae_info, state, threshold_counters, timed, CoocOptions, RunSummary};
use crate::activations::{Batch, DeviceCuts, HookedSae};
use crate::config::Config;
use crate::harness;
use crate::inputs::ResolvedRun;
use crate::provenance::Inputs;
use crate::results::layout::shard_file;
use crate::results::lock::FolderLock;
use crate::results::manifest::{
    BatchRule, CoocManifest, RunStart, ThresholdStats, Timings, VERSION,
};
use crate::sae::encode_slices;
use anyhow::{ensure, Result};
use candle_core::{Device, Tensor};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// What every SAE of a pass counts with.
pub(super) struct PassSettings<'a> {
    pub config: &'a Config,
    pub options: &'a CoocOptions,
    pub resolved: &'a ResolvedRun,
}

impl PassSettings<'_> {
    fn device(&self) -> &Device {
        &self.resolved.device
    }
}

/// Where a count starts: the windows already read, and the tokens and batches counted over all
/// shards before them (nothing, or an interrupted run's checkpoint).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct Start {
    pub windows: u64,
    pub tokens: u64,
    pub batches: u64,
}

/// How a pass ended: tokens, batches and windows over all shards, and whether the data ran out
/// before the budget.
#[derive(Debug, Clone, Copy)]
pub(super) struct PassEnd {
    pub tokens: u64,
    pub batches: u64,
    pub windows_read: u64,
    pub data_exhausted: bool,
}

/// One SAE being counted.
pub(super) struct SaeCount {
    pub sae_id: String,
    pub inputs: HookedSae,
    pub start: Start,
    pub timings: Timings,
    out_dir: PathBuf,
    lock: FolderLock,
    checkpoint: PathBuf,
    /// Fingerprints of the inputs, recorded in checkpoints and shard files.
    fingerprints: Inputs,
    /// The fingerprints with the counting settings, as the published set records them.
    set_inputs: Inputs,
    kept: Kept,
    device_cuts: Option<DeviceCuts>,
    counting: Counting,
    started: Instant,
    run_start: RunStart,
}

impl SaeCount {
    /// Locks the SAE's results folder (a second writer is refused now), fingerprints its
    /// inputs (`dataset_files`: the dataset's local files in reading order), decides what
    /// becomes of the thresholds of the set in the folder this run does not count, and loads
    /// the checkpoint with `--resume`. `load_s`: the time its inputs took to load.
    pub fn prepare(
        settings: &PassSettings,
        sae_id: &str,
        inputs: HookedSae,
        dataset_files: Vec<PathBuf>,
        load_s: f64,
    ) -> Result<Self> {
        let (config, options) = (settings.config, settings.options);
        let (started, run_start) = (Instant::now(), RunStart::now());
        let mut timings = Timings {
            load_s,
            ..Timings::default()
        };
        let sae_id = sae_id.to_string();
        let out_dir = results_dir(config, options, &sae_id);
        let lock = lock_output(&out_dir, options.shard)?;
        let checkpoint = checkpoint_file(&out_dir, options.shard);
        let fingerprints = timed(&mut timings.load_s, || {
            let sources = settings.resolved.input_sources(
                &sae_id,
                &inputs.runner.dataset,
                dataset_files,
                crate::provenance::settings_text(config, &sae_id)?,
            )?;
            crate::provenance::fingerprint(&sources, options.shard.map(|s| (s.index, s.count)))
        })?;
        let set_inputs = with_counting_settings(fingerprints.clone(), config, &sae_id)?;
        // A shard publishes nothing (`merge` decides).
        let kept = match options.shard {
            Some(_) => Kept::default(),
            None => Kept::decide(
                &out_dir,
                &config.generation.activation_thresholds,
                &set_inputs,
                options.replace,
            )?,
        };
        let (cuts, mut counters) = threshold_counters(config, &inputs)?;
        let d_sae = inputs.sae.cfg.d_sae;
        let start = resume(options, &checkpoint, &mut counters, d_sae, &fingerprints)?;
        // With an accelerator the thresholds are applied there and counting overlaps the next
        // slice; on the CPU the host does both in turn.
        let device = settings.device();
        let device_cuts = match device.is_cpu() {
            true => None,
            false => Some(DeviceCuts::new(&cuts, d_sae, device)?),
        };
        let counting = Counting::new(counters, cuts, device_cuts.is_some());
        Ok(Self {
            sae_id,
            inputs,
            start,
            timings,
            out_dir,
            lock,
            checkpoint,
            fingerprints,
            set_inputs,
            kept,
            device_cuts,
            counting,
            started,
            run_start,
        })
    }

    /// Encodes the SAE's activations `resid` at the read positions of `batch` a slice of rows
    /// at a time (thresholded on the accelerator when there is one) and counts each slice.
    pub fn count_batch(&mut self, batch: &Arc<Batch>, resid: Tensor) -> Result<()> {
        let inputs = &mut self.inputs;
        let d_sae = inputs.sae.cfg.d_sae;
        // The input scaling of `expected_average_only_in` SAEs is set from the whole first
        // batch; wide SAEs are then encoded a slice of rows at a time.
        inputs.sae.calibrate_normalization(&resid)?;
        for (first_row, rows) in encode_slices(batch.positions.len(), d_sae) {
            let x = resid.narrow(0, first_row, rows)?;
            let counting = &mut self.counting;
            let encoded = timed(&mut self.timings.encode_s, || match &self.device_cuts {
                Some(cuts) => Ok(Encoded::Bits(cuts.apply(&inputs.sae.encode(&x)?)?)),
                None => {
                    let mut acts = counting.buffer();
                    inputs.encode_into(&x, &mut acts)?;
                    Ok(Encoded::Dense(acts))
                }
            })?;
            let slice = Slice {
                batch: Arc::clone(batch),
                first_row,
                encoded,
            };
            timed(&mut self.timings.count_s, || counting.submit(slice))?;
        }
        Ok(())
    }

    /// Saves the counts so far as the checkpoint, after `(tokens, batches, windows read)`.
    pub fn save_checkpoint(
        &mut self,
        (tokens, batches, windows_read): (u64, u64, u64),
    ) -> Result<()> {
        let position = state::Position {
            inputs: self.fingerprints.clone(),
            counted_global: tokens,
            batches,
            windows_read,
            complete: false,
            data_exhausted: false,
        };
        let (counting, checkpoint) = (&mut self.counting, &self.checkpoint);
        timed(&mut self.timings.write_s, || {
            state::save(checkpoint, counting.wait()?, &position)
        })
    }

    /// Finishes the count after the pass ended at `end`: the shard file of a sharded run, else
    /// the SAE's outputs published as one set with its run.json.
    pub fn finish(mut self, settings: &PassSettings, end: &PassEnd) -> Result<RunSummary> {
        let config = settings.config;
        let mut counters = timed(&mut self.timings.count_s, || self.counting.finish())?;
        self.check_counted(config, end)?;
        if let Some(s) = settings.options.shard {
            let path = shard_file(&self.out_dir, s.index, s.count);
            state::save(&path, &mut counters, &self.final_position(end))?;
            let _ = std::fs::remove_file(&self.checkpoint);
            let mine = counters.first().map_or(0, |c| c.tokens());
            return Ok(self.summary(path, mine));
        }
        let g = &config.generation;
        let mut staging = harness::begin_cooc_set(&self.lock, self.set_inputs.clone())?;
        let kept = std::mem::take(&mut self.kept);
        let thresholds = timed(&mut self.timings.write_s, || {
            let written = write_outputs(
                staging.root(),
                &g.activation_thresholds,
                &mut counters,
                config.run.matrix_format,
            )?;
            kept.carry(&mut staging, written)
        })?;
        let manifest = self.manifest(settings, end, thresholds);
        staging.publish(|record| manifest.to_json(record))?;
        let _ = std::fs::remove_file(&self.checkpoint);
        Ok(self.summary(self.out_dir.clone(), end.tokens))
    }

    /// What the run of this SAE reports once done: `tokens` counted, written to `out`.
    fn summary(&self, out: PathBuf, tokens: u64) -> RunSummary {
        RunSummary {
            sae_id: self.sae_id.clone(),
            out_dir: out,
            tokens_counted: tokens,
            tokens_per_second: self.tokens_per_second(tokens),
        }
    }

    /// Tokens per second of processing (tokenize, forward, encode and count).
    fn tokens_per_second(&self, tokens: u64) -> f64 {
        let t = &self.timings;
        let processing = t.tokenize_s + t.forward_s + t.encode_s + t.count_s;
        tokens as f64 / processing.max(1e-9)
    }

    /// Refuses a pass that counted nothing, and notes one the data ran out for.
    fn check_counted(&self, config: &Config, end: &PassEnd) -> Result<()> {
        let runner = &self.inputs.runner;
        ensure!(end.tokens > 0, "dataset {} yielded no tokens to count (is it empty, or shorter than one window of {} tokens?)", runner.dataset.describe(), runner.context_size);
        if end.data_exhausted {
            crate::report::note(format_args!(
                "warning: the data ran out after {} tokens in {} of {} batches ({} windows); results record the true count",
                end.tokens, end.batches,
                config.generation.n_batches,
                end.windows_read
            ));
        }
        Ok(())
    }

    /// The position of a finished pass, as a shard file records it.
    fn final_position(&self, end: &PassEnd) -> state::Position {
        state::Position {
            inputs: self.fingerprints.clone(),
            counted_global: end.tokens,
            batches: end.batches,
            windows_read: end.windows_read,
            complete: true,
            data_exhausted: end.data_exhausted,
        }
    }

    /// The `run.json` of the set counted in the pass that ended at `end`.
    fn manifest(
        &self,
        settings: &PassSettings,
        end: &PassEnd,
        thresholds: Vec<ThresholdStats>,
    ) -> CoocManifest {
        let config = settings.config;
        let runner = &self.inputs.runner;
        CoocManifest {
            tool: "saecooc".into(),
            version: VERSION.into(),
            sae_id: self.sae_id.clone(),
            shards: None,
            model: Some(runner.model_source.clone()),
            hook: Some(runner.hook.to_string()),
            sae: Some(sae_info(&self.inputs, runner.centred)),
            dataset: Some(runner.dataset.describe()),
            context_size: Some(runner.context_size),
            window_tokens: Some(runner.window_tokens),
            batch_rule: BatchRule::of(config),
            windows_read: end.windows_read,
            batches_counted: end.batches,
            tokens_requested: config.tokens_to_count(),
            tokens_counted: end.tokens,
            data_exhausted: end.data_exhausted,
            thresholds,
            timings: Some(self.timings.clone()),
            elapsed_s: Some(self.started.elapsed().as_secs_f64()),
            tokens_per_second: Some(self.tokens_per_second(end.tokens)),
            config: config.clone(),
            run_info: Some(self.run_start.finish(serde_json::json!({
                "config": config,
                "options": settings.options,
                "sae_id": self.sae_id,
            }))),
            set: Default::default(),
        }
    }
}

/// With `--resume`, where the checkpoint at `checkpoint` says the count stands (its counts
/// replace `counters`); the start of the data without one.
fn resume(
    options: &CoocOptions,
    checkpoint: &Path,
    counters: &mut Vec<crate::pairs::CoocCounts>,
    d_sae: usize,
    fingerprints: &Inputs,
) -> Result<Start> {
    if options.resume && checkpoint.is_file() {
        let (saved, position) =
            state::load_checked(checkpoint, counters.len(), d_sae, fingerprints)?;
        *counters = saved;
        crate::report::note(format_args!(
            "resuming from {} ({} windows, {} tokens)",
            checkpoint.display(),
            position.windows_read,
            position.counted_global
        ));
        return Ok(Start {
            windows: position.windows_read,
            tokens: position.counted_global,
            batches: position.batches,
        });
    } else if options.resume {
        crate::report::note(format_args!(
            "no checkpoint at {}: starting from the beginning",
            checkpoint.display()
        ));
    }
    Ok(Start::default())
}
