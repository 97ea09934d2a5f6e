//! Encoding residual rows into latent activations, on the host or an accelerator, and the
//! active-latent cut.

use super::{Architecture, Normalization, Sae};
use anyhow::{bail, ensure, Result};
use candle_core::{DType, Device, Tensor};

/// The encoder's (folded) weights, kept where its product runs.
pub(super) enum EncoderWeights {
    /// On the CPU: `W_encᵀ` as `[d_sae, d_in]` rows, the layout the GEMM reads fastest, and
    /// `b_enc`; [`Sae::encode_into`] multiplies straight into the caller's buffer.
    Host { w_enc_t: Vec<f32>, b_enc: Vec<f32> },
    /// On an accelerator: `W_enc` `[d_in, d_sae]`, `b_enc` and the JumpReLU thresholds θ
    /// (zeros for other architectures) as tensors.
    Device {
        w_enc: Tensor,
        b_enc: Tensor,
        theta: Tensor,
    },
}

/// The folded encoder as plain arrays: `W_enc` `[d_in, d_sae]` row-major, `b_enc` and the
/// JumpReLU thresholds θ.
pub(super) struct EncoderArrays<'a> {
    pub w_enc: &'a [f32],
    pub b_enc: Vec<f32>,
    pub theta: &'a [f32],
    pub d_in: usize,
    pub d_sae: usize,
}

impl EncoderWeights {
    /// The host form on the CPU, the tensor form on an accelerator.
    pub(super) fn new(arrays: EncoderArrays, device: &Device) -> Result<Self> {
        if device.is_cpu() {
            return Ok(Self::Host {
                w_enc_t: transposed(arrays.w_enc, arrays.d_in, arrays.d_sae),
                b_enc: arrays.b_enc,
            });
        }
        Self::tensors(arrays, device)
    }

    /// The tensor form that accelerators use, built on `device` (any device).
    fn tensors(arrays: EncoderArrays, device: &Device) -> Result<Self> {
        let EncoderArrays {
            w_enc,
            b_enc,
            theta,
            d_in,
            d_sae,
        } = arrays;
        Ok(Self::Device {
            w_enc: Tensor::from_slice(w_enc, (d_in, d_sae), device)?,
            b_enc: Tensor::from_vec(b_enc, d_sae, device)?,
            theta: Tensor::from_slice(theta, d_sae, device)?,
        })
    }
}

/// The transpose of a row-major `[rows, cols]` matrix, in blocks that stay in cache.
pub(super) fn transposed(m: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    const BLOCK: usize = 64;
    let mut t = vec![0.0f32; m.len()];
    for r0 in (0..rows).step_by(BLOCK) {
        for c0 in (0..cols).step_by(BLOCK) {
            for r in r0..(r0 + BLOCK).min(rows) {
                for c in c0..(c0 + BLOCK).min(cols) {
                    t[c * rows + r] = m[r * cols + c];
                }
            }
        }
    }
    t
}

impl Sae {
    /// Sets the `expected_average_only_in` factor from a batch if the config did not give one.
    pub fn calibrate_normalization(&mut self, x: &Tensor) -> Result<()> {
        if let Normalization::ExpectedAverageOnlyIn(None) = self.cfg.normalize_activations {
            let mean_norm = x
                .sqr()?
                .sum_keepdim(1)?
                .sqrt()?
                .mean_all()?
                .to_scalar::<f32>()?;
            ensure!(
                mean_norm > 0.0,
                "cannot estimate the SAE's input scaling: the activations are all zero"
            );
            let factor = (self.cfg.d_in as f32).sqrt() / mean_norm;
            self.cfg.normalize_activations = Normalization::ExpectedAverageOnlyIn(Some(factor));
        }
        Ok(())
    }

    fn normalize(&self, x: &Tensor) -> Result<Tensor> {
        let d = self.cfg.d_in as f64;
        Ok(match self.cfg.normalize_activations {
            Normalization::None => x.clone(),
            Normalization::ConstantNormRescale => {
                let norm = x.sqr()?.sum_keepdim(1)?.sqrt()?;
                (x.broadcast_div(&norm)? * d.sqrt())?
            }
            Normalization::LayerNorm => {
                let centered = x.broadcast_sub(&x.mean_keepdim(1)?)?;
                let std = (centered.sqr()?.mean_keepdim(1)? + 1e-5)?.sqrt()?;
                centered.broadcast_div(&std)?
            }
            Normalization::ExpectedAverageOnlyIn(Some(f)) => (x * f as f64)?,
            Normalization::ExpectedAverageOnlyIn(None) => {
                bail!("internal: expected_average_only_in used before calibrate_normalization")
            }
        })
    }

