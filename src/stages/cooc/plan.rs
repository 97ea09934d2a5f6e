//! The memory plan of a sweep: before any work, each SAE's count stores, weights and buffers
//! are sized, and the SAEs are packed, in config order, into passes that fit the memory limit
//! with the model. Each pass runs the model once per batch for all of its SAEs.

use crate::config::Config;
use crate::inputs::ResolvedRun;
use crate::pairs::{triangle, Storage};
use crate::resources::MemoryLimit;
use anyhow::Result;

/// What the plan counts for a sparse store (per threshold): its merge buffer and a start of
/// its entries; it grows with the pairs the data brings.
const SPARSE_STORE_BYTES: u128 = 512 << 20;

/// The activation buffers of one SAE while it encodes and counts (two slices of at most
/// 64 MiB, and the batch's activations at its hook).
const BUFFER_BYTES: u128 = 160 << 20;

/// One SAE's share of a pass.
#[derive(Debug, Clone, PartialEq)]
pub struct SaeNeeds {
    pub sae_id: String,
    pub d_sae: usize,
    pub storage: Storage,
    /// Count stores, SAE weights and buffers.
    pub bytes: u128,
}

/// The passes of a sweep, in order, each a list of SAE ids in config order.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub passes: Vec<Vec<SaeNeeds>>,
    pub model_bytes: u128,
    pub limit: Option<MemoryLimit>,
}

impl Plan {
    /// Sizes every SAE of `sae_ids` and packs them into passes under `limit` (None: one pass).
    pub fn new(
        config: &Config,
        resolved: &ResolvedRun,
        sae_ids: &[String],
        limit: Option<MemoryLimit>,
    ) -> Result<Self> {
        let needs = sae_ids
            .iter()
            .map(|id| sae_needs(config, resolved, id))
            .collect::<Result<Vec<_>>>()?;
        let model_bytes = model_bytes(resolved)?;
        let room = limit
            .as_ref()
            .map_or(u128::MAX, |l| (l.bytes as u128).saturating_sub(model_bytes));
        Ok(Self {
            passes: pack(needs, room),
            model_bytes,
            limit,
        })
    }

    /// The plan in words, for the log: the limit, then each pass with its SAEs and estimate.
    pub fn describe(&self) -> Vec<String> {
        let gib = |b: u128| b as f64 / (1u64 << 30) as f64;
        let saes: usize = self.passes.iter().map(Vec::len).sum();
        let limit = self
            .limit
            .as_ref()
            .map_or("no memory limit known".into(), |l| {
                format!("memory limit {:.1} GiB ({})", l.gib(), l.source)
            });
        let mut lines = vec![format!(
            "sweep of {saes} SAEs in {} model pass(es); {limit}; model ~{:.1} GiB",
            self.passes.len(),
            gib(self.model_bytes)
        )];
        for (i, pass) in self.passes.iter().enumerate() {
            let total: u128 = pass.iter().map(|s| s.bytes).sum::<u128>() + self.model_bytes;
            let list: Vec<String> = pass
                .iter()
                .map(|s| {
                    let store = format!("{:?}", s.storage).to_lowercase();
                    format!(
                        "{} ({} latents, {store}, ~{:.1} GiB)",
                        s.sae_id,
                        s.d_sae,
                        gib(s.bytes)
                    )
                })
                .collect();
            lines.push(format!(
                "  pass {}: ~{:.1} GiB: {}",
                i + 1,
                gib(total),
                list.join(", ")
            ));
        }
        lines
    }
}

/// Packs `needs`, in order, into consecutive passes of at most `room` bytes each (an SAE
/// larger than `room` alone gets a pass of its own).
fn pack(needs: Vec<SaeNeeds>, room: u128) -> Vec<Vec<SaeNeeds>> {
    let mut passes: Vec<Vec<SaeNeeds>> = Vec::new();
    let mut used = 0u128;
    for sae in needs {
        match passes.last_mut() {
            Some(pass) if used + sae.bytes <= room => {
                used += sae.bytes;
                pass.push(sae);
            }
            _ => {
                used = sae.bytes;
                passes.push(vec![sae]);
            }
        }
    }
    passes
}

/// What SAE `sae_id` needs in a pass: its count stores (as `cooc` picks them), weights and
/// buffers, from its cfg alone.
fn sae_needs(config: &Config, resolved: &ResolvedRun, sae_id: &str) -> Result<SaeNeeds> {
    let cfg = resolved.sae_config(sae_id)?;
    let thresholds = config.generation.activation_thresholds.len();
    let storage = super::pair_storage(&config.run, cfg.d_sae, thresholds)?;
    let store = match storage {
        Storage::Dense => triangle::triangle_bytes(cfg.d_sae),
        Storage::Sparse => SPARSE_STORE_BYTES,
    } * thresholds as u128;
    let weights = (2 * cfg.d_in * cfg.d_sae + 3 * cfg.d_sae + cfg.d_in) as u128 * 4;
    Ok(SaeNeeds {
        sae_id: sae_id.to_string(),
        d_sae: cfg.d_sae,
        storage,
        bytes: store + weights + BUFFER_BYTES,
    })
}

/// The model's weights as the run holds them: every tensor of its safetensors files at the
/// run's dtype, or a GGUF file's size (a bound: blocks after the deepest hook are never loaded).
fn model_bytes(resolved: &ResolvedRun) -> Result<u128> {
    let files = &resolved.model;
    if files.is_gguf() {
        return Ok(std::fs::metadata(&files.config)?.len() as u128);
    }
    let dtype = resolved.spec.run.dtype.on(&resolved.device)?;
    let mut elements = 0u128;
    for file in &files.weights {
        for (_, shape) in crate::model::safetensors_shapes(file)? {
            elements += shape.iter().product::<usize>() as u128;
        }
    }
    Ok(elements * dtype.size_in_bytes() as u128)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sae(id: &str, gib: u128) -> SaeNeeds {
        SaeNeeds {
            sae_id: id.into(),
            d_sae: 8,
            storage: Storage::Dense,
            bytes: gib << 30,
        }
    }

    fn ids(passes: &[Vec<SaeNeeds>]) -> Vec<Vec<&str>> {
        passes
            .iter()
            .map(|p| p.iter().map(|s| s.sae_id.as_str()).collect())
            .collect()
    }

    #[test]
    fn saes_are_packed_in_order_under_the_room() {
        let needs = vec![
            sae("a", 3),
            sae("b", 4),
            sae("c", 2),
            sae("d", 9),
            sae("e", 1),
        ];
        let passes = pack(needs.clone(), 8 << 30);
        assert_eq!(
            ids(&passes),
            [vec!["a", "b"], vec!["c"], vec!["d"], vec!["e"]]
        );
        assert_eq!(
            ids(&pack(needs, u128::MAX)),
            [vec!["a", "b", "c", "d", "e"]]
        );
        assert!(pack(Vec::new(), 1).is_empty());
    }
}
