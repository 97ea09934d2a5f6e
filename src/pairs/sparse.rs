//! Sparse pair counts, for SAEs too wide for the dense triangle (F ≥ 131,072, up to 1M latents).
//!
//! Memory grows with the number of distinct pairs that co-occur, not with F². Each token's
//! pairs `(a, b)`, a ≤ b, are appended as `a << s | b` keys (s = bits of F − 1) to a pending
//! buffer; when the buffer is large, one slice per thread is radix-sorted and run-length
//! encoded, and the runs are added into the upper triangle held in CSR form. Sorting integer
//! keys gives the same counts for any number of threads, and the buffer grows with the matrix
//! so the merges cost O(1) per pair on average.

use rayon::prelude::*;

/// Keys buffered before a merge (256 MiB); once the stored entries are many, the buffer may
/// reach half their number, so each merge pass over them is shared by many pairs.
const MIN_PENDING: usize = 1 << 25;

/// An `n × n` count matrix in CSR form, columns strictly increasing in each row. The stores
/// hold the upper triangle (diagonal included: row `i` has `(j, C[i, j])` for `j ≥ i` with
/// `C[i, j] > 0`); [`CountCsr::mirrored`] gives the whole symmetric matrix for writing.
#[derive(Debug, Clone, PartialEq)]
pub struct CountCsr {
    pub n: usize,
    pub indptr: Vec<u64>,
    pub cols: Vec<u32>,
    pub counts: Vec<u32>,
}

impl CountCsr {
    /// No entries.
    pub fn empty(n: usize) -> Self {
        Self {
            n,
            indptr: vec![0; n + 1],
            cols: Vec::new(),
            counts: Vec::new(),
        }
    }

    /// Stored entries.
    pub fn nnz(&self) -> usize {
        self.cols.len()
    }

    /// Row `i`: its columns and counts.
    pub fn row(&self, i: usize) -> (&[u32], &[u32]) {
        let (a, b) = (self.indptr[i] as usize, self.indptr[i + 1] as usize);
        (&self.cols[a..b], &self.counts[a..b])
    }

    /// C[i, j] for i ≤ j.
    pub fn get(&self, i: usize, j: usize) -> u32 {
        let (cols, counts) = self.row(i);
        cols.binary_search(&(j as u32)).map_or(0, |k| counts[k])
    }

    /// Builds from `(row, col, count)` entries sorted row-major, rows ≤ cols, no duplicates.
    pub fn from_sorted(n: usize, entries: impl Iterator<Item = (u32, u32, u32)>) -> Self {
        let mut out = Self::empty(n);
        let mut row = 0usize;
        for (i, j, c) in entries {
            while row < i as usize {
                row += 1;
                out.indptr[row] = out.cols.len() as u64;
            }
            out.cols.push(j);
            out.counts.push(c);
        }
        for r in row + 1..=n {
            out.indptr[r] = out.cols.len() as u64;
        }
        out
    }

    /// Element-wise sum of two matrices of the same size (a merge of sorted rows).
    pub fn sum(&self, other: &CountCsr) -> CountCsr {
        assert_eq!(self.n, other.n, "summed matrices have the same size");
        let capacity = self.nnz() + other.nnz();
        let mut out = CountCsr {
            n: self.n,
            indptr: Vec::with_capacity(self.n + 1),
            cols: Vec::with_capacity(capacity),
            counts: Vec::with_capacity(capacity),
        };
        out.indptr.push(0);
        for i in 0..self.n {
            let (ac, an) = self.row(i);
            let (bc, bn) = other.row(i);
            let (mut p, mut q) = (0, 0);
            while p < ac.len() || q < bc.len() {
                let take_a = q == bc.len() || (p < ac.len() && ac[p] <= bc[q]);
                let take_b = p == ac.len() || (q < bc.len() && bc[q] <= ac[p]);
                let col = if take_a { ac[p] } else { bc[q] };
                let mut count = 0;
                if take_a {
                    count += an[p];
                    p += 1;
                }
                if take_b {
                    count += bn[q];
                    q += 1;
                }
                out.cols.push(col);
                out.counts.push(count);
            }
            out.indptr.push(out.cols.len() as u64);
        }
        out.cols.shrink_to_fit();
        out.counts.shrink_to_fit();
        out
    }

