//! The subspace's figures, each as PNG and interactive HTML ([`write_figure`]), with the
//! original notebook's file names: PC scatters coloured by token, by the top latent, by each
//! latent's strength and by the latents active above the threshold; explained variance; the
//! scatter matrix of the subgraph's activations; the Ward-clustered heat map; the decoder-row
//! PCA; representative and chosen points with their activation bar charts. Custom prompts are
//! drawn as outlined squares on every PC scatter.

use super::analysis::Analysis;
use super::drawing::{
    category, colour_bar, highlight, legend, scatter_panel, with_legend, Dot, Marker,
    BACKGROUND_POINT, GREY, PC_PAIRS,
};
use crate::io::pyfmt::float_repr;
use crate::pca_solver::COMPONENTS;
use crate::plot::colour::VIRIDIS;
use crate::plot::interactive::{write_figure, Area, Hovers};
use crate::plot::plot_err;
use crate::plot::ticks::TickLabels;
use anyhow::Result;
use plotters::prelude::*;
use std::collections::BTreeMap;
use std::path::Path;

/// Latents drawn in the scatter matrix at most (the first ones of the subgraph).
pub const SCATTER_MATRIX_LATENTS: usize = 10;
/// Latents drawn as panels of the strength figures at most.
pub const STRENGTH_PANELS: usize = 24;
/// The colour scale's lower end in the strength figures (the original's default).
const STRENGTH_FLOOR: f64 = 0.1;

/// Where a latent sits in the node table: its subgraph and that subgraph's size.
pub type Membership = Vec<Option<(i64, usize)>>;

/// What the figures draw from.
pub struct Figures<'a> {
    pub a: &'a Analysis,
    pub dir: &'a Path,
    /// Per latent id of the SAE.
    pub membership: &'a Membership,
}

fn pc_name(c: usize) -> String {
    format!("PC{}", c + 1)
}

/// The caption of a panel of PCs `x` against `y` for a subgraph of `latents` latents: a PC
/// beyond the latents' count carries no variance (two latents span a plane, so PC3 is
/// rounding noise) and the caption says so.
fn pair_caption((x, y): (usize, usize), latents: usize) -> String {
    let caption = format!("{} vs {}", pc_name(x), pc_name(y));
    match [x, y].into_iter().filter(|&c| c >= latents).max() {
        Some(flat) => format!("{caption} ({} flat: {latents} latents)", pc_name(flat)),
        None => caption,
    }
}

