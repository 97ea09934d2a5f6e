//! `saecooc stats`: the paper's size-effect analyses (see docs/formats.md, "Statistics
//! outputs") over every SAE and threshold under a results folder:
//! - active latents per token: mean, std and histogram (from `cooc`'s run.json);
//! - from the node tables: mean subgraph size over latents (with and without singletons) and
//!   the fraction of latents in subgraphs of two or more (Fig. 9);
//! - observed vs expected co-occurrence of latent pairs, E = T·pᵢ·pⱼ with pᵢ = Cᵢᵢ/T
//!   (Fig. 7): log₁₀ histograms and summary counts, from the count matrices.
//!
//! Written as `summary.csv`, `summary.json` and PNG figures. Deliberate differences: T is the
//! true token count from run.json (the original's npz path used C.sum()); quantiles are not
//! computed (histograms are). With `--config`, a pass through model and SAE also gives, per
//! token, active latents against active subgraphs (`subgraph_l0_any`).

use crate::npz::{is_sparse_npz, read_csr_rows, read_f32_rows, read_npz};
use crate::plot::{plot_err, with_png};
use crate::pyfmt::{float_repr, threshold_tag};
use crate::results::layout::find_sae_folders;
use crate::results::layout::{find_cooc_files, CoocKind};
use anyhow::{ensure, Context, Result};
use plotters::prelude::*;
use serde::Serialize;
use serde_json::Value;
use std::path::Path;

/// Histogram range of log₁₀ co-occurrence counts and its bins (0.1 wide).
const LOG_MIN: f64 = -8.0;
const LOG_MAX: f64 = 8.0;
const LOG_BINS: usize = 160;

/// One SAE at one activation threshold.
#[derive(Debug, Clone, Serialize)]
pub struct StatsRow {
    pub model: String,
    pub release: String,
    pub sae: String,
    pub n_batches: String,
    pub d_sae: usize,
    pub threshold: f64,
    pub tokens: Option<u64>,
    pub l0_mean: Option<f64>,
    pub l0_std: Option<f64>,
    pub l0_histogram: Vec<u64>,
    pub mean_subgraph_size: Option<f64>,
    pub mean_subgraph_size_without_singletons: Option<f64>,
    pub fraction_in_subgraphs: Option<f64>,
    /// Token pass (`stats --config`): per token, active latents vs active subgraphs (a subgraph
    /// is active when any of its latents is, `subgraph_l0_any`), means over the tokens read.
    pub token_pass: Option<TokenPass>,
    pub cooccurrence: Option<Cooccurrence>,
}

/// Latent L0 against subgraph L0 over the tokens of a pass through model and SAE.
#[derive(Debug, Clone, Serialize)]
pub struct TokenPass {
    pub tokens: u64,
    pub latent_l0_mean: f64,
    pub subgraph_l0_any_mean: f64,
    /// Tokens by active subgraphs (index = subgraphs).
    pub subgraph_l0_any_histogram: Vec<u64>,
}