    /// Checks the invariants of a matrix read from a file; the message names what is wrong.
    pub fn validate_upper(&self) -> Result<(), String> {
        if self.indptr.len() != self.n + 1 || self.indptr[0] != 0 {
            return Err(format!(
                "indptr must have {} entries starting at 0",
                self.n + 1
            ));
        }
        if self.cols.len() != self.counts.len() || self.indptr[self.n] as usize != self.cols.len() {
            return Err("indptr, cols and counts disagree on the number of entries".into());
        }
        for i in 0..self.n {
            if self.indptr[i] > self.indptr[i + 1] {
                return Err(format!("indptr decreases at row {i}"));
            }
            let (cols, _) = self.row(i);
            let sorted = cols.windows(2).all(|w| w[0] < w[1]);
            let in_range = cols
                .first()
                .is_none_or(|&c| c as usize >= i && (*cols.last().unwrap() as usize) < self.n);
            if !sorted || !in_range {
                return Err(format!("row {i} has unsorted or out-of-range columns"));
            }
        }
        Ok(())
    }
}

/// Sparse accumulator: merged upper-triangle counts plus a buffer of not yet merged pair keys.
#[derive(Debug, Clone)]
pub struct SparsePairs {
    merged: CountCsr,
    pending: Vec<u64>,
    /// Bits of a column index in a pair key.
    shift: u32,
}

/// Bits per radix-sort pass (2,048 buckets).
const DIGIT_BITS: u32 = 11;

/// Sorts `keys` whose values are below `2^bits` (LSD radix sort; `scratch` is reused).
fn radix_sort(keys: &mut [u64], scratch: &mut Vec<u64>, bits: u32) {
    const BUCKETS: usize = 1 << DIGIT_BITS;
    let passes = bits.div_ceil(DIGIT_BITS) as usize;
    let mut hist = vec![[0usize; BUCKETS]; passes];
    for &k in keys.iter() {
        for (p, h) in hist.iter_mut().enumerate() {
            h[(k >> (p as u32 * DIGIT_BITS)) as usize & (BUCKETS - 1)] += 1;
        }
    }
    scratch.clear();
    scratch.resize(keys.len(), 0);
    let mut in_keys = true;
    for (p, h) in hist.iter().enumerate() {
        if h.contains(&keys.len()) {
            continue; // every key has the same digit here
        }
        let mut offsets = [0usize; BUCKETS];
        let mut sum = 0;
        for (o, &c) in offsets.iter_mut().zip(h.iter()) {
            *o = sum;
            sum += c;
        }
        let (src, dst): (&[u64], &mut [u64]) = if in_keys {
            (keys, scratch)
        } else {
            (scratch, keys)
        };
        for &k in src {
            let d = (k >> (p as u32 * DIGIT_BITS)) as usize & (BUCKETS - 1);
            dst[offsets[d]] = k;
            offsets[d] += 1;
        }
        in_keys = !in_keys;
    }
    if !in_keys {
        keys.copy_from_slice(scratch);
    }
}

/// Sorted keys → upper-triangle CSR of their multiplicities.
fn count_sorted_keys(n: usize, shift: u32, keys: &[u64]) -> CountCsr {
    let mask = (1u64 << shift) - 1;
    let runs = keys.chunk_by(|a, b| a == b);
    CountCsr::from_sorted(
        n,
        runs.map(|run| {
            (
                (run[0] >> shift) as u32,
                (run[0] & mask) as u32,
                run.len() as u32,
            )
        }),
    )
}

