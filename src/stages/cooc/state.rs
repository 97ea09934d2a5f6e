//! Saved counting state: checkpoints for `cooc --resume` and the partial counts of a
//! `cooc --shard i/n` run that `saecooc merge` sums.
//!
//! One `.npz` holds every threshold's counts (see [`CoocCounts::save`]) plus `state_json`, the
//! position in the data and the fingerprints of the run's inputs ([`crate::provenance`]), so
//! state from different inputs is refused, naming what changed.

use crate::io::npy::{NpyArray, NpyData};
use crate::io::npz::{array_shape, read_npz, NpzWriter};
use crate::pairs::CoocCounts;
use crate::provenance::{changed, Inputs};
use anyhow::{bail, ensure, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

/// Where a run stands.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Position {
    /// Fingerprints of the inputs, the shard included (empty in state written before they
    /// were recorded).
    #[serde(default)]
    pub inputs: Inputs,
    /// Tokens counted so far over all shards (the budget is global).
    pub counted_global: u64,
    /// Batches read so far.
    pub batches: u64,
    /// Windows read from the data.
    pub windows_read: u64,
    /// True once the run is complete (a shard's final partial counts).
    pub complete: bool,
    pub data_exhausted: bool,
}

/// Writes counts and position to `path` atomically.
pub fn save(path: &Path, counters: &mut [CoocCounts], position: &Position) -> Result<()> {
    let mut w = NpzWriter::create(path, true)?;
    for (k, c) in counters.iter_mut().enumerate() {
        c.save(&mut w, &format!("t{k}"))?;
    }
    let json = serde_json::to_vec(position)?;
    w.add_array("state_json", &[json.len()], &json)?;
    w.finish()
}

/// Reads counts saved by [`save`] for `thresholds` thresholds and `n_latents` latents.
pub fn load(
    path: &Path,
    thresholds: usize,
    n_latents: usize,
) -> Result<(Vec<CoocCounts>, Position)> {
    let mut arrays: HashMap<String, NpyArray> = read_npz(path)?.into_iter().collect();
    let json: Vec<u8> = match arrays.get("state_json").map(|a| &a.data) {
        Some(NpyData::U8(v)) => v.clone(),
        _ => bail!("{} holds no saved cooc state", path.display()),
    };
    let position: Position =
        serde_json::from_slice(&json).with_context(|| format!("{}: bad state", path.display()))?;
    let counters = (0..thresholds)
        .map(|k| CoocCounts::load(&mut arrays, &format!("t{k}"), n_latents))
        .collect::<Result<Vec<_>>>()
        .with_context(|| format!("{} does not match this config", path.display()))?;
    Ok((counters, position))
}

/// The number of latents of saved counts, from the header of the first threshold's dense
/// triangle or sparse `indptr` (no counts are read).
pub fn saved_latents(path: &Path) -> Result<usize> {
    if let Some(shape) = array_shape(path, "t0_indptr")? {
        return shape
            .first()
            .and_then(|l| l.checked_sub(1))
            .with_context(|| format!("{}: empty t0_indptr", path.display()));
    }
    let len = array_shape(path, "t0_triangle")?
        .and_then(|s| s.first().copied())
        .with_context(|| format!("{} holds no saved counts", path.display()))?;
    let n = (((8 * len + 1) as f64).sqrt() as usize).saturating_sub(1) / 2;
    ensure!(
        n * (n + 1) / 2 == len,
        "{}: bad triangle length {len}",
        path.display()
    );
    Ok(n)
}

/// Loads state and checks that it was saved from the same inputs as `inputs`.
pub fn load_checked(
    path: &Path,
    thresholds: usize,
    n_latents: usize,
    inputs: &Inputs,
) -> Result<(Vec<CoocCounts>, Position)> {
    let (counters, position) = load(path, thresholds, n_latents)?;
    check_inputs(path, &position.inputs, inputs)?;
    Ok((counters, position))
}

/// Refuses state saved from other inputs than `now`, naming what changed.
pub fn check_inputs(path: &Path, saved: &Inputs, now: &Inputs) -> Result<()> {
    ensure!(
        !saved.is_empty(),
        "{} was written by an older saecooc that recorded no input fingerprints; delete it and rerun",
        path.display()
    );
    let differ = changed(saved, now);
    ensure!(
        differ.is_empty(),
        "{} was computed from other inputs: {} changed since; delete it, or rerun without --resume",
        path.display(),
        differ.join(", ")
    );
    Ok(())
}
