//! `saecooc train-sae`: train a sparse autoencoder on the residual stream at a hook and save it
//! in SAELens format (`cfg.json` + `sae_weights.safetensors`), so `cooc` and SAELens load it.
//!
//! Architectures as SAELens trains them: standard (ReLU, loss = ‖x − x̂‖² summed over d_in +
//! λ · Σᵢ actᵢ · ‖W_dec,i‖, the L1 penalty scaled by decoder norms) or TopK (only the k largest
//! pre-activations kept, loss = ‖x − x̂‖²). Adam (β 0.9/0.999, no weight decay), W_enc
//! initialised as W_dec transposed, b_dec as the mean of the first buffer. Activations stream
//! through a shuffled buffer; special-token positions are dropped (unless
//! `--keep-special-tokens`), as `cooc` drops them with `remove_special_tokens`.

use crate::activations::{ActivationStream, ModelRunner};
use crate::config::{check_finite, check_range, check_tensor_size, Config, DeviceKind};
use crate::hub::Location;
use crate::inputs::{resolve, InputSpec, ResolveOptions};
use crate::model::HookPoint;
use crate::results::layout::{SAE_CFG_JSON, SAE_WEIGHTS, TRAINING_JSON};
use crate::results::manifest::{RunInfo, RunStart};
use crate::results::out_folder::{OutFolder, OUT_MANIFEST};
use anyhow::{bail, ensure, Context, Result};
use candle_core::{DType, Device, Tensor, Var, D};
use candle_nn::optim::{AdamW, Optimizer, ParamsAdamW};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use std::ops::Bound;
use std::path::PathBuf;
use std::time::Instant;

/// The SAE architecture to train.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub enum TrainArchitecture {
    /// ReLU with an L1 penalty of this coefficient (scaled by decoder norms).
    Standard { l1_coefficient: f64 },
    /// The k largest pre-activations.
    TopK { k: usize },
}

/// What to train, and how.
#[derive(Debug, Clone, Serialize)]
pub struct TrainOptions {
    pub hook: String,
    pub d_sae: usize,
    pub architecture: TrainArchitecture,
    pub learning_rate: f64,
    /// Training tokens (after special-token removal).
    pub tokens: u64,
    pub batch_tokens: usize,
    /// Tokens held in the shuffle buffer.
    pub buffer_tokens: usize,
    /// Passes over each buffer before it is refilled (more steps per forward pass).
    pub buffer_passes: usize,
    /// Tokens after the training data, for the held-out explained variance.
    pub heldout_tokens: usize,
    /// The SAE folder to write (`cfg.json`, `sae_weights.safetensors`, `training.json`).
    pub out: PathBuf,
    pub seed: u64,
    /// Train on special-token positions too (by default they are dropped, as `cooc` drops them
    /// with `remove_special_tokens`).
    pub keep_special_tokens: bool,
}

/// The widest SAE `train-sae` makes (16M latents, the widest published).
const MAX_D_SAE: usize = 1 << 24;
/// The most training tokens (about a trillion).
const MAX_TOKENS: u64 = 1 << 40;
/// The most tokens in one step, in the shuffle buffer and held out.
const MAX_BATCH_TOKENS: usize = 1 << 20;
const MAX_BUFFER_TOKENS: usize = 1 << 26;
const MAX_HELDOUT_TOKENS: usize = 1 << 24;
/// The most passes over one buffer.
const MAX_BUFFER_PASSES: usize = 1000;

