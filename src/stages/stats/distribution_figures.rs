//! The co-occurrence distribution figures (the `feature_distribution_*` notebooks): per SAE and
//! threshold, linear histograms of observed and expected rates; across SAEs, their box plots
//! side by side, SAEs grouped by release and ordered by width. PNG, HTML and CSV each.

use super::distribution::{BoxStats, DENSITY_BINS};
use super::StatsRow;
use crate::io::csv_table::Table;
use crate::io::pyfmt::float_repr;
use crate::plot::interactive::write_figure;
use crate::plot::lines::{line_panel, value_labels, Axes, Series};
use crate::plot::plot_err;
use crate::plot::ticks::axis_ticks;
use crate::results::layout::{stats_sae_stem, STATS_DISTRIBUTION_BOXPLOTS};
use anyhow::Result;
use plotters::prelude::*;
use std::path::Path;

/// Most ticks on the box plots' rate axis.
const BOX_Y_TICKS: usize = 9;

const KIND: &str = "distribution";

/// A column of the box plots' CSV: its name and its value in a box.
type BoxColumn = (&'static str, fn(&BoxStats) -> f64);

/// The files of a row's histogram figure (none without a count matrix).
pub(super) fn files(r: &StatsRow) -> Vec<String> {
    match r.distributions {
        Some(_) => {
            let stem = stats_sae_stem(KIND, &r.model, &r.release, &r.sae, r.threshold);
            ["png", "html", "csv"]
                .map(|e| format!("{stem}.{e}"))
                .to_vec()
        }
        None => Vec::new(),
    }
}

/// The files of the box plots across SAEs (none when no row has a count matrix).
pub(super) fn box_files(rows: &[StatsRow]) -> Vec<String> {
    match rows.iter().any(|r| r.distributions.is_some()) {
        true => ["png", "html", "csv"]
            .map(|e| format!("{STATS_DISTRIBUTION_BOXPLOTS}.{e}"))
            .to_vec(),
        false => Vec::new(),
    }
}

/// `distribution_…`: shares of pairs by observed and expected rate, in linear bins.
pub(super) fn write_histograms(r: &StatsRow, dir: &Path) -> Result<()> {
    let Some(d) = &r.distributions else {
        return Ok(());
    };
    let stem = stats_sae_stem(KIND, &r.model, &r.release, &r.sae, r.threshold);
    let width = d.max_rate / DENSITY_BINS as f64;
    let left = |b: usize| b as f64 * width;
    let mut t = Table::with_rows(DENSITY_BINS);
    let cells = |f: &dyn Fn(usize) -> String| (0..DENSITY_BINS).map(|b| Some(f(b))).collect();
    t.push("bin_left", cells(&|b| float_repr(left(b))))?;
    t.push("bin_right", cells(&|b| float_repr(left(b + 1))))?;
    t.push(
        "observed_share",
        cells(&|b| float_repr(d.observed_density[b])),
    )?;
    t.push(
        "expected_share",
        cells(&|b| float_repr(d.expected_density[b])),
    )?;
    crate::io::atomic::write_bytes(&dir.join(format!("{stem}.csv")), t.to_csv().as_bytes())?;
    let series = |name: &str, v: &[f64]| Series {
        label: name.into(),
        points: (0..DENSITY_BINS)
            .map(|b| {
                let text = format!("{name}, rate {}: {}", float_repr(left(b)), float_repr(v[b]));
                (left(b), v[b], text)
            })
            .collect(),
    };
    let title = format!(
        "{} {} {}, threshold {}: co-occurrence per token",
        r.model,
        r.release,
        r.sae,
        float_repr(r.threshold)
    );
    write_figure(dir, &stem, &title, (900, 560), |root, hovers| {
        let area = root.titled(&title, ("sans-serif", 18)).map_err(plot_err)?;
        let s = [
            series("observed C[i,j]/T", &d.observed_density),
            series("expected p_i·p_j", &d.expected_density),
        ];
        let axes = Axes {
            x: "co-occurrence rate (bin's left edge)",
            y: "share of pairs i < j",
            log_x: false,
            log_y: false,
            empty: "",
        };
        line_panel(&area, "linear histograms", &axes, &s, hovers)
    })?;
    Ok(())
}

/// The rows with distributions, grouped by model and release, by width within a release.
fn box_rows(rows: &[StatsRow]) -> Vec<&StatsRow> {
    let mut out: Vec<&StatsRow> = rows.iter().filter(|r| r.distributions.is_some()).collect();
    out.sort_by(|a, b| {
        (&a.model, &a.release)
            .cmp(&(&b.model, &b.release))
            .then(a.d_sae.cmp(&b.d_sae))
            .then(a.threshold.total_cmp(&b.threshold))
            .then(a.sae.cmp(&b.sae))
    });
    out
}

/// `cooccurrence_distributions`: box plots of observed and expected rates for every SAE and
/// threshold with a count matrix.
pub(super) fn write_boxplots(rows: &[StatsRow], dir: &Path) -> Result<()> {
    let shown = box_rows(rows);
    if shown.is_empty() {
        return Ok(());
    }
    let boxes: Vec<(&StatsRow, &str, &BoxStats)> = shown
        .iter()
        .flat_map(|r| {
            let d = r.distributions.as_ref().expect("filtered");
            [(*r, "observed", &d.observed), (*r, "expected", &d.expected)]
        })
        .collect();
    let mut t = Table::with_rows(boxes.len());
    let text = |f: &dyn Fn(&(&StatsRow, &str, &BoxStats)) -> String| {
        boxes.iter().map(|b| Some(f(b))).collect::<Vec<_>>()
    };
    t.push("model", text(&|b| b.0.model.clone()))?;
    t.push("release", text(&|b| b.0.release.clone()))?;
    t.push("sae", text(&|b| b.0.sae.clone()))?;
    t.push("n_batches", text(&|b| b.0.n_batches.clone()))?;
    t.push("activation_threshold", text(&|b| float_repr(b.0.threshold)))?;
    t.push("d_sae", text(&|b| b.0.d_sae.to_string()))?;
    t.push("distribution", text(&|b| b.1.to_string()))?;
    let stat: [BoxColumn; 7] = [
        ("min", |s| s.min),
        ("whisker_low", |s| s.whisker_low),
        ("q1", |s| s.q1),
        ("median", |s| s.median),
        ("q3", |s| s.q3),
        ("whisker_high", |s| s.whisker_high),
        ("max", |s| s.max),
    ];
    for (name, f) in stat {
        t.push(name, text(&|b| float_repr(f(b.2))))?;
    }
    let path = dir.join(format!("{STATS_DISTRIBUTION_BOXPLOTS}.csv"));
    crate::io::atomic::write_bytes(&path, t.to_csv().as_bytes())?;
    let title = "Co-occurrence per token over latent pairs: observed (blue) and expected (red)";
    let labels: Vec<String> = shown
        .iter()
        .map(|r| format!("{} {} t={}", r.release, r.d_sae, float_repr(r.threshold)))
        .collect();
    let width = (200 + group_width(&labels) * shown.len() as u32).max(700);
    write_figure(
        dir,
        STATS_DISTRIBUTION_BOXPLOTS,
        title,
        (width, 600),
        |root, hovers| {
            let top = boxes.iter().map(|b| b.2.whisker_high).fold(0.0, f64::max);
            let y = 0.0..(top * 1.1).max(1e-12);
            let y_labels = value_labels(&axis_ticks(y.clone(), BOX_Y_TICKS), false);
            let mut chart = ChartBuilder::on(root)
                .caption(title, ("sans-serif", 18))
                .margin(16)
                .x_label_area_size(60)
                .y_label_area_size(80)
                .build_cartesian_2d(-0.5..shown.len() as f64 - 0.5, y)
                .map_err(plot_err)?;
            chart
                .configure_mesh()
                .disable_mesh()
                .x_labels(shown.len().max(1))
                .x_label_formatter(&|v| {
                    let i = v.round();
                    match (i - v).abs() < 1e-6 && i >= 0.0 {
                        true => labels.get(i as usize).cloned().unwrap_or_default(),
                        false => String::new(),
                    }
                })
                .y_labels(BOX_Y_TICKS)
                .y_label_formatter(&|v| y_labels.label(*v))
                .y_desc("rate per token (whiskers: furthest value within 1.5 IQR)")
                .draw()
                .map_err(plot_err)?;
            for (k, (r, kind, s)) in boxes.iter().enumerate() {
                let centre = (k / 2) as f64 + if k % 2 == 0 { -0.18 } else { 0.18 };
                let colour = if k % 2 == 0 { BLUE } else { RED };
                let (l, h) = (centre - 0.14, centre + 0.14);
                let elements = [
                    Rectangle::new([(l, s.q1), (h, s.q3)], colour.mix(0.3).filled()).into_dyn(),
                    Rectangle::new([(l, s.q1), (h, s.q3)], colour.stroke_width(1)).into_dyn(),
                    PathElement::new([(l, s.median), (h, s.median)], BLACK.stroke_width(2))
                        .into_dyn(),
                    PathElement::new([(centre, s.q3), (centre, s.whisker_high)], colour).into_dyn(),
                    PathElement::new([(centre, s.q1), (centre, s.whisker_low)], colour).into_dyn(),
                ];
                chart.draw_series(elements).map_err(plot_err)?;
                let text = format!(
                    "{} {} {} threshold {}\n{kind}: median {}, box {}–{}, whiskers {}–{}",
                    r.model,
                    r.release,
                    r.sae,
                    float_repr(r.threshold),
                    float_repr(s.median),
                    float_repr(s.q1),
                    float_repr(s.q3),
                    float_repr(s.whisker_low),
                    float_repr(s.whisker_high)
                );
                hovers.add(chart.backend_coord(&(centre, s.median)), text);
            }
            Ok(())
        },
    )?;
    Ok(())
}

/// Pixels per box pair: room for the longest x label (12-point sans-serif, at most ~7 pixels a
/// character, with a margin), so that neighbouring labels never overlap; at least 90.
fn group_width(labels: &[String]) -> u32 {
    let longest = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0) as u32;
    (7 * longest + 16).max(90)
}
