//! `saecooc export`: a self-contained static explorer of the results (in place of the
//! original's Streamlit app; see docs/formats.md, "Explorer export"), and `saecooc serve` to
//! open it over HTTP.
//!
//! The site is `index.html` (HTML, CSS and JavaScript embedded in the binary, no CDN) plus data
//! as JavaScript files loaded with `<script>` tags, so it works straight from disk (`file://`)
//! as well as from any static server: `data/index.js` (the SAEs), `data/{key}/index.js` (one
//! SAE's subgraph table and PCA runs) and `data/{key}/{run}/{id}.js` (one subgraph: graph and
//! PCA points), so that a page loads only what it shows. The data comes from each SAE's node
//! table, sparse thresholded matrix and `pca` h5 files ([`runs`] says which); the subspaces
//! that `subspace` analysed get a page each ([`subspaces`]); the figures of `stats` and of
//! `graphs` are copied in and shown ([`figures`]).

mod figures;
mod runs;
pub mod serve;
mod site;
mod subspaces;
mod tables;

use crate::config::RecommendedViews;
use crate::plot::spring_layout;
use crate::results::h5::{read_pca_file, PcaGroup};
use crate::results::layout::{
    find_sae_folders, is_node_table_name, node_table_name, node_table_tag, pca_dir_name,
    pca_manifest, site_files, GraphFiles, SaeFolder, DATAFRAMES, PCA_RUN_JSON,
};
use crate::results::manifest::{RunStart, COMMIT, VERSION};
use crate::results::set::PublishedSet;
use crate::results::stage::{open_checked, open_graphs, Stage};
use anyhow::{ensure, Context, Result};
use runs::{choose_runs, ExportRun};
use serde::Serialize;
use serde_json::{json, Value};
use site::SiteWriter;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tables::{check_group, check_nodes, read_csr, read_nodes, subgraph_edges, Csr, Node};

const APP_HTML: &str = include_str!("app.html");

/// What `export` found and wrote.
#[derive(Debug, Clone)]
pub struct ExportSummary {
    pub saes: usize,
    /// Subgraphs with PCA, over all SAEs and runs.
    pub subgraphs: usize,
    pub index: PathBuf,
    /// Per SAE and run: which PCA run was exported and why (`{folder}: PCA run {label} ({source})`).
    pub runs: Vec<String>,
    /// Subspaces (`saecooc subspace` folders) added.
    pub subspaces: usize,
    /// Files and bytes of the site.
    pub files: usize,
    pub bytes: u64,
}

fn round(x: f32) -> f64 {
    (x as f64 * 1e4).round() / 1e4
}

/// The graphs and pca sets of an SAE folder, refused when incomplete, mixed, or computed from
/// other versions of the sets they read (cooc, graphs).
fn checked_sets(folder: &SaeFolder) -> Result<(PublishedSet, PublishedSet)> {
    let (_, graphs) = open_graphs(&folder.dir)?;
    let pca = open_checked(&folder.dir, Stage::Pca, &pca_manifest(&folder.sae), &graphs)?;
    for set in [&graphs, &pca] {
        if set.record.is_none()
            && set
                .dir
                .join(&set.manifest)
                .parent()
                .is_some_and(|d| d.is_dir())
        {
            crate::report::note(set.unchecked_note());
        }
    }
    Ok((graphs, pca))
}

/// The node table to show: the one `pca` used (its `activation_threshold` in `pca_run.json`),
/// else `node_info_df_1_5.csv` as the original app, else the first by name.
fn node_table(folder: &SaeFolder, pca_dir: &Path) -> Result<(PathBuf, String)> {
    let mut tables: Vec<PathBuf> = std::fs::read_dir(folder.dir.join(DATAFRAMES))
        .with_context(|| format!("cannot list {}/{DATAFRAMES}", folder.dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| is_node_table_name(&n.to_string_lossy()))
        })
        .collect();
    tables.sort();
    let pca_ts = std::fs::read(pca_dir.join(PCA_RUN_JSON))
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .and_then(|v| v["activation_threshold"].as_f64())
        .map(crate::io::pyfmt::threshold_tag)
        .unwrap_or_else(|| "1_5".into());
    let wanted = node_table_name(&pca_ts);
    let table = tables
        .iter()
        .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy() == wanted))
        .or(tables.first())
        .with_context(|| format!("{} has no node table", folder.dir.display()))?
        .clone();
    let stem = table.file_stem().unwrap_or_default().to_string_lossy();
    let ts = node_table_tag(&stem).unwrap_or(&stem).to_string();
    Ok((table, ts))
}

