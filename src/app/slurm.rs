//! `slurm`: the study's job scripts written, their `sbatch` lines printed, and with
//! `--submit` the jobs submitted.

use crate::cli::SlurmArgs;
use crate::config::PcaConfig;
use crate::stages::slurm::{self, SlurmOptions, Study};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

pub fn slurm(args: SlurmArgs) -> Result<()> {
    let config = super::load_config(&args.config, &[])?;
    let pca = args
        .pca_config
        .as_deref()
        .map(PcaConfig::load)
        .transpose()?;
    let sbatch_args: Vec<String> = args
        .sbatch_args
        .as_deref()
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let options = SlurmOptions {
        binary: std::env::current_exe().context("cannot find the saecooc binary's path")?,
        config: absolute(&args.config)?,
        pca_config: args.pca_config.as_deref().map(absolute).transpose()?,
        shards: args.shards,
        sbatch_args: sbatch_args.clone(),
        out: absolute(&args.out)?,
        results_dir: args.results_dir,
        checkpoint_every: args.checkpoint_every,
        workdir: std::env::current_dir().context("cannot read the current folder")?,
    };
    let study = slurm::write(&config, pca.as_ref(), &options)?;
    report_complete(&study, args.shards);
    for line in slurm::sbatch_lines(&study, &sbatch_args) {
        println!("{line}");
    }
    if args.submit {
        for (name, id) in slurm::submit(&study, &sbatch_args)? {
            println!("submitted {name}: job {id}");
        }
    }
    Ok(())
}

/// Notes what needs no job: SAEs whose cooc set is published, finished shards.
fn report_complete(study: &Study, shards: usize) {
    for sae in &study.progress {
        let done = sae.shards_done.iter().filter(|d| **d).count();
        if sae.published {
            crate::report::note(format_args!(
                "{}: cooc complete, no cooc or merge task",
                sae.sae_id
            ));
        } else if done > 0 {
            crate::report::note(format_args!(
                "{}: {done} of {shards} shards complete, no task for them",
                sae.sae_id
            ));
        }
    }
}

/// `path` made absolute against the current folder (the jobs may run elsewhere).
fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("cannot resolve {}", path.display()))
}
