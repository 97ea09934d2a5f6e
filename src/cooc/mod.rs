//! `saecooc cooc`: model + SAE + text → co-occurrence counts, Jaccard matrices and totals.
//!
//! For each SAE: read windows in order, run the model to the SAE's hook (centring the residual
//! stream of LayerNorm models as TransformerLens does), drop special-token positions when
//! configured, encode with the folded SAE, and count every threshold in the same pass.
//! Which tokens make the `n_batches` batches follows [`BatchRule`]: with special-token removal
//! exactly the original's batches; without it the first `n_batches × tokens_per_batch` tokens
//! in order (the original's shuffle buffer is not reproducible). Fewer only if the data runs
//! out, which is reported and recorded.

pub mod state;

use crate::activations::Encoder;
use crate::config::{Accumulator, Config, MatrixFormat, Run, StageCommon};
use crate::hub::Hub;
use crate::npz::NpzWriter;
use crate::pairs::sparse;
use crate::pairs::triangle;
use crate::pairs::{jaccard, jaccard_row, CoocCounts, Storage};
use crate::pyfmt::threshold_tag;
use crate::results::layout::{cooc_file, sae_results_dir, CoocKind};
use crate::sae::threshold_cut;
use crate::sources::Sources;
use anyhow::{ensure, Context, Result};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Instant;

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

/// Command-line options of a `cooc` run.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct CoocOptions {
    #[command(flatten)]
    pub common: StageCommon,
    /// Count only share I of N (windows w with w mod N = I) and write partial counts to
    /// shards/shard_I_of_N.npz; `saecooc merge --shards N` sums them.
    #[arg(long, value_name = "I/N", value_parser = Shard::parse)]
    pub shard: Option<Shard>,
    /// Continue from the checkpoint of an interrupted run (refused if the config differs).
    #[arg(long)]
    pub resume: bool,
    /// Save a checkpoint every this many batches (0: never).
    #[arg(long, default_value_t = 50)]
    pub checkpoint_every: usize,
}

/// `{out_dir}/shards/shard_{i}_of_{n}.npz`: a shard's partial counts.
pub fn shard_file(out_dir: &Path, index: usize, count: usize) -> PathBuf {
    out_dir
        .join("shards")
        .join(format!("shard_{index}_of_{count}.npz"))
}

/// The checkpoint of an unsharded run or of one shard.
fn checkpoint_file(out_dir: &Path, shard: Option<Shard>) -> PathBuf {
    match shard {
        Some(s) => out_dir
            .join("shards")
            .join(format!("checkpoint_{}_of_{}.npz", s.index, s.count)),
        None => out_dir.join("checkpoint.npz"),
    }
}

/// Identifies a run: config, SAE and the shard split (`extra`).
fn run_fingerprint(config: &Config, sae_id: &str, extra: &str) -> Result<String> {
    let mut c = config.clone();
    c.run.results_dir = PathBuf::new();
    Ok(state::fingerprint(&format!(
        "{}|{sae_id}|{extra}",
        serde_json::to_string(&c)?
    )))
}

