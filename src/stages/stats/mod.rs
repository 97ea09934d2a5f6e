//! `saecooc stats`: the paper's size-effect analyses (see docs/formats.md, "Statistics
//! outputs") over every SAE and threshold under a results folder:
//! - active latents per token: mean, std and histogram (from `cooc`'s run.json);
//! - from the node tables: mean subgraph size over latents (with and without singletons), the
//!   fraction of latents in subgraphs of two or more and the number of subgraphs (Fig. 9);
//! - observed vs expected co-occurrence of latent pairs, E = T·pᵢ·pⱼ with pᵢ = Cᵢᵢ/T
//!   (Fig. 7): log₁₀ histograms and summary counts, from the count matrices; from the same pass,
//!   the per-SAE figures of the 768-latent notebook and the co-occurrence distributions.
//!
//! Written as `summary.csv`, `summary.json`, PNG figures and, for the paper's other figures,
//! PNG + HTML + CSV. Thresholds with a node table but no count matrix get the node-table
//! analyses alone. Deliberate differences: T is the true token count from run.json (the
//! original's npz path used C.sum()). With `--config`, a pass through model and SAE also gives,
//! per token, active latents against active subgraphs (`subgraph_l0_any`).
//!
//! The stage is split into `rows` (the analyses behind each row: subgraph sizes from node
//! tables, co-occurrence from count matrices), `matrix` and `distribution` (what the pass over a
//! count matrix collects for the figures), `token_pass` (the pass over the config's data),
//! `figures` (the PNGs), `by_release`, `matrix_figures` and `distribution_figures` (the
//! paper's figures); this module drives them and holds the public types.

mod by_release;
mod distribution;
mod distribution_figures;
mod figures;
mod matrix;
mod matrix_figures;
mod rows;
mod token_pass;

use crate::io::npz::read_npz;
use crate::io::pyfmt::float_repr;
use crate::results::layout::{
    cooc_file, find_cooc_files, CoocKind, GraphFiles, GRAPHS_JSON, RUN_JSON,
};
use crate::results::layout::{find_node_tables, stats_cooccurrence_png, SaeFolder, DATAFRAMES};
use crate::results::layout::{
    STATS_RUN_JSON, STATS_SIZE_EFFECTS_PNG, STATS_SUMMARY_CSV, STATS_SUMMARY_JSON,
};
use crate::results::manifest::{CoocManifest, RunStart, VERSION};
use crate::results::node_table::NodeRow;
use crate::results::out_folder::{OutFolder, OUT_MANIFEST};
use crate::results::set::PublishedSet;
use crate::results::stage::{open_checked, open_cooc, Stage};
use anyhow::{ensure, Result};
use by_release::{ReleaseFigure, RELEASE_FIGURES};
use figures::{plot_cooccurrence, plot_size_effects};
use matrix::{MatrixFigures, MatrixPass};
use rows::{cooccurrence, node_table_rows, sae_id_l0, subgraph_count, subgraph_size_stats};
use serde::Serialize;
use std::path::Path;
use token_pass::{fill_token_passes, request_for};

/// One SAE at one activation threshold.
#[derive(Debug, Clone, Serialize)]
pub struct StatsRow {
    pub model: String,
    pub release: String,
    pub sae: String,
    pub n_batches: String,
    pub d_sae: usize,
    pub threshold: f64,
    pub tokens: Option<u64>,
    pub l0_mean: Option<f64>,
    pub l0_std: Option<f64>,
    pub l0_histogram: Vec<u64>,
    pub mean_subgraph_size: Option<f64>,
    pub mean_subgraph_size_without_singletons: Option<f64>,
    pub fraction_in_subgraphs: Option<f64>,
    /// Token pass (`stats --config`): per token, active latents vs active subgraphs (a subgraph
    /// is active when any of its latents is, `subgraph_l0_any`), means over the tokens read.
    pub token_pass: Option<TokenPass>,
    pub cooccurrence: Option<Cooccurrence>,
    /// Subgraphs in the node table, singletons included.
    pub subgraphs: Option<usize>,
    /// The L0 the figures plot against and where it comes from: `run.json` (cooc's `l0_mean`),
    /// `totals` (the activations file's sum over `tokens_counted`) or `sae id` (its
    /// `average_l0_N`, as Gemma Scope names its SAEs).
    pub l0: Option<f64>,
    pub l0_source: Option<String>,
    /// The per-SAE figures' numbers from the count matrix (their CSVs hold them).
    #[serde(skip)]
    pub matrix: Option<MatrixFigures>,
    /// Observed and expected co-occurrence rates' distributions (their CSVs hold them).
    #[serde(skip)]
    pub distributions: Option<distribution::Distributions>,
}