impl SparsePairs {
    /// Zero counts for `n` latents.
    pub fn new(n: usize) -> Self {
        Self::from_upper(CountCsr::empty(n))
    }

    /// Wraps counts read from a checkpoint.
    pub fn from_upper(merged: CountCsr) -> Self {
        let shift = (usize::BITS - merged.n.saturating_sub(1).leading_zeros()).max(1);
        Self {
            merged,
            pending: Vec::new(),
            shift,
        }
    }

    fn key(&self, a: u32, b: u32) -> u64 {
        (a as u64) << self.shift | b as u64
    }

    /// Adds the pairs of tokens given by their active latents (each sorted ascending).
    pub fn add_lists(&mut self, lists: &[Vec<u32>]) {
        let shift = self.shift;
        for active in lists {
            for (k, &a) in active.iter().enumerate() {
                let high = (a as u64) << shift;
                self.pending
                    .extend(active[k..].iter().map(|&b| high | b as u64));
            }
        }
        if self.pending.len() >= MIN_PENDING.max(self.merged.nnz() / 2) {
            self.flush();
        }
    }

    /// Merges the buffered pairs into the stored counts: one slice per thread is sorted and
    /// counted, then the runs are summed into the stored counts.
    pub fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let (n, shift) = (self.merged.n, self.shift);
        let slice = self
            .pending
            .len()
            .div_ceil(rayon::current_num_threads().max(1));
        let runs: Vec<CountCsr> = self
            .pending
            .par_chunks_mut(slice)
            .map(|keys| {
                radix_sort(keys, &mut Vec::new(), 2 * shift);
                count_sorted_keys(n, shift, keys)
            })
            .collect();
        self.pending.clear();
        // Sum the (small) runs first, so the stored counts are rewritten once.
        if let Some(run) = runs.into_iter().reduce(|a, b| a.sum(&b)) {
            self.merged = self.merged.sum(&run);
        }
    }

    /// The stored counts (call [`SparsePairs::flush`] first to include buffered pairs).
    pub fn merged(&self) -> &CountCsr {
        &self.merged
    }

    /// True when every pair is merged.
    pub fn is_flushed(&self) -> bool {
        self.pending.is_empty()
    }

    /// Adds counts from a disjoint part of the data.
    pub fn merge(&mut self, other: &CountCsr) {
        self.flush();
        self.merged = self.merged.sum(other);
    }

    /// C[i, j] for i ≤ j, buffered pairs included.
    pub fn get(&self, i: usize, j: usize) -> u32 {
        let key = self.key(i as u32, j as u32);
        self.merged.get(i, j) + self.pending.iter().filter(|&&k| k == key).count() as u32
    }

    /// The diagonal, buffered pairs included.
    pub fn diagonal(&self) -> Vec<u32> {
        let mut d: Vec<u32> = (0..self.merged.n).map(|i| self.merged.get(i, i)).collect();
        let mask = (1u64 << self.shift) - 1;
        for &k in &self.pending {
            let (a, b) = ((k >> self.shift) as usize, (k & mask) as usize);
            if a == b {
                d[a] += 1;
            }
        }
        d
    }
}

impl CountCsr {
    /// The whole symmetric matrix (both triangles) of an upper triangle, built once for
    /// writing: row j of the result is column j of `self` above the diagonal, then row j.
    pub fn mirrored(&self) -> Self {
        let (u, n) = (self, self.n);
        let mut lower = vec![0u64; n];
        for i in 0..n {
            for &j in u.row(i).0 {
                if j as usize != i {
                    lower[j as usize] += 1;
                }
            }
        }
        let mut indptr = Vec::with_capacity(n + 1);
        indptr.push(0u64);
        for i in 0..n {
            let upper = u.indptr[i + 1] - u.indptr[i];
            indptr.push(indptr[i] + lower[i] + upper);
        }
        let nnz = indptr[n] as usize;
        let (mut cols, mut counts) = (vec![0u32; nnz], vec![0u32; nnz]);
        // Next free slot of each row's lower part; rows i < j fill row j in increasing i.
        let mut cursor: Vec<u64> = indptr[..n].to_vec();
        for i in 0..n {
            let (uc, un) = u.row(i);
            let start = (indptr[i] + lower[i]) as usize;
            cols[start..start + uc.len()].copy_from_slice(uc);
            counts[start..start + uc.len()].copy_from_slice(un);
            for (&j, &c) in uc.iter().zip(un) {
                if j as usize != i {
                    let at = cursor[j as usize] as usize;
                    cols[at] = i as u32;
                    counts[at] = c;
                    cursor[j as usize] += 1;
                }
            }
        }
        Self {
            n,
            indptr,
            cols,
            counts,
        }
    }

