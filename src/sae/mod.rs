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

use crate::hub::{Hub, Location};
use crate::io::npy::NpyData;
use crate::io::npz;
use crate::json_keys::JsonKeys;
use anyhow::{bail, ensure, Context, Result};
use candle_core::{DType, Device, Tensor};
use hf_hub::RepoType;
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

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

/// Defaults for fields an SAE's files may not state (Gemma Scope has no cfg.json).
#[derive(Debug, Clone, Default)]
pub struct SaeDefaults {
    pub hook_name: Option<String>,
    pub neuronpedia_id: Option<String>,
    pub context_size: Option<usize>,
    pub dataset_path: Option<String>,
}

/// The files of one SAE.
#[derive(Debug, Clone)]
pub enum SaeFiles {
    SaeLens { cfg: PathBuf, weights: PathBuf },
    GemmaScope { params: PathBuf },
}

impl SaeFiles {
    /// Finds the SAE files in a local folder (or a `params.npz` path) or a hub repo subfolder;
    /// see [`SaeFiles::resolve_any`].
    pub fn resolve(location: &Location, subfolder: &str, hub: &Hub) -> Result<Self> {
        Self::resolve_any(location, &[subfolder], hub)
    }

    /// Finds the SAE files. A hub repo: in its first `subfolders` entry. A local path: a
    /// `params.npz`, `sae_weights.safetensors` (with `cfg.json` beside it) or `cfg.json` file;
    /// else a folder, looked for first in each of `subfolders` under it (the SAE's subfolder),
    /// then in the folder itself. When none holds an SAE, the error lists every path tried.
    pub fn resolve_any(location: &Location, subfolders: &[&str], hub: &Hub) -> Result<Self> {
        match location {
            Location::Local(path) => Self::find_local(path, subfolders),
            Location::Hub { repo, revision } => {
                let subfolder = subfolders.first().copied().unwrap_or("");
                let file = |name: &str| {
                    if subfolder.is_empty() {
                        name.to_string()
                    } else {
                        format!("{subfolder}/{name}")
                    }
                };
                if let Some(cfg) = hub.try_get(repo, RepoType::Model, revision, &file("cfg.json")) {
                    let weights = hub.get(
                        repo,
                        RepoType::Model,
                        revision,
                        &file("sae_weights.safetensors"),
                    )?;
                    Ok(Self::SaeLens { cfg, weights })
                } else {
                    let params = hub
                        .get(repo, RepoType::Model, revision, &file("params.npz"))
                        .with_context(|| {
                            format!(
                                "hub repo {repo} has neither {} nor {}",
                                file("cfg.json"),
                                file("params.npz")
                            )
                        })?;
                    Ok(Self::GemmaScope { params })
                }
            }
        }
    }

    fn find_local(path: &Path, subfolders: &[&str]) -> Result<Self> {
        if path.is_file() {
            return Self::from_file(path);
        }
        let mut candidates: Vec<PathBuf> = Vec::new();
        for dir in subfolders
            .iter()
            .filter(|s| !s.is_empty())
            .map(|s| path.join(s))
            .chain([path.to_path_buf()])
        {
            if !candidates.contains(&dir) {
                candidates.push(dir);
            }
        }
        let mut tried: Vec<String> = Vec::new();
        for dir in candidates {
            match Self::from_dir(&dir)? {
                Ok(files) => return Ok(files),
                Err(why) => tried.push(format!("{} ({why})", dir.display())),
            }
        }
        bail!(
            "no SAE found at {}; tried:\n  {}\n[source] sae may be the SAE's folder (SAELens cfg.json + sae_weights.safetensors, or Gemma Scope params.npz), the folder holding its subfolder, or the params.npz / sae_weights.safetensors file",
            path.display(),
            tried.join("\n  ")
        )
    }

