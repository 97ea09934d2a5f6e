//! `saecooc graphs`: from the Jaccard matrices `cooc` wrote (or the original pipeline wrote)
//! to subgraphs (see docs/formats.md, "Graph files").
//!
//! Per SAE and activation threshold: stream J row by row into a sparse entry list (diagonal
//! dropped), bisect for the edge threshold whose largest component has
//! `min_subgraph_size..=max_subgraph_size` latents, then write `edge_thresholds.csv`, the
//! thresholded matrix (dense and scipy CSR), the node table, the component-size histogram,
//! HTML pages of the larger subgraphs and every subgraph as GraphML. The outputs of a run are
//! published as one set (`graphs_run.json`) that replaces the previous run's whole, and only
//! from a cooc set that its manifest vouches for.

pub mod components;
pub mod figures;
pub mod graphml;
pub mod metrics;
pub mod node_table;
pub mod top_tokens;

use crate::config::{Analysis, Config, StageCommon};
use crate::harness;
use crate::inputs::{resolve, InputSpec, ResolveOptions, ResolvedRun};
use crate::io::csr::{is_sparse_npz, read_csr_rows, save_csr};
use crate::io::npz::{read_f32_rows, read_npz, NpzWriter};
use crate::io::pyfmt::float_repr;
use crate::results::layout::{
    cooc_file, edge_thresholds_file, find_cooc_files, graphs_ownership, sae_results_dir, CoocKind,
    GraphFiles, GRAPHS_JSON,
};
use crate::results::manifest::{check_counted_inputs, RunInfo, RunStart, VERSION};
use crate::results::set::{PublishedSet, SetRecord};
use crate::results::stage::{open_cooc, Stage};
use anyhow::{ensure, Context, Result};
use components::{find_threshold, smallest_search_cut, SparseJaccard, ThresholdChoice};
use metrics::{subgraph_metrics, SubgraphMetrics};
use node_table::{edge_threshold_table, node_table, write_csv, Neuronpedia, NodeTableInput};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// The original's bisection tolerance.
pub const SEARCH_TOLERANCE: f64 = 1e-3;

/// Command-line options of a `graphs` run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct GraphOptions {
    pub common: StageCommon,
    /// Replace the folder's whole graphs set, also removing the outputs of thresholds whose
    /// cooc files are gone or changed (refused without it).
    pub replace: bool,
}

/// What one activation threshold produced.
#[derive(Debug, Clone, Serialize)]
pub struct ThresholdSummary {
    pub activation_threshold: f64,
    pub edge_threshold: f64,
    pub largest_component: usize,
    pub subgraphs: usize,
    /// Latents in subgraphs of two or more.
    pub latents_in_subgraphs: usize,
    pub warning: Option<String>,
}

/// What one SAE's run produced.
#[derive(Debug, Clone, Serialize)]
pub struct GraphSummary {
    pub sae_id: String,
    pub dir: PathBuf,
    pub thresholds: Vec<ThresholdSummary>,
}

/// `graphs_run.json`: what a `graphs` run produced, and its set of files.
#[derive(Serialize)]
struct GraphsManifest<'a> {
    tool: &'static str,
    version: &'static str,
    sae_id: &'a str,
    thresholds: &'a [ThresholdSummary],
    run_info: RunInfo,
    #[serde(flatten)]
    set: &'a SetRecord,
}

/// Per-latent descriptions shared by every threshold of one SAE.
struct Latents {
    d_sae: usize,
    top_tokens: Vec<Vec<String>>,
    neuronpedia: Option<Neuronpedia>,
}

