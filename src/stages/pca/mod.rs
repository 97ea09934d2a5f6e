//! `saecooc pca`: for the subgraphs of chosen sizes, gather the tokens where they fire, run PCA
//! on the subgraph's reconstructions, and write the h5 files the original's explorer app reads
//! (see docs/formats.md, "PCA h5 files").
//!
//! Deliberate difference: the original ran one pass over the data per subgraph (sharing one
//! shuffled store, so each subgraph saw different text); saecooc gathers every requested
//! subgraph in one shared pass over deterministic windows, stopping when each has
//! `max_examples` or the batch budget is spent. Each subgraph gets exactly the examples a pass
//! of its own over the same windows would give (`--one-pass-per-subgraph` runs it that way).

use crate::activations::{load_sweep, HookedSae};
use crate::config::{PcaConfig, Processing, StageCommon};
use crate::examples::gather::{top_tokens_and_context, Examples, GatherSettings};
use crate::examples::pass::{gather_sweep, Pass, SaeGathering};
use crate::harness::{locate_node_table, lock_folder, publish, NodeTableInput, SetSummary};
use crate::inputs::{resolve, InputSpec, ResolveOptions, ResolvedRun};
use crate::io::pyfmt::neat_sae_id;
use crate::pca_solver;
use crate::results::h5::{h5_file_name, write_split, SubgraphOutput};
use crate::results::layout::{pca_dir_name, pca_manifest, pca_ownership, sae_results_dir};
use crate::results::lock::FolderLock;
use crate::results::manifest::{RunInfo, RunStart};
use crate::results::node_table::NodeRow;
use crate::results::set::{SetRecord, Staging};
use crate::results::stage::Stage;
use anyhow::{ensure, Context, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::time::Instant;

pub use crate::pca_solver::COMPONENTS;

/// Command-line options of a `pca` run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PcaOptions {
    pub common: StageCommon,
    /// Split h5 files larger than this many MB into {stem}_chunk{i}.h5 files (the original's
    /// split_h5; its app reads both).
    pub split_mb: Option<f64>,
    /// Gather each subgraph in a pass of its own, as the original did (slower; same results).
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
    pub h5_files: Vec<PathBuf>,
    pub subgraphs_written: usize,
    /// Subgraphs with too few examples for a PCA, even after the retry.
    pub skipped: Vec<i64>,
    /// Batches of windows run through model and SAE.
    pub batches_read: u64,
    pub seconds: f64,
    pub subgraphs: Vec<SubgraphReport>,
    /// How, when and by which build the run was made.
    pub run_info: Option<RunInfo>,
    /// The set's files with sizes and SHA-256, and the graphs set it was computed from.
    #[serde(flatten)]
    pub set: SetRecord,
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

/// Subgraphs of each requested size: `size → [(subgraph id, latents in table order)]`.
pub type SizeRequests = BTreeMap<usize, Vec<(i64, Vec<u32>)>>;

/// Subgraphs of each requested size, ids ascending.
pub fn subgraphs_by_size(rows: &[NodeRow], sizes: &[usize]) -> SizeRequests {
    let mut by_id: BTreeMap<i64, (usize, Vec<u32>)> = BTreeMap::new();
    for r in rows.iter().filter(|r| sizes.contains(&r.subgraph_size)) {
        by_id
            .entry(r.subgraph_id)
            .or_insert_with(|| (r.subgraph_size, Vec::new()))
            .1
            .push(r.node_id);
    }
    let mut out: SizeRequests = sizes.iter().map(|&s| (s, Vec::new())).collect();
    for (sid, (size, latents)) in by_id {
        out.entry(size).or_default().push((sid, latents));
    }
    out
}

/// Runs `pca` for every SAE of the config: each SAE prepared (folder locked, node table read,
/// subgraphs chosen) and model and SAEs loaded and checked before any data is read, then one
/// gathering pass over the data for them all, then each SAE fitted and published.
pub fn run(config: &PcaConfig, options: &PcaOptions) -> Result<Vec<PcaSummary>> {
    let started = Instant::now();
    let run_start = RunStart::now();
    if let Some(mb) = options.split_mb {
        crate::config::check_finite("--split-mb", mb, (Bound::Excluded(0.0), Bound::Unbounded))?;
    }
    let resolved = resolve(
        InputSpec::of_pca(config),
        &ResolveOptions {
            device: options.common.device,
            stage: Some("pca"),
        },
    )?;
    let ids = &config.model.sae_ids;
    let saes = ids
        .iter()
        .map(|sae_id| PreparedSae::new(config, options, sae_id).with_context(|| failed(sae_id)))
        .collect::<Result<Vec<_>>>()?;
    let mut encoders = load_sweep(&resolved, ids)?;
    for (sae, encoder) in saes.iter().zip(&encoders) {
        (sae.input)
            .check_encoder(&resolved, encoder, &sae.sae_id, Stage::Pca)
            .with_context(|| failed(&sae.sae_id))?;
    }
    let gathered = gather_requests(&mut encoders, &resolved, config, options, &saes)?;
    saes.into_iter()
        .zip(&encoders)
        .zip(gathered)
        .map(|((sae, encoder), gathered)| {
            let sae_id = sae.sae_id.clone();
            let (d_in, d_sae) = (encoder.sae.cfg.d_in, encoder.sae.cfg.d_sae);
            sae.finish(
                config,
                options,
                gathered,
                (d_in, d_sae),
                (started, run_start),
            )
            .with_context(|| failed(&sae_id))
        })
        .collect()
}

/// The context of an error in SAE `sae_id`'s part of the run.
fn failed(sae_id: &str) -> String {
    format!("pca for SAE {sae_id} failed")
}

/// One SAE of a `pca` run before any data is read: its results folder locked, its node table
/// read (its graphs set checked) and the subgraphs to gather chosen.
struct PreparedSae {
    sae_id: String,
    lock: FolderLock,
    input: NodeTableInput,
    requests: SizeRequests,
}

impl PreparedSae {
    fn new(config: &PcaConfig, options: &PcaOptions, sae_id: &str) -> Result<Self> {
        let p = &config.processing;
        let dir = sae_results_dir(
            &options.common.results_root(&config.run),
            &config.model.name,
            &config.model.sae_release_short,
            sae_id,
            config.generation.n_batches_generation,
        );
        let table = locate_node_table(&dir, p.activation_threshold, "this SAE")?;
        let lock = lock_folder(&dir, Stage::Pca)?;
        let input = NodeTableInput::read(dir, table)?;
        let requests = requests_with_subgraphs(
            subgraphs_by_size(&input.rows, &p.subgraph_sizes_to_plot),
            &input.rows,
            &input.table,
        )?;
        Ok(Self {
            sae_id: sae_id.to_string(),
            lock,
            input,
            requests,
        })
    }

    /// Empty collections for the requested subgraphs (size order, then id order).
    fn collections(&self) -> Vec<Examples> {
        (self.requests.values())
            .flat_map(|list| {
                list.iter()
                    .map(|(_, latents)| Examples::new(latents.clone()))
            })
            .collect()
    }

    /// Fits the PCA of each gathered subgraph, writes the h5 files and publishes the set with
    /// its manifest (`pca_run.json`); `times`: when the run started.
    fn finish(
        self,
        config: &PcaConfig,
        options: &PcaOptions,
        gathered: SaeGathering,
        (d_in, d_sae): (usize, usize),
        (started, run_start): (Instant, RunStart),
    ) -> Result<PcaSummary> {
        let (p, sae_id) = (&config.processing, self.sae_id.as_str());
        let fitted = fit_subgraphs(&self.requests, gathered.collections, d_in, sae_id);
        let neat = neat_sae_id(sae_id);
        let staging = self.input.begin_staging(
            &self.lock,
            Stage::Pca,
            &pca_manifest(&neat),
            pca_ownership(&neat),
        )?;
        let h5_files = write_h5_files(
            (&staging, &self.input.dir),
            &neat,
            &self.requests,
            fitted.outputs,
            p,
            (d_in, d_sae),
            options.split_mb,
        )?;
        let mut summary = PcaSummary {
            sae_id: sae_id.to_string(),
            activation_threshold: p.activation_threshold,
            sizes: self.requests.keys().copied().collect(),
            h5_files,
            subgraphs_written: fitted.written,
            skipped: fitted.skipped,
            batches_read: gathered.batches_read,
            seconds: started.elapsed().as_secs_f64(),
            subgraphs: fitted.reports,
            run_info: None,
            set: SetRecord::default(),
        };
        summary.run_info = Some(run_start.finish(serde_json::json!({
            "config": config,
            "options": options,
            "sae_id": sae_id,
            "results_dir": self.input.dir,
        })));
        publish(staging, &mut summary)?;
        Ok(summary)
    }
}

impl SetSummary for PcaSummary {
    fn set_mut(&mut self) -> &mut SetRecord {
        &mut self.set
    }
}

/// Gathers the examples of every requested subgraph of every SAE of `saes` (`encoders`, same
/// order) in one pass over the data, each SAE's subgraphs in one shared pass of that SAE or,
/// with `--one-pass-per-subgraph`, in a pass each.
fn gather_requests(
    encoders: &mut [HookedSae],
    resolved: &ResolvedRun,
    config: &PcaConfig,
    options: &PcaOptions,
    saes: &[PreparedSae],
) -> Result<Vec<SaeGathering>> {
    let p = &config.processing;
    let mut work: Vec<SaeGathering> = saes
        .iter()
        .map(|sae| SaeGathering::new(sae.collections(), options.one_pass_per_subgraph))
        .collect();
    let ids: Vec<&str> = saes.iter().map(|sae| sae.sae_id.as_str()).collect();
    let label = format!("pca {}", ids.join(", "));
    let pass = Pass {
        budget: p.n_batches_reconstruction,
        prompts: config.run.prompts_per_batch,
        settings: GatherSettings::of(p),
        device: &resolved.device,
        bar: crate::report::bar(p.n_batches_reconstruction as u64, &label, "batches"),
        label,
    };
    let read = gather_sweep(encoders, &mut work, resolved, &pass)
        .with_context(|| format!("pca gathering for SAEs {} failed", ids.join(", ")))?;
    pass.bar.finish_and_clear();
    crate::report::note(format_args!(
        "{}: {read} batches read from the data for {} SAE(s)",
        pass.label,
        ids.len()
    ));
    Ok(work)
}

/// The PCA of every gathered subgraph: the h5 outputs by size, the subgraphs skipped for too
/// few examples, and a report of each.
struct Fitted {
    outputs: BTreeMap<usize, Vec<SubgraphOutput>>,
    written: usize,
    skipped: Vec<i64>,
    reports: Vec<SubgraphReport>,
}

/// Fits the PCA of each subgraph of `requests` on its `collections` entry (same order).
fn fit_subgraphs(
    requests: &SizeRequests,
    collections: Vec<Examples>,
    d_in: usize,
    sae_id: &str,
) -> Fitted {
    let ids = requests
        .iter()
        .flat_map(|(&size, list)| list.iter().map(move |(sid, _)| (size, *sid)));
    let mut fitted = Fitted {
        outputs: BTreeMap::new(),
        written: 0,
        skipped: Vec::new(),
        reports: Vec::new(),
    };
    for ((size, sid), examples) in ids.zip(collections) {
        let n = examples.found();
        let pca = pca_solver::fit(&examples.reconstructions, n, d_in, COMPONENTS);
        fitted.reports.push(SubgraphReport {
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
            crate::report::note(format_args!(
                    "warning: {sae_id}: subgraph {sid} (size {size}) fired on {n} tokens, too few for a PCA with {COMPONENTS} components; skipped"
                ));
            fitted.skipped.push(sid);
            continue;
        };
        let output = subgraph_output(sid, examples, &pca, d_in);
        fitted.written += 1;
        fitted.outputs.entry(size).or_default().push(output);
    }
    fitted
}

/// One subgraph's h5 group: its examples, their texts and their PC scores.
fn subgraph_output(
    sid: i64,
    examples: Examples,
    pca: &pca_solver::Pca,
    d_in: usize,
) -> SubgraphOutput {
    let n = examples.found();
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
    output
}

/// Writes one h5 file (or its chunks) per requested size into the staging folder (a size
/// whose subgraphs were all skipped gets a file without subgraphs); returns
/// where they will lie once published from `staging` into the results folder `dir`.
fn write_h5_files(
    (staging, dir): (&Staging, &Path),
    neat: &str,
    requests: &SizeRequests,
    mut outputs: BTreeMap<usize, Vec<SubgraphOutput>>,
    p: &Processing,
    (d_in, d_sae): (usize, usize),
    split_mb: Option<f64>,
) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for &size in requests.keys() {
        let subgraphs = outputs.remove(&size).unwrap_or_default();
        let name = h5_file_name(p.max_examples, size, p.n_batches_reconstruction);
        let path = staging.root().join(pca_dir_name(neat)).join(&name);
        for staged in write_split(&path, &subgraphs, &p.save_options, d_in, d_sae, split_mb)? {
            let rel = staged.strip_prefix(staging.root()).unwrap_or(&staged);
            files.push(dir.join(rel));
        }
    }
    Ok(files)
}

/// The requested sizes that have subgraphs: a size with none is reported (with the sizes the
/// node table has) and dropped; none at all is an error.
fn requests_with_subgraphs(
    mut requests: SizeRequests,
    rows: &[NodeRow],
    table: &std::path::Path,
) -> Result<SizeRequests> {
    let present: std::collections::BTreeSet<usize> = rows
        .iter()
        .map(|r| r.subgraph_size)
        .filter(|&s| s > 1)
        .collect();
    let available = present
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let empty: Vec<usize> = requests
        .iter()
        .filter(|(_, list)| list.is_empty())
        .map(|(&size, _)| size)
        .collect();
    ensure!(
        empty.len() < requests.len(),
        "no subgraphs of the requested sizes {:?} in {} (its subgraph sizes: {available})",
        requests.keys().collect::<Vec<_>>(),
        table.display()
    );
    for size in empty {
        crate::report::note(format_args!(
                "warning: no subgraphs of size {size} in {} (its subgraph sizes: {available}); no h5 file is written for it",
                table.display()
            ));
        requests.remove(&size);
    }
    note_flat_components(&requests);
    Ok(requests)
}

/// Says which requested sizes have fewer latents than PCs: their reconstructions span only
/// as many directions as latents, so the PCs beyond are rounding noise. Their h5 groups are
/// written as the original wrote them; the explorer shows them as what they are.
fn note_flat_components(requests: &SizeRequests) {
    for (&size, list) in requests.range(..COMPONENTS) {
        if list.is_empty() {
            continue;
        }
        let what = match size {
            1 => "one latent each: only PC1 carries variance, and the explorer reports them as one-latent subgraphs instead of plotting them".to_string(),
            _ => format!("{size} latents each: PC{COMPONENTS} carries no variance, and the explorer plots PC1 vs PC2 only"),
        };
        crate::report::note(format_args!(
            "note: the {} subgraph(s) of size {size} are {what}",
            list.len()
        ));
    }
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