/// Tells the partial counts of a split into `count` shards apart.
fn shards_fingerprint(config: &Config, sae_id: &str, count: usize) -> Result<String> {
    run_fingerprint(config, sae_id, &format!("{count} shards"))
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
    let hub = Hub::from_env(!options.common.quiet)?;
    let device =
        crate::activations::open_device(options.common.device.unwrap_or(config.run.device))?;
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
        .common
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

    let mut stream = inputs.runner.stream(
        sources,
        config.run.prompts_per_batch,
        g.remove_special_tokens,
    )?;
    let center = inputs.runner.centred;
    let cuts: Vec<Vec<f32>> = g
        .activation_thresholds
        .iter()
        .map(|&t| threshold_cut(t, &inputs.sae.threshold))
        .collect();
    let d_sae = inputs.sae.cfg.d_sae;
    let storage = pair_storage(&config.run, d_sae, cuts.len())?;
    let mut counters: Vec<CoocCounts> = cuts
        .iter()
        .map(|_| CoocCounts::with_storage(d_sae, storage))
        .collect();
    let encode_rows = encode_chunk_rows(d_sae);

    let target = config.tokens_to_count();
    let rule = BatchRule::of(config);
    let shard = options.shard;
    let checkpoint = checkpoint_file(&out_dir, shard);
    let run_id = match shard {
        Some(s) => run_fingerprint(config, sae_id, &format!("shard {}/{}", s.index, s.count))?,
        None => run_fingerprint(config, sae_id, "")?,
    };
    // Tokens and batches counted over all shards: the budget and the stopping point are
    // global, so the shards of a split count exactly the tokens of the unsharded run.
    let mut counted_global = 0u64;
    let mut batches = 0u64;
    if options.resume && checkpoint.is_file() {
        let (saved, position) =
            state::load_checked(&checkpoint, counters.len(), inputs.sae.cfg.d_sae, &run_id)?;
        counters = saved;
        counted_global = position.counted_global;
        batches = position.batches;
        timed(&mut timings.tokenize_s, || {
            stream.skip_windows(position.windows_read)
        })?;
        if !options.common.quiet {
            eprintln!(
                "resuming from {} ({} windows, {counted_global} tokens)",
                checkpoint.display(),
                position.windows_read
            );
        }
    } else if options.resume && !options.common.quiet {
        eprintln!(
            "no checkpoint at {}: starting from the beginning",
            checkpoint.display()
        );
    }
    let bar = match rule {
        BatchRule::FirstTokens => {
            crate::progress::bar(target, options.common.quiet, sae_id, "tokens")
        }
        BatchRule::SpecialRemoved => {
            crate::progress::bar(g.n_batches as u64, options.common.quiet, sae_id, "batches")
        }
    };
    while !rule.done(config, counted_global, batches) {
        let budget = rule.budget(config, counted_global);
        let Some(mut batch) = timed(&mut timings.tokenize_s, || stream.next_batch(budget))? else {
            break;
        };
        counted_global += batch.positions.len() as u64;
        batches += 1;
        if let Some(s) = shard {
            batch.retain_windows(|w| w % s.count as u64 == s.index as u64);
        }
        if !batch.positions.is_empty() {
            let resid = timed(&mut timings.forward_s, || {
                inputs.runner.batch_residual(&batch, device)
            })?;
            // The input scaling of `expected_average_only_in` SAEs is set from the whole first
            // batch; wide SAEs are then encoded a slice of rows at a time.
            inputs.sae.calibrate_normalization(&resid)?;
            let n = batch.positions.len();
            for start in (0..n).step_by(encode_rows) {
                let rows = encode_rows.min(n - start);
                let acts = timed(&mut timings.encode_s, || {
                    inputs.encode(&resid.narrow(0, start, rows)?)
                })?;
                timed(&mut timings.count_s, || {
                    for (counter, cut) in counters.iter_mut().zip(&cuts) {
                        counter.add_batch(&acts, cut).map_err(|nan| {
                            let row = &acts[nan.row * d_sae..(nan.row + 1) * d_sae];
                            let value = row.iter().copied().find(|v| !v.is_finite());
                            batch.non_finite(
                                start + nan.row,
                                value.unwrap_or(f32::NAN),
                                "SAE activation",
                            )
                        })?;
                    }
                    Ok(())
                })?;
            }
        }
        bar.set_position(match rule {
            BatchRule::FirstTokens => counted_global,
            BatchRule::SpecialRemoved => batches,
        });
        if options.checkpoint_every > 0
            && batches % options.checkpoint_every as u64 == 0
            && !rule.done(config, counted_global, batches)
        {
            let position = state::Position {
                fingerprint: run_id.clone(),
                counted_global,
                batches,
                windows_read: stream.windows_read(),
                complete: false,
                data_exhausted: false,
            };
            timed(&mut timings.write_s, || {
                state::save(&checkpoint, &mut counters, &position)
            })?;
        }
    }
    bar.finish_and_clear();
    let counted = counted_global;
    ensure!(counted > 0, "dataset {} yielded no tokens to count (is it empty, or shorter than one window of {} tokens?)", inputs.runner.dataset.describe(), inputs.runner.context_size);
    let data_exhausted = !rule.done(config, counted, batches);
    if data_exhausted && !options.common.quiet {
        eprintln!(
            "warning: the data ran out after {counted} tokens in {batches} of {} batches ({} windows); results record the true count",
            g.n_batches,
            stream.windows_read()
        );
    }
    if let Some(s) = shard {
        let position = state::Position {
            fingerprint: shards_fingerprint(config, sae_id, s.count)?,
            counted_global,
            batches,
            windows_read: stream.windows_read(),
            complete: true,
            data_exhausted,
        };
        let path = shard_file(&out_dir, s.index, s.count);
        state::save(&path, &mut counters, &position)?;
        let _ = std::fs::remove_file(&checkpoint);
        let mine = counters.first().map_or(0, |c| c.tokens());
        return Ok(RunSummary {
            sae_id: sae_id.to_string(),
            out_dir: path,
            tokens_counted: mine,
            tokens_per_second: mine as f64 / started.elapsed().as_secs_f64().max(1e-9),
        });
    }

    let thresholds = timed(&mut timings.write_s, || {
        write_outputs(
            &out_dir,
            &g.activation_thresholds,
            &mut counters,
            config.run.matrix_format,
        )
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
            centring_rule: inputs.runner.centring_rule,
            topk_selection: inputs.sae.selection_rule(),
        },
        dataset: inputs.runner.dataset.describe(),
        context_size: inputs.runner.context_size,
        window_tokens: inputs.runner.window_tokens,
        batch_rule: rule,
        windows_read: stream.windows_read(),
        batches_counted: batches,
        tokens_requested: target,
        tokens_counted: counted,
        data_exhausted,
        thresholds,
        timings,
        elapsed_s: elapsed,
        tokens_per_second,
        config: config.clone(),
    };
    let json = serde_json::to_vec_pretty(&manifest)?;
    crate::atomic::write_bytes(&out_dir.join("run.json"), &json)?;
    let _ = std::fs::remove_file(&checkpoint);
    Ok(RunSummary {
        sae_id: sae_id.to_string(),
        out_dir,
        tokens_counted: counted,
        tokens_per_second,
    })
}

