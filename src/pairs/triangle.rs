//! Dense pair counts: the upper triangle (diagonal included) of the F×F count matrix as `u32`,
//! the fastest accumulator while F(F+1)/2 × 4 bytes fits in memory (8.6 GB at F = 65,536).

use super::sparse::CountCsr;
use rayon::prelude::*;

/// Upper triangle, row-major: row i holds C[i, i..n].
#[derive(Debug, Clone, PartialEq)]
pub struct Triangle {
    n: usize,
    cells: Vec<u32>,
}

/// Start of row `i` of the upper triangle of an `n × n` matrix: Σ_{r<i} (n − r).
fn row_start(n: usize, i: usize) -> usize {
    i * n - i * (i.saturating_sub(1)) / 2
}

/// Bytes of the triangle for `n` latents.
pub fn triangle_bytes(n: usize) -> u128 {
    n as u128 * (n as u128 + 1) / 2 * 4
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

impl Triangle {
    /// Zero counts for `n` latents.
    pub fn new(n: usize) -> Self {
        Self {
            n,
            cells: vec![0; n * (n + 1) / 2],
        }
    }

    /// Wraps a saved triangle; None if its length is not n(n+1)/2.
    pub fn from_cells(n: usize, cells: Vec<u32>) -> Option<Self> {
        (cells.len() == n * (n + 1) / 2).then_some(Self { n, cells })
    }

    /// The cells, row-major.
    pub fn cells(&self) -> &[u32] {
        &self.cells
    }

    /// The cells, row-major, for adding counts of the same size.
    pub fn cells_mut(&mut self) -> &mut [u32] {
        &mut self.cells
    }

    /// C[i, j] for i ≤ j.
    pub fn get(&self, i: usize, j: usize) -> u32 {
        self.cells[row_start(self.n, i) + (j - i)]
    }

    fn add_token(cells: &mut [u32], n: usize, active: &[u32]) {
        for (k, &a) in active.iter().enumerate() {
            let start = row_start(n, a as usize) - a as usize;
            for &b in &active[k..] {
                cells[start + b as usize] += 1;
            }
        }
    }

    /// Adds the pairs of tokens given by their active latents (each sorted ascending). Rows
    /// of the triangle are split into blocks of about equal size and each thread adds every
    /// token's pairs that fall in its blocks: integer adds, so the same counts for any number
    /// of threads.
    pub fn add_lists(&mut self, lists: &[Vec<u32>]) {
        let n = self.n;
        let threads = rayon::current_num_threads();
        if threads < 2 || n < 1024 {
            for active in lists {
                Self::add_token(&mut self.cells, n, active);
            }
            return;
        }
        let blocks = triangle_blocks(n, threads * 4);
        let mut parts: Vec<(usize, usize, &mut [u32])> = Vec::with_capacity(blocks.len());
        let mut rest: &mut [u32] = &mut self.cells;
        for w in blocks.windows(2) {
            let len = row_start(n, w[1]) - row_start(n, w[0]);
            let (part, tail) = rest.split_at_mut(len);
            parts.push((w[0], w[1], part));
            rest = tail;
        }
        parts.into_par_iter().for_each(|(lo, hi, part)| {
            let base = row_start(n, lo);
            for active in lists {
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
    }

    /// Adds sparse counts of the same size.
    pub fn add_upper(&mut self, other: &CountCsr) {
        for i in 0..self.n {
            let start = row_start(self.n, i) - i;
            let (cols, counts) = other.row(i);
            for (&j, &c) in cols.iter().zip(counts) {
                self.cells[start + j as usize] += c;
            }
        }
    }

    /// The non-zero cells as sparse counts.
    pub fn to_upper(&self) -> CountCsr {
        let n = self.n;
        CountCsr::from_sorted(
            n,
            (0..n).flat_map(move |i| {
                let start = row_start(n, i);
                self.cells[start..start + n - i]
                    .iter()
                    .enumerate()
                    .filter(|(_, &c)| c > 0)
                    .map(move |(k, &c)| (i as u32, (i + k) as u32, c))
            }),
        )
    }

    /// The diagonal: per-latent activation counts.
    pub fn diagonal(&self) -> Vec<u32> {
        (0..self.n)
            .map(|i| self.cells[row_start(self.n, i)])
            .collect()
    }

    /// Writes dense rows `first..first + out.len() / n` of the symmetric matrix as f32, one
    /// after the other, as [`Triangle::fill_row`] writes each. The part left of the block is
    /// read a triangle row at a time (its cells for the whole block lie side by side), not a
    /// cell per row as one row alone must.
    pub fn fill_rows(&self, first: usize, out: &mut [f32]) {
        let n = self.n;
        let rows = out.len() / n;
        for j in 0..first {
            let from = row_start(n, j) + (first - j);
            for (r, &c) in self.cells[from..from + rows].iter().enumerate() {
                out[r * n + j] = c as f32;
            }
        }
        for (r, row) in out.chunks_exact_mut(n).enumerate() {
            let i = first + r;
            for (j, o) in row.iter_mut().enumerate().take(i).skip(first) {
                *o = self.get(j, i) as f32;
            }
            let start = row_start(n, i);
            for (o, &c) in row[i..].iter_mut().zip(&self.cells[start..start + n - i]) {
                *o = c as f32;
            }
        }
    }

    /// Writes dense row i of the symmetric matrix as f32.
    pub fn fill_row(&self, i: usize, out: &mut [f32]) {
        for (j, o) in out.iter_mut().enumerate().take(i) {
            *o = self.get(j, i) as f32;
        }
        let start = row_start(self.n, i);
        for (o, &c) in out[i..]
            .iter_mut()
            .zip(&self.cells[start..start + self.n - i])
        {
            *o = c as f32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_of_rows_are_the_rows_one_at_a_time() {
        let n = 37;
        let mut t = Triangle {
            n,
            cells: vec![0; n * (n + 1) / 2],
        };
        for (k, c) in t.cells.iter_mut().enumerate() {
            *c = (k * 7919 % 1013) as u32;
        }
        let mut one = vec![0f32; n];
        for (first, rows) in [(0, 5), (3, 8), (30, 7), (36, 1), (0, n)] {
            let mut block = vec![f32::NAN; rows * n];
            t.fill_rows(first, &mut block);
            for r in 0..rows {
                t.fill_row(first + r, &mut one);
                assert_eq!(block[r * n..(r + 1) * n], one[..], "row {}", first + r);
                // And both are the symmetric matrix.
                let i = first + r;
                for (j, &v) in one.iter().enumerate() {
                    assert_eq!(v, t.get(i.min(j), i.max(j)) as f32);
                }
            }
        }
    }

    #[test]
    fn blocks_cover_every_row() {
        for (n, parts) in [(10, 3), (1, 8), (1500, 12)] {
            let b = triangle_blocks(n, parts);
            assert_eq!((b[0], *b.last().unwrap()), (0, n));
            assert!(b.windows(2).all(|w| w[0] < w[1]));
        }
    }

    #[test]
    fn sparse_round_trip() {
        let mut t = Triangle::new(5);
        t.add_lists(&[vec![0, 3], vec![1, 3, 4], vec![3]]);
        let u = t.to_upper();
        assert!(u.validate_upper().is_ok());
        let mut back = Triangle::new(5);
        back.add_upper(&u);
        assert_eq!(back, t);
        assert_eq!(u.get(3, 3), 3);
        assert_eq!(t.diagonal(), [1, 1, 0, 3, 1]);
    }
}
