//! The activation stream shared by `cooc`, `pca`, `stats` and `train-sae`: token windows in
//! batches, the positions of them that are read, the residual stream at a hook and SAE
//! activations.
//!
//! Loads what one SAE needs (model up to its hook, tokenizer, special tokens, window length,
//! dataset) and streams deterministic [`Batch`]es: `prompts_per_batch` windows each, special
//! tokens dropped when asked (one rule, [`ActivationStream`]), then turns a batch into SAE
//! activations: residual stream at the hook (centred per position for LayerNorm models, as
//! TransformerLens does; see [`crate::inputs::decide_centring`]), then the folded SAE's
//! encoder. A non-finite value is an error naming its window and position
//! ([`Batch::non_finite`]), in every stage.

mod device_cuts;
mod sweep;

pub use device_cuts::{ActiveBits, DeviceCuts};
pub use sweep::{batch_residuals, load_sweep, stream_groups};

use crate::data::{TokenSpec, WindowStream, WindowTokens};
use crate::hub::Location;
use crate::inputs::{bos_id, CentringRule, ResolvedRun};
use crate::model::{self, HookPoint, ResidualModel};
use crate::sae::Sae;
use anyhow::{ensure, Context, Result};
use candle_core::{DType, Device, Tensor};
use std::sync::Arc;

/// One batch of the stream: consecutive windows and the positions of them that are read.
#[derive(Debug, Clone)]
pub struct Batch {
    /// Index of the batch's first window in the data.
    pub first_window: u64,
    /// The windows' token ids.
    pub windows: Vec<Vec<u32>>,
    /// The positions read, flat (row-major over `[window, position]`), ascending.
    pub positions: Vec<u32>,
    /// The token id at each read position.
    pub tokens: Vec<u32>,
    context_size: usize,
}

impl Batch {
    /// The window (in the data) and position of flat position `flat`.
    pub fn locate(&self, flat: u32) -> (u64, usize) {
        let flat = flat as usize;
        (
            self.first_window + (flat / self.context_size) as u64,
            flat % self.context_size,
        )
    }

    /// A batch reading every position of `windows` (of `context_size` tokens), for tests.
    #[cfg(test)]
    pub(crate) fn every_position(
        first_window: u64,
        windows: Vec<Vec<u32>>,
        context_size: usize,
    ) -> Self {
        let (positions, tokens) = read_positions(&windows, false, &[], u64::MAX);
        Self {
            first_window,
            windows,
            positions,
            tokens,
            context_size,
        }
    }

    /// The error for a non-finite `value` in `what` of read position number `row`.
    pub fn non_finite(&self, row: usize, value: f32, what: &str) -> anyhow::Error {
        let (window, position) = self.locate(self.positions[row]);
        anyhow::anyhow!(
            "{what} is {value} at window {window} position {position} (token id {}): the model or SAE produced non-finite values",
            self.tokens[row]
        )
    }

    /// Checks `values`, rows of `width` for read positions `first_row..`, for non-finite values.
    pub fn ensure_finite(
        &self,
        values: &[f32],
        width: usize,
        first_row: usize,
        what: &str,
    ) -> Result<()> {
        match values.iter().position(|v| !v.is_finite()) {
            Some(i) => Err(self.non_finite(first_row + i / width, values[i], what)),
            None => Ok(()),
        }
    }

    /// Keeps only the read positions whose window (index in the data) passes `keep`.
    pub fn retain_windows(&mut self, keep: impl Fn(u64) -> bool) {
        let (first, ctx) = (self.first_window, self.context_size as u64);
        let (positions, tokens) = self
            .positions
            .iter()
            .zip(&self.tokens)
            .filter(|(&p, _)| keep(first + p as u64 / ctx))
            .map(|(&p, &t)| (p, t))
            .unzip();
        self.positions = positions;
        self.tokens = tokens;
    }

    /// All token ids of the batch, window after window.
    pub fn all_tokens(&self) -> Vec<u32> {
        self.windows.concat()
    }
}

/// Token windows in batches of `prompts` windows, read positions chosen by one rule: every
/// position, or (when `remove_special`) every position whose token is not special (the model's
/// BOS, EOS and PAD), in row-major order, at most the budget given per batch.
pub struct ActivationStream<'h> {
    windows: WindowStream<'h>,
    prompts: usize,
    remove_special: bool,
    special: Vec<u32>,
    context_size: usize,
}

