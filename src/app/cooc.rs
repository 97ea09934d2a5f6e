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
    }
}

pub fn cooc(args: CoocArgs) -> Result<()> {
    let config = super::load_config(&args.config, &args.saes.sae_ids)?;
    for summary in cooc::run(&config, &options(args))? {
        crate::report::summary(format_args!(
            "{}: counted {} tokens ({:.0} tokens/s) → {}",
            summary.sae_id,
            summary.tokens_counted,
            summary.tokens_per_second,
            summary.out_dir.display()
        ));
    }
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
