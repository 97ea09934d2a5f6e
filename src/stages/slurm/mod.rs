//! `saecooc slurm`: the SLURM job scripts of a whole study, and their submission.
//!
//! One array job counts co-occurrences, a task per (SAE, shard) (`cooc --sae-id ID --shard i/N
//! --resume`); `merge` sums the shards, then `graphs`, `pca` (an array job, a task per SAE of
//! the PCA config) and `export` run, each after the one before succeeded
//! (`--dependency=afterok`). What the results folder shows complete gets no job or task (see
//! [`done`]), so a rerun after a failure resubmits only the rest. This stage writes scripts
//! and calls `sbatch`; it runs no other stage.

pub mod done;
mod script;
mod submit;

use crate::config::{Config, PcaConfig};
use anyhow::{ensure, Context, Result};
use std::path::{Path, PathBuf};

pub use script::shell_quote;

/// What `saecooc slurm` was asked for.
pub struct SlurmOptions {
    /// The saecooc binary the jobs run (absolute).
    pub binary: PathBuf,
    /// The run config (absolute).
    pub config: PathBuf,
    /// The PCA config (absolute), if the study runs `pca`.
    pub pca_config: Option<PathBuf>,
    /// Shards per SAE.
    pub shards: usize,
    /// Extra `sbatch` arguments, on every `sbatch` line.
    pub sbatch_args: Vec<String>,
    /// Where the scripts and logs go (absolute).
    pub out: PathBuf,
    /// The results root (`--results-dir`, else the config's), passed to every stage.
    pub results_dir: Option<PathBuf>,
    /// `cooc --checkpoint-every`.
    pub checkpoint_every: usize,
    /// The folder the jobs run in (relative paths of the configs are read from there).
    pub workdir: PathBuf,
}

/// One job of the study: its script and what it waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// `cooc`, `merge`, `graphs`, `pca`, `export`: also the script's stem.
    pub name: &'static str,
    pub script: PathBuf,
    /// The array task ids (an array job), or `None`.
    pub array: Option<Vec<usize>>,
    /// The job (by name) whose success this one waits for.
    pub after: Option<&'static str>,
}

/// The scripts written and the jobs to submit, in order.
#[derive(Debug)]
pub struct Study {
    pub jobs: Vec<Job>,
    /// What is already complete (cooc per SAE and shard).
    pub progress: Vec<done::SaeProgress>,
    /// `submit.sh`: the `sbatch` lines, runnable.
    pub submit_script: PathBuf,
}

/// Writes the study's scripts into `options.out` (only those of jobs with work left) and
/// `submit.sh` with their `sbatch` lines.
pub fn write(config: &Config, pca: Option<&PcaConfig>, options: &SlurmOptions) -> Result<Study> {
    ensure!(options.shards > 0, "--shards must be at least 1");
    ensure!(
        !options.out.to_string_lossy().contains(char::is_whitespace),
        "--out {}: SLURM reads the log paths of `#SBATCH --output` unquoted, so the folder may not contain spaces; choose another",
        options.out.display()
    );
    ensure!(
        options.pca_config.is_some() == pca.is_some(),
        "the PCA config and its path go together"
    );
    let root = options.workdir.join(
        options
            .results_dir
            .as_ref()
            .unwrap_or(&config.run.results_dir),
    );
    let progress = done::progress(config, &root, options.shards)?;
    std::fs::create_dir_all(options.out.join("logs"))
        .with_context(|| format!("cannot create {}", options.out.join("logs").display()))?;
    let writer = script::Writer {
        options,
        root: &root,
    };
    let mut jobs = Vec::new();
    let mut push = |job: Option<Job>| {
        if let Some(mut job) = job {
            job.after = jobs.last().map(|j: &Job| j.name);
            jobs.push(job);
        }
    };
    push(writer.cooc(&progress)?);
    push(writer.merge(&progress)?);
    push(Some(writer.graphs()?));
    if let Some(pca) = pca {
        push(Some(writer.pca(&pca.model.sae_ids)?));
    }
    push(Some(writer.export()?));
    remove_stale_scripts(&options.out, &jobs)?;
    let submit_script = options.out.join("submit.sh");
    write_file(&submit_script, &submit::script(&jobs, &options.sbatch_args))?;
    Ok(Study {
        jobs,
        progress,
        submit_script,
    })
}

/// Submits the study's jobs in order, each after the one it waits for; returns (name, job id).
pub fn submit(study: &Study, sbatch_args: &[String]) -> Result<Vec<(&'static str, String)>> {
    submit::submit(&study.jobs, sbatch_args)
}

/// The `sbatch` lines of the study (as `submit.sh` has them).
pub fn sbatch_lines(study: &Study, sbatch_args: &[String]) -> Vec<String> {
    submit::lines(&study.jobs, sbatch_args)
}

/// Every job a study may have, by name (its script's stem).
const JOB_NAMES: [&str; 5] = ["cooc", "merge", "graphs", "pca", "export"];

/// Removes the scripts an earlier run wrote for jobs this one does not have (work since
/// completed), so that `out` holds only what `submit.sh` submits.
fn remove_stale_scripts(out: &Path, jobs: &[Job]) -> Result<()> {
    for name in JOB_NAMES
        .iter()
        .filter(|n| !jobs.iter().any(|j| j.name == **n))
    {
        let path = out.join(format!("{name}.sh"));
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).with_context(|| format!("cannot remove {}", path.display()))
            }
            _ => {}
        }
    }
    Ok(())
}

/// Writes `text` to `path`, executable.
fn write_file(path: &Path, text: &str) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .with_context(|| format!("cannot make {} executable", path.display()))
}
