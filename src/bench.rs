//! `saecooc bench`: throughput of co-occurrence counting against the original's method (a dense
//! float32 `C += BᵀB` per batch, here with candle's matmul), on the same synthetic activations
//! with a realistic number of active latents per token; and with `--end-to-end`, tokens/s per
//! stage of a whole `cooc` run on a GPT-2-small-shaped random model.

use crate::config::{Config, DeviceKind, Generation, Run, Source};
use crate::pairs::{CoocCounts, Storage};
use crate::synth::{self, SynthOptions};
use anyhow::{ensure, Context, Result};
use candle_core::{Device, Tensor};
use rand::{Rng, SeedableRng};
use std::path::Path;
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
    storage: Storage,
    latents: usize,
    l0: usize,
    tokens: usize,
    dense_gflops: Option<f64>,
    max_dense_s: f64,
) -> Result<(AccumulationRow, Option<f64>)> {
    let acts = synthetic_activations(tokens, latents, l0, latents as u64 ^ l0 as u64);
    let cut = vec![0f32; latents];
    let mut counts = CoocCounts::with_storage(latents, storage);
    // The first batch touches the whole accumulator once (as in a run); the second is timed,
    // with the sparse store's sort and merge of its pairs (a run merges less often).
    let mut count = || {
        counts
            .add_batch(&acts, &cut)
            .map_err(|_| anyhow::anyhow!("NaN in synthetic activations"))
    };
    count()?;
    let start = Instant::now();
    count()?;
    counts.flush();
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

/// Runs the accumulation benchmark over `widths` × `l0s` and prints a table. `storage` None
/// picks the store as `cooc` does for one threshold (dense while the triangle fits in 10 GiB).
pub fn run(
    widths: &[usize],
    l0s: &[usize],
    tokens: usize,
    max_dense_s: f64,
    storage: Option<Storage>,
) -> Result<Vec<AccumulationRow>> {
    println!(
        "accumulation only, {tokens} tokens per batch, {} threads",
        rayon::current_num_threads()
    );
    println!(
        "{:>8} {:>5} {:>7} {:>18} {:>18} {:>8}  note",
        "latents", "L0", "store", "saecooc tokens/s", "dense BᵀB tokens/s", "ratio"
    );
    let mut gflops: Option<f64> = None;
    let mut rows = Vec::new();
    for &f in widths {
        for &l0 in l0s {
            let store = storage.unwrap_or_else(|| Storage::auto(f, 1, 10 << 30));
            let (row, measured) = accumulation(store, f, l0, tokens, gflops, max_dense_s)?;
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
                "{:>8} {:>5} {:>7} {:>18.0} {:>18} {:>8}  {}",
                f,
                l0,
                format!("{store:?}").to_lowercase(),
                row.sparse_tokens_per_s,
                dense,
                ratio,
                row.note
            );
            rows.push(row);
        }
    }
    Ok(rows)
}

/// The shape of GPT-2 small with the paper's feature-splitting SAE: 12 layers, d 768, 12 heads,
/// 24,576 latents at `blocks.8.hook_resid_pre`.
pub fn gpt2_small_shaped() -> SynthOptions {
    SynthOptions {
        layers: 12,
        d_model: 768,
        heads: 12,
        n_positions: 1024,
        d_sae: 24_576,
        hook_layer: 8,
        documents: 20_000,
        seed: 0,
    }
}

/// One stage of the end-to-end benchmark.
#[derive(Debug, Clone)]
pub struct StageRow {
    pub stage: &'static str,
    pub seconds: f64,
    pub tokens_per_s: f64,
}

/// The `cooc` config of the end-to-end benchmark on the model in `dir`.
fn end_to_end_config(dir: &Path, batches: usize, device: DeviceKind) -> Config {
    Config::new(
        Generation::new(
            "synthetic-gpt2-small",
            "synthetic",
            vec!["blocks.8.hook_resid_pre".into()],
            vec![1.5],
            batches,
            false,
        ),
        Source::local(
            &dir.join("model"),
            &dir.join("sae"),
            &dir.join("corpus.txt"),
        ),
        Run {
            device,
            context_size: Some(128),
            prompts_per_batch: 32,
            tokens_per_batch: 4096,
            results_dir: dir.join("results"),
            ..Run::default()
        },
    )
}

