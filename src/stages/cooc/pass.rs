//! One counting pass over the data for several SAEs that read the same windows: each batch is
//! read once and run through the model once, to the deepest of their hooks, and every SAE
//! encodes and counts its own activations. The budget and the stopping point are those of a
//! run of one SAE; an SAE resumed from a later checkpoint joins when the pass reaches it.

use super::sae_count::{PassEnd, PassSettings, SaeCount, Start};
use crate::activations::{batch_residuals, ActivationStream, Batch};
use crate::report::PassProgress;
use crate::results::manifest::BatchRule;
use anyhow::{ensure, Result};
use std::sync::Arc;
use std::time::Instant;

/// Counts the batches of `stream` into every SAE of `saes` until the run's budget is met or the
/// data runs out, saving checkpoints every `--checkpoint-every` batches; `progress` has an item
/// per SAE.
pub(super) fn count_pass(
    settings: &PassSettings,
    saes: &mut [SaeCount],
    stream: &mut ActivationStream,
    progress: &PassProgress,
) -> Result<PassEnd> {
    let config = settings.config;
    let rule = BatchRule::of(config);
    let first = earliest_start(saes);
    let skip_started = Instant::now();
    stream.skip_windows(first.windows)?;
    share_time(saes, skip_started, |t| &mut t.tokenize_s);
    let (mut tokens, mut batches) = (first.tokens, first.batches);
    let mut joined = Vec::new();
    while !rule.done(config, tokens, batches) {
        let read_started = Instant::now();
        let Some(mut batch) = stream.next_batch(rule.budget(config, tokens))? else {
            break;
        };
        join(saes, &mut joined, batch.first_window, (tokens, batches))?;
        share_time(&mut saes[..], read_started, |t| &mut t.tokenize_s);
        tokens += batch.positions.len() as u64;
        batches += 1;
        if let Some(s) = settings.options.shard {
            batch.retain_windows(|w| w % s.count as u64 == s.index as u64);
        }
        if !batch.positions.is_empty() {
            count_batch(settings, saes, &joined, batch)?;
        }
        let position = match rule {
            BatchRule::FirstTokens => tokens,
            BatchRule::SpecialRemoved => batches,
        };
        joined.iter().for_each(|&i| progress.set(i, position));
        let every = settings.options.checkpoint_every as u64;
        if every > 0 && batches.is_multiple_of(every) && !rule.done(config, tokens, batches) {
            for &i in &joined {
                saes[i].save_checkpoint((tokens, batches, stream.windows_read()))?;
            }
        }
    }
    Ok(PassEnd {
        tokens,
        batches,
        windows_read: stream.windows_read(),
        data_exhausted: !rule.done(config, tokens, batches),
    })
}

/// The earliest start among `saes`: where the pass begins reading.
fn earliest_start(saes: &[SaeCount]) -> Start {
    saes.iter()
        .map(|s| s.start)
        .min_by_key(|s| s.windows)
        .unwrap_or_default()
}

/// Adds to `joined` (indices into `saes`, the SAEs counting) those that start with the batch at
/// window `first_window`, read after `counted` (tokens, batches). One that starts there must
/// have been checkpointed at that very batch and count, else its checkpoint does not belong to
/// this data.
fn join(
    saes: &[SaeCount],
    joined: &mut Vec<usize>,
    first_window: u64,
    counted: (u64, u64),
) -> Result<()> {
    for (i, sae) in saes.iter().enumerate() {
        if joined.contains(&i) || sae.start.windows > first_window {
            continue;
        }
        ensure!(
            sae.start.windows == first_window && (sae.start.tokens, sae.start.batches) == counted,
            "the checkpoint of SAE {} stops at window {} after {} tokens in {} batches, but the data has a batch at window {first_window} after {} tokens in {} batches: rerun it without --resume",
            sae.sae_id,
            sae.start.windows,
            sae.start.tokens,
            sae.start.batches,
            counted.0,
            counted.1
        );
        joined.push(i);
    }
    Ok(())
}

/// Runs the model once on `batch` for the SAEs `joined` and has each encode and count its own
/// activations.
fn count_batch(
    settings: &PassSettings,
    saes: &mut [SaeCount],
    joined: &[usize],
    batch: Batch,
) -> Result<()> {
    let forward_started = Instant::now();
    let runners: Vec<_> = joined.iter().map(|&i| &saes[i].inputs.runner).collect();
    let read = batch_residuals(&runners, &batch, &settings.resolved.device)?;
    for &i in joined {
        let t = &mut saes[i].timings;
        t.forward_s += forward_started.elapsed().as_secs_f64();
    }
    let batch = Arc::new(batch);
    for (&i, resid) in joined.iter().zip(read) {
        let sae = &mut saes[i];
        sae.count_batch(&batch, resid)?;
    }
    Ok(())
}

/// Adds the time since `since` to the timing `field` of every SAE of `saes` (work they share).
fn share_time(
    saes: &mut [SaeCount],
    since: Instant,
    field: impl Fn(&mut crate::results::manifest::Timings) -> &mut f64,
) {
    let seconds = since.elapsed().as_secs_f64();
    for sae in saes {
        *field(&mut sae.timings) += seconds;
    }
}
