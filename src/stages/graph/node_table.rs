//! The node table `node_info_df_{ts}.csv` (see docs/formats.md, "Graph files"): one row per latent,
//! grouped by subgraph, with top tokens, Neuronpedia links and (optionally) structure metrics.
//!
//! Floats are written as Python's `repr` writes them (`1.5`, `27667.0`, `0.6666666666666666`)
//! so pandas reads the original's values; the table is written with minimal quoting, as pandas
//! and polars write it.
//!
//! Deliberate difference: nodes inside a subgraph are in ascending order (the original's
//! follow CPython set iteration order), so quick-list batches of subgraphs with more than 10
//! nodes can group different nodes.

use super::metrics::SubgraphMetrics;
use crate::io::atomic::AtomicFile;
use crate::io::csv_table::Table;
use crate::io::pyfmt::{float_repr, list_repr, url_quote};
use anyhow::{ensure, Context, Result};
use std::io::Write;
use std::path::Path;

/// Nodes per Neuronpedia quick-list (the original's batch size).
pub const QUICKLIST_BATCH: usize = 10;

/// The SAE's Neuronpedia coordinates: `{model}/{layer}` (e.g. `gpt2-small/8-res_fs768-jb`).
#[derive(Debug, Clone)]
pub struct Neuronpedia {
    /// `generation.model_name`, the quick-list `modelId`.
    pub model_name: String,
    /// The SAE's `neuronpedia_id`.
    pub id: String,
}

impl Neuronpedia {
    /// `https://neuronpedia.org/{id}/{node}`.
    pub fn dashboard_link(&self, node: u32) -> String {
        format!("https://neuronpedia.org/{}/{node}", self.id)
    }

    /// The layer part of the id (after the first `/`).
    fn layer(&self) -> &str {
        self.id.split_once('/').map_or(self.id.as_str(), |(_, l)| l)
    }

    /// The quick-list link of `nodes`, named `Subgraph_{sid}_Batch_{batch}`, with the
    /// original's JSON (`", "` / `": "` separators) percent-encoded.
    pub fn quicklist_link(&self, subgraph: usize, batch: usize, nodes: &[u32]) -> String {
        let features: Vec<String> = nodes
            .iter()
            .map(|n| {
                format!(
                    "{{\"modelId\": {}, \"layer\": {}, \"index\": \"{n}\"}}",
                    json_string(&self.model_name),
                    json_string(self.layer())
                )
            })
            .collect();
        let json = format!("[{}]", features.join(", "));
        format!(
            "https://neuronpedia.org/quick-list/?name=Subgraph_{subgraph}_Batch_{batch}&features={}",
            url_quote(&json)
        )
    }
}

/// A JSON string literal as Python's `json.dumps` writes it (ASCII only).
fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// What the node table is built from.
pub struct NodeTableInput<'a> {
    pub activation_threshold: f64,
    /// Components, ordered by smallest member, members ascending.
    pub components: &'a [Vec<u32>],
    /// Per-latent token counts (diag C).
    pub activations: &'a [f32],
    /// Per-latent top tokens, decoded.
    pub top_tokens: &'a [Vec<String>],
    /// None when the SAE has no Neuronpedia id: links are left empty.
    pub neuronpedia: Option<&'a Neuronpedia>,
    /// Per-component metrics, when `include_metrics`.
    pub metrics: Option<&'a [SubgraphMetrics]>,
}

/// Metric columns (after `neuronpedia_link`), in the original's order.
const METRIC_COLUMNS: [&str; 8] = [
    "density",
    "max_avg_degree_ratio",
    "avg_clustering",
    "diameter",
    "single_node_score",
    "hub_spoke_score",
    "strongly_connected_score",
    "linear_score",
];

/// The metric values of one subgraph as the original writes them (`diameter` is an integer).
fn metric_cells(m: &SubgraphMetrics) -> [String; 8] {
    [
        float_repr(m.density),
        float_repr(m.max_avg_degree_ratio),
        float_repr(m.avg_clustering),
        m.diameter.to_string(),
        float_repr(m.single_node_score),
        float_repr(m.hub_spoke_score),
        float_repr(m.strongly_connected_score),
        float_repr(m.linear_score),
    ]
}

