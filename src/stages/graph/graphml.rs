//! Subgraphs as GraphML, in place of the original's pickled networkx graphs: networkx reads
//! them with `nx.read_graphml(path, node_type=int)` (and so do igraph, Gephi, Cytoscape).

use crate::io::atomic::write_bytes;
use crate::io::html::escape_markup;
use crate::io::pyfmt::{float_repr, list_repr};
use anyhow::Result;
use std::fmt::Write;
use std::path::Path;

/// One subgraph: node attributes `feature_activations` (double) and `top_10_tokens` (the
/// node table's list repr), edge attribute `weight` (the Jaccard similarity).
pub fn subgraph_graphml(
    nodes: &[u32],
    edges: &[(usize, usize, f32)],
    activations: &[f32],
    top_tokens: &[Vec<String>],
) -> String {
    let mut out = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <graphml xmlns=\"http://graphml.graphdrawing.org/xmlns\" \
         xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" \
         xsi:schemaLocation=\"http://graphml.graphdrawing.org/xmlns http://graphml.graphdrawing.org/xmlns/1.0/graphml.xsd\">\n\
         <key id=\"d0\" for=\"node\" attr.name=\"feature_activations\" attr.type=\"double\"/>\n\
         <key id=\"d1\" for=\"node\" attr.name=\"top_10_tokens\" attr.type=\"string\"/>\n\
         <key id=\"d2\" for=\"edge\" attr.name=\"weight\" attr.type=\"double\"/>\n\
         <graph edgedefault=\"undirected\">\n",
    );
    for (i, node) in nodes.iter().enumerate() {
        let _ = writeln!(
            out,
            "<node id=\"{node}\"><data key=\"d0\">{}</data><data key=\"d1\">{}</data></node>",
            float_repr(activations[i] as f64),
            escape_markup(&list_repr(&top_tokens[i]))
        );
    }
    for &(a, b, w) in edges {
        let _ = writeln!(
            out,
            "<edge source=\"{}\" target=\"{}\"><data key=\"d2\">{}</data></edge>",
            nodes[a],
            nodes[b],
            float_repr(w as f64)
        );
    }
    out.push_str("</graph>\n</graphml>\n");
    out
}

/// Writes [`subgraph_graphml`] to `path` atomically.
pub fn write_subgraph_graphml(
    path: &Path,
    nodes: &[u32],
    edges: &[(usize, usize, f32)],
    activations: &[f32],
    top_tokens: &[Vec<String>],
) -> Result<()> {
    write_bytes(
        path,
        subgraph_graphml(nodes, edges, activations, top_tokens).as_bytes(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graphml_escapes_and_lists_everything() {
        let tokens = vec![vec!["a&b".to_string()], vec!["<x>".to_string()]];
        let xml = subgraph_graphml(&[4, 9], &[(0, 1, 0.25)], &[3.0, 5.0], &tokens);
        assert!(xml.contains(
            "<node id=\"4\"><data key=\"d0\">3.0</data><data key=\"d1\">[&#39;a&amp;b&#39;]</data></node>"
        ));
        assert!(xml.contains("<edge source=\"4\" target=\"9\"><data key=\"d2\">0.25</data></edge>"));
    }
}
