//! `bench --sweep`: the SAEs of a sweep (several SAEs of one model) counted by one `cooc` run of
//! a config naming them all, against the same SAEs one at a time (a config of each SAE alone),
//! both run as a user would; wall time and peak memory of each, and the two runs' counts
//! compared byte for byte.

use super::measure::ChildRun;
use super::{bench_config, gpt2_small_shaped, run_cooc, sae_results_dir};
use crate::config::{Config, DeviceKind};
use crate::synth::{self, SweepSae, SynthOptions};
use anyhow::{bail, ensure, Context, Result};
use std::path::{Path, PathBuf};

/// The sweeps of `bench --sweep`, on the GPT-2-small-shaped random model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Sweep {
    /// 8 SAEs at blocks.8.hook_resid_pre with 768, 1,536, …, 98,304 latents.
    FeatureSplitting,
    /// 12 SAEs of 24,576 latents at blocks.0.hook_resid_pre … blocks.11.hook_resid_pre.
    Layers,
}

/// Tokens every run of a sweep counts unless `--tokens` says otherwise.
pub const DEFAULT_TOKENS: usize = 16_384;

/// The most tokens in one batch (as `bench --end-to-end` counts them).
const TOKENS_PER_BATCH: usize = 4096;

impl Sweep {
    /// The name `--sweep` takes.
    pub fn name(self) -> &'static str {
        match self {
            Self::FeatureSplitting => "feature-splitting",
            Self::Layers => "layers",
        }
    }

    /// The SAEs of the sweep, with the ids a config names them by.
    pub fn saes(self) -> Vec<SweepSae> {
        match self {
            Self::FeatureSplitting => (0..8)
                .map(|k| {
                    let d_sae = 768 << k;
                    SweepSae {
                        id: format!("blocks.8.hook_resid_pre_{d_sae}"),
                        layer: 8,
                        d_sae,
                    }
                })
                .collect(),
            Self::Layers => (0..12)
                .map(|layer| SweepSae {
                    id: format!("blocks.{layer}.hook_resid_pre"),
                    layer,
                    d_sae: 24_576,
                })
                .collect(),
        }
    }
}

/// What a sweep benchmark runs: the model and corpus of `model`, its SAEs, the tokens every run
/// counts and the device.
#[derive(Debug, Clone)]
pub struct SweepPlan {
    pub name: String,
    pub model: SynthOptions,
    pub saes: Vec<SweepSae>,
    pub tokens: usize,
    pub device: DeviceKind,
}

impl SweepPlan {
    /// `sweep` on the GPT-2-small-shaped random model.
    pub fn gpt2_small(sweep: Sweep, tokens: usize, device: DeviceKind) -> Self {
        Self {
            name: sweep.name().into(),
            model: gpt2_small_shaped(),
            saes: sweep.saes(),
            tokens,
            device,
        }
    }

    /// Batches and tokens per batch: batches of at most 4,096 tokens, together at least
    /// `tokens`.
    pub fn batches(&self) -> (usize, usize) {
        let batches = self.tokens.div_ceil(TOKENS_PER_BATCH).max(1);
        (batches, self.tokens.div_ceil(batches))
    }

    fn ids(&self) -> Vec<String> {
        self.saes.iter().map(|s| s.id.clone()).collect()
    }
}

/// One row of the sweep table.
#[derive(Debug, Clone)]
pub struct SweepRow {
    pub mode: &'static str,
    pub saes: usize,
    /// Wall time of the run (of all runs, one at a time).
    pub seconds: f64,
    /// Tokens × SAEs per second.
    pub sae_tokens_per_s: f64,
    /// The largest peak resident memory of the run's processes.
    pub peak_rss_bytes: u64,
    /// Seconds spent writing the SAEs' outputs (their run.json `write_s`, summed): the same
    /// work in both modes, one SAE's files after another.
    pub write_seconds: f64,
}

/// What [`run`] measured.
#[derive(Debug, Clone)]
pub struct SweepReport {
    /// One at a time, then the whole sweep in one run.
    pub rows: [SweepRow; 2],
    /// Seconds one at a time over seconds in one run.
    pub speedup: f64,
    /// The same for the seconds less the writing of the outputs: the counting passes.
    pub speedup_counting: f64,
    pub tokens: u64,
    /// The `.npz` files found equal in both runs.
    pub files_compared: usize,
}

