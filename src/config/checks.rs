//! Range and name checks of config keys and command-line flags, and the limits they enforce.

pub use crate::io::pyfmt::check_name;
use crate::io::pyfmt::neat_sae_id;
use anyhow::{bail, ensure, Result};
use std::fmt::Display;
use std::ops::{Bound, RangeBounds};

/// The most windows one forward pass takes (`run.prompts_per_batch`).
pub const MAX_PROMPTS_PER_BATCH: usize = 65_536;
/// The longest window (`run.context_size`): 128k tokens, the longest context of the models
/// saecooc loads (each model's own limit is checked when it is loaded).
pub const MAX_CONTEXT_SIZE: usize = 131_072;
/// The most tokens one forward pass takes (`run.prompts_per_batch × context_size`).
pub const MAX_FORWARD_TOKENS: usize = 1 << 24;
/// The most memory one tensor of 4-byte values sized by the inputs may take (e.g. the residual
/// stream of one forward pass): far above any sensible run, well below sizes that abort on
/// allocation.
pub const MAX_TENSOR_BYTES: u64 = 16 << 30;
/// The most `run.dense_limit_gib` may give (4 TiB).
pub const MAX_DENSE_LIMIT_GIB: f64 = 4096.0;

/// Checks that `value` of `key` (a config key or a command-line flag) lies in `range`; the
/// error names both and the bounds.
pub fn check_range<T: PartialOrd + Display>(
    key: &str,
    value: T,
    range: impl RangeBounds<T>,
) -> Result<()> {
    if range.contains(&value) {
        return Ok(());
    }
    let lower = match range.start_bound() {
        Bound::Included(a) => Some(format!("at least {a}")),
        Bound::Excluded(a) => Some(format!("above {a}")),
        Bound::Unbounded => None,
    };
    let upper = match range.end_bound() {
        Bound::Included(b) => Some(format!("at most {b}")),
        Bound::Excluded(b) => Some(format!("below {b}")),
        Bound::Unbounded => None,
    };
    let bounds: Vec<String> = [lower, upper].into_iter().flatten().collect();
    bail!("{key} is {value}: it must be {}", bounds.join(" and "))
}

/// [`check_range`] for a float, which must also be finite (NaN and ±inf are refused).
pub fn check_finite(key: &str, value: f64, range: impl RangeBounds<f64>) -> Result<()> {
    ensure!(
        value.is_finite(),
        "{key} is {value}: it must be a finite number"
    );
    check_range(key, value, range)
}

/// Checks that a tensor of 4-byte values (float32, u32) of shape `dims`, described by `what`,
/// fits in [`MAX_TENSOR_BYTES`], in arithmetic that cannot overflow.
pub fn check_tensor_size(what: &str, dims: &[usize]) -> Result<()> {
    let bytes = dims
        .iter()
        .try_fold(4u128, |acc, &d| acc.checked_mul(d as u128));
    if bytes.is_some_and(|b| b <= MAX_TENSOR_BYTES as u128) {
        return Ok(());
    }
    let shape: Vec<String> = dims.iter().map(ToString::to_string).collect();
    bail!(
        "{what} would be {} values of 4 bytes, more than the {} GiB one tensor may take",
        shape.join(" × "),
        MAX_TENSOR_BYTES >> 30
    )
}

/// Checks activation thresholds: each finite and 0 or more (below 0 every latent is active on
/// every token), no two alike.
pub fn check_thresholds(key: &str, thresholds: &[f64]) -> Result<()> {
    for (i, &t) in thresholds.iter().enumerate() {
        ensure!(
            t.is_finite() && !t.is_sign_negative(),
            "{key} contains {t}: a threshold must be a finite number, 0 or more (below 0 every latent is active on every token)"
        );
        ensure!(
            !thresholds[..i].contains(&t),
            "{key} contains {t} twice: give each threshold once"
        );
    }
    Ok(())
}

/// Checks each SAE id of `key` with [`check_name`], and that no two share a results folder
/// (their neat ids, `.` and `/` as `_`, are the folder names).
pub fn check_sae_ids(key: &str, ids: &[String]) -> Result<()> {
    for (i, id) in ids.iter().enumerate() {
        check_name(key, id)?;
        let neat = neat_sae_id(id);
        if let Some(other) = ids[..i].iter().find(|o| neat_sae_id(o) == neat) {
            bail!("{key} names {other:?} and {id:?}, which share the results folder {neat:?}: give each SAE once");
        }
    }
    Ok(())
}
