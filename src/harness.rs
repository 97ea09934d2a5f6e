//! The stage harness: what the stages do around their own work, owned once: locking what a
//! stage publishes (a whole folder, one output of it, or one shard of a split `cooc` run) and
//! recovering what interrupted runs left there, starting its staged set; and, for
//! the stages that read `graphs`' node table (`pca`, `subspace`), finding the node table,
//! checking the graphs set against the cooc set it was computed from, loading model and SAE
//! refused unless they fit what `cooc` counted, and publishing the set with its manifest.

use crate::activations::HookedSae;
use crate::inputs::ResolvedRun;
use crate::results::layout::{shard_lock_name, GraphFiles, RUN_JSON, SHARDS_DIR};
use crate::results::lock::FolderLock;
use crate::results::manifest::{check_counted_inputs, cooc_ownership};
use crate::results::node_table::{check_lists_each_latent, read_node_table, NodeRow};
use crate::results::set::{
    recover, remove_dead_partials, Ownership, PublishedSet, SetRecord, Staging,
};
use crate::results::stage::{open_cooc, open_graphs, Stage};
use anyhow::{ensure, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The node table of `threshold` in the SAE results folder `dir`, refused when `graphs` has not
/// written it (`what`: what `graphs` must be run for, e.g. "this SAE").
pub fn locate_node_table(dir: &Path, threshold: f64, what: &str) -> Result<PathBuf> {
    let table = GraphFiles::new(dir, threshold).node_table;
    ensure!(
        table.is_file(),
        "no node table {}: run `saecooc graphs` for {what} first",
        table.display()
    );
    Ok(table)
}

/// Locks `dir` for `stage` and makes it consistent: completes a publish that an interrupted
/// run left planned and removes what dead runs left behind.
pub fn lock_folder(dir: &Path, stage: Stage) -> Result<FolderLock> {
    lock_and_recover(dir, stage.name())
}

/// Locks only the entry `output` of `dir` for `stage` (e.g. one `subspace` folder, so runs
/// on other subgraphs go side by side) and makes it consistent as [`lock_folder`] does, touching
/// nothing else of `dir`.
pub fn lock_output(dir: &Path, output: &str, stage: Stage) -> Result<FolderLock> {
    let lock = FolderLock::acquire_output(dir, output, stage.name())?;
    recover(&lock)?;
    Ok(lock)
}

/// Locks `dir` for `saecooc merge`, which publishes the `cooc` set from the shards' counts,
/// and makes it consistent as [`lock_folder`] does.
pub fn lock_for_merge(dir: &Path) -> Result<FolderLock> {
    lock_and_recover(dir, "merge")
}

/// Locks `dir` for the command `holder` (as the lock names it) and recovers the folder.
fn lock_and_recover(dir: &Path, holder: &str) -> Result<FolderLock> {
    let lock = FolderLock::acquire(dir, holder)?;
    recover(&lock)?;
    Ok(lock)
}

/// Locks only shard `index` of `count` of a split `cooc` run (its lock file in `dir/shards/`,
/// so the shards run side by side), removing the temporaries dead runs left there.
pub fn lock_shard(dir: &Path, index: usize, count: usize) -> Result<FolderLock> {
    let shards = dir.join(SHARDS_DIR);
    let lock = FolderLock::acquire_file(
        &shards,
        &shard_lock_name(index, count),
        &format!("cooc --shard {index}/{count}"),
    )?;
    remove_dead_partials(&shards, 0);
    Ok(lock)
}

/// Starts `stage`'s set in the folder `lock` holds, described by `manifest`, owning
/// `ownership` and recorded as computed from `inputs`.
pub fn begin_staging(
    lock: &FolderLock,
    stage: Stage,
    manifest: &str,
    ownership: Ownership,
    inputs: BTreeMap<String, String>,
) -> Result<Staging> {
    Staging::begin(lock, stage.name(), manifest, ownership, inputs)
}

/// Starts the `cooc` set (of `cooc` or `merge`) in the folder `lock` holds, recorded as
/// counted from `inputs`.
pub fn begin_cooc_set(lock: &FolderLock, inputs: BTreeMap<String, String>) -> Result<Staging> {
    begin_staging(lock, Stage::Cooc, RUN_JSON, cooc_ownership(), inputs)
}

/// The node table a stage reads, with the graphs set that vouches for it.
pub struct NodeTableInput {
    /// The SAE results folder.
    pub dir: PathBuf,
    /// `dataframes/node_info_df_{ts}.csv` in it.
    pub table: PathBuf,
    /// The graphs set, checked against the cooc set there now.
    pub graphs: PublishedSet,
    pub rows: Vec<NodeRow>,
}

impl NodeTableInput {
    /// Reads `table` in the results folder `dir` once its graphs set is checked: computed from
    /// the cooc set there now, with the table intact (a set without a manifest is noted).
    pub fn read(dir: PathBuf, table: PathBuf) -> Result<Self> {
        let (_, graphs) = open_graphs(&dir)?;
        if graphs.record.is_none() {
            crate::report::note(format_args!("{}", graphs.unchecked_note()));
        }
        graphs.verify(&table)?;
        let rows = read_node_table(&table)?;
        Ok(Self {
            dir,
            table,
            graphs,
            rows,
        })
    }

    /// Loads model and SAE for `stage`, refused when the node table was written for another
    /// SAE, or when the SAE, model, tokenizer or dataset differ from those `cooc` counted.
    pub fn load_encoder(
        &self,
        resolved: &ResolvedRun,
        sae_id: &str,
        stage: Stage,
    ) -> Result<HookedSae> {
        let encoder = HookedSae::load(resolved, sae_id)?;
        self.check_encoder(resolved, &encoder, sae_id, stage)?;
        Ok(encoder)
    }

    /// Refuses `encoder` (loaded for SAE `sae_id`, e.g. by a sweep) as [`Self::load_encoder`]
    /// does.
    pub fn check_encoder(
        &self,
        resolved: &ResolvedRun,
        encoder: &HookedSae,
        sae_id: &str,
        stage: Stage,
    ) -> Result<()> {
        self.check_fits_sae(sae_id, encoder.sae.cfg.d_sae)?;
        check_encoder_inputs(&self.dir, resolved, encoder, sae_id, stage)
    }

    /// Refuses a node table written for another SAE: one row per latent, every latent below
    /// `d_sae`, none twice.
    fn check_fits_sae(&self, sae_id: &str, d_sae: usize) -> Result<()> {
        let ids: Vec<u32> = self.rows.iter().map(|r| r.node_id).collect();
        check_lists_each_latent(&ids, &self.table, d_sae, &format!("SAE {sae_id}"))
    }

    /// Starts the set of `stage` in the folder `lock` holds, recorded as computed from this
    /// graphs set, described by `manifest` and owning `ownership`.
    pub fn begin_staging(
        &self,
        lock: &FolderLock,
        stage: Stage,
        manifest: &str,
        ownership: Ownership,
    ) -> Result<Staging> {
        let graphs = self.graphs.set_id().unwrap_or("unchecked").to_string();
        let inputs = [(Stage::Graphs.name().to_string(), graphs)].into();
        begin_staging(lock, stage, manifest, ownership, inputs)
    }
}

/// Refuses to read activations with an SAE, model, tokenizer or dataset other than those `cooc`
/// counted in the results folder `dir` (`stage` names the command in the error).
pub fn check_encoder_inputs(
    dir: &Path,
    resolved: &ResolvedRun,
    encoder: &HookedSae,
    sae_id: &str,
    stage: Stage,
) -> Result<()> {
    let cooc = open_cooc(dir)?;
    let now = || resolved.reread(sae_id, Some(&encoder.runner.dataset));
    check_counted_inputs(dir, &cooc, now, stage.name())
}

/// A stage's summary that is also its set's manifest.
pub trait SetSummary: Serialize + Clone {
    /// The set record the manifest carries.
    fn set_mut(&mut self) -> &mut SetRecord;
}

/// Publishes the staged set with `summary` as its manifest, and puts the set's record into
/// `summary`.
pub fn publish<S: SetSummary>(staging: Staging, summary: &mut S) -> Result<()> {
    let record = staging.publish(|set| {
        let mut s = summary.clone();
        *s.set_mut() = set.clone();
        Ok(serde_json::to_vec_pretty(&s)?)
    })?;
    *summary.set_mut() = record;
    Ok(())
}