impl Figures<'_> {
    fn sid(&self) -> i64 {
        self.a.subgraph_id
    }

    /// The custom prompts' points on PCs `(x, y)`, as outlined squares (colour from `colour`).
    fn prompt_dots(&self, (x, y): (usize, usize), colour: impl Fn(&str) -> RGBColor) -> Vec<Dot> {
        let Some(p) = &self.a.prompts else {
            return Vec::new();
        };
        p.examples
            .rows
            .iter()
            .enumerate()
            .map(|(i, row)| Dot {
                x: p.scores[i * COMPONENTS + x] as f64,
                y: p.scores[i * COMPONENTS + y] as f64,
                colour: colour(&row.str_token),
                marker: Marker::Square,
                size: 6,
                hover: Some(format!(
                    "Custom prompt (line {})\nToken: {}\nContext: {}",
                    p.line[i], row.str_token, row.context
                )),
            })
            .collect()
    }

    /// Example dots on PCs `(x, y)` coloured by `colour(i)`.
    fn example_dots(
        &self,
        (x, y): (usize, usize),
        colour: impl Fn(usize) -> RGBColor,
        hover: impl Fn(usize) -> String,
    ) -> Vec<Dot> {
        (0..self.a.n())
            .map(|i| Dot {
                x: self.a.pc(i, x),
                y: self.a.pc(i, y),
                colour: colour(i),
                marker: Marker::Dot,
                size: 4,
                hover: Some(hover(i)),
            })
            .collect()
    }

    /// Three PC panels (PC1–2, PC1–3, PC2–3) with a legend, examples coloured by category.
    fn categorical_scatter(
        &self,
        stem: &str,
        title: &str,
        legend_title: &str,
        label_of: &dyn Fn(usize) -> String,
        order: &[String],
    ) -> Result<[String; 2]> {
        let colour_of: BTreeMap<&str, RGBColor> = order
            .iter()
            .enumerate()
            .map(|(i, l)| {
                (
                    l.as_str(),
                    if l == "NA" || l == "None" {
                        GREY
                    } else {
                        category(i)
                    },
                )
            })
            .collect();
        let labels: Vec<String> = (0..self.a.n()).map(label_of).collect();
        write_figure(self.dir, stem, title, (2000, 650), |root, hovers| {
            let (panels, side) = with_legend(root, 260);
            let title_area = panels.titled(title, ("sans-serif", 24)).map_err(plot_err)?;
            for (area, &(x, y)) in title_area.split_evenly((1, 3)).iter().zip(&PC_PAIRS) {
                let mut dots = self.example_dots(
                    (x, y),
                    |i| colour_of[labels[i].as_str()],
                    |i| format!("{}\n{legend_title}: {}", self.a.hover(i), labels[i]),
                );
                dots.extend(self.prompt_dots((x, y), |_| BLACK));
                let caption = pair_caption((x, y), self.a.latents().len());
                scatter_panel(area, &caption, (&pc_name(x), &pc_name(y)), &dots, hovers)?;
            }
            let entries: Vec<(String, RGBColor)> = order
                .iter()
                .map(|l| (l.clone(), colour_of[l.as_str()]))
                .collect();
            legend(&side, legend_title, &entries)
        })
    }

    /// `pca_plot_graph_{sid}_token`: coloured by the example's token (sorted token list).
    fn token_scatter(&self) -> Result<[String; 2]> {
        let mut tokens: Vec<String> = self
            .a
            .examples
            .rows
            .iter()
            .map(|r| r.str_token.clone())
            .collect();
        tokens.sort();
        tokens.dedup();
        let quoted: Vec<String> = tokens.iter().map(|t| format!("{t:?}")).collect();
        let index: BTreeMap<&str, usize> = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (t.as_str(), i))
            .collect();
        let label = |i: usize| quoted[index[self.a.examples.rows[i].str_token.as_str()]].clone();
        self.categorical_scatter(
            &format!("pca_plot_graph_{}_token", self.sid()),
            &format!(
                "PCA of subgraph {} reconstructions (coloured by token; squares: custom prompts)",
                self.sid()
            ),
            "Token",
            &label,
            &quoted,
        )
    }

    /// `pca_plot_graph_{sid}_top_feature`: coloured by the most active subgraph latent.
    fn top_feature_scatter(&self) -> Result<[String; 2]> {
        let label = |i: usize| match self.a.top_latent(i) {
            Some(j) => self.a.latents()[j].to_string(),
            None => "NA".into(),
        };
        let mut order: Vec<String> = self.a.latents().iter().map(|f| f.to_string()).collect();
        order.push("NA".into());
        self.categorical_scatter(
            &format!("pca_plot_graph_{}_top_feature", self.sid()),
            &format!("PCA Analysis - Cluster {}", self.sid()),
            "Active SAE latent",
            &label,
            &order,
        )
    }

    /// `pca_plot_graph_{sid}_top_2_at_{t}`: coloured by the (up to) two strongest latents above
    /// the activation threshold.
    fn active_features_scatter(&self) -> Result<[String; 2]> {
        let t = self.a.activation_threshold as f32;
        let labels: Vec<String> = (0..self.a.n()).map(|i| self.a.active_label(i, t)).collect();
        let mut order: Vec<String> = Vec::new();
        for l in &labels {
            if !order.contains(l) {
                order.push(l.clone());
            }
        }
        let label = |i: usize| labels[i].clone();
        self.categorical_scatter(
            &format!(
                "pca_plot_graph_{}_top_2_at_{}",
                self.sid(),
                float_repr(self.a.activation_threshold)
            ),
            &format!(
                "Subgraph {}: the two strongest latents above {}",
                self.sid(),
                self.a.activation_threshold
            ),
            "Top latents",
            &label,
            &order,
        )
    }

    /// `pca_plot_graph_{sid}_fs_PCx_vs_PCy`: one panel per latent, coloured by its activation
    /// (white at or below 0.1, viridis up to the latent's maximum).
    fn strength_scatter(&self, (x, y): (usize, usize)) -> Result<[String; 2]> {
        let k = self.a.latents().len().min(STRENGTH_PANELS);
        let cols = 3usize;
        let rows = k.div_ceil(cols);
        let stem = format!(
            "pca_plot_graph_{}_fs_{}_vs_{}",
            self.sid(),
            pc_name(x),
            pc_name(y)
        );
        let title = format!(
            "{}, coloured by latent activation",
            pair_caption((x, y), self.a.latents().len())
        );
        write_figure(
            self.dir,
            &stem,
            &title,
            (1050, 60 + 330 * rows as u32),
            |root, hovers| {
                let area = root.titled(&title, ("sans-serif", 22)).map_err(plot_err)?;
                for (j, panel) in area.split_evenly((rows, cols)).iter().enumerate().take(k) {
                    let max = (0..self.a.n())
                        .map(|i| self.a.act(i, j) as f64)
                        .fold(0.0, f64::max);
                    let colour = |i: usize| {
                        let v = self.a.act(i, j) as f64;
                        if v <= STRENGTH_FLOOR || max <= STRENGTH_FLOOR {
                            WHITE
                        } else {
                            VIRIDIS.rgb((v - STRENGTH_FLOOR) / (max - STRENGTH_FLOOR))
                        }
                    };
                    let mut dots = self.example_dots((x, y), colour, |i| {
                        format!("{}\nActivation: {:.3}", self.a.hover(i), self.a.act(i, j))
                    });
                    dots.iter_mut().for_each(|d| d.marker = Marker::Outlined);
                    dots.extend(self.prompt_dots((x, y), |_| BLACK));
                    let caption = format!("Latent {} (max {max:.2})", self.a.latents()[j]);
                    scatter_panel(panel, &caption, ("", ""), &dots, hovers)?;
                }
                Ok(())
            },
        )
    }

    /// `pca_explanation_graph_{sid}`: explained variance ratio per component.
    fn explained_variance(&self) -> Result<[String; 2]> {
        let ratios = &self.a.pca.explained_variance_ratio;
        let stem = format!("pca_explanation_graph_{}", self.sid());
        let title = format!("Subgraph {}: explained variance ratio", self.sid());
        write_figure(self.dir, &stem, &title, (600, 420), |root, hovers| {
            let top = ratios.iter().copied().fold(0.0, f64::max).max(1e-9) * 1.1;
            let mut chart = ChartBuilder::on(root)
                .caption(&title, ("sans-serif", 18))
                .margin(12)
                .x_label_area_size(36)
                .y_label_area_size(56)
                .build_cartesian_2d(0.0..ratios.len() as f64, 0.0..top)
                .map_err(plot_err)?;
            let y_ticks = TickLabels::of(chart.y_range());
            chart
                .configure_mesh()
                .disable_x_mesh()
                .x_labels(ratios.len())
                .x_label_formatter(&|v| pc_name(v.floor() as usize))
                .y_label_formatter(&|v| y_ticks.format(v))
                .y_desc("Explained variance ratio")
                .draw()
                .map_err(plot_err)?;
            for (c, &r) in ratios.iter().enumerate() {
                let (x0, x1) = (c as f64 + 0.15, c as f64 + 0.85);
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(x0, 0.0), (x1, r)],
                        category(0).filled(),
                    )))
                    .map_err(plot_err)?;
                hovers.add(
                    chart.backend_coord(&(c as f64 + 0.5, r / 2.0)),
                    format!("{}: {r:.4}", pc_name(c)),
                );
            }
            Ok(())
        })
    }

    /// `scatter_plot_graph_{sid}`: every pair of the subgraph's (first 10) latents' activations.
    fn scatter_matrix(&self) -> Result<[String; 2]> {
        let k = self.a.latents().len().min(SCATTER_MATRIX_LATENTS);
        let stem = format!("scatter_plot_graph_{}", self.sid());
        let title = format!(
            "Subgraph {}: activations of its latents, pairwise",
            self.sid()
        );
        let cell = 190u32;
        let with_hover = self.a.n() * k * k <= 50_000;
        write_figure(
            self.dir,
            &stem,
            &title,
            (cell * k as u32 + 40, cell * k as u32 + 60),
            |root, hovers| {
                let area = root.titled(&title, ("sans-serif", 20)).map_err(plot_err)?;
                for (c, panel) in area.split_evenly((k, k)).iter().enumerate() {
                    let (r, q) = (c / k, c % k);
                    let dots: Vec<Dot> = (0..self.a.n())
                        .map(|i| Dot {
                            x: self.a.act(i, q) as f64,
                            y: self.a.act(i, r) as f64,
                            colour: category(0),
                            marker: Marker::Dot,
                            size: 2,
                            hover: with_hover.then(|| self.a.hover(i)),
                        })
                        .collect();
                    let (fx, fy) = (
                        self.a.latents()[q].to_string(),
                        self.a.latents()[r].to_string(),
                    );
                    scatter_panel(panel, "", (&fx, &fy), &dots, hovers)?;
                }
                Ok(())
            },
        )
    }

    /// `pca_heatmap_{sid}`: the first examples × latents, both in Ward leaf order.
    fn heatmap(&self) -> Result<[String; 2]> {
        let h = &self.a.heatmap;
        let (m, k) = (h.examples, self.a.latents().len());
        let stem = format!("pca_heatmap_{}", self.sid());
        let title = format!(
            "Subgraph {}: clustered examples × clustered latents",
            self.sid()
        );
        let max = (0..m)
            .flat_map(|i| (0..k).map(move |j| (i, j)))
            .map(|(i, j)| self.a.act(i, j) as f64)
            .fold(0.0, f64::max)
            .max(1e-12);
        let per_cell = m * k <= 20_000;
        write_figure(self.dir, &stem, &title, (1400, 800), |root, hovers| {
            let (main, side) = with_legend(root, 120);
            let mut chart = ChartBuilder::on(&main)
                .caption(&title, ("sans-serif", 20))
                .margin(12)
                .x_label_area_size(40)
                .y_label_area_size(90)
                .build_cartesian_2d(0.0..m as f64, 0.0..k as f64)
                .map_err(plot_err)?;
            chart
                .configure_mesh()
                .disable_mesh()
                .x_desc("Clustered examples")
                .y_labels(0)
                .x_label_formatter(&|_| String::new())
                .draw()
                .map_err(plot_err)?;
            let font_px = (700 / k.max(1)).clamp(6, 14) as i32;
            for (r, &j) in h.latent_order.iter().enumerate() {
                let (px, py) = chart.backend_coord(&(0.0, (k - 1 - r) as f64 + 0.5));
                main.draw(&Text::new(
                    format!("Latent {}", self.a.latents()[j]),
                    (px - 88, py - font_px / 2),
                    ("sans-serif", font_px).into_font(),
                ))
                .map_err(plot_err)?;
            }
            for (r, &j) in h.latent_order.iter().enumerate() {
                let y = (k - 1 - r) as f64;
                for (c, &i) in h.example_order.iter().enumerate() {
                    let v = self.a.act(i, j) as f64;
                    chart
                        .draw_series(std::iter::once(Rectangle::new(
                            [(c as f64, y), (c as f64 + 1.0, y + 1.0)],
                            VIRIDIS.rgb(v / max).filled(),
                        )))
                        .map_err(plot_err)?;
                    if per_cell {
                        hovers.add(
                            chart.backend_coord(&(c as f64 + 0.5, y + 0.5)),
                            format!("Latent {}\nExample {i}\nToken: {}\nContext: {}\nActivation: {v:.4}",
                                self.a.latents()[j], self.a.text(i).0, self.a.text(i).1),
                        );
                    }
                }
            }
            if !per_cell {
                for (c, &i) in h.example_order.iter().enumerate() {
                    hovers.add(
                        chart.backend_coord(&(c as f64 + 0.5, k as f64 / 2.0)),
                        self.a.hover(i),
                    );
                }
            }
            colour_bar(&side, "Activation", 0.0, max)
        })
    }

    /// `pca_decoder_graph_{sid}`: the PCA of the subgraph's decoder rows, one point per latent.
    fn decoder_scatter(&self) -> Result<Option<[String; 2]>> {
        let Some(d) = &self.a.decoder else {
            return Ok(None);
        };
        let stem = format!("pca_decoder_graph_{}", self.sid());
        let title = format!("Subgraph {}: PCA of the decoder rows", self.sid());
        write_figure(self.dir, &stem, &title, (1800, 600), |root, hovers| {
            let area = root.titled(&title, ("sans-serif", 22)).map_err(plot_err)?;
            for (panel, &(x, y)) in area.split_evenly((1, 3)).iter().zip(&PC_PAIRS) {
                let dots: Vec<Dot> = self
                    .a
                    .latents()
                    .iter()
                    .enumerate()
                    .map(|(j, f)| Dot {
                        x: d.scores[j * COMPONENTS + x] as f64,
                        y: d.scores[j * COMPONENTS + y] as f64,
                        colour: category(j),
                        marker: Marker::Dot,
                        size: 6,
                        hover: Some(format!("Latent {f}")),
                    })
                    .collect();
                let caption = pair_caption((x, y), self.a.latents().len());
                scatter_panel(panel, &caption, (&pc_name(x), &pc_name(y)), &dots, hovers)?;
            }
            Ok(())
        })
        .map(Some)
    }

    /// Grey examples with `marked` points drawn on top (colour per mark), on PC pairs `pairs`.
    fn marked_panels(
        &self,
        area: &Area,
        pairs: &[(usize, usize)],
        marked: &[(usize, RGBColor)],
        hovers: &mut Hovers,
    ) -> Result<()> {
        let panels = area.split_evenly((1, pairs.len()));
        for (panel, &(x, y)) in panels.iter().zip(pairs) {
            let mut dots = self.example_dots((x, y), |_| BACKGROUND_POINT, |i| self.a.hover(i));
            dots.extend(marked.iter().map(|&(i, colour)| Dot {
                x: self.a.pc(i, x),
                y: self.a.pc(i, y),
                colour,
                marker: Marker::Cross,
                size: 9,
                hover: Some(self.a.hover(i)),
            }));
            let caption = pair_caption((x, y), self.a.latents().len());
            scatter_panel(panel, &caption, (&pc_name(x), &pc_name(y)), &dots, hovers)?;
        }
        Ok(())
    }

    /// `pca_with_highlights`: the representative points on the three PC pairs.
    fn highlights(&self) -> Result<[String; 2]> {
        let marked: Vec<(usize, RGBColor)> = self
            .a
            .representative
            .iter()
            .enumerate()
            .map(|(r, &i)| (i, highlight(r)))
            .collect();
        let title = "PCA with highlighted representative points";
        write_figure(
            self.dir,
            "pca_with_highlights",
            title,
            (2000, 600),
            |root, hovers| {
                let (panels, side) = with_legend(root, 260);
                let area = panels.titled(title, ("sans-serif", 22)).map_err(plot_err)?;
                self.marked_panels(&area, &PC_PAIRS, &marked, hovers)?;
                let entries: Vec<(String, RGBColor)> = marked
                    .iter()
                    .enumerate()
                    .map(|(r, &(i, c))| (format!("Point {} (id {i})", r + 1), c))
                    .collect();
                legend(&side, "Representative points", &entries)
            },
        )
    }

    /// The bars of one example: every latent active on it, the subgraph's first (missing ones
    /// at 0), then the others by activation, highest first.
    fn bars(&self, i: usize) -> Vec<(u32, f32, bool)> {
        let nonzero = &self.a.examples.nonzero_acts[i];
        let mut bars: Vec<(u32, f32, bool)> = self
            .a
            .latents()
            .iter()
            .map(|&f| {
                let a = nonzero.iter().find(|(g, _)| *g == f).map_or(0.0, |p| p.1);
                (f, a, true)
            })
            .collect();
        bars.sort_by(|p, q| q.1.total_cmp(&p.1));
        let mut others: Vec<(u32, f32, bool)> = nonzero
            .iter()
            .filter(|(f, _)| !self.a.latents().contains(f))
            .map(|&(f, a)| (f, a, false))
            .collect();
        others.sort_by(|p, q| q.1.total_cmp(&p.1));
        bars.extend(others);
        bars
    }

    /// A bar chart of example `i`'s active latents (subgraph's in `colour`, others grey, the
    /// mean as a dashed line), titled with its context.
    fn bar_chart(&self, dir: &Path, stem: &str, i: usize, colour: RGBColor) -> Result<[String; 2]> {
        let bars = self.bars(i);
        let context = self.a.text(i).1.to_string();
        let title = format!("Point {i}: {context}");
        let mean = bars.iter().map(|b| b.1 as f64).sum::<f64>() / bars.len().max(1) as f64;
        let width = (200 + 22 * bars.len() as u32).clamp(700, 2400);
        write_figure(dir, stem, &title, (width, 600), |root, hovers| {
            let top = bars
                .iter()
                .map(|b| b.1 as f64)
                .fold(0.0, f64::max)
                .max(1e-9)
                * 1.1;
            let caption: String = context.chars().take(110).collect();
            let mut chart = ChartBuilder::on(root)
                .caption(caption, ("sans-serif", 16))
                .margin(12)
                .x_label_area_size(50)
                .y_label_area_size(56)
                .build_cartesian_2d(0.0..bars.len().max(1) as f64, 0.0..top)
                .map_err(plot_err)?;
            let y_ticks = TickLabels::of(chart.y_range());
            chart
                .configure_mesh()
                .disable_x_mesh()
                .x_labels(bars.len().clamp(1, 60))
                .x_label_formatter(&|v| {
                    bars.get(v.floor() as usize)
                        .map(|b| b.0.to_string())
                        .unwrap_or_default()
                })
                .x_label_style(("sans-serif", 11))
                .y_label_formatter(&|v| y_ticks.format(v))
                .x_desc("Latent (subgraph first, then by activation)")
                .y_desc("Activation")
                .draw()
                .map_err(plot_err)?;
            for (c, &(f, a, own)) in bars.iter().enumerate() {
                let fill = if own { colour } else { RGBColor(211, 211, 211) };
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(c as f64 + 0.1, 0.0), (c as f64 + 0.9, a as f64)],
                        fill.filled(),
                    )))
                    .map_err(plot_err)?;
                let member = match self.membership.get(f as usize).copied().flatten() {
                    Some((sid, size)) => format!("subgraph {sid} (size {size})"),
                    None => "not in the node table".into(),
                };
                hovers.add(
                    chart.backend_coord(&(c as f64 + 0.5, a as f64 / 2.0)),
                    format!("Latent {f}\nActivation: {a:.4}\nIn {member}"),
                );
            }
            chart
                .draw_series(DashedLineSeries::new(
                    [(0.0, mean), (bars.len() as f64, mean)],
                    8,
                    6,
                    GREEN.stroke_width(2),
                ))
                .map_err(plot_err)?;
            Ok(())
        })
    }

    /// `point_{id}/`: the bar chart and the PC2-vs-PC3 picture of a chosen point.
    fn chosen_point(&self, r: usize, i: usize) -> Result<Vec<String>> {
        let sub = format!("point_{i}");
        let dir = self.dir.join(&sub);
        let colour = highlight(r + 1);
        let mut files: Vec<String> = Vec::new();
        files.extend(self.bar_chart(&dir, &format!("bar_plot_point_{i}"), i, colour)?);
        let title = format!("'{}' - {i}", self.a.text(i).1);
        files.extend(write_figure(
            &dir,
            &format!("pca_pc2_vs_pc3_point_{i}"),
            &title,
            (800, 800),
            |root, hovers| self.marked_panels(root, &[(1, 2)], &[(i, colour)], hovers),
        )?);
        Ok(files.into_iter().map(|f| format!("{sub}/{f}")).collect())
    }

    /// Every figure; returns the files written, relative to the folder.
    pub fn write_all(&self) -> Result<Vec<String>> {
        let mut files: Vec<String> = Vec::new();
        files.extend(self.token_scatter()?);
        files.extend(self.explained_variance()?);
        files.extend(self.scatter_matrix()?);
        files.extend(self.top_feature_scatter()?);
        for pair in PC_PAIRS {
            files.extend(self.strength_scatter(pair)?);
        }
        files.extend(self.active_features_scatter()?);
        files.extend(self.heatmap()?);
        files.extend(self.decoder_scatter()?.into_iter().flatten());
        files.extend(self.highlights()?);
        for (r, &i) in self.a.representative.iter().enumerate() {
            let sub = format!("rep_point_{}", r + 1);
            let written = self.bar_chart(
                &self.dir.join(&sub),
                "non_zero_feature_activations_comparison",
                i,
                highlight(r),
            )?;
            files.extend(written.into_iter().map(|f| format!("{sub}/{f}")));
        }
        for (r, &i) in self.a.points.iter().enumerate() {
            files.extend(self.chosen_point(r, i)?);
        }
        Ok(files)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panels_of_a_pc_beyond_the_latents_say_it_is_flat() {
        assert_eq!(pair_caption((0, 1), 2), "PC1 vs PC2");
        assert_eq!(pair_caption((0, 2), 2), "PC1 vs PC3 (PC3 flat: 2 latents)");
        assert_eq!(pair_caption((1, 2), 2), "PC2 vs PC3 (PC3 flat: 2 latents)");
        for pair in PC_PAIRS {
            assert_eq!(
                pair_caption(pair, 3),
                format!("{} vs {}", pc_name(pair.0), pc_name(pair.1))
            );
        }
    }
}
