//! The stage's PNG figures: size effects against SAE width (Fig. 3 and 9 style) and, per SAE
//! and threshold, observed vs expected co-occurrence (Fig. 7 style).

use super::rows::{LOG_BINS, LOG_MAX, LOG_MIN};
use super::{Cooccurrence, StatsRow};
use crate::io::pyfmt::float_repr;
use crate::plot::ticks::TickLabels;
use crate::plot::{plot_err, with_png};
use anyhow::Result;
use plotters::prelude::*;
use std::path::Path;

/// A chart over SAE widths (log x axis, "SAE latents") and 0..`y_max`, with its mesh drawn.
fn width_chart<'a, 'b>(
    area: &'a DrawingArea<BitMapBackend<'b>, plotters::coord::Shift>,
    caption: &str,
    widths: std::ops::Range<f64>,
    y_max: f64,
    y_desc: &str,
) -> Result<
    ChartContext<
        'a,
        BitMapBackend<'b>,
        Cartesian2d<
            plotters::coord::combinators::LogCoord<f64>,
            plotters::coord::types::RangedCoordf64,
        >,
    >,
> {
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 22))
        .margin(20)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(widths.log_scale(), 0.0..y_max)
        .map_err(plot_err)?;
    let y_ticks = TickLabels::of(chart.y_range());
    chart
        .configure_mesh()
        .x_desc("SAE latents")
        .y_desc(y_desc)
        .y_label_formatter(&|v| y_ticks.format(v))
        .draw()
        .map_err(plot_err)?;
    Ok(chart)
}

/// Draws the chart's series labels in a framed white box.
fn draw_legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
) -> Result<()> {
    chart
        .configure_series_labels()
        .background_style(WHITE)
        .border_style(BLACK)
        .draw()
        .map_err(plot_err)
}

/// Fig. 3 and 9 style: active latents per token and subgraph statistics against SAE width,
/// one line per release and threshold.
pub(super) fn plot_size_effects(rows: &[StatsRow], path: &Path) -> Result<()> {
    with_png(path, |tmp| {
        let root = BitMapBackend::new(tmp, (1400, 600)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let (left, right) = root.split_horizontally(700);
        let x_max = rows.iter().map(|r| r.d_sae).max().unwrap_or(1) as f64 * 2.0;
        let x_min = rows.iter().map(|r| r.d_sae).min().unwrap_or(1) as f64 / 2.0;
        let mut thresholds: Vec<f64> = rows.iter().map(|r| r.threshold).collect();
        thresholds.sort_by(f64::total_cmp);
        thresholds.dedup();
        let l0_max = rows
            .iter()
            .filter_map(|r| r.l0_mean.map(|m| m + r.l0_std.unwrap_or(0.0)))
            .fold(1.0, f64::max)
            * 1.1;
        let mut chart = width_chart(
            &left,
            "Active latents per token",
            x_min..x_max,
            l0_max,
            "mean ± std",
        )?;
        // One line per release and threshold: releases are never joined.
        let mut releases: Vec<(&str, &str)> = rows
            .iter()
            .map(|r| (r.model.as_str(), r.release.as_str()))
            .collect();
        releases.sort();
        releases.dedup();
        let series: Vec<((&str, &str), f64)> = releases
            .iter()
            .flat_map(|&rel| thresholds.iter().map(move |&t| (rel, t)))
            .filter(|&(rel, t)| {
                rows.iter()
                    .any(|r| r.threshold == t && (r.model.as_str(), r.release.as_str()) == rel)
            })
            .collect();
        for (k, &(rel, t)) in series.iter().enumerate() {
            let colour = Palette99::pick(k).to_rgba();
            let label = match releases.len() {
                1 => format!("threshold {}", float_repr(t)),
                _ => format!("{} {} threshold {}", rel.0, rel.1, float_repr(t)),
            };
            let mut pts: Vec<(f64, f64, f64)> = rows
                .iter()
                .filter(|r| r.threshold == t && (r.model.as_str(), r.release.as_str()) == rel)
                .filter_map(|r| Some((r.d_sae as f64, r.l0_mean?, r.l0_std.unwrap_or(0.0))))
                .collect();
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            chart
                .draw_series(LineSeries::new(
                    pts.iter().map(|p| (p.0, p.1)),
                    colour.stroke_width(2),
                ))
                .map_err(plot_err)?
                .label(label)
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], colour));
            chart
                .draw_series(pts.iter().map(|p| {
                    ErrorBar::new_vertical(p.0, p.1 - p.2, p.1, p.1 + p.2, colour.filled(), 8)
                }))
                .map_err(plot_err)?;
        }
        draw_legend(&mut chart)?;
        let size_max = rows
            .iter()
            .filter_map(|r| r.mean_subgraph_size_without_singletons)
            .fold(2.0, f64::max)
            * 1.1;
        let mut chart = width_chart(
            &right,
            "Subgraphs (node tables)",
            x_min..x_max,
            size_max,
            "mean subgraph size (2+) / fraction × 10",
        )?;
        let mut pts: Vec<(f64, f64, f64)> = rows
            .iter()
            .filter_map(|r| {
                Some((
                    r.d_sae as f64,
                    r.mean_subgraph_size_without_singletons?,
                    r.fraction_in_subgraphs?,
                ))
            })
            .collect();
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        chart
            .draw_series(
                pts.iter()
                    .map(|p| Circle::new((p.0, p.1), 6, BLUE.filled())),
            )
            .map_err(plot_err)?
            .label("mean size of subgraphs with 2+ latents")
            .legend(|(x, y)| Circle::new((x + 10, y), 5, BLUE.filled()));
        chart
            .draw_series(
                pts.iter()
                    .map(|p| Cross::new((p.0, p.2 * 10.0), 6, RED.stroke_width(2))),
            )
            .map_err(plot_err)?
            .label("fraction of latents in subgraphs × 10")
            .legend(|(x, y)| Cross::new((x + 10, y), 5, RED.stroke_width(2)));
        draw_legend(&mut chart)?;
        root.present().map_err(plot_err)?;
        Ok(())
    })
}

