//! Sparse autoencoders: SAELens folders and Gemma Scope `params.npz`, decoder norms folded.
//!
//! SAELens: `cfg.json` + `sae_weights.safetensors` with `W_enc [d_in, d_sae]`, `b_enc`,
//! `W_dec [d_sae, d_in]`, `b_dec` (and `threshold`/`log_threshold` for JumpReLU).
//! Gemma Scope: `params.npz` with `W_enc`, `W_dec`, `b_enc`, `b_dec`, `threshold`.
//! As the original does (`fold_W_dec_norm`), every decoder row is scaled to unit norm and its
//! norm multiplied into the encoder column, `b_enc` and the JumpReLU threshold, so each
//! activation becomes `act_i · ‖W_dec,i‖`.
//! A TopK SAE whose cfg.json does not set `rescale_acts_by_decoder_norm` ranks its latents on
//! the pre-activations as its weights give them (SAELens refuses to fold its norms, as that
//! would change which latents win): its encoder stays as it is and the norms multiply the k
//! activations it keeps, so it gives the same folded activations on SAELens' own latents.

mod convert;
mod encode;
mod formats;
mod locate;

pub use convert::ConvertedFiles;
pub use encode::{encode_slices, is_active, threshold_cut};
pub use locate::SaeFiles;

use anyhow::{bail, ensure, Context, Result};
use candle_core::{Device, Tensor};
use encode::{EncoderArrays, EncoderWeights};

/// The activation function of an SAE.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Architecture {
    /// `relu(pre)`.
    Standard,
    /// `relu(pre) · (pre > θ)`.
    JumpRelu,
    /// The k largest pre-activations, through relu (chosen by [`TopKSelection`]).
    TopK(usize),
}

/// Which pre-activations a TopK SAE ranks to choose its k latents (SAELens
/// `rescale_acts_by_decoder_norm` in cfg.json). Either way the kept activations are then
/// multiplied by the decoder norms, like every other architecture's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopKSelection {
    /// `x·W_enc + b_enc` as the weights give it (the flag false or absent).
    Unscaled,
    /// The pre-activations times the decoder norms (the flag true).
    DecoderNormScaled,
}

impl TopKSelection {
    /// The name recorded in run metadata: `unscaled` or `decoder-norm-scaled`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unscaled => "unscaled",
            Self::DecoderNormScaled => "decoder-norm-scaled",
        }
    }
}

/// How the input is normalised before encoding (SAELens `normalize_activations`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Normalization {
    None,
    /// Each token scaled to norm √d_in.
    ConstantNormRescale,
    /// Each token centred and divided by its standard deviation (eps 1e-5).
    LayerNorm,
    /// All tokens scaled by one factor √d_in / E‖x‖ (from `norm_scaling_factor` in cfg.json,
    /// else estimated on the first batch — SAELens estimates it over many batches).
    ExpectedAverageOnlyIn(Option<f32>),
}

/// What saecooc needs from an SAE's config.
#[derive(Debug, Clone)]
pub struct SaeConfig {
    pub d_in: usize,
    pub d_sae: usize,
    pub hook_name: String,
    pub architecture: Architecture,
    pub apply_b_dec_to_input: bool,
    pub normalize_activations: Normalization,
    pub neuronpedia_id: Option<String>,
    pub context_size: Option<usize>,
    pub dataset_path: Option<String>,
    /// Whether the SAE's windows start with BOS (SAELens `prepend_bos`; absent: unknown).
    pub prepend_bos: Option<bool>,
    /// TransformerLens `center_writing_weights` as the SAE's config states it
    /// (`model_from_pretrained_kwargs`); None when it says nothing (Gemma Scope `params.npz`,
    /// or a cfg.json without the key), which leaves the decision to the model's normalisation.
    pub center_writing_weights: Option<bool>,
    /// How a TopK SAE ranks its latents (cfg.json `rescale_acts_by_decoder_norm`; unused by
    /// other architectures).
    pub topk_selection: TopKSelection,
}

