//! The results folder layout, byte-for-byte the original's names so its notebooks and app
//! keep working:
//! `{results}/{model}/{release_short}/{neat_sae_id}/n_batches_{N}/feature_acts_cooc_{kind}_threshold_{ts}.npz`.

use crate::pyfmt::{neat_sae_id, threshold_tag};
use std::path::{Path, PathBuf};

/// The three matrices `cooc` writes per threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CoocKind {
    /// Pair counts C (F×F).
    Total,
    /// Jaccard similarity J (F×F).
    Jaccard,
    /// Per-latent totals diag(C) (F).
    Activations,
}

impl CoocKind {
    fn name(self) -> &'static str {
        match self {
            Self::Total => "total",
            Self::Jaccard => "jaccard",
            Self::Activations => "activations",
        }
    }
}

/// `{results}/{model}/{release_short}/{neat_sae_id}/n_batches_{N}`.
pub fn sae_results_dir(
    results: &Path,
    model: &str,
    release_short: &str,
    sae_id: &str,
    n_batches: usize,
) -> PathBuf {
    results
        .join(model)
        .join(release_short)
        .join(neat_sae_id(sae_id))
        .join(format!("n_batches_{n_batches}"))
}

/// `feature_acts_cooc_{kind}_threshold_{ts}.npz` inside a results folder.
pub fn cooc_file(dir: &Path, kind: CoocKind, threshold: f64) -> PathBuf {
    dir.join(format!(
        "feature_acts_cooc_{}_threshold_{}.npz",
        kind.name(),
        threshold_tag(threshold)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_the_original() {
        let d = sae_results_dir(
            Path::new("results"),
            "gpt2-small",
            "res-jb",
            "blocks.8.hook_resid_pre",
            1000,
        );
        assert_eq!(
            d,
            PathBuf::from("results/gpt2-small/res-jb/blocks_8_hook_resid_pre/n_batches_1000")
        );
        assert_eq!(
            cooc_file(&d, CoocKind::Jaccard, 1.5).file_name().unwrap(),
            "feature_acts_cooc_jaccard_threshold_1_5.npz"
        );
        assert_eq!(
            cooc_file(&d, CoocKind::Activations, 0.0)
                .file_name()
                .unwrap(),
            "feature_acts_cooc_activations_threshold_0_0.npz"
        );
    }
}
