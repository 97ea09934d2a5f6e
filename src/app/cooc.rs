//! `cooc` and `merge`.

use super::scheduler::{self, Env};
use crate::cli::{CoocArgs, MergeArgs};
use crate::stages::cooc::{self, CoocOptions, Shard, ShardRequest};
use anyhow::Result;

/// The stage's options, `--shard auto` resolved from the scheduler's variables in `env`.
fn options(args: CoocArgs, env: Env) -> Result<CoocOptions> {
    Ok(CoocOptions {
        common: super::common(args.common),
        shard: shard_of(args.shard, env)?,
        resume: args.resume,
        checkpoint_every: args.checkpoint_every,
        replace: args.replace,
        memory_limit_gib: args.memory_limit_gib,
    })
}

/// The shard `--shard` asks for; without one, a warning inside a SLURM array job.
fn shard_of(request: Option<ShardRequest>, env: Env) -> Result<Option<Shard>> {
    if request.is_none() {
        if let Some(warning) = scheduler::array_job_warning(env) {
            crate::report::warning(warning);
        }
    }
    let (shard, source) = scheduler::resolve_shard(request, env)?;
    if let Some(source) = source {
        crate::report::note(source);
    }
    Ok(shard)
}

pub fn cooc(args: CoocArgs) -> Result<()> {
    let config = super::load_config(&args.config, &args.saes.sae_ids)?;
    // Each SAE's summary line is printed as soon as that SAE is done.
    cooc::run(&config, &options(args, &scheduler::process_env)?)?;
    Ok(())
}

pub fn merge(args: MergeArgs) -> Result<()> {
    let config = super::load_config(&args.config, &args.saes.sae_ids)?;
    for s in cooc::merge(&config, args.results_dir, args.shards, args.replace)? {
        crate::report::summary(format_args!(
            "{}: merged {} shards, {} tokens → {}",
            s.sae_id,
            args.shards,
            s.tokens_counted,
            s.out_dir.display()
        ));
    }
    Ok(())
}