impl TrainOptions {
    /// Range checks of the options (the `train-sae` flags), before anything is loaded.
    pub fn validate(&self) -> Result<()> {
        check_range("--d-sae", self.d_sae, 1..=MAX_D_SAE)?;
        match self.architecture {
            TrainArchitecture::TopK { k } => check_range("--k", k, 1..=self.d_sae)?,
            TrainArchitecture::Standard { l1_coefficient } => {
                check_finite("--l1-coefficient", l1_coefficient, 0.0..)?
            }
        }
        check_finite(
            "--lr",
            self.learning_rate,
            (Bound::Excluded(0.0), Bound::Included(1.0)),
        )?;
        check_range("--tokens", self.tokens, 1..=MAX_TOKENS)?;
        check_range("--batch-tokens", self.batch_tokens, 1..=MAX_BATCH_TOKENS)?;
        check_range("--buffer-tokens", self.buffer_tokens, 1..=MAX_BUFFER_TOKENS)?;
        ensure!(
            self.buffer_tokens >= self.batch_tokens,
            "--buffer-tokens {} is less than --batch-tokens {}: the buffer must hold a step",
            self.buffer_tokens,
            self.batch_tokens
        );
        check_range("--buffer-passes", self.buffer_passes, 1..=MAX_BUFFER_PASSES)?;
        check_range(
            "--heldout-tokens",
            self.heldout_tokens,
            ..=MAX_HELDOUT_TOKENS,
        )
    }

    /// Checks the tensors training makes on a `d_in`-wide residual stream.
    fn check_sizes(&self, d_in: usize) -> Result<()> {
        for (what, dims) in [
            ("the encoder (d_in × --d-sae)", [d_in, self.d_sae]),
            (
                "one step's latents (--batch-tokens × --d-sae)",
                [self.batch_tokens, self.d_sae],
            ),
            (
                "the held-out latents (--heldout-tokens × --d-sae)",
                [self.heldout_tokens, self.d_sae],
            ),
            (
                "the shuffle buffer (--buffer-tokens × d_in)",
                [self.buffer_tokens, d_in],
            ),
        ] {
            check_tensor_size(what, &dims)?;
        }
        Ok(())
    }
}

/// Training outcome, also written as `training.json`.
#[derive(Debug, Clone, Serialize)]
pub struct TrainReport {
    pub hook: String,
    pub d_in: usize,
    pub d_sae: usize,
    pub architecture: TrainArchitecture,
    pub steps: usize,
    pub tokens: u64,
    /// Means over the last 10% of steps.
    pub train_loss: f64,
    pub train_l0: f64,
    pub train_explained_variance: f64,
    pub heldout_tokens: usize,
    pub heldout_explained_variance: f64,
    pub heldout_l0: f64,
    /// Latents that never fired on the held-out tokens.
    pub dead_latents: usize,
    pub seconds: f64,
    pub tokens_per_second: f64,
    /// How, when and by which build the SAE was trained, with its settings.
    pub run_info: Option<RunInfo>,
}

/// The trainable parameters.
struct Params {
    w_enc: Var,
    b_enc: Var,
    w_dec: Var,
    b_dec: Var,
}

/// Forward pass: (latent activations, reconstruction).
fn forward(
    p: &Params,
    x: &Tensor,
    arch: TrainArchitecture,
) -> candle_core::Result<(Tensor, Tensor)> {
    let pre = x
        .broadcast_sub(p.b_dec.as_tensor())?
        .matmul(p.w_enc.as_tensor())?
        .broadcast_add(p.b_enc.as_tensor())?;
    let acts = match arch {
        TrainArchitecture::Standard { .. } => pre.relu()?,
        TrainArchitecture::TopK { k } => {
            let (sorted, _) = pre.sort_last_dim(false)?;
            let kth = sorted.narrow(D::Minus1, k - 1, 1)?;
            let keep = pre.broadcast_ge(&kth)?.to_dtype(DType::F32)?;
            (pre.relu()? * keep)?
        }
    };
    let recon = acts
        .matmul(p.w_dec.as_tensor())?
        .broadcast_add(p.b_dec.as_tensor())?;
    Ok((acts, recon))
}

/// Per-batch statistics.
#[derive(Debug, Clone, Copy, Default)]
struct Stats {
    loss: f64,
    l0: f64,
    explained_variance: f64,
}

