//! `saecooc export`: a self-contained static explorer of the results (in place of the
//! original's Streamlit app; see docs/formats.md, "Explorer export"), and `saecooc serve` to
//! open it over HTTP.
//!
//! The site is `index.html` (HTML, CSS and JavaScript embedded in the binary, no CDN) plus data
//! as JavaScript files (`data/index.js`, `data/{sae}/size_{k}.js`) loaded with `<script>` tags,
//! so it works straight from disk (`file://`) as well as from any static server. The data comes
//! from each SAE's node table, sparse thresholded matrix and `pca` h5 files.

pub mod serve;

use crate::io::npy::NpyData;
use crate::io::npz::read_npz;
use crate::plot::spring_layout;
use crate::results::h5::{pca_files, read_pca_file};
use crate::results::layout::{
    find_sae_folders, pca_dir_name, pca_manifest, SaeFolder, GRAPHS_JSON,
};
use crate::results::manifest::RUN_JSON;
use crate::results::set::PublishedSet;
use anyhow::{ensure, Context, Result};
use polars::prelude::DataType;
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const APP_HTML: &str = include_str!("app.html");

/// What `export` found and wrote.
#[derive(Debug, Clone)]
pub struct ExportSummary {
    pub saes: usize,
    pub subgraphs: usize,
    pub index: PathBuf,
}

/// One node-table row, as the explorer needs it.
#[derive(Debug, Clone)]
struct Node {
    id: u32,
    subgraph: i64,
    activations: f64,
    top_tokens: Vec<String>,
    scores: Option<[f64; 3]>,
    link: Option<String>,
}

fn column_strings(
    df: &polars::prelude::DataFrame,
    name: &str,
) -> Result<Option<Vec<Option<String>>>> {
    let Ok(c) = df.column(name) else {
        return Ok(None);
    };
    let c = c.cast(&DataType::String)?;
    let s = c.str()?;
    Ok(Some(
        (0..s.len()).map(|i| s.get(i).map(String::from)).collect(),
    ))
}

/// Parses a Python list-of-strings repr (`['a', "b's"]`) as the node table writes it.
fn parse_list_repr(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let q = chars[i];
        if q != '\'' && q != '"' {
            i += 1;
            continue;
        }
        let mut item = String::new();
        i += 1;
        while i < chars.len() && chars[i] != q {
            if chars[i] == '\\' && i + 1 < chars.len() {
                i += 1;
                match chars[i] {
                    'n' => item.push('\n'),
                    't' => item.push('\t'),
                    'r' => item.push('\r'),
                    'x' if i + 2 < chars.len() => {
                        let hex: String = chars[i + 1..i + 3].iter().collect();
                        if let Some(c) = u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32)
                        {
                            item.push(c);
                        }
                        i += 2;
                    }
                    c => item.push(c),
                }
            } else {
                item.push(chars[i]);
            }
            i += 1;
        }
        out.push(item);
        i += 1;
    }
    out
}

fn read_nodes(path: &Path) -> Result<Vec<Node>> {
    let df = crate::results::node_table::read_csv(path)?;
    let need = |name: &str| -> Result<Vec<Option<String>>> {
        column_strings(&df, name)?
            .with_context(|| format!("node table {} has no column {name}", path.display()))
    };
    let (ids, sids, acts, tops) = (
        need("node_id")?,
        need("subgraph_id")?,
        need("feature_activations")?,
        need("top_10_tokens")?,
    );
    let links = column_strings(&df, "neuronpedia_link")?;
    let score_columns = [
        "hub_spoke_score",
        "strongly_connected_score",
        "linear_score",
    ]
    .map(|c| column_strings(&df, c).ok().flatten());
    let num = |v: &Option<String>| v.as_deref().and_then(|s| s.parse::<f64>().ok());
    let mut out = Vec::with_capacity(ids.len());
    for i in 0..ids.len() {
        let scores = match &score_columns {
            [Some(a), Some(b), Some(c)] => Some([
                num(&a[i]).unwrap_or(0.0),
                num(&b[i]).unwrap_or(0.0),
                num(&c[i]).unwrap_or(0.0),
            ]),
            _ => None,
        };
        out.push(Node {
            id: num(&ids[i])
                .with_context(|| format!("{}: bad node_id in row {}", path.display(), i + 2))?
                as u32,
            subgraph: num(&sids[i]).unwrap_or(-1.0) as i64,
            activations: num(&acts[i]).unwrap_or(0.0),
            top_tokens: tops[i].as_deref().map(parse_list_repr).unwrap_or_default(),
            scores,
            link: links
                .as_ref()
                .and_then(|l| l[i].clone())
                .filter(|s| !s.is_empty()),
        });
    }
    Ok(out)
}

