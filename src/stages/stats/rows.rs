//! The analyses behind each summary row: subgraph sizes from a node table's `subgraph_size`
//! column, and observed vs expected co-occurrence of latent pairs (log₁₀ histograms and
//! counts) streamed from the count matrices.

use super::Cooccurrence;
use crate::io::csr::{is_sparse_npz, read_csr_rows};
use crate::io::npz::read_f32_rows;
use crate::results::node_table::NodeRow;
use anyhow::{ensure, Result};
use std::path::Path;

/// Histogram range of log₁₀ co-occurrence counts and its bins (0.1 wide).
pub(super) const LOG_MIN: f64 = -8.0;
pub(super) const LOG_MAX: f64 = 8.0;
pub(super) const LOG_BINS: usize = 160;

fn log_bin(v: f64) -> Option<usize> {
    (v > 0.0).then(|| {
        let b = ((v.log10() - LOG_MIN) / (LOG_MAX - LOG_MIN) * LOG_BINS as f64).floor();
        b.clamp(0.0, (LOG_BINS - 1) as f64) as usize
    })
}

/// Streams the non-zero entries `(i, j, C[i, j])` with i < j of a count matrix, dense
/// (`arr_0`) or scipy CSR.
fn for_each_upper_pair(total: &Path, n: usize, mut f: impl FnMut(usize, usize, f64)) -> Result<()> {
    let check = |rows: usize, cols: usize| {
        ensure!(
            (rows, cols) == (n, n),
            "{} is [{rows}, {cols}], expected [{n}, {n}]",
            total.display()
        );
        Ok(())
    };
    if is_sparse_npz(total)? {
        read_csr_rows(total, check, |i, cols, vals| {
            for (&j, &v) in cols.iter().zip(vals) {
                if j as usize > i && v != 0.0 {
                    f(i, j as usize, v as f64);
                }
            }
            Ok(())
        })
    } else {
        read_f32_rows(
            total,
            None,
            |shape| check(shape[0], shape[1]),
            |i, row| {
                for (j, &v) in row.iter().enumerate().skip(i + 1) {
                    if v != 0.0 {
                        f(i, j, v as f64);
                    }
                }
                Ok(())
            },
        )
        .map(|_| ())
    }
}

/// Histogram of `log_bin(a_i · a_j / tokens)` over the pairs i < j.
fn expected_histogram(activations: &[f32], tokens: f64) -> Vec<u64> {
    pair_histogram(activations, LOG_BINS, |ai, aj| log_bin(ai * aj / tokens))
}

/// Histogram of `bin(a_i, a_j)` over the pairs i < j, without visiting the n²/2 pairs: `bin`
/// must be monotone in a_j for each a_i ≥ 0, so each bin's share of the sorted a_j is found by
/// binary search with the very same expression (the counts equal a pair-by-pair loop).
pub(super) fn pair_histogram(
    activations: &[f32],
    bins: usize,
    bin: impl Fn(f64, f64) -> Option<usize>,
) -> Vec<u64> {
    let a: Vec<f64> = activations.iter().map(|&x| x as f64).collect();
    let mut sorted = a.clone();
    sorted.sort_by(f64::total_cmp);
    let mut twice = vec![0u64; bins];
    for &ai in &a {
        let bin = |x: f64| bin(ai, x).map_or(-1, |b| b as i64);
        let mut lo = sorted.partition_point(|&x| bin(x) < 0);
        while lo < sorted.len() {
            let b = bin(sorted[lo]);
            let hi = lo + sorted[lo..].partition_point(|&x| bin(x) <= b);
            twice[b as usize] += (hi - lo) as u64;
            lo = hi;
        }
        if bin(ai) >= 0 {
            twice[bin(ai) as usize] -= 1; // the pair (i, i)
        }
    }
    twice.iter().map(|&c| c / 2).collect()
}

/// Compares each pair's count C[i, j] with T·pᵢ·pⱼ, streaming the count matrix; `also` sees
/// every pair i < j that co-occurred, with its count.
pub(super) fn cooccurrence(
    total: &Path,
    activations: &[f32],
    tokens: f64,
    mut also: impl FnMut(usize, usize, f64),
) -> Result<Cooccurrence> {
    let n = activations.len();
    let mut out = Cooccurrence {
        pairs: (n as u64 * n.saturating_sub(1) as u64) / 2,
        pairs_observed: 0,
        pairs_above_expected: 0,
        log10_bin_edges: (0..LOG_BINS)
            .map(|b| LOG_MIN + b as f64 * (LOG_MAX - LOG_MIN) / LOG_BINS as f64)
            .collect(),
        observed_log10_counts: vec![0; LOG_BINS],
        expected_log10_counts: expected_histogram(activations, tokens),
    };
    for_each_upper_pair(total, n, |i, j, observed| {
        let expected = activations[i] as f64 * activations[j] as f64 / tokens;
        if let Some(b) = log_bin(observed) {
            out.pairs_observed += 1;
            out.observed_log10_counts[b] += 1;
            also(i, j, observed);
        }
        if observed > expected {
            out.pairs_above_expected += 1;
        }
    })?;
    Ok(out)
}

