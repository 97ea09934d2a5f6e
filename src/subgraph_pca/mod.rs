//! What `pca` and `subspace` share: gathering a subgraph's examples from the activation
//! stream ([`gather`], [`pass`]), the exact PCA of their reconstructions ([`solver`]), and the
//! checks on the `graphs` outputs both read (node table and its result set).

pub mod gather;
pub mod pass;
pub mod solver;

use crate::activations::Encoder;
use crate::config::Processing;
use crate::results::manifest::check_counted_inputs;
use crate::results::node_table::{check_lists_each_latent, NodeRow};
use crate::results::set::PublishedSet;
use crate::results::stage::{open_cooc, open_graphs};
use crate::sources::Sources;
use anyhow::Result;
use gather::GatherSettings;
use std::path::Path;

/// PCA components per subgraph.
pub const COMPONENTS: usize = 3;

/// The graphs set of `dir`, checked: computed from the cooc set there now, with `table`
/// (the node table about to be read) intact.
pub fn checked_graph_set(dir: &Path, table: &Path, quiet: bool) -> Result<PublishedSet> {
    let (_, graphs) = open_graphs(dir)?;
    if graphs.record.is_none() && !quiet {
        eprintln!("{}", graphs.unchecked_note());
    }
    graphs.verify(table)?;
    Ok(graphs)
}

/// Refuses to gather with an SAE, model, tokenizer or dataset other than those `cooc` counted
/// in `dir` (`stage` names the command in the error).
pub fn check_encoder_inputs(
    dir: &Path,
    sources: &Sources,
    encoder: &Encoder,
    sae_id: &str,
    stage: &str,
) -> Result<()> {
    let cooc = open_cooc(dir)?;
    let now = || sources.reread(sae_id, Some(&encoder.runner.dataset));
    check_counted_inputs(dir, &cooc, now, stage)
}

/// Refuses a node table written for another SAE: one row per latent, every latent below
/// `d_sae`, none twice.
pub fn check_table_fits_sae(
    rows: &[NodeRow],
    table: &Path,
    sae_id: &str,
    d_sae: usize,
) -> Result<()> {
    let ids: Vec<u32> = rows.iter().map(|r| r.node_id).collect();
    check_lists_each_latent(&ids, table, d_sae, &format!("SAE {sae_id}"))
}

impl GatherSettings {
    /// The gathering rules of a PCA config's `[processing]`.
    pub fn of(p: &Processing) -> Self {
        Self {
            max_examples: p.max_examples,
            trim_excess: p.trim_excess,
            remove_special_tokens: p.remove_special_tokens,
            keep_feature_acts: p.save_options.feature_acts,
            keep_nonzero_acts: false,
        }
    }
}