/// The thresholded edges among `nodes` (from the scipy CSR file), as (a, b, weight) positions.
fn subgraph_edges(csr: &Csr, nodes: &[u32]) -> Vec<(usize, usize, f32)> {
    let pos: BTreeMap<u32, usize> = nodes.iter().enumerate().map(|(i, &n)| (n, i)).collect();
    let mut edges = Vec::new();
    for (a, &n) in nodes.iter().enumerate() {
        let (start, end) = (
            csr.indptr[n as usize] as usize,
            csr.indptr[n as usize + 1] as usize,
        );
        for k in start..end {
            if let Some(&b) = pos.get(&(csr.indices[k] as u32)) {
                if a < b {
                    edges.push((a, b, csr.data[k]));
                }
            }
        }
    }
    edges
}

/// A scipy CSR matrix read from `save_npz` output.
struct Csr {
    indptr: Vec<i64>,
    indices: Vec<i64>,
    data: Vec<f32>,
}

fn ints(d: &NpyData) -> Vec<i64> {
    match d {
        NpyData::I32(v) => v.iter().map(|&x| x as i64).collect(),
        NpyData::I64(v) => v.clone(),
        NpyData::U32(v) => v.iter().map(|&x| x as i64).collect(),
        NpyData::U64(v) => v.iter().map(|&x| x as i64).collect(),
        _ => Vec::new(),
    }
}

fn read_csr(path: &Path) -> Result<Csr> {
    let arrays: BTreeMap<String, crate::io::npy::NpyArray> = read_npz(path)?.into_iter().collect();
    let get = |k: &str| {
        arrays
            .get(k)
            .with_context(|| format!("{} has no '{k}'", path.display()))
    };
    Ok(Csr {
        indptr: ints(&get("indptr")?.data),
        indices: ints(&get("indices")?.data),
        data: get("data")?.to_f32(),
    })
}

fn round(x: f32) -> f64 {
    (x as f64 * 1e4).round() / 1e4
}

/// The graphs and pca sets of an SAE folder, refused when incomplete, mixed, or computed from
/// other versions of the sets they read (cooc, graphs).
fn checked_sets(folder: &SaeFolder) -> Result<(PublishedSet, PublishedSet)> {
    let cooc = PublishedSet::open(&folder.dir, "cooc", RUN_JSON)?;
    let graphs = PublishedSet::open(&folder.dir, "graphs", GRAPHS_JSON)?;
    graphs.check_built_from("cooc", &cooc, "saecooc graphs")?;
    let pca = PublishedSet::open(&folder.dir, "pca", &pca_manifest(&folder.sae))?;
    pca.check_built_from("graphs", &graphs, "saecooc pca")?;
    for set in [&graphs, &pca] {
        if set.record.is_none()
            && set
                .dir
                .join(&set.manifest)
                .parent()
                .is_some_and(|d| d.is_dir())
        {
            eprintln!("{}", set.unchecked_note());
        }
    }
    Ok((graphs, pca))
}

