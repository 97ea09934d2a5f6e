//! `dictionary_learning_1`: SAEs trained with the dictionary_learning library (SAE Bench and
//! others). `ae.pt` is the torch-saved `state_dict` of the autoencoder, read here without torch
//! (the zip + pickle layout of `torch.save`); `config.json` names the trainer's `dict_class`,
//! which fixes what SAELens builds:
//! - `AutoEncoderTopK`: TopK with the trainer's k (the file's own threshold unused);
//! - `BatchTopKSAE`, `MatryoshkaBatchTopKSAE`: JumpReLU at the file's threshold (one value
//!   for every latent), `b_dec` subtracted from the input;
//! - `JumpReluAutoEncoder`: JumpReLU, `b_dec` not subtracted;
//! - `GatedAutoEncoder`: gated, which saecooc does not encode;
//! - any other: standard ReLU, `b_dec` subtracted.
//!
//! The hook is `blocks.{layer}.hook_resid_post`. Tensors: `W_enc` (else `encoder.weight`
//! transposed), `W_dec` (else `decoder.weight` transposed), `b_enc` (else `encoder.bias`),
//! `b_dec` (else `bias`, else `decoder_bias`).

use super::{read_json, registry_config, rename, transpose_linear, ConvertedFiles};
use crate::json_keys::JsonKeys;
use crate::sae::formats::{HostTensors, Reading};
use crate::sae::{Architecture, SaeConfig, SaeDefaults};
use anyhow::{bail, Context, Result};
use std::path::Path;

/// What SAELens builds for a trainer class: the architecture and whether `b_dec` is
/// subtracted from the input.
fn architecture(dict_class: &str, k: Option<usize>, file: &str) -> Result<(Architecture, bool)> {
    Ok(match dict_class {
        "AutoEncoderTopK" => {
            let k = k.with_context(|| format!("{file}: an AutoEncoderTopK trainer has no k"))?;
            (Architecture::TopK(k), true)
        }
        "BatchTopKSAE" | "MatryoshkaBatchTopKSAE" => (Architecture::JumpRelu, true),
        "JumpReluAutoEncoder" => (Architecture::JumpRelu, false),
        "GatedAutoEncoder" => bail!(
            "{file}: a GatedAutoEncoder is a gated SAE, which saecooc does not encode (standard, JumpReLU and TopK only)"
        ),
        _ => (Architecture::Standard, true),
    })
}

/// The autoencoder's tensors under SAELens' names.
fn state_dict(path: &Path, reading: Reading) -> Result<HostTensors> {
    let mut tensors = reading.torch(path)?;
    if !tensors.contains_key("W_enc") {
        transpose_linear(&mut tensors, "encoder.weight", "W_enc", path)?;
    }
    if !tensors.contains_key("W_dec") {
        transpose_linear(&mut tensors, "decoder.weight", "W_dec", path)?;
    }
    if !tensors.contains_key("b_enc") {
        rename(&mut tensors, "encoder.bias", "b_enc");
    }
    for other in ["bias", "decoder_bias"] {
        if !tensors.contains_key("b_dec") {
            rename(&mut tensors, other, "b_dec");
        }
    }
    Ok(tensors)
}

/// A JumpReLU threshold of one value spread over every latent, as SAELens spreads it.
fn spread_threshold(tensors: &mut HostTensors, d_sae: usize) {
    if let Some((shape, Ok(values))) = tensors.get_mut("threshold") {
        if shape.is_empty() && values.len() == 1 {
            *values = vec![values[0]; d_sae];
            *shape = vec![d_sae];
        }
    }
}

pub(super) fn read(
    files: &ConvertedFiles,
    defaults: &SaeDefaults,
    reading: Reading,
) -> Result<(SaeConfig, HostTensors)> {
    let path = files
        .config
        .as_ref()
        .with_context(|| format!("{}: the SAE has no config.json", files.weights.display()))?;
    let json = read_json(path)?;
    let file = path.display().to_string();
    let top = JsonKeys::new(&json, &file)?;
    let trainer = top.require("trainer", top.object("trainer")?)?;
    let dict_class = trainer.require("dict_class", trainer.str("dict_class")?)?;
    let (architecture, apply_b_dec) = architecture(dict_class, trainer.positive("k")?, &file)?;
    let layer = trainer.require("layer", trainer.count("layer")?)?;
    let d_in = trainer.require("activation_dim", trainer.positive("activation_dim")?)?;
    let d_sae = trainer.require("dict_size", trainer.positive("dict_size")?)?;
    let ctx_len = match top.object("buffer")? {
        Some(buffer) => buffer.positive("ctx_len")?,
        None => None,
    };
    let mut tensors = state_dict(&files.weights, reading)?;
    if architecture == Architecture::JumpRelu {
        spread_threshold(&mut tensors, d_sae);
    } else {
        tensors.remove("threshold");
    }
    let hook = format!("blocks.{layer}.hook_resid_post");
    let mut cfg = registry_config(d_in, d_sae, hook, defaults, super::PILE);
    cfg.architecture = architecture;
    cfg.apply_b_dec_to_input = apply_b_dec;
    cfg.context_size = defaults.context_size.or(ctx_len);
    Ok((cfg, tensors))
}
