//! Ward hierarchical clustering and the dendrogram's leaf order, as scipy computes them for
//! `dendrogram(linkage(pdist(X), method="ward"), no_plot=True)["leaves"]`: Euclidean distances
//! in f64, the nearest-neighbour-chain algorithm with its tie rules (a strictly smaller
//! distance replaces the current nearest; the chain's previous element is preferred), merges
//! sorted stably by distance and relabelled with a union-find, and leaves read left child first.

/// One merge of the linkage matrix: clusters `a < b` (ids ≥ n are earlier merges), their
/// distance and the new cluster's size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Merge {
    pub a: usize,
    pub b: usize,
    pub distance: f64,
    pub size: usize,
}

/// Pairwise Euclidean distances of the rows of `x` (`n × d`), as a full symmetric matrix.
fn distances(x: &[f32], n: usize, d: usize) -> Vec<f64> {
    let mut out = vec![0.0; n * n];
    for i in 0..n {
        for j in (i + 1)..n {
            let s: f64 = (0..d)
                .map(|k| {
                    let t = x[i * d + k] as f64 - x[j * d + k] as f64;
                    t * t
                })
                .sum();
            out[i * n + j] = s.sqrt();
            out[j * n + i] = out[i * n + j];
        }
    }
    out
}

/// The Lance–Williams update of Ward's method: distance from cluster `i` to the union of `x`
/// and `y`.
fn ward_update(d_xi: f64, d_yi: f64, d_xy: f64, nx: usize, ny: usize, ni: usize) -> f64 {
    let t = 1.0 / (nx + ny + ni) as f64;
    ((ni + nx) as f64 * t * d_xi * d_xi + (ni + ny) as f64 * t * d_yi * d_yi
        - ni as f64 * t * d_xy * d_xy)
        .sqrt()
}

/// Ward linkage of the rows of `x` (`n × d`, n ≥ 2): `n − 1` merges, by distance.
pub fn ward_linkage(x: &[f32], n: usize, d: usize) -> Vec<Merge> {
    let mut dist = distances(x, n, d);
    let mut size = vec![1usize; n];
    let mut chain: Vec<usize> = Vec::with_capacity(n);
    let mut merges = Vec::with_capacity(n.saturating_sub(1));
    for _ in 1..n {
        if chain.is_empty() {
            chain.push(size.iter().position(|&s| s > 0).unwrap_or(0));
        }
        let (x, y, current) = loop {
            let x = chain[chain.len() - 1];
            let (mut y, mut current) = match chain.len() {
                1 => (x, f64::INFINITY),
                k => (chain[k - 2], dist[x * n + chain[k - 2]]),
            };
            for i in 0..n {
                if size[i] == 0 || i == x {
                    continue;
                }
                if dist[x * n + i] < current {
                    current = dist[x * n + i];
                    y = i;
                }
            }
            if chain.len() > 1 && y == chain[chain.len() - 2] {
                break (x, y, current);
            }
            chain.push(y);
        };
        chain.truncate(chain.len() - 2);
        let (x, y) = (x.min(y), x.max(y));
        let (nx, ny) = (size[x], size[y]);
        merges.push(Merge {
            a: x,
            b: y,
            distance: current,
            size: nx + ny,
        });
        size[x] = 0;
        size[y] = nx + ny;
        for i in 0..n {
            if size[i] == 0 || i == y {
                continue;
            }
            let v = ward_update(dist[i * n + x], dist[i * n + y], current, nx, ny, size[i]);
            dist[i * n + y] = v;
            dist[y * n + i] = v;
        }
    }
    // Stable sort by distance, then relabel: clusters get ids n, n + 1, ... in merge order.
    merges.sort_by(|p, q| p.distance.total_cmp(&q.distance));
    relabel(&mut merges, n);
    merges
}

/// Gives each merge's clusters their union-find roots (smaller first) and sizes.
fn relabel(merges: &mut [Merge], n: usize) {
    let mut parent: Vec<usize> = (0..2 * n - 1).collect();
    let mut sizes: Vec<usize> = vec![1; 2 * n - 1];
    fn find(parent: &mut [usize], mut x: usize) -> usize {
        let mut root = x;
        while parent[root] != root {
            root = parent[root];
        }
        while parent[x] != root {
            let next = parent[x];
            parent[x] = root;
            x = next;
        }
        root
    }
    for (k, m) in merges.iter_mut().enumerate() {
        let (ra, rb) = (find(&mut parent, m.a), find(&mut parent, m.b));
        let new = n + k;
        parent[ra] = new;
        parent[rb] = new;
        sizes[new] = sizes[ra] + sizes[rb];
        m.a = ra.min(rb);
        m.b = ra.max(rb);
        m.size = sizes[new];
    }
}

