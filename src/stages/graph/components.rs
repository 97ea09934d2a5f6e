//! The Jaccard graph as a sparse entry list: connected components, largest-component size,
//! and the original's edge-threshold bisection (see docs/formats.md, "Graph files").
//!
//! Only off-diagonal entries that could ever be edges are kept, so memory follows the number
//! of non-zeros rather than F². The bisection never cuts below 2^-K (K = its number of
//! halvings, 10 for tolerance 1e-3), so entries below that floor cannot change any result.

use anyhow::{bail, ensure, Result};

/// Off-diagonal entries `(row, col, value)` of a square Jaccard matrix, row-major.
#[derive(Debug, Clone, Default)]
pub struct SparseJaccard {
    n: usize,
    entries: Vec<(u32, u32, f32)>,
}

/// Disjoint-set forest with union by size and path halving.
struct UnionFind {
    parent: Vec<u32>,
    size: Vec<u32>,
}

impl UnionFind {
    fn new(n: usize) -> Self {
        Self {
            parent: (0..n as u32).collect(),
            size: vec![1; n],
        }
    }

    fn find(&mut self, mut x: u32) -> u32 {
        while self.parent[x as usize] != x {
            let grand = self.parent[self.parent[x as usize] as usize];
            self.parent[x as usize] = grand;
            x = grand;
        }
        x
    }

    fn union(&mut self, a: u32, b: u32) {
        let (mut ra, mut rb) = (self.find(a), self.find(b));
        if ra == rb {
            return;
        }
        if self.size[ra as usize] < self.size[rb as usize] {
            std::mem::swap(&mut ra, &mut rb);
        }
        self.parent[rb as usize] = ra;
        self.size[ra as usize] += self.size[rb as usize];
    }
}

/// The smallest cut the bisection on [0, 1] with tolerance `tol` can evaluate: 2^-K.
pub fn smallest_search_cut(tol: f64) -> f64 {
    let (mut width, mut cut) = (1.0f64, 1.0f64);
    while width > tol {
        width /= 2.0;
        cut = width;
    }
    cut
}

impl SparseJaccard {
    /// An empty `n × n` matrix; fill it row by row with [`SparseJaccard::push_row`].
    pub fn new(n: usize) -> Self {
        Self {
            n,
            entries: Vec::new(),
        }
    }

    /// Number of nodes.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Stored entries.
    pub fn entries(&self) -> &[(u32, u32, f32)] {
        &self.entries
    }

    /// Adds row `i`, keeping off-diagonal values `>= floor`. Rows must come in order.
    /// Errors on NaN or negative values, naming the position.
    pub fn push_row(&mut self, i: usize, row: &[f32], floor: f32) -> Result<()> {
        ensure!(
            row.len() == self.n,
            "row {i} has {} entries, expected {}",
            row.len(),
            self.n
        );
        for (j, &v) in row.iter().enumerate() {
            if v.is_nan() {
                bail!("NaN at [{i}, {j}]");
            }
            if v < 0.0 {
                bail!("negative value {v} at [{i}, {j}] (Jaccard similarities are in [0, 1])");
            }
            if j != i && v >= floor && v > 0.0 {
                self.entries.push((i as u32, j as u32, v));
            }
        }
        Ok(())
    }

    /// Adds sparse row `i` (columns ascending), keeping off-diagonal values `>= floor`. Rows
    /// must come in order. Errors on NaN or negative values, naming the position.
    pub fn push_sparse_row(
        &mut self,
        i: usize,
        cols: &[u32],
        vals: &[f32],
        floor: f32,
    ) -> Result<()> {
        for (&j, &v) in cols.iter().zip(vals) {
            if v.is_nan() {
                bail!("NaN at [{i}, {j}]");
            }
            if v < 0.0 {
                bail!("negative value {v} at [{i}, {j}] (Jaccard similarities are in [0, 1])");
            }
            if j as usize != i && v >= floor && v > 0.0 {
                self.entries.push((i as u32, j, v));
            }
        }
        Ok(())
    }

    /// Builds from a dense row-major matrix, keeping every positive off-diagonal entry.
    pub fn from_dense(n: usize, data: &[f32]) -> Result<Self> {
        ensure!(n > 0, "the matrix is empty (0 × 0)");
        ensure!(
            data.len() == n * n,
            "matrix data has {} values, not {n} × {n}",
            data.len()
        );
        let mut s = Self::new(n);
        for (i, row) in data.chunks_exact(n).enumerate() {
            s.push_row(i, row, 0.0)?;
        }
        Ok(s)
    }

    fn union_find(&self, cut: f64) -> UnionFind {
        let mut uf = UnionFind::new(self.n);
        if cut <= 0.0 {
            // Every pair satisfies J >= cut: one complete graph.
            for j in 1..self.n as u32 {
                uf.union(0, j);
            }
        } else {
            for &(i, j, v) in &self.entries {
                if v as f64 >= cut {
                    uf.union(i, j);
                }
            }
        }
        uf
    }

