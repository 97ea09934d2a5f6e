//! Model + SAE → latent activations for token windows, shared by `cooc` and `pca`.
//!
//! Loads what one SAE needs (model up to its hook, tokenizer, special tokens, window length,
//! dataset), streams deterministic windows, and turns a batch of windows into SAE activations:
//! residual stream at the hook (centred per position for LayerNorm models, as TransformerLens
//! does; see [`crate::sources::decide_centring`]), then the folded SAE's encoder.

use crate::data::{Documents, TokenSpec, WindowStream, WindowTokens};
use crate::hub::Location;
use crate::model::{self, HookPoint, ModelFiles, ResidualModel};
use crate::sae::Sae;
use crate::sources::{bos_id, CentringRule, Sources};
use anyhow::{ensure, Context, Result};
use candle_core::{Device, Tensor};

/// A language model up to a hook, with its tokenizer and dataset: token windows in, residual
/// stream out.
pub struct ModelRunner {
    pub model: Box<dyn ResidualModel>,
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
}

impl ModelRunner {
    /// Loads the model up to `hook`; `sae_centring` is what the SAE's cfg.json says about
    /// centring (None: nothing), decided with the model's normalisation and `[source]` by
    /// [`Sources::centring`]; `context_size` and `prepend_bos` are the SAE's unless `[run]`
    /// overrides them.
    pub fn load(
        sources: &Sources,
        hook: HookPoint,
        sae_centring: Option<bool>,
        context_size: Option<usize>,
        prepend_bos: Option<bool>,
        dataset: Location,
    ) -> Result<Self> {
        let files = ModelFiles::resolve(&sources.model_location()?, sources.hub)?;
        let model = model::load_model(&files, hook, sources.device)?;
        let centring = sources.centring(model.uses_layer_norm(), sae_centring, &files.source)?;
        let tokenizer = sources.load_tokenizer()?;
        let bos = bos_id(&files, &tokenizer)?;
        let window_tokens = window_tokens(
            &sources.config.run,
            prepend_bos,
            bos,
            files.special_tokens()?.eos,
        )?;
        let context_size = sources
            .config
            .run
            .context_size
            .or(context_size)
            .unwrap_or(128);
        ensure!(
            context_size <= model.max_positions(),
            "context_size {context_size} is longer than the model's {} positions",
            model.max_positions()
        );
        Ok(Self {
            dataset,
            special: files.special_tokens()?.ids(),
            model_source: files.source,
            centred: centring.centred,
            centring_rule: centring.rule,
            model,
            tokenizer,
            bos,
            context_size,
            window_tokens,
        })
    }

    /// The dataset's windows, from the start.
    pub fn windows<'h>(&self, sources: &Sources<'h>) -> Result<WindowStream<'h>> {
        let src = &sources.config.source;
        let documents = Documents::open(
            &self.dataset,
            sources.hub,
            src.text_field.as_deref().unwrap_or("text"),
            src.dataset_files.as_deref(),
        )?;
        Ok(WindowStream::new(
            documents,
            self.tokenizer.clone(),
            self.context_size,
            self.window_tokens,
        ))
    }

    /// The residual stream at the hook for `positions` (flat, row-major over
    /// `[windows, context]`) of `batch`: `[positions, d_model]`.
    pub fn residual(
        &self,
        batch: &[Vec<u32>],
        positions: &[u32],
        device: &Device,
    ) -> Result<Tensor> {
        let ids = Tensor::new(batch.concat(), device)?.reshape((batch.len(), self.context_size))?;
        let resid = self.model.residual(&ids)?;
        let resid = if self.centred {
            model::center_per_position(&resid)?
        } else {
            resid
        };
        let flat = resid.reshape((batch.len() * self.context_size, self.model.d_model()))?;
        let index = Tensor::new(positions, device)?;
        Ok(flat.index_select(&index, 0)?)
    }
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

/// A [`ModelRunner`] and the SAE that reads its hook.
pub struct Encoder {
    pub runner: ModelRunner,
    pub sae: Sae,
}

impl Encoder {
    /// Loads the SAE `sae_id`, then the model up to its hook, and checks the widths agree.
    pub fn load(sources: &Sources, sae_id: &str) -> Result<Self> {
        let sae = sources.load_sae(sae_id)?;
        let hook = HookPoint::parse(&sae.cfg.hook_name)?;
        let runner = ModelRunner::load(
            sources,
            hook,
            sae.cfg.center_writing_weights,
            sae.cfg.context_size,
            sae.cfg.prepend_bos,
            sources.dataset_location(&sae)?,
        )?;
        ensure!(
            sae.cfg.d_in == runner.model.d_model(),
            "SAE {} has d_in = {} but model {} has width {} at {hook}",
            sae.source,
            sae.cfg.d_in,
            runner.model_source,
            runner.model.d_model()
        );
        Ok(Self { runner, sae })
    }

    /// SAE activations of residual rows, on the host, row-major `[rows, d_sae]`.
    pub fn encode(&mut self, resid: &Tensor) -> Result<Vec<f32>> {
        self.sae.calibrate_normalization(resid)?;
        Ok(self
            .sae
            .encode(resid)?
            .to_device(&Device::Cpu)?
            .flatten_all()?
            .to_vec1::<f32>()?)
    }
}