    /// Encodes `x` (`[n, d_in]`, f32) into latent activations `[n, d_sae]`.
    pub fn encode(&self, x: &Tensor) -> Result<Tensor> {
        let (w_enc, b_enc, theta) = match &self.encoder {
            EncoderWeights::Device {
                w_enc,
                b_enc,
                theta,
            } => (w_enc, b_enc, theta),
            EncoderWeights::Host { .. } => {
                let mut acts = Vec::new();
                let n = self.encode_into(x, &mut acts)?;
                return Ok(Tensor::from_vec(acts, (n, self.cfg.d_sae), x.device())?);
            }
        };
        let x = self.prepared_input(x)?;
        let pre = x.matmul(w_enc)?.broadcast_add(b_enc)?;
        Ok(match self.cfg.architecture {
            Architecture::Standard => pre.relu()?,
            Architecture::JumpRelu => {
                (pre.relu()? * pre.broadcast_gt(theta)?.to_dtype(DType::F32)?)?
            }
            Architecture::TopK(k) => {
                let mut data = pre
                    .to_device(&Device::Cpu)?
                    .flatten_all()?
                    .to_vec1::<f32>()?;
                self.keep_top_k(&mut data, k);
                Tensor::from_vec(data, pre.dims2()?, pre.device())?
            }
        })
    }

    /// Encodes `x` (`[n, d_in]`) into `out` as host rows `[n, d_sae]` and returns n. `out` is
    /// resized, so a caller that encodes slice after slice reuses one allocation. On the CPU
    /// this is one GEMM into `out`, then the bias and the activation in place; NaN stays NaN.
    pub fn encode_into(&self, x: &Tensor, out: &mut Vec<f32>) -> Result<usize> {
        let d_sae = self.cfg.d_sae;
        let EncoderWeights::Host { w_enc_t, b_enc } = &self.encoder else {
            let acts = self.encode(x)?.to_device(&Device::Cpu)?;
            let n = acts.dims2()?.0;
            out.clear();
            out.extend(acts.flatten_all()?.to_vec1::<f32>()?);
            return Ok(n);
        };
        let x = self.prepared_input(x)?;
        let n = x.dims2()?.0;
        let x = x.flatten_all()?.to_vec1::<f32>()?;
        out.resize(n * d_sae, 0.0);
        crate::model::kernels::matmul_transposed(&x, w_enc_t, out, n, self.cfg.d_in, d_sae);
        match self.cfg.architecture {
            Architecture::Standard => {
                let act = crate::model::kernels::Act::Relu;
                crate::model::kernels::bias_act(out, Some(b_enc), act, d_sae)
            }
            Architecture::JumpRelu => jump_relu_rows(out, b_enc, &self.threshold, d_sae),
            Architecture::TopK(k) => {
                let act = crate::model::kernels::Act::Identity;
                crate::model::kernels::bias_act(out, Some(b_enc), act, d_sae);
                self.keep_top_k(out, k);
            }
        }
        Ok(n)
    }

    /// `x` normalised as the SAE's config asks, with `b_dec` subtracted when it applies it to
    /// the input; checks the width.
    fn prepared_input(&self, x: &Tensor) -> Result<Tensor> {
        let (_, d) = x.dims2()?;
        ensure!(
            d == self.cfg.d_in,
            "SAE input has width {d}, expected d_in = {}",
            self.cfg.d_in
        );
        let x = self.normalize(x)?;
        Ok(if self.cfg.apply_b_dec_to_input {
            x.broadcast_sub(&self.b_dec)?
        } else {
            x
        })
    }

    /// A TopK SAE's activations from its pre-activations (host rows): each row's k largest
    /// through relu, times the decoder norms when they were not folded into the encoder.
    fn keep_top_k(&self, rows: &mut [f32], k: usize) {
        let d_sae = self.cfg.d_sae;
        top_k_rows(rows, d_sae, k);
        if self.norms_after_top_k {
            for row in rows.chunks_exact_mut(d_sae) {
                row.iter_mut()
                    .zip(&self.decoder_norms)
                    .for_each(|(v, n)| *v *= n);
            }
        }
    }

    /// How a TopK SAE chooses its latents, as recorded in run metadata: `unscaled` or
    /// `decoder-norm-scaled` ([`TopKSelection`]); None for other architectures.
    pub fn selection_rule(&self) -> Option<&'static str> {
        match self.cfg.architecture {
            Architecture::TopK(_) => Some(self.cfg.topk_selection.as_str()),
            _ => None,
        }
    }
}

/// Most bytes of activations one encode call produces. The buffer is reused from slice to
/// slice, and a GEMM of a few hundred rows runs near the machine's peak (170 rows: 20% below).
const ENCODE_SLICE_BYTES: usize = 64 << 20;

/// The slices `(start, rows)` in which to encode `n` rows of an SAE of `d_sae` latents: as few
/// as keep each under [`ENCODE_SLICE_BYTES`] of activations (and at least 64 rows), of equal
/// size.
pub fn encode_slices(n: usize, d_sae: usize) -> Vec<(usize, usize)> {
    let most = (ENCODE_SLICE_BYTES / (4 * d_sae.max(1))).max(64);
    let rows = n.div_ceil(n.div_ceil(most).max(1)).max(1);
    (0..n).step_by(rows).map(|s| (s, rows.min(n - s))).collect()
}