/// The row modes, as the table prints them.
pub const ONE_AT_A_TIME: &str = "one SAE at a time";
pub const ONE_RUN: &str = "whole sweep in one run";

/// `bench --sweep`: writes the model, corpus and SAEs of the sweep into `dir` (once) and runs
/// the sweep on the GPT-2-small shape with [`run`].
pub fn bench(sweep: Sweep, dir: &Path, tokens: usize, device: DeviceKind) -> Result<SweepReport> {
    let exe = std::env::current_exe().context("cannot find the saecooc executable")?;
    run(&exe, dir, &SweepPlan::gpt2_small(sweep, tokens, device))
}

/// Runs the SAEs of `plan` with `exe` (a saecooc binary) one at a time (a config of each SAE
/// alone, each with its own results folder), then all in one `cooc` run, on the inputs in
/// `dir` (written once), with every input file read beforehand so both find them cached. Prints
/// the table; fails, after printing it, naming the first `.npz` file that differs.
pub fn run(exe: &Path, dir: &Path, plan: &SweepPlan) -> Result<SweepReport> {
    write_inputs(dir, plan)?;
    let work = dir.join(format!("sweep-{}", plan.name));
    let sweep_config = plan_config(dir, plan, plan.ids(), &work.join("results-one-run"));
    let single_configs: Vec<Config> = plan
        .ids()
        .into_iter()
        .map(|id| {
            let results = work.join("results-one-at-a-time").join(&id);
            plan_config(dir, plan, vec![id], &results)
        })
        .collect();
    clear_results(&work)?;
    read_inputs_once(dir, plan)?;
    let mut singles = Vec::new();
    for (config, sae) in single_configs.iter().zip(&plan.saes) {
        let path = work.join(format!("{}.toml", sae.id));
        singles.push(run_cooc(exe, config, &path)?);
    }
    let whole = run_cooc(exe, &sweep_config, &work.join("sweep.toml"))?;
    let first = sae_results_dir(&sweep_config, &plan.saes[0].id);
    let tokens = crate::results::manifest::CoocManifest::read(&first)?.tokens_counted;
    let writes = |configs: &[&Config]| -> Result<f64> {
        let mut seconds = 0.0;
        for (config, sae) in configs.iter().zip(&plan.saes) {
            let run =
                crate::results::manifest::CoocManifest::read(&sae_results_dir(config, &sae.id))?;
            seconds += run.timings.map_or(0.0, |t| t.write_s);
        }
        Ok(seconds)
    };
    let single_refs: Vec<&Config> = single_configs.iter().collect();
    let write_seconds = [
        writes(&single_refs)?,
        writes(&vec![&sweep_config; plan.saes.len()])?,
    ];
    let report = sweep_report(plan.saes.len(), tokens, (&singles, &whole), write_seconds);
    print_table(plan, &report);
    let pairs: Vec<(PathBuf, PathBuf)> = plan
        .saes
        .iter()
        .zip(&single_configs)
        .map(|(sae, single)| {
            (
                sae_results_dir(&sweep_config, &sae.id),
                sae_results_dir(single, &sae.id),
            )
        })
        .collect();
    let files_compared = compare_npz(&pairs)?;
    crate::report::output(format_args!(
        "outputs identical ({files_compared} .npz files, byte for byte)"
    ));
    Ok(SweepReport {
        files_compared,
        ..report
    })
}

/// The model, corpus and SAEs of `plan` in `dir`, written by the first run.
fn write_inputs(dir: &Path, plan: &SweepPlan) -> Result<()> {
    let missing = plan
        .saes
        .iter()
        .filter(|s| !dir.join("sae").join(&s.id).join("cfg.json").is_file())
        .count();
    if missing > 0 {
        crate::report::note(format_args!(
            "writing the random model, corpus and {missing} calibrated SAEs of the {} sweep to {} (once)",
            plan.name,
            dir.display()
        ));
    }
    synth::write_sweep(dir, &plan.model, &plan.saes).map(|_| ())
}

/// A config of `plan` naming `ids`, writing into `results`.
fn plan_config(dir: &Path, plan: &SweepPlan, ids: Vec<String>, results: &Path) -> Config {
    bench_config(dir, ids, plan.batches(), plan.device, results)
}

