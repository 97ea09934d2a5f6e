//! Node tables (`dataframes/node_info_df_{ts}.csv`) as the stages read them back: the
//! whole table, or the node, subgraph and size of each row (ours or the original's files;
//! see docs/formats.md, "Graph files"). `graphs` writes them.

use crate::io::csv_table::Table;
use anyhow::{ensure, Context, Result};
use std::path::Path;

/// Reads a node table (ours or the original's), every cell as text.
pub fn read_csv(path: &Path) -> Result<Table> {
    Table::read(path).with_context(|| format!("cannot read node table {}", path.display()))
}

/// An integer cell: an integer, or a number with its fraction dropped (as pandas writes an
/// integer column with missing values: `3.0`).
fn integer_cell(cell: &str) -> Option<i64> {
    let float = || cell.parse::<f64>().ok().filter(|x| x.abs() < 9.2e18);
    cell.parse::<i64>()
        .ok()
        .or_else(|| float().map(|x| x as i64))
}

/// One node-table row: latent, subgraph, subgraph size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NodeRow {
    pub node_id: u32,
    pub subgraph_id: i64,
    pub subgraph_size: usize,
}

/// Reads `node_id`, `subgraph_id` and `subgraph_size` of a node table (ours or the original's).
pub fn read_node_table(path: &Path) -> Result<Vec<NodeRow>> {
    ensure!(
        path.is_file(),
        "node table {} does not exist: run `saecooc graphs` first",
        path.display()
    );
    let table = read_csv(path)?;
    let column = |name: &str| -> Result<Vec<i64>> {
        let cells = table
            .column(name)
            .with_context(|| format!("node table {} has no column {name}", path.display()))?;
        let cell = |(i, cell): (usize, &Option<String>)| {
            let row = i + 2;
            let text = cell.as_deref().with_context(|| {
                format!("node table {}: empty {name} in row {row}", path.display())
            })?;
            integer_cell(text).with_context(|| {
                format!(
                    "node table {}: {name} in row {row} is not an integer ({text:?})",
                    path.display()
                )
            })
        };
        cells.iter().enumerate().map(cell).collect()
    };
    let (ids, sids, sizes) = (
        column("node_id")?,
        column("subgraph_id")?,
        column("subgraph_size")?,
    );
    ids.iter()
        .zip(&sids)
        .zip(&sizes)
        .map(|((&id, &sid), &size)| {
            ensure!(
                id >= 0 && size > 0,
                "node table {}: bad row (node_id {id}, subgraph_size {size})",
                path.display()
            );
            Ok(NodeRow {
                node_id: id as u32,
                subgraph_id: sid,
                subgraph_size: size as usize,
            })
        })
        .collect()
}

/// Refuses a node table (`table`, whose rows list `ids`) that does not list each latent of
/// `of` (an SAE with `n_latents` latents) exactly once: computed for another SAE, or damaged.
pub fn check_lists_each_latent(
    ids: &[u32],
    table: &Path,
    n_latents: usize,
    of: &str,
) -> Result<()> {
    ensure!(
        ids.len() == n_latents,
        "node table {} has {} rows but {of} has {n_latents} latents: it was computed for another SAE; rerun `saecooc graphs`",
        table.display(),
        ids.len()
    );
    check_latent_ids(ids, table, n_latents, of)
}

/// Refuses a node table (`table`, whose rows list `ids`) that lists a latent twice or one
/// outside `of` (an SAE or matrix with `n_latents` latents).
pub fn check_latent_ids(ids: &[u32], table: &Path, n_latents: usize, of: &str) -> Result<()> {
    let mut seen = vec![false; n_latents];
    for (row, &id) in ids.iter().enumerate() {
        let slot = seen.get_mut(id as usize).with_context(|| {
            format!(
                "node table {} lists latent {id} (row {}) but {of} has {n_latents} latents",
                table.display(),
                row + 2
            )
        })?;
        ensure!(
            !*slot,
            "node table {} lists latent {id} twice (again in row {})",
            table.display(),
            row + 2
        );
        *slot = true;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_originals_node_table_reads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("src/stages/graph/testdata/node_info_df_1_5_head.csv");
        let rows = read_node_table(&path).unwrap();
        assert_eq!(rows.len(), 4);
        assert_eq!(
            rows[3],
            NodeRow {
                node_id: 718,
                subgraph_id: 1,
                subgraph_size: 3
            }
        );
        let err = read_node_table(Path::new("nope/node_info_df_1_5.csv"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("saecooc graphs"), "{err}");
    }
}