impl ActivationStream<'_> {
    /// The local dataset files not yet read, in reading order (see [`WindowStream::dataset_files`]).
    pub fn dataset_files(&self) -> Vec<std::path::PathBuf> {
        self.windows.dataset_files()
    }

    /// The next batch with at most `budget` read positions, or None at the end of the data.
    pub fn next_batch(&mut self, budget: u64) -> Result<Option<Batch>> {
        let windows = self.windows.next_windows(self.prompts)?;
        if windows.is_empty() {
            return Ok(None);
        }
        let (positions, tokens) =
            read_positions(&windows, self.remove_special, &self.special, budget);
        Ok(Some(Batch {
            first_window: self.windows.windows_read - windows.len() as u64,
            windows,
            positions,
            tokens,
            context_size: self.context_size,
        }))
    }

    /// Windows read from the data so far.
    pub fn windows_read(&self) -> u64 {
        self.windows.windows_read
    }

    /// Reads and drops `n` windows (to resume at a saved position).
    pub fn skip_windows(&mut self, n: u64) -> Result<()> {
        self.windows.skip(n)
    }
}

/// Flat positions (row-major over `[windows, context]`) to read and their token ids, dropping
/// special tokens when asked and keeping at most `budget`.
fn read_positions(
    windows: &[Vec<u32>],
    remove_special: bool,
    special: &[u32],
    budget: u64,
) -> (Vec<u32>, Vec<u32>) {
    let mut positions = Vec::new();
    let mut tokens = Vec::new();
    for (p, &tok) in windows.iter().flatten().enumerate() {
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

/// A language model up to a hook, with its tokenizer and dataset: token windows in, residual
/// stream out. The model may run further than the hook and be shared by the runners of a
/// sweep, which read their hooks from one forward pass ([`batch_residuals`]).
pub struct ModelRunner {
    pub model: Arc<dyn ResidualModel>,
    /// The hook this runner reads.
    pub hook: HookPoint,
    pub model_source: String,
    pub tokenizer: tokenizers::Tokenizer,
    /// BOS/EOS/PAD ids from the model's `config.json`.
    pub special: Vec<u32>,
    pub bos: u32,
    pub context_size: usize,
    /// What starts a window and what separates documents inside one.
    pub window_tokens: WindowTokens,
    pub dataset: Location,
    /// Whether the residual stream is centred per position (TransformerLens'
    /// `center_writing_weights` on a LayerNorm model).
    pub centred: bool,
    /// What decided `centred`.
    pub centring_rule: CentringRule,
    /// Whether the activations are TransformerLens' processed ones (`centred` at the hooks it
    /// centres, the value bias folded out of `hook_z`; see [`model::transformer_lens_view`]).
    pub transformer_lens_processing: bool,
}

impl ModelRunner {
    /// Loads the model up to `hook`; `sae_centring` is what the SAE's cfg.json says about
    /// centring (None: nothing), decided with the model's normalisation and `[source]` by
    /// [`ResolvedRun::centring`]; `context_size` and `prepend_bos` are the SAE's unless `[run]`
    /// overrides them.
    pub fn load(
        run: &ResolvedRun,
        hook: HookPoint,
        sae_centring: Option<bool>,
        context_size: Option<usize>,
        prepend_bos: Option<bool>,
        dataset: Location,
    ) -> Result<Self> {
        let dtype = run.spec.run.dtype.on(&run.device)?;
        let model = model::load_model_as(&run.model, hook, &run.device, dtype)?;
        let reads = HookReads {
            hook,
            sae_centring,
            context_size,
            prepend_bos,
        };
        Self::with_model(run, Arc::from(model), reads, dataset)
    }

    /// A runner reading `reads.hook` of `model` (loaded at least that far, possibly shared),
    /// decided as [`ModelRunner::load`] decides.
    pub fn with_model(
        run: &ResolvedRun,
        model: Arc<dyn ResidualModel>,
        reads: HookReads,
        dataset: Location,
    ) -> Result<Self> {
        let HookReads {
            hook,
            sae_centring,
            context_size,
            prepend_bos,
        } = reads;
        let files = &run.model;
        let centring = run.centring(model.uses_layer_norm(), sae_centring, &files.source)?;
        let tokenizer = run.tokenizer.clone();
        run.check_token_ids(model.token_embeddings().dim(0)?)?;
        let bos = bos_id(files, &tokenizer)?;
        let window_tokens =
            window_tokens(&run.spec.run, prepend_bos, bos, files.special_tokens()?.eos)?;
        let context_size = run.spec.run.context_size.or(context_size).unwrap_or(128);
        ensure!(
            context_size <= model.max_positions(),
            "context_size {context_size} is longer than the model's {} positions",
            model.max_positions()
        );
        run.spec.run.check_forward(context_size, model.d_model())?;
        Ok(Self {
            dataset,
            hook,
            special: files.special_tokens()?.ids(),
            model_source: files.source.clone(),
            // hook_z and the MLP's input are read before any writing weight: never centred.
            centred: centring.centred && hook.in_written_stream(),
            centring_rule: centring.rule,
            transformer_lens_processing: centring.centred,
            model,
            tokenizer,
            bos,
            context_size,
            window_tokens,
        })
    }

    /// Width of the activations at the hook.
    pub fn width(&self) -> usize {
        self.model.width_at(self.hook)
    }

    /// Whether `other` reads the same windows of the same model as this runner (same model,
    /// dataset, window length and window tokens), so one forward pass serves both.
    pub fn shares_stream_with(&self, other: &ModelRunner) -> bool {
        Arc::ptr_eq(&self.model, &other.model)
            && self.dataset == other.dataset
            && self.context_size == other.context_size
            && self.window_tokens == other.window_tokens
    }

    /// The dataset's windows, from the start.
    pub fn windows<'h>(&self, run: &'h ResolvedRun) -> Result<WindowStream<'h>> {
        Ok(WindowStream::new(
            run.open_documents(&self.dataset)?,
            self.tokenizer.clone(),
            self.context_size,
            self.window_tokens,
        ))
    }

    /// The dataset's activation stream from the start: batches of `prompts` windows,
    /// special-token positions dropped when `remove_special`.
    pub fn stream<'h>(
        &self,
        run: &'h ResolvedRun,
        prompts: usize,
        remove_special: bool,
    ) -> Result<ActivationStream<'h>> {
        Ok(ActivationStream {
            windows: self.windows(run)?,
            prompts,
            remove_special,
            special: self.special.clone(),
            context_size: self.context_size,
        })
    }

    /// The residual stream at the hook for the read positions of `batch`:
    /// `[positions, d_model]`. A non-finite value is an error naming its window and position
    /// (an SAE's ReLU would otherwise turn NaN into a silent zero).
    pub fn batch_residual(&self, batch: &Batch, device: &Device) -> Result<Tensor> {
        let resid = self.residual(&batch.windows, &batch.positions, device)?;
        self.check_finite(&resid, batch)?;
        Ok(resid)
    }

    /// Refuses a non-finite value in `resid`, read at `batch`'s positions, naming its window
    /// and position. One sum tells whether a full scan is needed (a finite sum can only come
    /// from finite values; an overflowing one is rescanned and passes).
    fn check_finite(&self, resid: &Tensor, batch: &Batch) -> Result<()> {
        if !resid.sum_all()?.to_scalar::<f32>()?.is_finite() {
            let host = resid.flatten_all()?.to_vec1::<f32>()?;
            batch.ensure_finite(&host, self.width(), 0, "residual stream")?;
        }
        Ok(())
    }

    /// The residual stream at the hook for `positions` (flat, row-major over `[windows, len]`)
    /// of `windows`, token sequences of one length `len`: the context size for the dataset's
    /// windows, any length up to the model's positions for a user's prompt. `[positions,
    /// d_model]`, in f32 whatever the model's dtype, centred per position when the run centres.
    pub fn residual(
        &self,
        windows: &[Vec<u32>],
        positions: &[u32],
        device: &Device,
    ) -> Result<Tensor> {
        let mut read = residuals(&[self], windows, positions, device)?;
        Ok(read.remove(0))
    }
}

