//! `saecooc bench`: throughput of co-occurrence counting against the original's method (a dense
//! float32 `C += BᵀB` per batch, here with candle's matmul), on the same synthetic activations
//! with a realistic number of active latents per token; and with `--end-to-end`, tokens/s per
//! stage of a whole `cooc` run on a GPT-2-small-shaped random model; with `--sweep`, a config of
//! several SAEs in one `cooc` run against the same SAEs one at a time ([`sweep`]).

use crate::config::{Config, DeviceKind, Generation, Run, Source};
use crate::pairs::{CoocCounts, Storage};
use crate::synth::{self, SynthOptions};
use anyhow::{ensure, Context, Result};
use candle_core::{Device, Tensor};
use rand::{Rng, SeedableRng};
use std::path::Path;
use std::time::Instant;

pub mod measure;
pub mod sweep;

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
    crate::report::output(format_args!(
        "accumulation only, {tokens} tokens per batch, {} threads",
        rayon::current_num_threads()
    ));
    crate::report::output(format_args!(
        "{:>8} {:>5} {:>7} {:>18} {:>18} {:>8}  note",
        "latents", "L0", "store", "saecooc tokens/s", "dense BᵀB tokens/s", "ratio"
    ));
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
            crate::report::output(format_args!(
                "{:>8} {:>5} {:>7} {:>18.0} {:>18} {:>8}  {}",
                f,
                l0,
                format!("{store:?}").to_lowercase(),
                row.sparse_tokens_per_s,
                dense,
                ratio,
                row.note
            ));
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
    bench_config(
        dir,
        vec!["blocks.8.hook_resid_pre".into()],
        (batches, 4096),
        device,
        &dir.join("results"),
    )
}

/// A `cooc` config of the benchmarks: the SAEs `sae_ids` (folders of `dir/sae/`) on the model
/// and corpus in `dir`, `batches` = (batches, tokens per batch) in windows of 128, threshold 1.5.
fn bench_config(
    dir: &Path,
    sae_ids: Vec<String>,
    batches: (usize, usize),
    device: DeviceKind,
    results_dir: &Path,
) -> Config {
    Config::new(
        Generation::new(
            "synthetic-gpt2-small",
            "synthetic",
            sae_ids,
            vec![1.5],
            batches.0,
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
            tokens_per_batch: batches.1,
            results_dir: results_dir.to_path_buf(),
            ..Run::default()
        },
    )
}

/// Writes `config` to `path` and runs `saecooc --quiet cooc` on it as a child of `exe`, as a
/// user would; returns its wall time and peak memory.
fn run_cooc(exe: &Path, config: &Config, path: &Path) -> Result<measure::ChildRun> {
    let text = config.to_toml()?;
    std::fs::write(path, &text).with_context(|| format!("cannot write {}", path.display()))?;
    let mut command = std::process::Command::new(exe);
    command.args(["--quiet", "cooc", "--config"]).arg(path);
    let run = measure::run_child(&mut command)
        .with_context(|| format!("cannot run {} cooc", exe.display()))?;
    ensure!(
        run.success,
        "the benchmark's cooc run on {} failed ({})",
        path.display(),
        run.status
    );
    Ok(run)
}

/// The results folder of the SAE `sae_id` of `config`.
fn sae_results_dir(config: &Config, sae_id: &str) -> std::path::PathBuf {
    let g = &config.generation;
    crate::results::layout::sae_results_dir(
        &config.run.results_dir,
        &g.model_name,
        &g.sae_release_short,
        sae_id,
        g.n_batches,
    )
}

/// Runs `cooc` for `batches` batches of 4,096 tokens on a GPT-2-small-shaped random model and
/// a 24,576-latent SAE (written to `dir` once with `synth`), and prints tokens/s per stage from
/// the run's own timings.
pub fn end_to_end(dir: &Path, batches: usize, device: DeviceKind) -> Result<Vec<StageRow>> {
    let options = gpt2_small_shaped();
    let sae = synth::SweepSae {
        id: "blocks.8.hook_resid_pre".into(),
        layer: options.hook_layer,
        d_sae: options.d_sae,
    };
    if !dir.join("sae").join(&sae.id).join("cfg.json").is_file() {
        crate::report::note(format_args!(
            "writing a GPT-2-small-shaped random model and a 24,576-latent SAE to {} (once)",
            dir.display()
        ));
        synth::write_sweep(dir, &options, &[sae])?;
    }
    // The benchmark runs `saecooc cooc` itself, as a user would, and reads its run.json.
    let config = end_to_end_config(dir, batches, device);
    let exe = std::env::current_exe().context("cannot find the saecooc executable")?;
    run_cooc(&exe, &config, &dir.join("bench-cooc.toml"))?;
    let out_dir = sae_results_dir(&config, &config.generation.sae_ids[0]);
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
    crate::report::output(format_args!(
        "end to end: GPT-2-small-shaped random model (12 layers, d 768) to blocks.8.hook_resid_pre, SAE 24,576 latents, {tokens} tokens, {device:?}, {} threads",
        rayon::current_num_threads()
    ));
    crate::report::output(format_args!(
        "{:<30} {:>10} {:>14}",
        "stage", "seconds", "tokens/s"
    ));
    for r in &rows {
        crate::report::output(format_args!(
            "{:<30} {:>10.2} {:>14.0}",
            r.stage, r.seconds, r.tokens_per_s
        ));
    }
    let (encode, count) = (rows[2].seconds, rows[3].seconds);
    crate::report::output(format_args!(
        "counting is {:.0}× faster than the SAE encode of the same tokens",
        encode / count.max(1e-9)
    ));
    Ok(rows)
}

