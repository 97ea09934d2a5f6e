//! The token pass of `stats --config`: a pass through model and SAEs over the config's data
//! that counts, per token, active latents against active subgraphs (`subgraph_l0_any`), for
//! every row (SAE folder and threshold) of an SAE the config names. The model runs once per
//! batch for all of them (one pass per stream group of the config's SAEs), each SAE encodes
//! the batch once for all its rows, and each row's counts equal those of a pass of its own.

use super::{StatsRow, TokenPass, TokenPassOptions};
use crate::activations::{batch_residuals, load_sweep, stream_groups, HookedSae};
use crate::results::layout::{GraphFiles, SaeFolder};
use crate::results::stage::Stage;
use anyhow::{ensure, Context, Result};
use std::collections::BTreeSet;
use std::path::PathBuf;

/// The token pass one row asks for.
pub(super) struct PassRequest {
    /// The row's index among all rows.
    row: usize,
    sae_id: String,
    /// The SAE results folder (its cooc set vouches for the inputs).
    dir: PathBuf,
    threshold: f64,
    /// Subgraph of each latent, from the row's node table.
    subgraph_of: Vec<i64>,
}

/// The token pass request of `row` (number `index` among all rows) of the SAE folder `f`,
/// when the pass config names that SAE and `graphs` wrote the row's node table.
pub(super) fn request_for(
    p: &TokenPassOptions,
    f: &SaeFolder,
    row: &StatsRow,
    index: usize,
) -> Result<Option<PassRequest>> {
    let table = GraphFiles::new(&f.dir, row.threshold).node_table;
    let g = &p.config.generation;
    let named = g.sae_ids.iter().find(|id| {
        crate::io::pyfmt::neat_sae_id(id) == f.sae
            && g.model_name == f.model
            && g.sae_release_short == f.release
    });
    let Some(id) = named.filter(|_| table.is_file()) else {
        return Ok(None);
    };
    let mut subgraph_of = vec![0i64; row.d_sae];
    for r in crate::results::node_table::read_node_table(&table)? {
        if let Some(slot) = subgraph_of.get_mut(r.node_id as usize) {
            *slot = r.subgraph_id;
        }
    }
    Ok(Some(PassRequest {
        row: index,
        sae_id: id.clone(),
        dir: f.dir.clone(),
        threshold: row.threshold,
        subgraph_of,
    }))
}

/// Runs the token passes of `requests` (`p.batches` batches each) and puts each into its row.
pub(super) fn fill_token_passes(
    p: &TokenPassOptions,
    requests: Vec<PassRequest>,
    rows: &mut [StatsRow],
) -> Result<()> {
    if requests.is_empty() {
        return Ok(());
    }
    let (ids, sae_of) = sweep_of(&requests);
    let mut encoders = load_sweep(&p.inputs, &ids)?;
    check_inputs(p, &requests, &sae_of, &encoders)?;
    let mut counters = requests
        .iter()
        .zip(&sae_of)
        .map(|(r, &sae)| SubgraphL0::new(sae, r, &encoders[sae]))
        .collect::<Result<Vec<_>>>()?;
    let bar = crate::report::bar(
        (p.batches * stream_groups(&encoders).len()) as u64,
        &format!("stats token pass {}", ids.join(", ")),
        "batches",
    );
    let mut read = 0;
    for group in stream_groups(&encoders) {
        read += count_group(p, &mut encoders, &group, &mut counters, &bar)?;
    }
    bar.finish_and_clear();
    crate::report::note(format_args!(
        "stats token pass: {read} batches read from the data for {} SAE(s)",
        ids.len()
    ));
    for (r, counter) in requests.iter().zip(counters) {
        rows[r.row].token_pass = Some(counter.result().with_context(|| {
            format!(
                "the token pass of SAE {} at threshold {}",
                r.sae_id, r.threshold
            )
        })?);
    }
    Ok(())
}

/// The SAEs `requests` read, each once in the order first asked for, and the index of each
/// request's SAE among them.
fn sweep_of(requests: &[PassRequest]) -> (Vec<String>, Vec<usize>) {
    let mut ids: Vec<String> = Vec::new();
    let sae_of = requests
        .iter()
        .map(|r| match ids.iter().position(|id| *id == r.sae_id) {
            Some(i) => i,
            None => {
                ids.push(r.sae_id.clone());
                ids.len() - 1
            }
        })
        .collect();
    (ids, sae_of)
}