    /// A local file: `params.npz` (any `.npz`), `sae_weights.safetensors` (any `.safetensors`,
    /// with `cfg.json` beside it) or `cfg.json` (with `sae_weights.safetensors` beside it).
    fn from_file(path: &Path) -> Result<Self> {
        let sibling = |name: &str| path.with_file_name(name);
        if path.extension().is_some_and(|e| e == "npz") {
            Ok(Self::GemmaScope {
                params: path.to_path_buf(),
            })
        } else if path.extension().is_some_and(|e| e == "safetensors") {
            let cfg = sibling("cfg.json");
            ensure!(
                cfg.is_file(),
                "SAE weights {} have no cfg.json beside them ({} does not exist)",
                path.display(),
                cfg.display()
            );
            Ok(Self::SaeLens {
                cfg,
                weights: path.to_path_buf(),
            })
        } else if path.file_name().is_some_and(|n| n == "cfg.json") {
            let weights = sibling("sae_weights.safetensors");
            ensure!(
                weights.is_file(),
                "SAE config {} has no sae_weights.safetensors beside it",
                path.display()
            );
            Ok(Self::SaeLens {
                cfg: path.to_path_buf(),
                weights,
            })
        } else {
            bail!(
                "{} is not an SAE file: [source] sae may be a folder, a params.npz, a sae_weights.safetensors or a cfg.json",
                path.display()
            )
        }
    }

    /// The SAE in `dir`: `Ok(Ok(files))`, `Ok(Err(why))` when the folder holds no SAE (or does
    /// not exist), and an error when it holds a broken one (cfg.json without weights).
    fn from_dir(dir: &Path) -> Result<std::result::Result<Self, &'static str>> {
        if !dir.is_dir() {
            return Ok(Err("does not exist"));
        }
        let cfg = dir.join("cfg.json");
        let weights = dir.join("sae_weights.safetensors");
        let params = dir.join("params.npz");
        if cfg.is_file() {
            ensure!(
                weights.is_file(),
                "SAE folder {} has cfg.json but no sae_weights.safetensors",
                dir.display()
            );
            Ok(Ok(Self::SaeLens { cfg, weights }))
        } else if params.is_file() {
            Ok(Ok(Self::GemmaScope { params }))
        } else {
            Ok(Err(
                "has neither cfg.json + sae_weights.safetensors (SAELens) nor params.npz (Gemma Scope)",
            ))
        }
    }

    fn describe(&self) -> String {
        match self {
            Self::SaeLens { weights, .. } => weights.display().to_string(),
            Self::GemmaScope { params } => params.display().to_string(),
        }
    }
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

/// The encoder's (folded) weights, kept where its product runs.
enum EncoderWeights {
    /// On the CPU: `W_encᵀ` as `[d_sae, d_in]` rows, the layout the GEMM reads fastest, and
    /// `b_enc`; [`Sae::encode_into`] multiplies straight into the caller's buffer.
    Host { w_enc_t: Vec<f32>, b_enc: Vec<f32> },
    /// On an accelerator: `W_enc` `[d_in, d_sae]`, `b_enc` and the JumpReLU thresholds θ
    /// (zeros for other architectures) as tensors.
    Device {
        w_enc: Tensor,
        b_enc: Tensor,
        theta: Tensor,
    },
}

impl EncoderWeights {
    fn new(
        w_enc: &[f32],
        b_enc: Vec<f32>,
        theta: &[f32],
        d_in: usize,
        d_sae: usize,
        device: &Device,
    ) -> Result<Self> {
        if device.is_cpu() {
            return Ok(Self::Host {
                w_enc_t: transposed(w_enc, d_in, d_sae),
                b_enc,
            });
        }
        Self::tensors(w_enc, b_enc, theta, d_in, d_sae, device)
    }

    /// The tensor form that accelerators use, built on `device` (any device).
    fn tensors(
        w_enc: &[f32],
        b_enc: Vec<f32>,
        theta: &[f32],
        d_in: usize,
        d_sae: usize,
        device: &Device,
    ) -> Result<Self> {
        Ok(Self::Device {
            w_enc: Tensor::from_slice(w_enc, (d_in, d_sae), device)?,
            b_enc: Tensor::from_vec(b_enc, d_sae, device)?,
            theta: Tensor::from_slice(theta, d_sae, device)?,
        })
    }
}

