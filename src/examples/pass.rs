//! Passes over the data that gather subgraph examples, for one SAE or a sweep of them: batches
//! of windows through the model once (one stream per stream group of the sweep), each SAE that
//! still has an open collection encoding them, each fired position added to every collection
//! still open, and the retry with twice the batches for collections with too few examples for
//! a PCA.
//!
//! Every collection gets exactly the batches a run of its SAE alone would give it: a [`Track`]
//! replays, over the shared batches, the rules of one SAE's pass (its budget, its early stop,
//! its retry continuing the same windows).

use super::gather::{add_batch, EncodedBatch, Examples, GatherSettings, TokenText};
use crate::activations::{batch_residuals, stream_groups, Batch, HookedSae};
use crate::inputs::ResolvedRun;
use crate::pca_solver::COMPONENTS;
use crate::tokenizer::TokenDecoder;
use anyhow::Result;
use candle_core::Device;
use std::collections::BTreeMap;

/// How a gathering pass reads the data.
pub struct Pass<'a> {
    /// Batches to read at most (per pass of an SAE; twice that with the retry).
    pub budget: usize,
    /// Windows per batch.
    pub prompts: usize,
    pub settings: GatherSettings,
    pub device: &'a Device,
    /// Names the pass on the bar (e.g. its SAEs).
    pub label: String,
    /// Counts the batches read from the data, once each whatever the SAEs reading them.
    pub bar: crate::report::Bar,
}

/// One SAE's share of a gathering pass: its collections and how they are read.
#[derive(Debug, Default)]
pub struct SaeGathering {
    pub collections: Vec<Examples>,
    /// Each collection gets a pass of its own (its own budget and retry) instead of one pass
    /// shared by all (same examples either way; the original's way).
    pub pass_each: bool,
    /// Batches this SAE's passes read (summed over its passes), once gathered.
    pub batches_read: u64,
}

impl SaeGathering {
    /// `collections` to gather in one shared pass, or (`pass_each`) in a pass each.
    pub fn new(collections: Vec<Examples>, pass_each: bool) -> Self {
        Self {
            collections,
            pass_each,
            batches_read: 0,
        }
    }

    /// Collections not done yet.
    fn open(&self) -> usize {
        self.collections.iter().filter(|c| !c.done).count()
    }
}

/// Gathers the collections of every SAE of `encoders` (`work[i]` for `encoders[i]`): one pass
/// over the data per stream group, ending when every SAE's passes have ended. Returns the
/// batches read from the data (each once, however many SAEs read it).
pub fn gather_sweep(
    encoders: &mut [HookedSae],
    work: &mut [SaeGathering],
    resolved: &ResolvedRun,
    pass: &Pass,
) -> Result<u64> {
    let mut read = 0;
    for group in stream_groups(encoders) {
        read += gather_group(encoders, work, &group, resolved, pass)?;
    }
    Ok(read)
}

/// The pass of one stream group (`group`: indices of SAEs that read the same windows);
/// returns the batches it read.
fn gather_group(
    encoders: &mut [HookedSae],
    work: &mut [SaeGathering],
    group: &[usize],
    resolved: &ResolvedRun,
    pass: &Pass,
) -> Result<u64> {
    let first = &encoders[group[0]].runner;
    let mut stream = first.stream(resolved, pass.prompts, pass.settings.remove_special_tokens)?;
    let decoder = TokenDecoder::new(first.tokenizer.clone(), false);
    let mut tracks: Vec<Track> = group
        .iter()
        .flat_map(|&s| Track::all_of(s, &work[s]))
        .collect();
    let mut read = 0;
    loop {
        for t in tracks.iter_mut() {
            t.settle(&mut work[t.sae].collections, pass.budget);
        }
        if tracks.iter().all(|t| t.finished) {
            break;
        }
        let Some(batch) = stream.next_batch(u64::MAX)? else {
            break;
        };
        read += 1;
        pass.bar.inc(1);
        feed(encoders, work, &tracks, &batch, &decoder, pass)?;
        for t in tracks.iter_mut().filter(|t| !t.finished) {
            t.read += 1;
            t.read_in_phase += 1;
        }
        show_open(work, group, pass);
    }
    for mut t in tracks {
        t.finish(&mut work[t.sae].collections);
        work[t.sae].batches_read += t.read;
    }
    Ok(read)
}

/// Says on the bar how many collections of the group are still open.
fn show_open(work: &[SaeGathering], group: &[usize], pass: &Pass) {
    let open: usize = group.iter().map(|&s| work[s].open()).sum();
    let all: usize = group.iter().map(|&s| work[s].collections.len()).sum();
    pass.bar
        .set_message(format!("{}: {open}/{all} subgraphs open", pass.label));
}