/// Runs `graphs` for every SAE of the config.
pub fn run(config: &Config, options: &GraphOptions) -> Result<Vec<GraphSummary>> {
    let sae_ids = config.generation.sae_ids.clone();
    let direct = match &options.common.results_dir {
        Some(dir) if holds_jaccard_files(dir) => Some(dir.clone()),
        _ => None,
    };
    ensure!(
        direct.is_none() || sae_ids.len() == 1,
        "--results-dir {} is one SAE's folder but the config names {} SAEs: choose one with --sae-id",
        options.common.results_dir.as_ref().map_or(String::new(), |d| d.display().to_string()),
        sae_ids.len()
    );
    let resolved = resolve(
        InputSpec::of_config(config).with_sae_ids(sae_ids.clone()),
        &ResolveOptions {
            device: options.common.device,
            stage: Some("graphs"),
        },
    )?;
    let root = options.common.results_root(&config.run);
    sae_ids
        .into_iter()
        .map(|sae_id| {
            let dir = direct.clone().unwrap_or_else(|| {
                let g = &config.generation;
                sae_results_dir(
                    &root,
                    &g.model_name,
                    &g.sae_release_short,
                    &sae_id,
                    g.n_batches,
                )
            });
            graph_sae(config, &resolved, options, &sae_id, &dir)
                .with_context(|| format!("graphs for SAE {sae_id} failed"))
        })
        .collect()
}

fn holds_jaccard_files(dir: &Path) -> bool {
    dir.is_dir() && find_cooc_files(dir, CoocKind::Jaccard).is_ok_and(|files| !files.is_empty())
}

/// Orders the found thresholds as the config lists them, then any others ascending.
fn config_order(found: Vec<(f64, PathBuf)>, config_thresholds: &[f64]) -> Vec<(f64, PathBuf)> {
    let rank = |t: f64| {
        config_thresholds
            .iter()
            .position(|&c| c == t)
            .unwrap_or(usize::MAX)
    };
    let mut found = found;
    found.sort_by(|a, b| rank(a.0).cmp(&rank(b.0)).then(a.0.total_cmp(&b.0)));
    found
}

fn graph_sae(
    config: &Config,
    resolved: &ResolvedRun,
    options: &GraphOptions,
    sae_id: &str,
    dir: &Path,
) -> Result<GraphSummary> {
    let run_start = RunStart::now();
    let analysis = &config.analysis;
    ensure!(
        dir.is_dir(),
        "results folder {} does not exist: run `saecooc cooc` with this config first, or point \
         --results-dir at the folder that holds the feature_acts_cooc_jaccard_threshold_*.npz files",
        dir.display()
    );
    let lock = harness::lock_folder(dir, Stage::Graphs)?;
    let cooc = open_cooc(dir)?;
    if cooc.record.is_none() {
        crate::report::note(format_args!("{}", cooc.unchecked_note()));
    }
    let jaccard_files = jaccard_files(dir, &cooc, &config.generation.activation_thresholds)?;
    let thresholds: Vec<f64> = jaccard_files.iter().map(|(t, _)| *t).collect();
    check_no_threshold_dropped(dir, &thresholds, options.replace)?;
    check_counted_inputs(dir, &cooc, || resolved.reread(sae_id, None), "graphs")?;
    let latents = describe_latents(resolved, sae_id)?;
    // What was read of the cooc set, file by file: a graphs set stays valid while cooc only
    // adds thresholds.
    let read: Vec<PathBuf> = jaccard_files
        .iter()
        .flat_map(|(t, path)| [path.clone(), cooc_file(dir, CoocKind::Activations, *t)])
        .collect();
    let staging = harness::begin_staging(
        &lock,
        Stage::Graphs,
        GRAPHS_JSON,
        graphs_ownership(),
        cooc.file_inputs("cooc", &read)?,
    )?;
    let mut summaries = Vec::new();
    for (threshold, path) in &jaccard_files {
        let summary = (|| {
            cooc.verify(path)?;
            cooc.verify(&cooc_file(dir, CoocKind::Activations, *threshold))?;
            graph_threshold(staging.root(), *threshold, path, &latents, analysis)
        })()
        .with_context(|| format!("activation threshold {}", float_repr(*threshold)))?;
        if let Some(w) = &summary.warning {
            crate::report::note(format_args!(
                "warning: {sae_id}, threshold {}: {w}",
                float_repr(*threshold)
            ));
        }
        summaries.push(summary);
    }
    write_edge_thresholds(&summaries, staging.root())?;
    staging.publish(|set| {
        Ok(serde_json::to_vec_pretty(&GraphsManifest {
            tool: "saecooc",
            version: VERSION,
            sae_id,
            thresholds: &summaries,
            run_info: run_start.finish(serde_json::json!({
                "config": config,
                "options": options,
                "sae_id": sae_id,
                "results_dir": dir,
            })),
            set,
        })?)
    })?;
    Ok(GraphSummary {
        sae_id: sae_id.to_string(),
        dir: dir.to_path_buf(),
        thresholds: summaries,
    })
}