/// A model shape for `bench --shape`: the forward pass and SAE encode alone, on random
/// weights held in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ModelShape {
    /// GPT-2 small to blocks.8.hook_resid_pre, SAE 24,576 latents.
    Gpt2Small,
    /// SmolLM2-135M (30 layers, d 576, 9 heads / 3 KV heads) to blocks.15.hook_resid_pre,
    /// SAE 4,608 latents.
    Smollm2_135m,
    /// Gemma-2-2b (26 layers, d 2304, 8 heads / 4 KV heads) to blocks.12.hook_resid_post,
    /// SAE 16,384 latents.
    Gemma2_2b,
}

/// The shapes of `bench --shape`, by the names `--shape` takes: each a model's config.json, its
/// hook and the SAE width.
const MODEL_SHAPES: &str = include_str!("../../../assets/bench-shapes.json");

/// One entry of [`MODEL_SHAPES`].
#[derive(serde::Deserialize)]
struct ShapeSpec {
    config: serde_json::Value,
    hook: String,
    d_sae: usize,
}

impl ModelShape {
    /// The model's config.json, its hook and the SAE width.
    fn spec(self) -> Result<ShapeSpec> {
        use clap::ValueEnum;
        let name = self
            .to_possible_value()
            .map(|v| v.get_name().to_string())
            .unwrap_or_default();
        let mut shapes: std::collections::BTreeMap<String, ShapeSpec> =
            serde_json::from_str(MODEL_SHAPES).context("assets/bench-shapes.json")?;
        shapes
            .remove(&name)
            .with_context(|| format!("assets/bench-shapes.json has no shape {name:?}"))
    }
}

/// Uniform values in `[-scale, scale]` (+ `offset`) from a fast per-chunk generator: the
/// benchmark needs finite, non-degenerate weights, not good randomness.
fn random_values(n: usize, scale: f32, offset: f32, seed: u64) -> Vec<f32> {
    use rayon::prelude::*;
    let mut v = vec![0f32; n];
    v.par_chunks_mut(1 << 16)
        .enumerate()
        .for_each(|(c, chunk)| {
            let mut x = seed ^ (c as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            for out in chunk {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let u = (x >> 40) as f32 / (1u64 << 24) as f32;
                *out = offset + scale * (2.0 * u - 1.0);
            }
        });
    v
}

/// Random weights for every tensor the model reads (`shapes` as the model asks for them).
fn random_var_builder(
    cfg: &serde_json::Value,
    hook: crate::model::HookPoint,
    device: &Device,
    dtype: candle_core::DType,
) -> Result<candle_nn::VarBuilder<'static>> {
    let names = weight_shapes(cfg, hook.blocks_needed());
    let mut tensors = std::collections::HashMap::new();
    for (i, (name, shape)) in names.into_iter().enumerate() {
        let n = shape.iter().product();
        let is_norm = name.contains("norm") || name.contains("ln_");
        let (scale, offset) = match (is_norm, name.ends_with("bias")) {
            (true, false) => (0.05, if name.contains("ln_") { 1.0 } else { 0.0 }),
            (_, true) => (0.02, 0.0),
            _ => (0.035, 0.0),
        };
        let v = random_values(n, scale, offset, i as u64 + 1);
        tensors.insert(name, Tensor::from_vec(v, shape, device)?);
    }
    Ok(candle_nn::VarBuilder::from_tensors(tensors, dtype, device))
}