    /// Size of the largest connected component of the graph with edges `J >= cut`
    /// (self loops ignored; isolated nodes are components of size 1).
    pub fn largest_component_size(&self, cut: f64) -> usize {
        let mut uf = self.union_find(cut);
        (0..self.n as u32)
            .map(|x| {
                let root = uf.find(x) as usize;
                uf.size[root] as usize
            })
            .max()
            .unwrap_or(0)
    }

    /// Connected components at `cut`, ordered by smallest member, members ascending.
    pub fn components(&self, cut: f64) -> Vec<Vec<u32>> {
        let mut uf = self.union_find(cut);
        let mut index_of_root = vec![u32::MAX; self.n];
        let mut components: Vec<Vec<u32>> = Vec::new();
        for x in 0..self.n as u32 {
            let root = uf.find(x) as usize;
            if index_of_root[root] == u32::MAX {
                index_of_root[root] = components.len() as u32;
                components.push(Vec::new());
            }
            components[index_of_root[root] as usize].push(x);
        }
        components
    }

    /// The entries `>= cut` (the original's `T[T < edge] = 0`, diagonal already zero).
    pub fn thresholded(&self, cut: f64) -> Vec<(u32, u32, f32)> {
        self.entries
            .iter()
            .copied()
            .filter(|&(_, _, v)| v as f64 >= cut)
            .collect()
    }
}

/// Result of the edge-threshold search.
#[derive(Debug, Clone, PartialEq)]
pub struct ThresholdChoice {
    pub threshold: f64,
    pub largest_component: usize,
    /// Set when the best size found is above the maximum (the original's UserWarning).
    pub warning: Option<String>,
}

/// The original's `find_threshold`: bisection on [0, 1] for a cut whose largest component has
/// `min_size..=max_size` nodes; returns the first such cut, else the evaluated cut whose size
/// is strictly closest to the centre of the range (first one on ties).
pub fn find_threshold(
    g: &SparseJaccard,
    min_size: usize,
    max_size: usize,
    tol: f64,
) -> Result<ThresholdChoice> {
    ensure!(g.n() > 0, "the matrix is empty (0 × 0)");
    let centre = (min_size + max_size) as f64 / 2.0;
    let (mut low, mut high) = (0.0f64, 1.0f64);
    let mut best: Option<(f64, usize)> = None;
    while high - low > tol {
        let mid = (low + high) / 2.0;
        let size = g.largest_component_size(mid);
        if (min_size..=max_size).contains(&size) {
            return Ok(ThresholdChoice {
                threshold: mid,
                largest_component: size,
                warning: None,
            });
        }
        if size < min_size {
            high = mid;
        } else {
            low = mid;
        }
        let closer =
            best.is_none_or(|(_, b)| (size as f64 - centre).abs() < (b as f64 - centre).abs());
        if closer {
            best = Some((mid, size));
        }
    }
    let (threshold, size) = best.expect("tolerance below 1 evaluates at least one cut");
    let warning = (size > max_size)
        .then(|| format!("Largest component size ({size}) is above max_size ({max_size})."));
    Ok(ThresholdChoice {
        threshold,
        largest_component: size,
        warning,
    })
}

#[cfg(test)]
mod tests {
    //! Ported from the original's tests (see docs/formats.md, "Graph files"): test_find_threshold,
    //! test_largest_component_size, test_remove_low_weight_edges, with the same cases.
    use super::*;

    fn dense(rows: &[&[f32]]) -> SparseJaccard {
        let n = rows.len();
        SparseJaccard::from_dense(n, &rows.concat()).unwrap()
    }

    /// Block-diagonal matrix: blocks of the given (size, weight), zero elsewhere.
    fn blocks(spec: &[(usize, f32)]) -> SparseJaccard {
        let n: usize = spec.iter().map(|b| b.0).sum();
        let mut m = vec![0f32; n * n];
        let mut start = 0;
        for &(size, w) in spec {
            for i in start..start + size {
                for j in start..start + size {
                    if i != j {
                        m[i * n + j] = w;
                    }
                }
            }
            start += size;
        }
        SparseJaccard::from_dense(n, &m).unwrap()
    }

