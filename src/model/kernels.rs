//! CPU kernels of the forward passes, for the work that candle would do one element at a time
//! or through several temporary tensors: activations (tanh GELU, SiLU) fused with the bias add,
//! residual adds in place, rotary embeddings in place, and causal attention over all heads of a
//! window at once (masked positions are skipped, not added as -inf).
//!
//! The loops are written so that the compiler vectorises them (a branch-free `exp`), and are
//! compiled twice: for the baseline x86-64 and for AVX2+FMA, picked at run time. Matrix products
//! stay with candle's GEMM, except [`matmul_transposed`], which calls the same GEMM on host
//! slices so that a caller can reuse its output buffer. Every kernel has the same result as the tensor version it replaces up
//! to float rounding (tests below, and the golden tests through the models).

use anyhow::{bail, ensure, Result};
use candle_core::{CpuStorage, Device, InplaceOp1, Layout, Storage, Tensor};
use rayon::prelude::*;

/// Rows handed to one rayon task by the row-wise kernels.
const ROWS_PER_TASK: usize = 16;

/// Runs `$body` compiled for AVX2+FMA when the CPU has them, else for the baseline target.
macro_rules! with_best_isa {
    ($body:expr) => {{
        #[cfg(target_arch = "x86_64")]
        {
            #[target_feature(enable = "avx2,fma")]
            unsafe fn avx2<R>(f: impl FnOnce() -> R) -> R {
                f()
            }
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                // SAFETY: the CPU supports the features the function is compiled for.
                unsafe { avx2(|| $body) }
            } else {
                $body
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            $body
        }
    }};
}

/// `e^x` in f32 without branches or calls, so that loops over slices vectorise (Cephes' `expf`
/// polynomial; relative error below 3e-7). Inputs are clamped to [-87.3, 88.3] (results from
/// 1.2e-38 to 2.2e38); NaN stays NaN.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding 1.5·2^23 rounds to an integer, which then sits in the low mantissa bits.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.3, 88.3);
    let shifted = x * LOG2E + ROUND;
    let n = shifted - ROUND;
    let n_int = shifted.to_bits() as i32 - ROUND.to_bits() as i32;
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_2e-4f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 0.166_666_65;
    p = p * r + 0.5;
    p = p * r * r + r + 1.0;
    p * f32::from_bits(((n_int + 127) << 23) as u32)
}

/// `tanh(x)` from [`exp`] (absolute error below 3e-7).
#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    1.0 - 2.0 / (exp(2.0 * x) + 1.0)
}

/// The tanh GELU (`gelu_new`, `gelu_pytorch_tanh`): `x/2·(1 + tanh(√(2/π)(x + 0.044715x³)))`,
/// computed as `x / (1 + e^(-2u))`, which is the same function.
#[inline(always)]
pub fn gelu_tanh(x: f32) -> f32 {
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    let u = SQRT_2_OVER_PI * (x + 0.044_715 * x * x * x);
    x / (1.0 + exp(-2.0 * u))
}

/// SiLU: `x · sigmoid(x)`.
#[inline(always)]
pub fn silu(x: f32) -> f32 {
    x / (1.0 + exp(-x))
}

/// `out[rows, n] = x[rows, k] · w_tᵀ` for `w_t` given as `[n, k]` rows (a linear layer's
/// weight as stored), on the GEMM candle uses, with rayon's threads. `out` is overwritten.
pub fn matmul_transposed(x: &[f32], w_t: &[f32], out: &mut [f32], rows: usize, k: usize, n: usize) {
    assert!(
        x.len() == rows * k && w_t.len() == n * k && out.len() == rows * n,
        "matmul_transposed: buffers of {}, {}, {} values for {rows}×{k} · ({n}×{k})ᵀ",
        x.len(),
        w_t.len(),
        out.len()
    );
    if rows == 0 || n == 0 {
        return;
    }
    let threads = rayon::current_num_threads();
    let parallelism = if threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: the strides describe row-major `x` [rows, k], `w_t` read as its transpose
    // [k, n] (column stride k, row stride 1) and row-major `out` [rows, n], all within the
    // lengths checked above; `out` does not alias the inputs (it is borrowed mutably).
    unsafe {
        gemm::gemm(
            rows,
            n,
            k,
            out.as_mut_ptr(),
            1,
            n as isize,
            false,
            x.as_ptr(),
            1,
            k as isize,
            w_t.as_ptr(),
            k as isize,
            1,
            0.0f32,
            1.0f32,
            false,
            false,
            false,
            parallelism,
        )
    }
}