fn batch_stats(x: &Tensor, acts: &Tensor, recon: &Tensor, loss: f64) -> Result<Stats> {
    let residual = (x - recon)?.sqr()?.sum_all()?.to_scalar::<f32>()? as f64;
    let centred = x.broadcast_sub(&x.mean_keepdim(0)?)?;
    let total = centred.sqr()?.sum_all()?.to_scalar::<f32>()? as f64;
    let rows = x.dim(0)? as f64;
    let l0 = acts
        .gt(0f32)?
        .to_dtype(DType::F32)?
        .sum_all()?
        .to_scalar::<f32>()? as f64
        / rows;
    Ok(Stats {
        loss,
        l0,
        explained_variance: 1.0 - residual / total.max(f64::MIN_POSITIVE),
    })
}

/// Residual rows for training, read from the shared activation stream in data order.
struct ResidualRows<'a> {
    runner: &'a ModelRunner,
    stream: crate::activations::ActivationStream<'a>,
    device: &'a Device,
}

impl ResidualRows<'_> {
    /// Up to `n` residual rows `[rows, d]` on the device, in data order.
    fn take(&mut self, n: usize) -> Result<Option<Tensor>> {
        let mut parts = Vec::new();
        let mut have = 0;
        while have < n {
            let Some(batch) = self.stream.next_batch((n - have) as u64)? else {
                break;
            };
            if batch.positions.is_empty() {
                continue;
            }
            have += batch.positions.len();
            parts.push(self.runner.batch_residual(&batch, self.device)?);
        }
        if parts.is_empty() {
            return Ok(None);
        }
        Ok(Some(Tensor::cat(&parts, 0)?))
    }
}

fn init_params(
    d_in: usize,
    d_sae: usize,
    b_dec: Tensor,
    seed: u64,
    device: &Device,
) -> Result<Params> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    // Random unit-norm decoder rows scaled to 0.1, encoder = decoder transposed (SAELens).
    let mut w: Vec<f32> = (0..d_sae * d_in)
        .map(|_| rng.random::<f32>() * 2.0 - 1.0)
        .collect();
    for row in w.chunks_exact_mut(d_in) {
        let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
        row.iter_mut().for_each(|v| *v *= 0.1 / norm);
    }
    let w_dec = Tensor::from_vec(w, (d_sae, d_in), device)?;
    Ok(Params {
        w_enc: Var::from_tensor(&w_dec.t()?.contiguous()?)?,
        b_enc: Var::from_tensor(&Tensor::zeros(d_sae, DType::F32, device)?)?,
        w_dec: Var::from_tensor(&w_dec)?,
        b_dec: Var::from_tensor(&b_dec)?,
    })
}

fn loss_of(
    p: &Params,
    x: &Tensor,
    arch: TrainArchitecture,
) -> candle_core::Result<(Tensor, Tensor, Tensor)> {
    let (acts, recon) = forward(p, x, arch)?;
    let mse = (&recon - x)?.sqr()?.sum(D::Minus1)?.mean_all()?;
    let loss = match arch {
        TrainArchitecture::Standard { l1_coefficient } => {
            let norms = p.w_dec.as_tensor().sqr()?.sum(D::Minus1)?.sqrt()?;
            let l1 = acts.broadcast_mul(&norms)?.sum(D::Minus1)?.mean_all()?;
            (mse + (l1 * l1_coefficient)?)?
        }
        TrainArchitecture::TopK { .. } => mse,
    };
    Ok((loss, acts, recon))
}

/// The files `train-sae` writes into `--out` (which holds nothing else of saecooc's).
const TRAINED_FILES: [&str; 3] = [SAE_CFG_JSON, SAE_WEIGHTS, TRAINING_JSON];