/// The Jaccard matrices of the cooc set in `dir`, in the order of the config's `thresholds`;
/// refused when there are none.
fn jaccard_files(
    dir: &Path,
    cooc: &PublishedSet,
    thresholds: &[f64],
) -> Result<Vec<(f64, PathBuf)>> {
    let mut found = find_cooc_files(dir, CoocKind::Jaccard)?;
    found.retain(|(_, path)| cooc.lists(path));
    ensure!(
        !found.is_empty(),
        "no Jaccard matrices (feature_acts_cooc_jaccard_threshold_*.npz) in {}: run `saecooc cooc` first",
        dir.display()
    );
    Ok(config_order(found, thresholds))
}

/// Writes `edge_thresholds.csv` into `dir`: the edge threshold of each activation threshold.
fn write_edge_thresholds(summaries: &[ThresholdSummary], dir: &Path) -> Result<()> {
    let rows: Vec<(f64, f64)> = summaries
        .iter()
        .map(|s| (s.activation_threshold, s.edge_threshold))
        .collect();
    write_csv(&edge_threshold_table(&rows)?, &edge_thresholds_file(dir))
}

/// Refuses (unless `replace`) a run that would remove the outputs of activation thresholds
/// the previous graphs set has and this run does not compute: their cooc files are no longer
/// in the cooc set, so they cannot be recomputed.
fn check_no_threshold_dropped(dir: &Path, thresholds: &[f64], replace: bool) -> Result<()> {
    let path = dir.join(GRAPHS_JSON);
    if replace || SetRecord::read(&path)?.is_none() {
        return Ok(());
    }
    let previous: serde_json::Value = serde_json::from_slice(&std::fs::read(&path)?)
        .with_context(|| format!("{} is not valid JSON", path.display()))?;
    let dropped: Vec<String> = previous["thresholds"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["activation_threshold"].as_f64())
        .filter(|t| !thresholds.contains(t))
        .map(float_repr)
        .collect();
    ensure!(
        dropped.is_empty(),
        "{} holds graphs outputs for activation thresholds {} (node tables, thresholded matrices, pictures) whose Jaccard matrices the cooc set there no longer lists; this run computes only {} and would remove them. Rerun with --replace to remove them, or count those thresholds again with `saecooc cooc`",
        dir.display(),
        dropped.join(", "),
        thresholds.iter().map(|&t| float_repr(t)).collect::<Vec<_>>().join(", ")
    );
    Ok(())
}

/// Loads the SAE, the model's embeddings and the tokenizer, and finds every latent's top tokens.
fn describe_latents(resolved: &ResolvedRun, sae_id: &str) -> Result<Latents> {
    let sae = resolved.load_sae(sae_id)?;
    let decoder = resolved.load_token_decoder()?;
    let ids = match resolved.load_token_embeddings(&sae)? {
        Some(w_e) => {
            top_tokens::top_token_ids(&w_e, &sae.w_dec, sae.cfg.d_in, top_tokens::TOP_TOKENS)?
        }
        None => {
            crate::report::note(format_args!(
                "SAE {sae_id} reads {} ({} wide), not the residual stream: its node tables' top_10_tokens are empty",
                sae.cfg.hook_name, sae.cfg.d_in
            ));
            vec![Vec::new(); sae.cfg.d_sae]
        }
    };
    let neuronpedia = sae.cfg.neuronpedia_id.clone().map(|id| Neuronpedia {
        model_name: resolved.spec.model_name.clone(),
        id,
    });
    Ok(Latents {
        d_sae: sae.cfg.d_sae,
        top_tokens: top_tokens::decode_tokens(&decoder, &ids)?,
        neuronpedia,
    })
}