/// `v ← relu(v + b)` where `v + b > θ`, else 0 (NaN kept), for every row of `d_sae` values.
fn jump_relu_rows(data: &mut [f32], bias: &[f32], theta: &[f32], d_sae: usize) {
    use rayon::prelude::*;
    data.par_chunks_mut(d_sae * 16).for_each(|chunk| {
        for row in chunk.chunks_exact_mut(d_sae) {
            for ((v, b), t) in row.iter_mut().zip(bias).zip(theta) {
                let x = *v + b;
                let kept = (x > *t && x > 0.0) || x.is_nan();
                *v = if kept { x } else { 0.0 };
            }
        }
    });
}

/// The per-latent cut `t + θ_i` of activation threshold `t`, computed in f32: latent i is
/// active on a token iff its (folded) activation is strictly above it ([`is_active`]).
pub fn threshold_cut(t: f64, theta: &[f32]) -> Vec<f32> {
    theta.iter().map(|&th| t as f32 + th).collect()
}

/// The active-latent rule: `act > t + θ_i` (strict), with `cut` from [`threshold_cut`].
#[inline]
pub fn is_active(act: f32, cut: f32) -> bool {
    act > cut
}

/// Keeps each row (of `f` values) at its k largest entries (ties to the lower index), through
/// relu; zeros elsewhere.
fn top_k_rows(data: &mut [f32], f: usize, k: usize) {
    let k = k.min(f);
    let mut order: Vec<usize> = Vec::with_capacity(f);
    for row in data.chunks_exact_mut(f) {
        order.clear();
        order.extend(0..f);
        if k < f {
            order.select_nth_unstable_by(k, |&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
        }
        let keep: Vec<usize> = order[..k].to_vec();
        let kept: Vec<f32> = keep.iter().map(|&j| row[j].max(0.0)).collect();
        row.iter_mut().for_each(|v| *v = 0.0);
        for (j, v) in keep.into_iter().zip(kept) {
            row[j] = v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sae::{SaeConfig, SaeParams};

    /// The SAE's activations of `x`, flattened.
    fn encoded(sae: &Sae, x: &Tensor) -> Vec<f32> {
        sae.encode(x)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap()
    }

    /// The accelerators' tensor path, run on the CPU, gives the host path's activations for
    /// every architecture (same products, summed in different orders: within 1e-5).
    #[test]
    fn the_tensor_encoder_matches_the_host_encoder() {
        let (d_in, d_sae, n) = (24, 70, 9);
        let value = |i: usize, scale: f32| ((i * 7919 % 113) as f32 / 113.0 - 0.5) * scale;
        let params = SaeParams {
            w_enc: (0..d_in * d_sae).map(|i| value(i, 0.6)).collect(),
            b_enc: (0..d_sae).map(|i| value(i + 5, 0.3)).collect(),
            w_dec: (0..d_sae * d_in).map(|i| value(i + 11, 1.0)).collect(),
            b_dec: (0..d_in).map(|i| value(i + 17, 0.2)).collect(),
            threshold: Some((0..d_sae).map(|i| value(i + 23, 0.2).abs()).collect()),
        };
        let x: Vec<f32> = (0..n * d_in).map(|i| value(i + 29, 4.0)).collect();
        let x = Tensor::from_vec(x, (n, d_in), &Device::Cpu).unwrap();
        for architecture in [
            Architecture::Standard,
            Architecture::JumpRelu,
            Architecture::TopK(5),
        ] {
            let cfg = SaeConfig::in_memory(d_in, d_sae, "blocks.0.hook_resid_pre", architecture);
            let mut p = params.clone();
            if architecture != Architecture::JumpRelu {
                p.threshold = None;
            }
            let mut sae = Sae::from_params(cfg, p, "test".into(), &Device::Cpu).unwrap();
            let host = encoded(&sae, &x);
            assert!(
                host.iter().filter(|&&v| v > 0.0).count() >= n,
                "{architecture:?}"
            );
            let EncoderWeights::Host { w_enc_t, b_enc } = &sae.encoder else {
                panic!("a CPU SAE keeps its encoder on the host")
            };
            let w_enc = transposed(w_enc_t, d_sae, d_in);
            let arrays = EncoderArrays {
                w_enc: &w_enc,
                b_enc: b_enc.clone(),
                theta: &sae.threshold,
                d_in,
                d_sae,
            };
            sae.encoder = EncoderWeights::tensors(arrays, &Device::Cpu).unwrap();
            let tensor = encoded(&sae, &x);
            for (a, b) in host.iter().zip(&tensor) {
                assert!((a - b).abs() <= 1e-5, "{architecture:?}: {a} vs {b}");
            }
        }
    }
}