/// Per token: active latents (`act > t + θ`) and active subgraphs (any latent active), over
/// `batches` batches of the config's data for SAE `sae_id`; `subgraph_of[latent]` from its node
/// table.
pub fn subgraph_l0_pass(
    sources: &crate::sources::Sources,
    sae_id: &str,
    threshold: f64,
    subgraph_of: &[i64],
    batches: usize,
) -> Result<TokenPass> {
    let mut encoder = crate::activations::Encoder::load(sources, sae_id)?;
    let d_sae = encoder.sae.cfg.d_sae;
    ensure!(
        subgraph_of.len() == d_sae,
        "node table has {} latents but SAE {sae_id} has {d_sae}",
        subgraph_of.len()
    );
    let cut = crate::sae::threshold_cut(threshold, &encoder.sae.threshold);
    let mut stream = encoder.runner.stream(
        sources,
        sources.config.run.prompts_per_batch,
        sources.config.generation.remove_special_tokens,
    )?;
    let (mut tokens, mut latent_sum, mut subgraph_sum) = (0u64, 0u64, 0u64);
    let mut histogram: Vec<u64> = Vec::new();
    let mut seen: Vec<u64> =
        vec![u64::MAX; subgraph_of.iter().copied().max().unwrap_or(0).max(0) as usize + 1];
    for _ in 0..batches {
        let Some(batch) = stream.next_batch(u64::MAX)? else {
            break;
        };
        if batch.positions.is_empty() {
            continue;
        }
        let resid = encoder.runner.batch_residual(&batch, sources.device)?;
        let acts = encoder.encode(&resid)?;
        batch.ensure_finite(&acts, d_sae, 0, "SAE activation")?;
        for row in acts.chunks_exact(d_sae) {
            let (mut latents, mut subgraphs) = (0u64, 0usize);
            for (j, &a) in row.iter().enumerate() {
                if crate::sae::is_active(a, cut[j]) {
                    latents += 1;
                    let sg = subgraph_of[j].max(0) as usize;
                    if seen[sg] != tokens {
                        seen[sg] = tokens;
                        subgraphs += 1;
                    }
                }
            }
            if histogram.len() <= subgraphs {
                histogram.resize(subgraphs + 1, 0);
            }
            histogram[subgraphs] += 1;
            latent_sum += latents;
            subgraph_sum += subgraphs as u64;
            tokens += 1;
        }
    }
    ensure!(tokens > 0, "the token pass read no tokens");
    Ok(TokenPass {
        tokens,
        latent_l0_mean: latent_sum as f64 / tokens as f64,
        subgraph_l0_any_mean: subgraph_sum as f64 / tokens as f64,
        subgraph_l0_any_histogram: histogram,
    })
}

/// Observed vs expected co-occurrence over the pairs i < j.
#[derive(Debug, Clone, Serialize)]
pub struct Cooccurrence {
    pub pairs: u64,
    /// Pairs that co-occurred at least once.
    pub pairs_observed: u64,
    /// Pairs that co-occurred more often than independence predicts.
    pub pairs_above_expected: u64,
    /// Left edges of the log₁₀ bins.
    pub log10_bin_edges: Vec<f64>,
    /// Counts of log₁₀(observed) over observed pairs, and of log₁₀(expected) over pairs whose
    /// latents both fired.
    pub observed_log10_counts: Vec<u64>,
    pub expected_log10_counts: Vec<u64>,
}

fn log_bin(v: f64) -> Option<usize> {
    (v > 0.0).then(|| {
        let b = ((v.log10() - LOG_MIN) / (LOG_MAX - LOG_MIN) * LOG_BINS as f64).floor();
        b.clamp(0.0, (LOG_BINS - 1) as f64) as usize
    })
}

/// Streams the non-zero entries `(i, j, C[i, j])` with i < j of a count matrix, dense
/// (`arr_0`) or scipy CSR.
fn for_each_upper_pair(total: &Path, n: usize, mut f: impl FnMut(usize, usize, f64)) -> Result<()> {
    let check = |rows: usize, cols: usize| {
        ensure!(
            (rows, cols) == (n, n),
            "{} is [{rows}, {cols}], expected [{n}, {n}]",
            total.display()
        );
        Ok(())
    };
    if is_sparse_npz(total)? {
        read_csr_rows(total, check, |i, cols, vals| {
            for (&j, &v) in cols.iter().zip(vals) {
                if j as usize > i && v != 0.0 {
                    f(i, j as usize, v as f64);
                }
            }
            Ok(())
        })
    } else {
        read_f32_rows(
            total,
            None,
            |shape| check(shape[0], shape[1]),
            |i, row| {
                for (j, &v) in row.iter().enumerate().skip(i + 1) {
                    if v != 0.0 {
                        f(i, j, v as f64);
                    }
                }
                Ok(())
            },
        )
        .map(|_| ())
    }
}

