//! The per-SAE figures of the count matrix (the 768-latent notebook's): the heat map of the top
//! latents' co-occurrence and Jaccard, ordered by subgraph; histograms of raw counts and of
//! Jaccard over the pairs that co-occurred; the edge-cutoff sweep. Each as PNG, interactive
//! HTML and a CSV of the numbers plotted.

use super::matrix::{MatrixFigures, JACCARD_BINS};
use super::rows::{LOG_BINS, LOG_MAX, LOG_MIN};
use super::StatsRow;
use crate::io::csv_table::Table;
use crate::io::pyfmt::float_repr;
use crate::plot::colour::VIRIDIS;
use crate::plot::interactive::{write_figure, Area, Hovers};
use crate::plot::lines::{line_panel, Axes, Series};
use crate::plot::plot_err;
use crate::results::layout::stats_sae_stem;
use anyhow::Result;
use plotters::prelude::*;
use std::path::Path;

/// The figures' kinds (the first part of their stems).
const KINDS: [&str; 3] = ["heatmap", "count_vs_jaccard", "edge_cutoff_sweep"];

fn stem(kind: &str, r: &StatsRow) -> String {
    stats_sae_stem(kind, &r.model, &r.release, &r.sae, r.threshold)
}

/// The files of a row's figures (none without a count matrix).
pub(super) fn files(r: &StatsRow) -> Vec<String> {
    if r.matrix.is_none() {
        return Vec::new();
    }
    KINDS
        .iter()
        .flat_map(|k| ["png", "html", "csv"].map(|e| format!("{}.{e}", stem(k, r))))
        .collect()
}

/// Writes a row's figures into `dir`.
pub(super) fn write(r: &StatsRow, dir: &Path) -> Result<()> {
    let Some(m) = &r.matrix else { return Ok(()) };
    let label = format!(
        "{} {} {}, threshold {}",
        r.model,
        r.release,
        r.sae,
        float_repr(r.threshold)
    );
    heatmap(m, &label, dir, &stem(KINDS[0], r))?;
    let counts = r
        .cooccurrence
        .as_ref()
        .map(|c| c.observed_log10_counts.as_slice());
    histograms(
        m,
        counts.unwrap_or_default(),
        &label,
        dir,
        &stem(KINDS[1], r),
    )?;
    sweep(m, &label, dir, &stem(KINDS[2], r))
}

fn write_csv(table: &Table, dir: &Path, stem: &str) -> Result<()> {
    crate::io::atomic::write_bytes(&dir.join(format!("{stem}.csv")), table.to_csv().as_bytes())
}

/// One text column of `cells`.
fn column<T>(cells: &[T], f: impl Fn(&T) -> String) -> Vec<Option<String>> {
    cells.iter().map(|c| Some(f(c))).collect()
}

/// The heat map: co-occurrence (colour log₁₀(1 + C)) and Jaccard side by side, latents in
/// subgraph order, black lines between subgraphs. The diagonal is drawn as 0, as `graphs`
/// removes self loops.
fn heatmap(m: &MatrixFigures, label: &str, dir: &Path, stem: &str) -> Result<()> {
    let k = m.heat_latents.len();
    let cells: Vec<(usize, usize)> = (0..k).flat_map(|a| (0..k).map(move |b| (a, b))).collect();
    let mut t = Table::with_rows(cells.len());
    let latent = |i: usize| m.heat_latents[i].latent.to_string();
    let subgraph = |i: usize| m.heat_latents[i].subgraph.map(|s| s.to_string());
    t.push("row", column(&cells, |c| c.0.to_string()))?;
    t.push("column", column(&cells, |c| c.1.to_string()))?;
    t.push("row_latent", column(&cells, |c| latent(c.0)))?;
    t.push("column_latent", column(&cells, |c| latent(c.1)))?;
    t.push(
        "row_subgraph",
        cells.iter().map(|c| subgraph(c.0)).collect(),
    )?;
    t.push(
        "column_subgraph",
        cells.iter().map(|c| subgraph(c.1)).collect(),
    )?;
    let at = |v: &[f64], c: &(usize, usize)| v[c.0 * k + c.1];
    t.push(
        "cooccurrence",
        column(&cells, |c| float_repr(at(&m.heat_counts, c))),
    )?;
    t.push(
        "jaccard",
        column(&cells, |c| float_repr(at(&m.heat_jaccard, c))),
    )?;
    write_csv(&t, dir, stem)?;
    let title = format!("{label}: top {k} latents by subgraph");
    write_figure(dir, stem, &title, (1300, 700), |root, hovers| {
        let area = root.titled(&title, ("sans-serif", 20)).map_err(plot_err)?;
        let (left, right) = area.split_horizontally(650);
        let log1p = |v: f64| (1.0 + v).log10();
        let max_count = m.heat_counts.iter().copied().fold(0.0, f64::max);
        let max_j = m.heat_jaccard.iter().copied().fold(0.0, f64::max);
        let caption = format!("co-occurrence, colour log10(1 + C), max {max_count}");
        let colour = |v: f64| VIRIDIS.rgb(log1p(v) / log1p(max_count).max(1e-12));
        heat_panel(&left, &caption, m, &m.heat_counts, colour, hovers)?;
        let caption = format!("Jaccard, max {max_j:.4}");
        let colour = |v: f64| VIRIDIS.rgb(v / max_j.max(1e-12));
        heat_panel(&right, &caption, m, &m.heat_jaccard, colour, hovers)
    })?;
    Ok(())
}

