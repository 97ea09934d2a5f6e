//! Exact co-occurrence counting.
//!
//! For each token only its active latents are visited: the pair counts of a token with k
//! active latents cost k(k+1)/2 increments, never a dense F×F product. Counts live in the
//! upper triangle (diagonal included) as `u32`; accumulators for disjoint data add up
//! exactly ([`CoocCounts::merge`]), so sharded and resumed runs can combine them.

use anyhow::{bail, ensure, Context, Result};
use rayon::prelude::*;

/// The latents of `row` that are active at threshold `t`: `act > t + θ` (strict), where
/// `cut[i] = t + θ[i]` is precomputed in f32 as the original does. Appends to `out`.
/// Returns false if the row holds a NaN or an infinite activation above the cut (either would
/// otherwise be counted silently).
pub fn active_latents(row: &[f32], cut: &[f32], out: &mut Vec<u32>) -> bool {
    let mut finite = true;
    for (i, (&a, &c)) in row.iter().zip(cut).enumerate() {
        if a > c {
            finite &= a.is_finite();
            out.push(i as u32);
        } else if a.is_nan() {
            finite = false;
        }
    }
    finite
}

/// The per-latent cut `t + θ_i`, computed in f32.
pub fn threshold_cut(t: f64, theta: &[f32]) -> Vec<f32> {
    theta.iter().map(|&th| t as f32 + th).collect()
}

/// Co-occurrence counts for one activation threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct CoocCounts {
    n_latents: usize,
    /// Upper triangle, row-major: row i holds C[i, i..n].
    triangle: Vec<u32>,
    tokens: u64,
    active_sum: f64,
    active_sq_sum: f64,
    /// Tokens by number of active latents.
    l0_counts: Vec<u64>,
}

/// Start of row `i` of the upper triangle of an `n × n` matrix: Σ_{r<i} (n − r).
fn row_start(n: usize, i: usize) -> usize {
    i * n - i * (i.saturating_sub(1)) / 2
}

/// Row boundaries splitting the triangle into about `parts` blocks of equal size.
fn triangle_blocks(n: usize, parts: usize) -> Vec<usize> {
    let total = n * (n + 1) / 2;
    let target = total.div_ceil(parts.max(1)).max(1);
    let mut bounds = vec![0];
    let mut acc = 0;
    for i in 0..n {
        acc += n - i;
        if acc >= target {
            bounds.push(i + 1);
            acc = 0;
        }
    }
    if *bounds.last().unwrap() != n {
        bounds.push(n);
    }
    bounds
}

/// One token's batch position, for error messages.
#[derive(Debug, Clone, Copy)]
pub struct NanAt {
    pub row: usize,
}

impl CoocCounts {
    /// Zero counts for `n_latents` latents.
    pub fn new(n_latents: usize) -> Self {
        Self {
            n_latents,
            triangle: vec![0; n_latents * (n_latents + 1) / 2],
            tokens: 0,
            active_sum: 0.0,
            active_sq_sum: 0.0,
            l0_counts: Vec::new(),
        }
    }

    /// Adds these counts to `w` as arrays `{prefix}_triangle` (u32), `{prefix}_tokens`,
    /// `{prefix}_active` (sum and sum of squares of active latents) and `{prefix}_l0`.
    pub fn save(&self, w: &mut crate::npz::NpzWriter, prefix: &str) -> Result<()> {
        w.add_array(
            &format!("{prefix}_triangle"),
            &[self.triangle.len()],
            &self.triangle,
        )?;
        w.add_array(&format!("{prefix}_tokens"), &[1], &[self.tokens])?;
        w.add_array(
            &format!("{prefix}_active"),
            &[2],
            &[self.active_sum, self.active_sq_sum],
        )?;
        w.add_array(
            &format!("{prefix}_l0"),
            &[self.l0_counts.len()],
            &self.l0_counts,
        )
    }

    /// Reads counts for `n_latents` latents saved by [`CoocCounts::save`].
    pub fn load(
        arrays: &std::collections::HashMap<String, crate::npz::NpyArray>,
        prefix: &str,
        n_latents: usize,
    ) -> Result<Self> {
        use crate::npz::NpyData;
        let get = |k: &str| {
            arrays
                .get(&format!("{prefix}_{k}"))
                .with_context(|| format!("saved counts have no {prefix}_{k}"))
        };
        let triangle = match &get("triangle")?.data {
            NpyData::U32(v) => v.clone(),
            _ => bail!("{prefix}_triangle is not u32"),
        };
        ensure!(
            triangle.len() == n_latents * (n_latents + 1) / 2,
            "saved counts are for another number of latents (expected {n_latents})"
        );
        let tokens = match &get("tokens")?.data {
            NpyData::U64(v) if v.len() == 1 => v[0],
            _ => bail!("{prefix}_tokens is not one u64"),
        };
        let (active_sum, active_sq_sum) = match &get("active")?.data {
            NpyData::F64(v) if v.len() == 2 => (v[0], v[1]),
            _ => bail!("{prefix}_active is not two f64"),
        };
        let l0_counts = match &get("l0")?.data {
            NpyData::U64(v) => v.clone(),
            _ => bail!("{prefix}_l0 is not u64"),
        };
        Ok(Self {
            n_latents,
            triangle,
            tokens,
            active_sum,
            active_sq_sum,
            l0_counts,
        })
    }