/// Histogram of `log_bin(a_i · a_j / tokens)` over the pairs i < j, without visiting the n²/2
/// pairs: for each i the bin is monotone in a_j, so each bin's share of the sorted a_j is
/// found by binary search with the very same expression (the counts equal a pair-by-pair loop).
fn expected_histogram(activations: &[f32], tokens: f64) -> Vec<u64> {
    let a: Vec<f64> = activations.iter().map(|&x| x as f64).collect();
    let mut sorted = a.clone();
    sorted.sort_by(f64::total_cmp);
    let mut twice = vec![0u64; LOG_BINS];
    for &ai in &a {
        let bin = |x: f64| log_bin(ai * x / tokens).map_or(-1, |b| b as i64);
        let mut lo = sorted.partition_point(|&x| bin(x) < 0);
        while lo < sorted.len() {
            let b = bin(sorted[lo]);
            let hi = lo + sorted[lo..].partition_point(|&x| bin(x) <= b);
            twice[b as usize] += (hi - lo) as u64;
            lo = hi;
        }
        if let Some(b) = log_bin(ai * ai / tokens) {
            twice[b] -= 1; // the pair (i, i)
        }
    }
    twice.iter().map(|&c| c / 2).collect()
}

/// Compares each pair's count C[i, j] with T·pᵢ·pⱼ, streaming the count matrix.
fn cooccurrence(total: &Path, activations: &[f32], tokens: f64) -> Result<Cooccurrence> {
    let n = activations.len();
    let mut out = Cooccurrence {
        pairs: (n as u64 * n.saturating_sub(1) as u64) / 2,
        pairs_observed: 0,
        pairs_above_expected: 0,
        log10_bin_edges: (0..LOG_BINS)
            .map(|b| LOG_MIN + b as f64 * (LOG_MAX - LOG_MIN) / LOG_BINS as f64)
            .collect(),
        observed_log10_counts: vec![0; LOG_BINS],
        expected_log10_counts: expected_histogram(activations, tokens),
    };
    for_each_upper_pair(total, n, |i, j, observed| {
        let expected = activations[i] as f64 * activations[j] as f64 / tokens;
        if let Some(b) = log_bin(observed) {
            out.pairs_observed += 1;
            out.observed_log10_counts[b] += 1;
        }
        if observed > expected {
            out.pairs_above_expected += 1;
        }
    })?;
    Ok(out)
}

/// (mean size over latents, the same without singletons, fraction in subgraphs of 2+) from a
/// node table's `subgraph_size` column.
pub fn subgraph_size_stats(sizes: &[f64]) -> (f64, Option<f64>, f64) {
    let n = sizes.len().max(1) as f64;
    let mean = sizes.iter().sum::<f64>() / n;
    let multi: Vec<f64> = sizes.iter().copied().filter(|&s| s > 1.0).collect();
    let mean_multi = (!multi.is_empty()).then(|| multi.iter().sum::<f64>() / multi.len() as f64);
    (mean, mean_multi, multi.len() as f64 / n)
}

fn node_table_sizes(path: &Path) -> Result<Vec<f64>> {
    Ok(crate::results::node_table::read_node_table(path)?
        .iter()
        .map(|r| r.subgraph_size as f64)
        .collect())
}

fn run_json(dir: &Path) -> Option<Value> {
    serde_json::from_slice(&std::fs::read(dir.join("run.json")).ok()?).ok()
}

/// The token pass settings of `stats --config`.
pub struct TokenPassOptions<'a> {
    pub sources: crate::sources::Sources<'a>,
    pub batches: usize,
}