impl SaeConfig {
    /// The config of an SAE built in memory (benchmarks, tests): `b_dec` subtracted from the
    /// input, no normalisation, no metadata, TopK ranked on unscaled pre-activations.
    pub fn in_memory(
        d_in: usize,
        d_sae: usize,
        hook_name: &str,
        architecture: Architecture,
    ) -> Self {
        Self {
            d_in,
            d_sae,
            hook_name: hook_name.into(),
            architecture,
            apply_b_dec_to_input: true,
            normalize_activations: Normalization::None,
            neuronpedia_id: None,
            context_size: None,
            dataset_path: None,
            prepend_bos: None,
            center_writing_weights: None,
            topk_selection: TopKSelection::Unscaled,
        }
    }
}

/// How an SAE's files are laid out and read: one per `conversion_func` of SAELens' release
/// registry (none: SAELens' own `cfg.json` + `sae_weights.safetensors`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SaeFormat {
    /// SAELens folders (standard, gated, JumpReLU, TopK, transcoders), and Gemma Scope
    /// `params.npz` found in place of a cfg.json.
    #[default]
    SaeLens,
    /// `gemma_2`: Gemma Scope `params.npz`, the hook inferred from the repo and sae id.
    GemmaScope,
    /// `gemma_3`: Gemma Scope 2 `params.safetensors` (+ `config.json`).
    GemmaScope2,
    /// `gemma_2_transcoder`.
    GemmaScopeTranscoder,
    /// `dictionary_learning_1`: `ae.pt` + `config.json` (the dictionary_learning library).
    DictionaryLearning,
    /// `llama_scope`.
    LlamaScope,
    /// `llama_scope_r1_distill`.
    LlamaScopeR1Distill,
    /// `qwen_scope`.
    QwenScope,
    /// `mwhanna_transcoder`.
    MwhannaTranscoder,
    /// `mntss_clt_layer_transcoder`.
    MntssCltLayer,
    /// `connor_rob_hook_z`.
    ConnorRobHookZ,
    /// `temporal`.
    Temporal,
    /// `goodfire`.
    Goodfire,
    /// `deepseek_r1`.
    DeepseekR1,
}

impl SaeFormat {
    /// Every format with its `conversion_func` name.
    pub const ALL: &[(SaeFormat, Option<&'static str>)] = &[
        (SaeFormat::SaeLens, None),
        (SaeFormat::GemmaScope, Some("gemma_2")),
        (SaeFormat::GemmaScope2, Some("gemma_3")),
        (SaeFormat::GemmaScopeTranscoder, Some("gemma_2_transcoder")),
        (SaeFormat::DictionaryLearning, Some("dictionary_learning_1")),
        (SaeFormat::LlamaScope, Some("llama_scope")),
        (
            SaeFormat::LlamaScopeR1Distill,
            Some("llama_scope_r1_distill"),
        ),
        (SaeFormat::QwenScope, Some("qwen_scope")),
        (SaeFormat::MwhannaTranscoder, Some("mwhanna_transcoder")),
        (SaeFormat::MntssCltLayer, Some("mntss_clt_layer_transcoder")),
        (SaeFormat::ConnorRobHookZ, Some("connor_rob_hook_z")),
        (SaeFormat::Temporal, Some("temporal")),
        (SaeFormat::Goodfire, Some("goodfire")),
        (SaeFormat::DeepseekR1, Some("deepseek_r1")),
    ];

    /// The format of a registry `conversion_func` (None: SAELens' own).
    pub fn from_conversion_func(name: Option<&str>) -> anyhow::Result<Self> {
        Self::ALL
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(f, _)| *f)
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "SAE format (conversion_func) '{}' is unknown to saecooc",
                    name.unwrap_or("")
                )
            })
    }

    /// SAELens' `conversion_func` name of this format (None for SAELens' own).
    pub fn conversion_func(self) -> Option<&'static str> {
        Self::ALL
            .iter()
            .find(|(f, _)| *f == self)
            .and_then(|(_, n)| *n)
    }

    /// Why saecooc cannot read SAEs of this format, or None when it can (each readable
    /// format's encode is tested against SAELens' on a fixture in its file layout).
    pub fn unsupported_reason(self) -> Option<&'static str> {
        match self {
            SaeFormat::SaeLens
            | SaeFormat::GemmaScope
            | SaeFormat::GemmaScope2
            | SaeFormat::GemmaScopeTranscoder
            | SaeFormat::MwhannaTranscoder
            | SaeFormat::DictionaryLearning
            | SaeFormat::LlamaScope
            | SaeFormat::LlamaScopeR1Distill
            | SaeFormat::QwenScope
            | SaeFormat::ConnorRobHookZ
            | SaeFormat::Goodfire
            | SaeFormat::DeepseekR1 => None,
            SaeFormat::MntssCltLayer => Some(
                "a layer of mntss' cross-layer transcoders (W_enc_N / W_dec_N safetensors and the repo's config.yaml, its decoders summed over the layers they write to) is not read yet: SAELens' mntss_clt_layer_transcoder loader has not been reproduced and tested",
            ),
            SaeFormat::Temporal => Some(
                "a temporal SAE encodes each token with attention over the tokens before it; saecooc encodes token by token",
            ),
        }
    }
}

