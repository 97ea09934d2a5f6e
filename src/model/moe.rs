//! Sparse mixture-of-experts MLPs (Qwen3 MoE, `model_type` `qwen3_moe`): a router
//! (`mlp.gate`, a linear map to one logit per expert) picks for each token the
//! `num_experts_per_tok` experts of highest softmax probability, whose weights are those
//! probabilities (renormalised to sum to 1 when `norm_topk_prob`); the output is the weighted
//! sum of the chosen experts' SwiGLU MLPs (`mlp.experts.E.{gate,up,down}_proj`, the per-expert
//! layout of the hub checkpoints and of transformers' `save_pretrained`). Layers listed in
//! `mlp_only_layers`, or off the `decoder_sparse_step` grid, keep a dense MLP.
//!
//! Not optimised: each expert runs on the rows routed to it, one after the other, with the
//! dense MLP's kernels; correctness over speed.

use super::decoder::{DecoderConfig, Dense, Mlp};
use crate::json_keys::JsonKeys;
use anyhow::{ensure, Result};
use candle_core::{DType, Tensor};
use candle_nn::VarBuilder;

/// The experts of a Qwen3 MoE `config.json`, and which layers route to them.
#[derive(Debug, Clone)]
pub struct MoeConfig {
    pub n_experts: usize,
    /// Experts chosen per token.
    pub top_k: usize,
    /// Whether the chosen experts' probabilities are renormalised to sum to 1.
    pub norm_topk_prob: bool,
    /// Hidden units of each expert.
    pub expert_size: usize,
    /// Which layers have the sparse MLP.
    pub sparse_layers: Vec<bool>,
}

impl MoeConfig {
    /// Reads the expert keys (transformers' defaults when absent); `None` when there are no
    /// experts (`num_experts` 0), so every MLP is dense. The hub's configs name the count
    /// `num_experts`, transformers 5's `save_pretrained` `num_local_experts`.
    pub fn from_keys(keys: &JsonKeys, n_layers: usize) -> Result<Option<Self>> {
        let n_experts = match keys.count("num_experts")? {
            Some(n) => n,
            None => keys.count("num_local_experts")?.unwrap_or(128),
        };
        if n_experts == 0 {
            return Ok(None);
        }
        let top_k = keys.positive("num_experts_per_tok")?.unwrap_or(8);
        ensure!(
            top_k <= n_experts,
            "{}: num_experts_per_tok {top_k} is more than num_experts {n_experts}",
            keys.file()
        );
        let step = keys.positive("decoder_sparse_step")?.unwrap_or(1);
        let dense_only = keys.counts("mlp_only_layers")?.unwrap_or_default();
        Ok(Some(Self {
            n_experts,
            top_k,
            norm_topk_prob: keys.bool("norm_topk_prob")?.unwrap_or(false),
            expert_size: keys.positive("moe_intermediate_size")?.unwrap_or(768),
            sparse_layers: (0..n_layers)
                .map(|l| !dense_only.contains(&l) && (l + 1) % step == 0)
                .collect(),
        }))
    }

    /// Whether `layer` routes its tokens to the experts.
    pub fn is_sparse(&self, layer: usize) -> bool {
        self.sparse_layers.get(layer).copied().unwrap_or(false)
    }
}

/// A sparse MoE MLP: the router and every expert.
pub(super) struct SparseMoe {
    router: Dense,
    experts: Vec<Mlp>,
    top_k: usize,
    norm_topk_prob: bool,
}

/// The rows routed to one expert and the weight of its output on each.
struct Routed {
    rows: Vec<u32>,
    weights: Vec<f64>,
}