/// An elementwise activation applied by the fused kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act {
    Identity,
    GeluTanh,
    Silu,
    /// `max(x, 0)`, NaN kept.
    Relu,
}

impl Act {
    #[inline(always)]
    fn apply(self, x: f32) -> f32 {
        match self {
            Self::Identity => x,
            Self::GeluTanh => gelu_tanh(x),
            Self::Silu => silu(x),
            Self::Relu => {
                if x < 0.0 {
                    0.0
                } else {
                    x
                }
            }
        }
    }
}

/// The contiguous f32 data of a CPU tensor, read without a copy.
pub fn with_data<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Result<R> {
    let (storage, layout) = t.storage_and_layout();
    let Storage::Cpu(cpu) = &*storage else {
        bail!(
            "internal: a CPU kernel was given a tensor on {:?}",
            t.device()
        )
    };
    let (start, end) = contiguous(layout)?;
    Ok(f(&cpu.as_slice::<f32>()?[start..end]))
}

/// Changes the contiguous f32 data of a CPU tensor in place (the tensor must not share its
/// storage with a tensor that is still used).
pub fn update<F: Fn(&mut [f32])>(t: &Tensor, f: F) -> Result<()> {
    t.inplace_op1(&InPlace(f))?;
    Ok(())
}

struct InPlace<F>(F);

impl<F: Fn(&mut [f32])> InplaceOp1 for InPlace<F> {
    fn name(&self) -> &'static str {
        "saecooc-cpu-kernel"
    }

    fn cpu_fwd(&self, storage: &mut CpuStorage, layout: &Layout) -> candle_core::Result<()> {
        let CpuStorage::F32(data) = storage else {
            candle_core::bail!("internal: a CPU kernel was given a non-f32 tensor")
        };
        let (start, end) = layout
            .contiguous_offsets()
            .ok_or_else(|| candle_core::Error::Msg("internal: non-contiguous tensor".into()))?;
        (self.0)(&mut data[start..end]);
        Ok(())
    }
}

fn contiguous(layout: &Layout) -> Result<(usize, usize)> {
    layout
        .contiguous_offsets()
        .ok_or_else(|| anyhow::anyhow!("internal: a CPU kernel was given a non-contiguous tensor"))
}

/// A `[rows, cols]` f32 tensor on the CPU made from `data`.
pub fn tensor(data: Vec<f32>, rows: usize, cols: usize) -> Result<Tensor> {
    Ok(Tensor::from_vec(data, (rows, cols), &Device::Cpu)?)
}

/// `row ← act(row + bias)` for every row of `data` (rows of `bias.len()` values).
pub fn bias_act(data: &mut [f32], bias: Option<&[f32]>, act: Act, cols: usize) {
    data.par_chunks_mut(cols * ROWS_PER_TASK)
        .for_each(|chunk| with_best_isa!(bias_act_rows(chunk, bias, act, cols)));
}

#[inline(always)]
fn bias_act_rows(chunk: &mut [f32], bias: Option<&[f32]>, act: Act, cols: usize) {
    for row in chunk.chunks_exact_mut(cols) {
        match (bias, act) {
            (Some(b), Act::GeluTanh) => row
                .iter_mut()
                .zip(b)
                .for_each(|(v, b)| *v = gelu_tanh(*v + b)),
            (Some(b), _) => row
                .iter_mut()
                .zip(b)
                .for_each(|(v, b)| *v = act.apply(*v + b)),
            (None, Act::GeluTanh) => row.iter_mut().for_each(|v| *v = gelu_tanh(*v)),
            (None, Act::Identity) => {}
            (None, _) => row.iter_mut().for_each(|v| *v = act.apply(*v)),
        }
    }
}

/// `row ← row + bias + residual_row` for every row of `data`.
pub fn add_residual(data: &mut [f32], bias: Option<&[f32]>, residual: &[f32], cols: usize) {
    data.par_chunks_mut(cols * ROWS_PER_TASK)
        .zip(residual.par_chunks(cols * ROWS_PER_TASK))
        .for_each(|(chunk, res)| {
            with_best_isa!(match bias {
                Some(b) => chunk
                    .chunks_exact_mut(cols)
                    .zip(res.chunks_exact(cols))
                    .for_each(|(row, r)| {
                        for ((v, b), r) in row.iter_mut().zip(b).zip(r) {
                            *v += b + r;
                        }
                    }),
                None => chunk.iter_mut().zip(res).for_each(|(v, r)| *v += r),
            })
        });
}