/// The transpose of a row-major `[rows, cols]` matrix, in blocks that stay in cache.
fn transposed(m: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    const BLOCK: usize = 64;
    let mut t = vec![0.0f32; m.len()];
    for r0 in (0..rows).step_by(BLOCK) {
        for c0 in (0..cols).step_by(BLOCK) {
            for r in r0..(r0 + BLOCK).min(rows) {
                for c in c0..(c0 + BLOCK).min(cols) {
                    t[c * rows + r] = m[r * cols + c];
                }
            }
        }
    }
    t
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

/// Tensors read from an SAE file: name → (shape, f32 data, or the dtype of a tensor that is
/// not floats).
type HostTensors = HashMap<String, (Vec<usize>, std::result::Result<Vec<f32>, String>)>;

/// The keys saecooc reads from a SAELens `cfg.json`, typed: each at the top level (SAELens ≤ 5)
/// or under `metadata` (SAELens 6) where SAELens 6 moved it. A key present with the wrong type
/// is an error naming it and the file; absent keys are None; other keys are ignored.
#[derive(Debug, Default)]
struct SaeLensCfg {
    d_in: Option<usize>,
    d_sae: Option<usize>,
    hook_name: Option<String>,
    architecture: Option<String>,
    activation_fn: Option<String>,
    /// TopK `k` (`activation_fn_kwargs.k`, else `k`).
    k: Option<usize>,
    apply_b_dec_to_input: Option<bool>,
    normalize_activations: Option<String>,
    /// `norm_scaling_factor` (else `scaling_factor`), with the key it came from.
    norm_scaling_factor: Option<(&'static str, f64)>,
    neuronpedia_id: Option<String>,
    context_size: Option<usize>,
    dataset_path: Option<String>,
    prepend_bos: Option<bool>,
    center_writing_weights: Option<bool>,
    rescale_acts_by_decoder_norm: Option<bool>,
}

impl SaeLensCfg {
    /// Parses the cfg.json `json` read from `file`.
    fn parse(json: &Value, file: &str) -> Result<Self> {
        let top = JsonKeys::new(json, file)?;
        let meta = top.object("metadata")?;
        // A key at the top level, else under `metadata`.
        let either = |key: &str| match meta {
            Some(m) if !top.has(key) && m.has(key) => m,
            _ => top,
        };
        let string = |keys: JsonKeys, key: &str| -> Result<Option<String>> {
            Ok(keys.str(key)?.map(String::from))
        };
        let kwargs = top.object("activation_fn_kwargs")?;
        let k = match kwargs.map(|kw| kw.positive("k")).transpose()?.flatten() {
            Some(k) => Some(k),
            None => top.positive("k")?,
        };
        let factor = match top.positive_number("norm_scaling_factor")? {
            Some(f) => Some(("norm_scaling_factor", f)),
            None => top
                .positive_number("scaling_factor")?
                .map(|f| ("scaling_factor", f)),
        };
        let center = either("model_from_pretrained_kwargs")
            .object("model_from_pretrained_kwargs")?
            .map(|kw| kw.bool("center_writing_weights"))
            .transpose()?
            .flatten();
        Ok(Self {
            d_in: top.positive("d_in")?,
            d_sae: top.positive("d_sae")?,
            hook_name: match string(either("hook_name"), "hook_name")? {
                Some(h) => Some(h),
                None => string(either("hook_point"), "hook_point")?,
            },
            architecture: string(top, "architecture")?,
            activation_fn: string(top, "activation_fn_str")?,
            k,
            apply_b_dec_to_input: top.bool("apply_b_dec_to_input")?,
            normalize_activations: string(top, "normalize_activations")?,
            norm_scaling_factor: factor,
            neuronpedia_id: string(either("neuronpedia_id"), "neuronpedia_id")?,
            context_size: either("context_size").positive("context_size")?,
            dataset_path: string(either("dataset_path"), "dataset_path")?,
            prepend_bos: either("prepend_bos").bool("prepend_bos")?,
            center_writing_weights: center,
            rescale_acts_by_decoder_norm: top.bool("rescale_acts_by_decoder_norm")?,
        })
    }

    fn normalization(&self, file: &str) -> Result<Normalization> {
        let factor = self.norm_scaling_factor.map(|(_, f)| f as f32);
        Ok(
            match self.normalize_activations.as_deref().unwrap_or("none") {
                "none" | "" => Normalization::None,
                "constant_norm_rescale" => Normalization::ConstantNormRescale,
                "layer_norm" => Normalization::LayerNorm,
                "expected_average_only_in" => Normalization::ExpectedAverageOnlyIn(factor),
                other => bail!("{file}: normalize_activations '{other}' is not supported"),
            },
        )
    }

    fn architecture(&self, file: &str) -> Result<Architecture> {
        let arch = self.architecture.as_deref().unwrap_or("standard");
        let activation = self.activation_fn.as_deref().unwrap_or("relu");
        if arch == "topk" || activation == "topk" {
            let k = self
                .k
                .with_context(|| format!("{file}: TopK SAE without activation_fn_kwargs.k"))?;
            return Ok(Architecture::TopK(k));
        }
        match arch {
            "standard" | "relu" => Ok(Architecture::Standard),
            "jumprelu" => Ok(Architecture::JumpRelu),
            other => bail!(
                "{file}: SAE architecture '{other}' is not supported (standard, jumprelu, topk)"
            ),
        }
    }
}

fn tensor_to_vec(t: &Tensor) -> Result<Vec<f32>> {
    Ok(t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?)
}

fn take_param(
    tensors: &mut HostTensors,
    key: &str,
    shape: &[usize],
    file: &str,
) -> Result<Vec<f32>> {
    let (got, data) = tensors
        .remove(key)
        .with_context(|| format!("{file} has no tensor '{key}'"))?;
    let data = data.map_err(|dtype| {
        anyhow::anyhow!(
            "{file}: tensor '{key}' has dtype {dtype}: SAE weights must be floats (f16, bf16, f32 or f64)"
        )
    })?;
    ensure!(
        got == shape,
        "{file}: tensor '{key}' has shape {got:?}, expected {shape:?}"
    );
    Ok(data)
}

/// The numpy dtype of non-float array data, for messages.
fn npy_kind(data: &NpyData) -> &'static str {
    match data {
        NpyData::F16(_) => "float16",
        NpyData::F32(_) => "float32",
        NpyData::F64(_) => "float64",
        NpyData::I32(_) => "int32",
        NpyData::I64(_) => "int64",
        NpyData::U32(_) => "uint32",
        NpyData::U64(_) => "uint64",
        NpyData::U8(_) => "uint8",
        NpyData::Bool(_) => "bool",
        NpyData::Bytes(_) => "bytes",
    }
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
    /// Loads an SAE from its files, then folds decoder norms.
    pub fn load(files: &SaeFiles, defaults: &SaeDefaults, device: &Device) -> Result<Self> {
        let (cfg, mut tensors) = match files {
            SaeFiles::SaeLens { cfg, weights } => Self::read_saelens(cfg, weights, defaults)?,
            SaeFiles::GemmaScope { params } => Self::read_gemma_scope(params, defaults)?,
        };
        let file = files.describe();
        let (d_in, d_sae) = (cfg.d_in, cfg.d_sae);
        let threshold = match cfg.architecture {
            Architecture::JumpRelu => Some(if tensors.contains_key("log_threshold") {
                take_param(&mut tensors, "log_threshold", &[d_sae], &file)?
                    .iter()
                    .map(|x| x.exp())
                    .collect()
            } else {
                take_param(&mut tensors, "threshold", &[d_sae], &file)?
            }),
            _ => None,
        };
        let params = SaeParams {
            w_enc: take_param(&mut tensors, "W_enc", &[d_in, d_sae], &file)?,
            b_enc: take_param(&mut tensors, "b_enc", &[d_sae], &file)?,
            w_dec: take_param(&mut tensors, "W_dec", &[d_sae, d_in], &file)?,
            b_dec: take_param(&mut tensors, "b_dec", &[d_in], &file)?,
            threshold,
        };
        Self::from_params(cfg, params, file, device)
    }

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
            encoder: EncoderWeights::new(&p.w_enc, p.b_enc, &threshold, d_in, d_sae, device)?,
            b_dec: Tensor::from_slice(&p.b_dec, d_in, device)?,
            threshold,
            w_dec: p.w_dec,
            decoder_norms: norms,
            norms_after_top_k: unscaled_topk,
            cfg,
            source,
        })
    }

    fn read_saelens(
        cfg_path: &Path,
        weights: &Path,
        defaults: &SaeDefaults,
    ) -> Result<(SaeConfig, HostTensors)> {
        let file = cfg_path.display().to_string();
        let text = std::fs::read(cfg_path).with_context(|| format!("cannot read {file}"))?;
        let text = crate::encoding::text_of(&text, cfg_path)?;
        let json: Value =
            serde_json::from_str(text).with_context(|| format!("{file} is not valid JSON"))?;
        let stated = SaeLensCfg::parse(&json, &file)?;
        let architecture = stated.architecture(&file)?;
        let normalize_activations = stated.normalization(&file)?;
        let d_in = stated.d_in.with_context(|| format!("{file} has no d_in"))?;
        crate::model::check_safetensors_header(weights)?;
        let loaded = candle_core::safetensors::load(weights, &Device::Cpu)
            .with_context(|| format!("cannot read SAE weights {}", weights.display()))?;
        let mut tensors = HashMap::new();
        for (k, t) in loaded {
            let data = match t.dtype() {
                DType::F16 | DType::BF16 | DType::F32 | DType::F64 => Ok(tensor_to_vec(&t)?),
                other => Err(format!("{other:?}").to_lowercase()),
            };
            tensors.insert(k, (t.dims().to_vec(), data));
        }
        let d_sae = tensors
            .get("W_enc")
            .and_then(|(s, _)| (s.len() == 2).then_some(s[1]))
            .with_context(|| format!("{} has no 2-D tensor 'W_enc'", weights.display()))?;
        if let Some(stated) = stated.d_sae {
            ensure!(
                stated == d_sae,
                "{file} says d_sae = {stated} but W_enc in {} has {d_sae} columns",
                weights.display()
            );
        }
        if let Architecture::TopK(k) = architecture {
            ensure!(
                k <= d_sae,
                "{file}: TopK k = {k} is larger than d_sae = {d_sae}: it keeps at most every latent"
            );
        }
        let hook_name = stated
            .hook_name
            .or_else(|| defaults.hook_name.clone())
            .with_context(|| format!("{file} has no hook_name"))?;
        let cfg = SaeConfig {
            d_in,
            d_sae,
            hook_name,
            architecture,
            apply_b_dec_to_input: stated.apply_b_dec_to_input.unwrap_or(true),
            normalize_activations,
            neuronpedia_id: stated
                .neuronpedia_id
                .or_else(|| defaults.neuronpedia_id.clone()),
            context_size: stated.context_size.or(defaults.context_size),
            dataset_path: stated
                .dataset_path
                .or_else(|| defaults.dataset_path.clone()),
            prepend_bos: stated.prepend_bos,
            center_writing_weights: stated.center_writing_weights,
            topk_selection: if stated.rescale_acts_by_decoder_norm.unwrap_or(false) {
                TopKSelection::DecoderNormScaled
            } else {
                TopKSelection::Unscaled
            },
        };
        Ok((cfg, tensors))
    }

    fn read_gemma_scope(params: &Path, defaults: &SaeDefaults) -> Result<(SaeConfig, HostTensors)> {
        let mut tensors = HashMap::new();
        for (k, a) in npz::read_npz(params)? {
            let data = match a.data {
                NpyData::F16(_) | NpyData::F32(_) | NpyData::F64(_) => Ok(a.to_f32()),
                ref other => Err(npy_kind(other).to_string()),
            };
            tensors.insert(k, (a.shape.clone(), data));
        }
        let (d_in, d_sae) = match tensors.get("W_enc") {
            Some((s, _)) if s.len() == 2 => (s[0], s[1]),
            _ => bail!("{} has no 2-D array 'W_enc'", params.display()),
        };
        let hook_name = defaults.hook_name.clone().with_context(|| {
            format!(
                "{} is a Gemma Scope SAE without a config: its hook cannot be inferred from the sae id",
                params.display()
            )
        })?;
        let cfg = SaeConfig {
            d_in,
            d_sae,
            hook_name,
            architecture: Architecture::JumpRelu,
            apply_b_dec_to_input: false,
            normalize_activations: Normalization::None,
            neuronpedia_id: defaults.neuronpedia_id.clone(),
            context_size: defaults.context_size,
            dataset_path: defaults.dataset_path.clone(),
            prepend_bos: None,
            center_writing_weights: None,
            topk_selection: TopKSelection::Unscaled,
        };
        Ok((cfg, tensors))
    }

    /// Sets the `expected_average_only_in` factor from a batch if the config did not give one.
    pub fn calibrate_normalization(&mut self, x: &Tensor) -> Result<()> {
        if let Normalization::ExpectedAverageOnlyIn(None) = self.cfg.normalize_activations {
            let mean_norm = x
                .sqr()?
                .sum_keepdim(1)?
                .sqrt()?
                .mean_all()?
                .to_scalar::<f32>()?;
            ensure!(
                mean_norm > 0.0,
                "cannot estimate the SAE's input scaling: the activations are all zero"
            );
            let factor = (self.cfg.d_in as f32).sqrt() / mean_norm;
            self.cfg.normalize_activations = Normalization::ExpectedAverageOnlyIn(Some(factor));
        }
        Ok(())
    }

    fn normalize(&self, x: &Tensor) -> Result<Tensor> {
        let d = self.cfg.d_in as f64;
        Ok(match self.cfg.normalize_activations {
            Normalization::None => x.clone(),
            Normalization::ConstantNormRescale => {
                let norm = x.sqr()?.sum_keepdim(1)?.sqrt()?;
                (x.broadcast_div(&norm)? * d.sqrt())?
            }
            Normalization::LayerNorm => {
                let centered = x.broadcast_sub(&x.mean_keepdim(1)?)?;
                let std = (centered.sqr()?.mean_keepdim(1)? + 1e-5)?.sqrt()?;
                centered.broadcast_div(&std)?
            }
            Normalization::ExpectedAverageOnlyIn(Some(f)) => (x * f as f64)?,
            Normalization::ExpectedAverageOnlyIn(None) => {
                bail!("internal: expected_average_only_in used before calibrate_normalization")
            }
        })
    }

    /// Encodes `x` (`[n, d_in]`, f32) into latent activations `[n, d_sae]`.
    pub fn encode(&self, x: &Tensor) -> Result<Tensor> {
        let (w_enc, b_enc, theta) = match &self.encoder {
            EncoderWeights::Device {
                w_enc,
                b_enc,
                theta,
            } => (w_enc, b_enc, theta),
            EncoderWeights::Host { .. } => {
                let mut acts = Vec::new();
                let n = self.encode_into(x, &mut acts)?;
                return Ok(Tensor::from_vec(acts, (n, self.cfg.d_sae), x.device())?);
            }
        };
        let x = self.prepared_input(x)?;
        let pre = x.matmul(w_enc)?.broadcast_add(b_enc)?;
        Ok(match self.cfg.architecture {
            Architecture::Standard => pre.relu()?,
            Architecture::JumpRelu => {
                (pre.relu()? * pre.broadcast_gt(theta)?.to_dtype(DType::F32)?)?
            }
            Architecture::TopK(k) => {
                let mut data = pre
                    .to_device(&Device::Cpu)?
                    .flatten_all()?
                    .to_vec1::<f32>()?;
                self.keep_top_k(&mut data, k);
                Tensor::from_vec(data, pre.dims2()?, pre.device())?
            }
        })
    }

    /// Encodes `x` (`[n, d_in]`) into `out` as host rows `[n, d_sae]` and returns n. `out` is
    /// resized, so a caller that encodes slice after slice reuses one allocation. On the CPU
    /// this is one GEMM into `out`, then the bias and the activation in place; NaN stays NaN.
    pub fn encode_into(&self, x: &Tensor, out: &mut Vec<f32>) -> Result<usize> {
        let d_sae = self.cfg.d_sae;
        let EncoderWeights::Host { w_enc_t, b_enc } = &self.encoder else {
            let acts = self.encode(x)?.to_device(&Device::Cpu)?;
            let n = acts.dims2()?.0;
            out.clear();
            out.extend(acts.flatten_all()?.to_vec1::<f32>()?);
            return Ok(n);
        };
        let x = self.prepared_input(x)?;
        let n = x.dims2()?.0;
        let x = x.flatten_all()?.to_vec1::<f32>()?;
        out.resize(n * d_sae, 0.0);
        crate::model::kernels::matmul_transposed(&x, w_enc_t, out, n, self.cfg.d_in, d_sae);
        match self.cfg.architecture {
            Architecture::Standard => {
                let act = crate::model::kernels::Act::Relu;
                crate::model::kernels::bias_act(out, Some(b_enc), act, d_sae)
            }
            Architecture::JumpRelu => jump_relu_rows(out, b_enc, &self.threshold, d_sae),
            Architecture::TopK(k) => {
                let act = crate::model::kernels::Act::Identity;
                crate::model::kernels::bias_act(out, Some(b_enc), act, d_sae);
                self.keep_top_k(out, k);
            }
        }
        Ok(n)
    }

    /// `x` normalised as the SAE's config asks, with `b_dec` subtracted when it applies it to
    /// the input; checks the width.
    fn prepared_input(&self, x: &Tensor) -> Result<Tensor> {
        let (_, d) = x.dims2()?;
        ensure!(
            d == self.cfg.d_in,
            "SAE input has width {d}, expected d_in = {}",
            self.cfg.d_in
        );
        let x = self.normalize(x)?;
        Ok(if self.cfg.apply_b_dec_to_input {
            x.broadcast_sub(&self.b_dec)?
        } else {
            x
        })
    }

    /// A TopK SAE's activations from its pre-activations (host rows): each row's k largest
    /// through relu, times the decoder norms when they were not folded into the encoder.
    fn keep_top_k(&self, rows: &mut [f32], k: usize) {
        let d_sae = self.cfg.d_sae;
        top_k_rows(rows, d_sae, k);
        if self.norms_after_top_k {
            for row in rows.chunks_exact_mut(d_sae) {
                row.iter_mut()
                    .zip(&self.decoder_norms)
                    .for_each(|(v, n)| *v *= n);
            }
        }
    }

    /// How a TopK SAE chooses its latents, as recorded in run metadata: `unscaled` or
    /// `decoder-norm-scaled` ([`TopKSelection`]); None for other architectures.
    pub fn selection_rule(&self) -> Option<&'static str> {
        match self.cfg.architecture {
            Architecture::TopK(_) => Some(self.cfg.topk_selection.as_str()),
            _ => None,
        }
    }
}