    /// Tokens by number of active latents (index = active latents).
    pub fn l0_histogram(&self) -> &[u64] {
        &self.l0_counts
    }

    /// Number of latents.
    pub fn n_latents(&self) -> usize {
        self.n_latents
    }

    /// Tokens counted so far.
    pub fn tokens(&self) -> u64 {
        self.tokens
    }

    fn row_start(&self, i: usize) -> usize {
        row_start(self.n_latents, i)
    }

    /// C[i, j]: tokens on which both i and j are active (C[i, i]: tokens on which i is).
    pub fn get(&self, i: usize, j: usize) -> u32 {
        let (a, b) = if i <= j { (i, j) } else { (j, i) };
        self.triangle[self.row_start(a) + (b - a)]
    }

    /// Adds one token given its active latents, sorted ascending without duplicates.
    pub fn add_token(&mut self, active: &[u32]) {
        for (k, &a) in active.iter().enumerate() {
            let start = self.row_start(a as usize) - a as usize;
            for &b in &active[k..] {
                self.triangle[start + b as usize] += 1;
            }
        }
        self.count_token(active.len());
    }

    /// Token count and L0 statistics of one token with `active` active latents.
    fn count_token(&mut self, active: usize) {
        self.tokens += 1;
        if self.l0_counts.len() <= active {
            self.l0_counts.resize(active + 1, 0);
        }
        self.l0_counts[active] += 1;
        let k = active as f64;
        self.active_sum += k;
        self.active_sq_sum += k * k;
    }

    /// Counts a batch of activations (`rows × n_latents`, row-major) at the cut `t + θ`.
    /// Finding the active latents runs in parallel; the counts are the same for any thread
    /// count. Errors with the row of the first NaN or infinite activation.
    pub fn add_batch(&mut self, acts: &[f32], cut: &[f32]) -> std::result::Result<(), NanAt> {
        let n = self.n_latents;
        assert_eq!(cut.len(), n, "cut has one entry per latent");
        assert_eq!(acts.len() % n.max(1), 0, "activations are whole rows");
        assert!(
            self.tokens + (acts.len() / n.max(1)) as u64 <= u32::MAX as u64,
            "u32 counts would overflow"
        );
        let lists: Vec<(Vec<u32>, bool)> = acts
            .par_chunks(n.max(1))
            .map(|row| {
                let mut active = Vec::new();
                let finite = active_latents(row, cut, &mut active);
                (active, finite)
            })
            .collect();
        if let Some(row) = lists.iter().position(|(_, finite)| !finite) {
            return Err(NanAt { row });
        }
        let threads = rayon::current_num_threads();
        if threads < 2 || n < 1024 {
            for (active, _) in &lists {
                self.add_token(active);
            }
            return Ok(());
        }
        // Rows of the triangle are split into blocks of about equal size; each thread adds
        // every token's pairs that fall in its blocks. Integer adds: the same counts for any
        // number of threads.
        let blocks = triangle_blocks(n, threads * 4);
        let mut parts: Vec<(usize, usize, &mut [u32])> = Vec::with_capacity(blocks.len());
        let mut rest: &mut [u32] = &mut self.triangle;
        for w in blocks.windows(2) {
            let len = row_start(n, w[1]) - row_start(n, w[0]);
            let (part, tail) = rest.split_at_mut(len);
            parts.push((w[0], w[1], part));
            rest = tail;
        }
        parts.into_par_iter().for_each(|(lo, hi, part)| {
            let base = row_start(n, lo);
            for (active, _) in &lists {
                for (k, &a) in active.iter().enumerate() {
                    let a = a as usize;
                    if a < lo {
                        continue;
                    }
                    if a >= hi {
                        break;
                    }
                    let start = row_start(n, a) - a - base;
                    for &b in &active[k..] {
                        part[start + b as usize] += 1;
                    }
                }
            }
        });
        for (active, _) in &lists {
            self.count_token(active.len());
        }
        Ok(())
    }

