//! The drawing primitives of the subspace figures: palettes, scatter panels, legends and
//! colour bars.

use crate::plot::colour::VIRIDIS;
use crate::plot::interactive::{Area, Hovers};
use crate::plot::plot_err;
use crate::plot::ticks::TickLabels;
use anyhow::Result;
use plotters::prelude::*;

// ----------------------------------------------------------------------------------------------
// Palettes.

/// Plotly's Dark24 qualitative palette (the original's categorical colours).
const DARK24: [(u8, u8, u8); 24] = [
    (0x2E, 0x91, 0xE5),
    (0xE1, 0x5F, 0x99),
    (0x1C, 0xA7, 0x1C),
    (0xFB, 0x0D, 0x0D),
    (0xDA, 0x16, 0xFF),
    (0x22, 0x22, 0x22),
    (0xB6, 0x81, 0x00),
    (0x75, 0x0D, 0x86),
    (0xEB, 0x66, 0x3B),
    (0x51, 0x1C, 0xFB),
    (0x00, 0xA0, 0x8B),
    (0xFB, 0x00, 0xD1),
    (0xFC, 0x00, 0x80),
    (0xB2, 0x82, 0x8D),
    (0x6C, 0x7C, 0x32),
    (0x77, 0x8A, 0xAE),
    (0x86, 0x22, 0x48),
    (0xA7, 0x77, 0xF1),
    (0x62, 0x00, 0x42),
    (0x16, 0x16, 0xA7),
    (0xDA, 0x60, 0xCA),
    (0x6C, 0x45, 0x16),
    (0x0D, 0x2A, 0x63),
    (0xAF, 0x00, 0x38),
];

/// Plotly's Set1 palette (the representative points' colours).
const SET1: [(u8, u8, u8); 9] = [
    (228, 26, 28),
    (55, 126, 184),
    (77, 175, 74),
    (152, 78, 163),
    (255, 127, 0),
    (255, 255, 51),
    (166, 86, 40),
    (247, 129, 191),
    (153, 153, 153),
];

/// The `i`-th categorical colour (Dark24, cycling).
pub fn category(i: usize) -> RGBColor {
    let (r, g, b) = DARK24[i % DARK24.len()];
    RGBColor(r, g, b)
}

/// The `i`-th highlight colour (Set1, cycling).
pub fn highlight(i: usize) -> RGBColor {
    let (r, g, b) = SET1[i % SET1.len()];
    RGBColor(r, g, b)
}

/// Light grey of the points drawn behind highlights.
pub const BACKGROUND_POINT: RGBColor = RGBColor(200, 200, 200);
/// Grey of "no latent" / "other" categories.
pub const GREY: RGBColor = RGBColor(0x80, 0x80, 0x80);

// ----------------------------------------------------------------------------------------------
// Scatter panels.

/// How a point is drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Marker {
    Dot,
    /// Filled dot with a dark edge (so white dots show).
    Outlined,
    /// Hollow square with a dark edge (custom prompts).
    Square,
    /// Cross (highlighted points).
    Cross,
}

/// One drawn point; `hover` shows on mouse-over.
#[derive(Debug, Clone)]
pub struct Dot {
    pub x: f64,
    pub y: f64,
    pub colour: RGBColor,
    pub marker: Marker,
    pub size: u32,
    pub hover: Option<String>,
}

/// `lo..hi` with 5% margins (a unit span around a single value).
fn padded((lo, hi): (f64, f64)) -> std::ops::Range<f64> {
    if !(lo.is_finite() && hi.is_finite()) {
        return -1.0..1.0;
    }
    let span = hi - lo;
    let pad = if span > 0.0 { span * 0.05 } else { 0.5 };
    (lo - pad)..(hi + pad)
}

fn extent(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
        (a.min(v), b.max(v))
    })
}