/// `gated[i] = act(pair[i]) · pair[f + i]` for rows `pair = [gate | up]` of width `2f`: the
/// gated MLP (SwiGLU, GeGLU) from one product with the gate and up weights side by side.
pub fn gated(pair: &[f32], act: Act, f: usize) -> Vec<f32> {
    let rows = pair.len() / (2 * f);
    let mut out = vec![0f32; rows * f];
    out.par_chunks_mut(f * ROWS_PER_TASK)
        .zip(pair.par_chunks(2 * f * ROWS_PER_TASK))
        .for_each(|(o, p)| {
            with_best_isa!(o
                .chunks_exact_mut(f)
                .zip(p.chunks_exact(2 * f))
                .for_each(|(o, p)| {
                    let (gate, up) = p.split_at(f);
                    match act {
                        Act::GeluTanh => {
                            for ((o, g), u) in o.iter_mut().zip(gate).zip(up) {
                                *o = gelu_tanh(*g) * u;
                            }
                        }
                        _ => {
                            for ((o, g), u) in o.iter_mut().zip(gate).zip(up) {
                                *o = act.apply(*g) * u;
                            }
                        }
                    }
                }))
        });
    out
}

/// LayerNorm of each row (`cols` values): `(x − mean)/√(var + eps)·w + b`.
pub fn layer_norm(x: &[f32], w: &[f32], b: &[f32], eps: f32, cols: usize) -> Vec<f32> {
    let mut out = vec![0f32; x.len()];
    out.par_chunks_mut(cols * ROWS_PER_TASK)
        .zip(x.par_chunks(cols * ROWS_PER_TASK))
        .for_each(|(o, x)| {
            with_best_isa!(o
                .chunks_exact_mut(cols)
                .zip(x.chunks_exact(cols))
                .for_each(|(o, x)| {
                    let mean = sum(x) / cols as f32;
                    let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / cols as f32;
                    let inv = 1.0 / (var + eps).sqrt();
                    for (((o, x), w), b) in o.iter_mut().zip(x).zip(w).zip(b) {
                        *o = (x - mean) * inv * w + b;
                    }
                }))
        });
    out
}

/// RMSNorm of every head in place: `heads` groups of `w.len()` values from column `col` of
/// each row of `stride` values, each `x / rms(x) · w` (Gemma 3 and Qwen3's q/k norms).
pub fn rms_norm_heads(
    data: &mut [f32],
    stride: usize,
    col: usize,
    heads: usize,
    w: &[f32],
    eps: f32,
) {
    let hd = w.len();
    data.par_chunks_mut(stride).for_each(|row| {
        for x in row[col..col + heads * hd].chunks_exact_mut(hd) {
            let mean_sq = x.iter().map(|v| v * v).sum::<f32>() / hd as f32;
            let inv = 1.0 / (mean_sq + eps).sqrt();
            for (x, w) in x.iter_mut().zip(w) {
                *x = *x * inv * w;
            }
        }
    });
}

/// Sum with eight partial sums, so that it vectorises.
#[inline(always)]
fn sum(x: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let chunks = x.chunks_exact(8);
    let rest: f32 = chunks.remainder().iter().sum();
    for c in chunks {
        for (a, v) in acc.iter_mut().zip(c) {
            *a += v;
        }
    }
    acc.iter().sum::<f32>() + rest
}

/// Rotary position embedding tables: `cos`/`sin` of position × frequency, `[seq, head_dim/2]`.
pub struct RopeTables {
    pub cos: Vec<f32>,
    pub sin: Vec<f32>,
    pub half: usize,
    /// llama.cpp's layout: rotated pairs are `(2i, 2i+1)` instead of `(i, i + half)`.
    pub interleaved: bool,
}