/// Trains an SAE on the config's model and dataset, writes it to `options.out` (refused when
/// that folder holds one of its files that saecooc did not write; see
/// [`crate::results::out_folder`]).
/// `device` overrides `[run] device`.
pub fn run(
    config: &Config,
    options: &TrainOptions,
    device: Option<DeviceKind>,
) -> Result<TrainReport> {
    let started = Instant::now();
    let run_start = RunStart::now();
    options.validate()?;
    // Before any work: an --out folder holding an SAE that saecooc did not train is refused.
    let mut out = OutFolder::open(&options.out, OUT_MANIFEST, "train-sae", &[])?;
    out.check_writable(&TRAINED_FILES)?;
    let resolved = resolve(
        InputSpec::of_config(config).with_sae_ids(Vec::new()),
        &ResolveOptions {
            device,
            stage: None,
        },
    )?;
    let device = &resolved.device;
    let hook = HookPoint::parse(&options.hook)?;
    let dataset = config
        .source
        .dataset
        .as_deref()
        .map(|d| Location::parse(d, config.source.dataset_revision.as_deref()))
        .context("train-sae needs [source] dataset in the config")?;
    let runner = ModelRunner::load(&resolved, hook, None, None, None, dataset)?;
    let d_in = runner.width();
    options.check_sizes(d_in)?;
    config.run.check_forward(runner.context_size, d_in)?;
    let open_stream = || {
        runner.stream(
            &resolved,
            config.run.prompts_per_batch,
            !options.keep_special_tokens,
        )
    };
    let mut stream = ResidualRows {
        stream: open_stream()?,
        runner: &runner,
        device,
    };
    let buffer = stream
        .take(options.buffer_tokens)?
        .with_context(|| format!("dataset {} yielded no tokens", runner.dataset.describe()))?;
    let params = init_params(d_in, options.d_sae, buffer.mean(0)?, options.seed, device)?;
    let progress = train(&params, options, &mut stream, buffer, open_stream)?;
    // Held-out tokens: the data right after the training tokens.
    let heldout = stream.take(options.heldout_tokens)?;
    let heldout = heldout_stats(&params, heldout.as_ref(), options.architecture)?;
    out.claim(TRAINED_FILES.map(String::from))?;
    save_saelens(&params, options, &runner, d_in, config)?;
    let run_info = run_start.finish(serde_json::json!({
        "config": config,
        "options": options,
    }));
    let report = progress.report(options, d_in, heldout, started, run_info);
    crate::io::atomic::write_bytes(
        &options.out.join(TRAINING_JSON),
        &serde_json::to_vec_pretty(&report)?,
    )?;
    out.finish(TRAINED_FILES.map(String::from))?;
    Ok(report)
}

/// Trains `params` for `options.tokens` tokens, in batches drawn in shuffled order from
/// buffers of `stream`, each passed over `options.buffer_passes` times; `reopen` starts the
/// data again when it runs out.
fn train<'a>(
    params: &Params,
    options: &TrainOptions,
    stream: &mut ResidualRows<'a>,
    mut buffer: Tensor,
    reopen: impl Fn() -> Result<ActivationStream<'a>>,
) -> Result<Progress> {
    let mut trainer = Trainer::new(params, options)?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(options.seed ^ 0x5ae);
    'outer: loop {
        let order = shuffled_order(buffer.dim(0)?, options.buffer_passes, &mut rng);
        for chunk in order.chunks(options.batch_tokens) {
            if trainer.done() {
                break 'outer;
            }
            trainer.step(&buffer.index_select(&Tensor::new(chunk, stream.device)?, 0)?)?;
        }
        match stream.take(options.buffer_tokens)? {
            Some(next) => buffer = next,
            None => {
                crate::report::note(format_args!(
                    "note: the data ran out after {} tokens; reusing it",
                    trainer.progress.trained
                ));
                stream.stream = reopen()?;
            }
        }
    }
    Ok(trainer.finish())
}

/// The rows `0..rows`, shuffled once per pass, `passes` times over.
fn shuffled_order(rows: usize, passes: usize, rng: &mut impl Rng) -> Vec<u32> {
    let mut order: Vec<u32> = Vec::with_capacity(rows * passes);
    for _ in 0..passes {
        let mut pass: Vec<u32> = (0..rows as u32).collect();
        pass.shuffle(rng);
        order.extend(pass);
    }
    order
}