/// Latent L0 against subgraph L0 over the tokens of a pass through model and SAE.
#[derive(Debug, Clone, Serialize)]
pub struct TokenPass {
    pub tokens: u64,
    pub latent_l0_mean: f64,
    pub subgraph_l0_any_mean: f64,
    /// Tokens by active subgraphs (index = subgraphs).
    pub subgraph_l0_any_histogram: Vec<u64>,
}

/// Observed vs expected co-occurrence over the pairs i < j.
#[derive(Debug, Clone, Serialize)]
pub struct Cooccurrence {
    pub pairs: u64,
    /// Pairs that co-occurred at least once.
    pub pairs_observed: u64,
    /// Pairs that co-occurred more often than independence predicts.
    pub pairs_above_expected: u64,
    /// Left edges of the log₁₀ bins.
    pub log10_bin_edges: Vec<f64>,
    /// Counts of log₁₀(observed) over observed pairs, and of log₁₀(expected) over pairs whose
    /// latents both fired.
    pub observed_log10_counts: Vec<u64>,
    pub expected_log10_counts: Vec<u64>,
}

/// The token pass settings of `stats --config`.
pub struct TokenPassOptions<'a> {
    pub config: &'a crate::config::Config,
    /// The config's inputs, resolved.
    pub inputs: crate::inputs::ResolvedRun,
    pub batches: usize,
}

/// [`run`] with the token pass of `stats --config`: `batches` batches of the config's data on
/// its [run] device.
pub fn run_with_config(
    results: &Path,
    folders: &[SaeFolder],
    out: &Path,
    config: &crate::config::Config,
    batches: usize,
) -> Result<Vec<StatsRow>> {
    let inputs = crate::inputs::resolve(
        crate::inputs::InputSpec::of_config(config),
        &crate::inputs::ResolveOptions::default(),
    )?;
    let pass = TokenPassOptions {
        config,
        inputs,
        batches,
    };
    run(results, folders, out, Some(&pass))
}

/// Computes every row of `folders` (SAE folders under `results`, as
/// [`crate::results::layout::find_sae_folders`] finds them) and
/// writes `summary.csv`, `summary.json` and the figures into `out`. With `pass`, SAEs of its
/// config also get `subgraph_l0_any` from a pass over its data.
pub fn run(
    results: &Path,
    folders: &[SaeFolder],
    out: &Path,
    pass: Option<&TokenPassOptions>,
) -> Result<Vec<StatsRow>> {
    let run_start = RunStart::now();
    let mut folder = OutFolder::open(out, OUT_MANIFEST, "stats", &[])?;
    let (mut rows, mut requests) = (Vec::new(), Vec::new());
    for f in folders {
        for row in FolderRows::open(f)?.rows()? {
            if let Some(p) = pass {
                requests.extend(request_for(p, f, &row, rows.len())?);
            }
            rows.push(row);
        }
    }
    ensure!(
        !rows.is_empty(),
        "no cooc results (feature_acts_cooc_total_threshold_*.npz) and no node tables ({DATAFRAMES}/node_info_df_*.csv) under {}",
        results.display()
    );
    if let Some(p) = pass {
        fill_token_passes(p, requests, &mut rows)?;
    }
    let token_pass = pass.map(|p| serde_json::json!({"config": p.config, "batches": p.batches}));
    let settings = serde_json::json!({
        "results_dir": results,
        "out": out,
        "token_pass": token_pass,
    });
    write_outputs(&mut folder, &rows, &run_start, settings)?;
    Ok(rows)
}

