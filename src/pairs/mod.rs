//! Exact co-occurrence counting: the pair-count stores `cooc` accumulates into and `bench`
//! measures.
//!
//! For each token only its active latents are visited: the pair counts of a token with k
//! active latents cost k(k+1)/2 increments, never a dense F×F product. Counts live in the
//! upper triangle (diagonal included) as `u32`, either dense ([`Triangle`], fastest) or as
//! sorted sparse pairs ([`SparsePairs`], for SAEs whose triangle would not fit in memory).
//! Accumulators for disjoint data add up exactly ([`CoocCounts::merge`]), so sharded and
//! resumed runs can combine them.

pub mod sparse;
pub mod triangle;

use anyhow::{bail, ensure, Context, Result};
use rayon::prelude::*;
use sparse::{CountCsr, SparsePairs};
use triangle::{triangle_bytes, Triangle};

/// The latents of `row` that are active at threshold `t`: `act > t + θ` (strict), where
/// `cut[i] = t + θ[i]` is precomputed in f32 as the original does. Appends to `out`.
/// Returns false if the row holds a NaN or an infinite activation above the cut (either would
/// otherwise be counted silently).
pub fn active_latents(row: &[f32], cut: &[f32], out: &mut Vec<u32>) -> bool {
    const LANES: usize = 16;
    let mut finite = true;
    // Most blocks of 16 hold no active latent: a branch-free test (which the compiler turns
    // into SIMD compares) skips them; `a > c || a != a` is true when active or NaN.
    for (block, (r, c)) in row.chunks(LANES).zip(cut.chunks(LANES)).enumerate() {
        let hit = r
            .iter()
            .zip(c)
            .fold(false, |acc, (&a, &c)| acc | (a > c) | a.is_nan());
        if !hit {
            continue;
        }
        for (k, (&a, &c)) in r.iter().zip(c).enumerate() {
            if a > c {
                finite &= a.is_finite();
                out.push((block * LANES + k) as u32);
            } else if a.is_nan() {
                finite = false;
            }
        }
    }
    finite
}

/// Which store holds the pair counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    /// The u32 upper triangle: fastest, F(F+1)/2 × 4 bytes.
    Dense,
    /// Sorted sparse pairs: memory grows with the pairs that co-occur.
    Sparse,
}

impl Storage {
    /// `dense` while `thresholds` dense triangles of `n_latents` fit in `dense_limit_bytes`.
    pub fn auto(n_latents: usize, thresholds: usize, dense_limit_bytes: u128) -> Self {
        if triangle_bytes(n_latents) * thresholds.max(1) as u128 <= dense_limit_bytes {
            Storage::Dense
        } else {
            Storage::Sparse
        }
    }
}

#[derive(Debug, Clone)]
enum Pairs {
    Dense(Triangle),
    Sparse(SparsePairs),
}

/// Tokens counted and their numbers of active latents.
#[derive(Debug, Clone, Default, PartialEq)]
struct TokenStats {
    tokens: u64,
    active_sum: f64,
    active_sq_sum: f64,
    /// Tokens by number of active latents.
    l0_counts: Vec<u64>,
}

impl TokenStats {
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

    fn merge(&mut self, other: &TokenStats) {
        self.tokens += other.tokens;
        self.active_sum += other.active_sum;
        self.active_sq_sum += other.active_sq_sum;
        if self.l0_counts.len() < other.l0_counts.len() {
            self.l0_counts.resize(other.l0_counts.len(), 0);
        }
        for (a, b) in self.l0_counts.iter_mut().zip(&other.l0_counts) {
            *a += b;
        }
    }
}

/// Co-occurrence counts for one activation threshold.
#[derive(Debug, Clone)]
pub struct CoocCounts {
    n_latents: usize,
    pairs: Pairs,
    stats: TokenStats,
}

/// One token's batch position, for error messages.
#[derive(Debug, Clone, Copy)]
pub struct NanAt {
    pub row: usize,
}