/// Reads the per-latent totals written beside the Jaccard matrix.
fn read_activations(jaccard: &Path, threshold: f64, d_sae: usize) -> Result<Vec<f32>> {
    let dir = jaccard.parent().unwrap_or(Path::new("."));
    let path = cooc_file(dir, CoocKind::Activations, threshold);
    ensure!(
        path.is_file(),
        "missing {} (per-latent totals; cooc writes it beside {})",
        path.display(),
        jaccard.display()
    );
    let (_, array) = read_npz(&path)?
        .into_iter()
        .next()
        .with_context(|| format!("{} holds no arrays", path.display()))?;
    ensure!(
        array.shape == [d_sae],
        "{} has shape {:?}, expected ({d_sae},) for an SAE with {d_sae} latents",
        path.display(),
        array.shape
    );
    Ok(array.to_f32())
}

/// Streams a Jaccard matrix (dense `arr_0`, or scipy CSR as `cooc` writes for wide SAEs) into
/// a sparse entry list, keeping only entries the bisection can reach (≥ 2^-10).
pub fn read_jaccard(path: &Path, d_sae: usize) -> Result<SparseJaccard> {
    let floor = smallest_search_cut(SEARCH_TOLERANCE) as f32;
    let mut g = SparseJaccard::new(d_sae);
    let bar = crate::report::bar(d_sae as u64, "reading Jaccard", "rows");
    let check_shape = |rows: usize, cols: usize| {
        ensure!(
            rows == cols,
            "{} is not square: shape [{rows}, {cols}]",
            path.display()
        );
        ensure!(
            rows == d_sae,
            "{} is {rows} × {rows} but the SAE has {d_sae} latents",
            path.display()
        );
        Ok(())
    };
    let bad = || format!("bad Jaccard matrix {}", path.display());
    if is_sparse_npz(path)? {
        read_csr_rows(path, check_shape, |i, cols, vals| {
            bar.inc(1);
            g.push_sparse_row(i, cols, vals, floor).with_context(bad)
        })?;
    } else {
        read_f32_rows(
            path,
            None,
            |shape| check_shape(shape[0], shape[1]),
            |i, row| {
                bar.inc(1);
                g.push_row(i, row, floor).with_context(bad)
            },
        )?;
    }
    bar.finish_and_clear();
    Ok(g)
}

/// Each undirected edge once `(i, j, w)` with i < j, from row-major entries of both triangles
/// (an entry present only below the diagonal still makes an edge, with its own weight).
fn undirected_edges(entries: &[(u32, u32, f32)]) -> Vec<(u32, u32, f32)> {
    let mut edges: Vec<(u32, u32, f32)> = entries
        .iter()
        .map(|&(i, j, w)| if i < j { (i, j, w) } else { (j, i, w) })
        .collect();
    // Stable sort keeps the upper-triangle entry first for a pair seen twice.
    edges.sort_by_key(|&(i, j, _)| (i, j));
    edges.dedup_by_key(|e| (e.0, e.1));
    edges
}