impl RopeTables {
    /// Tables for positions `0..seq` with `theta` and `head_dim`.
    pub fn new(seq: usize, head_dim: usize, theta: f64, interleaved: bool) -> Self {
        let half = head_dim / 2;
        let inv: Vec<f32> = (0..half)
            .map(|i| (1.0 / theta.powf(2.0 * i as f64 / head_dim as f64)) as f32)
            .collect();
        Self::from_inv_freq(seq, &inv, interleaved)
    }

    /// Tables for positions `0..seq` at the inverse frequencies `inv` (one per rotated pair).
    pub fn from_inv_freq(seq: usize, inv: &[f32], interleaved: bool) -> Self {
        let half = inv.len();
        let (mut cos, mut sin) = (
            Vec::with_capacity(seq * half),
            Vec::with_capacity(seq * half),
        );
        for p in 0..seq {
            for f in inv {
                let a = p as f32 * f;
                cos.push(a.cos());
                sin.push(a.sin());
            }
        }
        Self {
            cos,
            sin,
            half,
            interleaved,
        }
    }

    /// Rotates every head (`heads` of `2·half` values from column `col`) of every row of
    /// `data` (rows of `stride` values; row `r` is position `r % seq`).
    pub fn apply(&self, data: &mut [f32], stride: usize, col: usize, heads: usize, seq: usize) {
        self.apply_to_heads(data, stride, col, heads, 2 * self.half, seq);
    }

    /// [`Self::apply`] for heads of `hd` values of which only the first `2·half` rotate
    /// (GPT-NeoX's partial rotary).
    pub fn apply_to_heads(
        &self,
        data: &mut [f32],
        stride: usize,
        col: usize,
        heads: usize,
        hd: usize,
        seq: usize,
    ) {
        data.par_chunks_mut(stride * seq).for_each(|window| {
            for (pos, row) in window.chunks_exact_mut(stride).enumerate() {
                let cos = &self.cos[pos * self.half..(pos + 1) * self.half];
                let sin = &self.sin[pos * self.half..(pos + 1) * self.half];
                for h in 0..heads {
                    let x = &mut row[col + h * hd..col + h * hd + 2 * self.half];
                    self.rotate(x, cos, sin);
                }
            }
        });
    }

    #[inline(always)]
    fn rotate(&self, x: &mut [f32], cos: &[f32], sin: &[f32]) {
        if self.interleaved {
            for (i, (c, s)) in cos.iter().zip(sin).enumerate() {
                let (a, b) = (x[2 * i], x[2 * i + 1]);
                x[2 * i] = a * c - b * s;
                x[2 * i + 1] = b * c + a * s;
            }
        } else {
            let (lo, hi) = x.split_at_mut(self.half);
            for (((a, b), c), s) in lo.iter_mut().zip(hi.iter_mut()).zip(cos).zip(sin) {
                let (x1, x2) = (*a, *b);
                *a = x1 * c - x2 * s;
                *b = x2 * c + x1 * s;
            }
        }
    }
}

/// Where one of q, k, v sits in its buffer: rows of `stride` values, heads of `head_dim`
/// values side by side from column `col`.
#[derive(Debug, Clone, Copy)]
pub struct Heads<'a> {
    pub data: &'a [f32],
    pub stride: usize,
    pub col: usize,
}

impl Heads<'_> {
    #[inline(always)]
    fn head(&self, row: usize, h: usize, hd: usize) -> &[f32] {
        let at = row * self.stride + self.col + h * hd;
        &self.data[at..at + hd]
    }
}

/// The attention of one model layer.
#[derive(Debug, Clone, Copy)]
pub struct AttentionShape {
    pub seq: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub head_dim: usize,
    /// Scores are multiplied by this.
    pub scale: f32,
    /// `tanh(score / c) · c` after scaling (Gemma-2).
    pub softcap: Option<f32>,
    /// Each position sees only the last `w` positions (itself included).
    pub window: Option<usize>,
}

/// Causal self-attention of all heads: `softmax(q·kᵀ·scale)·v` with position `i` seeing
/// positions `max(0, i+1−w)..=i` of its own window of `shape.seq` rows. Query head `h` reads
/// key/value head `h / (n_heads / n_kv_heads)`. Returns `[rows, n_heads · head_dim]`.
pub fn causal_attention(
    q: Heads,
    k: Heads,
    v: Heads,
    rows: usize,
    shape: AttentionShape,
) -> Result<Vec<f32>> {
    let AttentionShape {
        seq,
        n_heads,
        head_dim: hd,
        ..
    } = shape;
    ensure!(
        seq > 0 && rows.is_multiple_of(seq) && n_heads.is_multiple_of(shape.n_kv_heads),
        "internal: attention over {rows} rows in windows of {seq}"
    );
    let width = n_heads * hd;
    let mut out = vec![0f32; rows * width];
    out.par_chunks_mut(seq * width)
        .enumerate()
        .for_each(|(w, out)| with_best_isa!(window_attention(q, k, v, w * seq, shape, out)));
    Ok(out)
}