/// Everything of one SAE: its index entry and the per-size data files.
fn export_sae(folder: &SaeFolder, out: &Path) -> Result<(Value, usize)> {
    let tables: Vec<PathBuf> = {
        let mut v: Vec<PathBuf> = std::fs::read_dir(folder.dir.join("dataframes"))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("node_info_df_"))
            })
            .collect();
        v.sort();
        v
    };
    let (graphs, pca) = checked_sets(folder)?;
    // The node table `pca` used (pca_run.json), else 1.5 as the original app, else the first.
    let pca_dir = folder.dir.join(pca_dir_name(&folder.sae));
    let pca_ts = std::fs::read(pca_dir.join("pca_run.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .and_then(|v| v["activation_threshold"].as_f64())
        .map(crate::io::pyfmt::threshold_tag)
        .unwrap_or_else(|| "1_5".into());
    let wanted = format!("node_info_df_{pca_ts}.csv");
    let table = tables
        .iter()
        .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy() == wanted))
        .or(tables.first())
        .with_context(|| format!("{} has no node table", folder.dir.display()))?;
    let ts = table
        .file_stem()
        .unwrap_or_default()
        .to_string_lossy()
        .trim_start_matches("node_info_df_")
        .to_string();
    graphs.verify(table)?;
    let nodes = read_nodes(table)?;
    let by_id: BTreeMap<u32, &Node> = nodes.iter().map(|n| (n.id, n)).collect();
    let csr_path = folder
        .dir
        .join("thresholded_matrices")
        .join(format!("sparse_thresholded_matrix_{ts}.npz"));
    graphs.verify(&csr_path)?;
    let csr = read_csr(&csr_path)?;
    let key = folder.key();
    let mut groups: BTreeMap<i64, Vec<&Node>> = BTreeMap::new();
    for n in &nodes {
        groups.entry(n.subgraph).or_default().push(n);
    }
    // Table of all subgraphs of two or more latents.
    let table_rows: Vec<Value> = groups
        .iter()
        .filter(|(_, g)| g.len() > 1)
        .map(|(sid, g)| {
            let top: Vec<String> = g
                .iter()
                .filter_map(|n| n.top_tokens.first().cloned())
                .collect();
            json!({ "id": sid, "size": g.len(), "top": top, "scores": g[0].scores })
        })
        .collect();
    let mut sizes = BTreeMap::new();
    let mut count = 0;
    for file in pca_files(&pca_dir)? {
        for path in &file.paths {
            pca.verify(path)?;
        }
        let mut subgraphs = Vec::new();
        let mut labels = Vec::new();
        for group in read_pca_file(&file.paths)? {
            let members = groups.get(&group.subgraph_id).cloned().unwrap_or_default();
            let ids: Vec<u32> = members.iter().map(|n| n.id).collect();
            let edges = subgraph_edges(&csr, &ids);
            let layout = spring_layout(ids.len(), &edges, 42);
            let n = group.pcs.len() / 3;
            let f = ids.len().max(1);
            labels.push(json!({
                "id": group.subgraph_id,
                "top3": group.top_3_tokens,
                "context": group.example_context,
            }));
            subgraphs.push(json!({
                "id": group.subgraph_id,
                "nodes": ids,
                "density": members.iter().map(|n| n.activations).collect::<Vec<_>>(),
                "tokens": members.iter().map(|n| n.top_tokens.iter().take(5).cloned().collect::<Vec<_>>()).collect::<Vec<_>>(),
                "links": members.iter().map(|n| n.link.clone()).collect::<Vec<_>>(),
                "edges": edges.iter().map(|&(a, b, w)| json!([a, b, round(w)])).collect::<Vec<_>>(),
                "layout": layout.iter().map(|&(x, y)| json!([(x * 1e3).round() / 1e3, (y * 1e3).round() / 1e3])).collect::<Vec<_>>(),
                "top3": group.top_3_tokens,
                "context": group.example_context,
                "points": {
                    "pc": (0..n).map(|i| json!([round(group.pcs[3 * i]), round(group.pcs[3 * i + 1]), round(group.pcs[3 * i + 2])])).collect::<Vec<_>>(),
                    "token": group.tokens,
                    "context": group.contexts,
                    "max": group.max_latent,
                    "acts": group.graph_acts.chunks(f).map(|r| r.iter().map(|&v| round(v)).collect::<Vec<_>>()).collect::<Vec<_>>(),
                },
            }));
            count += 1;
        }
        let rel = format!("data/{key}/size_{}.js", file.size);
        let path = out.join(&rel);
        let body = format!(
            "SAECOOC.loaded({}, {});\n",
            serde_json::to_string(&format!("{key}/{}", file.size))?,
            serde_json::to_string(&subgraphs)?
        );
        crate::io::atomic::write_bytes(&path, body.as_bytes())?;
        sizes.insert(
            file.size.to_string(),
            json!({ "file": rel, "subgraphs": labels }),
        );
    }
    let entry = json!({
        "key": key,
        "model": folder.model,
        "release": folder.release,
        "sae": folder.sae,
        "n_batches": folder.n_batches,
        "threshold": ts,
        "latents": nodes.len(),
        "sizes": sizes,
        "table": table_rows,
        "has_neuronpedia": by_id.values().any(|n| n.link.is_some()),
    });
    Ok((entry, count))
}