/// The active latents of every row of a batch (`rows × n_latents`, row-major) at the cut
/// `t + θ`, found in parallel. Errors with the first row holding a NaN or infinite activation.
pub fn active_lists(
    acts: &[f32],
    n_latents: usize,
    cut: &[f32],
) -> std::result::Result<Vec<Vec<u32>>, NanAt> {
    assert_eq!(cut.len(), n_latents, "cut has one entry per latent");
    assert_eq!(
        acts.len() % n_latents.max(1),
        0,
        "activations are whole rows"
    );
    let lists: Vec<(Vec<u32>, bool)> = acts
        .par_chunks(n_latents.max(1))
        .map(|row| {
            let mut active = Vec::new();
            let finite = active_latents(row, cut, &mut active);
            (active, finite)
        })
        .collect();
    if let Some(row) = lists.iter().position(|(_, finite)| !finite) {
        return Err(NanAt { row });
    }
    Ok(lists.into_iter().map(|(a, _)| a).collect())
}

/// The active latents of every row from packed bits: `words_per_row` words per row, bit b of
/// word w set iff latent 32w + b is active. Lists come out ascending, as [`active_lists`]
/// gives them.
pub fn lists_from_bits(bits: &[u32], words_per_row: usize) -> Vec<Vec<u32>> {
    bits.par_chunks(words_per_row.max(1))
        .map(|row| {
            let mut active = Vec::new();
            for (w, &word) in row.iter().enumerate() {
                let mut rest = word;
                while rest != 0 {
                    active.push(32 * w as u32 + rest.trailing_zeros());
                    rest &= rest - 1;
                }
            }
            active
        })
        .collect()
}

impl PartialEq for CoocCounts {
    fn eq(&self, other: &Self) -> bool {
        self.n_latents == other.n_latents
            && self.stats == other.stats
            && match (&self.pairs, &other.pairs) {
                (Pairs::Dense(a), Pairs::Dense(b)) => a == b,
                _ => self.upper() == other.upper(),
            }
    }
}

impl CoocCounts {
    /// Zero counts for `n_latents` latents in the dense triangle.
    pub fn new(n_latents: usize) -> Self {
        Self::with_storage(n_latents, Storage::Dense)
    }

    /// Zero counts for `n_latents` latents in the given store.
    pub fn with_storage(n_latents: usize, storage: Storage) -> Self {
        let pairs = match storage {
            Storage::Dense => Pairs::Dense(Triangle::new(n_latents)),
            Storage::Sparse => Pairs::Sparse(SparsePairs::new(n_latents)),
        };
        Self {
            n_latents,
            pairs,
            stats: TokenStats::default(),
        }
    }

    /// The store holding the pair counts.
    pub fn storage(&self) -> Storage {
        match self.pairs {
            Pairs::Dense(_) => Storage::Dense,
            Pairs::Sparse(_) => Storage::Sparse,
        }
    }

    /// Adds these counts to `w`: `{prefix}_triangle` (dense) or `{prefix}_indptr`,
    /// `{prefix}_cols`, `{prefix}_counts` (sparse), plus `{prefix}_tokens`, `{prefix}_active`
    /// (sum and sum of squares of active latents) and `{prefix}_l0`.
    pub fn save(&mut self, w: &mut crate::io::npz::NpzWriter, prefix: &str) -> Result<()> {
        self.flush();
        match &self.pairs {
            Pairs::Dense(t) => {
                w.add_array(&format!("{prefix}_triangle"), &[t.cells().len()], t.cells())?
            }
            Pairs::Sparse(s) => {
                let u = s.merged();
                w.add_array(&format!("{prefix}_indptr"), &[u.indptr.len()], &u.indptr)?;
                w.add_array(&format!("{prefix}_cols"), &[u.nnz()], &u.cols)?;
                w.add_array(&format!("{prefix}_counts"), &[u.nnz()], &u.counts)?;
            }
        }
        let s = &self.stats;
        w.add_array(&format!("{prefix}_tokens"), &[1], &[s.tokens])?;
        w.add_array(
            &format!("{prefix}_active"),
            &[2],
            &[s.active_sum, s.active_sq_sum],
        )?;
        w.add_array(&format!("{prefix}_l0"), &[s.l0_counts.len()], &s.l0_counts)
    }

