//! Sweeps: several SAEs of one model read from one forward pass per batch. The model is
//! loaded once, to the deepest hook any of them reads; SAEs that read the same windows (same
//! dataset, window length and window tokens) share a stream, and each batch's activations at
//! all their hooks come from one pass, each bit for bit what a run of that SAE alone reads.

use super::{residuals, Batch, HookReads, HookedSae, ModelRunner};
use crate::inputs::ResolvedRun;
use crate::model::{self, HookPoint};
use anyhow::{ensure, Context, Result};
use candle_core::{Device, Tensor};
use std::sync::Arc;

/// Loads the SAEs `sae_ids` and one model, to the deepest of their hooks, that all of them
/// read (in the order given).
pub fn load_sweep(run: &ResolvedRun, sae_ids: &[String]) -> Result<Vec<HookedSae>> {
    let saes = sae_ids
        .iter()
        .map(|id| run.load_sae(id))
        .collect::<Result<Vec<_>>>()?;
    let hooks = saes
        .iter()
        .map(|sae| HookPoint::parse(&sae.cfg.hook_name))
        .collect::<Result<Vec<_>>>()?;
    let dtype = run.spec.run.dtype.on(&run.device)?;
    let model: Arc<dyn model::ResidualModel> = Arc::from(model::load_model_for(
        &run.model,
        &hooks,
        &run.device,
        dtype,
    )?);
    saes.into_iter()
        .zip(hooks)
        .map(|(sae, hook)| {
            let reads = HookReads {
                hook,
                sae_centring: sae.cfg.center_writing_weights,
                context_size: sae.cfg.context_size,
                prepend_bos: sae.cfg.prepend_bos,
            };
            let dataset = run.dataset_location(&sae)?;
            let runner = ModelRunner::with_model(run, Arc::clone(&model), reads, dataset)?;
            HookedSae::pair(runner, sae)
        })
        .collect()
}

/// The SAEs of `saes` that can share a stream, as lists of indices: each list the SAEs that
/// read the same windows as its first, lists in order of their first SAE.
pub fn stream_groups(saes: &[HookedSae]) -> Vec<Vec<usize>> {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (i, sae) in saes.iter().enumerate() {
        let shared = groups
            .iter_mut()
            .find(|g| saes[g[0]].runner.shares_stream_with(&sae.runner));
        match shared {
            Some(group) => group.push(i),
            None => groups.push(vec![i]),
        }
    }
    groups
}

/// The activations each of `runners` reads at the read positions of `batch`, from one
/// forward pass (see [`ModelRunner::batch_residual`]); the runners must share their stream.
pub fn batch_residuals(
    runners: &[&ModelRunner],
    batch: &Batch,
    device: &Device,
) -> Result<Vec<Tensor>> {
    let first = runners.first().context("internal: no runner to read")?;
    ensure!(
        runners.iter().all(|r| r.shares_stream_with(first)),
        "internal: runners that read different windows share a pass"
    );
    let read = residuals(runners, &batch.windows, &batch.positions, device)?;
    for (runner, resid) in runners.iter().zip(&read) {
        runner.check_finite(resid, batch)?;
    }
    Ok(read)
}
