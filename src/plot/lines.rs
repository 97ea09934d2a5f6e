//! Line charts of named series (a marker on each value, a hover text per point) with optional
//! log₁₀ axes, drawn as linear axes of log₁₀ values whose ticks are labelled with the values.

use super::interactive::{Area, Hovers};
use super::plot_err;
use super::ticks::{axis_ticks, TickLabels};
use anyhow::Result;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

/// One series: its legend label and its points `(x, y, hover text)`, drawn in the order given.
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64, String)>,
}

/// The axes of a panel: descriptions and which are logarithmic.
pub struct Axes<'a> {
    pub x: &'a str,
    pub y: &'a str,
    pub log_x: bool,
    pub log_y: bool,
    /// Written across a panel with no point to draw (why it has none).
    pub empty: &'a str,
}

/// `v` on an axis: its log₁₀ on a log axis (none for v ≤ 0 there, or non-finite).
fn on_axis(v: f64, log: bool) -> Option<f64> {
    let t = if log { v.log10() } else { v };
    (v.is_finite() && (!log || v > 0.0) && t.is_finite()).then_some(t)
}

/// The value at the axis position `t` (10^t on a log axis).
fn value_at(t: f64, log: bool) -> f64 {
    if log {
        10f64.powf(t)
    } else {
        t
    }
}

/// A tick label of the axis value `t` (10^t on a log axis), short at any scale.
pub fn tick_label(t: f64, log: bool) -> String {
    value_label(&value_at(t, log))
}

