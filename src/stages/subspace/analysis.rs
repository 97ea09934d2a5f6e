//! The analysed subspace in memory: the subgraph's examples, the PCA of their reconstructions,
//! the PCA of the subgraph's decoder rows, the points to look at closely, the clustered heat
//! map's orders, and the custom prompts placed in the same PC space.

use super::points::representative_points;
use super::ward::{transpose, ward_order};
use crate::examples::gather::Examples;
use crate::pca_solver::COMPONENTS;
use crate::pca_solver::{self, Pca};
use crate::results::subspace_summary::Heatmap;

/// Examples shown in the clustered heat map at most (the first ones), as the original's
/// notebook did.
pub const HEATMAP_EXAMPLES: usize = 1000;

/// Clusters the latents (columns) and the first [`HEATMAP_EXAMPLES`] examples (rows) of `acts`
/// (`n × k`) for the doubly clustered heat map.
fn cluster_heatmap(acts: &[f32], n: usize, k: usize) -> Heatmap {
    let m = n.min(HEATMAP_EXAMPLES);
    let head = &acts[..m * k];
    Heatmap {
        examples: m,
        latent_order: ward_order(&transpose(head, m, k), k, m),
        example_order: ward_order(head, m, k),
    }
}

/// PCA of the subgraph's decoder rows `W_dec[F]`.
#[derive(Debug, Clone)]
pub struct DecoderPca {
    pub pca: Pca,
    /// `k × 3`: one row per latent, in the subgraph's order.
    pub scores: Vec<f32>,
}

/// Fits the decoder-row PCA; None with fewer than 3 latents.
pub fn decoder_pca(w_dec: &[f32], d_in: usize, latents: &[u32]) -> Option<DecoderPca> {
    let rows: Vec<f32> = latents
        .iter()
        .flat_map(|&f| {
            w_dec[f as usize * d_in..(f as usize + 1) * d_in]
                .iter()
                .copied()
        })
        .collect();
    let pca = pca_solver::fit(&rows, latents.len(), d_in, COMPONENTS)?;
    let scores = pca.transform(&rows, d_in);
    Some(DecoderPca { pca, scores })
}

/// Examples of the user's own prompts where the subgraph fired, placed with the fitted PCA.
#[derive(Debug, Default)]
pub struct PromptExamples {
    pub examples: Examples,
    /// Per example: the prompt's line number (from 1).
    pub line: Vec<usize>,
    /// `rows × 3`: projected with the PCA of the data's examples (not refitted).
    pub scores: Vec<f32>,
    /// Line numbers of prompts where no latent of the subgraph fired.
    pub silent: Vec<usize>,
    pub prompts: usize,
}

/// Everything known about one subspace.
pub struct Analysis {
    pub subgraph_id: i64,
    pub activation_threshold: f64,
    pub examples: Examples,
    pub pca: Pca,
    /// `n × 3`.
    pub scores: Vec<f32>,
    pub decoder: Option<DecoderPca>,
    pub representative: Vec<usize>,
    pub points: Vec<usize>,
    pub heatmap: Heatmap,
    pub prompts: Option<PromptExamples>,
}

impl Analysis {
    /// Fits the PCA of `examples` (None when there are too few for 3 components) and derives
    /// the rest.
    pub fn new(
        subgraph_id: i64,
        activation_threshold: f64,
        examples: Examples,
        d_in: usize,
        points: Vec<usize>,
    ) -> Option<Self> {
        let n = examples.found();
        let pca = pca_solver::fit(&examples.reconstructions, n, d_in, COMPONENTS)?;
        let scores = pca.transform(&examples.reconstructions, d_in);
        let k = examples.latents.len();
        let heatmap = cluster_heatmap(&examples.graph_acts, n, k);
        Some(Self {
            subgraph_id,
            activation_threshold,
            representative: representative_points(&scores, COMPONENTS),
            pca,
            scores,
            decoder: None,
            points,
            heatmap,
            prompts: None,
            examples,
        })
    }