/// A recommended view (the original config's `[recommended_views.*]`).
#[derive(Debug, Clone, Serialize)]
pub struct RecommendedView {
    pub name: String,
    pub description: String,
    pub model: String,
    pub release: String,
    pub sae: String,
    pub size: i64,
    pub subgraph: i64,
}

/// Reads `[recommended_views]` from a PCA config's table.
pub fn recommended_views(views: Option<&toml::Value>) -> Vec<RecommendedView> {
    let Some(table) = views.and_then(|v| v.as_table()) else {
        return Vec::new();
    };
    table
        .iter()
        .filter_map(|(key, v)| {
            let s = |k: &str| v.get(k).and_then(|x| x.as_str()).map(String::from);
            Some(RecommendedView {
                name: s("display_name").unwrap_or_else(|| key.clone()),
                description: s("description").unwrap_or_default(),
                model: s("model")?,
                release: s("sae_release")?,
                sae: s("sae_id")?,
                size: v.get("size")?.as_integer()?,
                subgraph: v.get("subgraph")?.as_integer()?,
            })
        })
        .collect()
}

/// Writes the explorer for every SAE under `results` into `out`.
pub fn run(results: &Path, out: &Path, views: &[RecommendedView]) -> Result<ExportSummary> {
    let folders: Vec<SaeFolder> = find_sae_folders(results)?
        .into_iter()
        .filter(|f| f.dir.join("dataframes").is_dir())
        .collect();
    ensure!(
        !folders.is_empty(),
        "no SAE results under {} (expected {{model}}/{{release}}/{{sae}}/n_batches_{{N}}/dataframes/): run `saecooc graphs` first",
        results.display()
    );
    crate::io::atomic::ensure_writable_dir(out)?;
    let mut entries = Vec::new();
    let mut subgraphs = 0;
    for folder in &folders {
        let (entry, n) = export_sae(folder, out)
            .with_context(|| format!("cannot export {}", folder.dir.display()))?;
        entries.push(entry);
        subgraphs += n;
    }
    let index = json!({ "saes": entries, "recommended": views, "generated_by": format!("saecooc {}", env!("CARGO_PKG_VERSION")) });
    crate::io::atomic::write_bytes(
        &out.join("data/index.js"),
        format!("SAECOOC.index({});\n", serde_json::to_string(&index)?).as_bytes(),
    )?;
    let index_html = out.join("index.html");
    crate::io::atomic::write_bytes(&index_html, APP_HTML.as_bytes())?;
    Ok(ExportSummary {
        saes: folders.len(),
        subgraphs,
        index: index_html,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_reprs_parse_back() {
        assert_eq!(
            parse_list_repr(r#"[' regard', "'s", 'a\'b', '\n', '\x1a']"#),
            [" regard", "'s", "a'b", "\n", "\u{1a}"]
        );
        assert!(parse_list_repr("[]").is_empty());
    }
}