    /// Adds counts from a disjoint part of the data.
    pub fn merge(&mut self, other: &CoocCounts) -> Result<()> {
        ensure!(
            self.n_latents == other.n_latents,
            "cannot merge counts for {} and {} latents",
            self.n_latents,
            other.n_latents
        );
        ensure!(
            self.tokens + other.tokens <= u32::MAX as u64,
            "merged counts would overflow u32"
        );
        self.triangle
            .iter_mut()
            .zip(&other.triangle)
            .for_each(|(a, b)| *a += b);
        self.tokens += other.tokens;
        self.active_sum += other.active_sum;
        self.active_sq_sum += other.active_sq_sum;
        if self.l0_counts.len() < other.l0_counts.len() {
            self.l0_counts.resize(other.l0_counts.len(), 0);
        }
        for (a, b) in self.l0_counts.iter_mut().zip(&other.l0_counts) {
            *a += b;
        }
        Ok(())
    }

    /// The diagonal: per-latent activation counts.
    pub fn diagonal(&self) -> Vec<u32> {
        (0..self.n_latents)
            .map(|i| self.triangle[self.row_start(i)])
            .collect()
    }

    /// Writes dense row i of the symmetric count matrix as f32.
    pub fn fill_row(&self, i: usize, out: &mut [f32]) {
        for (j, o) in out.iter_mut().enumerate().take(i) {
            *o = self.get(j, i) as f32;
        }
        let start = self.row_start(i);
        for (o, &c) in out[i..]
            .iter_mut()
            .zip(&self.triangle[start..start + self.n_latents - i])
        {
            *o = c as f32;
        }
    }

    /// Mean and population standard deviation of active latents per token (L0).
    pub fn l0_mean_std(&self) -> (f64, f64) {
        if self.tokens == 0 {
            return (0.0, 0.0);
        }
        let n = self.tokens as f64;
        let mean = self.active_sum / n;
        (mean, (self.active_sq_sum / n - mean * mean).max(0.0).sqrt())
    }
}