/// How far training got: steps and tokens trained, and the statistics of the last 10% of the
/// steps.
#[derive(Default)]
struct Progress {
    step: usize,
    trained: u64,
    recent: Vec<Stats>,
}

impl Progress {
    /// The mean of `f` over the last 10% of the steps.
    fn mean(&self, f: fn(&Stats) -> f64) -> f64 {
        self.recent.iter().map(f).sum::<f64>() / self.recent.len().max(1) as f64
    }

    /// The report of a training run that ended with `heldout`.
    fn report(
        &self,
        options: &TrainOptions,
        d_in: usize,
        heldout: Heldout,
        started: Instant,
        run_info: RunInfo,
    ) -> TrainReport {
        let seconds = started.elapsed().as_secs_f64();
        TrainReport {
            hook: options.hook.clone(),
            d_in,
            d_sae: options.d_sae,
            architecture: options.architecture,
            steps: self.step,
            tokens: self.trained,
            train_loss: self.mean(|s| s.loss),
            train_l0: self.mean(|s| s.l0),
            train_explained_variance: self.mean(|s| s.explained_variance),
            heldout_tokens: heldout.tokens,
            heldout_explained_variance: heldout.explained_variance,
            heldout_l0: heldout.l0,
            dead_latents: heldout.dead_latents,
            seconds,
            tokens_per_second: self.trained as f64 / seconds,
            run_info: Some(run_info),
        }
    }
}

/// Adam on the parameters, stepping them one batch at a time, with a progress bar.
struct Trainer<'p> {
    params: &'p Params,
    opt: AdamW,
    arch: TrainArchitecture,
    total_steps: usize,
    bar: crate::report::Bar,
    progress: Progress,
}

impl<'p> Trainer<'p> {
    fn new(params: &'p Params, options: &TrainOptions) -> Result<Self> {
        let opt = AdamW::new(
            vec![
                params.w_enc.clone(),
                params.b_enc.clone(),
                params.w_dec.clone(),
                params.b_dec.clone(),
            ],
            ParamsAdamW {
                lr: options.learning_rate,
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
                weight_decay: 0.0,
            },
        )?;
        let total_steps = (options.tokens as usize).div_ceil(options.batch_tokens);
        Ok(Self {
            params,
            opt,
            arch: options.architecture,
            total_steps,
            bar: crate::report::bar(total_steps as u64, "training", "steps"),
            progress: Progress::default(),
        })
    }

    fn done(&self) -> bool {
        self.progress.step == self.total_steps
    }

    /// One Adam step on the batch `x`; every 10th step and over the last 10% the batch's
    /// statistics are shown (and over the last 10% kept).
    fn step(&mut self, x: &Tensor) -> Result<()> {
        let (loss, acts, recon) = loss_of(self.params, x, self.arch)?;
        self.opt.backward_step(&loss)?;
        let loss = loss.to_scalar::<f32>()? as f64;
        let (step, total_steps) = (self.progress.step, self.total_steps);
        if !loss.is_finite() {
            bail!("training diverged at step {step} (loss {loss}): lower --lr");
        }
        let step = step + 1;
        self.progress.step = step;
        self.progress.trained += x.dim(0)? as u64;
        if step * 10 > total_steps * 9 || step % 10 == 0 {
            let s = batch_stats(x, &acts, &recon, loss)?;
            if step * 10 > total_steps * 9 {
                self.progress.recent.push(s);
            }
            self.bar.set_message(format!(
                "training: loss {:.3}, L0 {:.1}, explained variance {:.3}",
                s.loss, s.l0, s.explained_variance
            ));
        }
        self.bar.inc(1);
        Ok(())
    }

    fn finish(self) -> Progress {
        self.bar.finish_and_clear();
        self.progress
    }
}