/// Encodes `batch` with every SAE whose passes read it and adds its fired positions to the
/// collections those passes feed; one forward pass serves them all.
fn feed(
    encoders: &mut [HookedSae],
    work: &mut [SaeGathering],
    tracks: &[Track],
    batch: &Batch,
    decoder: &TokenDecoder,
    pass: &Pass,
) -> Result<()> {
    if batch.positions.is_empty() {
        return Ok(());
    }
    let mut fed: BTreeMap<usize, Vec<bool>> = BTreeMap::new();
    for t in tracks.iter().filter(|t| !t.finished) {
        let mask = fed
            .entry(t.sae)
            .or_insert_with(|| vec![false; work[t.sae].collections.len()]);
        t.open.iter().for_each(|&i| mask[i] = true);
    }
    let runners: Vec<_> = fed.keys().map(|&s| &encoders[s].runner).collect();
    let resids = batch_residuals(&runners, batch, pass.device)?;
    let tokens = batch.all_tokens();
    let decode = |id: u32| decoder.decode_one(id);
    let mut text = TokenText::new(&decode, tokens.len());
    for ((s, mask), resid) in fed.into_iter().zip(resids) {
        let encoder = &mut encoders[s];
        let (d_in, d_sae) = (encoder.sae.cfg.d_in, encoder.sae.cfg.d_sae);
        let acts = encoder.encode(&resid)?;
        batch.ensure_finite(&acts, d_sae, 0, "SAE activation")?;
        let view = EncodedBatch {
            tokens: &tokens,
            context_size: encoder.runner.context_size,
            positions: &batch.positions,
            acts: &acts,
            d_sae,
        };
        let open = work[s]
            .collections
            .iter_mut()
            .zip(mask)
            .filter_map(|(c, m)| m.then_some(c));
        add_batch(
            open,
            &view,
            &mut text,
            &encoder.sae.w_dec,
            d_in,
            &pass.settings,
        )?;
    }
    Ok(())
}

/// One pass of one SAE over the shared batches, as a run of that SAE alone reads it: from
/// the start of the data, until each of its collections is done or `budget` batches were read;
/// then, when that spent the budget, a retry over the next `budget` batches for the
/// collections with too few examples for a PCA.
#[derive(Debug)]
struct Track {
    sae: usize,
    /// The collections of the pass (indices into the SAE's).
    members: Vec<usize>,
    /// Those it feeds now: all members, then those retried.
    open: Vec<usize>,
    /// Batches read in the current phase (first pass or retry).
    read_in_phase: usize,
    /// Batches read in all.
    read: u64,
    retrying: bool,
    finished: bool,
}

impl Track {
    /// The passes of SAE `sae`: one over all its collections, or one each.
    fn all_of(sae: usize, work: &SaeGathering) -> Vec<Track> {
        let all: Vec<usize> = (0..work.collections.len()).collect();
        let passes = if work.pass_each {
            all.into_iter().map(|i| vec![i]).collect()
        } else {
            vec![all]
        };
        passes
            .into_iter()
            .map(|members| Track {
                sae,
                open: members.clone(),
                members,
                read_in_phase: 0,
                read: 0,
                retrying: false,
                finished: false,
            })
            .collect()
    }

    /// Whether the pass reads the next batch in its current phase.
    fn wants(&self, collections: &[Examples], budget: usize) -> bool {
        self.read_in_phase < budget && self.open.iter().any(|&i| !collections[i].done)
    }

    /// Moves to the retry, or to the end, once the current phase wants no more batches.
    fn settle(&mut self, collections: &mut [Examples], budget: usize) {
        if self.finished || self.wants(collections, budget) {
            return;
        }
        if !self.retrying {
            let short: Vec<usize> = self
                .members
                .iter()
                .copied()
                .filter(|&i| collections[i].found() < COMPONENTS && !collections[i].done)
                .collect();
            if !short.is_empty() && self.read_in_phase == budget {
                self.open = short;
                self.retrying = true;
                self.read_in_phase = 0;
                if self.wants(collections, budget) {
                    return;
                }
            }
        }
        self.finish(collections);
    }

    /// Ends the pass (also at the end of the data): the collections of a retry are marked
    /// retried.
    fn finish(&mut self, collections: &mut [Examples]) {
        if self.retrying && !self.finished {
            self.open
                .iter()
                .for_each(|&i| collections[i].retried = true);
        }
        self.finished = true;
    }
}
