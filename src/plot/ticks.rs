//! Tick labels of linear axes that stay readable at any scale. plotters labels an `f64` axis
//! with at most five decimals, so an axis over a range near zero (a PCA component without
//! variance) labels every tick "0.0". [`TickLabels`] keeps plotters' own labels (or a chart's
//! own, [`TickLabels::preferring`]) where they are distinct, true to their ticks and short (so
//! such figures keep their bytes), and otherwise picks the decimals, or scientific notation,
//! from the step between the ticks.

use plotters::coord::ranged1d::{Ranged, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use std::ops::Range;

/// Labels per axis that plotters draws unless told otherwise (`x_labels`, `y_labels`).
pub const PLOTTERS_LABELS: usize = 11;

/// The longest label kept as plotters (or the chart's own labeller) writes it.
const LONGEST_PLAIN: usize = 10;

/// Most decimals a step may need to be written in fixed notation (0.0001); finer steps are
/// written in scientific notation.
const MOST_DECIMALS: usize = 4;

/// A label is true when it reads back within this share of the tick step.
const TRUE_WITHIN: f64 = 0.05;

/// A labeller of tick values.
pub type Labeller = fn(&f64) -> String;

/// How an axis's ticks are written.
#[derive(Debug, Clone, Copy)]
enum Style {
    /// As the preferred labeller (plotters' own, unless a chart has its own) writes them.
    Preferred(Labeller),
    /// Fixed notation with this many decimals.
    Fixed(usize),
    /// Scientific notation with this many decimals in the mantissa.
    Scientific(usize),
}

/// The labels of one linear axis: call [`TickLabels::label`] as the mesh's label formatter.
#[derive(Debug, Clone, Copy)]
pub struct TickLabels {
    style: Style,
    /// The step between ticks (0 for a single tick).
    step: f64,
}

impl TickLabels {
    /// Labels for the ticks plotters draws on a linear axis over `range` with at most
    /// `max_labels` labels ([`PLOTTERS_LABELS`] unless the mesh sets another count).
    pub fn new(range: Range<f64>, max_labels: usize) -> Self {
        Self::for_ticks(&axis_ticks(range, max_labels))
    }

    /// Labels for the ticks plotters draws over `range` by default ([`PLOTTERS_LABELS`]).
    pub fn of(range: Range<f64>) -> Self {
        Self::new(range, PLOTTERS_LABELS)
    }

    /// Labels for exactly these `ticks` (ascending, as plotters places them).
    pub fn for_ticks(ticks: &[f64]) -> Self {
        Self::preferring(ticks, <RangedCoordf64 as ValueFormatter<f64>>::format)
    }

    /// Labels for `ticks` as `preferred` writes them where those are distinct, true and short,
    /// else chosen from the step.
    pub fn preferring(ticks: &[f64], preferred: Labeller) -> Self {
        let step = smallest_step(ticks);
        let candidates = std::iter::once(Style::Preferred(preferred))
            .chain(fixed_styles(ticks, step))
            .chain((0..=16).map(Style::Scientific));
        for style in candidates {
            let labels = Self { style, step };
            if labels.fit(ticks) {
                return labels;
            }
        }
        // Unreachable for finite ticks (17 significant digits tell any two doubles apart).
        Self {
            style: Style::Scientific(16),
            step,
        }
    }

    /// The label of the tick `v`.
    pub fn label(&self, v: f64) -> String {
        let v = snapped(v, self.step);
        match self.style {
            Style::Preferred(labeller) => labeller(&v),
            Style::Fixed(decimals) => format!("{v:.decimals$}"),
            Style::Scientific(_) if v == 0.0 => "0".into(),
            Style::Scientific(decimals) => format!("{v:.decimals$e}"),
        }
    }

    /// [`TickLabels::label`] as a mesh's label formatter takes it.
    pub fn format(&self, v: &f64) -> String {
        self.label(*v)
    }

    /// Whether this style writes `ticks` as labels that differ from one tick to the next,
    /// read back as their ticks and, written as plotters writes them, are short.
    fn fit(&self, ticks: &[f64]) -> bool {
        let labels: Vec<String> = ticks.iter().map(|&v| self.label(v)).collect();
        let distinct = labels.windows(2).all(|w| w[0] != w[1]);
        let short = !matches!(self.style, Style::Preferred(_))
            || labels.iter().all(|l| l.len() <= LONGEST_PLAIN);
        distinct && short && ticks.iter().zip(&labels).all(|(&v, l)| self.reads_as(l, v))
    }

    /// Whether `label` reads back as the tick `v`.
    fn reads_as(&self, label: &str, v: f64) -> bool {
        let Ok(read) = label.parse::<f64>() else {
            return false;
        };
        let tolerance = if self.step > 0.0 {
            self.step * TRUE_WITHIN
        } else {
            v.abs() * 1e-9
        };
        (read - v).abs() <= tolerance
    }
}

/// The ticks plotters places on a linear axis over `range` for at most `max_labels` labels.
pub fn axis_ticks(range: Range<f64>, max_labels: usize) -> Vec<f64> {
    RangedCoordf64::from(range).key_points(max_labels)
}

/// The smallest gap between consecutive ticks (0 for fewer than two).
fn smallest_step(ticks: &[f64]) -> f64 {
    let step = ticks
        .windows(2)
        .map(|w| (w[1] - w[0]).abs())
        .filter(|d| *d > 0.0)
        .fold(f64::INFINITY, f64::min);
    if step.is_finite() {
        step
    } else {
        0.0
    }
}

/// Fixed notation with the fewest decimals that can show `step` (and one or two more, for
/// steps such as 0.25), unless the ticks are too large or the step too fine for it.
fn fixed_styles(ticks: &[f64], step: f64) -> impl Iterator<Item = Style> {
    let largest = ticks.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let fewest = if step > 0.0 {
        (-step.log10()).ceil().max(0.0) as usize
    } else {
        0
    };
    let usable = largest < 1e7 && fewest <= MOST_DECIMALS;
    (fewest..fewest + 3)
        .filter(move |_| usable)
        .map(Style::Fixed)
}

/// `v` moved onto the nearest multiple of `step` when within rounding error of it (plotters'
/// ticks carry errors such as 0.30000000000000004 or -1e-17 for 0), and -0 written as 0.
fn snapped(v: f64, step: f64) -> f64 {
    let mut out = v;
    if step > 0.0 {
        let on_grid = (v / step).round() * step;
        if (v - on_grid).abs() <= step * 1e-6 {
            out = on_grid;
        }
    }
    if out == 0.0 {
        0.0
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every range the tests label: spans from 1e-9 to 1e9, around zero, around large
    /// offsets, negative, and a zero span; spans below 1e-12 of their offset are left out
    /// (a double resolves an offset to ~1e-16 of it, so their ticks are a few ulps apart).
    fn ranges() -> Vec<Range<f64>> {
        let mut out = Vec::new();
        for e in -9..=9 {
            let span = 10f64.powi(e);
            for offset in [0.0f64, 1.0, -1.0, 1e3, -1e3, 1e6, -1e6, 1e9] {
                if span < offset.abs() * 1e-12 {
                    continue;
                }
                for centred in [false, true] {
                    let lo = if centred { offset - span / 2.0 } else { offset };
                    out.push(lo..lo + span);
                    out.push(lo..lo + 3.7 * span);
                }
            }
        }
        out.extend([0.0..0.0, 5.0..5.0, -2.5e-7..-2.5e-7]);
        out
    }

    /// Ranges (with the labels' count) where plotters' own labels were already distinct, true
    /// and short: the figures drawn over them keep their bytes.
    const PLOTTERS_FINE: [(f64, f64, usize); 8] = [
        (0.0, 1.0, 11),
        (-3.0, 7.0, 11),
        (0.0, 250.0, 11),
        (-0.05, 1.05, 11),
        (0.0, 0.34, 11),
        (0.0, 12.5, 5),
        (-0.5, 0.5, 11),
        (1024.0, 65536.0, 11),
    ];

    #[test]
    fn consecutive_labels_differ_and_read_back_as_their_ticks_at_every_scale() {
        for range in ranges() {
            for max_labels in [2, 5, PLOTTERS_LABELS] {
                let ticks = axis_ticks(range.clone(), max_labels);
                let labels = TickLabels::for_ticks(&ticks);
                let text: Vec<String> = ticks.iter().map(|&v| labels.label(v)).collect();
                // plotters may place no tick at all when asked for very few.
                assert!(
                    !ticks.is_empty() || max_labels < PLOTTERS_LABELS,
                    "{range:?}"
                );
                for w in text.windows(2) {
                    assert_ne!(w[0], w[1], "{range:?}: {text:?}");
                }
                let step = smallest_step(&ticks);
                for (v, l) in ticks.iter().zip(&text) {
                    let read: f64 = l.parse().unwrap_or_else(|_| panic!("{l:?} is no number"));
                    // Independent of the chosen style: within a tenth of a step (or exact
                    // to 1e-9 relative for a single tick).
                    let tolerance = if step > 0.0 {
                        step / 10.0
                    } else {
                        v.abs() * 1e-9
                    };
                    assert!((read - v).abs() <= tolerance, "{range:?}: {v} labelled {l}");
                    assert!(l.len() <= 24, "{range:?}: {l} is unreadably long");
                }
            }
        }
    }

    #[test]
    fn a_near_zero_pca_range_is_no_longer_labelled_zero_everywhere() {
        let ticks = axis_ticks(-3e-7..4e-7, PLOTTERS_LABELS);
        let before: Vec<String> = ticks.iter().map(RangedCoordf64::format).collect();
        assert!(
            before.iter().all(|l| l == "0.0" || l == "-0.0"),
            "{before:?}"
        );
        let labels = TickLabels::for_ticks(&ticks);
        let after: Vec<String> = ticks.iter().map(|&v| labels.label(v)).collect();
        assert_eq!(after.first().map(String::as_str), Some("-3e-7"));
        assert!(after.contains(&"0".to_string()), "{after:?}");
    }

    #[test]
    fn labels_plotters_wrote_well_are_kept_as_they_were() {
        for (lo, hi, n) in PLOTTERS_FINE {
            let ticks = axis_ticks(lo..hi, n);
            let labels = TickLabels::new(lo..hi, n);
            for v in ticks {
                assert_eq!(labels.label(v), RangedCoordf64::format(&v), "{lo}..{hi}");
            }
        }
    }

    #[test]
    fn fine_steps_get_the_decimals_they_need() {
        let labels = TickLabels::for_ticks(&[0.1, 0.1025, 0.105]);
        assert_eq!(labels.label(0.1025), "0.1025");
        let labels = TickLabels::for_ticks(&[1e6, 1e6 + 0.5, 1e6 + 1.0]);
        assert_eq!(labels.label(1e6 + 0.5), "1000000.5");
        let labels = TickLabels::for_ticks(&[-2e-9, -1e-9, 0.0]);
        assert_eq!(labels.label(-1e-9), "-1e-9");
        assert_eq!(labels.label(-1e-25), "0", "rounding error at zero is zero");
    }
}