/// Builds the node table: one row per node, subgraphs in order, with the original's columns.
pub fn node_table(input: &NodeTableInput) -> Result<Table> {
    let n_rows: usize = input.components.iter().map(Vec::len).sum();
    if let Some(m) = input.metrics {
        ensure!(
            m.len() == input.components.len(),
            "{} metrics for {} subgraphs",
            m.len(),
            input.components.len()
        );
    }
    let threshold = float_repr(input.activation_threshold);
    let mut node_id = Vec::with_capacity(n_rows);
    let mut activity = Vec::with_capacity(n_rows);
    let mut subgraph_id = Vec::with_capacity(n_rows);
    let mut subgraph_size = Vec::with_capacity(n_rows);
    let mut activations = Vec::with_capacity(n_rows);
    let mut tokens = Vec::with_capacity(n_rows);
    let mut dashboard: Vec<Option<String>> = Vec::with_capacity(n_rows);
    let mut metrics: Vec<Vec<Option<String>>> = vec![Vec::new(); METRIC_COLUMNS.len()];
    let mut quicklist: Vec<Option<String>> = Vec::with_capacity(n_rows);
    for (sid, nodes) in input.components.iter().enumerate() {
        let cells = input.metrics.map(|m| metric_cells(&m[sid]));
        for (batch, chunk) in nodes.chunks(QUICKLIST_BATCH).enumerate() {
            let link = input
                .neuronpedia
                .map(|np| np.quicklist_link(sid, batch, chunk));
            for &node in chunk {
                let i = node as usize;
                ensure!(
                    i < input.activations.len() && i < input.top_tokens.len(),
                    "node {node} is outside the SAE's {} latents",
                    input.activations.len()
                );
                node_id.push(Some(node.to_string()));
                activity.push(Some(threshold.clone()));
                subgraph_id.push(Some(sid.to_string()));
                subgraph_size.push(Some(nodes.len().to_string()));
                activations.push(Some(float_repr(input.activations[i] as f64)));
                tokens.push(Some(list_repr(&input.top_tokens[i])));
                dashboard.push(input.neuronpedia.map(|np| np.dashboard_link(node)));
                if let Some(cells) = &cells {
                    for (column, cell) in metrics.iter_mut().zip(cells) {
                        column.push(Some(cell.clone()));
                    }
                }
                quicklist.push(link.clone());
            }
        }
    }
    let mut table = Table::with_rows(n_rows);
    table.push("node_id", node_id)?;
    table.push("activity_threshold", activity)?;
    table.push("subgraph_id", subgraph_id)?;
    table.push("subgraph_size", subgraph_size)?;
    table.push("feature_activations", activations)?;
    table.push("top_10_tokens", tokens)?;
    table.push("neuronpedia_link", dashboard)?;
    if input.metrics.is_some() {
        for (name, values) in METRIC_COLUMNS.iter().zip(metrics) {
            table.push(name, values)?;
        }
    }
    table.push("quicklist_link", quicklist)?;
    Ok(table)
}

/// Writes a table as CSV (header, no index, minimal quoting, empty cells for missing values),
/// atomically.
pub fn write_csv(table: &Table, path: &Path) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create folder {}", dir.display()))?;
    }
    let (guard, mut writer) = AtomicFile::create(path)?;
    writer
        .write_all(table.to_csv().as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    guard.commit(writer)
}

/// `edge_thresholds.csv`: `activation_threshold,edge_threshold`, one row per threshold.
pub fn edge_threshold_table(rows: &[(f64, f64)]) -> Result<Table> {
    let column = |pick: fn(&(f64, f64)) -> f64| rows.iter().map(move |r| Some(float_repr(pick(r))));
    let mut table = Table::with_rows(rows.len());
    table.push("activation_threshold", column(|r| r.0).collect())?;
    table.push("edge_threshold", column(|r| r.1).collect())?;
    Ok(table)
}

#[cfg(test)]
mod tests {
    //! The formatting is checked against rows of a node table and an edge-threshold table
    //! written by the original pipeline (shared/spec/examples, GPT-2 feature-splitting SAE,
    //! 768 latents, threshold 1.5), and the structure against the original's
    //! test_create_node_info_dataframe.
    use super::*;
    use crate::stages::graph::metrics::subgraph_metrics;

    const EXAMPLE_ROWS: &str = include_str!("testdata/node_info_df_1_5_head.csv");

    fn tokens(s: &[&str]) -> Vec<String> {
        s.iter().map(|t| t.to_string()).collect()
    }