/// (mean size over latents, the same without singletons, fraction in subgraphs of 2+).
pub(super) type SizeStats = (f64, Option<f64>, f64);

/// The [`SizeStats`] of a node table's `subgraph_size` column.
pub(super) fn subgraph_size_stats(sizes: &[f64]) -> SizeStats {
    let n = sizes.len().max(1) as f64;
    let mean = sizes.iter().sum::<f64>() / n;
    let multi: Vec<f64> = sizes.iter().copied().filter(|&s| s > 1.0).collect();
    let mean_multi = (!multi.is_empty()).then(|| multi.iter().sum::<f64>() / multi.len() as f64);
    (mean, mean_multi, multi.len() as f64 / n)
}

/// The rows of a node table; given `d_sae` (the width of the cooc totals beside it), it must
/// have one row per latent.
pub(super) fn node_table_rows(path: &Path, d_sae: Option<usize>) -> Result<Vec<NodeRow>> {
    let rows = crate::results::node_table::read_node_table(path)?;
    if let Some(d_sae) = d_sae {
        ensure!(
            rows.len() == d_sae,
            "{} has {} rows but the cooc totals beside it have {d_sae} latents: they come from different SAEs; rerun `saecooc graphs`",
            path.display(),
            rows.len()
        );
    }
    Ok(rows)
}

/// The subgraphs of a node table (distinct `subgraph_id`s, singletons included).
pub(super) fn subgraph_count(rows: &[NodeRow]) -> usize {
    rows.iter()
        .map(|r| r.subgraph_id)
        .collect::<std::collections::BTreeSet<_>>()
        .len()
}

/// The L0 an SAE id names, as Gemma Scope's do (`…average_l0_82`, also `…_l0_82` or
/// `l0_82…`): the digits after the last `l0_` that starts the id or follows `_`.
pub(super) fn sae_id_l0(sae: &str) -> Option<f64> {
    let (at, _) = sae
        .match_indices("l0_")
        .filter(|(i, _)| *i == 0 || sae.as_bytes()[i - 1] == b'_')
        .last()?;
    let rest = &sae[at + 3..];
    let digits = rest.split('_').next()?;
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_histogram_equals_the_pair_by_pair_loop() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        let acts: Vec<f32> = (0..700)
            .map(|_| match rng.random_range(0..4) {
                0 => 0.0,
                1 => rng.random_range(1..5) as f32,
                _ => rng.random_range(1..100_000) as f32,
            })
            .collect();
        let tokens = 123_457.0;
        let mut want = vec![0u64; LOG_BINS];
        for i in 0..acts.len() {
            for j in i + 1..acts.len() {
                if let Some(b) = log_bin(acts[i] as f64 * acts[j] as f64 / tokens) {
                    want[b] += 1;
                }
            }
        }
        assert!(want.iter().sum::<u64>() > 100_000);
        assert_eq!(expected_histogram(&acts, tokens), want);
    }

    #[test]
    fn subgraph_sizes_are_node_weighted() {
        // Subgraphs of 3, 2 and two singletons, one row per latent.
        let (mean, multi, frac) = subgraph_size_stats(&[3.0, 3.0, 3.0, 2.0, 2.0, 1.0, 1.0]);
        assert!((mean - 15.0 / 7.0).abs() < 1e-12);
        assert!((multi.unwrap() - 13.0 / 5.0).abs() < 1e-12);
        assert!((frac - 5.0 / 7.0).abs() < 1e-12);
        assert_eq!(log_bin(0.0), None);
        assert_eq!(log_bin(1.0), Some(80));
    }

    #[test]
    fn l0_is_read_from_gemma_scope_ids_only() {
        assert_eq!(sae_id_l0("layer_12_width_16k_average_l0_82"), Some(82.0));
        assert_eq!(sae_id_l0("l0_22_x"), Some(22.0));
        assert_eq!(sae_id_l0("blocks_8_hook_resid_pre_768"), None);
        assert_eq!(sae_id_l0("layer_12_width_16k_canonical"), None);
        assert_eq!(sae_id_l0("model_l0_x"), None);
        assert_eq!(sae_id_l0("xl0_5"), None);
    }
}