    pub fn n(&self) -> usize {
        self.examples.found()
    }

    pub fn latents(&self) -> &[u32] {
        &self.examples.latents
    }

    /// Activation of the subgraph's `j`-th latent on example `i`.
    pub fn act(&self, i: usize, j: usize) -> f32 {
        self.examples.graph_acts[i * self.latents().len() + j]
    }

    /// PC `c` (0-based) of example `i`.
    pub fn pc(&self, i: usize, c: usize) -> f64 {
        self.scores[i * COMPONENTS + c] as f64
    }

    /// Token and context of example `i`.
    pub fn text(&self, i: usize) -> (&str, &str) {
        let r = &self.examples.rows[i];
        (&r.str_token, &r.context)
    }

    /// The subgraph latent most active on example `i` (the first on ties), None when all are 0.
    pub fn top_latent(&self, i: usize) -> Option<usize> {
        let k = self.latents().len();
        let row = &self.examples.graph_acts[i * k..(i + 1) * k];
        let best = (0..k).fold(0, |b, j| if row[j] > row[b] { j } else { b });
        (row[best] != 0.0).then_some(best)
    }

    /// The original's "top 2 active latents" label of example `i`: activations below
    /// `threshold` count as 0; the last two of the ascending (stable) order, reversed, those
    /// above 0; "None" when no latent is left.
    pub fn active_label(&self, i: usize, threshold: f32) -> String {
        let k = self.latents().len();
        let row: Vec<f32> = self.examples.graph_acts[i * k..(i + 1) * k]
            .iter()
            .map(|&a| if a < threshold { 0.0 } else { a })
            .collect();
        if row.iter().all(|&a| a == 0.0) {
            return "None".into();
        }
        let mut order: Vec<usize> = (0..k).collect();
        order.sort_by(|&a, &b| row[a].total_cmp(&row[b]));
        order[k.saturating_sub(2)..]
            .iter()
            .rev()
            .filter(|&&j| row[j] > 0.0)
            .map(|&j| self.latents()[j].to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The hover text of example `i`.
    pub fn hover(&self, i: usize) -> String {
        let (token, context) = self.text(i);
        format!("Point {i}\nToken: {token}\nContext: {context}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::examples::gather::TokenRow;

    fn analysis(acts: &[f32], k: usize) -> Analysis {
        let n = acts.len() / k;
        let mut ex = Examples::new((0..k as u32).map(|j| 10 + j).collect());
        ex.graph_acts = acts.to_vec();
        // Reconstructions: the activations themselves in a 4-wide space.
        ex.reconstructions = acts
            .chunks(k)
            .flat_map(|r| {
                let mut v = r.to_vec();
                v.resize(4, 0.5);
                v
            })
            .collect();
        ex.rows = (0..n)
            .map(|i| TokenRow {
                str_token: format!("t{i}"),
                context: format!("|t{i}|"),
                batch: 0,
                pos: i as i64,
            })
            .collect();
        Analysis::new(7, 1.5, ex, 4, vec![]).unwrap()
    }

    #[test]
    fn labels_follow_the_originals_rules() {
        #[rustfmt::skip]
        let a = analysis(&[
            0.0, 2.0, 3.0,
            1.0, 0.0, 0.0,
            0.0, 0.0, 0.0,
            2.0, 2.0, 0.5,
        ], 3);
        assert_eq!(a.top_latent(0), Some(2));
        assert_eq!(a.top_latent(2), None);
        assert_eq!(a.top_latent(3), Some(0), "first on ties");
        assert_eq!(a.active_label(0, 1.5), "12, 11");
        assert_eq!(a.active_label(1, 1.5), "None");
        // Ties: numpy's ascending order keeps 10 before 11, so reversed 11 comes first.
        assert_eq!(a.active_label(3, 1.5), "11, 10");
        assert_eq!(a.heatmap.examples, 4);
        assert_eq!(a.representative.len(), 5);
        assert!(a.hover(1).contains("Token: t1"));
    }
}
