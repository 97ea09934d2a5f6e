//! `saecooc pca`: for the subgraphs of chosen sizes, gather the tokens where they fire, run PCA
//! on the subgraph's reconstructions, and write the h5 files the original's explorer app reads
//! (see docs/formats.md, "PCA h5 files").
//!
//! Deliberate difference: the original ran one pass over the data per subgraph (sharing one
//! shuffled store, so each subgraph saw different text); saecooc gathers every requested
//! subgraph in one shared pass over deterministic windows, stopping when each has
//! `max_examples` or the batch budget is spent. Each subgraph gets exactly the examples a pass
//! of its own over the same windows would give (`--one-pass-per-subgraph` runs it that way).

pub mod gather;
pub mod solver;

use crate::activations::open_device;
use crate::activations::ActivationStream;
use crate::activations::Encoder;
use crate::config::{PcaConfig, StageCommon};
use crate::hub::Hub;
use crate::io::pyfmt::{neat_sae_id, threshold_tag};
use crate::results::h5::{h5_file_name, write_split, SubgraphOutput};
use crate::results::layout::sae_results_dir;
use crate::results::node_table::{read_node_table, NodeRow};
use crate::sources::Sources;
use crate::tokenizer::TokenDecoder;
use anyhow::{bail, Context, Result};
use candle_core::Device;
use gather::{add_batch, top_tokens_and_context, Batch, Examples, GatherSettings, TokenText};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

/// PCA components per subgraph.
pub const COMPONENTS: usize = 3;

/// Command-line options of a `pca` run.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct PcaOptions {
    #[command(flatten)]
    pub common: StageCommon,
    /// Split h5 files larger than this many MB into {stem}_chunk{i}.h5 files (the original's
    /// split_h5; its app reads both).
    #[arg(long, value_name = "MB")]
    pub split_mb: Option<f64>,
    /// Gather each subgraph in a pass of its own, as the original did (slower; same results).
    #[arg(long)]
    pub one_pass_per_subgraph: bool,
}

/// What one SAE's run produced (also written as `pca_run.json` beside the h5 files).
#[derive(Debug, Clone, Serialize)]
pub struct PcaSummary {
    pub sae_id: String,
    /// The node table used (`node_info_df_{ts}.csv`).
    pub activation_threshold: f64,
    /// The subgraph sizes asked for (one h5 file, or its chunks, each).
    pub sizes: Vec<usize>,
    pub files: Vec<PathBuf>,
    pub subgraphs_written: usize,
    /// Subgraphs with too few examples for a PCA, even after the retry.
    pub skipped: Vec<i64>,
    /// Batches of windows run through model and SAE.
    pub batches_read: u64,
    pub seconds: f64,
    pub subgraphs: Vec<SubgraphReport>,
}

/// What was gathered for one subgraph.
#[derive(Debug, Clone, Serialize)]
pub struct SubgraphReport {
    pub subgraph_id: i64,
    pub size: usize,
    pub latents: Vec<u32>,
    pub examples: usize,
    pub retried: bool,
    pub skipped: bool,
    /// Share of the reconstructions' variance along PC1..PC3.
    pub explained_variance_ratio: Vec<f64>,
}

/// Subgraphs of each requested size: `size → [(subgraph id, latents in table order)]`, ids
/// ascending.
pub fn subgraphs_by_size(
    rows: &[NodeRow],
    sizes: &[usize],
) -> BTreeMap<usize, Vec<(i64, Vec<u32>)>> {
    let mut by_id: BTreeMap<i64, (usize, Vec<u32>)> = BTreeMap::new();
    for r in rows.iter().filter(|r| sizes.contains(&r.subgraph_size)) {
        by_id
            .entry(r.subgraph_id)
            .or_insert_with(|| (r.subgraph_size, Vec::new()))
            .1
            .push(r.node_id);
    }
    let mut out: BTreeMap<usize, Vec<(i64, Vec<u32>)>> =
        sizes.iter().map(|&s| (s, Vec::new())).collect();
    for (sid, (size, latents)) in by_id {
        out.entry(size).or_default().push((sid, latents));
    }
    out
}