    #[test]
    fn largest_component_size_cases() {
        let path = dense(&[&[0., 1., 0.], &[1., 0., 1.], &[0., 1., 0.]]);
        assert_eq!(path.largest_component_size(0.5), 3);
        let pairs = dense(&[
            &[0., 1., 0., 0.],
            &[1., 0., 0., 0.],
            &[0., 0., 0., 1.],
            &[0., 0., 1., 0.],
        ]);
        assert_eq!(pairs.largest_component_size(0.5), 2);
        let none = dense(&[&[0., 0.], &[0., 0.]]);
        assert_eq!(none.largest_component_size(0.5), 1);
        // Weights {0.5, 0.8, 0.3} on a triangle-free path 0-1-2 plus edge 2-3.
        let weighted = dense(&[
            &[0., 0.5, 0., 0.],
            &[0.5, 0., 0.8, 0.],
            &[0., 0.8, 0., 0.3],
            &[0., 0., 0.3, 0.],
        ]);
        assert_eq!(weighted.largest_component_size(0.2), 4);
        assert_eq!(weighted.largest_component_size(0.4), 3);
        assert_eq!(weighted.largest_component_size(0.7), 2);
        // A negative threshold makes every pair an edge.
        assert_eq!(
            dense(&[&[0., 1.], &[1., 0.]]).largest_component_size(-1.0),
            2
        );
        assert!(SparseJaccard::from_dense(0, &[]).is_err());
        // Non-symmetric input is treated as undirected.
        assert_eq!(
            dense(&[&[0., 0.9, 0.], &[0., 0., 0.], &[0.9, 0., 0.]]).largest_component_size(0.5),
            3
        );
    }

    #[test]
    fn remove_low_weight_edges_keeps_equal_weights() {
        let g = dense(&[&[0., 0.3, 0.5], &[0.3, 0., 0.2], &[0.5, 0.2, 0.]]);
        let kept = g.thresholded(0.3);
        assert_eq!(
            kept,
            vec![(0, 1, 0.3), (0, 2, 0.5), (1, 0, 0.3), (2, 0, 0.5)]
        );
        // The input is untouched.
        assert_eq!(g.entries().len(), 6);
    }

    #[test]
    fn find_threshold_cases() {
        let g = blocks(&[(5, 0.8), (3, 0.4), (2, 0.2)]);
        let c = find_threshold(&g, 4, 6, 1e-3).unwrap();
        assert!((4..=6).contains(&c.largest_component), "{c:?}");
        assert_eq!(g.largest_component_size(c.threshold), c.largest_component);
        assert!(c.warning.is_none());

        let c = find_threshold(&blocks(&[(2, 1.0), (2, 1.0)]), 1, 1, 1e-3).unwrap();
        assert_eq!(
            c.warning.as_deref(),
            Some("Largest component size (2) is above max_size (1).")
        );

        let c = find_threshold(&blocks(&[(10, 0.9)]), 8, 9, 1e-3).unwrap();
        assert_eq!(
            c.warning.as_deref(),
            Some("Largest component size (10) is above max_size (9).")
        );

        let zero = SparseJaccard::from_dense(4, &[0.0; 16]).unwrap();
        assert_eq!(
            find_threshold(&zero, 2, 3, 1e-3).unwrap().largest_component,
            1
        );

        let complete = blocks(&[(5, 1.0)]);
        assert_eq!(
            find_threshold(&complete, 4, 5, 1e-3)
                .unwrap()
                .largest_component,
            5
        );

        let fine = find_threshold(&g, 4, 6, 1e-3).unwrap();
        let coarse = find_threshold(&g, 4, 6, 1e-1).unwrap();
        assert!((fine.threshold - coarse.threshold).abs() <= 0.1);
        assert!(find_threshold(&SparseJaccard::new(0), 1, 2, 1e-3).is_err());
    }

    #[test]
    fn search_matches_the_stored_dyadic_thresholds() {
        // 10 halvings for tolerance 1e-3: the smallest cut is 2^-10, as in the original's
        // edge_thresholds.csv for gpt2 res-jb blocks_0 (0.0009765625).
        assert_eq!(smallest_search_cut(1e-3), 0.0009765625);
        let zero = SparseJaccard::from_dense(3, &[0.0; 9]).unwrap();
        let c = find_threshold(&zero, 2, 3, 1e-3).unwrap();
        // Sizes are all 1 (< min), so the search walks down to 2^-10 and the first (0.5) is kept.
        assert_eq!(c.threshold, 0.5);
    }

    #[test]
    fn components_are_ordered_by_smallest_member() {
        let g = dense(&[
            &[0., 0., 0., 0.9, 0.],
            &[0., 0., 0.9, 0., 0.],
            &[0., 0.9, 0., 0., 0.],
            &[0.9, 0., 0., 0., 0.9],
            &[0., 0., 0., 0.9, 0.],
        ]);
        assert_eq!(g.components(0.5), vec![vec![0, 3, 4], vec![1, 2]]);
        assert!(SparseJaccard::new(2)
            .push_row(0, &[0.0, f32::NAN], 0.0)
            .unwrap_err()
            .to_string()
            .contains("[0, 1]"));
    }
}