/// `run.json` of a merged run.
#[derive(Serialize)]
struct MergeManifest {
    tool: &'static str,
    version: &'static str,
    sae_id: String,
    shards: usize,
    batch_rule: BatchRule,
    windows_read: u64,
    batches_counted: u64,
    tokens_requested: u64,
    tokens_counted: u64,
    data_exhausted: bool,
    thresholds: Vec<ThresholdStats>,
    config: Config,
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
        let manifest = MergeManifest {
            tool: "saecooc",
            version: env!("CARGO_PKG_VERSION"),
            sae_id: sae_id.clone(),
            shards,
            batch_rule: BatchRule::of(config),
            windows_read: position.windows_read,
            batches_counted: position.batches,
            tokens_requested: config.tokens_to_count(),
            tokens_counted: counters[0].tokens(),
            data_exhausted: position.data_exhausted,
            thresholds,
            config: config.clone(),
        };
        crate::atomic::write_bytes(
            &dir.join("run.json"),
            &serde_json::to_vec_pretty(&manifest)?,
        )?;
        out.push(RunSummary {
            sae_id: sae_id.clone(),
            out_dir: dir,
            tokens_counted: counters[0].tokens(),
            tokens_per_second: 0.0,
        });
    }
    Ok(out)
}

/// Which tokens make up the `n_batches` batches that are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum BatchRule {
    /// The first `n_batches × tokens_per_batch` tokens of the window stream, read
    /// `prompts_per_batch` windows at a time (the original drew them from an unseeded shuffle
    /// buffer, which cannot be reproduced; saecooc reads them in order).
    FirstTokens,
    /// The original's batch with special tokens removed: the next `prompts_per_batch` windows,
    /// special-token positions dropped in row-major order, then the first `tokens_per_batch`
    /// positions kept (GPT-2 at context 128: at most 8 × 127 = 1,016 tokens).
    SpecialRemoved,
}

