//! `gemma_3`: Gemma Scope 2. `params.safetensors` (`w_enc [d_in, d_sae]`, `w_dec`, `b_enc`,
//! `b_dec`, `threshold`, a skip transcoder's `affine_skip_connection`) and an optional
//! `config.json`; without it the hook comes from the folder name. A cross-layer transcoder
//! (`clt` in the folder) is one file per layer, `clt/.../layer_N.safetensors`, whose
//! `w_dec [d_sae, layers, d_out]` is summed over its layers. Every SAE is JumpReLU read at its
//! Hugging Face module (`hf_hook_point_in`); transcoders are read by their encoder.

use super::{layer_in, matrix_shape, read_json, registry_config, rename, ConvertedFiles, PILE};
use crate::json_keys::JsonKeys;
use crate::sae::formats::{HostTensors, Reading};
use crate::sae::{SaeConfig, SaeDefaults};
use anyhow::{bail, ensure, Context, Result};

/// Whether `folder` names a cross-layer transcoder (SAELens' test: `clt` anywhere in it).
fn is_clt(folder: &str) -> bool {
    folder.contains("clt")
}

/// Whether `folder` names a transcoder of either kind.
fn is_transcoder(folder: &str) -> bool {
    folder.contains("transcoder") || is_clt(folder)
}

/// The weights file of the SAE in `folder`: `folder/params.safetensors`, or for a cross-layer
/// transcoder `folder.safetensors` (its last path part is the file's name).
pub(super) fn weights_file(folder: &str) -> String {
    if is_clt(folder) {
        format!("{folder}.safetensors")
    } else {
        super::joined(folder, "params.safetensors")
    }
}

/// The Hugging Face module the SAE reads, as SAELens infers it from the folder when there is no
/// config.json.
fn inferred_hook(folder: &str, layer: usize) -> Result<String> {
    let module = if is_transcoder(folder) {
        "pre_feedforward_layernorm.output"
    } else if folder.contains("resid_post") {
        "output"
    } else if folder.contains("attn_out") {
        "self_attn.o_proj.input"
    } else if folder.contains("mlp_out") {
        "post_feedforward_layernorm.output"
    } else {
        bail!(
            "Gemma Scope 2 folder '{folder}' names no hook (resid_post, attn_out, mlp_out, transcoder or clt) and has no config.json"
        )
    };
    Ok(format!("model.layers.{layer}.{module}"))
}

/// The hook the SAE reads: config.json's `hf_hook_point_in` (checked to be JumpReLU), else
/// the folder's.
fn hook(files: &ConvertedFiles, layer: usize) -> Result<String> {
    let Some(path) = &files.config else {
        return inferred_hook(&files.folder, layer);
    };
    let json = read_json(path)?;
    let file = path.display().to_string();
    let keys = JsonKeys::new(&json, &file)?;
    let architecture = keys.str("architecture")?;
    ensure!(
        architecture == Some("jump_relu"),
        "{file}: architecture is {architecture:?}; Gemma Scope 2 SAEs are 'jump_relu'"
    );
    match keys.str("hf_hook_point_in")? {
        Some(h) => Ok(h.to_string()),
        None => inferred_hook(&files.folder, layer),
    }
}

/// Sums a cross-layer transcoder's `W_dec [d_sae, layers, d_out]` over its layers.
fn sum_over_layers(tensors: &mut HostTensors, file: &str) -> Result<()> {
    let (shape, data) = tensors
        .remove("W_dec")
        .with_context(|| format!("{file} has no tensor 'w_dec'"))?;
    let [d_sae, layers, d_out] = shape[..] else {
        bail!("{file}: a cross-layer transcoder's w_dec has shape {shape:?}, expected [d_sae, layers, d_out]");
    };
    let summed = data.map(|v| {
        v.chunks_exact(layers * d_out)
            .flat_map(|row| (0..d_out).map(move |j| (0..layers).map(|l| row[l * d_out + j]).sum()))
            .collect()
    });
    tensors.insert("W_dec".into(), (vec![d_sae, d_out], summed));
    Ok(())
}

pub(super) fn read(
    files: &ConvertedFiles,
    defaults: &SaeDefaults,
    reading: Reading,
) -> Result<(SaeConfig, HostTensors)> {
    let file = files.weights.display().to_string();
    let layer = layer_in(&files.folder).with_context(|| {
        format!(
            "Gemma Scope 2 folder '{}' has no layer_N in its name",
            files.folder
        )
    })?;
    let hook_name = hook(files, layer)?;
    let mut tensors = reading.safetensors(&files.weights)?;
    for (from, to) in [("w_enc", "W_enc"), ("w_dec", "W_dec")] {
        rename(&mut tensors, from, to);
    }
    if is_clt(&files.folder) {
        sum_over_layers(&mut tensors, &file)?;
    }
    let (d_in, d_sae) = matrix_shape(&tensors, "W_enc", &files.weights)?;
    let cfg = registry_config(d_in, d_sae, hook_name, defaults, PILE);
    Ok((cfg, tensors))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_folder_names_the_hook_and_the_file() {
        let hook = |f: &str| inferred_hook(f, layer_in(f).unwrap()).unwrap();
        assert_eq!(
            hook("attn_out_all/layer_3_width_16k_l0_big"),
            "model.layers.3.self_attn.o_proj.input"
        );
        assert_eq!(
            hook("transcoder_all/layer_3_width_16k_l0_big_affine"),
            "model.layers.3.pre_feedforward_layernorm.output"
        );
        assert!(inferred_hook("other/layer_3", 3).is_err());
        assert_eq!(weights_file("clt/w/layer_2"), "clt/w/layer_2.safetensors");
        assert_eq!(
            weights_file("mlp_out/layer_2"),
            "mlp_out/layer_2/params.safetensors"
        );
    }
}
