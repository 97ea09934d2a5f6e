//! `cooc` and `merge`.

use crate::cli::{CoocArgs, MergeArgs};
use crate::config::Config;
use crate::stages::cooc::{self, CoocOptions};
use anyhow::Result;

fn options(args: CoocArgs) -> CoocOptions {
    CoocOptions {
        common: super::common(args.common),
        shard: args.shard,
        resume: args.resume,
        checkpoint_every: args.checkpoint_every,
        replace: args.replace,
        memory_limit_gib: args.memory_limit_gib,
    }
}

pub fn cooc(args: CoocArgs) -> Result<()> {
    let config = super::load_config(&args.config, &args.saes.sae_ids)?;
    // Each SAE's summary line is printed as soon as that SAE is done.
    cooc::run(&config, &options(args))?;
    Ok(())
}

pub fn merge(args: MergeArgs) -> Result<()> {
    let config = Config::load(&args.config)?;
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