/// Edges of each component in local node positions.
fn component_edges(
    components: &[Vec<u32>],
    edges: &[(u32, u32, f32)],
    n: usize,
) -> Vec<Vec<(usize, usize, f32)>> {
    let mut where_is = vec![(0u32, 0u32); n];
    for (c, nodes) in components.iter().enumerate() {
        for (k, &node) in nodes.iter().enumerate() {
            where_is[node as usize] = (c as u32, k as u32);
        }
    }
    let mut out = vec![Vec::new(); components.len()];
    for &(i, j, w) in edges {
        let (ci, ki) = where_is[i as usize];
        let (_, kj) = where_is[j as usize];
        out[ci as usize].push((ki as usize, kj as usize, w));
    }
    out
}

/// Writes `thresholded_matrix_{ts}.npz` (dense, `arr_0`) from sorted sparse entries.
fn write_dense_thresholded(path: &Path, n: usize, entries: &[(u32, u32, f32)]) -> Result<()> {
    let mut w = NpzWriter::create(path, true)?;
    let mut next = 0;
    w.add_f32_rows("arr_0", n, n, |i, row| {
        row.fill(0.0);
        while next < entries.len() && entries[next].0 as usize == i {
            row[entries[next].1 as usize] = entries[next].2;
            next += 1;
        }
    })?;
    w.finish()
}

fn create_dirs(files: &GraphFiles) -> Result<()> {
    for p in [&files.node_table, &files.thresholded, &files.histogram] {
        let dir = p.parent().expect("output files are inside a folder");
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create folder {}", dir.display()))?;
    }
    Ok(())
}

/// Writes the thresholded matrix: as scipy CSR, and dense too when the Jaccard matrix was
/// (`dense_input`).
fn write_thresholded(
    files: &GraphFiles,
    d_sae: usize,
    entries: &[(u32, u32, f32)],
    dense_input: bool,
) -> Result<()> {
    if dense_input {
        write_dense_thresholded(&files.thresholded, d_sae, entries)?;
    }
    save_csr(&files.sparse_thresholded, d_sae, entries)
}

/// The structure scores of each component, from its edges in local node positions.
fn component_metrics(
    components: &[Vec<u32>],
    per_component: &[Vec<(usize, usize, f32)>],
) -> Vec<SubgraphMetrics> {
    components
        .iter()
        .zip(per_component)
        .map(|(nodes, e)| {
            let pairs: Vec<(usize, usize)> = e.iter().map(|&(a, b, _)| (a, b)).collect();
            subgraph_metrics(nodes.len(), &pairs)
        })
        .collect()
}

/// The histogram of component `sizes` at the activation and edge thresholds `(threshold, cut)`.
fn write_histogram(
    files: &GraphFiles,
    sizes: &[usize],
    (threshold, cut): (f64, f64),
    analysis: &Analysis,
) -> Result<()> {
    figures::write_size_histogram(
        &files.histogram,
        sizes,
        analysis.min_subgraph_size,
        analysis.max_subgraph_size,
        &format!(
            "Subgraph sizes, activation threshold {}, edge threshold {}",
            float_repr(threshold),
            float_repr(cut)
        ),
    )
}