    /// Reads counts for `n_latents` latents saved by [`CoocCounts::save`], taking the arrays
    /// out of `arrays`.
    pub fn load(
        arrays: &mut std::collections::HashMap<String, crate::io::npy::NpyArray>,
        prefix: &str,
        n_latents: usize,
    ) -> Result<Self> {
        use crate::io::npy::NpyData;
        let mut take = |k: &str| {
            arrays
                .remove(&format!("{prefix}_{k}"))
                .map(|a| a.data)
                .with_context(|| format!("saved counts have no {prefix}_{k}"))
        };
        let pairs = if let Ok(data) = take("triangle") {
            let NpyData::U32(cells) = data else {
                bail!("{prefix}_triangle is not u32")
            };
            Pairs::Dense(Triangle::from_cells(n_latents, cells).with_context(|| {
                format!("saved counts are for another number of latents (expected {n_latents})")
            })?)
        } else {
            let (NpyData::U64(indptr), NpyData::U32(cols), NpyData::U32(counts)) =
                (take("indptr")?, take("cols")?, take("counts")?)
            else {
                bail!("{prefix}_indptr/_cols/_counts are not u64/u32/u32")
            };
            let u = CountCsr {
                n: n_latents,
                indptr,
                cols,
                counts,
            };
            u.validate_upper()
                .map_err(|e| anyhow::anyhow!("saved sparse counts {prefix}: {e}"))?;
            Pairs::Sparse(SparsePairs::from_upper(u))
        };
        let tokens = match take("tokens")? {
            NpyData::U64(v) if v.len() == 1 => v[0],
            _ => bail!("{prefix}_tokens is not one u64"),
        };
        let (active_sum, active_sq_sum) = match take("active")? {
            NpyData::F64(v) if v.len() == 2 => (v[0], v[1]),
            _ => bail!("{prefix}_active is not two f64"),
        };
        let NpyData::U64(l0_counts) = take("l0")? else {
            bail!("{prefix}_l0 is not u64")
        };
        Ok(Self {
            n_latents,
            pairs,
            stats: TokenStats {
                tokens,
                active_sum,
                active_sq_sum,
                l0_counts,
            },
        })
    }

    /// Tokens by number of active latents (index = active latents).
    pub fn l0_histogram(&self) -> &[u64] {
        &self.stats.l0_counts
    }

    /// Number of latents.
    pub fn n_latents(&self) -> usize {
        self.n_latents
    }

    /// Tokens counted so far.
    pub fn tokens(&self) -> u64 {
        self.stats.tokens
    }

    /// C[i, j]: tokens on which both i and j are active (C[i, i]: tokens on which i is).
    pub fn get(&self, i: usize, j: usize) -> u32 {
        let (a, b) = if i <= j { (i, j) } else { (j, i) };
        match &self.pairs {
            Pairs::Dense(t) => t.get(a, b),
            Pairs::Sparse(s) => s.get(a, b),
        }
    }

    /// Adds tokens given by their active latents (each sorted ascending, no duplicates).
    pub fn add_lists(&mut self, lists: &[Vec<u32>]) {
        assert!(
            self.stats.tokens + lists.len() as u64 <= u32::MAX as u64,
            "u32 counts would overflow"
        );
        match &mut self.pairs {
            Pairs::Dense(t) => t.add_lists(lists),
            Pairs::Sparse(s) => s.add_lists(lists),
        }
        for active in lists {
            self.stats.count_token(active.len());
        }
    }

    /// Counts a batch of activations (`rows × n_latents`, row-major) at the cut `t + θ`.
    /// The counts are the same for any thread count. Errors with the row of the first NaN or
    /// infinite activation.
    pub fn add_batch(&mut self, acts: &[f32], cut: &[f32]) -> std::result::Result<(), NanAt> {
        let lists = active_lists(acts, self.n_latents, cut)?;
        self.add_lists(&lists);
        Ok(())
    }

    /// Counts a batch given as packed bits of its active latents ([`lists_from_bits`]), as
    /// thresholded where the SAE ran.
    pub fn add_bits(&mut self, bits: &[u32], words_per_row: usize) {
        assert_eq!(
            words_per_row,
            self.n_latents.div_ceil(32),
            "one bit per latent, 32 to a word"
        );
        self.add_lists(&lists_from_bits(bits, words_per_row));
    }

    /// Merges buffered pairs into the stored counts (sparse store only; cheap otherwise).
    pub fn flush(&mut self) {
        if let Pairs::Sparse(s) = &mut self.pairs {
            s.flush();
        }
    }

    /// The pair counts as sparse upper-triangle CSR (a copy).
    pub fn upper(&self) -> CountCsr {
        match &self.pairs {
            Pairs::Dense(t) => t.to_upper(),
            Pairs::Sparse(s) if s.is_flushed() => s.merged().clone(),
            Pairs::Sparse(s) => {
                let mut s = s.clone();
                s.flush();
                s.merged().clone()
            }
        }
    }

