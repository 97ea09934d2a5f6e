//! One figure, two files: a PNG drawn with plotters and a self-contained HTML page showing the
//! same picture (embedded as data) with a tooltip for the nearest drawn point under the mouse
//! (token, context, values). Nothing is fetched from anywhere.

use super::{plot_err, with_png};
use crate::io::atomic::write_bytes;
use crate::io::html::{embeddable_json, escape_markup};
use anyhow::{Context, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;

/// The drawing area of a figure.
pub type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

/// A point of the picture that shows `text` when the mouse is near it (pixel coordinates).
#[derive(Debug, Clone)]
pub struct Hover {
    pub x: i32,
    pub y: i32,
    pub text: String,
}

/// What a figure's drawing collects besides pixels.
#[derive(Default)]
pub struct Hovers(pub Vec<Hover>);

impl Hovers {
    pub fn add(&mut self, (x, y): (i32, i32), text: String) {
        self.0.push(Hover { x, y, text });
    }
}

/// Draws a figure of `size` pixels into `{dir}/{stem}.png` and `{dir}/{stem}.html` (titled
/// `title`); returns the two file names.
pub fn write_figure(
    dir: &Path,
    stem: &str,
    title: &str,
    size: (u32, u32),
    draw: impl FnOnce(&Area, &mut Hovers) -> Result<()>,
) -> Result<[String; 2]> {
    let png = dir.join(format!("{stem}.png"));
    let mut hovers = Hovers::default();
    with_png(&png, |tmp| {
        let root = BitMapBackend::new(tmp, size).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        draw(&root, &mut hovers)?;
        root.present().map_err(plot_err)
    })
    .with_context(|| format!("cannot draw {}", png.display()))?;
    let bytes = std::fs::read(&png).with_context(|| format!("cannot read {}", png.display()))?;
    let html = hover_page(title, &bytes, size, &hovers.0)?;
    write_bytes(&dir.join(format!("{stem}.html")), html.as_bytes())?;
    Ok([format!("{stem}.png"), format!("{stem}.html")])
}

/// Standard base64 (with padding).
fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let v = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(ABC[(v >> (18 - 6 * k) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The HTML page of a figure: the PNG as data, and a tooltip for the hover point nearest the
/// mouse (within 10 picture pixels).
fn hover_page(title: &str, png: &[u8], size: (u32, u32), hovers: &[Hover]) -> Result<String> {
    // Each distinct text once; points refer to it by index.
    let mut index: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    let mut texts: Vec<&str> = Vec::new();
    let points: Vec<(i32, i32, usize)> = hovers
        .iter()
        .map(|h| {
            let t = *index.entry(h.text.as_str()).or_insert_with(|| {
                texts.push(h.text.as_str());
                texts.len() - 1
            });
            (h.x, h.y, t)
        })
        .collect();
    Ok(format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: sans-serif; margin: 16px; }}
#figure {{ position: relative; display: inline-block; }}
#figure img {{ max-width: 100%; height: auto; display: block; }}
#tip {{ position: absolute; display: none; pointer-events: none; background: #fffff0;
  border: 1px solid #888; padding: 4px 6px; font-size: 13px; white-space: pre-wrap;
  max-width: 480px; box-shadow: 1px 1px 4px #999; }}
</style></head>
<body>
<h3>{title}</h3>
<div id="figure"><img id="picture" width="{w}" height="{h}" alt="{title}" src="data:image/png;base64,{data}"><div id="tip"></div></div>
<script>
const POINTS = {points};
const TEXTS = {texts};
const img = document.getElementById("picture"), tip = document.getElementById("tip");
img.addEventListener("mousemove", (e) => {{
  const r = img.getBoundingClientRect(), s = {w} / r.width;
  const x = (e.clientX - r.left) * s, y = (e.clientY - r.top) * s;
  let best = -1, bestD = 100;
  for (let i = 0; i < POINTS.length; i++) {{
    const dx = POINTS[i][0] - x, dy = POINTS[i][1] - y, d = dx * dx + dy * dy;
    if (d < bestD) {{ bestD = d; best = i; }}
  }}
  if (best < 0) {{ tip.style.display = "none"; return; }}
  tip.textContent = TEXTS[POINTS[best][2]];
  tip.style.left = (e.clientX - r.left + 14) + "px";
  tip.style.top = (e.clientY - r.top + 14) + "px";
  tip.style.display = "block";
}});
img.addEventListener("mouseleave", () => {{ tip.style.display = "none"; }});
</script>
</body></html>
"#,
        title = escape_markup(title),
        w = size.0,
        h = size.1,
        data = base64(png),
        points = embeddable_json(&points)?,
        texts = embeddable_json(&texts)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_examples() {
        for (raw, want) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(raw.as_bytes()), want);
        }
    }
}
