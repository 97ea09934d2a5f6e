//! Gathering a subgraph's examples from the activation stream, as `pca` and `subspace` both
//! do: the examples and their rules ([`gather`]) and the passes over the data ([`pass`]).

pub mod gather;
pub mod pass;

use crate::config::Processing;
use gather::GatherSettings;

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