/// The dendrogram's leaves, left to right (each merge's first cluster on the left).
pub fn dendrogram_leaves(merges: &[Merge], n: usize) -> Vec<usize> {
    if n == 0 {
        return Vec::new();
    }
    let mut leaves = Vec::with_capacity(n);
    // The root is the last merge (or the single leaf).
    let mut stack = vec![if merges.is_empty() {
        0
    } else {
        n + merges.len() - 1
    }];
    while let Some(c) = stack.pop() {
        if c < n {
            leaves.push(c);
        } else {
            let m = merges[c - n];
            stack.push(m.b);
            stack.push(m.a);
        }
    }
    leaves
}

/// The Ward leaf order of the rows of `x` (`n × d`); the identity for fewer than two rows.
pub fn ward_order(x: &[f32], n: usize, d: usize) -> Vec<usize> {
    if n < 2 {
        return (0..n).collect();
    }
    dendrogram_leaves(&ward_linkage(x, n, d), n)
}

/// `x` (`n × d`) transposed.
pub fn transpose(x: &[f32], n: usize, d: usize) -> Vec<f32> {
    (0..d)
        .flat_map(|j| (0..n).map(move |i| x[i * d + j]))
        .collect()
}

#[cfg(test)]
mod tests {
    //! Against scipy: `tests/fixtures/golden/ward_scipy.npz`, written by
    //! `scripts/golden/gen_ward_golden.py`. Leaf orders and merge pairs must be equal; merge
    //! distances to 1e-12 relative.
    use super::*;
    use crate::io::npz::read_npz;
    use std::collections::HashMap;
    use std::path::Path;

    fn golden() -> HashMap<String, (Vec<usize>, Vec<f64>)> {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden/ward_scipy.npz");
        read_npz(&path)
            .unwrap()
            .into_iter()
            .map(|(k, a)| {
                let values = match &a.data {
                    crate::io::npy::NpyData::F64(v) => v.clone(),
                    crate::io::npy::NpyData::I64(v) => v.iter().map(|&x| x as f64).collect(),
                    _ => a.to_f32().iter().map(|&x| x as f64).collect(),
                };
                (k, (a.shape.clone(), values))
            })
            .collect()
    }

    #[test]
    fn matches_scipy_linkage_and_dendrogram() {
        let g = golden();
        for case in ["random", "ties", "dupes", "two"] {
            let (shape, x) = &g[&format!("{case}_x")];
            let x: Vec<f32> = x.iter().map(|&v| v as f32).collect();
            let (n, d) = (shape[0], shape[1]);
            for (side, m, rows, cols) in [
                ("rows", x.clone(), n, d),
                ("cols", transpose(&x, n, d), d, n),
            ] {
                let merges = ward_linkage(&m, rows, cols);
                let (_, z) = &g[&format!("{case}_{side}_linkage")];
                for (k, (m, want)) in merges.iter().zip(z.chunks_exact(4)).enumerate() {
                    assert_eq!(
                        (m.a as f64, m.b as f64, m.size as f64),
                        (want[0], want[1], want[3]),
                        "{case} {side} merge {k}"
                    );
                    assert!(
                        (m.distance - want[2]).abs() <= 1e-12 * want[2].max(1.0),
                        "{case} {side} merge {k}: {} vs {}",
                        m.distance,
                        want[2]
                    );
                }
                let (_, leaves) = &g[&format!("{case}_{side}_leaves")];
                let want: Vec<usize> = leaves.iter().map(|&v| v as usize).collect();
                assert_eq!(ward_order(&m, rows, cols), want, "{case} {side} leaves");
            }
        }
    }

    #[test]
    fn fewer_than_two_rows_keep_their_order() {
        assert_eq!(ward_order(&[], 0, 3), Vec::<usize>::new());
        assert_eq!(ward_order(&[1.0, 2.0], 1, 2), vec![0]);
    }
}