impl BatchRule {
    fn of(config: &Config) -> Self {
        if config.generation.remove_special_tokens {
            Self::SpecialRemoved
        } else {
            Self::FirstTokens
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

/// Bytes of SAE activations encoded at once. Kept under glibc's largest mmap threshold (32 MiB)
/// so the encoder's temporaries are reused from the heap instead of being mapped and
/// page-faulted afresh for every slice, which cost more than the encode itself at 65,536
/// latents.
const ENCODE_CHUNK_BYTES: usize = 16 << 20;

/// Rows of activations to encode at once for an SAE of `d_sae` latents: at least 64, so the
/// encoder's matmul stays efficient for the widest SAEs.
fn encode_chunk_rows(d_sae: usize) -> usize {
    (ENCODE_CHUNK_BYTES / (4 * d_sae.max(1))).max(64)
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

/// Writes the three npz files per threshold (count and Jaccard matrices dense or CSR as
/// `format` says); returns each threshold's statistics for run.json.
fn write_outputs(
    dir: &Path,
    thresholds: &[f64],
    counters: &mut [CoocCounts],
    format: MatrixFormat,
) -> Result<Vec<ThresholdStats>> {
    let mut stats = Vec::new();
    for (&t, counts) in thresholds.iter().zip(counters) {
        counts.flush();
        let n = counts.n_latents();
        let diag: Vec<f32> = counts.diagonal().iter().map(|&c| c as f32).collect();
        let total = cooc_file(dir, CoocKind::Total, t);
        let jaccard_file = cooc_file(dir, CoocKind::Jaccard, t);
        if format.is_csr(n) {
            write_csr_matrices(&counts.symmetric(), &diag, &total, &jaccard_file)?;
        } else {
            let rows = counts.rows();
            let mut w = NpzWriter::create(&total, true)?;
            w.add_f32_rows("arr_0", n, n, |i, row| rows.fill_row(i, row))?;
            w.finish()?;
            let mut w = NpzWriter::create(&jaccard_file, true)?;
            w.add_f32_rows("arr_0", n, n, |i, row| jaccard_row(&rows, &diag, i, row))?;
            w.finish()?;
        }
        let activations = cooc_file(dir, CoocKind::Activations, t);
        crate::npz::save_f32_compressed(&activations, &[n], &diag)?;
        let files = [total, jaccard_file, activations]
            .iter()
            .map(|p| {
                p.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        stats.push(ThresholdStats::new(t, counts, files));
    }
    Ok(stats)
}

/// Writes C and J as scipy CSR float32 matrices with the same non-zero pattern (J is zero
/// exactly where C is).
fn write_csr_matrices(
    counts: &sparse::CountCsr,
    diag: &[f32],
    total: &Path,
    jaccard_file: &Path,
) -> Result<()> {
    let n = counts.n;
    crate::npz::write_csr(total, n, &counts.indptr, |i, cols, values| {
        let (c, k) = counts.row(i);
        cols.extend_from_slice(c);
        values.extend(k.iter().map(|&x| x as f32));
    })?;
    crate::npz::write_csr(jaccard_file, n, &counts.indptr, |i, cols, values| {
        let (c, k) = counts.row(i);
        cols.extend_from_slice(c);
        values.extend(
            c.iter()
                .zip(k)
                .map(|(&j, &x)| jaccard(x as f32, diag[i], diag[j as usize])),
        );
    })
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
    /// What starts each window and what separates documents inside one.
    window_tokens: crate::data::WindowTokens,
    /// Which tokens make a batch (see [`BatchRule`]).
    batch_rule: BatchRule,
    windows_read: u64,
    batches_counted: u64,
    /// `n_batches × tokens_per_batch`: exact for `first_tokens`, an upper bound for
    /// `special_removed`.
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
    /// What decided `residual_centred`: "model layer norm", "SAE cfg" or "[source] override".
    centring_rule: crate::sources::CentringRule,
    /// TopK SAEs: whether the k latents are chosen on "unscaled" or "decoder-norm-scaled"
    /// pre-activations (the SAE cfg's `rescale_acts_by_decoder_norm`); absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    topk_selection: Option<&'static str>,
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