/// What a runner reads and what its SAE says about reading it.
#[derive(Debug, Clone, Copy)]
pub struct HookReads {
    pub hook: HookPoint,
    /// What the SAE's cfg.json says about centring (None: nothing).
    pub sae_centring: Option<bool>,
    /// The SAE's context size and `prepend_bos` (`[run]` overrides both).
    pub context_size: Option<usize>,
    pub prepend_bos: Option<bool>,
}

/// The activations each of `runners` reads at `positions` of `windows` (see
/// [`ModelRunner::residual`]), from one forward pass of their shared model.
fn residuals(
    runners: &[&ModelRunner],
    windows: &[Vec<u32>],
    positions: &[u32],
    device: &Device,
) -> Result<Vec<Tensor>> {
    let model = &runners
        .first()
        .context("internal: no runner to read")?
        .model;
    let len = windows.first().map_or(0, Vec::len);
    ensure!(
        (1..=model.max_positions()).contains(&len),
        "a sequence of {len} tokens: the model takes 1 to {} positions",
        model.max_positions()
    );
    ensure!(
        windows.iter().all(|w| w.len() == len),
        "token windows of different lengths in one batch"
    );
    let ids = Tensor::new(windows.concat(), device)?.reshape((windows.len(), len))?;
    let hooks: Vec<HookPoint> = runners.iter().map(|r| r.hook).collect();
    let index = Tensor::new(positions, device)?;
    let read = model.activations_at(&ids, &hooks)?;
    runners
        .iter()
        .zip(read)
        .map(|(runner, acts)| {
            // Centring and everything after it run in f32 whatever the model's dtype.
            let acts = acts.to_dtype(DType::F32)?;
            let acts = if runner.transformer_lens_processing {
                model::transformer_lens_view_at(&*runner.model, runner.hook, &acts)?
            } else {
                acts
            };
            let flat = acts.reshape((windows.len() * len, runner.width()))?;
            Ok(flat.index_select(&index, 0)?)
        })
        .collect()
}