/// Runs `pca` for every SAE of the config.
pub fn run(config: &PcaConfig, options: &PcaOptions) -> Result<Vec<PcaSummary>> {
    let as_config = config.as_config();
    let hub = Hub::from_env(!options.common.quiet)?;
    let device = open_device(options.common.device.unwrap_or(config.run.device))?;
    let sources = Sources::new(&as_config, &hub, &device);
    config
        .model
        .sae_ids
        .iter()
        .map(|sae_id| {
            run_sae(&sources, config, options, sae_id)
                .with_context(|| format!("pca for SAE {sae_id} failed"))
        })
        .collect()
}

/// How a gathering pass reads the data.
struct Pass<'a> {
    /// Batches to read at most.
    budget: usize,
    /// Windows per batch.
    prompts: usize,
    settings: GatherSettings,
    device: &'a Device,
    bar: indicatif::ProgressBar,
}

/// Reads batches of windows through model and SAE, adding examples to `collections`, until
/// every one is done or `pass.budget` batches were read. Returns the batches read.
fn gather(
    encoder: &mut Encoder,
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
        let view = Batch {
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
fn gather_with_retry(
    encoder: &mut Encoder,
    sources: &Sources,
    collections: &mut [Examples],
    pass: &Pass,
) -> Result<u64> {
    let mut stream =
        encoder
            .runner
            .stream(sources, pass.prompts, pass.settings.remove_special_tokens)?;
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

fn run_sae(
    sources: &Sources,
    config: &PcaConfig,
    options: &PcaOptions,
    sae_id: &str,
) -> Result<PcaSummary> {
    let started = Instant::now();
    let p = &config.processing;
    let root = options
        .common
        .results_dir
        .clone()
        .unwrap_or_else(|| config.run.results_dir.clone());
    let dir = sae_results_dir(
        &root,
        &config.model.name,
        &config.model.sae_release_short,
        sae_id,
        config.generation.n_batches_generation,
    );
    let table = dir.join("dataframes").join(format!(
        "node_info_df_{}.csv",
        threshold_tag(p.activation_threshold)
    ));
    let rows = read_node_table(&table)?;
    let requests = subgraphs_by_size(&rows, &p.subgraph_sizes_to_plot);
    let mut encoder = Encoder::load(sources, sae_id)?;
    let (d_in, d_sae) = (encoder.sae.cfg.d_in, encoder.sae.cfg.d_sae);
    if let Some(bad) = rows.iter().find(|r| r.node_id as usize >= d_sae) {
        bail!(
            "node table {} lists latent {} but SAE {sae_id} has {d_sae} latents",
            table.display(),
            bad.node_id
        );
    }
    let settings = GatherSettings {
        max_examples: p.max_examples,
        trim_excess: p.trim_excess,
        remove_special_tokens: p.remove_special_tokens,
        keep_feature_acts: p.save_options.feature_acts,
    };
    let ids: Vec<(usize, i64)> = requests
        .iter()
        .flat_map(|(&size, list)| list.iter().map(move |(sid, _)| (size, *sid)))
        .collect();
    let mut collections: Vec<Examples> = requests
        .values()
        .flat_map(|list| {
            list.iter()
                .map(|(_, latents)| Examples::new(latents.clone()))
        })
        .collect();
    let budget = p.n_batches_reconstruction;
    let passes = if options.one_pass_per_subgraph {
        collections.len()
    } else {
        1
    };
    let bar = crate::io::progress::bar(
        (budget * passes) as u64,
        options.common.quiet,
        sae_id,
        "batches",
    );
    bar.set_message(format!("{sae_id}: {} subgraphs", collections.len()));
    let pass = Pass {
        budget,
        prompts: config.run.prompts_per_batch,
        settings,
        device: sources.device,
        bar,
    };
    let batches_read = if options.one_pass_per_subgraph {
        let mut read = 0;
        for c in collections.iter_mut() {
            let mut one = [std::mem::take(c)];
            read += gather_with_retry(&mut encoder, sources, &mut one, &pass)?;
            *c = std::mem::take(&mut one[0]);
        }
        read
    } else {
        gather_with_retry(&mut encoder, sources, &mut collections, &pass)?
    };
    pass.bar.finish_and_clear();

    let mut outputs: BTreeMap<usize, Vec<SubgraphOutput>> = BTreeMap::new();
    let mut skipped = Vec::new();
    let mut reports = Vec::new();
    for ((size, sid), examples) in ids.into_iter().zip(collections) {
        let n = examples.found();
        let pca = solver::fit(&examples.reconstructions, n, d_in, COMPONENTS);
        reports.push(SubgraphReport {
            subgraph_id: sid,
            size,
            latents: examples.latents.clone(),
            examples: n,
            retried: examples.retried,
            skipped: pca.is_none(),
            explained_variance_ratio: pca
                .as_ref()
                .map(|p| p.explained_variance_ratio.clone())
                .unwrap_or_default(),
        });
        let Some(pca) = pca else {
            if !options.common.quiet {
                eprintln!(
                    "warning: {sae_id}: subgraph {sid} (size {size}) fired on {n} tokens, too few for a PCA with {COMPONENTS} components; skipped"
                );
            }
            skipped.push(sid);
            continue;
        };
        let pca_scores = pca.transform(&examples.reconstructions, d_in);
        let (top_3_tokens, example_context) = top_tokens_and_context(&examples.rows);
        let mut output = SubgraphOutput {
            subgraph_id: sid,
            tokens: Vec::with_capacity(n),
            contexts: Vec::with_capacity(n),
            batches: Vec::with_capacity(n),
            positions: Vec::with_capacity(n),
            n_latents: examples.latents.len(),
            reconstructions: examples.reconstructions,
            graph_acts: examples.graph_acts,
            feature_acts: examples.feature_acts,
            max_info: examples.max_info,
            top_3_tokens,
            example_context,
            pca_scores,
        };
        for row in examples.rows {
            output.tokens.push(row.str_token);
            output.contexts.push(row.context);
            output.batches.push(row.batch);
            output.positions.push(row.pos);
        }
        outputs.entry(size).or_default().push(output);
    }
    let out_dir = dir.join(format!("{}_pca_for_streamlit", neat_sae_id(sae_id)));
    let mut files = Vec::new();
    let mut written = 0;
    for &size in &p.subgraph_sizes_to_plot {
        let subgraphs = outputs.remove(&size).unwrap_or_default();
        written += subgraphs.len();
        let path = out_dir.join(h5_file_name(p.max_examples, size, budget));
        files.extend(write_split(
            &path,
            &subgraphs,
            &p.save_options,
            d_in,
            d_sae,
            options.split_mb,
        )?);
    }
    let summary = PcaSummary {
        sae_id: sae_id.to_string(),
        activation_threshold: p.activation_threshold,
        sizes: p.subgraph_sizes_to_plot.clone(),
        files,
        subgraphs_written: written,
        skipped,
        batches_read,
        seconds: started.elapsed().as_secs_f64(),
        subgraphs: reports,
    };
    crate::io::atomic::write_bytes(
        &out_dir.join("pca_run.json"),
        &serde_json::to_vec_pretty(&summary)?,
    )?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subgraphs_are_grouped_by_size_in_id_order() {
        let row = |node_id, subgraph_id, subgraph_size| NodeRow {
            node_id,
            subgraph_id,
            subgraph_size,
        };
        let rows = [
            row(0, 0, 1),
            row(1, 1, 3),
            row(763, 1, 3),
            row(718, 1, 3),
            row(2, 2, 2),
            row(9, 3, 2),
            row(4, 2, 2),
            row(5, 3, 2),
        ];
        let by_size = subgraphs_by_size(&rows, &[2, 3, 7]);
        assert_eq!(by_size[&3], [(1, vec![1, 763, 718])]);
        assert_eq!(by_size[&2], [(2, vec![2, 4]), (3, vec![9, 5])]);
        assert!(by_size[&7].is_empty());
    }
}