/// A scatter panel with axes, `dots` drawn in order (later on top).
pub fn scatter_panel(
    area: &Area,
    caption: &str,
    (x_desc, y_desc): (&str, &str),
    dots: &[Dot],
    hovers: &mut Hovers,
) -> Result<()> {
    let xr = padded(extent(dots.iter().map(|d| d.x)));
    let yr = padded(extent(dots.iter().map(|d| d.y)));
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(xr, yr)
        .map_err(plot_err)?;
    let (x_ticks, y_ticks) = (
        TickLabels::of(chart.x_range()),
        TickLabels::of(chart.y_range()),
    );
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .x_label_formatter(&|v| x_ticks.format(v))
        .y_label_formatter(&|v| y_ticks.format(v))
        .light_line_style(WHITE.mix(0.0))
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(plot_err)?;
    for d in dots {
        let at = (d.x, d.y);
        let s = d.size as i32;
        match d.marker {
            Marker::Dot => chart
                .draw_series(std::iter::once(Circle::new(at, d.size, d.colour.filled())))
                .map(|_| ()),
            Marker::Outlined => chart
                .draw_series(std::iter::once(
                    EmptyElement::at(at)
                        + Circle::new((0, 0), d.size, d.colour.filled())
                        + Circle::new((0, 0), d.size, RGBColor(47, 79, 79).stroke_width(1)),
                ))
                .map(|_| ()),
            Marker::Square => chart
                .draw_series(std::iter::once(
                    EmptyElement::at(at)
                        + Rectangle::new([(-s, -s), (s, s)], d.colour.filled())
                        + Rectangle::new([(-s, -s), (s, s)], BLACK.stroke_width(2)),
                ))
                .map(|_| ()),
            Marker::Cross => chart
                .draw_series(std::iter::once(
                    EmptyElement::at(at)
                        + Cross::new((0, 0), d.size, d.colour.stroke_width(3))
                        + Circle::new((0, 0), d.size + 2, BLACK.stroke_width(1)),
                ))
                .map(|_| ()),
        }
        .map_err(plot_err)?;
        if let Some(text) = &d.hover {
            hovers.add(chart.backend_coord(&at), text.clone());
        }
    }
    Ok(())
}

/// The three PC pairs of the original's scatter figures.
pub const PC_PAIRS: [(usize, usize); 3] = [(0, 1), (0, 2), (1, 2)];

/// Splits `area` into a panel row (left) and a legend column (right, `legend_px` wide).
pub fn with_legend<'a>(area: &Area<'a>, legend_px: u32) -> (Area<'a>, Area<'a>) {
    let (w, _) = area.dim_in_pixel();
    area.split_horizontally(w.saturating_sub(legend_px))
}

/// A legend: one coloured square and label per entry, at most as many as fit (then "… and N
/// more").
pub fn legend(area: &Area, title: &str, entries: &[(String, RGBColor)]) -> Result<()> {
    let (_, h) = area.dim_in_pixel();
    let line = 20i32;
    area.draw(&Text::new(title, (8, 14), ("sans-serif", 16).into_font()))
        .map_err(plot_err)?;
    let fit = ((h as i32 - 60) / line).max(1) as usize;
    for (i, (label, colour)) in entries.iter().take(fit).enumerate() {
        let y = 40 + i as i32 * line;
        area.draw(&Rectangle::new([(8, y), (20, y + 12)], colour.filled()))
            .map_err(plot_err)?;
        let label: String = label.chars().take(40).collect();
        area.draw(&Text::new(
            label,
            (26, y - 1),
            ("sans-serif", 14).into_font(),
        ))
        .map_err(plot_err)?;
    }
    if entries.len() > fit {
        let y = 40 + fit as i32 * line;
        area.draw(&Text::new(
            format!("… and {} more", entries.len() - fit),
            (8, y),
            ("sans-serif", 14).into_font(),
        ))
        .map_err(plot_err)?;
    }
    Ok(())
}

/// A colour bar from `lo` to `hi` (viridis), titled.
pub fn colour_bar(area: &Area, title: &str, lo: f64, hi: f64) -> Result<()> {
    let (_, h) = area.dim_in_pixel();
    let (top, bottom) = (40i32, h as i32 - 40);
    area.draw(&Text::new(title, (8, 14), ("sans-serif", 15).into_font()))
        .map_err(plot_err)?;
    for y in top..bottom {
        let t = (bottom - y) as f64 / (bottom - top).max(1) as f64;
        area.draw(&Rectangle::new(
            [(10, y), (30, y + 1)],
            VIRIDIS.rgb(t).filled(),
        ))
        .map_err(plot_err)?;
    }
    for (y, v) in [(top, hi), (bottom - 10, lo)] {
        area.draw(&Text::new(
            format!("{v:.3}"),
            (36, y),
            ("sans-serif", 13).into_font(),
        ))
        .map_err(plot_err)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plot::interactive::write_figure;

    #[test]
    fn figures_are_a_png_and_a_page_with_hover_texts() {
        let dir = tempfile::tempdir().unwrap();
        let files = write_figure(dir.path(), "f", "A <title>", (300, 200), |area, hovers| {
            let dots = [Dot {
                x: 1.0,
                y: 2.0,
                colour: category(0),
                marker: Marker::Dot,
                size: 3,
                hover: Some("Token: </script>".into()),
            }];
            scatter_panel(area, "p", ("x", "y"), &dots, hovers)
        })
        .unwrap();
        assert_eq!(files, ["f.png", "f.html"]);
        let png = std::fs::read(dir.path().join("f.png")).unwrap();
        assert_eq!(&png[1..4], b"PNG");
        let html = std::fs::read_to_string(dir.path().join("f.html")).unwrap();
        assert!(html.contains("A &lt;title&gt;") && html.contains("Token: \\u003c/script\\u003e"));
        assert!(!html.contains("http"), "no external resources");
    }
}
