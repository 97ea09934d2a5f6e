//! The inputs `export` reads besides the PCA files: the node table (one row per latent) and
//! the sparse thresholded matrix (the subgraphs' edges).

use crate::io::csv_table::Table;
use crate::io::html::web_link;
use crate::io::npy::NpyData;
use crate::io::npz::read_npz;
use crate::io::pyfmt::parse_list_repr;
use crate::results::h5::PcaGroup;
use crate::results::node_table::check_latent_ids;
use anyhow::{bail, ensure, Context, Result};
use std::collections::BTreeMap;
use std::path::Path;

/// One node-table row, as the explorer needs it.
#[derive(Debug, Clone)]
pub(super) struct Node {
    pub id: u32,
    pub subgraph: i64,
    pub activations: f64,
    pub top_tokens: Vec<String>,
    pub scores: Option<[f64; 3]>,
    pub link: Option<String>,
}

/// The cells of column `name`, if the table has it.
fn column_strings(table: &Table, name: &str) -> Option<Vec<Option<String>>> {
    table.column(name).map(<[_]>::to_vec)
}

pub(super) fn read_nodes(path: &Path) -> Result<Vec<Node>> {
    let table = crate::results::node_table::read_csv(path)?;
    let need = |name: &str| -> Result<Vec<Option<String>>> {
        column_strings(&table, name)
            .with_context(|| format!("node table {} has no column {name}", path.display()))
    };
    let (ids, sids, acts, tops) = (
        need("node_id")?,
        need("subgraph_id")?,
        need("feature_activations")?,
        need("top_10_tokens")?,
    );
    let links = dashboard_links(path, column_strings(&table, "neuronpedia_link"), ids.len());
    let score_columns = [
        "hub_spoke_score",
        "strongly_connected_score",
        "linear_score",
    ]
    .map(|c| column_strings(&table, c));
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
            link: links[i].clone(),
        });
    }
    Ok(out)
}

/// The node table's `neuronpedia_link` of each row, kept only where it is an `http(s)` link
/// (the explorer uses them as links and frame sources): any other value (`javascript:...`,
/// `data:...`) is left out, with a note on stderr naming the table, the first such row and how
/// many there are.
fn dashboard_links(
    path: &Path,
    column: Option<Vec<Option<String>>>,
    rows: usize,
) -> Vec<Option<String>> {
    let Some(column) = column else {
        return vec![None; rows];
    };
    let mut refused: Vec<(usize, String)> = Vec::new();
    let links = column
        .into_iter()
        .enumerate()
        .map(|(i, link)| {
            let link = link.filter(|s| !s.is_empty())?;
            let kept = web_link(&link).map(String::from);
            if kept.is_none() {
                refused.push((i + 2, link));
            }
            kept
        })
        .collect();
    if let Some((row, value)) = refused.first() {
        let shown: String = value.chars().take(80).collect();
        crate::report::warning(format_args!(
            "note: {}: {} neuronpedia_link value(s) are not http(s) links and are left out of the \
             explorer (first: row {row}, {shown:?})",
            path.display(),
            refused.len()
        ));
    }
    links
}

/// Refuses a node table that `pca` would refuse: a latent twice or outside the thresholded
/// matrix (`csr`, read from `csr_path`), or a non-finite `feature_activations`.
pub(super) fn check_nodes(nodes: &[Node], table: &Path, csr: &Csr, csr_path: &Path) -> Result<()> {
    let ids: Vec<u32> = nodes.iter().map(|n| n.id).collect();
    let of = format!("thresholded matrix {}", csr_path.display());
    check_latent_ids(&ids, table, csr.latents(), &of)?;
    if let Some(n) = nodes.iter().find(|n| !n.activations.is_finite()) {
        bail!(
            "node table {}: feature_activations of latent {} is {}",
            table.display(),
            n.id,
            n.activations
        );
    }
    Ok(())
}

/// Refuses an h5 group whose subgraph the node table does not have (`members` empty), or
/// whose columns and latents do not fit it.
pub(super) fn check_group(group: &PcaGroup, members: &[&Node], csr: &Csr) -> Result<()> {
    ensure!(
        !members.is_empty(),
        "subgraph {} is not in the node table",
        group.subgraph_id
    );
    group.check_fits(members.len(), csr.latents())
}

/// The thresholded edges among `nodes` (from the scipy CSR file), as (a, b, weight) positions;
/// latents outside the matrix have no edges.
pub(super) fn subgraph_edges(csr: &Csr, nodes: &[u32]) -> Vec<(usize, usize, f32)> {
    let pos: BTreeMap<u32, usize> = nodes.iter().enumerate().map(|(i, &n)| (n, i)).collect();
    let mut edges = Vec::new();
    for (a, &n) in nodes.iter().enumerate() {
        let (Some(&start), Some(&end)) =
            (csr.indptr.get(n as usize), csr.indptr.get(n as usize + 1))
        else {
            continue;
        };
        for k in start as usize..end as usize {
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
pub(super) struct Csr {
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

impl Csr {
    /// Latents (rows) of the matrix.
    pub(super) fn latents(&self) -> usize {
        self.indptr.len().saturating_sub(1)
    }
}

pub(super) fn read_csr(path: &Path) -> Result<Csr> {
    let arrays: BTreeMap<String, crate::io::npy::NpyArray> = read_npz(path)?.into_iter().collect();
    let get = |k: &str| {
        arrays
            .get(k)
            .with_context(|| format!("{} has no '{k}'", path.display()))
    };
    let csr = Csr {
        indptr: ints(&get("indptr")?.data),
        indices: ints(&get("indices")?.data),
        data: get("data")?.to_f32(),
    };
    let rows_ok = csr.indptr.first() == Some(&0)
        && csr.indptr.windows(2).all(|w| w[0] <= w[1])
        && csr.indptr.last().copied() == Some(csr.indices.len() as i64)
        && csr.indices.len() == csr.data.len();
    let n = csr.latents() as i64;
    let rows_ok = rows_ok && csr.indices.iter().all(|&i| (0..n).contains(&i));
    ensure!(
        rows_ok,
        "{} is not a valid CSR matrix (indptr must rise from 0 to the number of indices, and \
         indices and data must have the same length, every index a row)",
        path.display()
    );
    Ok(csr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_web_links_are_kept() {
        let column = [
            "https://www.neuronpedia.org/a/b/1",
            "javascript:alert(1)",
            "",
            "data:,x",
        ]
        .map(|s| Some(s.to_string()))
        .to_vec();
        let links = dashboard_links(Path::new("t.csv"), Some(column), 4);
        assert_eq!(
            links,
            [
                Some("https://www.neuronpedia.org/a/b/1".to_string()),
                None,
                None,
                None
            ]
        );
        assert_eq!(dashboard_links(Path::new("t.csv"), None, 2), [None, None]);
    }
}