/// One SAE results folder as `stats` reads it: its cooc set, the `run.json` that describes
/// it (if the set has one), and its graphs set once a node table is read.
struct FolderRows<'a> {
    f: &'a SaeFolder,
    cooc: PublishedSet,
    run: Option<CoocManifest>,
    graphs: Option<PublishedSet>,
}

impl<'a> FolderRows<'a> {
    fn open(f: &'a SaeFolder) -> Result<Self> {
        // Folders the original's scripts wrote have no manifest: totals stand in for it.
        let cooc = open_cooc(&f.dir)?;
        let run = match cooc.record {
            Some(_) => Some(CoocManifest::read(&f.dir)?),
            None => {
                crate::report::note(cooc.unchecked_note());
                CoocManifest::read(&f.dir).ok()
            }
        };
        Ok(Self {
            f,
            cooc,
            run,
            graphs: None,
        })
    }

    /// A row for every threshold of the cooc set with both its count matrix and its totals,
    /// then one for every node table of a threshold without a count matrix (the original's
    /// results are often shared as node tables alone).
    fn rows(mut self) -> Result<Vec<StatsRow>> {
        let mut rows = Vec::new();
        let totals = find_cooc_files(&self.f.dir, CoocKind::Total)?;
        for (threshold, total) in &totals {
            if !self.cooc.lists(total) {
                continue;
            }
            let acts_file = cooc_file(&self.f.dir, CoocKind::Activations, *threshold);
            if !acts_file.is_file() {
                continue;
            }
            rows.push(self.row(*threshold, total, &acts_file)?);
        }
        for (threshold, table) in find_node_tables(&self.f.dir)? {
            if totals.iter().all(|(t, _)| *t != threshold) {
                rows.push(self.node_table_row(threshold, &table)?);
            }
        }
        Ok(rows)
    }

    /// The row of a threshold with a node table but no count matrix: its subgraph columns and
    /// its L0, the analyses that need the matrix skipped (and said so).
    fn node_table_row(&mut self, threshold: f64, table: &Path) -> Result<StatsRow> {
        crate::report::warning(format!(
            "stats: {} has a node table at threshold {} but no count matrix ({}): skipped the observed-vs-expected co-occurrence, the heat maps, the count vs Jaccard histograms, the edge-cutoff sweep and the co-occurrence distributions",
            self.f.dir.display(),
            float_repr(threshold),
            cooc_file(Path::new(""), CoocKind::Total, threshold).display()
        ));
        let nodes = self.node_table(table, None)?.unwrap_or_default();
        let sizes: Vec<f64> = nodes.iter().map(|n| n.subgraph_size as f64).collect();
        let (mean, mean_multi, fraction) = subgraph_size_stats(&sizes);
        let run = self.run.as_ref();
        let th = run.and_then(|r| r.thresholds.iter().find(|t| t.threshold == threshold));
        let (l0, l0_source) = l0_of(th.map(|t| t.l0_mean), None, &self.f.sae);
        Ok(StatsRow {
            model: self.f.model.clone(),
            release: self.f.release.clone(),
            sae: self.f.sae.clone(),
            n_batches: self.f.n_batches.clone(),
            d_sae: nodes.len(),
            threshold,
            tokens: run.map(|r| r.tokens_counted),
            l0_mean: th.map(|t| t.l0_mean),
            l0_std: th.map(|t| t.l0_std),
            l0_histogram: th.map(|t| t.l0_histogram.clone()).unwrap_or_default(),
            mean_subgraph_size: Some(mean),
            mean_subgraph_size_without_singletons: mean_multi,
            fraction_in_subgraphs: Some(fraction),
            token_pass: None,
            cooccurrence: None,
            subgraphs: Some(subgraph_count(&nodes)),
            l0,
            l0_source,
            matrix: None,
            distributions: None,
        })
    }