/// One `k × k` panel of the heat map, row 0 at the top.
fn heat_panel(
    area: &Area,
    caption: &str,
    m: &MatrixFigures,
    values: &[f64],
    colour: impl Fn(f64) -> RGBColor,
    hovers: &mut Hovers,
) -> Result<()> {
    let k = m.heat_latents.len();
    let n = k.max(1) as f64;
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(30)
        .build_cartesian_2d(0.0..n, n..0.0)
        .map_err(plot_err)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc("latents, by subgraph")
        .y_desc("latents, by subgraph")
        .x_label_formatter(&|_| String::new())
        .y_label_formatter(&|_| String::new())
        .draw()
        .map_err(plot_err)?;
    let cells = (0..k).flat_map(|a| (0..k).map(move |b| (a, b)));
    chart
        .draw_series(cells.map(|(a, b)| {
            let (x, y) = (b as f64, a as f64);
            Rectangle::new(
                [(x, y), (x + 1.0, y + 1.0)],
                colour(values[a * k + b]).filled(),
            )
        }))
        .map_err(plot_err)?;
    for a in 0..k {
        for b in 0..k {
            let v = values[a * k + b];
            if v > 0.0 {
                let (la, lb) = (&m.heat_latents[a], &m.heat_latents[b]);
                let sub = |s: Option<i64>| s.map_or("-".into(), |s| s.to_string());
                let text = format!(
                    "latents {} (subgraph {}) and {} (subgraph {})\n{}",
                    la.latent,
                    sub(la.subgraph),
                    lb.latent,
                    sub(lb.subgraph),
                    float_repr(v)
                );
                hovers.add(chart.backend_coord(&(b as f64 + 0.5, a as f64 + 0.5)), text);
            }
        }
    }
    let bounds = (1..k).filter(|&i| m.heat_latents[i].subgraph != m.heat_latents[i - 1].subgraph);
    for i in bounds {
        let at = i as f64;
        for line in [[(at, 0.0), (at, n)], [(0.0, at), (n, at)]] {
            chart
                .draw_series(std::iter::once(PathElement::new(line, BLACK)))
                .map_err(plot_err)?;
        }
    }
    Ok(())
}