    /// Writes dense row i as f32.
    pub fn fill_row(&self, i: usize, out: &mut [f32]) {
        out.fill(0.0);
        let (cols, counts) = self.row(i);
        for (&j, &c) in cols.iter().zip(counts) {
            out[j as usize] = c as f32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn sparse_pairs_equal_a_brute_force_count() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let n = 60;
        let mut dense = vec![vec![0u32; n]; n];
        let mut pairs = SparsePairs::new(n);
        for batch in 0..4 {
            let lists: Vec<Vec<u32>> = (0..50)
                .map(|_| {
                    let mut a: Vec<u32> = (0..rng.random_range(0..8))
                        .map(|_| rng.random_range(0..n as u32))
                        .collect();
                    a.sort_unstable();
                    a.dedup();
                    a
                })
                .collect();
            for a in &lists {
                for &x in a {
                    for &y in a {
                        dense[x as usize][y as usize] += 1;
                    }
                }
            }
            pairs.add_lists(&lists);
            if batch == 1 {
                pairs.flush();
            }
        }
        // Before and after the final flush.
        for step in 0..2 {
            for (i, row) in dense.iter().enumerate() {
                for (j, &want) in row.iter().enumerate().skip(i) {
                    assert_eq!(pairs.get(i, j), want, "step {step} [{i},{j}]");
                }
            }
            let diag: Vec<u32> = (0..n).map(|i| dense[i][i]).collect();
            assert_eq!(pairs.diagonal(), diag);
            pairs.flush();
        }
        assert!(pairs.merged().validate_upper().is_ok());
        let full = pairs.merged().mirrored();
        let mut row = vec![0f32; n];
        for (i, want) in dense.iter().enumerate() {
            full.fill_row(i, &mut row);
            let want: Vec<f32> = want.iter().map(|&c| c as f32).collect();
            assert_eq!(row, want, "row {i}");
        }
    }

    #[test]
    fn radix_sort_sorts() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(2);
        for bits in [1, 11, 30, 40] {
            let mut keys: Vec<u64> = (0..5000)
                .map(|_| rng.random_range(0..1u64 << bits))
                .collect();
            let mut want = keys.clone();
            want.sort_unstable();
            radix_sort(&mut keys, &mut Vec::new(), bits);
            assert_eq!(keys, want, "{bits} bits");
        }
    }

    #[test]
    fn sums_merge_rows_and_validation_names_the_fault() {
        let a = CountCsr::from_sorted(3, [(0, 0, 2), (0, 2, 1), (2, 2, 5)].into_iter());
        let b = CountCsr::from_sorted(3, [(0, 1, 4), (0, 2, 3), (1, 1, 1)].into_iter());
        let s = a.sum(&b);
        assert_eq!(s.indptr, [0, 3, 4, 5]);
        assert_eq!(s.cols, [0, 1, 2, 1, 2]);
        assert_eq!(s.counts, [2, 4, 4, 1, 5]);
        let mut bad = s.clone();
        bad.cols[1] = 0;
        assert!(bad.validate_upper().unwrap_err().contains("row 0"));
        bad.indptr.pop();
        assert!(bad.validate_upper().unwrap_err().contains("indptr"));
    }
}
