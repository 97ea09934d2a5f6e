//! `train-sae`, `synth` and `bench`.

use crate::cli::{Architecture, BenchArgs, BenchStore, SynthArgs, TrainArgs};
use crate::config::{check_finite, check_range, check_tensor_size, Config};
use crate::pairs::Storage;
use crate::stages::bench;
use crate::stages::train::{self, TrainArchitecture, TrainOptions};
use crate::synth::{self, SynthOptions};
use anyhow::Result;

fn train_options(args: TrainArgs) -> TrainOptions {
    let architecture = match args.architecture {
        Architecture::Topk => TrainArchitecture::TopK { k: args.k },
        Architecture::Standard => TrainArchitecture::Standard {
            l1_coefficient: args.l1_coefficient,
        },
    };
    TrainOptions {
        hook: args.hook,
        d_sae: args.d_sae,
        architecture,
        learning_rate: args.lr,
        tokens: args.tokens,
        batch_tokens: args.batch_tokens,
        buffer_tokens: args.buffer_tokens,
        buffer_passes: args.buffer_passes,
        heldout_tokens: args.heldout_tokens,
        out: args.out,
        seed: args.seed,
        keep_special_tokens: args.keep_special_tokens,
    }
}

pub fn train(args: TrainArgs) -> Result<()> {
    let config = Config::load(&args.config)?;
    let device = args.device;
    let options = train_options(args);
    let r = train::run(&config, &options, device)?;
    crate::report::summary(format_args!(
        "trained {} latents on {} tokens in {:.0} s ({:.0} tokens/s): held-out explained variance {:.3}, L0 {:.1}, {} dead latents → {}",
            r.d_sae,
            r.tokens,
            r.seconds,
            r.tokens_per_second,
            r.heldout_explained_variance,
            r.heldout_l0,
            r.dead_latents,
        options.out.display()
    ));
    Ok(())
}

fn synth_options(args: &SynthArgs) -> SynthOptions {
    SynthOptions {
        layers: args.layers,
        d_model: args.d_model,
        heads: args.heads,
        n_positions: args.n_positions,
        d_sae: args.d_sae,
        hook_layer: args.hook_layer,
        documents: args.documents,
        seed: args.seed,
    }
}

pub fn synth(args: SynthArgs) -> Result<()> {
    let demo = synth::write_demo(&args.out, &synth_options(&args), args.random_jaccard)?;
    if let Some(dir) = &demo.random_jaccard {
        crate::report::summary(format_args!(
            "wrote a random Jaccard matrix to {}",
            dir.display()
        ));
    }
    crate::report::summary(format_args!(
        "wrote {} (model, SAE, corpus); run it with: saecooc cooc --config {}",
        args.out.display(),
        demo.config.display()
    ));
    Ok(())
}

/// Range checks of the `bench` flags, before any work (the activations of one batch are a
/// dense `--tokens × width` float32 matrix).
fn check_bench_args(args: &BenchArgs) -> Result<()> {
    check_range("--batches", args.batches, 1..=1_000_000)?;
    check_range("--tokens", bench_tokens(args), 1..)?;
    check_finite("--max-dense-seconds", args.max_dense_seconds, 0.0..)?;
    for &width in &args.widths {
        check_range("--widths", width, 1..)?;
        check_tensor_size(
            "one batch's activations (--tokens × --widths)",
            &[bench_tokens(args), width],
        )?;
        for &l0 in &args.l0 {
            check_range("--l0", l0, 1..=width)?;
        }
    }
    Ok(())
}

/// `--tokens`, or its default for the benchmark the flags pick.
fn bench_tokens(args: &BenchArgs) -> usize {
    let default = match args.sweep {
        Some(_) => bench::sweep::DEFAULT_TOKENS,
        None => 4096,
    };
    args.tokens.unwrap_or(default)
}

/// Runs the benchmark the flags pick: --golden, --shape, --end-to-end, --sweep, else
/// accumulation.
pub fn bench(args: BenchArgs) -> Result<()> {
    check_bench_args(&args)?;
    if let Some(fixtures) = &args.golden {
        return bench::golden(fixtures, args.device);
    }
    if let Some(shape) = args.shape {
        return bench::shape(
            shape,
            args.shape_tokens,
            args.window,
            args.repeats,
            args.device,
            args.dtype,
        );
    }
    if let Some(sweep) = args.sweep {
        return bench::sweep::bench(sweep, &args.dir, bench_tokens(&args), args.device).map(|_| ());
    }
    if args.end_to_end {
        return bench::end_to_end(&args.dir, args.batches, args.device).map(|_| ());
    }
    let store = args.store.map(|s| match s {
        BenchStore::Dense => Storage::Dense,
        BenchStore::Sparse => Storage::Sparse,
    });
    bench::run(
        &args.widths,
        &args.l0,
        bench_tokens(&args),
        args.max_dense_seconds,
        store,
    )
    .map(|_| ())
}
