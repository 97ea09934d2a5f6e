//! `saecooc cooc`: model + SAE + text → co-occurrence counts, Jaccard matrices and totals.
//!
//! For each SAE: read windows in order, run the model to the SAE's hook (centring the residual
//! stream of LayerNorm models as TransformerLens does), drop special-token positions when
//! configured, encode with the folded SAE, and count every threshold in the same pass.
//! Exactly `n_batches × tokens_per_batch` tokens are counted (fewer only if the data runs out,
//! which is reported and recorded).
//!
//! Deliberate difference from the original: its "batch" with special-token removal held at
//! most 1016 GPT-2 tokens (8 windows of 128 minus BOS), not 4096; saecooc always counts full
//! batches of `tokens_per_batch` tokens, read in order rather than from a shuffle buffer.

pub mod counts;

use crate::activations::Encoder;
use crate::config::{Config, DeviceKind};
use crate::hub::Hub;
use crate::layout::{cooc_file, sae_results_dir, CoocKind};
use crate::npz::NpzWriter;
use crate::pyfmt::threshold_tag;
use crate::sources::Sources;
use anyhow::{bail, ensure, Context, Result};
use candle_core::Device;
use counts::{jaccard_row, threshold_cut, CoocCounts};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Command-line overrides for a `cooc` run.
#[derive(Debug, Clone, Default)]
pub struct CoocOptions {
    pub results_dir: Option<PathBuf>,
    pub device: Option<DeviceKind>,
    pub quiet: bool,
}

/// What one SAE's run produced.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    pub sae_id: String,
    pub out_dir: PathBuf,
    pub tokens_counted: u64,
    pub tokens_per_second: f64,
}

/// Opens the compute device.
pub fn open_device(kind: DeviceKind) -> Result<Device> {
    match kind {
        DeviceKind::Cpu => Ok(Device::Cpu),
        DeviceKind::Cuda if candle_core::utils::cuda_is_available() => {
            Device::new_cuda(0).context("cannot open CUDA device 0")
        }
        DeviceKind::Cuda => bail!(
            "device = \"cuda\" but this saecooc was built without CUDA (rebuild with `cargo build --release --features cuda`) or no GPU is visible"
        ),
    }
}

/// Runs `cooc` for every SAE of the config.
pub fn run(config: &Config, options: &CoocOptions) -> Result<Vec<RunSummary>> {
    let hub = Hub::from_env(!options.quiet)?;
    let device = open_device(options.device.unwrap_or(config.run.device))?;
    config
        .generation
        .sae_ids
        .iter()
        .map(|sae_id| {
            run_sae(&Sources::new(config, &hub, &device), options, sae_id)
                .with_context(|| format!("cooc for SAE {sae_id} failed"))
        })
        .collect()
}

/// Wall-clock time spent in each stage.
#[derive(Debug, Default, Clone, Serialize)]
struct Timings {
    load_s: f64,
    tokenize_s: f64,
    forward_s: f64,
    encode_s: f64,
    count_s: f64,
    write_s: f64,
}

fn timed<T>(acc: &mut f64, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let start = Instant::now();
    let out = f();
    *acc += start.elapsed().as_secs_f64();
    out
}

