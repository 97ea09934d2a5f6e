//! `deepseek_r1`: qresearch's SAE on DeepSeek-R1-Distill-Llama-8B, a torch-pickled state dict
//! (the registry's `path`, `…-l{layer}.pt`) of `Linear` layers `encoder`, `decoder`: a
//! standard ReLU SAE at `blocks.{layer}.hook_resid_post` (the first `l` followed by digits in
//! the file name, as SAELens reads it), `b_dec` not subtracted, windows of 1024 tokens from
//! BOS on lmsys-chat-1m. The sizes are read from the tensors.

use super::{linear_layers, matrix_shape, registry_config, ConvertedFiles};
use crate::sae::formats::{HostTensors, Reading};
use crate::sae::{Architecture, SaeConfig, SaeDefaults};
use anyhow::{Context, Result};

/// The number after the first `l` that is followed by a digit.
fn layer(file: &str) -> Option<usize> {
    file.match_indices('l').find_map(|(i, _)| {
        let digits: String = file[i + 1..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().ok()
    })
}

pub(super) fn read(
    files: &ConvertedFiles,
    defaults: &SaeDefaults,
    reading: Reading,
) -> Result<(SaeConfig, HostTensors)> {
    let layer = layer(&files.folder).with_context(|| {
        format!(
            "DeepSeek R1 SAE file '{}' names no layer (l followed by digits)",
            files.folder
        )
    })?;
    let mut tensors = reading.torch(&files.weights)?;
    linear_layers(&mut tensors, "encoder", "decoder", &files.weights)?;
    let (d_in, d_sae) = matrix_shape(&tensors, "W_enc", &files.weights)?;
    let hook = format!("blocks.{layer}.hook_resid_post");
    let mut cfg = registry_config(d_in, d_sae, hook, defaults, super::goodfire::LMSYS_CHAT);
    cfg.architecture = Architecture::Standard;
    Ok((cfg, tensors))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_layer_follows_the_first_l_with_digits() {
        assert_eq!(
            super::layer("DeepSeek-R1-Distill-Llama-8B-SAE-l19.pt"),
            Some(19)
        );
        assert_eq!(super::layer("sae.pt"), None);
    }
}