    /// The row of `threshold`, from its count matrix `total` and its totals `acts_file`
    /// (without its token pass).
    fn row(&mut self, threshold: f64, total: &Path, acts_file: &Path) -> Result<StatsRow> {
        let f = self.f;
        self.cooc.verify(total)?;
        self.cooc.verify(acts_file)?;
        let activations = self.activations(acts_file)?;
        let table = GraphFiles::new(&f.dir, threshold).node_table;
        let nodes = self.node_table(&table, Some(activations.len()))?;
        let sizes = nodes.as_ref().map(|n| {
            let sizes: Vec<f64> = n.iter().map(|r| r.subgraph_size as f64).collect();
            subgraph_size_stats(&sizes)
        });
        let run = self.run.as_ref();
        let th = run.and_then(|r| r.thresholds.iter().find(|t| t.threshold == threshold));
        let tokens = run.map(|r| r.tokens_counted);
        let t = tokens
            .map(|t| t as f64)
            .unwrap_or_else(|| activations.iter().map(|&a| a as f64).fold(0.0, f64::max));
        let from_totals = tokens.map(|t| (activations.as_slice(), t));
        let mut pass = MatrixPass::new(&activations, nodes.as_deref());
        let mut rates = distribution::DistributionPass::new(&activations, t.max(1.0));
        let (l0, l0_source) = l0_of(th.map(|t| t.l0_mean), from_totals, &f.sae);
        Ok(StatsRow {
            model: f.model.clone(),
            release: f.release.clone(),
            sae: f.sae.clone(),
            n_batches: f.n_batches.clone(),
            d_sae: activations.len(),
            threshold,
            tokens,
            l0_mean: th.map(|t| t.l0_mean),
            l0_std: th.map(|t| t.l0_std),
            l0_histogram: th.map(|t| t.l0_histogram.clone()).unwrap_or_default(),
            mean_subgraph_size: sizes.map(|s| s.0),
            mean_subgraph_size_without_singletons: sizes.and_then(|s| s.1),
            fraction_in_subgraphs: sizes.map(|s| s.2),
            token_pass: None,
            cooccurrence: Some(cooccurrence(total, &activations, t.max(1.0), |i, j, c| {
                pass.visit(i, j, c);
                rates.visit(c);
            })?),
            subgraphs: nodes.as_deref().map(subgraph_count),
            matrix: Some(pass.finish()),
            distributions: Some(rates.finish()),
            l0,
            l0_source,
        })
    }

    /// The per-latent totals in `acts_file`, refused when `run.json` records an SAE of
    /// another width.
    fn activations(&self, acts_file: &Path) -> Result<Vec<f32>> {
        let activations = read_npz(acts_file)?
            .into_iter()
            .next()
            .map(|(_, a)| a.to_f32())
            .unwrap_or_default();
        let recorded = self.run.as_ref().and_then(|r| r.sae.as_ref());
        if let Some(d_sae) = recorded.map(|s| s.d_sae) {
            ensure!(
                activations.len() == d_sae,
                "{} has {} latents but {} records an SAE of {d_sae}: the folder mixes two SAEs",
                acts_file.display(),
                activations.len(),
                self.f.dir.join(RUN_JSON).display()
            );
        }
        Ok(activations)
    }

    /// The rows of the node table `table` (none if `graphs` wrote none), checked against the
    /// graphs set and, given `d_sae`, refused unless it has one row per latent.
    fn node_table(&mut self, table: &Path, d_sae: Option<usize>) -> Result<Option<Vec<NodeRow>>> {
        if !table.is_file() {
            return Ok(None);
        }
        let graphs = match &mut self.graphs {
            Some(graphs) => graphs,
            empty => empty.insert(open_checked(
                &self.f.dir,
                Stage::Graphs,
                GRAPHS_JSON,
                &self.cooc,
            )?),
        };
        graphs.verify(table)?;
        Ok(Some(node_table_rows(table, d_sae)?))
    }
}