impl SparseMoe {
    pub(super) fn load(vb: VarBuilder, cfg: &DecoderConfig, moe: &MoeConfig) -> Result<Self> {
        let experts = (0..moe.n_experts)
            .map(|e| Mlp::load(vb.pp(format!("experts.{e}")), cfg, moe.expert_size))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            router: Dense::load(&vb, &[("gate", moe.n_experts)], cfg.hidden_size, false)?,
            experts,
            top_k: moe.top_k,
            norm_topk_prob: moe.norm_topk_prob,
        })
    }

    /// The MoE MLP with candle tensor operations (any device), `x` `[batch, seq, d]`.
    pub(super) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (b, s, d) = x.dims3()?;
        let rows = x.reshape((b * s, d))?;
        let logits = self.router.forward(&rows.unsqueeze(0)?)?.squeeze(0)?;
        let y = self.mix(&rows, &logits, |mlp, part| {
            Ok(mlp.forward(&part.unsqueeze(0)?)?.squeeze(0)?)
        })?;
        Ok(y.reshape((b, s, d))?)
    }

    /// The same MoE MLP on rows `[n, d]` with the CPU kernels.
    pub(super) fn forward_rows(&self, x: &Tensor) -> Result<Tensor> {
        let logits = self.router.forward_rows(x)?;
        self.mix(x, &logits, |mlp, part| mlp.forward_rows(part))
    }

    /// The weighted sum over each row's chosen experts, each expert run by `run` on the rows
    /// routed to it (in expert order, as transformers adds them).
    fn mix(
        &self,
        rows: &Tensor,
        logits: &Tensor,
        run: impl Fn(&Mlp, &Tensor) -> Result<Tensor>,
    ) -> Result<Tensor> {
        let routes = self.route(&logits.to_dtype(DType::F64)?.to_vec2::<f64>()?);
        let mut out = rows.zeros_like()?;
        for (expert, routed) in self.experts.iter().zip(routes) {
            if routed.rows.is_empty() {
                continue;
            }
            let n = routed.rows.len();
            let ids = Tensor::from_vec(routed.rows, n, rows.device())?;
            let y = run(expert, &rows.index_select(&ids, 0)?.contiguous()?)?;
            let w = Tensor::from_vec(routed.weights, (n, 1), rows.device())?.to_dtype(y.dtype())?;
            out = out.index_add(&ids, &y.broadcast_mul(&w)?, 0)?;
        }
        Ok(out)
    }

    /// Each expert's rows and weights from the router logits `[n, experts]`.
    fn route(&self, logits: &[Vec<f64>]) -> Vec<Routed> {
        let mut routes: Vec<Routed> = (0..self.experts.len())
            .map(|_| Routed {
                rows: Vec::new(),
                weights: Vec::new(),
            })
            .collect();
        for (row, row_logits) in logits.iter().enumerate() {
            for (expert, weight) in top_experts(row_logits, self.top_k, self.norm_topk_prob) {
                routes[expert].rows.push(row as u32);
                routes[expert].weights.push(weight);
            }
        }
        routes
    }
}

/// The `top_k` experts of highest softmax probability over `logits` (ties to the lower index)
/// and their weights: the probabilities, renormalised over the chosen when `renormalise`.
fn top_experts(logits: &[f64], top_k: usize, renormalise: bool) -> Vec<(usize, f64)> {
    let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let exp: Vec<f64> = logits.iter().map(|l| (l - max).exp()).collect();
    let total: f64 = exp.iter().sum();
    let mut order: Vec<usize> = (0..exp.len()).collect();
    order.sort_by(|&a, &b| exp[b].total_cmp(&exp[a]));
    order.truncate(top_k);
    let chosen: f64 = order.iter().map(|&e| exp[e]).sum();
    let norm = if renormalise { chosen } else { total };
    order.into_iter().map(|e| (e, exp[e] / norm)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn top_experts_are_the_most_probable_with_softmax_weights() {
        let logits = [0.0, 2.0, 1.0, 2.0f64.ln() + 2.0];
        let z: f64 = logits.iter().map(|l| l.exp()).sum();
        let chosen = top_experts(&logits, 2, false);
        assert_eq!(chosen.iter().map(|c| c.0).collect::<Vec<_>>(), [3, 1]);
        assert!((chosen[0].1 - logits[3].exp() / z).abs() < 1e-12);
        let renormalised = top_experts(&logits, 2, true);
        assert!((renormalised[0].1 - 2.0 / 3.0).abs() < 1e-12);
        assert!((renormalised[1].1 - 1.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn dense_layers_are_those_listed_or_off_the_sparse_step() {
        let cfg = json!({"num_experts": 8, "num_experts_per_tok": 2,
                         "decoder_sparse_step": 2, "mlp_only_layers": [3]});
        let keys = JsonKeys::new(&cfg, "config.json").unwrap();
        let moe = MoeConfig::from_keys(&keys, 6).unwrap().unwrap();
        assert_eq!(moe.sparse_layers, [false, true, false, false, false, true]);
        let none = json!({"num_experts": 0});
        let keys = JsonKeys::new(&none, "config.json").unwrap();
        assert!(MoeConfig::from_keys(&keys, 6).unwrap().is_none());
    }
}