/// Fig. 7 style: distributions of log₁₀ observed and expected co-occurrence.
pub(super) fn plot_cooccurrence(r: &StatsRow, c: &Cooccurrence, path: &Path) -> Result<()> {
    with_png(path, |tmp| {
        let root = BitMapBackend::new(tmp, (900, 600)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let dens = |counts: &[u64]| -> Vec<f64> {
            let total = counts.iter().sum::<u64>().max(1) as f64;
            counts.iter().map(|&k| k as f64 / total).collect()
        };
        let (obs, exp) = (
            dens(&c.observed_log10_counts),
            dens(&c.expected_log10_counts),
        );
        let y_max = obs.iter().chain(&exp).fold(0.0f64, |m, &v| m.max(v)) * 1.1 + 1e-9;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!(
                    "{} {} {}, threshold {}: co-occurrence",
                    r.model,
                    r.release,
                    r.sae,
                    float_repr(r.threshold)
                ),
                ("sans-serif", 20),
            )
            .margin(20)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(LOG_MIN..LOG_MAX, 0.0..y_max)
            .map_err(plot_err)?;
        let (x_ticks, y_ticks) = (
            TickLabels::of(chart.x_range()),
            TickLabels::of(chart.y_range()),
        );
        chart
            .configure_mesh()
            .x_desc("log10 count of a latent pair")
            .y_desc("share of pairs")
            .x_label_formatter(&|v| x_ticks.format(v))
            .y_label_formatter(&|v| y_ticks.format(v))
            .draw()
            .map_err(plot_err)?;
        let width = (LOG_MAX - LOG_MIN) / LOG_BINS as f64;
        for (values, colour, label) in [
            (&obs, BLUE, "observed C[i,j] (pairs that co-occurred)"),
            (&exp, RED, "expected T·p_i·p_j"),
        ] {
            chart
                .draw_series(LineSeries::new(
                    c.log10_bin_edges
                        .iter()
                        .zip(values.iter())
                        .map(|(&e, &v)| (e + width / 2.0, v)),
                    colour.stroke_width(2),
                ))
                .map_err(plot_err)?
                .label(label)
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], colour));
        }
        draw_legend(&mut chart)?;
        root.present().map_err(plot_err)?;
        Ok(())
    })
}
