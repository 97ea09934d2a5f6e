//! The outputs of a run: per threshold, the count matrix, the Jaccard matrix and the
//! per-latent totals (dense `arr_0` or scipy CSR; see docs/formats.md, "Co-occurrence
//! files"), and the statistics recorded in run.json; and which thresholds of the previous set
//! in the folder a run keeps ([`Kept`]).

use crate::config::MatrixFormat;
use crate::io::npz::NpzWriter;
use crate::io::pyfmt::threshold_tag;
use crate::pairs::sparse;
use crate::pairs::{jaccard, CoocCounts};
use crate::provenance::{settings_text, Inputs};
use crate::results::layout::RUN_JSON;
use crate::results::layout::{cooc_file, CoocKind};
use crate::results::manifest::CoocManifest;
use crate::results::manifest::ThresholdStats;
use crate::results::set::{FileEntry, SetRecord, Staging};
use anyhow::{bail, Result};
use std::path::Path;

/// Writes the three npz files per threshold (count and Jaccard matrices dense or CSR as
/// `format` says); returns each threshold's statistics for run.json.
pub(super) fn write_outputs(
    dir: &Path,
    thresholds: &[f64],
    counters: &mut [CoocCounts],
    format: MatrixFormat,
) -> Result<Vec<ThresholdStats>> {
    let mut stats = Vec::new();
    for (&t, counts) in thresholds.iter().zip(counters) {
        counts.flush();
        let n = counts.n_latents();
        let diag: Vec<f32> = counts.diagonal().iter().map(|&c| c as f32).collect();
        let total = cooc_file(dir, CoocKind::Total, t);
        let jaccard_file = cooc_file(dir, CoocKind::Jaccard, t);
        if format.is_csr(n) {
            write_csr_matrices(&counts.symmetric(), &diag, &total, &jaccard_file)?;
        } else {
            let rows = counts.rows();
            let (mut c, mut j) = (rows.reader(), rows.reader());
            both(
                || write_dense(&total, n, |i, row| c.fill_row(i, row)),
                || write_dense(&jaccard_file, n, |i, row| j.jaccard_row(&diag, i, row)),
            )?;
        }
        let activations = cooc_file(dir, CoocKind::Activations, t);
        crate::io::npz::save_f32_compressed(&activations, &[n], &diag)?;
        let files = [total, jaccard_file, activations]
            .iter()
            .map(|p| {
                p.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        stats.push(ThresholdStats::new(t, counts, files));
    }
    Ok(stats)
}

/// Runs `a` and `b` side by side (the two matrices of a threshold are compressed at once, each
/// into its own file, so their bytes are what one after the other gives).
fn both(a: impl FnOnce() -> Result<()> + Send, b: impl FnOnce() -> Result<()>) -> Result<()> {
    std::thread::scope(|scope| {
        let first = scope.spawn(a);
        let second = b();
        first
            .join()
            .map_err(|_| anyhow::anyhow!("internal: a writing thread panicked"))??;
        second
    })
}

/// Writes an `n × n` float32 matrix, row `i` from `fill_row(i, row)`, as a compressed npz.
fn write_dense(path: &Path, n: usize, fill_row: impl FnMut(usize, &mut [f32])) -> Result<()> {
    let mut w = NpzWriter::create(path, true)?;
    w.add_f32_rows("arr_0", n, n, fill_row)?;
    w.finish()
}

/// Writes C and J as scipy CSR float32 matrices with the same non-zero pattern (J is zero
/// exactly where C is).
fn write_csr_matrices(
    counts: &sparse::CountCsr,
    diag: &[f32],
    total: &Path,
    jaccard_file: &Path,
) -> Result<()> {
    let n = counts.n;
    let write_counts = || {
        crate::io::csr::write_csr(total, n, &counts.indptr, |i, cols, values| {
            let (c, k) = counts.row(i);
            cols.extend_from_slice(c);
            values.extend(k.iter().map(|&x| x as f32));
        })
    };
    both(write_counts, || {
        write_jaccard_csr(counts, diag, jaccard_file)
    })
}

/// Writes J of `counts` (diagonal `diag`) as a scipy CSR float32 matrix.
fn write_jaccard_csr(counts: &sparse::CountCsr, diag: &[f32], jaccard_file: &Path) -> Result<()> {
    let n = counts.n;
    crate::io::csr::write_csr(jaccard_file, n, &counts.indptr, |i, cols, values| {
        let (c, k) = counts.row(i);
        cols.extend_from_slice(c);
        values.extend(
            c.iter()
                .zip(k)
                .map(|(&j, &x)| jaccard(x as f32, diag[i], diag[j as usize])),
        );
    })
}

impl ThresholdStats {
    /// The statistics of `counts` at `threshold`, whose files are `files`.
    pub(super) fn new(threshold: f64, counts: &CoocCounts, files: Vec<String>) -> Self {
        let diag = counts.diagonal();
        let tokens = counts.tokens().max(1) as f64;
        let (l0_mean, l0_std) = counts.l0_mean_std();
        Self {
            threshold,
            tag: threshold_tag(threshold),
            l0_mean,
            l0_std,
            l0_histogram: counts.l0_histogram().to_vec(),
            dead_latents: diag.iter().filter(|&&c| c == 0).count(),
            dense_latents: diag.iter().filter(|&&c| c as f64 / tokens > 0.1).count(),
            max_firing_frequency: diag.iter().map(|&c| c as f64 / tokens).fold(0.0, f64::max),
            files,
        }
    }
}

/// The inputs that must match for a run to keep the previous set's other thresholds: every
/// fingerprint but the settings (which include the threshold list) and the shard, plus
/// `counting`, the settings without the threshold list.
const SAME_INPUTS: [&str; 5] = ["sae", "model", "tokenizer", "dataset", "counting"];

/// Adds `counting` to a run's input fingerprints: the config (results folder and
/// `activation_thresholds` left out) and the SAE id.
pub(super) fn with_counting_settings(
    mut inputs: Inputs,
    config: &crate::config::Config,
    sae_id: &str,
) -> Result<Inputs> {
    let mut c = config.clone();
    c.generation.activation_thresholds.clear();
    let text = settings_text(&c, sae_id)?;
    inputs.insert(
        "counting".into(),
        crate::io::hash::sha256_bytes(text.as_bytes()),
    );
    Ok(inputs)
}

/// The thresholds of the previous set in a results folder that a run does not count, kept in
/// the new set: they accumulate over runs with the same inputs.
#[derive(Debug, Default)]
pub(super) struct Kept {
    stats: Vec<ThresholdStats>,
    files: Vec<FileEntry>,
}

impl Kept {
    /// Decides, before counting, what happens to the other thresholds of the set in `dir`:
    /// kept when they were counted from the same inputs (`inputs`, see [`SAME_INPUTS`]);
    /// otherwise refused, naming them and what differs, unless `replace`.
    pub fn decide(dir: &Path, thresholds: &[f64], inputs: &Inputs, replace: bool) -> Result<Self> {
        let Some(record) = SetRecord::read(&dir.join(RUN_JSON))? else {
            return Ok(Self::default());
        };
        let previous = CoocManifest::read(dir)?;
        let counted: Vec<String> = thresholds.iter().map(|&t| threshold_tag(t)).collect();
        let others: Vec<ThresholdStats> = previous
            .thresholds
            .into_iter()
            .filter(|s| !counted.contains(&s.tag))
            .collect();
        if others.is_empty() || replace {
            return Ok(Self::default());
        }
        let differ: Vec<&str> = SAME_INPUTS
            .into_iter()
            .filter(|k| !record.inputs.contains_key(*k) || record.inputs.get(*k) != inputs.get(*k))
            .collect();
        if !differ.is_empty() {
            let tags: Vec<&str> = others.iter().map(|s| s.tag.as_str()).collect();
            let files: Vec<&str> = others
                .iter()
                .flat_map(|s| s.files.iter().map(String::as_str))
                .collect();
            bail!(
                "{} holds the counts of activation thresholds {} ({}), counted from other inputs than this run's ({} differ{}); this run counts only {} and would remove them. Rerun with --replace to replace the whole set, or write to another results folder",
                dir.display(),
                tags.join(", "),
                files.join(", "),
                differ.iter().map(|k| describe(k)).collect::<Vec<_>>().join(", "),
                if differ.contains(&"counting") && !record.inputs.contains_key("counting") {
                    "; the earlier run was made by an older saecooc that did not record them"
                } else {
                    ""
                },
                counted.join(", ")
            );
        }
        let files = others
            .iter()
            .flat_map(|s| s.files.iter())
            .filter_map(|f| record.entry(f).cloned())
            .collect();
        Ok(Self {
            stats: others,
            files,
        })
    }

    /// Carries the kept files into `staging`; returns every threshold's statistics, this
    /// run's first.
    pub fn carry(
        self,
        staging: &mut Staging,
        mut counted: Vec<ThresholdStats>,
    ) -> Result<Vec<ThresholdStats>> {
        for entry in &self.files {
            staging.carry(entry)?;
        }
        counted.extend(self.stats);
        Ok(counted)
    }
}

/// What an input of [`SAME_INPUTS`] is, for messages.
fn describe(key: &str) -> &str {
    match key {
        "sae" => "the SAE",
        "model" => "the model",
        "tokenizer" => "the tokenizer",
        "dataset" => "the dataset",
        "counting" => "the config other than activation_thresholds, or the SAE id",
        other => other,
    }
}