/// The L0 a row is plotted at, and where it comes from: cooc's recorded `l0_mean`, else the
/// totals over the tokens counted (the same mean: each active latent of a token adds one to
/// its total), else the SAE id's `average_l0_N`.
fn l0_of(
    recorded: Option<f64>,
    totals: Option<(&[f32], u64)>,
    sae: &str,
) -> (Option<f64>, Option<String>) {
    let from_totals = totals
        .filter(|(_, tokens)| *tokens > 0)
        .map(|(a, tokens)| a.iter().map(|&x| x as f64).sum::<f64>() / tokens as f64);
    let (l0, source) = match (recorded, from_totals, sae_id_l0(sae)) {
        (Some(l0), _, _) => (l0, "run.json"),
        (None, Some(l0), _) => (l0, "totals"),
        (None, None, Some(l0)) => (l0, "sae id"),
        (None, None, None) => return (None, None),
    };
    (Some(l0), Some(source.to_string()))
}

/// Writes the outputs of `rows` into the out folder `folder`: the summary as CSV and JSON,
/// the figures, and the manifest with `settings`.
fn write_outputs(
    folder: &mut OutFolder,
    rows: &[StatsRow],
    run_start: &RunStart,
    settings: serde_json::Value,
) -> Result<()> {
    let out = folder.dir().to_path_buf();
    let figures: Vec<(String, &StatsRow, &Cooccurrence)> = rows
        .iter()
        .filter_map(|r| {
            let c = r.cooccurrence.as_ref()?;
            let name = stats_cooccurrence_png(&r.model, &r.release, &r.sae, r.threshold);
            Some((name, r, c))
        })
        .collect();
    let mut files: Vec<String> = [
        STATS_SUMMARY_CSV,
        STATS_SUMMARY_JSON,
        STATS_SIZE_EFFECTS_PNG,
        STATS_RUN_JSON,
    ]
    .map(String::from)
    .to_vec();
    files.extend(figures.iter().map(|(name, _, _)| name.clone()));
    let release_figures: Vec<&ReleaseFigure> =
        RELEASE_FIGURES.iter().filter(|f| f.planned(rows)).collect();
    files.extend(release_figures.iter().flat_map(|f| f.files()));
    files.extend(rows.iter().flat_map(matrix_figures::files));
    files.extend(rows.iter().flat_map(distribution_figures::files));
    files.extend(distribution_figures::box_files(rows));
    folder.check_writable(&files.iter().map(String::as_str).collect::<Vec<_>>())?;
    folder.claim(files.iter().cloned())?;
    write_csv(rows, &out.join(STATS_SUMMARY_CSV))?;
    crate::io::atomic::write_bytes(
        &out.join(STATS_SUMMARY_JSON),
        &serde_json::to_vec_pretty(&rows)?,
    )?;
    plot_size_effects(rows, &out.join(STATS_SIZE_EFFECTS_PNG))?;
    let run_info = run_start.finish(settings);
    crate::io::atomic::write_bytes(
        &out.join(STATS_RUN_JSON),
        &serde_json::to_vec_pretty(&serde_json::json!({
            "tool": "saecooc",
            "version": VERSION,
            "run_info": run_info,
        }))?,
    )?;
    for (name, r, c) in &figures {
        plot_cooccurrence(r, c, &out.join(name))?;
    }
    for f in release_figures {
        f.write(rows, &out)?;
    }
    for r in rows {
        matrix_figures::write(r, &out)?;
        distribution_figures::write_histograms(r, &out)?;
    }
    distribution_figures::write_boxplots(rows, &out)?;
    folder.finish(files)
}

