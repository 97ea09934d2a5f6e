//! Activation thresholds applied on the device that ran the SAE. Only one bit per (token,
//! latent, threshold) then crosses to the host, 32 latents to a `u32` word, instead of a 4-byte
//! activation per latent: 1/32 of the transfer for one threshold. The host turns the words into
//! active-latent lists (`pairs::lists_from_bits`). The rule is the host's own: latent i is
//! active iff `act > cut_i` (strict, in f32), so both give the same lists for the same
//! activations.

use anyhow::{ensure, Result};
use candle_core::{DType, Device, Tensor};

/// The cuts `t + θ_i` of every activation threshold, on the SAE's device.
pub struct DeviceCuts {
    /// One `[words · 32]` tensor per threshold; the padding past `d_sae` is +∞ (never active).
    cuts: Vec<Tensor>,
    /// `2^b` for b in 0..32, as `u32`.
    powers: Tensor,
    d_sae: usize,
}

/// The active latents of one slice of rows, per threshold, on the host.
#[derive(Debug, Clone, PartialEq)]
pub struct ActiveBits {
    /// `u32` words per row: `d_sae` rounded up to 32 latents.
    pub words_per_row: usize,
    /// Per threshold, `rows × words_per_row` words, bit b of word w set iff latent 32w + b is
    /// active.
    pub per_threshold: Vec<Vec<u32>>,
    /// The first row holding a NaN or infinite activation, and that value.
    pub non_finite: Option<(usize, f32)>,
}

impl DeviceCuts {
    /// The cuts of every threshold (each `d_sae` values, from `sae::threshold_cut`).
    pub fn new(cuts: &[Vec<f32>], d_sae: usize, device: &Device) -> Result<Self> {
        let padded = d_sae.div_ceil(32) * 32;
        let cuts = cuts
            .iter()
            .map(|cut| {
                ensure!(cut.len() == d_sae, "a cut has one value per latent");
                let mut values = cut.clone();
                values.resize(padded, f32::INFINITY);
                Ok(Tensor::from_vec(values, padded, device)?)
            })
            .collect::<Result<Vec<_>>>()?;
        let powers: Vec<u32> = (0..32).map(|b| 1u32 << b).collect();
        Ok(Self {
            cuts,
            powers: Tensor::from_vec(powers, 32, device)?,
            d_sae,
        })
    }

    /// Thresholds `acts` (`[rows, d_sae]`, f32, on the device) at every cut and brings the
    /// bits to the host, with the first non-finite activation if there is one.
    pub fn apply(&self, acts: &Tensor) -> Result<ActiveBits> {
        let (rows, width) = acts.dims2()?;
        ensure!(
            width == self.d_sae,
            "activations have {width} latents, the cuts {}",
            self.d_sae
        );
        let words = self.d_sae.div_ceil(32);
        let acts = match words * 32 - width {
            0 => acts.clone(),
            pad => acts.pad_with_zeros(1, 0, pad)?,
        };
        let per_threshold = self
            .cuts
            .iter()
            .map(|cut| {
                let bits = acts
                    .broadcast_gt(cut)?
                    .to_dtype(DType::U32)?
                    .reshape((rows, words, 32))?
                    .broadcast_mul(&self.powers)?
                    .sum(2)?;
                Ok(bits.flatten_all()?.to_vec1::<u32>()?)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(ActiveBits {
            words_per_row: words,
            per_threshold,
            non_finite: first_non_finite(&acts)?,
        })
    }
}

/// The first row of `acts` holding a NaN or ±∞, and that value. `0 · x` is 0 exactly when x
/// is finite (NaN otherwise), so one reduction per row finds them; only such a row is copied
/// to the host.
fn first_non_finite(acts: &Tensor) -> Result<Option<(usize, f32)>> {
    let bad_per_row = (acts * 0.0)?
        .ne(0f32)?
        .to_dtype(DType::U32)?
        .sum(1)?
        .to_vec1::<u32>()?;
    let Some(row) = bad_per_row.iter().position(|&n| n > 0) else {
        return Ok(None);
    };
    let values = acts.get(row)?.to_vec1::<f32>()?;
    let value = values.into_iter().find(|v| !v.is_finite());
    Ok(Some((row, value.unwrap_or(f32::NAN))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pairs::{active_lists, lists_from_bits};

    /// Activations with ties at the cut, values just above it, zeros and a width that is not a
    /// multiple of 32.
    fn activations(rows: usize, d_sae: usize) -> Vec<f32> {
        (0..rows * d_sae)
            .map(|i| match (i * 7919) % 11 {
                0 => 0.5,
                1 => f32::from_bits(0.5f32.to_bits() + 1),
                2 => 2.0,
                3..=5 => 0.0,
                k => 0.1 * k as f32,
            })
            .collect()
    }

    #[test]
    fn device_bits_give_the_hosts_active_lists() {
        let (rows, d_sae) = (9, 70);
        let acts = activations(rows, d_sae);
        let theta: Vec<f32> = (0..d_sae).map(|i| (i % 3) as f32 * 0.05).collect();
        let cuts: Vec<Vec<f32>> = [0.0, 0.45, 1.0]
            .iter()
            .map(|&t| crate::sae::threshold_cut(t, &theta))
            .collect();
        let device = Device::Cpu;
        let bits = DeviceCuts::new(&cuts, d_sae, &device)
            .unwrap()
            .apply(&Tensor::from_vec(acts.clone(), (rows, d_sae), &device).unwrap())
            .unwrap();
        assert_eq!(bits.words_per_row, 3);
        assert_eq!(bits.non_finite, None);
        for (cut, words) in cuts.iter().zip(&bits.per_threshold) {
            let host = active_lists(&acts, d_sae, cut).unwrap();
            assert!(host.iter().any(|l| !l.is_empty()));
            assert_eq!(lists_from_bits(words, bits.words_per_row), host);
        }
    }

    #[test]
    fn the_first_non_finite_row_and_value_are_reported() {
        let (rows, d_sae) = (4, 33);
        let mut acts = activations(rows, d_sae);
        acts[2 * d_sae + 32] = f32::INFINITY;
        acts[3 * d_sae] = f32::NAN;
        let device = Device::Cpu;
        let cuts = DeviceCuts::new(&[vec![0.0; d_sae]], d_sae, &device).unwrap();
        let bits = cuts
            .apply(&Tensor::from_vec(acts, (rows, d_sae), &device).unwrap())
            .unwrap();
        assert_eq!(bits.non_finite, Some((2, f32::INFINITY)));
    }
}
