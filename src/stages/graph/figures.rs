//! Pictures of the graph stage: the component-size histogram (PNG, plotters) and one
//! self-contained HTML page per subgraph (inline SVG, no scripts or fonts fetched from
//! anywhere), in place of the original's matplotlib figure and pyvis pages.

use crate::io::atomic::write_bytes;
use crate::io::html::{escape_markup, web_link};
use crate::plot::colour::{PLASMA, VIRIDIS};
use crate::plot::ticks::TickLabels;
use crate::plot::{plot_err, spring_layout, with_png};
use anyhow::Result;
use plotters::prelude::*;
use std::path::Path;

/// numpy's `histogram(values, bins, density=True)`: bin edges over [min, max] (± 0.5 when all
/// values are equal) and densities `count / (total · width)`.
pub fn density_histogram(values: &[usize], bins: usize) -> (Vec<f64>, Vec<f64>) {
    let lo = values.iter().copied().min().unwrap_or(0) as f64;
    let hi = values.iter().copied().max().unwrap_or(0) as f64;
    let (lo, hi) = if lo == hi {
        (lo - 0.5, hi + 0.5)
    } else {
        (lo, hi)
    };
    let width = (hi - lo) / bins as f64;
    let edges: Vec<f64> = (0..=bins).map(|i| lo + width * i as f64).collect();
    let mut counts = vec![0usize; bins];
    for &v in values {
        let b = (((v as f64 - lo) / width) as usize).min(bins - 1);
        counts[b] += 1;
    }
    let total = values.len().max(1) as f64;
    let density = counts.iter().map(|&c| c as f64 / (total * width)).collect();
    (edges, density)
}

/// The original's `subgraph_density_{ts}.png`: histogram of component sizes (30 bins,
/// density, log y) with dashed lines at the minimum (red) and maximum (green) target size.
pub fn write_size_histogram(
    path: &Path,
    sizes: &[usize],
    min_size: usize,
    max_size: usize,
    title: &str,
) -> Result<()> {
    let (edges, density) = density_histogram(sizes, 30);
    let positive = density.iter().copied().filter(|&d| d > 0.0);
    let y_min = positive.clone().fold(f64::INFINITY, f64::min).min(1.0) / 2.0;
    let y_max = positive.fold(0.0, f64::max).max(y_min * 4.0) * 2.0;
    let x_min = edges[0].min(min_size as f64) - 1.0;
    let x_max = edges[edges.len() - 1].max(max_size as f64) + 1.0;

    with_png(path, |tmp| {
        let root = BitMapBackend::new(tmp, (1200, 900)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 28))
            .margin(24)
            .x_label_area_size(60)
            .y_label_area_size(90)
            .build_cartesian_2d(x_min..x_max, (y_min..y_max).log_scale())
            .map_err(plot_err)?;
        let x_ticks = TickLabels::of(chart.x_range());
        chart
            .configure_mesh()
            .x_desc("Subgraph size")
            .x_label_formatter(&|v| x_ticks.format(v))
            .y_desc("Density")
            .label_style(("sans-serif", 18))
            .draw()
            .map_err(plot_err)?;
        let bars = edges
            .windows(2)
            .zip(&density)
            .filter(|(_, &d)| d > 0.0)
            .map(|(e, &d)| Rectangle::new([(e[0], y_min), (e[1], d)], BLUE.mix(0.6).filled()));
        chart.draw_series(bars).map_err(plot_err)?;
        for (x, colour, label) in [
            (min_size as f64, RED, format!("Min size ({min_size})")),
            (max_size as f64, GREEN, format!("Max size ({max_size})")),
        ] {
            chart
                .draw_series(DashedLineSeries::new(
                    [(x, y_min), (x, y_max)],
                    12,
                    8,
                    colour.stroke_width(3),
                ))
                .map_err(plot_err)?
                .label(label)
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], colour));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .label_font(("sans-serif", 18))
            .draw()
            .map_err(plot_err)?;
        root.present().map_err(plot_err)?;
        Ok(())
    })
}

/// One subgraph to draw.
pub struct SubgraphPicture<'a> {
    pub subgraph_id: usize,
    pub activation_threshold: f64,
    pub edge_threshold: f64,
    /// Latent ids (ascending).
    pub nodes: &'a [u32],
    /// Edges between positions in `nodes`, with their Jaccard weight.
    pub edges: &'a [(usize, usize, f32)],
    /// Token counts per node.
    pub activations: &'a [f32],
    /// Top tokens per node.
    pub top_tokens: &'a [Vec<String>],
    /// Dashboard link per node, if the SAE is on Neuronpedia.
    pub links: Option<Vec<String>>,
    pub seed: u64,
}

