//! What the per-SAE figures of the 768-latent notebook need from one pass over a count matrix:
//! the co-occurrence and Jaccard matrix of the top latents, the Jaccard histogram of the pairs
//! that co-occurred, and the edge-cutoff sweep (largest subgraph and number of subgraphs of the
//! graph {J ≥ cutoff} at each cutoff). Jaccard is the one `cooc` and `graphs` use,
//! J = C[i,j] / (C[i,i] + C[j,j] − C[i,j]) in f32.

use crate::results::node_table::NodeRow;

/// Latents of the heat map at most.
pub(super) const HEATMAP_LATENTS: usize = 80;
/// The sweep's cutoffs: this many, evenly spaced from 0 to [`SWEEP_MAX`] (the notebook's
/// `linspace(0, 0.2, 100)`).
pub(super) const SWEEP_CUTOFFS: usize = 100;
pub(super) const SWEEP_MAX: f64 = 0.2;
/// Bins of the Jaccard histogram over [0, 1].
pub(super) const JACCARD_BINS: usize = 50;

/// One cutoff of the sweep: the graph's edges are the pairs that co-occurred with J ≥ cutoff.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepPoint {
    pub cutoff: f64,
    /// Latents in the largest subgraph.
    pub largest: usize,
    /// Subgraphs, singletons included, and those of 2+ latents.
    pub subgraphs: usize,
    pub subgraphs_2plus: usize,
}

/// A latent of the heat map: its id and its subgraph in the node table (if there is one).
#[derive(Debug, Clone, PartialEq)]
pub struct HeatLatent {
    pub latent: usize,
    pub subgraph: Option<i64>,
}

/// The figures' numbers of one SAE at one threshold.
#[derive(Debug, Clone, Default)]
pub struct MatrixFigures {
    pub heat_latents: Vec<HeatLatent>,
    /// `k × k`, row-major over `heat_latents`: C and J of each pair (0 on the diagonal).
    pub heat_counts: Vec<f64>,
    pub heat_jaccard: Vec<f64>,
    /// Pairs that co-occurred, by J in [`JACCARD_BINS`] bins of [0, 1] (J = 1 in the last).
    pub jaccard_counts: Vec<u64>,
    pub sweep: Vec<SweepPoint>,
}

/// The `m`-th cutoff of the sweep.
pub(super) fn cutoff(m: usize) -> f64 {
    if m + 1 == SWEEP_CUTOFFS {
        SWEEP_MAX
    } else {
        m as f64 * (SWEEP_MAX / (SWEEP_CUTOFFS - 1) as f64)
    }
}

/// The highest `m` with `cutoff(m) ≤ jaccard` (0 for any J ≥ 0).
fn last_cutoff_passed(jaccard: f64) -> usize {
    let step = SWEEP_MAX / (SWEEP_CUTOFFS - 1) as f64;
    let mut m = ((jaccard / step).floor().max(0.0) as usize).min(SWEEP_CUTOFFS - 1);
    while m + 1 < SWEEP_CUTOFFS && jaccard >= cutoff(m + 1) {
        m += 1;
    }
    while m > 0 && jaccard < cutoff(m) {
        m -= 1;
    }
    m
}

/// Disjoint sets of latents with the size of each and the counts the sweep records.
struct Components {
    parent: Vec<u32>,
    size: Vec<u32>,
    largest: usize,
    count: usize,
    singletons: usize,
}

impl Components {
    fn new(n: usize) -> Self {
        Self {
            parent: (0..n as u32).collect(),
            size: vec![1; n],
            largest: n.min(1),
            count: n,
            singletons: n,
        }
    }

    fn root(&mut self, mut i: usize) -> usize {
        while self.parent[i] as usize != i {
            let up = self.parent[self.parent[i] as usize];
            self.parent[i] = up;
            i = up as usize;
        }
        i
    }