    /// Adds counts from a disjoint part of the data.
    pub fn merge(&mut self, mut other: CoocCounts) -> Result<()> {
        ensure!(
            self.n_latents == other.n_latents,
            "cannot merge counts for {} and {} latents",
            self.n_latents,
            other.n_latents
        );
        ensure!(
            self.stats.tokens + other.stats.tokens <= u32::MAX as u64,
            "merged counts would overflow u32"
        );
        other.flush();
        match (&mut self.pairs, &other.pairs) {
            (Pairs::Dense(a), Pairs::Dense(b)) => a
                .cells_mut()
                .iter_mut()
                .zip(b.cells())
                .for_each(|(x, y)| *x += y),
            (Pairs::Dense(a), Pairs::Sparse(b)) => a.add_upper(b.merged()),
            (Pairs::Sparse(a), Pairs::Sparse(b)) => a.merge(b.merged()),
            (Pairs::Sparse(a), Pairs::Dense(b)) => a.merge(&b.to_upper()),
        }
        self.stats.merge(&other.stats);
        Ok(())
    }

    /// The diagonal: per-latent activation counts.
    pub fn diagonal(&self) -> Vec<u32> {
        match &self.pairs {
            Pairs::Dense(t) => t.diagonal(),
            Pairs::Sparse(s) => s.diagonal(),
        }
    }

    /// Row access to the whole symmetric matrix, for writing it out.
    pub fn rows(&self) -> CountRows<'_> {
        match &self.pairs {
            Pairs::Dense(t) => CountRows::Dense(t),
            Pairs::Sparse(_) => CountRows::Sparse(self.symmetric()),
        }
    }

    /// The whole symmetric matrix in CSR form.
    pub fn symmetric(&self) -> CountCsr {
        match &self.pairs {
            Pairs::Sparse(s) if s.is_flushed() => s.merged().mirrored(),
            _ => self.upper().mirrored(),
        }
    }

    /// Writes dense row i of the symmetric count matrix as f32 (see [`CoocCounts::rows`] to
    /// write many rows of sparse counts).
    pub fn fill_row(&self, i: usize, out: &mut [f32]) {
        self.rows().fill_row(i, out)
    }

    /// Mean and population standard deviation of active latents per token (L0).
    pub fn l0_mean_std(&self) -> (f64, f64) {
        let s = &self.stats;
        if s.tokens == 0 {
            return (0.0, 0.0);
        }
        let n = s.tokens as f64;
        let mean = s.active_sum / n;
        (mean, (s.active_sq_sum / n - mean * mean).max(0.0).sqrt())
    }
}

/// Rows of a symmetric count matrix, from either store.
pub enum CountRows<'a> {
    Dense(&'a Triangle),
    Sparse(CountCsr),
}

impl CountRows<'_> {
    /// Writes dense row i as f32.
    pub fn fill_row(&self, i: usize, out: &mut [f32]) {
        match self {
            CountRows::Dense(t) => t.fill_row(i, out),
            CountRows::Sparse(s) => s.fill_row(i, out),
        }
    }

    /// A reader of the rows in order (see [`RowReader`]).
    pub fn reader(&self) -> RowReader<'_> {
        RowReader {
            rows: self,
            block: Vec::new(),
            first: 0,
        }
    }
}

/// Rows of a dense count matrix read one after the other, computed a block of
/// [`ROWS_PER_BLOCK`] rows at a time (see [`Triangle::fill_rows`]); sparse rows are read one
/// at a time.
pub struct RowReader<'a> {
    rows: &'a CountRows<'a>,
    block: Vec<f32>,
    /// The first row held in `block`.
    first: usize,
}

/// Rows a [`RowReader`] computes at once.
const ROWS_PER_BLOCK: usize = 32;

impl RowReader<'_> {
    /// Writes dense row i as f32, as [`CountRows::fill_row`] does.
    pub fn fill_row(&mut self, i: usize, out: &mut [f32]) {
        let CountRows::Dense(t) = self.rows else {
            return self.rows.fill_row(i, out);
        };
        let n = out.len();
        let held = self.block.len() / n.max(1);
        if !(self.first..self.first + held).contains(&i) {
            let rows = ROWS_PER_BLOCK.min(n - i);
            self.block.resize(rows * n, 0.0);
            t.fill_rows(i, &mut self.block);
            self.first = i;
        }
        let at = (i - self.first) * n;
        out.copy_from_slice(&self.block[at..at + n]);
    }

    /// Writes row i of the Jaccard matrix `J = C / (n_i + n_j − C)` (see [`jaccard`]); `diag`
    /// is the diagonal of C as f32.
    pub fn jaccard_row(&mut self, diag: &[f32], i: usize, out: &mut [f32]) {
        self.fill_row(i, out);
        for (j, o) in out.iter_mut().enumerate() {
            *o = jaccard(*o, diag[i], diag[j]);
        }
    }
}