/// Defaults for fields an SAE's files may not state (Gemma Scope has no cfg.json).
#[derive(Debug, Clone, Default)]
pub struct SaeDefaults {
    /// How the files are laid out (the registry's `conversion_func`).
    pub format: SaeFormat,
    /// The registry's `norm_scaling_factor`: for an SAE whose cfg says
    /// `expected_average_only_in`, folded into its weights as `SAE.from_pretrained` does
    /// (inputs in effect multiplied by it; the decoder, and so the folded norms, divided).
    pub norm_scaling_factor: Option<f64>,
    /// The registry's `repo_id`: converted formats that infer the hook or the model from it
    /// (`gemma_2`) read it for SAEs in a local folder (a hub location names it itself).
    pub repo_id: Option<String>,
    pub hook_name: Option<String>,
    pub neuronpedia_id: Option<String>,
    pub context_size: Option<usize>,
    pub dataset_path: Option<String>,
}

/// A loaded SAE with decoder norms folded into the encoder.
pub struct Sae {
    pub cfg: SaeConfig,
    encoder: EncoderWeights,
    b_dec: Tensor,
    /// Folded JumpReLU thresholds θ (zeros for other architectures).
    pub threshold: Vec<f32>,
    /// Unit-norm decoder rows, `[d_sae, d_in]` row-major.
    pub w_dec: Vec<f32>,
    /// The norms that were folded (‖W_dec,i‖ before folding).
    pub decoder_norms: Vec<f32>,
    /// Whether the decoder norms multiply the kept activations instead of being folded into
    /// the encoder (TopK with unscaled selection).
    norms_after_top_k: bool,
    /// Where it was loaded from.
    pub source: String,
}

/// Raw (unfolded) SAE parameters as host vectors.
#[derive(Debug, Clone)]
pub struct SaeParams {
    pub w_enc: Vec<f32>,
    pub b_enc: Vec<f32>,
    pub w_dec: Vec<f32>,
    pub b_dec: Vec<f32>,
    pub threshold: Option<Vec<f32>>,
}

/// Checks an SAE's sizes before anything is computed from them: at least one input dimension
/// and one latent, every parameter as long as `d_in` and `d_sae` say, a threshold for JumpReLU,
/// a TopK k of at least 1 and a window of at least 2 tokens.
fn check_sizes(cfg: &SaeConfig, p: &SaeParams, source: &str) -> Result<()> {
    let (d_in, d_sae) = (cfg.d_in, cfg.d_sae);
    ensure!(d_in > 0, "{source}: d_in is 0: the SAE reads no dimension");
    ensure!(d_sae > 0, "{source}: d_sae is 0: the SAE has no latents");
    let matrix = d_in
        .checked_mul(d_sae)
        .with_context(|| format!("{source}: d_in {d_in} × d_sae {d_sae} overflows"))?;
    let lengths = [
        ("W_enc", Some(&p.w_enc), matrix),
        ("b_enc", Some(&p.b_enc), d_sae),
        ("W_dec", Some(&p.w_dec), matrix),
        ("b_dec", Some(&p.b_dec), d_in),
        ("threshold", p.threshold.as_ref(), d_sae),
    ];
    for (name, values, want) in lengths {
        let Some(values) = values else { continue };
        ensure!(
            values.len() == want,
            "{source}: {name} has {} values, expected {want} for d_in = {d_in}, d_sae = {d_sae}",
            values.len()
        );
    }
    match cfg.architecture {
        Architecture::JumpRelu => ensure!(
            p.threshold.is_some(),
            "{source}: a JumpReLU SAE needs a threshold"
        ),
        Architecture::TopK(k) => ensure!(k > 0, "{source}: TopK k is 0: it must be at least 1"),
        Architecture::Standard => {}
    }
    if let Some(c) = cfg.context_size {
        ensure!(
            c >= 2,
            "{source}: context_size is {c}: a window holds at least 2 tokens (BOS and one more)"
        );
    }
    Ok(())
}

