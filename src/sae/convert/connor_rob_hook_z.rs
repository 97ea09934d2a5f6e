//! `connor_rob_hook_z`: Connor Kissane and Rob Krzyzanowski's GPT-2 small attention SAEs, a
//! standard ReLU SAE on `hook_z` (every head's `z` concatenated, `n_heads · d_head` wide).
//! `NAME.pt` (the registry's `path`) is a torch-pickled state dict already in SAELens' names;
//! `NAME_cfg.json` beside it gives `act_size` (d_in), `dict_size` (d_sae) and `act_name` (the
//! hook). `b_dec` is subtracted from the input; windows of 128 tokens from BOS on OpenWebText.

use super::{read_json, registry_config, ConvertedFiles};
use crate::json_keys::JsonKeys;
use crate::sae::formats::{HostTensors, Reading};
use crate::sae::{Architecture, SaeConfig, SaeDefaults};
use anyhow::{Context, Result};

/// The config file of the SAE in `NAME.pt`: `NAME_cfg.json` (cut at the first `.pt`).
pub(super) fn config_file(weights: &str) -> String {
    let stem = weights.split(".pt").next().unwrap_or(weights);
    format!("{stem}_cfg.json")
}

pub(super) fn read(
    files: &ConvertedFiles,
    defaults: &SaeDefaults,
    reading: Reading,
) -> Result<(SaeConfig, HostTensors)> {
    let path = files.config.as_ref().with_context(|| {
        format!(
            "{}: the SAE has no _cfg.json beside it",
            files.weights.display()
        )
    })?;
    let json = read_json(path)?;
    let file = path.display().to_string();
    let keys = JsonKeys::new(&json, &file)?;
    let d_in = keys.require("act_size", keys.positive("act_size")?)?;
    let d_sae = keys.require("dict_size", keys.positive("dict_size")?)?;
    let hook = keys.require("act_name", keys.str("act_name")?)?.to_string();
    let tensors = reading.torch(&files.weights)?;
    let mut cfg = registry_config(d_in, d_sae, hook, defaults, "Skylion007/openwebtext");
    cfg.architecture = Architecture::Standard;
    cfg.apply_b_dec_to_input = true;
    cfg.context_size = defaults.context_size.or(Some(128));
    Ok((cfg, tensors))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_config_sits_beside_the_weights() {
        assert_eq!(
            super::config_file("gpt2-small_L0_Hcat_z_lr1.20e-03_v9.pt"),
            "gpt2-small_L0_Hcat_z_lr1.20e-03_v9_cfg.json"
        );
    }
}
