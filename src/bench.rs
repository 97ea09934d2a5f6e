//! `saecooc bench`: throughput of co-occurrence counting against the original's method (a dense
//! float32 `C += BᵀB` per batch, here with candle's matmul), on the same synthetic activations
//! with a realistic number of active latents per token.

use crate::cooc::counts::CoocCounts;
use anyhow::Result;
use candle_core::{Device, Tensor};
use rand::{Rng, SeedableRng};
use std::time::Instant;

/// One row of the accumulation benchmark.
#[derive(Debug, Clone)]
pub struct AccumulationRow {
    pub latents: usize,
    pub l0: usize,
    pub tokens: usize,
    pub sparse_tokens_per_s: f64,
    /// None when skipped (too slow or too large).
    pub dense_tokens_per_s: Option<f64>,
    pub note: String,
}

/// Activations `tokens × latents` with exactly `l0` positive entries per row.
pub fn synthetic_activations(tokens: usize, latents: usize, l0: usize, seed: u64) -> Vec<f32> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut acts = vec![0f32; tokens * latents];
    for row in acts.chunks_exact_mut(latents) {
        let mut placed = 0;
        while placed < l0.min(latents) {
            let j = rng.random_range(0..latents);
            if row[j] == 0.0 {
                row[j] = rng.random_range(0.1..5.0f32);
                placed += 1;
            }
        }
    }
    acts
}

/// Times our counting and (when affordable) the dense baseline on one batch.
pub fn accumulation(
    latents: usize,
    l0: usize,
    tokens: usize,
    dense_gflops: Option<f64>,
    max_dense_s: f64,
) -> Result<(AccumulationRow, Option<f64>)> {
    let acts = synthetic_activations(tokens, latents, l0, latents as u64 ^ l0 as u64);
    let cut = vec![0f32; latents];
    let mut counts = CoocCounts::new(latents);
    // The first batch touches the whole accumulator once (as in a run); the second is timed.
    let mut count = || {
        counts
            .add_batch(&acts, &cut)
            .map_err(|_| anyhow::anyhow!("NaN in synthetic activations"))
    };
    count()?;
    let start = Instant::now();
    count()?;
    let sparse = tokens as f64 / start.elapsed().as_secs_f64();
    drop(counts);

    let flops = 2.0 * tokens as f64 * (latents as f64).powi(2);
    let dense_bytes = (latents * latents + tokens * latents) as f64 * 4.0;
    let projected = dense_gflops.map(|g| flops / (g * 1e9));
    let (dense, note, measured_gflops) = match projected {
        Some(s) if s > max_dense_s => (
            None,
            format!("dense skipped: projected {s:.0} s per batch"),
            None,
        ),
        _ if dense_bytes > 16e9 => (None, "dense skipped: F×F float32 does not fit".into(), None),
        _ => {
            let device = Device::Cpu;
            let b = Tensor::from_vec(
                acts.iter()
                    .map(|&a| if a > 0.0 { 1f32 } else { 0.0 })
                    .collect::<Vec<_>>(),
                (tokens, latents),
                &device,
            )?;
            let c = Tensor::zeros((latents, latents), candle_core::DType::F32, &device)?;
            let start = Instant::now();
            let c = (c + b.t()?.matmul(&b)?)?;
            let secs = start.elapsed().as_secs_f64();
            drop(c);
            (
                Some(tokens as f64 / secs),
                String::new(),
                Some(flops / secs / 1e9),
            )
        }
    };
    Ok((
        AccumulationRow {
            latents,
            l0,
            tokens,
            sparse_tokens_per_s: sparse,
            dense_tokens_per_s: dense,
            note,
        },
        measured_gflops,
    ))
}

/// Runs the accumulation benchmark over `widths` × `l0s` and prints a table.
pub fn run(
    widths: &[usize],
    l0s: &[usize],
    tokens: usize,
    max_dense_s: f64,
) -> Result<Vec<AccumulationRow>> {
    println!(
        "accumulation only, {tokens} tokens per batch, {} threads",
        rayon::current_num_threads()
    );
    println!(
        "{:>8} {:>5} {:>18} {:>18} {:>8}  note",
        "latents", "L0", "saecooc tokens/s", "dense BᵀB tokens/s", "ratio"
    );
    let mut gflops: Option<f64> = None;
    let mut rows = Vec::new();
    for &f in widths {
        for &l0 in l0s {
            let (row, measured) = accumulation(f, l0, tokens, gflops, max_dense_s)?;
            if let Some(g) = measured {
                gflops = Some(gflops.map_or(g, |old: f64| old.max(g)));
            }
            let dense = row
                .dense_tokens_per_s
                .map_or("-".into(), |d| format!("{d:.0}"));
            let ratio = row.dense_tokens_per_s.map_or("-".into(), |d| {
                format!("{:.0}×", row.sparse_tokens_per_s / d)
            });
            println!(
                "{:>8} {:>5} {:>18.0} {:>18} {:>8}  {}",
                f, l0, row.sparse_tokens_per_s, dense, ratio, row.note
            );
            rows.push(row);
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_rows_have_the_asked_l0() {
        let acts = synthetic_activations(10, 50, 7, 1);
        for row in acts.chunks_exact(50) {
            assert_eq!(row.iter().filter(|&&a| a > 0.0).count(), 7);
        }
    }
}
