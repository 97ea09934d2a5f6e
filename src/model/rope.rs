//! Rotary position embedding frequencies as transformers computes them: the default
//! `θ^(−2i/d)`, and the `linear` (Gemma 3's global layers) and `llama3` (Llama 3.1 and later)
//! scalings, read from `rope_theta` + `rope_scaling` (transformers 4) or `rope_parameters`
//! (transformers 5).

use crate::json_keys::JsonKeys;
use anyhow::{bail, ensure, Result};
use std::f64::consts::PI;

/// How the default frequencies are rescaled.
#[derive(Debug, Clone, PartialEq)]
pub enum RopeScaling {
    None,
    /// Every frequency divided by `factor`.
    Linear {
        factor: f64,
    },
    /// Llama 3.1: long wavelengths divided by `factor`, short ones kept, the band between
    /// interpolated.
    Llama3 {
        factor: f64,
        low_freq_factor: f64,
        high_freq_factor: f64,
        original_max_positions: f64,
    },
}

/// The RoPE of a group of layers: base and scaling.
#[derive(Debug, Clone, PartialEq)]
pub struct RopeSpec {
    pub theta: f64,
    pub scaling: RopeScaling,
}

impl RopeSpec {
    /// Default RoPE with base `theta`.
    pub fn plain(theta: f64) -> Self {
        Self {
            theta,
            scaling: RopeScaling::None,
        }
    }

    /// Reads the RoPE of a llama-style `config.json`: the base is `rope_theta` (or
    /// `rope_parameters.rope_theta`, else `default_theta`), the scaling `rope_scaling` (or
    /// `rope_parameters`).
    pub fn from_config(keys: &JsonKeys, default_theta: f64) -> Result<Self> {
        let params = match keys.object("rope_scaling")? {
            Some(scaling) => Some(scaling),
            None => keys.object("rope_parameters")?,
        };
        let theta = match keys.positive_number("rope_theta")? {
            Some(theta) => theta,
            None => params
                .map(|p| p.positive_number("rope_theta"))
                .transpose()?
                .flatten()
                .unwrap_or(default_theta),
        };
        Self::from_params(params.as_ref(), theta)
    }

    /// The RoPE of one parameter object (`{rope_type, factor, ...}`; `type` in older files)
    /// with base `theta` unless the object names its own `rope_theta`.
    pub fn from_params(params: Option<&JsonKeys>, theta: f64) -> Result<Self> {
        let Some(p) = params else {
            return Ok(Self::plain(theta));
        };
        let theta = p.positive_number("rope_theta")?.unwrap_or(theta);
        let kind = match p.str("rope_type")? {
            Some(kind) => Some(kind),
            None => p.str("type")?,
        };
        let factor = || p.require("factor", p.positive_number("factor")?);
        let scaling = match kind.unwrap_or("default") {
            "default" => RopeScaling::None,
            "linear" => RopeScaling::Linear { factor: factor()? },
            "llama3" => {
                let need = |key: &str| p.require(key, p.positive_number(key)?);
                let (low, high) = (need("low_freq_factor")?, need("high_freq_factor")?);
                ensure!(
                    high > low,
                    "{}: llama3 RoPE needs high_freq_factor ({high}) > low_freq_factor ({low})",
                    p.file()
                );
                RopeScaling::Llama3 {
                    factor: factor()?,
                    low_freq_factor: low,
                    high_freq_factor: high,
                    original_max_positions: need("original_max_position_embeddings")?,
                }
            }
            other => bail!(
                "{}: rope_type '{other}' is not supported yet (saecooc reads default, linear \
                 and llama3 RoPE)",
                p.file()
            ),
        };
        Ok(Self { theta, scaling })
    }

    /// The inverse frequencies of the `head_dim / 2` rotated pairs.
    pub fn inv_freq(&self, head_dim: usize) -> Vec<f32> {
        (0..head_dim / 2)
            .map(|i| {
                let inv = 1.0 / self.theta.powf(2.0 * i as f64 / head_dim as f64);
                self.scaled(inv) as f32
            })
            .collect()
    }

    /// One default inverse frequency after the scaling.
    fn scaled(&self, inv: f64) -> f64 {
        match self.scaling {
            RopeScaling::None => inv,
            RopeScaling::Linear { factor } => inv / factor,
            RopeScaling::Llama3 {
                factor,
                low_freq_factor,
                high_freq_factor,
                original_max_positions,
            } => {
                let wavelen = 2.0 * PI / inv;
                if wavelen < original_max_positions / high_freq_factor {
                    inv
                } else if wavelen > original_max_positions / low_freq_factor {
                    inv / factor
                } else {
                    let smooth = (original_max_positions / wavelen - low_freq_factor)
                        / (high_freq_factor - low_freq_factor);
                    (1.0 - smooth) * inv / factor + smooth * inv
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn llama3_scaling_keeps_high_divides_low_and_blends_between() {
        let cfg = json!({"rope_theta": 500000.0, "rope_scaling": {"rope_type": "llama3",
            "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
            "original_max_position_embeddings": 8192}});
        let spec = RopeSpec::from_config(&JsonKeys::new(&cfg, "c.json").unwrap(), 1e4).unwrap();
        let plain = RopeSpec::plain(500000.0).inv_freq(128);
        let scaled = spec.inv_freq(128);
        assert_eq!(scaled[0], plain[0]);
        assert!((scaled[63] - plain[63] / 8.0).abs() <= 1e-6 * plain[63]);
        let mid = (0..64)
            .find(|&i| 2.0 * PI / plain[i] as f64 > 2048.0)
            .unwrap();
        assert!(scaled[mid] < plain[mid] && scaled[mid] > plain[mid] / 8.0);
    }

    #[test]
    fn unknown_rope_types_are_named() {
        let cfg = json!({"rope_parameters": {"rope_type": "yarn", "factor": 4.0}});
        let err = RopeSpec::from_config(&JsonKeys::new(&cfg, "c.json").unwrap(), 1e4)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("c.json: rope_type 'yarn' is not supported yet"),
            "{err}"
        );
    }
}