/// Refuses an SAE, model, tokenizer or dataset other than those `cooc` counted in each
/// request's results folder (`sae_of`: each request's encoder).
fn check_inputs(
    p: &TokenPassOptions,
    requests: &[PassRequest],
    sae_of: &[usize],
    encoders: &[HookedSae],
) -> Result<()> {
    let mut checked = BTreeSet::new();
    for (r, &sae) in requests.iter().zip(sae_of) {
        if checked.insert((&r.sae_id, &r.dir)) {
            let encoder = &encoders[sae];
            crate::harness::check_encoder_inputs(
                &r.dir,
                &p.inputs,
                encoder,
                &r.sae_id,
                Stage::Stats,
            )?;
        }
    }
    Ok(())
}

/// `p.batches` batches of the data read once for the SAEs `group` (which share a stream),
/// each encoded once per batch and counted by every counter of that SAE; returns the batches
/// read.
fn count_group(
    p: &TokenPassOptions,
    encoders: &mut [HookedSae],
    group: &[usize],
    counters: &mut [SubgraphL0],
    bar: &crate::report::Bar,
) -> Result<u64> {
    let inputs = &p.inputs;
    let mut stream = encoders[group[0]].runner.stream(
        inputs,
        inputs.spec.run.prompts_per_batch,
        inputs.spec.remove_special_tokens,
    )?;
    let mut read = 0;
    for _ in 0..p.batches {
        let Some(batch) = stream.next_batch(u64::MAX)? else {
            break;
        };
        read += 1;
        bar.inc(1);
        if batch.positions.is_empty() {
            continue;
        }
        let runners: Vec<_> = group.iter().map(|&s| &encoders[s].runner).collect();
        let resids = batch_residuals(&runners, &batch, &inputs.device)?;
        for (&s, resid) in group.iter().zip(resids) {
            let encoder = &mut encoders[s];
            let d_sae = encoder.sae.cfg.d_sae;
            let acts = encoder.encode(&resid)?;
            batch.ensure_finite(&acts, d_sae, 0, "SAE activation")?;
            for counter in counters.iter_mut().filter(|c| c.sae == s) {
                counter.add(&acts, d_sae);
            }
        }
    }
    Ok(read)
}

/// One row's counts: per token, active latents (`act > t + θ`) and active subgraphs (any
/// latent active).
struct SubgraphL0 {
    /// The SAE counted (index into the sweep).
    sae: usize,
    cut: Vec<f32>,
    subgraph_of: Vec<i64>,
    tokens: u64,
    latent_sum: u64,
    subgraph_sum: u64,
    histogram: Vec<u64>,
    /// Per subgraph, the last token it was counted active on.
    seen: Vec<u64>,
}

impl SubgraphL0 {
    /// The counts of `request`, read with `encoder` (its SAE number `sae` of the sweep),
    /// refused when the node table lists another number of latents.
    fn new(sae: usize, request: &PassRequest, encoder: &HookedSae) -> Result<Self> {
        let d_sae = encoder.sae.cfg.d_sae;
        let subgraph_of = request.subgraph_of.clone();
        ensure!(
            subgraph_of.len() == d_sae,
            "node table has {} latents but SAE {} has {d_sae}",
            subgraph_of.len(),
            request.sae_id
        );
        let subgraphs = subgraph_of.iter().copied().max().unwrap_or(0).max(0) as usize + 1;
        Ok(Self {
            sae,
            cut: crate::sae::threshold_cut(request.threshold, &encoder.sae.threshold),
            subgraph_of,
            tokens: 0,
            latent_sum: 0,
            subgraph_sum: 0,
            histogram: Vec::new(),
            seen: vec![u64::MAX; subgraphs],
        })
    }

    /// Counts the tokens of `acts` (rows of `d_sae` activations).
    fn add(&mut self, acts: &[f32], d_sae: usize) {
        for row in acts.chunks_exact(d_sae) {
            let (mut latents, mut subgraphs) = (0u64, 0usize);
            for (j, &a) in row.iter().enumerate() {
                if crate::sae::is_active(a, self.cut[j]) {
                    latents += 1;
                    let sg = self.subgraph_of[j].max(0) as usize;
                    if self.seen[sg] != self.tokens {
                        self.seen[sg] = self.tokens;
                        subgraphs += 1;
                    }
                }
            }
            if self.histogram.len() <= subgraphs {
                self.histogram.resize(subgraphs + 1, 0);
            }
            self.histogram[subgraphs] += 1;
            self.latent_sum += latents;
            self.subgraph_sum += subgraphs as u64;
            self.tokens += 1;
        }
    }

    /// The means and histogram, refused when no token was read.
    fn result(self) -> Result<TokenPass> {
        ensure!(self.tokens > 0, "the token pass read no tokens");
        Ok(TokenPass {
            tokens: self.tokens,
            latent_l0_mean: self.latent_sum as f64 / self.tokens as f64,
            subgraph_l0_any_mean: self.subgraph_sum as f64 / self.tokens as f64,
            subgraph_l0_any_histogram: self.histogram,
        })
    }
}
