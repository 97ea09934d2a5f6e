//! `mwhanna_transcoder`: per-layer transcoders, `layer_N.safetensors` at the repo root
//! (the registry's `path` is the file), `W_enc` stored `[d_sae, d_in]` and transposed,
//! `W_dec [d_sae, d_out]`, `b_enc`, `b_dec`: a standard ReLU transcoder read by its encoder at
//! `blocks.N.mlp.hook_in` (the MLP's normed input), `b_dec` not subtracted. The repo's
//! `wandb-config.yaml` (sizes, which `W_enc` gives too) is not read; the window length is the
//! registry's.

use super::{matrix_shape, registry_config, transpose_linear, ConvertedFiles, PILE};
use crate::sae::formats::{HostTensors, Reading};
use crate::sae::{Architecture, SaeConfig, SaeDefaults};
use anyhow::{Context, Result};

/// The layer of `layer_N.safetensors` (the number after the last `_`).
fn layer(file: &str) -> Option<usize> {
    file.trim_end_matches(".safetensors")
        .rsplit('_')
        .next()?
        .parse()
        .ok()
}

pub(super) fn read(
    files: &ConvertedFiles,
    defaults: &SaeDefaults,
    reading: Reading,
) -> Result<(SaeConfig, HostTensors)> {
    let layer = layer(&files.folder).with_context(|| {
        format!(
            "transcoder file '{}' is not named layer_N.safetensors",
            files.folder
        )
    })?;
    let mut tensors = reading.safetensors(&files.weights)?;
    transpose_linear(&mut tensors, "W_enc", "W_enc", &files.weights)?;
    let (d_in, d_sae) = matrix_shape(&tensors, "W_enc", &files.weights)?;
    let hook = format!("blocks.{layer}.mlp.hook_in");
    let mut cfg = registry_config(d_in, d_sae, hook, defaults, PILE);
    cfg.architecture = Architecture::Standard;
    cfg.context_size = defaults.context_size;
    cfg.prepend_bos = None;
    Ok((cfg, tensors))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_file_names_the_layer() {
        assert_eq!(super::layer("layer_12.safetensors"), Some(12));
        assert_eq!(super::layer("weights.safetensors"), None);
    }
}