/// Writes row i of the Jaccard matrix `J = C / (n_i + n_j − C)` in f32 arithmetic, with
/// NaN → 0 (never-firing pairs), +inf → 1 and −inf → 0, exactly as the original (§2).
/// `diag` is the diagonal of C as f32.
pub fn jaccard_row(counts: &CoocCounts, diag: &[f32], i: usize, out: &mut [f32]) {
    counts.fill_row(i, out);
    for (j, o) in out.iter_mut().enumerate() {
        let c = *o;
        let v = c / ((diag[i] + diag[j]) - c);
        *o = if v.is_nan() {
            0.0
        } else if v == f32::INFINITY {
            1.0
        } else if v == f32::NEG_INFINITY {
            0.0
        } else {
            v
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn original_threshold_cases() {
        // original-pipeline.md §7 test_apply_activation_threshold
        let theta = [0.1f32, 0.2, 0.3];
        let cut = threshold_cut(2.5, &theta);
        let check = |row: [f32; 3], want: &[u32]| {
            let mut out = Vec::new();
            assert!(active_latents(&row, &cut, &mut out));
            assert_eq!(out, want, "row {row:?}");
        };
        check([1., 2., 3.], &[2]);
        check([4., 5., 6.], &[0, 1, 2]);
        check([2.6, 3.2, 3.8], &[1, 2]);
        check([2.5, 3.1, 3.7], &[1, 2]);
        let cut3 = threshold_cut(3.0, &[0.0]);
        let mut out = Vec::new();
        active_latents(&[2.99999], &cut3, &mut out);
        assert!(out.is_empty());
        active_latents(&[3.00001], &cut3, &mut out);
        assert_eq!(out, vec![0]);
        // Strict: exactly at the cut is inactive.
        out.clear();
        active_latents(&[3.0], &cut3, &mut out);
        assert!(out.is_empty());
        // NaN is reported, not silently dropped.
        assert!(!active_latents(&[f32::NAN], &cut3, &mut out));
    }

    #[test]
    fn sparse_counts_equal_brute_force_dense_counts() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let (n_tokens, f) = (300, 37);
        let acts: Vec<f32> = (0..n_tokens * f)
            .map(|_| {
                if rng.random_bool(0.15) {
                    rng.random_range(0.0..3.0)
                } else {
                    0.0
                }
            })
            .collect();
        let theta: Vec<f32> = (0..f).map(|i| (i % 3) as f32 * 0.2).collect();
        for t in [0.0, 0.5, 1.5] {
            let cut = threshold_cut(t, &theta);
            let mut counts = CoocCounts::new(f);
            // Two batches, to exercise accumulation across batches.
            counts.add_batch(&acts[..100 * f], &cut).unwrap();
            counts.add_batch(&acts[100 * f..], &cut).unwrap();
            // Dense reference: B = (A > t + θ), C = BᵀB.
            let b: Vec<Vec<u32>> = acts
                .chunks(f)
                .map(|r| {
                    r.iter()
                        .zip(&theta)
                        .map(|(&a, &th)| (a > t as f32 + th) as u32)
                        .collect()
                })
                .collect();
            let mut row = vec![0f32; f];
            for i in 0..f {
                counts.fill_row(i, &mut row);
                for j in 0..f {
                    let dense: u32 = b.iter().map(|r| r[i] * r[j]).sum();
                    assert_eq!(counts.get(i, j), dense, "t={t} C[{i},{j}]");
                    assert_eq!(row[j], dense as f32);
                }
            }
            assert_eq!(counts.tokens(), n_tokens as u64);
        }
    }

    /// The multi-threaded path (F ≥ 1024) against one token at a time, for 1 and 3 threads.
    #[test]
    fn parallel_blocks_equal_token_by_token_counts() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let (tokens, f) = (150, 1500);
        let mut acts = vec![0f32; tokens * f];
        for row in acts.chunks_exact_mut(f) {
            for _ in 0..rng.random_range(0..40) {
                row[rng.random_range(0..f)] = rng.random_range(0.0..3.0);
            }
        }
        let cut = vec![0.5f32; f];
        let mut reference = CoocCounts::new(f);
        for row in acts.chunks_exact(f) {
            let mut active = Vec::new();
            active_latents(row, &cut, &mut active);
            reference.add_token(&active);
        }
        for threads in [1, 3] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let mut c = CoocCounts::new(f);
            pool.install(|| c.add_batch(&acts, &cut)).unwrap();
            assert!(c.triangle == reference.triangle, "{threads} threads");
            assert_eq!(c.l0_histogram(), reference.l0_histogram());
            assert_eq!(c.tokens(), tokens as u64);
        }
        assert_eq!(triangle_blocks(10, 3).last(), Some(&10));
    }

    #[test]
    fn merged_shards_equal_one_pass() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let f = 20;
        let acts: Vec<f32> = (0..50 * f).map(|_| rng.random_range(-1.0..1.0)).collect();
        let cut = threshold_cut(0.5, &vec![0.0; f]);
        let mut whole = CoocCounts::new(f);
        whole.add_batch(&acts, &cut).unwrap();
        let mut a = CoocCounts::new(f);
        let mut b = CoocCounts::new(f);
        a.add_batch(&acts[..17 * f], &cut).unwrap();
        b.add_batch(&acts[17 * f..], &cut).unwrap();
        a.merge(&b).unwrap();
        assert_eq!(a, whole);
        assert!(a.merge(&CoocCounts::new(3)).is_err());
    }

    #[test]
    fn infinite_activations_are_reported() {
        let mut c = CoocCounts::new(2);
        let err = c
            .add_batch(&[0.5, 0.0, f32::INFINITY, 1.0], &[0.0, 0.0])
            .unwrap_err();
        assert_eq!(err.row, 1);
    }

    #[test]
    fn nan_rows_are_reported_with_their_position() {
        let mut c = CoocCounts::new(2);
        let err = c
            .add_batch(&[1.0, 0.0, f32::NAN, 1.0], &[0.5, 0.5])
            .unwrap_err();
        assert_eq!(err.row, 1);
    }

    #[test]
    fn jaccard_hand_cases() {
        // Latent 0 fires on tokens {0,1,2}, latent 1 on {1,2,3}, latent 2 never, latent 3 on {0}.
        let mut c = CoocCounts::new(4);
        for active in [&[0u32, 3][..], &[0, 1], &[0, 1], &[1]] {
            c.add_token(active);
        }
        let diag: Vec<f32> = c.diagonal().iter().map(|&x| x as f32).collect();
        assert_eq!(diag, vec![3., 3., 0., 1.]);
        let mut row = vec![0f32; 4];
        jaccard_row(&c, &diag, 0, &mut row);
        assert_eq!(row, vec![1.0, 2.0 / 4.0, 0.0, 1.0 / 3.0]);
        jaccard_row(&c, &diag, 2, &mut row);
        // A never-firing latent: 0/0 → 0 everywhere, including its own diagonal.
        assert_eq!(row, vec![0.0; 4]);
        jaccard_row(&c, &diag, 3, &mut row);
        assert_eq!(row, vec![1.0 / 3.0, 0.0, 0.0, 1.0]);
    }
}