fn run_sae(sources: &Sources, options: &CoocOptions, sae_id: &str) -> Result<RunSummary> {
    let (config, device) = (sources.config, sources.device);
    let g = &config.generation;
    let started = Instant::now();
    let mut timings = Timings::default();
    let mut inputs = timed(&mut timings.load_s, || Encoder::load(sources, sae_id))?;
    let results_root = options
        .results_dir
        .clone()
        .unwrap_or_else(|| config.run.results_dir.clone());
    let out_dir = sae_results_dir(
        &results_root,
        &g.model_name,
        &g.sae_release_short,
        sae_id,
        g.n_batches,
    );

    let mut windows = inputs.runner.windows(sources)?;
    let center = inputs.runner.centred;
    let cuts: Vec<Vec<f32>> = g
        .activation_thresholds
        .iter()
        .map(|&t| threshold_cut(t, &inputs.sae.threshold))
        .collect();
    let mut counters: Vec<CoocCounts> = g
        .activation_thresholds
        .iter()
        .map(|_| CoocCounts::new(inputs.sae.cfg.d_sae))
        .collect();

    let target = config.tokens_to_count();
    let bar = crate::progress::bar(target, options.quiet, sae_id, "tokens");
    let mut counted = 0u64;
    while counted < target {
        let batch = timed(&mut timings.tokenize_s, || {
            windows.next_windows(config.run.prompts_per_batch)
        })?;
        if batch.is_empty() {
            break;
        }
        let first_window = windows.windows_read - batch.len() as u64;
        let (positions, tokens) = kept_positions(
            &batch,
            g.remove_special_tokens,
            &inputs.runner.special,
            target - counted,
        );
        if positions.is_empty() {
            continue;
        }
        let resid = timed(&mut timings.forward_s, || {
            inputs.runner.residual(&batch, &positions, device)
        })?;
        let acts = timed(&mut timings.encode_s, || inputs.encode(&resid))?;
        timed(&mut timings.count_s, || {
            for (counter, cut) in counters.iter_mut().zip(&cuts) {
                counter.add_batch(&acts, cut).map_err(|nan| {
                    let flat = positions[nan.row] as usize;
                    anyhow::anyhow!(
                        "SAE activation is NaN at window {} position {} (token id {}): the model or SAE produced non-finite values",
                        first_window + (flat / inputs.runner.context_size) as u64,
                        flat % inputs.runner.context_size,
                        tokens[nan.row]
                    )
                })?;
            }
            Ok(())
        })?;
        counted += positions.len() as u64;
        bar.set_position(counted);
    }
    bar.finish_and_clear();
    ensure!(counted > 0, "dataset {} yielded no tokens to count (is it empty, or shorter than one window of {} tokens?)", inputs.runner.dataset.describe(), inputs.runner.context_size);
    if counted < target && !options.quiet {
        eprintln!(
            "warning: the data ran out after {counted} of {target} tokens ({} windows); results record the true count",
            windows.windows_read
        );
    }

    let files = timed(&mut timings.write_s, || {
        write_outputs(&out_dir, &g.activation_thresholds, &counters)
    })?;
    let elapsed = started.elapsed().as_secs_f64();
    let processing = timings.tokenize_s + timings.forward_s + timings.encode_s + timings.count_s;
    let tokens_per_second = counted as f64 / processing.max(1e-9);
    let manifest = Manifest {
        tool: "saecooc",
        version: env!("CARGO_PKG_VERSION"),
        sae_id: sae_id.to_string(),
        model: inputs.runner.model_source.clone(),
        hook: inputs.runner.model.hook().to_string(),
        sae: SaeInfo {
            source: inputs.sae.source.clone(),
            d_in: inputs.sae.cfg.d_in,
            d_sae: inputs.sae.cfg.d_sae,
            architecture: format!("{:?}", inputs.sae.cfg.architecture),
            neuronpedia_id: inputs.sae.cfg.neuronpedia_id.clone(),
            residual_centred: center,
        },
        dataset: inputs.runner.dataset.describe(),
        context_size: inputs.runner.context_size,
        windows_read: windows.windows_read,
        tokens_requested: target,
        tokens_counted: counted,
        data_exhausted: counted < target,
        thresholds: counters
            .iter()
            .zip(&g.activation_thresholds)
            .zip(files)
            .map(|((c, &t), files)| ThresholdStats::new(t, c, files))
            .collect(),
        timings,
        elapsed_s: elapsed,
        tokens_per_second,
        config: config.clone(),
    };
    let json = serde_json::to_vec_pretty(&manifest)?;
    crate::atomic::write_bytes(&out_dir.join("run.json"), &json)?;
    Ok(RunSummary {
        sae_id: sae_id.to_string(),
        out_dir,
        tokens_counted: counted,
        tokens_per_second,
    })
}

/// Flat positions (row-major over `[windows, context]`) to count and their token ids, dropping
/// special tokens when asked and keeping at most `budget`.
pub fn kept_positions(
    batch: &[Vec<u32>],
    remove_special: bool,
    special: &[u32],
    budget: u64,
) -> (Vec<u32>, Vec<u32>) {
    let mut positions = Vec::new();
    let mut tokens = Vec::new();
    for (p, &tok) in batch.iter().flatten().enumerate() {
        if positions.len() as u64 >= budget {
            break;
        }
        if remove_special && special.contains(&tok) {
            continue;
        }
        positions.push(p as u32);
        tokens.push(tok);
    }
    (positions, tokens)
}

