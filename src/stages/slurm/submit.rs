//! `sbatch`: the lines that submit a study's jobs in order, and their submission, each job
//! after the one it waits for (`--dependency=afterok:ID`; a job whose dependency failed is
//! cancelled, `--kill-on-invalid-dep=yes`, rather than left pending for ever).

use super::script::shell_quote;
use super::Job;
use anyhow::{bail, Context, Result};
use std::process::Command;

/// The flags every submission gets: the job id alone on stdout, and dependents of a failed job
/// cancelled.
const SBATCH_FLAGS: [&str; 2] = ["--parsable", "--kill-on-invalid-dep=yes"];

/// The `sbatch` arguments of `job`, waiting for job id `after` if any.
fn arguments(job: &Job, after: Option<&str>, extra: &[String]) -> Vec<String> {
    let mut args: Vec<String> = SBATCH_FLAGS.iter().map(|f| f.to_string()).collect();
    if let Some(id) = after {
        args.push(format!("--dependency=afterok:{id}"));
    }
    args.extend(extra.iter().cloned());
    args.push(job.script.to_string_lossy().into_owned());
    args
}

/// One bash line per job: `job_{name}=$(sbatch … {script})`, a dependent job waiting for
/// `${job_{after}%%;*}` (the id without a cluster name).
pub(super) fn lines(jobs: &[Job], extra: &[String]) -> Vec<String> {
    jobs.iter()
        .map(|job| {
            let after = job.after.map(|a| format!("${{{}%%;*}}", variable(a)));
            let args = arguments(job, None, extra);
            let mut words: Vec<String> = args.iter().map(|a| shell_quote(a)).collect();
            if let Some(after) = after {
                words.insert(SBATCH_FLAGS.len(), format!("--dependency=afterok:{after}"));
            }
            format!("{}=$(sbatch {})", variable(job.name), words.join(" "))
        })
        .collect()
}

/// The bash variable holding the job id of job `name`.
fn variable(name: &str) -> String {
    format!("job_{name}")
}

/// `submit.sh`: the lines, then the job ids printed.
pub(super) fn script(jobs: &[Job], extra: &[String]) -> String {
    let mut text = String::from("#!/bin/bash\n# Written by `saecooc slurm`: submits the study's jobs in order.\nset -euo pipefail\n");
    for line in lines(jobs, extra) {
        text.push_str(&line);
        text.push('\n');
    }
    for job in jobs {
        text.push_str(&format!(
            "echo \"{}: ${{{}}}\"\n",
            job.name,
            variable(job.name)
        ));
    }
    text
}

/// Submits `jobs` in order; returns each job's name and id.
pub(super) fn submit(jobs: &[Job], extra: &[String]) -> Result<Vec<(&'static str, String)>> {
    let mut ids: Vec<(&'static str, String)> = Vec::new();
    for job in jobs {
        let after = job
            .after
            .and_then(|a| ids.iter().find(|(name, _)| *name == a))
            .map(|(_, id)| id.as_str());
        let id = sbatch(&arguments(job, after, extra))?;
        ids.push((job.name, id));
    }
    Ok(ids)
}

/// Runs `sbatch {args}` and reads the job id it prints (`--parsable`: `ID` or `ID;cluster`).
fn sbatch(args: &[String]) -> Result<String> {
    let output = Command::new("sbatch")
        .args(args)
        .output()
        .context("cannot run sbatch (is SLURM installed and on PATH?)")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "sbatch {} failed ({}): {}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let id = stdout.trim().split(';').next().unwrap_or_default().trim();
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
        bail!("sbatch {} printed no job id: {stdout:?}", args.join(" "));
    }
    Ok(id.to_string())
}