    #[test]
    fn rows_match_the_original_byte_for_byte() {
        let mut top = vec![Vec::new(); 768];
        top[0] = tokens(&[
            " regard",
            " regards",
            "stood",
            "draw",
            "drawn",
            " impunity",
            " respect",
            "standing",
            "holding",
            " dignity",
        ]);
        top[1] = tokens(&[
            " altogether",
            " entirely",
            " unnecessary",
            " offending",
            " outright",
            " abruptly",
            " disbelief",
            " unwanted",
            " bothering",
            " inhib",
        ]);
        top[763] = tokens(&[
            " undone",
            " intact",
            " unfinished",
            " unexpl",
            "overs",
            " altogether",
            " behind",
            " unsc",
            " unchanged",
            " voluntarily",
        ]);
        top[718] = tokens(&[
            "luster",
            " miser",
            "lust",
            "WARE",
            " deadlines",
            " altogether",
            " due",
            " adequately",
            " grasp",
            "lect",
        ]);
        let mut acts = vec![0f32; 768];
        acts[0] = 27667.0;
        acts[1] = 47654.0;
        acts[763] = 31626.0;
        acts[718] = 53650.0;
        // The original's node order in subgraph 1 is CPython set order; use it here to compare
        // bytes (saecooc itself sorts).
        let components = vec![vec![0], vec![1, 763, 718]];
        let metrics = [
            subgraph_metrics(1, &[]),
            subgraph_metrics(3, &[(0, 1), (1, 2)]),
        ];
        let np = Neuronpedia {
            model_name: "gpt2-small".into(),
            id: "gpt2-small/8-res_fs768-jb".into(),
        };
        let df = node_table(&NodeTableInput {
            activation_threshold: 1.5,
            components: &components,
            activations: &acts,
            top_tokens: &top,
            neuronpedia: Some(&np),
            metrics: Some(&metrics),
        })
        .unwrap();
        assert_eq!(df.to_csv(), EXAMPLE_ROWS);
    }

    #[test]
    fn edge_thresholds_match_the_original() {
        let df = edge_threshold_table(&[
            (1.5, 0.1171875),
            (0.0, 0.1328125),
            (0.1, 0.1328125),
            (0.5, 0.125),
        ])
        .unwrap();
        assert_eq!(
            df.to_csv(),
            "activation_threshold,edge_threshold\n1.5,0.1171875\n0.0,0.1328125\n0.1,0.1328125\n0.5,0.125\n"
        );
    }

    /// test_create_node_info_dataframe: path 0-1-2 and edge 3-4.
    #[test]
    fn two_subgraphs_give_five_rows() {
        let components = vec![vec![0, 1, 2], vec![3, 4]];
        let top: Vec<Vec<String>> = (0..5).map(|i| vec![format!("t{i}")]).collect();
        let acts = [5.0f32, 4.0, 3.0, 2.0, 1.0];
        let metrics = [
            subgraph_metrics(3, &[(0, 1), (1, 2)]),
            subgraph_metrics(2, &[(0, 1)]),
        ];
        let input = |metrics| NodeTableInput {
            activation_threshold: 0.5,
            components: &components,
            activations: &acts,
            top_tokens: &top,
            neuronpedia: None,
            metrics,
        };
        let df = node_table(&input(Some(&metrics))).unwrap();
        assert_eq!(df.height(), 5);
        assert_eq!(df.width(), 16);
        let ids: Vec<i64> = df
            .column("subgraph_id")
            .unwrap()
            .iter()
            .map(|v| v.as_deref().unwrap().parse().unwrap())
            .collect();
        assert_eq!(ids, [0, 0, 0, 1, 1]);
        // Metrics are numbers (not NaN).
        for name in METRIC_COLUMNS {
            for v in df.column(name).unwrap().iter().flatten() {
                let x: f64 = v.parse().unwrap();
                assert!(x.is_finite(), "{name} = {v}");
            }
        }
        // Without metrics: the 8 base columns; no Neuronpedia id: empty links.
        let df = node_table(&input(None)).unwrap();
        assert_eq!(df.width(), 8);
        let csv = df.to_csv();
        assert!(csv.lines().nth(1).unwrap().ends_with("['t0'],,"), "{csv}");
        // Empty input → empty frame with the same columns.
        let empty = node_table(&NodeTableInput {
            components: &[],
            ..input(None)
        })
        .unwrap();
        assert_eq!((empty.height(), empty.width()), (0, 8));
    }

    #[test]
    fn json_strings_are_escaped_as_python_does() {
        assert_eq!(json_string("a\"b"), "\"a\\\"b\"");
        assert_eq!(json_string("é"), "\"\\u00e9\"");
    }
}