    fn join(&mut self, i: usize, j: usize) {
        let (a, b) = (self.root(i), self.root(j));
        if a == b {
            return;
        }
        let (big, small) = if self.size[a] >= self.size[b] {
            (a, b)
        } else {
            (b, a)
        };
        self.singletons -= [self.size[a], self.size[b]]
            .iter()
            .filter(|&&s| s == 1)
            .count();
        self.parent[small] = big as u32;
        self.size[big] += self.size[small];
        self.largest = self.largest.max(self.size[big] as usize);
        self.count -= 1;
    }

    fn point(&self, cutoff: f64) -> SweepPoint {
        SweepPoint {
            cutoff,
            largest: self.largest,
            subgraphs: self.count,
            subgraphs_2plus: self.count - self.singletons,
        }
    }
}

/// The pass: fed every co-occurring pair i < j once, in any order.
pub(super) struct MatrixPass<'a> {
    totals: &'a [f32],
    out: MatrixFigures,
    /// Position of each latent in the heat map (`u32::MAX`: not in it).
    heat_position: Vec<u32>,
    /// Every edge, joined as it comes: the sweep's first cutoff (0) keeps them all.
    all: Components,
    /// Edges present at cutoff m ≥ 1, by the last cutoff they pass.
    by_last_cutoff: Vec<Vec<(u32, u32)>>,
}

impl<'a> MatrixPass<'a> {
    /// A pass over the matrix whose diagonal is `totals`; `nodes`, the node table, orders the
    /// heat map's latents.
    pub(super) fn new(totals: &'a [f32], nodes: Option<&[NodeRow]>) -> Self {
        let n = totals.len();
        let heat_latents = heat_latents(totals, nodes);
        let mut heat_position = vec![u32::MAX; n];
        for (p, l) in heat_latents.iter().enumerate() {
            heat_position[l.latent] = p as u32;
        }
        let k = heat_latents.len();
        Self {
            totals,
            out: MatrixFigures {
                heat_latents,
                heat_counts: vec![0.0; k * k],
                heat_jaccard: vec![0.0; k * k],
                jaccard_counts: vec![0; JACCARD_BINS],
                sweep: Vec::new(),
            },
            heat_position,
            all: Components::new(n),
            by_last_cutoff: vec![Vec::new(); SWEEP_CUTOFFS],
        }
    }

    /// The pair (i, j), i < j, co-occurred `count` > 0 times.
    pub(super) fn visit(&mut self, i: usize, j: usize, count: f64) {
        let c = count as f32;
        let jaccard = (c / (self.totals[i] + self.totals[j] - c)) as f64;
        let jaccard = if jaccard.is_nan() {
            0.0
        } else {
            jaccard.min(1.0)
        };
        let bin = ((jaccard * JACCARD_BINS as f64) as usize).min(JACCARD_BINS - 1);
        self.out.jaccard_counts[bin] += 1;
        let (pi, pj) = (self.heat_position[i], self.heat_position[j]);
        if pi != u32::MAX && pj != u32::MAX {
            let k = self.out.heat_latents.len();
            for (a, b) in [(pi as usize, pj as usize), (pj as usize, pi as usize)] {
                self.out.heat_counts[a * k + b] = count;
                self.out.heat_jaccard[a * k + b] = jaccard;
            }
        }
        if jaccard > 0.0 {
            self.all.join(i, j);
            let last = last_cutoff_passed(jaccard);
            if last >= 1 {
                self.by_last_cutoff[last].push((i as u32, j as u32));
            }
        }
    }

    /// The figures' numbers: the sweep adds the edges from the highest cutoff down.
    pub(super) fn finish(mut self) -> MatrixFigures {
        let mut sweep = Vec::with_capacity(SWEEP_CUTOFFS);
        let mut components = Components::new(self.totals.len());
        for m in (1..SWEEP_CUTOFFS).rev() {
            for &(i, j) in &self.by_last_cutoff[m] {
                components.join(i as usize, j as usize);
            }
            sweep.push(components.point(cutoff(m)));
        }
        sweep.push(self.all.point(cutoff(0)));
        sweep.reverse();
        self.out.sweep = sweep;
        self.out
    }
}