/// One row of the all-subgraphs table: `[id, size, hub, strong, linear, [top token of each
/// latent]]` (scores null when the node table has none).
fn table_row(sid: i64, members: &[&Node]) -> Value {
    let top: Vec<&str> = members
        .iter()
        .filter_map(|n| n.top_tokens.first().map(String::as_str))
        .collect();
    let score = |k: usize| members[0].scores.map(|s| s[k]);
    json!([sid, members.len(), score(0), score(1), score(2), top])
}

/// Everything the explorer shows of one subgraph of a run.
fn subgraph_json(group: &PcaGroup, members: &[&Node], csr: &Csr) -> Value {
    let ids: Vec<u32> = members.iter().map(|n| n.id).collect();
    let edges = subgraph_edges(csr, &ids);
    let layout = spring_layout(ids.len(), &edges, 42);
    let n = group.pcs.len() / 3;
    let f = ids.len().max(1);
    json!({
        "id": group.subgraph_id,
        "nodes": ids,
        "density": members.iter().map(|n| n.activations).collect::<Vec<_>>(),
        "tokens": members.iter().map(|n| n.top_tokens.iter().take(5).cloned().collect::<Vec<_>>()).collect::<Vec<_>>(),
        "links": members.iter().map(|n| n.link.clone()).collect::<Vec<_>>(),
        "edges": edges.iter().map(|&(a, b, w)| json!([a, b, round(w)])).collect::<Vec<_>>(),
        "layout": layout.iter().map(|&(x, y)| json!([(x * 1e3).round() / 1e3, (y * 1e3).round() / 1e3])).collect::<Vec<_>>(),
        "top3": group.top_3_tokens,
        "context": group.example_context,
        "points": {
            "pc": (0..n).map(|i| json!([round(group.pcs[3 * i]), round(group.pcs[3 * i + 1]), round(group.pcs[3 * i + 2])])).collect::<Vec<_>>(),
            "token": group.tokens,
            "context": group.contexts,
            "max": group.max_latent,
            "acts": group.graph_acts.chunks(f).map(|r| r.iter().map(|&v| round(v)).collect::<Vec<_>>()).collect::<Vec<_>>(),
        },
    })
}

/// One SAE's node table, grouped by subgraph, and its thresholded matrix.
struct SaeTables {
    nodes: Vec<Node>,
    csr: Csr,
    threshold: String,
}

impl SaeTables {
    fn groups(&self) -> BTreeMap<i64, Vec<&Node>> {
        let mut groups: BTreeMap<i64, Vec<&Node>> = BTreeMap::new();
        for n in &self.nodes {
            groups.entry(n.subgraph).or_default().push(n);
        }
        groups
    }
}

fn read_tables(folder: &SaeFolder, graphs: &PublishedSet, pca_dir: &Path) -> Result<SaeTables> {
    let (table, threshold) = node_table(folder, pca_dir)?;
    graphs.verify(&table)?;
    let nodes = read_nodes(&table)?;
    let csr_path = GraphFiles::tagged(&folder.dir, &threshold).sparse_thresholded;
    graphs.verify(&csr_path)?;
    let csr = read_csr(&csr_path)?;
    check_nodes(&nodes, &table, &csr, &csr_path)?;
    Ok(SaeTables {
        nodes,
        csr,
        threshold,
    })
}

