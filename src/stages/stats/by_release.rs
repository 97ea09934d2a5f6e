//! The figures across SAEs, one series per model, release and activation threshold (points of
//! two releases are never joined, whatever their widths or L0s): subgraph statistics against
//! SAE width and against L0, and the normalised `feature_graph_l0` figure. Each is written as
//! PNG, interactive HTML and a CSV of exactly the numbers plotted.

use super::StatsRow;
use crate::io::pyfmt::float_repr;
use crate::plot::interactive::write_figure;
use crate::plot::lines::{line_panel, Axes, Series};
use crate::plot::plot_err;
use crate::results::layout::{
    STATS_FEATURE_GRAPH_L0, STATS_SUBGRAPH_SIZE_VS_L0, STATS_SUBGRAPH_SIZE_VS_WIDTH,
};
use anyhow::Result;
use std::path::Path;

/// One panel of a figure: its CSV column, its y axis and the value of a row.
pub(super) struct Panel {
    column: &'static str,
    y_desc: &'static str,
    value: fn(&StatsRow) -> Option<f64>,
    /// Why a row may have no value.
    missing: &'static str,
}

/// A figure of one panel per [`Panel`], every panel against the same x.
pub(super) struct ReleaseFigure {
    pub stem: &'static str,
    title: &'static str,
    x_column: &'static str,
    x_desc: &'static str,
    x: fn(&StatsRow) -> Option<f64>,
    log_y: bool,
    panels: &'static [Panel],
    /// Why a row without x is left out (printed once).
    missing_x: &'static str,
}

const NO_NODE_TABLE: &str = "no node table (run `saecooc graphs`)";

const SUBGRAPH_PANELS: &[Panel] = &[
    Panel {
        column: "mean_subgraph_size",
        y_desc: "mean subgraph size over latents",
        value: |r| r.mean_subgraph_size,
        missing: NO_NODE_TABLE,
    },
    Panel {
        column: "mean_subgraph_size_without_singletons",
        y_desc: "mean subgraph size (2+ latents)",
        value: |r| r.mean_subgraph_size_without_singletons,
        missing: NO_NODE_TABLE,
    },
    Panel {
        column: "fraction_in_subgraphs",
        y_desc: "fraction of latents in subgraphs of 2+",
        value: |r| r.fraction_in_subgraphs,
        missing: NO_NODE_TABLE,
    },
];

/// Active latents per token over latents: the token pass's when there is one (as the original
/// counted both from one pass), else cooc's L0.
fn latent_l0_fraction(r: &StatsRow) -> Option<f64> {
    let l0 = r.token_pass.as_ref().map(|t| t.latent_l0_mean).or(r.l0)?;
    Some(l0 / r.d_sae as f64)
}

/// Active subgraphs per token (`subgraph_l0_any`) over subgraphs, singletons included.
fn subgraph_l0_fraction(r: &StatsRow) -> Option<f64> {
    let any = r.token_pass.as_ref()?.subgraph_l0_any_mean;
    Some(any / r.subgraphs? as f64)
}

/// The figures, in the order they are written.
pub(super) const RELEASE_FIGURES: [ReleaseFigure; 3] = [
    ReleaseFigure {
        stem: STATS_SUBGRAPH_SIZE_VS_WIDTH,
        title: "Subgraphs against SAE width",
        x_column: "d_sae",
        x_desc: "SAE latents",
        x: |r| Some(r.d_sae as f64),
        log_y: false,
        panels: SUBGRAPH_PANELS,
        missing_x: "",
    },
    ReleaseFigure {
        stem: STATS_SUBGRAPH_SIZE_VS_L0,
        title: "Subgraphs against L0",
        x_column: "l0",
        x_desc: "L0 (active latents per token)",
        x: |r| r.l0,
        log_y: false,
        panels: SUBGRAPH_PANELS,
        missing_x: "no L0 known (no run.json from cooc, no average_l0_N in the SAE id)",
    },
    ReleaseFigure {
        stem: STATS_FEATURE_GRAPH_L0,
        title: "Active latents and subgraphs per token, as fractions of all",
        x_column: "d_sae",
        x_desc: "SAE latents",
        x: |r| Some(r.d_sae as f64),
        log_y: true,
        panels: &[
            Panel {
                column: "latent_l0_fraction",
                y_desc: "active latents / latents",
                value: latent_l0_fraction,
                missing: "no L0 known",
            },
            Panel {
                column: "subgraph_l0_fraction",
                y_desc: "active subgraphs / subgraphs",
                value: subgraph_l0_fraction,
                missing: "needs the token pass of `stats --config`",
            },
        ],
        missing_x: "",
    },
];