/// Attention of the window starting at row `first` (all heads), into `out` (`[seq, width]`).
#[inline(always)]
fn window_attention(
    q: Heads,
    k: Heads,
    v: Heads,
    first: usize,
    shape: AttentionShape,
    out: &mut [f32],
) {
    let (seq, hd) = (shape.seq, shape.head_dim);
    let group = shape.n_heads / shape.n_kv_heads;
    let width = shape.n_heads * hd;
    // Keys transposed ([hd, seq]) so that one query's scores are axpys over positions.
    let mut kt = vec![0f32; hd * seq];
    let mut vals = vec![0f32; seq * hd];
    let mut scores = vec![0f32; seq];
    let mut y = vec![0f32; hd];
    for kv in 0..shape.n_kv_heads {
        for j in 0..seq {
            for (d, &x) in k.head(first + j, kv, hd).iter().enumerate() {
                kt[d * seq + j] = x;
            }
            vals[j * hd..(j + 1) * hd].copy_from_slice(v.head(first + j, kv, hd));
        }
        for h in kv * group..(kv + 1) * group {
            for i in 0..seq {
                let lo = shape.window.map_or(0, |w| (i + 1).saturating_sub(w));
                let s = &mut scores[lo..=i];
                s.fill(0.0);
                for (d, &qd) in q.head(first + i, h, hd).iter().enumerate() {
                    let qd = qd * shape.scale;
                    let krow = &kt[d * seq + lo..=d * seq + i];
                    for (s, kx) in s.iter_mut().zip(krow) {
                        *s += qd * kx;
                    }
                }
                if let Some(c) = shape.softcap {
                    s.iter_mut().for_each(|x| *x = c * tanh(*x / c));
                }
                let max = s.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x));
                s.iter_mut().for_each(|x| *x = exp(*x - max));
                let inv = 1.0 / sum(s);
                y.fill(0.0);
                for (j, &p) in (lo..=i).zip(s.iter()) {
                    let p = p * inv;
                    for (y, x) in y.iter_mut().zip(&vals[j * hd..(j + 1) * hd]) {
                        *y += p * x;
                    }
                }
                out[i * width + h * hd..i * width + (h + 1) * hd].copy_from_slice(&y);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn max_rel(a: f32, b: f32) -> f32 {
        (a - b).abs() / b.abs().max(1e-30)
    }

    #[test]
    fn exp_matches_libm_over_the_whole_range() {
        let mut worst = 0f32;
        let mut x = -87.0f32;
        while x < 88.0 {
            worst = worst.max(max_rel(exp(x), x.exp()));
            x += 0.0137;
        }
        assert!(worst < 5e-7, "worst relative error {worst}");
        assert!(exp(f32::NAN).is_nan());
        assert!(exp(-1000.0) < 1e-37 && exp(1000.0) > 1e38);
    }

    #[test]
    fn activations_match_their_definitions() {
        let mut x = -12.0f32;
        while x < 12.0 {
            let x64 = x as f64;
            let u = (2.0 / std::f64::consts::PI).sqrt() * (x64 + 0.044715 * x64.powi(3));
            let gelu = 0.5 * x64 * (1.0 + u.tanh());
            assert!(
                (gelu_tanh(x) as f64 - gelu).abs() <= 1e-6 * (1.0 + gelu.abs()),
                "{x}"
            );
            let s = x64 / (1.0 + (-x64).exp());
            assert!((silu(x) as f64 - s).abs() <= 1e-6 * (1.0 + s.abs()), "{x}");
            assert!((tanh(x) as f64 - x64.tanh()).abs() <= 1e-6, "{x}");
            x += 0.01;
        }
        assert!(gelu_tanh(f32::NAN).is_nan());
    }

    /// Brute-force attention in f64 with an explicit mask.
    fn reference(q: &[f32], k: &[f32], v: &[f32], rows: usize, s: AttentionShape) -> Vec<f32> {
        let (hd, nh, nkv) = (s.head_dim, s.n_heads, s.n_kv_heads);
        let mut out = vec![0f32; rows * nh * hd];
        for r in 0..rows {
            let (w0, i) = (r / s.seq * s.seq, r % s.seq);
            for h in 0..nh {
                let kv = h / (nh / nkv);
                let scores: Vec<f64> = (0..s.seq)
                    .map(|j| {
                        let visible = j <= i && s.window.is_none_or(|w| i < j + w);
                        if !visible {
                            return f64::NEG_INFINITY;
                        }
                        let mut dot = 0f64;
                        for d in 0..hd {
                            dot += q[r * nh * hd + h * hd + d] as f64
                                * k[(w0 + j) * nkv * hd + kv * hd + d] as f64;
                        }
                        let x = dot * s.scale as f64;
                        s.softcap.map_or(x, |c| c as f64 * (x / c as f64).tanh())
                    })
                    .collect();
                let max = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let e: Vec<f64> = scores.iter().map(|x| (x - max).exp()).collect();
                let total: f64 = e.iter().sum();
                for d in 0..hd {
                    let y: f64 = (0..s.seq)
                        .map(|j| e[j] / total * v[(w0 + j) * nkv * hd + kv * hd + d] as f64)
                        .sum();
                    out[r * nh * hd + h * hd + d] = y as f32;
                }
            }
        }
        out
    }

    #[test]
    fn attention_matches_a_masked_softmax_in_f64() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        // Short windows and heads, and ones long and wide enough for whole register blocks
        // of positions and values with a remainder.
        for (window, softcap, nkv, seq, hd) in [
            (None, None, 4, 9, 8),
            (Some(3), Some(2.0), 2, 9, 8),
            (None, None, 1, 9, 8),
            (None, None, 2, 40, 72),
            (Some(20), Some(3.0), 4, 37, 64),
        ] {
            let s = AttentionShape {
                seq,
                n_heads: 4,
                n_kv_heads: nkv,
                head_dim: hd,
                scale: 0.35,
                softcap,
                window,
            };
            let rows = 2 * s.seq;
            let mut random =
                |n: usize| -> Vec<f32> { (0..n).map(|_| rng.random_range(-2.0..2.0f32)).collect() };
            let q = random(rows * 4 * hd);
            let k = random(rows * nkv * hd);
            let v = random(rows * nkv * hd);
            let heads = |data, n: usize| Heads {
                data,
                stride: n * hd,
                col: 0,
            };
            let ours =
                causal_attention(heads(&q, 4), heads(&k, nkv), heads(&v, nkv), rows, s).unwrap();
            let theirs = reference(&q, &k, &v, rows, s);
            // f32 rounding of a score grows with the number of products summed (2e-6 at 8).
            let tolerance = 2e-6 * (hd as f32 / 8.0);
            for (a, b) in ours.iter().zip(&theirs) {
                assert!(
                    (a - b).abs() < tolerance,
                    "{a} vs {b} ({window:?}, {softcap:?}, seq {seq}, head_dim {hd})"
                );
            }
        }
    }

    #[test]
    fn layer_norm_and_gating_match_direct_formulas() {
        let x: Vec<f32> = (0..24).map(|i| (i as f32 * 0.37).sin() * 3.0).collect();
        let w: Vec<f32> = (0..12).map(|i| 1.0 + i as f32 * 0.1).collect();
        let b: Vec<f32> = (0..12).map(|i| i as f32 * -0.05).collect();
        let out = layer_norm(&x, &w, &b, 1e-5, 12);
        for r in 0..2 {
            let row = &x[r * 12..(r + 1) * 12];
            let mean = row.iter().sum::<f32>() / 12.0;
            let var = row.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / 12.0;
            for c in 0..12 {
                let want = (row[c] - mean) / (var + 1e-5).sqrt() * w[c] + b[c];
                assert!((out[r * 12 + c] - want).abs() < 1e-5);
            }
        }
        let g = gated(&x, Act::Silu, 6);
        for r in 0..2 {
            for c in 0..6 {
                let want = silu(x[r * 12 + c]) * x[r * 12 + 6 + c];
                assert_eq!(g[r * 6 + c], want);
            }
        }
    }
}
