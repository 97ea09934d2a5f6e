//! Reading an SAE's files: SAELens `cfg.json` + `sae_weights.safetensors`, and Gemma Scope
//! `params.npz`.

use super::{
    Architecture, Normalization, Sae, SaeConfig, SaeDefaults, SaeFiles, SaeParams, TopKSelection,
};
use crate::io::npy::NpyData;
use crate::io::npz;
use crate::json_keys::JsonKeys;
use anyhow::{bail, ensure, Context, Result};
use candle_core::{DType, Device, Tensor};
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;

/// Tensors read from an SAE file: name → (shape, f32 data, or the dtype of a tensor that is
/// not floats).
pub(super) type HostTensors = HashMap<String, (Vec<usize>, std::result::Result<Vec<f32>, String>)>;

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

/// How much of an SAE's weight files a reader takes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reading {
    /// Every value (loading the SAE).
    Values,
    /// Names and shapes alone, from the files' headers (checking an SAE's config before any
    /// work); each tensor's values stand as `Err("not read")`.
    Shapes,
}

/// What stands for the values of a tensor read by [`Reading::Shapes`].
const NOT_READ: &str = "not read";

impl Reading {
    /// Every tensor of a safetensors file, floats read as f32.
    pub(super) fn safetensors(self, path: &Path) -> Result<HostTensors> {
        if self == Reading::Shapes {
            return crate::model::safetensors_shapes(path).map(not_read);
        }
        crate::model::check_safetensors_header(path)?;
        let loaded = candle_core::safetensors::load(path, &Device::Cpu)
            .with_context(|| format!("cannot read SAE weights {}", path.display()))?;
        host_tensors(loaded)
    }

    /// Every tensor of a torch-saved (`torch.save`) dict of tensors, read without torch.
    pub(super) fn torch(self, path: &Path) -> Result<HostTensors> {
        let cannot = || format!("cannot read the torch-saved tensors {}", path.display());
        if self == Reading::Shapes {
            let infos = candle_core::pickle::read_pth_tensor_info(path, false, None)
                .with_context(cannot)?;
            return Ok(not_read(
                infos
                    .into_iter()
                    .map(|i| (i.name, i.layout.shape().dims().to_vec())),
            ));
        }
        let loaded = candle_core::pickle::read_all(path).with_context(cannot)?;
        host_tensors(loaded)
    }

    /// Every array of a `.npz` file, floats read as f32.
    pub(super) fn npz(self, path: &Path) -> Result<HostTensors> {
        if self == Reading::Shapes {
            return npz::array_shapes(path).map(not_read);
        }
        let mut tensors = HashMap::new();
        for (k, a) in npz::read_npz(path)? {
            let data = match a.data {
                NpyData::F16(_) | NpyData::F32(_) | NpyData::F64(_) => Ok(a.to_f32()),
                ref other => Err(npy_kind(other).to_string()),
            };
            tensors.insert(k, (a.shape.clone(), data));
        }
        Ok(tensors)
    }
}

/// Tensors known by name and shape only.
fn not_read(shapes: impl IntoIterator<Item = (String, Vec<usize>)>) -> HostTensors {
    shapes
        .into_iter()
        .map(|(k, shape)| (k, (shape, Err(NOT_READ.to_string()))))
        .collect()
}

/// Tensors as host vectors (floats as f32; other dtypes kept as their name, for messages).
pub(super) fn host_tensors(
    tensors: impl IntoIterator<Item = (String, Tensor)>,
) -> Result<HostTensors> {
    let mut out = HashMap::new();
    for (k, t) in tensors {
        let data = match t.dtype() {
            DType::F16 | DType::BF16 | DType::F32 | DType::F64 => Ok(tensor_to_vec(&t)?),
            other => Err(format!("{other:?}").to_lowercase()),
        };
        out.insert(k, (t.dims().to_vec(), data));
    }
    Ok(out)
}

fn tensor_to_vec(t: &Tensor) -> Result<Vec<f32>> {
    Ok(t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?)
}

pub(super) fn take_param(
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

/// Folds the registry's `norm_scaling_factor` into an `expected_average_only_in` SAE as
/// `SAE.from_pretrained` does: `W_enc · f`, `W_dec / f`, `b_dec / f`, no input scaling left.
/// Without a factor, or for another normalisation, nothing changes.
fn fold_registry_scaling(cfg: &mut SaeConfig, p: &mut SaeParams, factor: Option<f64>) {
    let Some(f) = factor else { return };
    if !matches!(
        cfg.normalize_activations,
        Normalization::ExpectedAverageOnlyIn(_)
    ) {
        return;
    }
    let f = f as f32;
    p.w_enc.iter_mut().for_each(|v| *v *= f);
    p.w_dec.iter_mut().for_each(|v| *v /= f);
    p.b_dec.iter_mut().for_each(|v| *v /= f);
    cfg.normalize_activations = Normalization::None;
}

impl Sae {
    /// An SAE's config as [`Sae::load`] reads it, from its config file and the shapes in its
    /// weight files' headers, no weight read: checks an SAE before any work. (The registry's
    /// `norm_scaling_factor` is folded only on loading.)
    pub fn read_config(files: &SaeFiles, defaults: &SaeDefaults) -> Result<SaeConfig> {
        Self::read(files, defaults, Reading::Shapes).map(|(cfg, _)| cfg)
    }

    /// The SAE's config and SAELens-named tensors, as `reading` reads them.
    fn read(
        files: &SaeFiles,
        defaults: &SaeDefaults,
        reading: Reading,
    ) -> Result<(SaeConfig, HostTensors)> {
        match files {
            SaeFiles::SaeLens { cfg, weights } => {
                Self::read_saelens(cfg, weights, defaults, reading)
            }
            SaeFiles::GemmaScope { params } => Self::read_gemma_scope(params, defaults, reading),
            SaeFiles::Converted(files) => super::convert::read(files, defaults, reading),
        }
    }

    /// Loads an SAE from its files, then folds decoder norms.
    pub fn load(files: &SaeFiles, defaults: &SaeDefaults, device: &Device) -> Result<Self> {
        let (cfg, mut tensors) = Self::read(files, defaults, Reading::Values)?;
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
        let mut params = SaeParams {
            w_enc: take_param(&mut tensors, "W_enc", &[d_in, d_sae], &file)?,
            b_enc: take_param(&mut tensors, "b_enc", &[d_sae], &file)?,
            w_dec: take_param(&mut tensors, "W_dec", &[d_sae, d_in], &file)?,
            b_dec: take_param(&mut tensors, "b_dec", &[d_in], &file)?,
            threshold,
        };
        let mut cfg = cfg;
        fold_registry_scaling(&mut cfg, &mut params, defaults.norm_scaling_factor);
        Self::from_params(cfg, params, file, device)
    }

    fn read_saelens(
        cfg_path: &Path,
        weights: &Path,
        defaults: &SaeDefaults,
        reading: Reading,
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
        let tensors = reading.safetensors(weights)?;
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

    fn read_gemma_scope(
        params: &Path,
        defaults: &SaeDefaults,
        reading: Reading,
    ) -> Result<(SaeConfig, HostTensors)> {
        let tensors = reading.npz(params)?;
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
}
