//! `llama_scope` and `llama_scope_r1_distill`: OpenMOSS' Llama Scope SAEs, JumpReLU with the
//! encoder and decoder as torch `Linear` layers (`encoder.weight [d_sae, d_in]`,
//! `decoder.weight [d_in, d_sae]`, transposed into SAELens' `W_enc`, `W_dec`).
//! - `llama_scope`: `hyperparams.json` + `checkpoints/final.safetensors`; one threshold for
//!   every latent, `jump_relu_threshold · √d_model / dataset_average_activation_norm.in`.
//! - `llama_scope_r1_distill`: `config.json` (`d_sae = d_model · expansion_factor`) +
//!   `sae_weights.safetensors`, per-latent `exp(log_jumprelu_threshold)`.
//!
//! Both expect inputs scaled to norm √d_model on average (`expected_average_only_in`): the
//! registry's `norm_scaling_factor` is folded into the weights as SAELens folds it; without
//! one SAELens reads the input unscaled, and so does saecooc.

use super::{linear_layers, read_json, registry_config, ConvertedFiles};
use crate::json_keys::JsonKeys;
use crate::sae::formats::{HostTensors, Reading};
use crate::sae::{Normalization, SaeConfig, SaeDefaults, SaeFormat};
use anyhow::{ensure, Context, Result};
use std::path::Path;

/// The dataset SAELens records for Llama Scope.
const SLIM_PAJAMA: &str = "cerebras/SlimPajama-627B";

/// The SAELens-named tensors of a Llama Scope weights file.
fn linear_tensors(weights: &Path, reading: Reading) -> Result<HostTensors> {
    let mut tensors = reading.safetensors(weights)?;
    linear_layers(&mut tensors, "encoder", "decoder", weights)?;
    Ok(tensors)
}

/// The config file a Llama Scope format requires, as JSON keys.
fn config_json(files: &ConvertedFiles) -> Result<(serde_json::Value, String)> {
    let path = files.config.as_ref().with_context(|| {
        format!(
            "{}: the SAE's config file is missing",
            files.weights.display()
        )
    })?;
    Ok((read_json(path)?, path.display().to_string()))
}

/// A required number of a config (`positive`: above zero).
fn number(keys: JsonKeys, key: &str, positive: bool) -> Result<f64> {
    let value = if positive {
        keys.positive_number(key)?
    } else {
        keys.number(key)?
    };
    keys.require(key, value)
}

pub(super) fn read(
    files: &ConvertedFiles,
    defaults: &SaeDefaults,
    reading: Reading,
) -> Result<(SaeConfig, HostTensors)> {
    let (json, file) = config_json(files)?;
    let keys = JsonKeys::new(&json, &file)?;
    let d_in = keys.require("d_model", keys.positive("d_model")?)?;
    let hook_name = keys.require("hook_point_in", keys.str("hook_point_in")?)?;
    let mut tensors = linear_tensors(&files.weights, reading)?;
    let d_sae = match files.format {
        SaeFormat::LlamaScope => {
            let d_sae = keys.require("d_sae", keys.positive("d_sae")?)?;
            let average = keys.require(
                "dataset_average_activation_norm",
                keys.object("dataset_average_activation_norm")?,
            )?;
            let theta = number(keys, "jump_relu_threshold", false)? * (d_in as f64).sqrt()
                / number(average, "in", true)?;
            tensors.insert(
                "threshold".into(),
                (vec![d_sae], Ok(vec![theta as f32; d_sae])),
            );
            d_sae
        }
        _ => {
            let d_sae =
                d_in * keys.require("expansion_factor", keys.positive("expansion_factor")?)?;
            let (shape, log) = tensors.remove("log_jumprelu_threshold").with_context(|| {
                format!(
                    "{} has no tensor 'log_jumprelu_threshold'",
                    files.weights.display()
                )
            })?;
            let theta = log.map(|v| v.iter().map(|x| x.exp()).collect());
            tensors.insert("threshold".into(), (shape, theta));
            d_sae
        }
    };
    let (rows, _) = super::matrix_shape(&tensors, "W_enc", &files.weights)?;
    ensure!(
        rows == d_in,
        "{}: encoder.weight reads {rows} dimensions, but {file} says d_model = {d_in}",
        files.weights.display()
    );
    let normalize = if defaults.norm_scaling_factor.is_some() {
        Normalization::ExpectedAverageOnlyIn(None)
    } else {
        Normalization::None
    };
    let mut cfg = registry_config(d_in, d_sae, hook_name.to_string(), defaults, SLIM_PAJAMA);
    cfg.normalize_activations = normalize;
    Ok((cfg, tensors))
}