/// Writes the three npz files per threshold; returns their names per threshold.
fn write_outputs(
    dir: &Path,
    thresholds: &[f64],
    counters: &[CoocCounts],
) -> Result<Vec<Vec<String>>> {
    let mut names = Vec::new();
    for (&t, counts) in thresholds.iter().zip(counters) {
        let n = counts.n_latents();
        let diag: Vec<f32> = counts.diagonal().iter().map(|&c| c as f32).collect();
        let total = cooc_file(dir, CoocKind::Total, t);
        let mut w = NpzWriter::create(&total, true)?;
        w.add_f32_rows("arr_0", n, n, |i, row| counts.fill_row(i, row))?;
        w.finish()?;
        let jaccard = cooc_file(dir, CoocKind::Jaccard, t);
        let mut w = NpzWriter::create(&jaccard, true)?;
        w.add_f32_rows("arr_0", n, n, |i, row| jaccard_row(counts, &diag, i, row))?;
        w.finish()?;
        let activations = cooc_file(dir, CoocKind::Activations, t);
        crate::npz::save_f32_compressed(&activations, &[n], &diag)?;
        names.push(
            [total, jaccard, activations]
                .iter()
                .map(|p| {
                    p.file_name()
                        .unwrap_or_default()
                        .to_string_lossy()
                        .into_owned()
                })
                .collect(),
        );
    }
    Ok(names)
}

/// The `run.json` manifest written next to the outputs.
#[derive(Serialize)]
struct Manifest {
    tool: &'static str,
    version: &'static str,
    sae_id: String,
    model: String,
    hook: String,
    sae: SaeInfo,
    dataset: String,
    context_size: usize,
    windows_read: u64,
    tokens_requested: u64,
    tokens_counted: u64,
    data_exhausted: bool,
    thresholds: Vec<ThresholdStats>,
    timings: Timings,
    elapsed_s: f64,
    tokens_per_second: f64,
    config: Config,
}

#[derive(Serialize)]
struct SaeInfo {
    source: String,
    d_in: usize,
    d_sae: usize,
    architecture: String,
    neuronpedia_id: Option<String>,
    residual_centred: bool,
}

/// Per-threshold statistics of the latents.
#[derive(Serialize)]
struct ThresholdStats {
    threshold: f64,
    tag: String,
    /// Mean active latents per token.
    l0_mean: f64,
    l0_std: f64,
    /// Tokens by number of active latents (index = active latents).
    l0_histogram: Vec<u64>,
    /// Latents that never fired.
    dead_latents: usize,
    /// Latents active on more than 10% of tokens.
    dense_latents: usize,
    /// Largest per-latent firing frequency.
    max_firing_frequency: f64,
    files: Vec<String>,
}

impl ThresholdStats {
    fn new(threshold: f64, counts: &CoocCounts, files: Vec<String>) -> Self {
        let diag = counts.diagonal();
        let tokens = counts.tokens().max(1) as f64;
        let (l0_mean, l0_std) = counts.l0_mean_std();
        Self {
            threshold,
            tag: threshold_tag(threshold),
            l0_mean,
            l0_std,
            l0_histogram: counts.l0_histogram().to_vec(),
            dead_latents: diag.iter().filter(|&&c| c == 0).count(),
            dense_latents: diag.iter().filter(|&&c| c as f64 / tokens > 0.1).count(),
            max_firing_frequency: diag.iter().map(|&c| c as f64 / tokens).fold(0.0, f64::max),
            files,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_positions_are_dropped_and_the_budget_respected() {
        let batch = vec![vec![50256, 10, 11, 50256], vec![50256, 12, 13, 14]];
        let (pos, tok) = kept_positions(&batch, true, &[50256], 100);
        assert_eq!(pos, vec![1, 2, 5, 6, 7]);
        assert_eq!(tok, vec![10, 11, 12, 13, 14]);
        let (pos, _) = kept_positions(&batch, false, &[50256], 100);
        assert_eq!(pos, (0..8).collect::<Vec<u32>>());
        let (pos, tok) = kept_positions(&batch, true, &[50256], 3);
        assert_eq!(pos, vec![1, 2, 5]);
        assert_eq!(tok, vec![10, 11, 12]);
    }
}