/// A column of `summary.csv`: its name and its cell in a row (`None`: empty).
type SummaryColumn = (&'static str, fn(&StatsRow) -> Option<String>);

/// The columns of `summary.csv`, in order.
const SUMMARY_COLUMNS: [SummaryColumn; 21] = [
    ("model", |r| Some(r.model.clone())),
    ("release", |r| Some(r.release.clone())),
    ("sae", |r| Some(r.sae.clone())),
    ("n_batches", |r| Some(r.n_batches.clone())),
    ("d_sae", |r| Some(r.d_sae.to_string())),
    ("activation_threshold", |r| Some(float_repr(r.threshold))),
    ("tokens", |r| r.tokens.map(|t| t.to_string())),
    ("l0_mean", |r| r.l0_mean.map(float_repr)),
    ("l0_std", |r| r.l0_std.map(float_repr)),
    ("mean_subgraph_size", |r| {
        r.mean_subgraph_size.map(float_repr)
    }),
    ("mean_subgraph_size_without_singletons", |r| {
        r.mean_subgraph_size_without_singletons.map(float_repr)
    }),
    ("fraction_in_subgraphs", |r| {
        r.fraction_in_subgraphs.map(float_repr)
    }),
    ("pairs", |r| {
        r.cooccurrence.as_ref().map(|c| c.pairs.to_string())
    }),
    ("pairs_observed", |r| {
        r.cooccurrence
            .as_ref()
            .map(|c| c.pairs_observed.to_string())
    }),
    ("pairs_above_expected", |r| {
        r.cooccurrence
            .as_ref()
            .map(|c| c.pairs_above_expected.to_string())
    }),
    ("pass_tokens", |r| {
        r.token_pass.as_ref().map(|t| t.tokens.to_string())
    }),
    ("pass_latent_l0", |r| {
        r.token_pass.as_ref().map(|t| float_repr(t.latent_l0_mean))
    }),
    ("pass_subgraph_l0_any", |r| {
        r.token_pass
            .as_ref()
            .map(|t| float_repr(t.subgraph_l0_any_mean))
    }),
    ("subgraphs", |r| r.subgraphs.map(|n| n.to_string())),
    ("l0", |r| r.l0.map(float_repr)),
    ("l0_source", |r| r.l0_source.clone()),
];

/// `summary.csv`: one line per row, a name holding a comma or quote quoted as CSV requires.
fn write_csv(rows: &[StatsRow], path: &Path) -> Result<()> {
    let mut table = crate::io::csv_table::Table::with_rows(rows.len());
    for (name, cell) in SUMMARY_COLUMNS {
        table.push(name, rows.iter().map(cell).collect())?;
    }
    crate::io::atomic::write_bytes(path, table.to_csv().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(model: &str, threshold: f64, l0_mean: Option<f64>) -> StatsRow {
        StatsRow {
            model: model.into(),
            release: "rel \"x\"".into(),
            sae: "blocks_1_hook_resid_pre".into(),
            n_batches: "8".into(),
            d_sae: 96,
            threshold,
            tokens: Some(1024),
            l0_mean,
            l0_std: None,
            l0_histogram: Vec::new(),
            mean_subgraph_size: Some(1.5),
            mean_subgraph_size_without_singletons: None,
            fraction_in_subgraphs: Some(0.25),
            token_pass: None,
            cooccurrence: None,
            subgraphs: Some(3),
            l0: l0_mean,
            l0_source: l0_mean.map(|_| "run.json".into()),
            matrix: None,
            distributions: None,
        }
    }

    #[test]
    fn summary_csv_quotes_names_and_reads_back_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("summary.csv");
        write_csv(
            &[row("a,b", 0.0, Some(2.0)), row("plain", 1.5, None)],
            &path,
        )
        .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0].split(',').count(), 21);
        // Plain names and numbers as before, Python's float repr, empty cells for no value.
        assert_eq!(
            lines[2],
            "plain,\"rel \"\"x\"\"\",blocks_1_hook_resid_pre,8,96,1.5,1024,,,1.5,,0.25,,,,,,,3,,"
        );
        let mut reader = csv::Reader::from_path(&path).unwrap();
        let first = reader.records().next().unwrap().unwrap();
        assert_eq!(&first[0], "a,b");
        assert_eq!(&first[1], "rel \"x\"");
        assert_eq!(&first[5], "0.0");
        assert_eq!(&first[7], "2.0");
        assert_eq!(first.len(), 21);
        assert_eq!(&first[20], "run.json");
    }
}