/// Computes every row and writes `summary.csv`, `summary.json` and the figures into `out`.
/// With `pass`, SAEs of its config also get `subgraph_l0_any` from a pass over its data.
pub fn run(results: &Path, out: &Path, pass: Option<&TokenPassOptions>) -> Result<Vec<StatsRow>> {
    let folders = find_sae_folders(results)?;
    let mut rows = Vec::new();
    for f in &folders {
        let run = run_json(&f.dir);
        for (threshold, total) in find_cooc_files(&f.dir, CoocKind::Total)? {
            let acts_file =
                crate::results::layout::cooc_file(&f.dir, CoocKind::Activations, threshold);
            let activations = match read_npz(&acts_file) {
                Ok(a) => a
                    .into_iter()
                    .next()
                    .map(|(_, a)| a.to_f32())
                    .unwrap_or_default(),
                Err(_) => continue,
            };
            let th = run.as_ref().and_then(|r| {
                r["thresholds"]
                    .as_array()?
                    .iter()
                    .find(|t| t["threshold"].as_f64() == Some(threshold))
                    .cloned()
            });
            let tokens = run.as_ref().and_then(|r| r["tokens_counted"].as_u64());
            let t = tokens
                .map(|t| t as f64)
                .unwrap_or_else(|| activations.iter().map(|&a| a as f64).fold(0.0, f64::max));
            let table = f
                .dir
                .join("dataframes")
                .join(format!("node_info_df_{}.csv", threshold_tag(threshold)));
            let sizes = if table.is_file() {
                Some(subgraph_size_stats(&node_table_sizes(&table)?))
            } else {
                None
            };
            let token_pass = match pass {
                Some(p) if table.is_file() => {
                    token_pass_for(p, f, &table, threshold, activations.len())?
                }
                _ => None,
            };
            rows.push(StatsRow {
                model: f.model.clone(),
                release: f.release.clone(),
                sae: f.sae.clone(),
                n_batches: f.n_batches.clone(),
                d_sae: activations.len(),
                threshold,
                tokens,
                l0_mean: th.as_ref().and_then(|t| t["l0_mean"].as_f64()),
                l0_std: th.as_ref().and_then(|t| t["l0_std"].as_f64()),
                l0_histogram: th
                    .as_ref()
                    .and_then(|t| t["l0_histogram"].as_array().cloned())
                    .map(|a| a.iter().filter_map(Value::as_u64).collect())
                    .unwrap_or_default(),
                mean_subgraph_size: sizes.map(|s| s.0),
                mean_subgraph_size_without_singletons: sizes.and_then(|s| s.1),
                fraction_in_subgraphs: sizes.map(|s| s.2),
                token_pass,
                cooccurrence: Some(cooccurrence(&total, &activations, t.max(1.0))?),
            });
        }
    }
    ensure!(
        !rows.is_empty(),
        "no cooc results (feature_acts_cooc_total_threshold_*.npz) under {}",
        results.display()
    );
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    write_csv(&rows, &out.join("summary.csv"))?;
    crate::atomic::write_bytes(
        &out.join("summary.json"),
        &serde_json::to_vec_pretty(&rows)?,
    )?;
    plot_size_effects(&rows, &out.join("size_effects.png"))?;
    for r in &rows {
        if let Some(c) = &r.cooccurrence {
            let name = format!(
                "cooccurrence_{}_{}_{}_{}.png",
                r.model,
                r.release,
                r.sae,
                threshold_tag(r.threshold)
            );
            plot_cooccurrence(r, c, &out.join(name))?;
        }
    }
    Ok(rows)
}

/// The token pass for one SAE folder, when the pass config names that SAE.
fn token_pass_for(
    p: &TokenPassOptions,
    f: &crate::results::layout::SaeFolder,
    table: &Path,
    threshold: f64,
    d_sae: usize,
) -> Result<Option<TokenPass>> {
    let g = &p.sources.config.generation;
    let Some(id) = g.sae_ids.iter().find(|id| {
        crate::pyfmt::neat_sae_id(id) == f.sae
            && g.model_name == f.model
            && g.sae_release_short == f.release
    }) else {
        return Ok(None);
    };
    let mut subgraph_of = vec![0i64; d_sae];
    for r in crate::results::node_table::read_node_table(table)? {
        if let Some(slot) = subgraph_of.get_mut(r.node_id as usize) {
            *slot = r.subgraph_id;
        }
    }
    Ok(Some(subgraph_l0_pass(
        &p.sources,
        id,
        threshold,
        &subgraph_of,
        p.batches,
    )?))
}

fn opt(v: Option<f64>) -> String {
    v.map(float_repr).unwrap_or_default()
}

