//! The outputs of a run: per threshold, the count matrix, the Jaccard matrix and the
//! per-latent totals (dense `arr_0` or scipy CSR; see docs/formats.md, "Co-occurrence
//! files"), and the statistics recorded in run.json.

use crate::config::MatrixFormat;
use crate::io::npz::NpzWriter;
use crate::io::pyfmt::threshold_tag;
use crate::pairs::sparse;
use crate::pairs::{jaccard, jaccard_row, CoocCounts};
use crate::results::layout::{cooc_file, CoocKind};
use crate::results::manifest::ThresholdStats;
use anyhow::Result;
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
            let mut w = NpzWriter::create(&total, true)?;
            w.add_f32_rows("arr_0", n, n, |i, row| rows.fill_row(i, row))?;
            w.finish()?;
            let mut w = NpzWriter::create(&jaccard_file, true)?;
            w.add_f32_rows("arr_0", n, n, |i, row| jaccard_row(&rows, &diag, i, row))?;
            w.finish()?;
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

/// Writes C and J as scipy CSR float32 matrices with the same non-zero pattern (J is zero
/// exactly where C is).
fn write_csr_matrices(
    counts: &sparse::CountCsr,
    diag: &[f32],
    total: &Path,
    jaccard_file: &Path,
) -> Result<()> {
    let n = counts.n;
    crate::io::csr::write_csr(total, n, &counts.indptr, |i, cols, values| {
        let (c, k) = counts.row(i);
        cols.extend_from_slice(c);
        values.extend(k.iter().map(|&x| x as f32));
    })?;
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
