//! Passes over the data that gather subgraph examples: batches of windows through model and
//! SAE, each fired position added to every collection still open, and the retry with twice
//! the batches for collections with too few examples for a PCA.

use super::gather::{add_batch, EncodedBatch, Examples, GatherSettings, TokenText};
use crate::activations::{ActivationStream, HookedSae};
use crate::inputs::ResolvedRun;
use crate::pca_solver::COMPONENTS;
use crate::tokenizer::TokenDecoder;
use anyhow::Result;
use candle_core::Device;

/// How a gathering pass reads the data.
pub struct Pass<'a> {
    /// Batches to read at most.
    pub budget: usize,
    /// Windows per batch.
    pub prompts: usize,
    pub settings: GatherSettings,
    pub device: &'a Device,
    pub bar: crate::report::Bar,
}

/// Reads batches of windows through model and SAE, adding examples to `collections`, until
/// every one is done or `pass.budget` batches were read. Returns the batches read.
pub fn gather(
    encoder: &mut HookedSae,
    stream: &mut ActivationStream,
    collections: &mut [Examples],
    pass: &Pass,
) -> Result<u64> {
    let decoder = TokenDecoder::new(encoder.runner.tokenizer.clone(), false);
    let decode = |id: u32| decoder.decode_one(id);
    let (d_in, d_sae) = (encoder.sae.cfg.d_in, encoder.sae.cfg.d_sae);
    let ctx = encoder.runner.context_size;
    let mut read = 0u64;
    while (read as usize) < pass.budget && collections.iter().any(|c| !c.done) {
        let Some(batch) = stream.next_batch(u64::MAX)? else {
            break;
        };
        read += 1;
        pass.bar.inc(1);
        if batch.positions.is_empty() {
            continue;
        }
        let resid = encoder.runner.batch_residual(&batch, pass.device)?;
        let acts = encoder.encode(&resid)?;
        batch.ensure_finite(&acts, d_sae, 0, "SAE activation")?;
        let tokens = batch.all_tokens();
        let mut text = TokenText::new(&decode, tokens.len());
        let view = EncodedBatch {
            tokens: &tokens,
            context_size: ctx,
            positions: &batch.positions,
            acts: &acts,
            d_sae,
        };
        add_batch(
            collections,
            &view,
            &mut text,
            &encoder.sae.w_dec,
            d_in,
            &pass.settings,
        )?;
    }
    Ok(read)
}

/// Gathers `collections` from the start of the data; those with too few examples for a PCA
/// get the original's retry: twice the batches (here: the same windows, continued).
pub fn gather_with_retry(
    encoder: &mut HookedSae,
    resolved: &ResolvedRun,
    collections: &mut [Examples],
    pass: &Pass,
) -> Result<u64> {
    let mut stream =
        encoder
            .runner
            .stream(resolved, pass.prompts, pass.settings.remove_special_tokens)?;
    let mut read = gather(encoder, &mut stream, collections, pass)?;
    let retry_at: Vec<usize> = (0..collections.len())
        .filter(|&i| collections[i].found() < COMPONENTS && !collections[i].done)
        .collect();
    if !retry_at.is_empty() && read as usize == pass.budget {
        let mut retry: Vec<Examples> = retry_at
            .iter()
            .map(|&i| std::mem::take(&mut collections[i]))
            .collect();
        read += gather(encoder, &mut stream, &mut retry, pass)?;
        for (i, mut c) in retry_at.into_iter().zip(retry) {
            c.retried = true;
            collections[i] = c;
        }
    }
    Ok(read)
}
