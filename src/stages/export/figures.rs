//! The figures the explorer shows beside its own plots, copied into the site as they are: the
//! `stats` figures (every PNG its output folder's manifest lists, with the interactive page and
//! the CSV of the same name when listed, so new figures appear without a list kept here) and
//! each SAE's `graphs` figures (the component-size histograms of its graphs set).

use super::site::SiteWriter;
use crate::results::layout::site_files;
use crate::results::out_folder::{listed_files, OUT_MANIFEST};
use crate::results::set::PublishedSet;
use anyhow::Result;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::{Component, Path};

/// The folder of the site's `stats` figures, under `data/`.
const STATS_SITE_DIR: &str = "stats";

/// The folder of an SAE's `graphs` histograms, in its results folder.
const HISTOGRAMS: &str = "histograms";

/// One figure: its PNG and, when its folder has them, the interactive page and the CSV of
/// the numbers plotted (paths under `data/`).
fn figure_entry(dir: &str, stem: &str, listed: &BTreeSet<String>) -> Value {
    let twin = |ext: &str| {
        let rel = format!("{stem}.{ext}");
        listed
            .contains(&rel)
            .then(|| site_files::page_path(&format!("{dir}/{rel}")))
    };
    json!({
        "caption": caption(stem),
        "png": site_files::page_path(&format!("{dir}/{stem}.png")),
        "html": twin("html"),
        "csv": twin("csv"),
    })
}

/// A figure's caption from its file stem (`size_vs_l0` → `size vs l0`).
fn caption(stem: &str) -> String {
    stem.rsplit('/').next().unwrap_or(stem).replace('_', " ")
}

/// Whether `rel` is a plain relative path (no root, no `.` or `..`).
fn plain(rel: &str) -> bool {
    !rel.is_empty()
        && Path::new(rel)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
}

/// The stems of the PNG figures among `listed`, in name order.
fn figure_stems(listed: &BTreeSet<String>) -> Vec<String> {
    listed
        .iter()
        .filter(|rel| plain(rel))
        .filter_map(|rel| rel.strip_suffix(".png"))
        .map(String::from)
        .collect()
}

/// Copies the `stats` figures of the folder `stats` into the site; returns their entries in
/// `data/index.js` (none when the folder holds no `stats` output).
pub(super) fn export_stats_figures(site: &mut SiteWriter, stats: &Path) -> Result<Vec<Value>> {
    let Some(listed) = listed_files(stats, OUT_MANIFEST, "stats")? else {
        return Ok(Vec::new());
    };
    let mut entries = Vec::new();
    for stem in figure_stems(&listed) {
        for ext in ["png", "html", "csv"] {
            let rel = format!("{stem}.{ext}");
            if listed.contains(&rel) {
                site.copy_file(&format!("{STATS_SITE_DIR}/{rel}"), stats, &rel)?;
            }
        }
        entries.push(figure_entry(STATS_SITE_DIR, &stem, &listed));
    }
    Ok(entries)
}

/// Copies the `graphs` figures of the results folder `dir` (the histograms its graphs set
/// lists, each checked against it) into the site under the SAE's `key`; returns their entries.
pub(super) fn export_graph_figures(
    site: &mut SiteWriter,
    dir: &Path,
    graphs: &PublishedSet,
    key: &str,
) -> Result<Vec<Value>> {
    let Ok(entries) = std::fs::read_dir(dir.join(HISTOGRAMS)) else {
        return Ok(Vec::new());
    };
    let listed: BTreeSet<String> = entries
        .flatten()
        .map(|e| format!("{HISTOGRAMS}/{}", e.file_name().to_string_lossy()))
        .filter(|rel| rel.ends_with(".png") && graphs.lists(&dir.join(rel)))
        .collect();
    let site_dir = format!("{key}/figures");
    let mut out = Vec::new();
    for stem in figure_stems(&listed) {
        let rel = format!("{stem}.png");
        graphs.verify(&dir.join(&rel))?;
        site.copy_file(&format!("{site_dir}/{rel}"), dir, &rel)?;
        out.push(figure_entry(&site_dir, &stem, &listed));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_are_the_listed_pngs_with_their_twins() {
        let listed: BTreeSet<String> = [
            "summary.csv",
            "size_effects.png",
            "heatmap_a.png",
            "heatmap_a.html",
            "heatmap_a.csv",
            "../outside.png",
            "/abs.png",
            "sub/nested.png",
        ]
        .map(String::from)
        .into();
        assert_eq!(
            figure_stems(&listed),
            ["heatmap_a", "size_effects", "sub/nested"]
        );
        let e = figure_entry("stats", "heatmap_a", &listed);
        assert_eq!(e["png"], "data/stats/heatmap_a.png");
        assert_eq!(e["html"], "data/stats/heatmap_a.html");
        assert_eq!(e["csv"], "data/stats/heatmap_a.csv");
        assert_eq!(e["caption"], "heatmap a");
        let e = figure_entry("stats", "size_effects", &listed);
        assert_eq!(e["html"], Value::Null);
        assert_eq!(caption("sub/nested"), "nested");
    }
}