impl Sae {
    /// Builds a folded SAE from raw parameters.
    pub fn from_params(
        cfg: SaeConfig,
        mut p: SaeParams,
        source: String,
        device: &Device,
    ) -> Result<Self> {
        check_sizes(&cfg, &p, &source)?;
        let (d_in, d_sae) = (cfg.d_in, cfg.d_sae);
        for (name, v) in [
            ("W_enc", &p.w_enc),
            ("b_enc", &p.b_enc),
            ("W_dec", &p.w_dec),
            ("b_dec", &p.b_dec),
        ] {
            if let Some(i) = v.iter().position(|x| !x.is_finite()) {
                bail!(
                    "{source}: {name} has a non-finite value ({}) at flat index {i}",
                    v[i]
                );
            }
        }
        let unscaled_topk = matches!(cfg.architecture, Architecture::TopK(_))
            && cfg.topk_selection == TopKSelection::Unscaled;
        let norms = if unscaled_topk {
            unit_decoder_rows(&mut p.w_dec, d_in)
        } else {
            fold_decoder_norms(&mut p, d_in, d_sae)
        };
        let threshold = p.threshold.clone().unwrap_or_else(|| vec![0.0; d_sae]);
        Ok(Self {
            encoder: EncoderWeights::new(
                EncoderArrays {
                    w_enc: &p.w_enc,
                    b_enc: p.b_enc,
                    theta: &threshold,
                    d_in,
                    d_sae,
                },
                device,
            )?,
            b_dec: Tensor::from_slice(&p.b_dec, d_in, device)?,
            threshold,
            w_dec: p.w_dec,
            decoder_norms: norms,
            norms_after_top_k: unscaled_topk,
            cfg,
            source,
        })
    }
}

/// Scales decoder rows to unit norm and multiplies each norm into the encoder column, `b_enc`
/// and the threshold. Returns the norms. A zero row zeroes its encoder column (as the
/// original's division would leave the latent dead).
pub fn fold_decoder_norms(p: &mut SaeParams, d_in: usize, d_sae: usize) -> Vec<f32> {
    let norms = unit_decoder_rows(&mut p.w_dec, d_in);
    for (i, &n) in norms.iter().enumerate() {
        p.b_enc[i] *= n;
        if let Some(t) = p.threshold.as_mut() {
            t[i] *= n;
        }
    }
    for row in p.w_enc.chunks_exact_mut(d_sae) {
        row.iter_mut().zip(&norms).for_each(|(v, n)| *v *= n);
    }
    norms
}

/// Scales the decoder rows (`[d_sae, d_in]`) to unit norm (a zero row stays zero) and returns
/// their norms before scaling.
fn unit_decoder_rows(w_dec: &mut [f32], d_in: usize) -> Vec<f32> {
    let norms: Vec<f32> = w_dec
        .chunks_exact(d_in)
        .map(|row| {
            row.iter()
                .map(|v| (*v as f64) * (*v as f64))
                .sum::<f64>()
                .sqrt() as f32
        })
        .collect();
    for (row, &n) in w_dec.chunks_exact_mut(d_in).zip(&norms) {
        if n > 0.0 {
            row.iter_mut().for_each(|v| *v /= n);
        }
    }
    norms
}