/// One Jaccard value `c / (n_i + n_j − c)` in f32 arithmetic, with NaN → 0 (never-firing
/// pairs), +inf → 1 and −inf → 0, exactly as the original (see
/// docs/formats.md, "Co-occurrence files").
pub fn jaccard(c: f32, n_i: f32, n_j: f32) -> f32 {
    let v = c / ((n_i + n_j) - c);
    if v.is_nan() || v == f32::NEG_INFINITY {
        0.0
    } else if v == f32::INFINITY {
        1.0
    } else {
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sae::threshold_cut;
    use rand::{Rng, SeedableRng};

    #[test]
    fn original_threshold_cases() {
        // the original's test_apply_activation_threshold (see docs/formats.md, "Activation rule")
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
        for (t, storage) in [0.0, 0.5, 1.5]
            .into_iter()
            .flat_map(|t| [(t, Storage::Dense), (t, Storage::Sparse)])
        {
            let cut = threshold_cut(t, &theta);
            let mut counts = CoocCounts::with_storage(f, storage);
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
                    assert_eq!(counts.get(i, j), dense, "t={t} {storage:?} C[{i},{j}]");
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
            reference.add_lists(&[active]);
        }
        for threads in [1, 3] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let mut c = CoocCounts::new(f);
            pool.install(|| c.add_batch(&acts, &cut)).unwrap();
            assert!(c == reference, "{threads} threads");
            assert_eq!(c.l0_histogram(), reference.l0_histogram());
            assert_eq!(c.tokens(), tokens as u64);
        }
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
        a.merge(b.clone()).unwrap();
        assert_eq!(a, whole);
        assert!(a.merge(CoocCounts::new(3)).is_err());
        // Any mix of stores merges to the same counts.
        let mut head = CoocCounts::with_storage(f, Storage::Sparse);
        head.add_batch(&acts[..17 * f], &cut).unwrap();
        let mut sparse_tail = CoocCounts::with_storage(f, Storage::Sparse);
        sparse_tail.add_batch(&acts[17 * f..], &cut).unwrap();
        let mut dense_head = CoocCounts::new(f);
        dense_head.add_batch(&acts[..17 * f], &cut).unwrap();
        let mut s1 = head.clone();
        s1.merge(b.clone()).unwrap();
        let mut s2 = head;
        s2.merge(sparse_tail.clone()).unwrap();
        dense_head.merge(sparse_tail).unwrap();
        for merged in [&s1, &s2, &dense_head] {
            assert_eq!(merged, &whole);
            assert_eq!(merged.diagonal(), whole.diagonal());
        }
        assert_eq!(s1.storage(), Storage::Sparse);
    }

    #[test]
    fn storage_is_dense_while_the_triangles_fit() {
        let gib = 1u128 << 30;
        assert_eq!(Storage::auto(24_576, 3, 10 * gib), Storage::Dense);
        assert_eq!(Storage::auto(65_536, 1, 10 * gib), Storage::Dense);
        assert_eq!(Storage::auto(65_536, 2, 10 * gib), Storage::Sparse);
        assert_eq!(Storage::auto(1 << 20, 1, 10 * gib), Storage::Sparse);
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
            c.add_lists(&[active.to_vec()]);
        }
        let diag: Vec<f32> = c.diagonal().iter().map(|&x| x as f32).collect();
        assert_eq!(diag, vec![3., 3., 0., 1.]);
        let mut row = vec![0f32; 4];
        let rows = c.rows();
        let mut reader = rows.reader();
        reader.jaccard_row(&diag, 0, &mut row);
        assert_eq!(row, vec![1.0, 2.0 / 4.0, 0.0, 1.0 / 3.0]);
        reader.jaccard_row(&diag, 2, &mut row);
        // A never-firing latent: 0/0 → 0 everywhere, including its own diagonal.
        assert_eq!(row, vec![0.0; 4]);
        reader.jaccard_row(&diag, 3, &mut row);
        assert_eq!(row, vec![1.0 / 3.0, 0.0, 0.0, 1.0]);
    }
}
