//! What `pca` and `subspace` share: gathering a subgraph's examples from the activation
//! stream ([`gather`], [`pass`]) and the exact PCA of their reconstructions ([`solver`]).

pub mod gather;
pub mod pass;
pub mod solver;

use crate::config::Processing;
use gather::GatherSettings;

/// PCA components per subgraph.
pub const COMPONENTS: usize = 3;

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
