//! The `graphs` stage (in progress): the Jaccard graph, its components, the original's
//! edge-threshold search and per-subgraph structure metrics. The subcommand that writes the
//! node table, thresholded matrices and pictures builds on these.

pub mod components;
pub mod metrics;