/// Most bytes of activations one encode call produces. The buffer is reused from slice to
/// slice, and a GEMM of a few hundred rows runs near the machine's peak (170 rows: 20% below).
const ENCODE_SLICE_BYTES: usize = 64 << 20;

/// The slices `(start, rows)` in which to encode `n` rows of an SAE of `d_sae` latents: as few
/// as keep each under [`ENCODE_SLICE_BYTES`] of activations (and at least 64 rows), of equal
/// size.
pub fn encode_slices(n: usize, d_sae: usize) -> Vec<(usize, usize)> {
    let most = (ENCODE_SLICE_BYTES / (4 * d_sae.max(1))).max(64);
    let rows = n.div_ceil(n.div_ceil(most).max(1)).max(1);
    (0..n).step_by(rows).map(|s| (s, rows.min(n - s))).collect()
}

/// `v ← relu(v + b)` where `v + b > θ`, else 0 (NaN kept), for every row of `d_sae` values.
fn jump_relu_rows(data: &mut [f32], bias: &[f32], theta: &[f32], d_sae: usize) {
    use rayon::prelude::*;
    data.par_chunks_mut(d_sae * 16).for_each(|chunk| {
        for row in chunk.chunks_exact_mut(d_sae) {
            for ((v, b), t) in row.iter_mut().zip(bias).zip(theta) {
                let x = *v + b;
                let kept = (x > *t && x > 0.0) || x.is_nan();
                *v = if kept { x } else { 0.0 };
            }
        }
    });
}