fn write_csv(rows: &[StatsRow], path: &Path) -> Result<()> {
    let mut s = String::from("model,release,sae,n_batches,d_sae,activation_threshold,tokens,l0_mean,l0_std,mean_subgraph_size,mean_subgraph_size_without_singletons,fraction_in_subgraphs,pairs,pairs_observed,pairs_above_expected,pass_tokens,pass_latent_l0,pass_subgraph_l0_any\n");
    for r in rows {
        let c = r.cooccurrence.as_ref();
        s.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
            r.model,
            r.release,
            r.sae,
            r.n_batches,
            r.d_sae,
            float_repr(r.threshold),
            r.tokens.map(|t| t.to_string()).unwrap_or_default(),
            opt(r.l0_mean),
            opt(r.l0_std),
            opt(r.mean_subgraph_size),
            opt(r.mean_subgraph_size_without_singletons),
            opt(r.fraction_in_subgraphs),
            c.map(|c| c.pairs.to_string()).unwrap_or_default(),
            c.map(|c| c.pairs_observed.to_string()).unwrap_or_default(),
            c.map(|c| c.pairs_above_expected.to_string())
                .unwrap_or_default(),
            r.token_pass
                .as_ref()
                .map(|t| t.tokens.to_string())
                .unwrap_or_default(),
            opt(r.token_pass.as_ref().map(|t| t.latent_l0_mean)),
            opt(r.token_pass.as_ref().map(|t| t.subgraph_l0_any_mean)),
        ));
    }
    crate::atomic::write_bytes(path, s.as_bytes())
}

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
    chart
        .configure_mesh()
        .x_desc("SAE latents")
        .y_desc(y_desc)
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

/// Fig. 3 and 9 style: active latents per token and subgraph statistics against SAE width.
fn plot_size_effects(rows: &[StatsRow], path: &Path) -> Result<()> {
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
        for (k, &t) in thresholds.iter().enumerate() {
            let colour = Palette99::pick(k).to_rgba();
            let mut pts: Vec<(f64, f64, f64)> = rows
                .iter()
                .filter(|r| r.threshold == t)
                .filter_map(|r| Some((r.d_sae as f64, r.l0_mean?, r.l0_std.unwrap_or(0.0))))
                .collect();
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            chart
                .draw_series(LineSeries::new(
                    pts.iter().map(|p| (p.0, p.1)),
                    colour.stroke_width(2),
                ))
                .map_err(plot_err)?
                .label(format!("threshold {}", float_repr(t)))
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
fn plot_cooccurrence(r: &StatsRow, c: &Cooccurrence, path: &Path) -> Result<()> {
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
        chart
            .configure_mesh()
            .x_desc("log10 count of a latent pair")
            .y_desc("share of pairs")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_histogram_equals_the_pair_by_pair_loop() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        let acts: Vec<f32> = (0..700)
            .map(|_| match rng.random_range(0..4) {
                0 => 0.0,
                1 => rng.random_range(1..5) as f32,
                _ => rng.random_range(1..100_000) as f32,
            })
            .collect();
        let tokens = 123_457.0;
        let mut want = vec![0u64; LOG_BINS];
        for i in 0..acts.len() {
            for j in i + 1..acts.len() {
                if let Some(b) = log_bin(acts[i] as f64 * acts[j] as f64 / tokens) {
                    want[b] += 1;
                }
            }
        }
        assert!(want.iter().sum::<u64>() > 100_000);
        assert_eq!(expected_histogram(&acts, tokens), want);
    }

    #[test]
    fn subgraph_sizes_are_node_weighted() {
        // Subgraphs of 3, 2 and two singletons, one row per latent.
        let (mean, multi, frac) = subgraph_size_stats(&[3.0, 3.0, 3.0, 2.0, 2.0, 1.0, 1.0]);
        assert!((mean - 15.0 / 7.0).abs() < 1e-12);
        assert!((multi.unwrap() - 13.0 / 5.0).abs() < 1e-12);
        assert!((frac - 5.0 / 7.0).abs() < 1e-12);
        assert_eq!(log_bin(0.0), None);
        assert_eq!(log_bin(1.0), Some(80));
    }
}