/// Names and shapes of the weights of the first `blocks` blocks, as in Hugging Face files.
fn weight_shapes(cfg: &serde_json::Value, blocks: usize) -> Vec<(String, Vec<usize>)> {
    let get = |k: &str| cfg[k].as_u64().unwrap_or(0) as usize;
    let mut out = Vec::new();
    if cfg["model_type"] == "gpt2" {
        let (v, p, d) = (get("vocab_size"), get("n_positions"), get("n_embd"));
        out.push(("wte.weight".into(), vec![v, d]));
        out.push(("wpe.weight".into(), vec![p, d]));
        for l in 0..blocks {
            for ln in ["ln_1", "ln_2"] {
                out.push((format!("h.{l}.{ln}.weight"), vec![d]));
                out.push((format!("h.{l}.{ln}.bias"), vec![d]));
            }
            for (name, i, o) in [
                ("attn.c_attn", d, 3 * d),
                ("attn.c_proj", d, d),
                ("mlp.c_fc", d, 4 * d),
                ("mlp.c_proj", 4 * d, d),
            ] {
                out.push((format!("h.{l}.{name}.weight"), vec![i, o]));
                out.push((format!("h.{l}.{name}.bias"), vec![o]));
            }
        }
        return out;
    }
    let (v, d, f) = (
        get("vocab_size"),
        get("hidden_size"),
        get("intermediate_size"),
    );
    let heads = get("num_attention_heads");
    let hd = cfg["head_dim"].as_u64().map_or(d / heads, |h| h as usize);
    let kv = get("num_key_value_heads");
    out.push(("model.embed_tokens.weight".into(), vec![v, d]));
    let mut norms = vec!["input_layernorm", "post_attention_layernorm"];
    if cfg["model_type"] == "gemma2" {
        norms.extend(["pre_feedforward_layernorm", "post_feedforward_layernorm"]);
    }
    for l in 0..blocks {
        let p = format!("model.layers.{l}");
        for n in &norms {
            out.push((format!("{p}.{n}.weight"), vec![d]));
        }
        for (name, o, i) in [
            ("self_attn.q_proj", heads * hd, d),
            ("self_attn.k_proj", kv * hd, d),
            ("self_attn.v_proj", kv * hd, d),
            ("self_attn.o_proj", d, heads * hd),
            ("mlp.gate_proj", f, d),
            ("mlp.up_proj", f, d),
            ("mlp.down_proj", d, f),
        ] {
            out.push((format!("{p}.{name}.weight"), vec![o, i]));
        }
    }
    out
}

/// A random ReLU SAE of `d_sae` latents on `d_in`-wide inputs, for timing.
fn random_sae(d_in: usize, d_sae: usize, hook: &str, device: &Device) -> Result<crate::sae::Sae> {
    use crate::sae::{Architecture, Sae, SaeConfig, SaeParams};
    let cfg = SaeConfig::in_memory(d_in, d_sae, hook, Architecture::Standard);
    let params = SaeParams {
        w_enc: random_values(d_in * d_sae, 0.05, 0.0, 11),
        b_enc: random_values(d_sae, 0.1, -0.2, 12),
        w_dec: random_values(d_sae * d_in, 0.05, 0.0, 13),
        b_dec: random_values(d_in, 0.1, 0.0, 14),
        threshold: None,
    };
    Sae::from_params(cfg, params, "random".into(), device)
}

/// Times the forward pass to the hook and the SAE encode of `tokens` tokens (windows of
/// `window`) on a model of `shape` with random weights, best of `repeats` after a warm-up, and
/// prints tokens/s.
pub fn shape(
    shape: ModelShape,
    tokens: usize,
    window: usize,
    repeats: usize,
    device: DeviceKind,
    dtype: crate::config::ModelDType,
) -> Result<()> {
    let device = crate::inputs::open_device(device)?;
    let dtype = dtype.on(&device)?;
    ensure!(
        window > 0 && tokens >= window,
        "--tokens {tokens} must hold at least one window of {window}"
    );
    let ShapeSpec {
        config: cfg,
        hook: hook_name,
        d_sae,
    } = shape.spec()?;
    let hook = crate::model::HookPoint::parse(&hook_name)?;
    let vb = random_var_builder(&cfg, hook, &device, dtype)?;
    let model: Box<dyn crate::model::ResidualModel> = if cfg["model_type"] == "gpt2" {
        let config = crate::model::gpt2::Gpt2Config::from_json(&cfg, "bench")?;
        Box::new(crate::model::gpt2::Gpt2::load(vb, config, hook)?)
    } else {
        let config = crate::model::decoder::DecoderConfig::from_json(&cfg, "bench")?;
        Box::new(crate::model::decoder::Decoder::load(vb, config, hook)?)
    };
    let d = model.d_model();
    let sae = random_sae(d, d_sae, &hook_name, &device)?;
    let windows = tokens / window;
    let ids: Vec<u32> = random_values(windows * window, 0.5, 0.5, 99)
        .iter()
        .map(|u| (u * 1000.0) as u32)
        .collect();
    let ids = Tensor::from_vec(ids, (windows, window), &device)?;
    let n = windows * window;
    let forward = || -> Result<Tensor> {
        Ok(model
            .activations(&ids)?
            .to_dtype(candle_core::DType::F32)?
            .reshape((n, d))?)
    };
    let encode = |resid: &Tensor| -> Result<()> {
        let mut acts = Vec::new();
        for (start, rows) in crate::sae::encode_slices(n, d_sae) {
            sae.encode_into(&resid.narrow(0, start, rows)?, &mut acts)?;
            std::hint::black_box(&acts);
        }
        Ok(())
    };
    let resid = forward()?;
    encode(&resid)?;
    let (mut best_forward, mut best_encode) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..repeats.max(1) {
        let start = Instant::now();
        let resid = forward()?;
        best_forward = best_forward.min(start.elapsed().as_secs_f64());
        let start = Instant::now();
        encode(&resid)?;
        best_encode = best_encode.min(start.elapsed().as_secs_f64());
    }
    crate::report::output(format_args!(
        "shape {shape:?}: forward to {hook_name} and SAE encode ({d} -> {d_sae}), {n} tokens in windows of {window}, random weights, model in {dtype:?}, {device:?}, {} threads, best of {}",
        rayon::current_num_threads(),
        repeats.max(1)
    ));
    crate::report::output(format_args!(
        "{:<30} {:>10} {:>14}",
        "stage", "seconds", "tokens/s"
    ));
    for (stage, secs) in [
        ("forward to the hook", best_forward),
        ("SAE encode", best_encode),
    ] {
        crate::report::output(format_args!(
            "{stage:<30} {secs:>10.3} {:>14.0}",
            n as f64 / secs
        ));
    }
    Ok(())
}