/// Computes one activation threshold's graph outputs, written under `out_dir`.
fn graph_threshold(
    out_dir: &Path,
    threshold: f64,
    jaccard: &Path,
    latents: &Latents,
    analysis: &Analysis,
) -> Result<ThresholdSummary> {
    let activations = read_activations(jaccard, threshold, latents.d_sae)?;
    // A CSR input means an SAE too wide for dense F×F files: the thresholded matrix is then
    // written as CSR only.
    let dense_input = !is_sparse_npz(jaccard)?;
    let g = read_jaccard(jaccard, latents.d_sae)?;
    let ThresholdChoice {
        threshold: cut,
        largest_component,
        warning,
    } = find_threshold(
        &g,
        analysis.min_subgraph_size,
        analysis.max_subgraph_size,
        SEARCH_TOLERANCE,
    )?;
    let components = g.components(cut);
    let entries = g.thresholded(cut);
    drop(g);
    let files = GraphFiles::new(out_dir, threshold);
    create_dirs(&files)?;
    write_thresholded(&files, latents.d_sae, &entries, dense_input)?;
    let edges = undirected_edges(&entries);
    drop(entries);
    let per_component = component_edges(&components, &edges, latents.d_sae);

    let metrics = analysis
        .include_metrics
        .then(|| component_metrics(&components, &per_component));
    let table = node_table(&NodeTableInput {
        activation_threshold: threshold,
        components: &components,
        activations: &activations,
        top_tokens: &latents.top_tokens,
        neuronpedia: latents.neuronpedia.as_ref(),
        metrics: metrics.as_deref(),
    })?;
    write_csv(&table, &files.node_table)?;

    let sizes: Vec<usize> = components.iter().map(Vec::len).collect();
    write_histogram(&files, &sizes, (threshold, cut), analysis)?;
    write_subgraph_files(
        &files,
        threshold,
        cut,
        &components,
        &per_component,
        &activations,
        latents,
        analysis,
    )?;
    Ok(ThresholdSummary {
        activation_threshold: threshold,
        edge_threshold: cut,
        largest_component,
        subgraphs: components.len(),
        latents_in_subgraphs: sizes.iter().filter(|&&s| s > 1).sum(),
        warning,
    })
}

/// Per-subgraph HTML pages (subgraphs of `min_subgraph_size_to_plot` or more) and GraphML files
/// (every subgraph), unless switched off.
#[allow(clippy::too_many_arguments)]
fn write_subgraph_files(
    files: &GraphFiles,
    threshold: f64,
    cut: f64,
    components: &[Vec<u32>],
    per_component: &[Vec<(usize, usize, f32)>],
    activations: &[f32],
    latents: &Latents,
    analysis: &Analysis,
) -> Result<()> {
    for (sid, (nodes, edges)) in components.iter().zip(per_component).enumerate() {
        let acts: Vec<f32> = nodes.iter().map(|&n| activations[n as usize]).collect();
        let tokens: Vec<Vec<String>> = nodes
            .iter()
            .map(|&n| latents.top_tokens[n as usize].clone())
            .collect();
        if !analysis.skip_subgraph_plots && nodes.len() >= analysis.min_subgraph_size_to_plot {
            let picture = figures::SubgraphPicture {
                subgraph_id: sid,
                activation_threshold: threshold,
                edge_threshold: cut,
                nodes,
                edges,
                activations: &acts,
                top_tokens: &tokens,
                links: latents
                    .neuronpedia
                    .as_ref()
                    .map(|np| nodes.iter().map(|&n| np.dashboard_link(n)).collect()),
                seed: analysis.random_seed,
            };
            figures::write_subgraph_html(&files.html(sid), &picture)?;
        }
        if !analysis.skip_subgraph_pickles {
            graphml::write_subgraph_graphml(&files.graphml(sid), nodes, edges, &acts, &tokens)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edges_are_undirected_and_unique() {
        let entries = [(0, 1, 0.5), (1, 0, 0.5), (2, 0, 0.25), (1, 2, 0.75)];
        assert_eq!(
            undirected_edges(&entries),
            [(0, 1, 0.5), (0, 2, 0.25), (1, 2, 0.75)]
        );
        let components = vec![vec![0, 1, 2], vec![3]];
        let per = component_edges(&components, &undirected_edges(&entries), 4);
        assert_eq!(per[0], [(0, 1, 0.5), (0, 2, 0.25), (1, 2, 0.75)]);
        assert!(per[1].is_empty());
    }

    #[test]
    fn thresholds_follow_the_config_order() {
        let found = vec![
            (0.0, PathBuf::from("a")),
            (0.5, PathBuf::from("b")),
            (1.5, PathBuf::from("c")),
            (3.0, PathBuf::from("d")),
        ];
        let order: Vec<f64> = config_order(found, &[1.5, 0.0, 0.5])
            .into_iter()
            .map(|f| f.0)
            .collect();
        assert_eq!(order, [1.5, 0.0, 0.5, 3.0]);
    }
}
