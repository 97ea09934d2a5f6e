//! Saved counting state: checkpoints for `cooc --resume` and the partial counts of a
//! `cooc --shard i/n` run that `saecooc merge` sums.
//!
//! One `.npz` holds every threshold's counts (see [`CoocCounts::save`]) plus `state_json`, the
//! position in the data and a fingerprint of the config and SAE, so state from a different run
//! is refused.

use crate::io::npy::{NpyArray, NpyData};
use crate::io::npz::{array_shape, read_npz, NpzWriter};
use crate::pairs::CoocCounts;
use anyhow::{bail, ensure, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

/// Where a run stands.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Position {
    /// Fingerprint of the config, SAE id and shard split.
    pub fingerprint: String,
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

/// FNV-1a 64 of `text`, as hex (stable across Rust versions, unlike `DefaultHasher`).
pub fn fingerprint(text: &str) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in text.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("{h:016x}")
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

/// Loads and checks that the state belongs to this run.
pub fn load_checked(
    path: &Path,
    thresholds: usize,
    n_latents: usize,
    fingerprint: &str,
) -> Result<(Vec<CoocCounts>, Position)> {
    let (counters, position) = load(path, thresholds, n_latents)?;
    ensure!(
        position.fingerprint == fingerprint,
        "{} comes from a different config, SAE or shard split (fingerprint {} ≠ {fingerprint}); delete it or rerun without --resume",
        path.display(),
        position.fingerprint
    );
    Ok((counters, position))
}