/// The per-latent cut `t + θ_i` of activation threshold `t`, computed in f32: latent i is
/// active on a token iff its (folded) activation is strictly above it ([`is_active`]).
pub fn threshold_cut(t: f64, theta: &[f32]) -> Vec<f32> {
    theta.iter().map(|&th| t as f32 + th).collect()
}

/// The active-latent rule: `act > t + θ_i` (strict), with `cut` from [`threshold_cut`].
#[inline]
pub fn is_active(act: f32, cut: f32) -> bool {
    act > cut
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

/// Keeps each row (of `f` values) at its k largest entries (ties to the lower index), through
/// relu; zeros elsewhere.
fn top_k_rows(data: &mut [f32], f: usize, k: usize) {
    let k = k.min(f);
    let mut order: Vec<usize> = Vec::with_capacity(f);
    for row in data.chunks_exact_mut(f) {
        order.clear();
        order.extend(0..f);
        if k < f {
            order.select_nth_unstable_by(k, |&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
        }
        let keep: Vec<usize> = order[..k].to_vec();
        let kept: Vec<f32> = keep.iter().map(|&j| row[j].max(0.0)).collect();
        row.iter_mut().for_each(|v| *v = 0.0);
        for (j, v) in keep.into_iter().zip(kept) {
            row[j] = v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The accelerators' tensor path, run on the CPU, gives the host path's activations for
    /// every architecture (same products, summed in different orders: within 1e-5).
    #[test]
    fn the_tensor_encoder_matches_the_host_encoder() {
        let (d_in, d_sae, n) = (24, 70, 9);
        let value = |i: usize, scale: f32| ((i * 7919 % 113) as f32 / 113.0 - 0.5) * scale;
        let params = SaeParams {
            w_enc: (0..d_in * d_sae).map(|i| value(i, 0.6)).collect(),
            b_enc: (0..d_sae).map(|i| value(i + 5, 0.3)).collect(),
            w_dec: (0..d_sae * d_in).map(|i| value(i + 11, 1.0)).collect(),
            b_dec: (0..d_in).map(|i| value(i + 17, 0.2)).collect(),
            threshold: Some((0..d_sae).map(|i| value(i + 23, 0.2).abs()).collect()),
        };
        let x: Vec<f32> = (0..n * d_in).map(|i| value(i + 29, 4.0)).collect();
        let x = Tensor::from_vec(x, (n, d_in), &Device::Cpu).unwrap();
        for architecture in [
            Architecture::Standard,
            Architecture::JumpRelu,
            Architecture::TopK(5),
        ] {
            let cfg = SaeConfig::in_memory(d_in, d_sae, "blocks.0.hook_resid_pre", architecture);
            let mut p = params.clone();
            if architecture != Architecture::JumpRelu {
                p.threshold = None;
            }
            let mut sae = Sae::from_params(cfg, p, "test".into(), &Device::Cpu).unwrap();
            let host: Vec<f32> = sae
                .encode(&x)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            assert!(
                host.iter().filter(|&&v| v > 0.0).count() >= n,
                "{architecture:?}"
            );
            let EncoderWeights::Host { w_enc_t, b_enc } = &sae.encoder else {
                panic!("a CPU SAE keeps its encoder on the host")
            };
            let w_enc = transposed(w_enc_t, d_sae, d_in);
            sae.encoder = EncoderWeights::tensors(
                &w_enc,
                b_enc.clone(),
                &sae.threshold,
                d_in,
                d_sae,
                &Device::Cpu,
            )
            .unwrap();
            let tensor: Vec<f32> = sae
                .encode(&x)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            for (a, b) in host.iter().zip(&tensor) {
                assert!((a - b).abs() <= 1e-5, "{architecture:?}: {a} vs {b}");
            }
        }
    }
}