/// A self-contained HTML page drawing the subgraph: node colour = token count (viridis,
/// min–max within the subgraph), label `"{top token} (ID: {id}, Act: {count:.2f})"`, top
/// tokens on hover; edge colour = weight (plasma), weight on hover.
///
/// Deliberate difference: the original normalises edge colours by `max − min + 1e6` (a typo
/// for 1e-6, so all its edges look alike); here they span the map.
pub fn subgraph_html(p: &SubgraphPicture) -> String {
    const SIZE: f64 = 1000.0;
    const MARGIN: f64 = 110.0;
    let layout = spring_layout(p.nodes.len(), p.edges, p.seed);
    let xy = |i: usize| {
        (
            MARGIN + layout[i].0 * (SIZE - 2.0 * MARGIN),
            MARGIN + layout[i].1 * (SIZE - 2.0 * MARGIN),
        )
    };
    let (a_min, a_max) = p
        .activations
        .iter()
        .fold((f32::MAX, f32::MIN), |(a, b), &x| (a.min(x), b.max(x)));
    let (w_min, w_max) = p
        .edges
        .iter()
        .fold((f32::MAX, f32::MIN), |(a, b), e| (a.min(e.2), b.max(e.2)));
    let mut svg = String::new();
    for &(a, b, w) in p.edges {
        let ((x1, y1), (x2, y2)) = (xy(a), xy(b));
        let t = (w - w_min) as f64 / ((w_max - w_min) as f64 + 1e-6);
        svg.push_str(&format!(
            "<line x1=\"{x1:.1}\" y1=\"{y1:.1}\" x2=\"{x2:.1}\" y2=\"{y2:.1}\" stroke=\"{}\" stroke-width=\"{:.1}\"><title>{} – {}: {w}</title></line>\n",
            PLASMA.hex(t),
            1.5 + 4.0 * t,
            p.nodes[a],
            p.nodes[b]
        ));
    }
    for (i, &node) in p.nodes.iter().enumerate() {
        let (x, y) = xy(i);
        let count = p.activations[i];
        let t = if a_max > a_min {
            ((count - a_min) / (a_max - a_min)) as f64
        } else {
            0.5
        };
        let tokens = &p.top_tokens[i];
        let top = tokens.first().map(String::as_str).unwrap_or("");
        let label = format!("{} (ID: {node}, Act: {count:.2})", escape_markup(top));
        let hover = tokens
            .iter()
            .map(|t| escape_markup(t))
            .collect::<Vec<_>>()
            .join("\n");
        svg.push_str(&format!(
            "<g><circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"14\" fill=\"{}\" stroke=\"#222\"/><title>{hover}</title>\
             <text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{label}</text></g>\n",
            VIRIDIS.hex(t),
            y + 30.0
        ));
    }
    let rows: String = p
        .nodes
        .iter()
        .enumerate()
        .map(|(i, &node)| {
            let id = match &p.links {
                Some(links) => match web_link(&links[i]) {
                    Some(link) => format!("<a href=\"{}\">{node}</a>", escape_markup(link)),
                    None => node.to_string(),
                },
                None => node.to_string(),
            };
            format!(
                "<tr><td>{id}</td><td>{}</td><td>{}</td></tr>\n",
                p.activations[i],
                escape_markup(&crate::io::pyfmt::list_repr(&p.top_tokens[i]))
            )
        })
        .collect();
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>Subgraph {sid} (activation threshold {at})</title>\n<style>\
         body{{font-family:sans-serif;margin:20px;color:#222}} svg{{border:1px solid #ccc;background:#fff}} \
         text{{font-size:12px;paint-order:stroke;stroke:#fff;stroke-width:3px}} \
         table{{border-collapse:collapse;margin-top:16px}} td,th{{border:1px solid #ddd;padding:3px 8px;text-align:left}}\
         </style></head>\n<body>\n<h1>Subgraph {sid}</h1>\n<p>{n} latents, {m} edges; activation threshold {at}, \
         edge threshold {et} (Jaccard ≥ {et}). Node colour: tokens on which the latent fired; edge colour: \
         Jaccard similarity. Hover for top tokens and weights.</p>\n\
         <svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{size}\" height=\"{size}\" viewBox=\"0 0 {size} {size}\">\n{svg}</svg>\n\
         <table><tr><th>latent</th><th>tokens fired</th><th>top tokens</th></tr>\n{rows}</table>\n</body></html>\n",
        sid = p.subgraph_id,
        at = crate::io::pyfmt::float_repr(p.activation_threshold),
        et = crate::io::pyfmt::float_repr(p.edge_threshold),
        n = p.nodes.len(),
        m = p.edges.len(),
        size = SIZE as usize,
    )
}

/// Writes [`subgraph_html`] to `path` atomically.
pub fn write_subgraph_html(path: &Path, picture: &SubgraphPicture) -> Result<()> {
    write_bytes(path, subgraph_html(picture).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_matches_numpy() {
        // np.histogram([1,1,1,2,5], bins=4, density=True):
        // edges [1, 2, 3, 4, 5], density [0.6, 0.2, 0, 0.2].
        let (edges, density) = density_histogram(&[1, 1, 1, 2, 5], 4);
        assert_eq!(edges, [1.0, 2.0, 3.0, 4.0, 5.0]);
        let want = [0.6, 0.2, 0.0, 0.2];
        for (d, w) in density.iter().zip(want) {
            assert!((d - w).abs() < 1e-12, "{density:?}");
        }
        // All equal: range ± 0.5 and the density integrates to 1.
        let (edges, density) = density_histogram(&[3, 3], 30);
        assert!((edges[0] - 2.5).abs() < 1e-12 && (edges[30] - 3.5).abs() < 1e-12);
        let area: f64 = density.iter().map(|d| d / 30.0).sum();
        assert!((area - 1.0).abs() < 1e-9);
    }

    #[test]
    fn png_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h/subgraph_density_1_5.png");
        write_size_histogram(&path, &[1, 1, 1, 2, 3, 40, 170], 150, 200, "t").unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        // No temporary file left behind.
        assert_eq!(std::fs::read_dir(dir.path().join("h")).unwrap().count(), 1);
    }

    #[test]
    fn layout_pulls_neighbours_together() {
        // Two triangles joined by nothing: within-triangle distances are shorter.
        let e = [
            (0, 1, 1.0),
            (1, 2, 1.0),
            (0, 2, 1.0),
            (3, 4, 1.0),
            (4, 5, 1.0),
            (3, 5, 1.0),
        ];
        let p = spring_layout(6, &e, 1);
        let d = |a: usize, b: usize| ((p[a].0 - p[b].0).powi(2) + (p[a].1 - p[b].1).powi(2)).sqrt();
        assert!(d(0, 1) < d(0, 4) && d(3, 4) < d(1, 5), "{p:?}");
        assert_eq!(p, spring_layout(6, &e, 1), "deterministic for a seed");
    }

    /// The page of subgraph 3: latents 7 and 9 joined by one edge, with these top tokens and
    /// links.
    fn two_node_page(top_tokens: &[Vec<String>], links: Option<Vec<String>>) -> String {
        subgraph_html(&SubgraphPicture {
            subgraph_id: 3,
            activation_threshold: 1.5,
            edge_threshold: 0.125,
            nodes: &[7, 9],
            edges: &[(0, 1, 0.5)],
            activations: &[10.0, 20.0],
            top_tokens,
            links,
            seed: 1,
        })
    }

    #[test]
    fn html_is_self_contained_and_escaped() {
        let tokens = vec![vec!["<b>".to_string(), "\x1a".into()], vec!["x".into()]];
        let html = two_node_page(&tokens, None);
        assert!(html.contains("&lt;b&gt; (ID: 7, Act: 10.00)"), "{html}");
        assert!(html.contains("\\x1a") && !html.contains('\x1a'));
        assert!(html.contains("7 – 9: 0.5"));
        assert!(!html.contains("<script"));
    }

    #[test]
    fn only_web_links_become_links_and_tokens_stay_text() {
        let tokens = vec![
            vec!["<!--<script>".to_string(), "</title></svg>".into()],
            vec!["x".into()],
        ];
        let links = vec![
            "javascript:window.__pwned=1//".into(),
            "https://www.neuronpedia.org/m/s/9".into(),
        ];
        let html = two_node_page(&tokens, Some(links));
        assert!(!html.contains("javascript:"), "{html}");
        assert!(html.contains("<td>7</td>"), "{html}");
        assert!(html.contains("<a href=\"https://www.neuronpedia.org/m/s/9\">9</a>"));
        assert!(!html.contains("<!--") && !html.contains("</title></svg>"));
        assert!(html.contains("&lt;!--&lt;script&gt;"));
    }
}