/// Runs every hook of the golden fixtures in `fixtures` (`tiny-{gpt2,llama,gemma2}` and
/// `golden/{name}_tiny_hooks.safetensors`, as the golden tests read them) on `device`, prints
/// the largest relative error per model and fails above 1e-4 (the golden tests' tolerance).
pub fn golden(fixtures: &Path, device: DeviceKind) -> Result<()> {
    let device = crate::inputs::open_device(device)?;
    let hub = crate::hub::Hub::from_env(false)?;
    let mut failed = Vec::new();
    for name in ["gpt2", "llama", "gemma2"] {
        let golden_file = fixtures.join(format!("golden/{name}_tiny_hooks.safetensors"));
        let golden = candle_core::safetensors::load(&golden_file, &device)
            .with_context(|| format!("cannot read {}", golden_file.display()))?;
        let tokens = golden
            .get("tokens")
            .with_context(|| format!("{} has no tokens", golden_file.display()))?
            .to_dtype(candle_core::DType::U32)?;
        let location = crate::hub::Location::Local(fixtures.join(format!("tiny-{name}")));
        let files = crate::model::ModelFiles::resolve(&location, &hub)?;
        let mut worst = 0f32;
        for (hook_name, expected) in golden.iter().filter(|(k, _)| k.starts_with("blocks.")) {
            let hook = crate::model::HookPoint::parse(hook_name)?;
            let model = crate::model::load_model(&files, hook, &device)?;
            let ours = model.activations(&tokens)?;
            let diff = (&ours - expected)?.abs()?.max_all()?.to_scalar::<f32>()?;
            let scale = expected.abs()?.max_all()?.to_scalar::<f32>()?;
            worst = worst.max(diff / scale.max(f32::MIN_POSITIVE));
        }
        let ok = worst <= 1e-4;
        crate::report::output(format_args!(
            "golden {name}: max relative error {worst:.2e} over every hook ({})",
            if ok { "ok" } else { "FAILED" }
        ));
        if !ok {
            failed.push(name);
        }
    }
    ensure!(
        failed.is_empty(),
        "the forward pass on {device:?} differs from the golden fixtures of {failed:?} by more than 1e-4"
    );
    Ok(())
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
    fn every_model_shape_has_its_spec() {
        use clap::ValueEnum;
        for shape in ModelShape::value_variants() {
            let spec = shape.spec().unwrap();
            assert!(spec.config["model_type"].is_string(), "{shape:?}");
            crate::model::HookPoint::parse(&spec.hook).unwrap();
            assert!(spec.d_sae > 0);
        }
        let gemma = ModelShape::Gemma2_2b.spec().unwrap();
        assert_eq!(gemma.config["rms_norm_eps"], 1e-6);
        assert_eq!(
            (gemma.hook.as_str(), gemma.d_sae),
            ("blocks.12.hook_resid_post", 16_384)
        );
    }

    #[test]
    fn synthetic_rows_have_the_asked_l0() {
        let acts = synthetic_activations(10, 50, 7, 1);
        for row in acts.chunks_exact(50) {
            assert_eq!(row.iter().filter(|&&a| a > 0.0).count(), 7);
        }
    }
}
