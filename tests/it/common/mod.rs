//! Helpers shared by the end-to-end tests: synthetic inputs in the real formats, configs,
//! running the binary, and the Python used to read outputs back.
#![allow(dead_code)]

use saecooc::synth::{self, SynthOptions, SynthPaths};
use std::ffi::OsStr;
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

/// The second SAE of [`two_sae_fixture`]: a copy of the fixture's reading another hook.
pub const COPIED_SAE: &str = "blocks.0.hook_resid_pre";

/// The tiny world with a second SAE, a copy of the first reading `blocks.0.hook_resid_pre`.
pub fn two_sae_fixture(dir: &Path) -> SynthPaths {
    let p = fixture(dir);
    let second = p.sae.parent().unwrap().join(COPIED_SAE);
    std::fs::create_dir_all(&second).unwrap();
    std::fs::copy(
        p.sae.join("sae_weights.safetensors"),
        second.join("sae_weights.safetensors"),
    )
    .unwrap();
    let mut cfg = read_json(&p.sae.join("cfg.json"));
    cfg["hook_name"] = COPIED_SAE.into();
    cfg["hook_layer"] = 0.into();
    std::fs::write(second.join("cfg.json"), cfg.to_string()).unwrap();
    p
}

/// `text` with its one SAE id replaced by both SAEs' of [`two_sae_fixture`].
pub fn with_both_saes(text: String) -> String {
    let one = format!(r#"sae_ids = ["{FIXTURE_SAE}"]"#);
    assert!(text.contains(&one), "{text}");
    text.replace(
        &one,
        &format!(r#"sae_ids = ["{FIXTURE_SAE}", "{COPIED_SAE}"]"#),
    )
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
prompts_per_batch = 16
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

/// `rel`, a path inside the repository.
pub fn repo_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// A JSON file, parsed.
pub fn read_json(path: &Path) -> serde_json::Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap()
}

/// A command's stderr as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
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

/// Asserts a command succeeded, showing its stderr otherwise.
pub fn assert_ok(out: &Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `tests/python/{script}` with `args` and asserts it succeeded, showing its output
/// otherwise.
pub fn check_python<I, S>(script: &str, args: I)
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let out = python()
        .arg(repo_path("tests/python").join(script))
        .args(args)
        .output()
        .expect(
            "python3 with numpy, scipy, pandas, networkx, h5py and scikit-learn is needed \
             (make test installs them; SAECOOC_PYTHON names it)",
        );
    assert!(
        out.status.success(),
        "tests/python/{script} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Writes `config` to `dir/{name}` and runs `saecooc --quiet {stage} --config` it
/// `--results-dir {results} {extra}`.
pub fn run_stage(
    dir: &Path,
    name: &str,
    stage: &str,
    config: &str,
    results: &Path,
    extra: &[&str],
) -> Output {
    let path = dir.join(name);
    std::fs::write(&path, config).unwrap();
    saecooc(&["--quiet", stage, "--config"])
        .arg(&path)
        .arg("--results-dir")
        .arg(results)
        .args(extra)
        .output()
        .unwrap()
}

/// `saecooc --quiet stats` of `results` into `out`, asserted to succeed.
pub fn run_stats(results: &Path, out: &Path) -> Output {
    let o = saecooc(&["--quiet", "stats", "--results-dir"])
        .arg(results)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    assert_ok(&o);
    o
}

/// `saecooc --quiet export` of `results` into `site`.
pub fn export(results: &Path, site: &Path) -> Output {
    saecooc(&["--quiet", "export", "--results-dir"])
        .arg(results)
        .arg("--out")
        .arg(site)
        .output()
        .unwrap()
}

/// GPT-2's tokenizer from the vocabulary and merges in `assets/gpt2`.
pub fn gpt2_tokenizer() -> tokenizers::Tokenizer {
    let dir = repo_path("assets/gpt2");
    saecooc::tokenizer::gpt2_bpe(&dir.join("vocab.json"), &dir.join("merges.txt")).unwrap()
}

/// A word-level tokenizer.json with Gemma's special tokens (`<pad>`, `<bos>`, `<eos>`,
/// `<unk>`, then `w4` ... `w999`), split at whitespace.
pub fn write_word_level_tokenizer(path: &Path) {
    use tokenizers::models::wordlevel::WordLevel;
    use tokenizers::pre_tokenizers::whitespace::Whitespace;
    let mut vocab = std::collections::HashMap::new();
    for (i, t) in ["<pad>", "<bos>", "<eos>", "<unk>"].iter().enumerate() {
        vocab.insert(t.to_string(), i as u32);
    }
    for i in 4..1000u32 {
        vocab.insert(format!("w{i}"), i);
    }
    let model = WordLevel::builder()
        .vocab(vocab.into_iter().collect())
        .unk_token("<unk>".into())
        .build()
        .unwrap();
    let mut tokenizer = tokenizers::Tokenizer::new(model);
    tokenizer.with_pre_tokenizer(Some(Whitespace {}));
    tokenizer.save(path, false).unwrap();
}

/// A corpus of `docs` lines of 5 to 39 random words of the word-level tokenizer, from `seed`.
pub fn write_word_corpus(path: &Path, docs: usize, seed: u64) {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let lines: Vec<String> = (0..docs)
        .map(|_| {
            (0..rng.random_range(5..40))
                .map(|_| format!("w{}", rng.random_range(4..1000)))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    std::fs::write(path, lines.join("\n")).unwrap();
}

/// A Gemma Scope-style `params.npz` (JumpReLU, threshold 0.5) at `path`: 48 latents on the
/// 64-wide residual stream of the tiny Gemma-2, random decoder rows from `seed`, the encoder
/// their transpose.
pub fn write_gemma_scope_params(path: &Path, seed: u64) {
    use rand::{Rng, SeedableRng};
    let (d_in, d_sae) = (64usize, 48usize);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let w_dec: Vec<f32> = (0..d_sae * d_in)
        .map(|_| rng.random_range(-1.0..1.0f32))
        .collect();
    let w_enc: Vec<f32> = (0..d_in * d_sae)
        .map(|k| w_dec[(k % d_sae) * d_in + k / d_sae])
        .collect();
    let mut w = saecooc::io::npz::NpzWriter::create(path, false).unwrap();
    w.add_array("W_enc", &[d_in, d_sae], &w_enc).unwrap();
    w.add_array("W_dec", &[d_sae, d_in], &w_dec).unwrap();
    w.add_array("b_enc", &[d_sae], &vec![0f32; d_sae]).unwrap();
    w.add_array("b_dec", &[d_in], &vec![0f32; d_in]).unwrap();
    w.add_array("threshold", &[d_sae], &vec![0.5f32; d_sae])
        .unwrap();
    w.finish().unwrap();
}

/// Runs the binary with `args`.
pub fn saecooc(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_saecooc"));
    cmd.args(args);
    cmd
}

/// A PCA config for the fixture in the original's format; every dataset saved.
pub fn pca_config(p: &SynthPaths, n_batches: usize, prompts: usize, max_examples: usize) -> String {
    format!(
        r#"[generation]
n_batches_generation = 6

[model]
name = "synthetic-gpt2"
sae_release_short = "synthetic"
sae_ids = ["blocks.1.hook_resid_pre"]

[processing]
remove_special_tokens = true
n_batches_reconstruction = {n_batches}
activation_threshold = 1.5
subgraph_sizes_to_plot = [2, 3, 4, 5, 6]
max_examples = {max_examples}
trim_excess = true

[processing.save_options]
fired_tokens = true
top_3_tokens = true
context = true
reconstructions = true
graph_feature_acts = true
feature_acts = true
max_feature_info = true
examples_found = true
token_dfs = true
pca = true

[source]
model = "{}"
sae = "{}"
dataset = "{}"

[run]
context_size = 32
prompts_per_batch = {prompts}
"#,
        p.model.display(),
        p.sae.parent().unwrap().display(),
        p.corpus.display()
    )
}

/// cooc + graphs on the fixture; returns the results root.
pub fn prepare(dir: &Path) -> (SynthPaths, PathBuf) {
    let p = fixture(dir);
    let results = cooc_and_graphs(dir, &p, 6);
    (p, results)
}

/// The `[analysis]` of the configs [`cooc_and_graphs`] runs.
pub const GRAPHS_ANALYSIS: &str = "\n[analysis]\nmin_subgraph_size = 20\nmax_subgraph_size = 40\nskip_subgraph_plots = true\nskip_subgraph_pickles = true\n";

/// cooc + graphs on the fixture with `n_batches` (its own results folder, `n_batches_{N}`);
/// returns the results root.
pub fn cooc_and_graphs(dir: &Path, p: &SynthPaths, n_batches: usize) -> PathBuf {
    cooc_and_graphs_of(dir, &config_text(p, n_batches, GRAPHS_ANALYSIS))
}

/// cooc + graphs of `config` (written to `dir/run.toml`) into `dir/results`; returns the
/// results root.
pub fn cooc_and_graphs_of(dir: &Path, config: &str) -> PathBuf {
    let (out, results) = run_cooc(dir, config);
    assert_ok(&out);
    let out = saecooc(&["--quiet", "graphs", "--config"])
        .arg(dir.join("run.toml"))
        .arg("--results-dir")
        .arg(&results)
        .output()
        .unwrap();
    assert_ok(&out);
    results
}

/// The fixture SAE's id (the only one of [`config_text`] and [`pca_config`]).
pub const FIXTURE_SAE: &str = "blocks.1.hook_resid_pre";

/// A second SAE for sweeps, written by [`write_second_sae`]: its id and the layer whose
/// `hook_resid_pre` it reads.
pub const SECOND_SAE: (&str, usize) = ("blocks.0.hook_resid_pre", 0);

/// Writes [`SECOND_SAE`] beside the fixture's SAE: calibrated as the fixture's is, from
/// another seed; returns its id.
pub fn write_second_sae(p: &SynthPaths) -> &'static str {
    let (id, layer) = SECOND_SAE;
    let options = SynthOptions {
        hook_layer: layer,
        seed: 7,
        ..small_options()
    };
    let dir = p.sae.parent().unwrap().join(id);
    synth::write_calibrated_sae(&p.model, &p.corpus, &dir, &options).unwrap();
    id
}

/// `config` (of [`config_text`] or [`pca_config`]) naming the SAEs `ids` instead of the
/// fixture's.
pub fn with_sae_ids(config: &str, ids: &[&str]) -> String {
    let list: Vec<String> = ids.iter().map(|id| format!("{id:?}")).collect();
    let line = format!("sae_ids = [{:?}]", FIXTURE_SAE);
    assert!(config.contains(&line), "{config}");
    config.replace(&line, &format!("sae_ids = [{}]", list.join(", ")))
}

/// The results folder of SAE `sae_id` of the fixture's release with `n_batches`.
pub fn sae_results(results: &Path, sae_id: &str, n_batches: usize) -> PathBuf {
    results.join(format!(
        "synthetic-gpt2/synthetic/{}/n_batches_{n_batches}",
        saecooc::io::pyfmt::neat_sae_id(sae_id)
    ))
}

/// The batches a run says it read from the data for `saes` SAEs (its note on stderr).
pub fn batches_read_from_the_data(stderr: &str, saes: usize) -> u64 {
    let tail = format!(" batches read from the data for {saes} SAE(s)");
    let line = stderr
        .lines()
        .find(|l| l.ends_with(&tail))
        .unwrap_or_else(|| panic!("no {tail:?} in {stderr}"));
    let words: Vec<&str> = line.trim_end_matches(&tail).split(' ').collect();
    words.last().unwrap().parse().unwrap()
}

/// A child process run to its end by [`run_with_peak_rss`].
pub struct Measured {
    pub status: std::process::ExitStatus,
    pub stdout: String,
    pub stderr: String,
    /// Peak resident set size in bytes (`ru_maxrss` of this child alone, from `wait4`).
    pub peak_rss: u64,
    pub wall: std::time::Duration,
    /// Killed after the timeout.
    pub timed_out: bool,
}

impl Measured {
    /// As [`Command::output`] would have returned it.
    pub fn output(&self) -> Output {
        Output {
            status: self.status,
            stdout: self.stdout.clone().into_bytes(),
            stderr: self.stderr.clone().into_bytes(),
        }
    }
}

/// Runs `cmd` (its output in files under `dir`), killing it after `timeout`, and measures its
/// peak resident memory.
pub fn run_with_peak_rss(cmd: &mut Command, dir: &Path, timeout: std::time::Duration) -> Measured {
    use std::os::unix::process::ExitStatusExt;
    let (out_path, err_path) = (dir.join("child.stdout"), dir.join("child.stderr"));
    let start = std::time::Instant::now();
    let child = cmd
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let (mut status, mut timed_out) = (0, false);
    // SAFETY: `rusage` is plain data; wait4 and kill act on our own child only.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        let reaped = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if reaped == pid {
            break;
        }
        assert_eq!(reaped, 0, "wait4 failed");
        if start.elapsed() > timeout {
            timed_out = true;
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::wait4(pid, &mut status, 0, &mut usage);
            }
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    drop(child);
    Measured {
        status: std::process::ExitStatus::from_raw(status),
        stdout: std::fs::read_to_string(&out_path).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err_path).unwrap_or_default(),
        peak_rss: saecooc::stages::bench::measure::max_rss_bytes(&usage),
        wall: start.elapsed(),
        timed_out,
    }
}
/// A SAELens SAE folder whose cfg.json holds `cfg` and whose weights (zeros, f32) have `d_in`
/// inputs and `d_sae` latents.
pub fn saelens_sae(dir: &Path, cfg: serde_json::Value, d_in: usize, d_sae: usize) {
    use candle_core::{DType, Device, Tensor};
    std::fs::create_dir_all(dir).unwrap();
    let zeros = |shape: &[usize]| Tensor::zeros(shape, DType::F32, &Device::Cpu).unwrap();
    let tensors = std::collections::HashMap::from([
        ("W_enc", zeros(&[d_in, d_sae])),
        ("b_enc", zeros(&[d_sae])),
        ("W_dec", zeros(&[d_sae, d_in])),
        ("b_dec", zeros(&[d_in])),
    ]);
    candle_core::safetensors::save(&tensors, dir.join("sae_weights.safetensors")).unwrap();
    std::fs::write(dir.join("cfg.json"), cfg.to_string()).unwrap();
}

pub mod golden;
pub mod hub_server;
pub mod parquet;
pub mod serve;
pub mod skip;

/// Starts `cmd`, waits until every file of `files` exists (a minute at most; it must still be
/// running then), and SIGKILLs it a moment later.
pub fn kill_once_written(mut cmd: Command, files: &[PathBuf]) {
    let mut child = cmd.spawn().unwrap();
    let started = std::time::Instant::now();
    while !files.iter().all(|f| f.is_file()) {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "{files:?} did not appear"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run finished before it could be killed"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(150));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
}