/// The window tokens of a run: BOS at each window start unless `[run] prepend_bos` or the
/// SAE's `prepend_bos` says otherwise; the separator from `[run] sequence_separator`, else BOS
/// when windows start with BOS and none when they don't.
fn window_tokens(
    run: &crate::config::Run,
    sae_prepend_bos: Option<bool>,
    bos: u32,
    eos: Option<u32>,
) -> Result<WindowTokens> {
    let prepend_bos = run.prepend_bos.or(sae_prepend_bos).unwrap_or(true);
    let separator = run.sequence_separator.unwrap_or(if prepend_bos {
        TokenSpec::Bos
    } else {
        TokenSpec::Nothing
    });
    Ok(WindowTokens {
        begin: prepend_bos.then_some(bos),
        separator: separator
            .resolve(bos, eos)
            .context("[run] sequence_separator = \"eos\"")?,
    })
}

/// A [`ModelRunner`] and the SAE that reads its hook (SAELens' vocabulary: the model run to the
/// hook, then the SAE).
pub struct HookedSae {
    pub runner: ModelRunner,
    pub sae: Sae,
}

impl HookedSae {
    /// Loads the SAE `sae_id`, then the model up to its hook, and checks the widths agree.
    pub fn load(run: &ResolvedRun, sae_id: &str) -> Result<Self> {
        let mut one = load_sweep(run, &[sae_id.to_string()])?;
        Ok(one.remove(0))
    }

    /// `sae` reading `runner`'s hook, refused when the widths disagree.
    fn pair(runner: ModelRunner, sae: Sae) -> Result<Self> {
        ensure!(
            sae.cfg.d_in == runner.width(),
            "SAE {} has d_in = {} but model {} has width {} at {}",
            sae.source,
            sae.cfg.d_in,
            runner.model_source,
            runner.width(),
            runner.hook
        );
        Ok(Self { runner, sae })
    }

    /// SAE activations of residual rows, on the host, row-major `[rows, d_sae]`.
    pub fn encode(&mut self, resid: &Tensor) -> Result<Vec<f32>> {
        let mut acts = Vec::new();
        self.encode_into(resid, &mut acts)?;
        Ok(acts)
    }

    /// [`HookedSae::encode`] into `acts` (resized, its allocation reused).
    pub fn encode_into(&mut self, resid: &Tensor, acts: &mut Vec<f32>) -> Result<()> {
        self.sae.calibrate_normalization(resid)?;
        self.sae.encode_into(resid, acts)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(windows: Vec<Vec<u32>>, remove_special: bool, budget: u64) -> Batch {
        let (positions, tokens) = read_positions(&windows, remove_special, &[50256], budget);
        Batch {
            first_window: 10,
            windows,
            positions,
            tokens,
            context_size: 4,
        }
    }

    #[test]
    fn special_positions_are_dropped_and_the_budget_respected() {
        let windows = vec![vec![50256, 10, 11, 50256], vec![50256, 12, 13, 14]];
        let b = batch(windows.clone(), true, 100);
        assert_eq!(b.positions, vec![1, 2, 5, 6, 7]);
        assert_eq!(b.tokens, vec![10, 11, 12, 13, 14]);
        assert_eq!(
            batch(windows.clone(), false, 100).positions,
            (0..8).collect::<Vec<u32>>()
        );
        let b = batch(windows, true, 3);
        assert_eq!(b.positions, vec![1, 2, 5]);
        assert_eq!(b.tokens, vec![10, 11, 12]);
    }

    #[test]
    fn positions_are_located_and_non_finite_values_named() {
        let windows = vec![vec![50256, 10, 11, 50256], vec![50256, 12, 13, 14]];
        let mut b = batch(windows, true, 100);
        assert_eq!(b.locate(6), (11, 2));
        let err = b
            .ensure_finite(&[0.0, 1.0, 2.0, 3.0, f32::NAN, 5.0], 2, 1, "SAE activation")
            .unwrap_err()
            .to_string();
        // Value 4 is row 2 of these, read position 1 + 2 = 3: flat 6, window 11, position 2.
        assert!(
            err.contains("SAE activation is NaN at window 11 position 2 (token id 13)"),
            "{err}"
        );
        assert!(b.ensure_finite(&[0.0, 1.0], 2, 0, "x").is_ok());
        // Shards keep whole windows.
        b.retain_windows(|w| w % 2 == 1);
        assert_eq!(b.positions, vec![5, 6, 7]);
        assert_eq!(b.tokens, vec![12, 13, 14]);
    }
}
