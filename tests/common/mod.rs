//! Helpers shared by the end-to-end tests: synthetic inputs in the real formats, configs,
//! running the binary, and the Python used to read outputs back.
#![allow(dead_code)]

use saecooc::synth::{self, SynthOptions, SynthPaths};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn small_options() -> SynthOptions {
    SynthOptions {
        d_sae: 256,
        documents: 400,
        ..SynthOptions::default()
    }
}

pub fn fixture(dir: &Path) -> SynthPaths {
    synth::write_all(&dir.join("inputs"), &small_options()).unwrap()
}

/// A config for the fixture; `extra` is appended to [generation].
pub fn config_text(p: &SynthPaths, n_batches: usize, extra: &str) -> String {
    format!(
        r#"[generation]
n_batches = {n_batches}
model_name = "synthetic-gpt2"
sae_release_short = "synthetic"
sae_ids = ["blocks.1.hook_resid_pre"]
activation_thresholds = [0.0, 1.5, 3]
remove_special_tokens = true
{extra}
[source]
model = "{}"
sae = "{}"
dataset = "{}"

[run]
context_size = 32
prompts_per_batch = 7
tokens_per_batch = 500
"#,
        p.model.display(),
        p.sae.parent().unwrap().display(),
        p.corpus.display()
    )
}

pub fn run_cooc(dir: &Path, config: &str) -> (Output, PathBuf) {
    let config_path = dir.join("run.toml");
    std::fs::write(&config_path, config).unwrap();
    let results = dir.join("results");
    let out = Command::new(env!("CARGO_BIN_EXE_saecooc"))
        .args(["--quiet", "cooc", "--config"])
        .arg(&config_path)
        .arg("--results-dir")
        .arg(&results)
        .output()
        .unwrap();
    (out, results)
}

pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files_under(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

pub fn results_dir(results: &Path, n_batches: usize) -> PathBuf {
    results.join(format!(
        "synthetic-gpt2/synthetic/blocks_1_hook_resid_pre/n_batches_{n_batches}"
    ))
}

/// The Python that reads our outputs back: `SAECOOC_PYTHON` (set by `make test` to one with
/// numpy, pandas, scipy and networkx), else `python3`.
pub fn python() -> Command {
    Command::new(std::env::var("SAECOOC_PYTHON").unwrap_or_else(|_| "python3".into()))
}

/// Runs the binary with `args`.
pub fn saecooc(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_saecooc"));
    cmd.args(args);
    cmd
}
