//! `goodfire`: Goodfire's two Llama SAEs, a torch-pickled state dict (`.pt` / `.pth`, the
//! registry's `path`) of `Linear` layers `encoder_linear`, `decoder_linear`: a standard ReLU
//! SAE, `b_dec` not subtracted, on lmsys-chat-1m. SAELens knows the two by repo and file, and
//! so does saecooc (the layer comes from that list); the sizes are read from the tensors.

use super::{linear_layers, registry_config, ConvertedFiles};
use crate::sae::formats::{HostTensors, Reading};
use crate::sae::{Architecture, SaeConfig, SaeDefaults};
use anyhow::{Context, Result};

/// The SAEs SAELens' loader accepts: (repo id, file, residual layer).
const KNOWN: &[(&str, &str, usize)] = &[
    (
        "Goodfire/Llama-3.3-70B-Instruct-SAE-l50",
        "Llama-3.3-70B-Instruct-SAE-l50.pt",
        50,
    ),
    (
        "Goodfire/Llama-3.1-8B-Instruct-SAE-l19",
        "Llama-3.1-8B-Instruct-SAE-l19.pth",
        19,
    ),
];

/// The Goodfire dataset (as SAELens records it).
pub(super) const LMSYS_CHAT: &str = "lmsys/lmsys-chat-1m";

pub(super) fn read(
    files: &ConvertedFiles,
    defaults: &SaeDefaults,
    reading: Reading,
) -> Result<(SaeConfig, HostTensors)> {
    let repo = files.repo_id.as_deref().unwrap_or("");
    let layer = KNOWN
        .iter()
        .find(|(r, f, _)| *r == repo && *f == files.folder)
        .map(|(_, _, layer)| *layer)
        .with_context(|| {
            format!(
                "unknown Goodfire SAE {repo}/{}: SAELens' goodfire loader reads only {}",
                files.folder,
                KNOWN
                    .iter()
                    .map(|(r, f, _)| format!("{r}/{f}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })?;
    let mut tensors = reading.torch(&files.weights)?;
    linear_layers(
        &mut tensors,
        "encoder_linear",
        "decoder_linear",
        &files.weights,
    )?;
    let (d_in, d_sae) = super::matrix_shape(&tensors, "W_enc", &files.weights)?;
    let hook = format!("blocks.{layer}.hook_resid_post");
    let mut cfg = registry_config(d_in, d_sae, hook, defaults, LMSYS_CHAT);
    cfg.architecture = Architecture::Standard;
    cfg.context_size = defaults.context_size;
    cfg.prepend_bos = None;
    Ok((cfg, tensors))
}