/// Raw counts and Jaccard of the pairs that co-occurred: two histograms (log y).
fn histograms(
    m: &MatrixFigures,
    log_counts: &[u64],
    label: &str,
    dir: &Path,
    stem: &str,
) -> Result<()> {
    let width = (LOG_MAX - LOG_MIN) / LOG_BINS as f64;
    let used = |c: &u64| *c > 0;
    let (first, last) = (
        log_counts.iter().position(used).unwrap_or(0),
        log_counts.iter().rposition(used).unwrap_or(0),
    );
    let mut bins: Vec<(&str, f64, f64, u64)> = (first..=last.min(log_counts.len().max(1) - 1))
        .filter_map(|b| {
            let lo = LOG_MIN + b as f64 * width;
            Some((
                "count",
                10f64.powf(lo),
                10f64.powf(lo + width),
                *log_counts.get(b)?,
            ))
        })
        .collect();
    let jw = 1.0 / JACCARD_BINS as f64;
    bins.extend(
        m.jaccard_counts
            .iter()
            .enumerate()
            .map(|(b, &c)| ("jaccard", b as f64 * jw, (b + 1) as f64 * jw, c)),
    );
    let mut t = Table::with_rows(bins.len());
    t.push("histogram", column(&bins, |b| b.0.to_string()))?;
    t.push("bin_left", column(&bins, |b| float_repr(b.1)))?;
    t.push("bin_right", column(&bins, |b| float_repr(b.2)))?;
    t.push("pairs", column(&bins, |b| b.3.to_string()))?;
    write_csv(&t, dir, stem)?;
    let series = |kind: &str, name: &str| Series {
        label: name.into(),
        points: bins
            .iter()
            .filter(|b| b.0 == kind)
            .map(|b| {
                let text = format!(
                    "{kind} {}–{}: {} pairs",
                    float_repr(b.1),
                    float_repr(b.2),
                    b.3
                );
                (b.1, b.3 as f64, text)
            })
            .collect(),
    };
    let title = format!("{label}: pairs that co-occurred");
    write_figure(dir, stem, &title, (1200, 520), |root, hovers| {
        let area = root.titled(&title, ("sans-serif", 20)).map_err(plot_err)?;
        let (left, right) = area.split_horizontally(600);
        let axes = |x, log_x| Axes {
            x,
            y: "pairs",
            log_x,
            log_y: true,
            empty: "no pair co-occurred",
        };
        let counts = [series("count", "raw count C[i,j] (bins of 0.1 in log10)")];
        line_panel(
            &left,
            "raw co-occurrence counts",
            &axes("C[i,j]", true),
            &counts,
            hovers,
        )?;
        let jaccard = [series("jaccard", "Jaccard J[i,j] (bins of 0.02)")];
        line_panel(&right, "Jaccard", &axes("J[i,j]", false), &jaccard, hovers)
    })?;
    Ok(())
}

/// The edge-cutoff sweep: largest subgraph and number of subgraphs against the cutoff.
fn sweep(m: &MatrixFigures, label: &str, dir: &Path, stem: &str) -> Result<()> {
    let s = &m.sweep;
    let mut t = Table::with_rows(s.len());
    t.push("cutoff", column(s, |p| float_repr(p.cutoff)))?;
    t.push("largest_subgraph", column(s, |p| p.largest.to_string()))?;
    t.push("subgraphs", column(s, |p| p.subgraphs.to_string()))?;
    t.push(
        "subgraphs_2plus",
        column(s, |p| p.subgraphs_2plus.to_string()),
    )?;
    write_csv(&t, dir, stem)?;
    let line = |name: &str, f: fn(&super::matrix::SweepPoint) -> usize| Series {
        label: name.into(),
        points: s
            .iter()
            .map(|p| {
                let v = f(p);
                (
                    p.cutoff,
                    v as f64,
                    format!("cutoff {:.4}: {name} {v}", p.cutoff),
                )
            })
            .collect(),
    };
    let title = format!("{label}: edge-cutoff sweep (edges: J ≥ cutoff)");
    write_figure(dir, stem, &title, (1200, 520), |root, hovers| {
        let area = root.titled(&title, ("sans-serif", 20)).map_err(plot_err)?;
        let (left, right) = area.split_horizontally(600);
        let axes = |y| Axes {
            x: "Jaccard cutoff",
            y,
            log_x: false,
            log_y: false,
            empty: "",
        };
        let largest = [line("largest subgraph", |p| p.largest)];
        line_panel(
            &left,
            "largest subgraph",
            &axes("latents"),
            &largest,
            hovers,
        )?;
        let counts = [
            line("subgraphs", |p| p.subgraphs),
            line("subgraphs of 2+ latents", |p| p.subgraphs_2plus),
        ];
        line_panel(
            &right,
            "number of subgraphs",
            &axes("subgraphs"),
            &counts,
            hovers,
        )
    })?;
    Ok(())
}
