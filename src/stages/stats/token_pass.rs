//! The token pass of `stats --config`: a pass through model and SAE over the config's data
//! that counts, per token, active latents against active subgraphs (`subgraph_l0_any`).

use super::{TokenPass, TokenPassOptions};
use crate::results::stage::Stage;
use anyhow::{ensure, Result};
use std::path::Path;

/// Per token: active latents (`act > t + θ`) and active subgraphs (any latent active), over
/// `batches` batches of the config's data for SAE `sae_id`; `subgraph_of[latent]` from its node
/// table.
fn subgraph_l0_pass(
    inputs: &crate::inputs::ResolvedRun,
    dir: &Path,
    sae_id: &str,
    threshold: f64,
    subgraph_of: &[i64],
    batches: usize,
) -> Result<TokenPass> {
    let mut encoder = crate::activations::HookedSae::load(inputs, sae_id)?;
    crate::harness::check_encoder_inputs(dir, inputs, &encoder, sae_id, Stage::Stats)?;
    let d_sae = encoder.sae.cfg.d_sae;
    ensure!(
        subgraph_of.len() == d_sae,
        "node table has {} latents but SAE {sae_id} has {d_sae}",
        subgraph_of.len()
    );
    let cut = crate::sae::threshold_cut(threshold, &encoder.sae.threshold);
    let mut stream = encoder.runner.stream(
        inputs,
        inputs.spec.run.prompts_per_batch,
        inputs.spec.remove_special_tokens,
    )?;
    let (mut tokens, mut latent_sum, mut subgraph_sum) = (0u64, 0u64, 0u64);
    let mut histogram: Vec<u64> = Vec::new();
    let mut seen: Vec<u64> =
        vec![u64::MAX; subgraph_of.iter().copied().max().unwrap_or(0).max(0) as usize + 1];
    for _ in 0..batches {
        let Some(batch) = stream.next_batch(u64::MAX)? else {
            break;
        };
        if batch.positions.is_empty() {
            continue;
        }
        let resid = encoder.runner.batch_residual(&batch, &inputs.device)?;
        let acts = encoder.encode(&resid)?;
        batch.ensure_finite(&acts, d_sae, 0, "SAE activation")?;
        for row in acts.chunks_exact(d_sae) {
            let (mut latents, mut subgraphs) = (0u64, 0usize);
            for (j, &a) in row.iter().enumerate() {
                if crate::sae::is_active(a, cut[j]) {
                    latents += 1;
                    let sg = subgraph_of[j].max(0) as usize;
                    if seen[sg] != tokens {
                        seen[sg] = tokens;
                        subgraphs += 1;
                    }
                }
            }
            if histogram.len() <= subgraphs {
                histogram.resize(subgraphs + 1, 0);
            }
            histogram[subgraphs] += 1;
            latent_sum += latents;
            subgraph_sum += subgraphs as u64;
            tokens += 1;
        }
    }
    ensure!(tokens > 0, "the token pass read no tokens");
    Ok(TokenPass {
        tokens,
        latent_l0_mean: latent_sum as f64 / tokens as f64,
        subgraph_l0_any_mean: subgraph_sum as f64 / tokens as f64,
        subgraph_l0_any_histogram: histogram,
    })
}

/// The token pass for one SAE folder, when the pass config names that SAE.
pub(super) fn token_pass_for(
    p: &TokenPassOptions,
    f: &crate::results::layout::SaeFolder,
    table: &Path,
    threshold: f64,
    d_sae: usize,
) -> Result<Option<TokenPass>> {
    let g = &p.config.generation;
    let Some(id) = g.sae_ids.iter().find(|id| {
        crate::io::pyfmt::neat_sae_id(id) == f.sae
            && g.model_name == f.model
            && g.sae_release_short == f.release
    }) else {
        return Ok(None);
    };
    let mut subgraph_of = vec![0i64; d_sae];
    for r in crate::results::node_table::read_node_table(table)? {
        if let Some(slot) = subgraph_of.get_mut(r.node_id as usize) {
            *slot = r.subgraph_id;
        }
    }
    Ok(Some(subgraph_l0_pass(
        &p.inputs,
        &f.dir,
        id,
        threshold,
        &subgraph_of,
        p.batches,
    )?))
}