/// The label of the series a row belongs to.
fn series_label(r: &StatsRow) -> String {
    format!(
        "{} {} threshold {}",
        r.model,
        r.release,
        float_repr(r.threshold)
    )
}

/// A point of a figure: its series, its row and its x.
type Point<'a> = (String, &'a StatsRow, f64);

impl ReleaseFigure {
    /// The rows the figure plots (an x and some panel value), grouped by series in order of
    /// first appearance, by x within a series.
    fn points<'a>(&self, rows: &'a [StatsRow]) -> Vec<Point<'a>> {
        let mut series: Vec<String> = Vec::new();
        let mut points: Vec<(usize, Point)> = rows
            .iter()
            .filter(|r| self.panels.iter().any(|p| (p.value)(r).is_some()))
            .filter_map(|r| {
                let label = series_label(r);
                let k = series.iter().position(|s| *s == label).unwrap_or_else(|| {
                    series.push(label.clone());
                    series.len() - 1
                });
                Some((k, (label, r, (self.x)(r)?)))
            })
            .collect();
        points.sort_by(|a, b| a.0.cmp(&b.0).then(a.1 .2.total_cmp(&b.1 .2)));
        points.into_iter().map(|(_, p)| p).collect()
    }

    /// Whether the figure has anything to plot; if not, says why.
    pub(super) fn planned(&self, rows: &[StatsRow]) -> bool {
        let planned = !self.points(rows).is_empty();
        if !planned {
            let why = if rows.iter().all(|r| (self.x)(r).is_none()) {
                self.missing_x
            } else {
                "no row has its values"
            };
            crate::report::warning(format!("stats: skipped {}: {why}", self.stem));
        }
        planned
    }

    /// The file names of the figure.
    pub(super) fn files(&self) -> [String; 3] {
        ["png", "html", "csv"].map(|e| format!("{}.{e}", self.stem))
    }

    /// Writes the figure's CSV and its PNG and HTML into `dir`.
    pub(super) fn write(&self, rows: &[StatsRow], dir: &Path) -> Result<()> {
        let points = self.points(rows);
        self.write_csv(&points, &dir.join(format!("{}.csv", self.stem)))?;
        let n = self.panels.len() as u32;
        write_figure(
            dir,
            self.stem,
            self.title,
            (560 * n, 520),
            |root, hovers| {
                let area = root
                    .titled(self.title, ("sans-serif", 22))
                    .map_err(plot_err)?;
                let axes = area.split_evenly((1, self.panels.len()));
                for (panel, area) in self.panels.iter().zip(&axes) {
                    let series = self.series(&points, panel);
                    let a = Axes {
                        x: self.x_desc,
                        y: panel.y_desc,
                        log_x: true,
                        log_y: self.log_y,
                        empty: panel.missing,
                    };
                    line_panel(area, panel.y_desc, &a, &series, hovers)?;
                }
                Ok(())
            },
        )?;
        Ok(())
    }

    /// The series of one panel: every label of the figure, in the same order in every panel (so
    /// a release keeps its colour across panels), each with its points that have a value here.
    fn series(&self, points: &[Point], panel: &Panel) -> Vec<Series> {
        let mut out: Vec<Series> = Vec::new();
        for (label, r, x) in points {
            if out.last().is_none_or(|s| s.label != *label) {
                out.push(Series {
                    label: label.clone(),
                    points: Vec::new(),
                });
            }
            let Some(y) = (panel.value)(r) else { continue };
            let hover = format!(
                "{label}\n{}\n{} {}\n{} {}",
                r.sae,
                self.x_column,
                float_repr(*x),
                panel.column,
                float_repr(y)
            );
            if let Some(s) = out.last_mut() {
                s.points.push((*x, y, hover));
            }
        }
        out
    }

    /// `{stem}.csv`: one line per point, its series and row, x (and where an L0 came from),
    /// and each panel's value (empty where that panel has none).
    fn write_csv(&self, points: &[Point], path: &Path) -> Result<()> {
        let mut t = crate::io::csv_table::Table::with_rows(points.len());
        let text = |f: fn(&StatsRow) -> String| points.iter().map(|p| Some(f(p.1))).collect();
        t.push("series", points.iter().map(|p| Some(p.0.clone())).collect())?;
        t.push("model", text(|r| r.model.clone()))?;
        t.push("release", text(|r| r.release.clone()))?;
        t.push("sae", text(|r| r.sae.clone()))?;
        t.push("n_batches", text(|r| r.n_batches.clone()))?;
        t.push("activation_threshold", text(|r| float_repr(r.threshold)))?;
        // A width is a count, written as one; an L0 is a mean.
        let x_cell = |x: f64| match self.x_column {
            "d_sae" => format!("{}", x as u64),
            _ => float_repr(x),
        };
        t.push(
            self.x_column,
            points.iter().map(|p| Some(x_cell(p.2))).collect(),
        )?;
        if self.x_column == "l0" {
            t.push(
                "l0_source",
                points.iter().map(|p| p.1.l0_source.clone()).collect(),
            )?;
        }
        for panel in self.panels {
            let cells = points.iter().map(|p| (panel.value)(p.1).map(float_repr));
            t.push(panel.column, cells.collect())?;
        }
        crate::io::atomic::write_bytes(path, t.to_csv().as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::super::TokenPass;
    use super::*;

    /// A row of `release` at width `d_sae` with an L0; `subgraph_l0` adds a token pass.
    fn row(release: &str, d_sae: usize, subgraph_l0: Option<f64>) -> StatsRow {
        StatsRow {
            model: "m".into(),
            release: release.into(),
            sae: format!("{release}-{d_sae}"),
            n_batches: "n_batches_8".into(),
            d_sae,
            threshold: 0.0,
            tokens: None,
            l0_mean: None,
            l0_std: None,
            l0_histogram: Vec::new(),
            mean_subgraph_size: None,
            mean_subgraph_size_without_singletons: None,
            fraction_in_subgraphs: None,
            token_pass: subgraph_l0.map(|any| TokenPass {
                tokens: 100,
                latent_l0_mean: 8.0,
                subgraph_l0_any_mean: any,
                subgraph_l0_any_histogram: Vec::new(),
            }),
            cooccurrence: None,
            subgraphs: Some(20),
            l0: Some(8.0),
            l0_source: None,
            matrix: None,
            distributions: None,
        }
    }

    #[test]
    fn every_panel_has_every_series_in_one_order_so_colours_agree() {
        // Release "a" has no token pass: the second panel has no points of it, yet its series
        // stays first there (empty), so "b" keeps the second colour in both panels.
        let rows = [
            row("a", 128, None),
            row("b", 128, Some(2.0)),
            row("a", 256, None),
            row("b", 256, Some(3.0)),
        ];
        let figure = &RELEASE_FIGURES[2];
        let points = figure.points(&rows);
        let panels: Vec<Vec<Series>> = figure
            .panels
            .iter()
            .map(|p| figure.series(&points, p))
            .collect();
        let labels = |s: &[Series]| s.iter().map(|s| s.label.clone()).collect::<Vec<_>>();
        assert_eq!(
            labels(&panels[0]),
            ["m a threshold 0.0", "m b threshold 0.0"]
        );
        assert_eq!(labels(&panels[1]), labels(&panels[0]));
        let sizes = |s: &[Series]| s.iter().map(|s| s.points.len()).collect::<Vec<_>>();
        assert_eq!(sizes(&panels[0]), [2, 2]);
        assert_eq!(sizes(&panels[1]), [0, 2]);
        // b's subgraph fractions: 2/20 and 3/20, in width order.
        let ys: Vec<f64> = panels[1][1].points.iter().map(|p| p.1).collect();
        assert_eq!(ys, [0.1, 0.15]);
    }
}