/// Writes one run's subgraph files; returns its index entry and how many subgraphs it has.
fn export_run(
    site: &mut SiteWriter,
    key: &str,
    run: &ExportRun,
    pca: &PublishedSet,
    groups: &BTreeMap<i64, Vec<&Node>>,
    csr: &Csr,
) -> Result<(Value, usize)> {
    let dir = site_files::pca_run_dir(key, &run.id);
    let mut sizes = BTreeMap::new();
    let mut count = 0;
    for file in &run.files {
        for path in &file.paths {
            pca.verify(path)?;
        }
        let mut labels = Vec::new();
        for group in read_pca_file(&file.paths)? {
            let members = groups.get(&group.subgraph_id).cloned().unwrap_or_default();
            check_group(&group, &members, csr).with_context(|| {
                let names: Vec<String> =
                    file.paths.iter().map(|p| p.display().to_string()).collect();
                format!("{} [subgraph_{}]", names.join(" + "), group.subgraph_id)
            })?;
            let data = subgraph_json(&group, &members, csr);
            site.write_call(
                &site_files::subgraph_file(&dir, group.subgraph_id),
                "subgraph",
                &site_files::subgraph_key(&dir, group.subgraph_id),
                &data,
            )?;
            labels.push(json!([
                group.subgraph_id,
                group.top_3_tokens,
                group.example_context,
                group.pcs.len() / 3
            ]));
            count += 1;
        }
        sizes.insert(file.size.to_string(), labels);
    }
    let entry = json!({
        "id": run.id,
        "label": run.label,
        "source": run.source,
        "dir": site_files::page_path(&dir),
        "sizes": sizes,
    });
    Ok((entry, count))
}

/// What one SAE contributes to the site: its entry in `data/index.js`, its own index file and
/// one file per subgraph with PCA.
struct SaeExport {
    entry: Value,
    subgraphs: usize,
    runs: Vec<String>,
}

fn export_sae(folder: &SaeFolder, site: &mut SiteWriter) -> Result<SaeExport> {
    let (graphs, pca) = checked_sets(folder)?;
    let pca_dir = folder.dir.join(pca_dir_name(&folder.sae));
    let tables = read_tables(folder, &graphs, &pca_dir)?;
    let groups = tables.groups();
    let key = folder.key();
    let choice = choose_runs(&pca_dir, &pca)?;
    for note in &choice.notes {
        crate::report::warning(note);
    }
    let mut runs = Vec::new();
    let mut subgraphs = 0;
    for run in &choice.runs {
        let (entry, n) = export_run(site, &key, run, &pca, &groups, &tables.csr)?;
        runs.push(entry);
        subgraphs += n;
    }
    let table: Vec<Value> = groups
        .iter()
        .filter(|(_, g)| g.len() > 1)
        .map(|(sid, g)| table_row(*sid, g))
        .collect();
    let graph_figures = figures::export_graph_figures(site, &folder.dir, &graphs, &key)?;
    let file = site_files::sae_index(&key);
    site.write_call(
        &file,
        "sae",
        &key,
        &json!({
            "runs": runs,
            "table": table,
            "has_neuronpedia": tables.nodes.iter().any(|n| n.link.is_some()),
            "figures": graph_figures,
        }),
    )?;
    let run_lines = choice
        .runs
        .iter()
        .map(|r| {
            format!(
                "{}: PCA run {} ({})",
                folder.dir.display(),
                r.label,
                r.source
            )
        })
        .collect();
    let entry = json!({
        "key": key,
        "model": folder.model,
        "release": folder.release,
        "sae": folder.sae,
        "n_batches": folder.n_batches,
        "threshold": tables.threshold,
        "latents": tables.nodes.len(),
        "subgraphs": table.len(),
        "file": site_files::page_path(&file),
    });
    Ok(SaeExport {
        entry,
        subgraphs,
        runs: run_lines,
    })
}

/// A recommended view (the original config's `[recommended_views.*]`).
#[derive(Debug, Clone, Serialize)]
pub struct RecommendedView {
    pub name: String,
    pub description: String,
    pub model: String,
    pub release: String,
    pub sae: String,
    pub size: i64,
    pub subgraph: i64,
}