/// The short label of a tick's value.
fn value_label(v: &f64) -> String {
    let v = *v;
    let a = v.abs();
    if v == 0.0 {
        "0".into()
    } else if !(1e-4..1e5).contains(&a) {
        format!("{v:.1e}")
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else {
        // Three significant digits, trailing zeros dropped.
        let decimals = (2 - a.log10().floor() as i32).max(0) as usize;
        let s = format!("{v:.decimals$}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// The labels of the values at the axis positions `ticks`: the short ones of [`tick_label`]
/// where they tell the ticks apart truly, else decimals or scientific notation from the step
/// between the values.
pub fn value_labels(ticks: &[f64], log: bool) -> TickLabels {
    let values: Vec<f64> = ticks.iter().map(|&t| value_at(t, log)).collect();
    TickLabels::preferring(&values, value_label)
}

/// Most ticks on a linear axis (placed as plotters places them).
const MOST_LINEAR_TICKS: usize = 9;

/// Tick positions on an axis spanning `range`: on a log axis the powers of ten in it (with 2×
/// and 5× when it spans under three decades; round values when under a decade), else round
/// values as plotters places them; at most about ten.
fn ticks(range: &std::ops::Range<f64>, log: bool) -> Vec<f64> {
    let (lo, hi) = (range.start, range.end);
    if log {
        let decades = (lo.ceil() as i64..=hi.floor() as i64).map(|e| e as f64);
        let mut t: Vec<f64> = if hi - lo < 3.0 {
            let steps = [1.0f64, 2.0, 5.0].map(f64::log10);
            (lo.floor() as i64..=hi.ceil() as i64)
                .flat_map(|e| steps.map(|s| e as f64 + s))
                .filter(|t| (lo..=hi).contains(t))
                .collect()
        } else {
            decades.collect()
        };
        if t.len() < 2 {
            // Under a decade: round values, placed on the log axis.
            let values = axis_ticks(10f64.powf(lo)..10f64.powf(hi), MOST_LINEAR_TICKS);
            t = values
                .into_iter()
                .filter(|&v| v > 0.0)
                .map(f64::log10)
                .collect();
        }
        return t;
    }
    axis_ticks(lo..hi, MOST_LINEAR_TICKS)
}

/// A linear f64 axis whose ticks are the given values.
struct Ticked {
    inner: RangedCoordf64,
    ticks: Vec<f64>,
}

impl Ticked {
    fn new(range: std::ops::Range<f64>, ticks: Vec<f64>) -> Self {
        Self {
            inner: range.into(),
            ticks,
        }
    }
}

impl Ranged for Ticked {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.inner.map(value, limit)
    }

    fn key_points<Hint: KeyPointHint>(&self, _hint: Hint) -> Vec<f64> {
        self.ticks.clone()
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.inner.range()
    }
}

/// `lo..hi` with 5% margins (a unit span around a single value; -1..1 when empty).
fn padded(values: impl Iterator<Item = f64>) -> std::ops::Range<f64> {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
        (a.min(v), b.max(v))
    });
    if !(lo.is_finite() && hi.is_finite()) {
        return -1.0..1.0;
    }
    let pad = if hi > lo { (hi - lo) * 0.05 } else { 0.5 };
    (lo - pad)..(hi + pad)
}

/// A panel of `series`, each a coloured line with a dot on every point (hover: its text). The
/// k-th series gets the k-th colour; a series without points is left out of the panel and its
/// legend but keeps its colour, so that panels sharing series colour them alike.
pub fn line_panel(
    area: &Area,
    caption: &str,
    axes: &Axes,
    series: &[Series],
    hovers: &mut Hovers,
) -> Result<()> {
    let drawn: Vec<Vec<(f64, f64, &str)>> = series
        .iter()
        .map(|s| {
            s.points
                .iter()
                .filter_map(|(x, y, t)| {
                    Some((
                        on_axis(*x, axes.log_x)?,
                        on_axis(*y, axes.log_y)?,
                        t.as_str(),
                    ))
                })
                .collect()
        })
        .collect();
    let xs = padded(drawn.iter().flatten().map(|p| p.0));
    let ys = padded(drawn.iter().flatten().map(|p| p.1));
    let (x_ticks, y_ticks) = (ticks(&xs, axes.log_x), ticks(&ys, axes.log_y));
    let (x_labels, y_labels) = (
        value_labels(&x_ticks, axes.log_x),
        value_labels(&y_ticks, axes.log_y),
    );
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 20))
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(64)
        .build_cartesian_2d(Ticked::new(xs, x_ticks), Ticked::new(ys, y_ticks))
        .map_err(plot_err)?;
    let (log_x, log_y) = (axes.log_x, axes.log_y);
    chart
        .configure_mesh()
        .disable_x_mesh()
        .disable_y_mesh()
        .x_desc(axes.x)
        .y_desc(axes.y)
        .x_label_formatter(&|t| x_labels.label(value_at(*t, log_x)))
        .y_label_formatter(&|t| y_labels.label(value_at(*t, log_y)))
        .draw()
        .map_err(plot_err)?;
    for (k, (s, points)) in series.iter().zip(&drawn).enumerate() {
        if s.points.is_empty() {
            continue;
        }
        let colour = Palette99::pick(k).to_rgba();
        chart
            .draw_series(LineSeries::new(
                points.iter().map(|p| (p.0, p.1)),
                colour.stroke_width(2),
            ))
            .map_err(plot_err)?
            .label(&s.label)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], colour.stroke_width(2)));
        chart
            .draw_series(
                points
                    .iter()
                    .map(|p| Circle::new((p.0, p.1), 4, colour.filled())),
            )
            .map_err(plot_err)?;
        for p in points {
            hovers.add(chart.backend_coord(&(p.0, p.1)), p.2.to_string());
        }
    }
    if drawn.iter().all(Vec::is_empty) {
        let (w, h) = area.dim_in_pixel();
        let style = ("sans-serif", 16).into_font().color(&BLACK);
        area.draw_text(axes.empty, &style, (w as i32 / 6, h as i32 / 2))
            .map_err(plot_err)?;
    } else {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(plot_err)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_labels_stay_short_and_distinct_at_any_scale() {
        assert_eq!(tick_label(3.0, true), "1000");
        assert_eq!(tick_label(-1.0, true), "0.1");
        assert_eq!(tick_label(0.25, false), "0.25");
        assert_eq!(tick_label(2e-7, false), "2.0e-7");
        assert_eq!(tick_label(6.0, true), "1.0e6");
        assert_ne!(tick_label(1e-6, false), tick_label(2e-6, false));
        assert_eq!(tick_label(0.0015, false), "0.0015");
        assert_eq!(tick_label(0.0005, false), "0.0005");
        assert_eq!(tick_label(12.5, false), "12.5");
        assert_eq!(on_axis(0.0, true), None);
        assert_eq!(on_axis(0.0, false), Some(0.0));
    }

    #[test]
    fn labels_tell_ticks_apart_where_the_short_ones_cannot() {
        for (range, log) in [
            (1e5..1e5 + 0.02, false),
            (0.5..0.5004, false),
            (100.0..103.0, false),
            (5.0..5.00001, true),
        ] {
            let t = ticks(&range, log);
            let labels = value_labels(&t, log);
            let text: Vec<String> = t.iter().map(|&x| labels.label(value_at(x, log))).collect();
            assert!(t.len() >= 2, "{range:?}");
            for w in text.windows(2) {
                assert_ne!(w[0], w[1], "{range:?}: {text:?}");
            }
        }
        // Where the short labels are distinct and true, they are kept.
        let t = ticks(&(0.0..1.0), false);
        let labels = value_labels(&t, false);
        for x in t {
            assert_eq!(labels.label(x), tick_label(x, false));
        }
    }

    #[test]
    fn ticks_sit_at_round_values() {
        let close = |a: &[f64], b: &[f64]| {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-9)
        };
        // 128 .. 1 000 000 latents: whole decades.
        assert!(close(&ticks(&(2.1..6.0), true), &[3.0, 4.0, 5.0, 6.0]));
        // 0.9 .. 3: 1, 2 and 5 × 10^k.
        let t = ticks(&(0.9f64.log10()..3f64.log10()), true);
        assert!(close(&t, &[0.0, 2f64.log10()]), "{t:?}");
        assert!(close(
            &ticks(&(0.0..1.0), false),
            &[0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
        ));
        let tiny = ticks(&(1e-7..3e-7), false);
        assert!(tiny.len() >= 3 && tiny.len() <= 10, "{tiny:?}");
    }
}