/// Runs `cooc` for `batches` batches of 4,096 tokens on a GPT-2-small-shaped random model and
/// a 24,576-latent SAE (written to `dir` once with `synth`), and prints tokens/s per stage from
/// the run's own timings.
pub fn end_to_end(dir: &Path, batches: usize, device: DeviceKind) -> Result<Vec<StageRow>> {
    let options = gpt2_small_shaped();
    let sae = dir.join("sae").join("blocks.8.hook_resid_pre");
    if !sae.join("cfg.json").is_file() {
        eprintln!(
            "writing a GPT-2-small-shaped random model and a 24,576-latent SAE to {} (once)",
            dir.display()
        );
        synth::write_all(dir, &options)?;
    }
    // The benchmark runs `saecooc cooc` itself, as a user would, and reads its run.json.
    let config = end_to_end_config(dir, batches, device);
    let text = config.to_toml()?;
    let config_path = dir.join("bench-cooc.toml");
    std::fs::write(&config_path, &text)
        .with_context(|| format!("cannot write {}", config_path.display()))?;
    let exe = std::env::current_exe().context("cannot find the saecooc executable")?;
    let status = std::process::Command::new(&exe)
        .args(["--quiet", "cooc", "--config"])
        .arg(&config_path)
        .status()
        .with_context(|| format!("cannot run {} cooc", exe.display()))?;
    ensure!(
        status.success(),
        "the benchmark's cooc run failed ({status})"
    );
    let g = &config.generation;
    let out_dir = crate::results::layout::sae_results_dir(
        &config.run.results_dir,
        &g.model_name,
        &g.sae_release_short,
        &g.sae_ids[0],
        g.n_batches,
    );
    let run = crate::results::manifest::CoocManifest::read(&out_dir)?;
    let tokens = run.tokens_counted as f64;
    let t = run.timings.unwrap_or_default();
    let stages = [
        ("tokenize", t.tokenize_s),
        ("forward to the hook", t.forward_s),
        ("SAE encode", t.encode_s),
        ("count", t.count_s),
        ("write npz", t.write_s),
    ];
    let mut rows: Vec<StageRow> = stages
        .iter()
        .map(|&(stage, seconds)| StageRow {
            stage,
            seconds,
            tokens_per_s: tokens / seconds.max(1e-9),
        })
        .collect();
    let processing: f64 = rows[..4].iter().map(|r| r.seconds).sum();
    rows.push(StageRow {
        stage: "whole pass (tokenize..count)",
        seconds: processing,
        tokens_per_s: tokens / processing.max(1e-9),
    });
    println!(
        "end to end: GPT-2-small-shaped random model (12 layers, d 768) to blocks.8.hook_resid_pre, SAE 24,576 latents, {tokens} tokens, {device:?}, {} threads",
        rayon::current_num_threads()
    );
    println!("{:<30} {:>10} {:>14}", "stage", "seconds", "tokens/s");
    for r in &rows {
        println!(
            "{:<30} {:>10.2} {:>14.0}",
            r.stage, r.seconds, r.tokens_per_s
        );
    }
    let (encode, count) = (rows[2].seconds, rows[3].seconds);
    println!(
        "counting is {:.0}× faster than the SAE encode of the same tokens",
        encode / count.max(1e-9)
    );
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_end_to_end_config_is_gpt2_small_shaped() {
        let c = Config::parse(
            &end_to_end_config(Path::new("b"), 3, DeviceKind::Cpu)
                .to_toml()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(c.tokens_to_count(), 3 * 4096);
        assert_eq!(c.generation.sae_ids, ["blocks.8.hook_resid_pre"]);
        let o = gpt2_small_shaped();
        assert_eq!((o.layers, o.d_model, o.d_sae), (12, 768, 24_576));
    }

    #[test]
    fn synthetic_rows_have_the_asked_l0() {
        let acts = synthetic_activations(10, 50, 7, 1);
        for row in acts.chunks_exact(50) {
            assert_eq!(row.iter().filter(|&&a| a > 0.0).count(), 7);
        }
    }
}