/// The recommended views of a PCA config's `[recommended_views]` (checked when the config was
/// read), in the order of their keys.
pub fn recommended_views(views: Option<&RecommendedViews>) -> Vec<RecommendedView> {
    views
        .into_iter()
        .flat_map(|r| &r.0)
        .map(|(key, v)| RecommendedView {
            name: v.display_name.clone().unwrap_or_else(|| key.clone()),
            description: v.description.clone().unwrap_or_default(),
            model: v.model.clone(),
            release: v.sae_release.clone(),
            sae: v.sae_id.clone(),
            size: v.size,
            subgraph: v.subgraph,
        })
        .collect()
}

/// Where the explorer's inputs lie: the results root, the `subspace` folders' root and the
/// `stats` output folder.
pub struct ExportInputs<'a> {
    pub results: &'a Path,
    pub figures: &'a Path,
    pub stats: &'a Path,
}

/// Writes the explorer for every SAE under `results`, every subspace under `figures` and the
/// figures of `stats`, into `out`.
pub fn run(inputs: &ExportInputs, out: &Path, views: &[RecommendedView]) -> Result<ExportSummary> {
    let (results, figures) = (inputs.results, inputs.figures);
    let run_start = RunStart::now();
    let folders: Vec<SaeFolder> = find_sae_folders(results)?
        .into_iter()
        .filter(|f| f.dir.join(DATAFRAMES).is_dir())
        .collect();
    ensure!(
        !folders.is_empty(),
        "no SAE results under {} (expected {{model}}/{{release}}/{{sae}}/n_batches_{{N}}/dataframes/): run `saecooc graphs` first",
        results.display()
    );
    let mut site = SiteWriter::begin(out)?;
    let mut entries = Vec::new();
    let mut subgraphs = 0;
    let mut runs = Vec::new();
    for folder in &folders {
        let sae = export_sae(folder, &mut site)
            .with_context(|| format!("cannot export {}", folder.dir.display()))?;
        entries.push(sae.entry);
        subgraphs += sae.subgraphs;
        runs.extend(sae.runs);
    }
    let (subspace_entries, notes) = subspaces::export_subspaces(&mut site, figures, &folders);
    for note in &notes {
        crate::report::warning(note);
    }
    let stats_figures =
        figures::export_stats_figures(&mut site, inputs.stats).unwrap_or_else(|e| {
            crate::report::warning(format!(
                "the figures of {} are left out of the explorer: {e:#}",
                inputs.stats.display()
            ));
            Vec::new()
        });
    let index = json!({
        "saes": entries,
        "subspaces": subspace_entries,
        "stats_figures": stats_figures,
        "recommended": views,
        "generated_by": format!("saecooc {VERSION} ({COMMIT})"),
        "run_info": run_start.finish(json!({
            "results_dir": results,
            "figures_dir": figures,
            "stats_dir": inputs.stats,
            "out": out,
            "recommended_views": views,
        })),
    });
    site.write_call(site_files::INDEX_JS, "index", "", &index)?;
    let (files, bytes) = (site.files + 1, site.bytes + APP_HTML.len() as u64);
    let index_html = site.finish(APP_HTML)?;
    Ok(ExportSummary {
        saes: folders.len(),
        subgraphs,
        index: index_html,
        runs,
        subspaces: subspace_entries.len(),
        files,
        bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::APP_HTML;
    use crate::plot::colour::VIRIDIS;

    /// The `#rrggbb` strings of the explorer's `var VIRIDIS = [...]` line.
    fn explorer_viridis_stops() -> Vec<(u8, u8, u8)> {
        let line = APP_HTML
            .lines()
            .find(|l| l.trim_start().starts_with("var VIRIDIS = ["))
            .expect("app.html defines VIRIDIS");
        let list = &line[line.find('[').unwrap() + 1..line.rfind(']').unwrap()];
        list.split(',')
            .map(|hex| {
                let hex = hex.trim().trim_matches('"').trim_start_matches('#');
                let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).unwrap();
                (byte(0), byte(2), byte(4))
            })
            .collect()
    }

    #[test]
    fn explorer_viridis_is_the_figures_viridis() {
        assert_eq!(explorer_viridis_stops(), VIRIDIS.stops());
    }
}