/// The heat map's latents: with a node table, those of the largest subgraphs (by size, then
/// subgraph id, then latent); without one, the most active latents. At most
/// [`HEATMAP_LATENTS`].
fn heat_latents(totals: &[f32], nodes: Option<&[NodeRow]>) -> Vec<HeatLatent> {
    let mut latents: Vec<HeatLatent> = match nodes {
        Some(nodes) => {
            let mut order: Vec<&NodeRow> = nodes.iter().collect();
            order.sort_by_key(|r| (std::cmp::Reverse(r.subgraph_size), r.subgraph_id, r.node_id));
            order
                .iter()
                .map(|r| HeatLatent {
                    latent: r.node_id as usize,
                    subgraph: Some(r.subgraph_id),
                })
                .filter(|l| l.latent < totals.len())
                .collect()
        }
        None => {
            let mut order: Vec<usize> = (0..totals.len()).collect();
            order.sort_by(|&a, &b| totals[b].total_cmp(&totals[a]).then(a.cmp(&b)));
            order
                .into_iter()
                .map(|latent| HeatLatent {
                    latent,
                    subgraph: None,
                })
                .collect()
        }
    };
    latents.truncate(HEATMAP_LATENTS);
    latents
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Components of the graph with `edges` by brute force: a flood fill.
    fn flood(n: usize, edges: &[(usize, usize)]) -> (usize, usize, usize) {
        let mut seen = vec![false; n];
        let mut sizes = Vec::new();
        for s in 0..n {
            if seen[s] {
                continue;
            }
            let (mut stack, mut size) = (vec![s], 0);
            seen[s] = true;
            while let Some(v) = stack.pop() {
                size += 1;
                for &(a, b) in edges {
                    let w = if a == v {
                        b
                    } else if b == v {
                        a
                    } else {
                        continue;
                    };
                    if !seen[w] {
                        seen[w] = true;
                        stack.push(w);
                    }
                }
            }
            sizes.push(size);
        }
        let multi = sizes.iter().filter(|&&s| s > 1).count();
        (sizes.iter().copied().max().unwrap_or(0), sizes.len(), multi)
    }

    #[test]
    fn sweep_equals_a_flood_fill_at_every_cutoff() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let n = 60;
        let totals: Vec<f32> = (0..n).map(|_| rng.random_range(20..200) as f32).collect();
        let mut pairs = Vec::new();
        for i in 0..n {
            for j in i + 1..n {
                if rng.random_range(0..10) == 0 {
                    let top = totals[i].min(totals[j]) as u32;
                    pairs.push((i, j, rng.random_range(1..=top) as f64));
                }
            }
        }
        let mut pass = MatrixPass::new(&totals, None);
        for &(i, j, c) in pairs.iter().rev() {
            pass.visit(i, j, c);
        }
        let out = pass.finish();
        assert_eq!(out.sweep.len(), SWEEP_CUTOFFS);
        assert_eq!(out.jaccard_counts.iter().sum::<u64>(), pairs.len() as u64);
        for p in &out.sweep {
            let edges: Vec<(usize, usize)> = pairs
                .iter()
                .filter(|&&(i, j, c)| {
                    let c = c as f32;
                    (c / (totals[i] + totals[j] - c)) as f64 >= p.cutoff
                })
                .map(|&(i, j, _)| (i, j))
                .collect();
            assert_eq!(
                (p.largest, p.subgraphs, p.subgraphs_2plus),
                flood(n, &edges),
                "{p:?}"
            );
        }
        assert!(out.sweep[0].largest > out.sweep[SWEEP_CUTOFFS - 1].largest);
        assert_eq!(cutoff(SWEEP_CUTOFFS - 1), SWEEP_MAX);
        // Without a node table, the most active latents, most active first.
        assert_eq!(out.heat_latents.len(), n.min(HEATMAP_LATENTS));
        let first = out.heat_latents[0].latent;
        assert!(totals.iter().all(|&t| t <= totals[first]));
    }
}
