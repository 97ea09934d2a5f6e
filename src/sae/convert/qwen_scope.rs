//! `qwen_scope`: Qwen Scope's TopK SAEs on the residual stream, one `layerN.sae.pt` per layer
//! (the registry's `path` is the file), a torch-pickled dict with `W_enc [d_sae, d_in]` and
//! `W_dec [d_in, d_sae]` (both transposed into SAELens' layout), `b_enc`, `b_dec`. The repo id
//! `Qwen/SAE-Res-MODEL-W{N}K-L0_{k}` gives k; the sizes are read from the tensors (SAELens
//! takes them from the repo id and a table of models). Hook `blocks.N.hook_resid_post` (the
//! decoder layer's output), input read as it is, TopK ranked on unscaled pre-activations.

use super::{matrix_shape, registry_config, transpose_linear, ConvertedFiles};
use crate::sae::formats::{HostTensors, Reading};
use crate::sae::{Architecture, SaeConfig, SaeDefaults};
use anyhow::{Context, Result};

/// The layer of `layerN.sae.pt`.
fn layer(file: &str) -> Option<usize> {
    let name = file.rsplit('/').next()?;
    name.strip_prefix("layer")?
        .strip_suffix(".sae.pt")?
        .parse()
        .ok()
}

/// k of a repo id `…-L0_{k}`.
fn k_of(repo_id: &str) -> Option<usize> {
    repo_id.rsplit_once("-L0_")?.1.parse().ok()
}

pub(super) fn read(
    files: &ConvertedFiles,
    defaults: &SaeDefaults,
    reading: Reading,
) -> Result<(SaeConfig, HostTensors)> {
    let layer = layer(&files.folder).with_context(|| {
        format!(
            "Qwen Scope file '{}' is not named layerN.sae.pt",
            files.folder
        )
    })?;
    let repo = files.repo_id.as_deref().unwrap_or("");
    let k = k_of(repo).with_context(|| {
        format!("Qwen Scope repo id '{repo}' does not end in -L0_K (the TopK k); set the registry's repo_id")
    })?;
    let mut tensors = reading.torch(&files.weights)?;
    transpose_linear(&mut tensors, "W_enc", "W_enc", &files.weights)?;
    transpose_linear(&mut tensors, "W_dec", "W_dec", &files.weights)?;
    let (d_in, d_sae) = matrix_shape(&tensors, "W_enc", &files.weights)?;
    let hook = format!("blocks.{layer}.hook_resid_post");
    let mut cfg = registry_config(d_in, d_sae, hook, defaults, "");
    cfg.architecture = Architecture::TopK(k);
    cfg.dataset_path = defaults.dataset_path.clone();
    Ok((cfg, tensors))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_file_names_the_layer_and_the_repo_k() {
        assert_eq!(super::layer("layer12.sae.pt"), Some(12));
        assert_eq!(super::layer("layer_12.sae.pt"), None);
        assert_eq!(
            super::k_of("Qwen/SAE-Res-Qwen3-1.7B-Base-W32K-L0_50"),
            Some(50)
        );
    }
}