/// Removes the results of an earlier benchmark run in `work` (the folders this benchmark
/// writes), so that both modes write into empty folders.
fn clear_results(work: &Path) -> Result<()> {
    for name in ["results-one-run", "results-one-at-a-time"] {
        let path = work.join(name);
        if path.exists() {
            std::fs::remove_dir_all(&path)
                .with_context(|| format!("cannot remove {}", path.display()))?;
        }
    }
    std::fs::create_dir_all(work).with_context(|| format!("cannot create {}", work.display()))
}

/// Reads every input file of `plan` once, so that the first run does not pay for a cold page
/// cache that the later ones find warm.
fn read_inputs_once(dir: &Path, plan: &SweepPlan) -> Result<()> {
    let model = dir.join("model").join("model.safetensors");
    let corpus = dir.join("corpus.txt");
    let saes = plan
        .saes
        .iter()
        .map(|s| dir.join("sae").join(&s.id).join("sae_weights.safetensors"));
    for path in [model, corpus].into_iter().chain(saes) {
        let mut file = std::fs::File::open(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        std::io::copy(&mut file, &mut std::io::sink())
            .with_context(|| format!("cannot read {}", path.display()))?;
    }
    Ok(())
}

/// The two rows and the speed-up from the runs' measurements.
/// The two rows and the speed-ups from the runs' measurements (`singles` one at a time,
/// `whole` the one run) and the seconds each mode spent writing outputs.
fn sweep_report(
    saes: usize,
    tokens: u64,
    (singles, whole): (&[ChildRun], &ChildRun),
    write_seconds: [f64; 2],
) -> SweepReport {
    let row = |mode, seconds: f64, peak_rss_bytes, write_seconds| SweepRow {
        mode,
        saes,
        seconds,
        sae_tokens_per_s: tokens as f64 * saes as f64 / seconds.max(1e-9),
        peak_rss_bytes,
        write_seconds,
    };
    let one_at_a_time = row(
        ONE_AT_A_TIME,
        singles.iter().map(|r| r.seconds).sum(),
        singles.iter().map(|r| r.peak_rss_bytes).max().unwrap_or(0),
        write_seconds[0],
    );
    let one_run = row(
        ONE_RUN,
        whole.seconds,
        whole.peak_rss_bytes,
        write_seconds[1],
    );
    let counting = |r: &SweepRow| (r.seconds - r.write_seconds).max(1e-9);
    SweepReport {
        speedup_counting: counting(&one_at_a_time) / counting(&one_run),
        speedup: one_at_a_time.seconds / one_run.seconds.max(1e-9),
        rows: [one_at_a_time, one_run],
        tokens,
        files_compared: 0,
    }
}

fn print_table(plan: &SweepPlan, report: &SweepReport) {
    let widths: Vec<String> = plan.saes.iter().map(|s| s.d_sae.to_string()).collect();
    let layers: Vec<String> = plan.saes.iter().map(|s| s.layer.to_string()).collect();
    crate::report::output(format_args!(
        "sweep {}: random GPT-2-shaped model ({} layers, d {}), {} SAEs at blocks.{{{}}}.hook_resid_pre with {{{}}} latents, {} tokens per run, {:?}, {} threads",
        plan.name,
        plan.model.layers,
        plan.model.d_model,
        plan.saes.len(),
        dedup(&layers).join(","),
        dedup(&widths).join(","),
        report.tokens,
        plan.device,
        rayon::current_num_threads()
    ));
    crate::report::output(format_args!(
        "order: every input file read once, then each SAE alone, then the whole sweep; every run a `saecooc cooc` child process with empty results folders"
    ));
    crate::report::output(format_args!(
        "{:<24} {:>5} {:>10} {:>14} {:>18} {:>16}",
        "mode", "SAEs", "seconds", "SAE-tokens/s", "peak memory (GiB)", "of it writing (s)"
    ));
    for r in &report.rows {
        crate::report::output(format_args!(
            "{:<24} {:>5} {:>10.2} {:>14.0} {:>18.2} {:>16.2}",
            r.mode,
            r.saes,
            r.seconds,
            r.sae_tokens_per_s,
            r.peak_rss_bytes as f64 / (1u64 << 30) as f64,
            r.write_seconds
        ));
    }
    crate::report::output(format_args!(
        "speed-up of the whole sweep in one run over one SAE at a time: {:.2}× (wall time), {:.2}× (wall time less writing the outputs, the same work in both)",
        report.speedup, report.speedup_counting
    ));
}

/// `items` without repeats, in their first order.
fn dedup(items: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for item in items {
        if !out.contains(item) {
            out.push(item.clone());
        }
    }
    out
}

/// Compares, for each pair of SAE results folders, every `.npz` file of either folder with the
/// file of the same name in the other, byte for byte. Returns how many files were compared;
/// fails naming the first file that differs or that one folder lacks, or when a folder has none.
pub fn compare_npz(pairs: &[(PathBuf, PathBuf)]) -> Result<usize> {
    let mut compared = 0;
    for (a, b) in pairs {
        let names = npz_names(a)?;
        ensure!(!names.is_empty(), "{} holds no .npz file", a.display());
        let other = npz_names(b)?;
        if let Some(extra) = other.iter().find(|n| !names.contains(n)) {
            bail!("{} has no {extra} (but {} has)", a.display(), b.display());
        }
        for name in &names {
            let (fa, fb) = (a.join(name), b.join(name));
            ensure!(
                fb.is_file(),
                "{} has no {name} (but {} has)",
                b.display(),
                a.display()
            );
            if read(&fa)? != read(&fb)? {
                bail!(
                    "outputs differ: {} is not byte for byte {}",
                    fa.display(),
                    fb.display()
                );
            }
            compared += 1;
        }
    }
    Ok(compared)
}

/// The names of the `.npz` files in `dir`, sorted.
fn npz_names(dir: &Path) -> Result<Vec<String>> {
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))?;
    let mut names = Vec::new();
    for entry in entries {
        let name = entry
            .with_context(|| format!("cannot list {}", dir.display()))?
            .file_name()
            .to_string_lossy()
            .into_owned();
        if name.ends_with(".npz") {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_feature_splitting_sweep_doubles_from_768_to_98304_at_layer_8() {
        let saes = Sweep::FeatureSplitting.saes();
        let widths: Vec<usize> = saes.iter().map(|s| s.d_sae).collect();
        assert_eq!(
            widths,
            [768, 1536, 3072, 6144, 12_288, 24_576, 49_152, 98_304]
        );
        assert!(saes.iter().all(|s| s.layer == 8));
        assert_eq!(saes[7].id, "blocks.8.hook_resid_pre_98304");
    }

    #[test]
    fn the_layer_sweep_covers_every_layer_of_the_model() {
        let saes = Sweep::Layers.saes();
        let layers: Vec<usize> = saes.iter().map(|s| s.layer).collect();
        assert_eq!(layers, (0..gpt2_small_shaped().layers).collect::<Vec<_>>());
        assert!(saes.iter().all(|s| s.d_sae == 24_576));
        assert_eq!(saes[11].id, "blocks.11.hook_resid_pre");
    }

    #[test]
    fn batches_hold_at_most_4096_tokens_and_cover_the_tokens() {
        for (tokens, expected) in [(16_384, (4, 4096)), (300, (1, 300)), (5000, (2, 2500))] {
            let plan = SweepPlan::gpt2_small(Sweep::Layers, tokens, DeviceKind::Cpu);
            assert_eq!(plan.batches(), expected, "{tokens}");
        }
        let plan = SweepPlan::gpt2_small(Sweep::FeatureSplitting, 16_384, DeviceKind::Cpu);
        let config = Config::parse(
            &plan_config(Path::new("b"), &plan, plan.ids(), Path::new("r"))
                .to_toml()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(config.tokens_to_count(), 16_384);
        assert_eq!(config.generation.sae_ids.len(), 8);
    }

    #[test]
    fn the_speedup_is_the_summed_singles_over_the_one_run() {
        use std::os::unix::process::ExitStatusExt;
        let child = |seconds, peak_rss_bytes| ChildRun {
            seconds,
            peak_rss_bytes,
            status: std::process::ExitStatus::from_raw(0),
            success: true,
        };
        let singles = [child(3.0, 10), child(5.0, 30)];
        let r = sweep_report(2, 1000, (&singles, &child(2.0, 50)), [2.0, 1.0]);
        assert_eq!(r.speedup_counting, 6.0);
        assert_eq!(r.rows[0].seconds, 8.0);
        assert_eq!(r.rows[0].peak_rss_bytes, 30);
        assert_eq!(r.rows[1].sae_tokens_per_s, 1000.0);
        assert_eq!(r.speedup, 4.0);
    }
}
