//! What of a study's `cooc` is already complete, read from the results folder: an SAE whose
//! `run.json` is a complete published set counted with the same settings needs neither its
//! cooc tasks nor its merge; a shard whose partial counts are finished needs no task.

use crate::config::Config;
use crate::io::hash::sha256_bytes;
use crate::io::npy::NpyData;
use crate::io::npz::read_npz_array;
use crate::provenance::{settings_text, shard_name};
use crate::results::layout::{sae_results_dir, shard_file, RUN_JSON};
use crate::results::manifest::CoocManifest;
use std::path::Path;

/// Where one SAE of the config stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaeProgress {
    pub sae_id: String,
    /// Its cooc set is published, complete, for the config's settings.
    pub published: bool,
    /// Per shard: its partial counts are finished (for the config's settings).
    pub shards_done: Vec<bool>,
}

/// Where each SAE of `config` stands under the results root `root`, for `shards` shards.
pub fn progress(config: &Config, root: &Path, shards: usize) -> anyhow::Result<Vec<SaeProgress>> {
    let g = &config.generation;
    g.sae_ids
        .iter()
        .map(|sae_id| {
            let dir = sae_results_dir(
                root,
                &g.model_name,
                &g.sae_release_short,
                sae_id,
                g.n_batches,
            );
            let settings = sha256_bytes(settings_text(config, sae_id)?.as_bytes());
            Ok(SaeProgress {
                sae_id: sae_id.clone(),
                published: published_for(&dir, &settings),
                shards_done: (0..shards)
                    .map(|i| shard_finished(&dir, (i, shards), &settings))
                    .collect(),
            })
        })
        .collect()
}

/// Whether `dir/run.json` is a complete published cooc set counted with `settings` (the
/// fingerprint of the config and SAE id).
fn published_for(dir: &Path, settings: &str) -> bool {
    if !dir.join(RUN_JSON).is_file() {
        return false;
    }
    let Ok(manifest) = CoocManifest::read(dir) else {
        return false;
    };
    let set = &manifest.set;
    !set.files.is_empty()
        && set.inputs.get("settings").map(String::as_str) == Some(settings)
        && set.check_complete(dir, RUN_JSON).is_ok()
}

/// What a shard file's `state_json` says about it (the fields read here).
#[derive(serde::Deserialize)]
struct ShardState {
    #[serde(default)]
    inputs: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    complete: bool,
}

/// Whether shard `i` of `n` in `dir` holds finished partial counts for `settings`.
fn shard_finished(dir: &Path, (i, n): (usize, usize), settings: &str) -> bool {
    let path = shard_file(dir, i, n);
    if !path.is_file() {
        return false;
    }
    let Ok(array) = read_npz_array(&path, "state_json") else {
        return false;
    };
    let NpyData::U8(json) = array.data else {
        return false;
    };
    let Ok(state) = serde_json::from_slice::<ShardState>(&json) else {
        return false;
    };
    state.complete
        && state.inputs.get("settings").map(String::as_str) == Some(settings)
        && state.inputs.get("shard") == Some(&shard_name(Some((i, n))))
}
