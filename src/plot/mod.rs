//! Pictures shared by the stages: PNG files drawn with plotters (bundled font, atomic
//! writes) and the spring layout of graphs; `colour` holds the colour maps, `lines` line
//! charts of named series, `ticks` the tick labels of linear axes.

pub mod colour;
pub mod interactive;
pub mod lines;
pub mod ticks;

use anyhow::{anyhow, Context, Result};
use plotters::prelude::*;
use rand::{Rng, SeedableRng};
use std::path::Path;
use std::sync::Once;

/// DejaVu Sans (see assets/fonts/DejaVuSans-LICENSE.txt), so text renders without system fonts.
const FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// Registers the bundled font for plotters (once).
fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The bundled font is valid; a failure would only lose text, not the picture.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

/// A plotters error as an error of ours.
pub fn plot_err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("plotting failed: {e:?}")
}

/// Draws a PNG through a temporary `.png` name (plotters picks the encoder by extension) and
/// moves it into place, so a failed plot leaves no half-written file.
pub fn with_png(path: &Path, draw: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    register_font();
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let tmp = dir.join(format!(
        ".{}.tmp.png",
        path.file_stem().and_then(|s| s.to_str()).unwrap_or("plot")
    ));
    let drawn = draw(&tmp);
    if drawn.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    drawn?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("cannot move {} into place", path.display()))
}

/// Fruchterman–Reingold spring layout in the unit square, deterministic for a seed.
pub fn spring_layout(n: usize, edges: &[(usize, usize, f32)], seed: u64) -> Vec<(f64, f64)> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut pos: Vec<(f64, f64)> = (0..n)
        .map(|_| (rng.random::<f64>(), rng.random::<f64>()))
        .collect();
    if n < 2 {
        return vec![(0.5, 0.5); n];
    }
    let k = (1.0 / n as f64).sqrt();
    let iterations = 200;
    for it in 0..iterations {
        let temperature = 0.1 * (1.0 - it as f64 / iterations as f64) + 1e-3;
        let mut disp = vec![(0.0f64, 0.0f64); n];
        for i in 0..n {
            for j in (i + 1)..n {
                let (dx, dy) = (pos[i].0 - pos[j].0, pos[i].1 - pos[j].1);
                let dist = (dx * dx + dy * dy).sqrt().max(1e-4);
                let force = k * k / dist;
                let (fx, fy) = (dx / dist * force, dy / dist * force);
                disp[i].0 += fx;
                disp[i].1 += fy;
                disp[j].0 -= fx;
                disp[j].1 -= fy;
            }
        }
        for &(a, b, _) in edges {
            let (dx, dy) = (pos[a].0 - pos[b].0, pos[a].1 - pos[b].1);
            let dist = (dx * dx + dy * dy).sqrt().max(1e-4);
            let force = dist * dist / k;
            let (fx, fy) = (dx / dist * force, dy / dist * force);
            disp[a].0 -= fx;
            disp[a].1 -= fy;
            disp[b].0 += fx;
            disp[b].1 += fy;
        }
        for (p, d) in pos.iter_mut().zip(&disp) {
            let len = (d.0 * d.0 + d.1 * d.1).sqrt().max(1e-9);
            let step = len.min(temperature);
            p.0 += d.0 / len * step;
            p.1 += d.1 / len * step;
        }
    }
    // Rescale to fill [0, 1]².
    let (min_x, max_x) = pos
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.0), b.max(p.0)));
    let (min_y, max_y) = pos
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.1), b.max(p.1)));
    let span = (max_x - min_x).max(max_y - min_y).max(1e-9);
    pos.iter()
        .map(|p| ((p.0 - min_x) / span, (p.1 - min_y) / span))
        .collect()
}