/// The SAE on the held-out rows: explained variance, L0, latents that never fired, and the
/// rows (NaN, NaN, 0 and 0 without any).
struct Heldout {
    explained_variance: f64,
    l0: f64,
    dead_latents: usize,
    tokens: usize,
}

fn heldout_stats(params: &Params, x: Option<&Tensor>, arch: TrainArchitecture) -> Result<Heldout> {
    let Some(x) = x else {
        return Ok(Heldout {
            explained_variance: f64::NAN,
            l0: f64::NAN,
            dead_latents: 0,
            tokens: 0,
        });
    };
    let (acts, recon) = forward(params, x, arch)?;
    let s = batch_stats(x, &acts, &recon, 0.0)?;
    let fired = acts
        .gt(0f32)?
        .to_dtype(DType::F32)?
        .sum(0)?
        .to_vec1::<f32>()?;
    Ok(Heldout {
        explained_variance: s.explained_variance,
        l0: s.l0,
        dead_latents: fired.iter().filter(|&&c| c == 0.0).count(),
        tokens: x.dim(0)?,
    })
}

/// Writes `cfg.json` and `sae_weights.safetensors` as SAELens saves a standard / TopK SAE.
fn save_saelens(
    p: &Params,
    options: &TrainOptions,
    runner: &ModelRunner,
    d_in: usize,
    config: &Config,
) -> Result<()> {
    std::fs::create_dir_all(&options.out)
        .with_context(|| format!("cannot create {}", options.out.display()))?;
    let hook = HookPoint::parse(&options.hook)?;
    let (architecture, kwargs) = match options.architecture {
        TrainArchitecture::Standard { .. } => ("standard", serde_json::json!({})),
        TrainArchitecture::TopK { k } => ("topk", serde_json::json!({ "k": k })),
    };
    let mut cfg = serde_json::json!({
        "architecture": architecture,
        "d_in": d_in,
        "d_sae": options.d_sae,
        "activation_fn_str": if architecture == "topk" { "topk" } else { "relu" },
        "activation_fn_kwargs": kwargs,
        "apply_b_dec_to_input": true,
        "finetuning_scaling_factor": false,
        "context_size": runner.context_size,
        "model_name": config.generation.model_name,
        "hook_name": options.hook,
        "hook_layer": hook.layer,
        "hook_head_index": null,
        "prepend_bos": true,
        "dataset_path": runner.dataset.describe(),
        "dataset_trust_remote_code": false,
        "normalize_activations": "none",
        "dtype": "float32",
        "device": "cpu",
        "sae_lens_training_version": null,
        "model_from_pretrained_kwargs": { "center_writing_weights": runner.centred },
        "neuronpedia_id": null,
        "seqpos_slice": [null],
        "trained_with": format!("saecooc {}", env!("CARGO_PKG_VERSION")),
    });
    if let TrainArchitecture::TopK { .. } = options.architecture {
        // `forward` ranks the pre-activations as they are, not scaled by the decoder norms:
        // SAELens' TopK rule when this flag is false (and the decoder is used unnormalised).
        cfg["rescale_acts_by_decoder_norm"] = false.into();
    }
    let tensors: Vec<(&str, Tensor)> = vec![
        ("W_enc", p.w_enc.as_tensor().to_device(&Device::Cpu)?),
        ("b_enc", p.b_enc.as_tensor().to_device(&Device::Cpu)?),
        ("W_dec", p.w_dec.as_tensor().to_device(&Device::Cpu)?),
        ("b_dec", p.b_dec.as_tensor().to_device(&Device::Cpu)?),
    ];
    let tensors: std::collections::HashMap<&str, Tensor> = tensors.into_iter().collect();
    crate::model::save_safetensors(&tensors, &options.out.join(SAE_WEIGHTS))?;
    crate::io::atomic::write_bytes(
        &options.out.join(SAE_CFG_JSON),
        &serde_json::to_vec_pretty(&cfg)?,
    )
}
