//! `gemma_2`: Gemma Scope. `params.npz` (`W_enc [d_in, d_sae]`, `W_dec`, `b_enc`, `b_dec`,
//! `threshold`), JumpReLU, no config: SAELens infers the hook from the repo id (`res`, `mlp`,
//! `att`, whose SAEs read `hook_z`, d_in = n_heads · d_head) and the folder (`layer_N`,
//! `embedding`); d_in and d_sae are `W_enc`'s. An embedding SAE was trained on
//! embeddings divided by √d_in: its `W_enc` is divided and its `W_dec` multiplied by √d_in.

use super::{layer_in, matrix_shape, registry_config, rename, ConvertedFiles, PILE};
use crate::sae::formats::{HostTensors, Reading};
use crate::sae::{SaeConfig, SaeDefaults};
use anyhow::{bail, ensure, Context, Result};

/// The Gemma 2 models a Gemma Scope repo id names, in SAELens' order.
const MODELS: &[&str] = &["2b-it", "9b-it", "27b-it", "2b", "9b", "27b"];

/// The hook SAELens infers from the repo id and the folder (the repo id must name a Gemma 2
/// model, as SAELens requires).
fn hook(repo_id: &str, folder: &str) -> Result<String> {
    let embedding = folder.contains("embedding");
    let layer = match layer_in(folder) {
        Some(layer) => layer,
        None if embedding => 0,
        None => bail!("Gemma Scope folder '{folder}' has no layer_N in its name"),
    };
    ensure!(
        MODELS.iter().any(|key| repo_id.contains(key)),
        "Gemma Scope repo '{repo_id}' names no Gemma 2 model (2b, 9b, 27b)"
    );
    Ok(if repo_id.contains("res") && !embedding {
        format!("blocks.{layer}.hook_resid_post")
    } else if repo_id.contains("res") {
        "hook_embed".into()
    } else if repo_id.contains("mlp") {
        format!("blocks.{layer}.hook_mlp_out")
    } else if repo_id.contains("att") {
        format!("blocks.{layer}.attn.hook_z")
    } else {
        bail!("Gemma Scope repo '{repo_id}' names no hook (res, mlp or att)")
    })
}

/// Drops a `scaling_factor` of ones; any other is a fine-tuning factor SAELens refuses.
fn drop_unit_scaling(tensors: &mut HostTensors, file: &str) -> Result<()> {
    if let Some((_, values)) = tensors.remove("scaling_factor") {
        let ones = values.is_ok_and(|v| v.iter().all(|&x| (x - 1.0).abs() <= 1e-5));
        ensure!(
            ones,
            "{file}: scaling_factor is not all ones (a fine-tuning scaling factor SAELens refuses)"
        );
    }
    Ok(())
}

/// Multiplies every value of tensor `key` by `factor`.
fn scale(tensors: &mut HostTensors, key: &str, factor: f32) {
    if let Some((_, Ok(values))) = tensors.get_mut(key) {
        values.iter_mut().for_each(|v| *v *= factor);
    }
}

pub(super) fn read(
    files: &ConvertedFiles,
    defaults: &SaeDefaults,
    reading: Reading,
) -> Result<(SaeConfig, HostTensors)> {
    let file = files.weights.display().to_string();
    let mut tensors = reading.npz(&files.weights)?;
    let keys: Vec<String> = tensors.keys().cloned().collect();
    for key in keys.iter().filter(|k| k.starts_with("w_")) {
        rename(&mut tensors, key, &format!("W_{}", &key[2..]));
    }
    drop_unit_scaling(&mut tensors, &file)?;
    let (d_in, d_sae) = matrix_shape(&tensors, "W_enc", &files.weights)?;
    let hook_name = match (&files.repo_id, &defaults.hook_name) {
        (Some(repo), _) => hook(repo, &files.folder)?,
        (None, Some(hook)) => hook.clone(),
        (None, None) => bail!(
            "{file} is a Gemma Scope SAE without a repo id or hook name: its hook cannot be inferred"
        ),
    };
    if files.folder.contains("embedding") {
        let root = (d_in as f32).sqrt();
        scale(&mut tensors, "W_enc", 1.0 / root);
        scale(&mut tensors, "W_dec", root);
    }
    let cfg = registry_config(d_in, d_sae, hook_name, defaults, PILE);
    Ok((cfg, tensors))
}

/// SAELens' names of a Gemma Scope transcoder's arrays, by their lower-cased spellings.
const TRANSCODER_KEYS: &[(&[&str], &str)] = &[
    (&["w_enc", "wenc", "w_e"], "W_enc"),
    (&["w_dec", "wdec", "w_d"], "W_dec"),
    (&["b_enc", "benc", "b_e"], "b_enc"),
    (&["b_dec", "bdec", "b_d"], "b_dec"),
    (&["threshold"], "threshold"),
];

/// `gemma_2_transcoder`: Gemma Scope's transcoders, `params.npz` under whichever spelling of
/// each key (`W_enc`, `Wenc`, `W_E`, ...), JumpReLU read by its encoder at
/// `blocks.L.ln2.hook_normalized` (L from the folder, else the repo id).
pub(super) fn read_transcoder(
    files: &ConvertedFiles,
    defaults: &SaeDefaults,
    reading: Reading,
) -> Result<(SaeConfig, HostTensors)> {
    let mut tensors = HostTensors::new();
    for (key, value) in reading.npz(&files.weights)? {
        let lower = key.to_lowercase();
        if let Some((_, name)) = TRANSCODER_KEYS
            .iter()
            .find(|(k, _)| k.contains(&lower.as_str()))
        {
            tensors.insert(name.to_string(), value);
        }
    }
    let repo = files.repo_id.as_deref().unwrap_or("");
    let layer = layer_in(&files.folder)
        .or_else(|| layer_in(repo))
        .with_context(|| {
            format!(
                "Gemma Scope transcoder '{}' ({repo}) names no layer_N",
                files.folder
            )
        })?;
    let (d_in, d_sae) = matrix_shape(&tensors, "W_enc", &files.weights)?;
    let hook = format!("blocks.{layer}.ln2.hook_normalized");
    Ok((registry_config(d_in, d_sae, hook, defaults, PILE), tensors))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_repo_and_folder_name_the_hook() {
        let got = |r: &str, f: &str| hook(r, f).unwrap();
        assert_eq!(
            got("google/gemma-scope-2b-pt-att", "layer_3/width_16k/x"),
            "blocks.3.attn.hook_z"
        );
        assert_eq!(
            got("google/gemma-scope-9b-pt-res", "embedding/width_4k/x"),
            "hook_embed"
        );
        assert_eq!(
            got("google/gemma-scope-27b-pt-mlp", "layer_1/width_16k/x"),
            "blocks.1.hook_mlp_out"
        );
        assert!(hook("google/gemma-scope-2b-pt-att", "width_16k").is_err());
        assert!(hook("google/other-pt-res", "layer_1/width_16k").is_err());
    }
}
