//! The plan of one forward pass that reads several hooks: which activations each block
//! captures and whether its output is needed ([`HookSet`]), and the activations captured as
//! the pass goes ([`Reading`], [`BlockRun`]). Every architecture runs its blocks through this,
//! one hook being the case of a set of one.

use super::{HookKind, HookPoint};
use anyhow::{ensure, Context, Result};
use candle_core::Tensor;
use std::collections::HashMap;

/// Where a pass takes a hook's activations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Site {
    /// The token embeddings as `hook_embed` reads them.
    Embed,
    /// The stream entering block 0 (`blocks.0.hook_resid_pre`).
    Input,
    /// An activation of block `.0`; its `ResidPost` is also the next block's `hook_resid_pre`.
    Block(usize, HookKind),
}

impl Site {
    fn of(hook: HookPoint) -> Self {
        match hook.kind {
            HookKind::Embed => Self::Embed,
            HookKind::ResidPre if hook.layer == 0 => Self::Input,
            HookKind::ResidPre => Self::Block(hook.layer - 1, HookKind::ResidPost),
            kind => Self::Block(hook.layer, kind),
        }
    }
}

/// What one block of a pass captures, and whether its output is needed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockReads {
    /// The activations of the block that the pass reads (no duplicates).
    pub kinds: Vec<HookKind>,
    /// True when the block runs whole: a later block reads its output, or the pass does.
    pub whole: bool,
}

/// The hooks one pass reads, in the order they were asked for (duplicates allowed).
#[derive(Debug, Clone)]
pub struct HookSet {
    hooks: Vec<HookPoint>,
    sites: Vec<Site>,
    blocks: Vec<BlockReads>,
}

impl HookSet {
    pub fn new(hooks: &[HookPoint]) -> Self {
        let sites: Vec<Site> = hooks.iter().map(|&h| Site::of(h)).collect();
        let n_blocks = sites
            .iter()
            .filter_map(|site| match site {
                Site::Block(layer, _) => Some(layer + 1),
                _ => None,
            })
            .max()
            .unwrap_or(0);
        let blocks = (0..n_blocks)
            .map(|layer| {
                let mut kinds: Vec<HookKind> = Vec::new();
                for site in &sites {
                    if let Site::Block(l, kind) = *site {
                        if l == layer && !kinds.contains(&kind) {
                            kinds.push(kind);
                        }
                    }
                }
                let whole = layer + 1 < n_blocks || kinds.contains(&HookKind::ResidPost);
                BlockReads { kinds, whole }
            })
            .collect();
        Self {
            hooks: hooks.to_vec(),
            sites,
            blocks,
        }
    }

    /// What each block that runs reads, block 0 first (the pass runs no others).
    pub fn blocks(&self) -> &[BlockReads] {
        &self.blocks
    }

    /// Whether the pass reads `hook_embed`.
    pub fn reads_embed(&self) -> bool {
        self.sites.contains(&Site::Embed)
    }

    /// Whether the pass needs the stream entering block 0 (to read it, or to run a block).
    pub fn needs_input(&self) -> bool {
        !self.blocks.is_empty() || self.sites.contains(&Site::Input)
    }

    /// Checks that a model with `loaded` blocks, loaded to `hook`, can run this pass.
    pub fn check_loaded(&self, loaded: usize, hook: HookPoint) -> Result<()> {
        let beyond = self.hooks.iter().find(|h| h.blocks_needed() > loaded);
        ensure!(
            beyond.is_none(),
            "internal: hook {} is beyond {hook}, the hook this model was loaded to",
            beyond.map(ToString::to_string).unwrap_or_default()
        );
        Ok(())
    }
}

/// The activations of one pass, captured as it goes.
pub struct Reading<'a> {
    set: &'a HookSet,
    got: HashMap<Site, Tensor>,
}

impl<'a> Reading<'a> {
    pub fn new(set: &'a HookSet) -> Self {
        Self {
            set,
            got: HashMap::new(),
        }
    }

    /// Captures `hook_embed` when the pass reads it.
    pub fn embed(&mut self, embeddings: &Tensor) {
        self.keep(Site::Embed, embeddings);
    }

    /// Captures `blocks.0.hook_resid_pre` when the pass reads it.
    pub fn input(&mut self, stream: &Tensor) {
        self.keep(Site::Input, stream);
    }

    fn keep(&mut self, site: Site, t: &Tensor) {
        if self.set.sites.contains(&site) {
            self.got.insert(site, t.clone());
        }
    }

    /// Runs the blocks the pass needs from the stream `x`: `block(layer, input, run)` runs one
    /// as far as `run` says, captures into it, and returns its output when it ran whole.
    pub fn run_blocks(
        &mut self,
        mut x: Tensor,
        mut block: impl FnMut(usize, &Tensor, &mut BlockRun) -> Result<Option<Tensor>>,
    ) -> Result<()> {
        for (layer, reads) in self.set.blocks.iter().enumerate() {
            let mut run = BlockRun {
                pending: reads.kinds.clone(),
                whole: reads.whole,
                captured: Vec::new(),
            };
            let out = block(layer, &x, &mut run)?;
            for (kind, t) in run.captured {
                self.got.insert(Site::Block(layer, kind), t);
            }
            match out {
                Some(out) => x = out,
                None => break,
            }
        }
        Ok(())
    }

    /// The activations at each hook of the set, in its order, each through `shape`.
    pub fn finish(self, shape: impl Fn(&Tensor) -> Result<Tensor>) -> Result<Vec<Tensor>> {
        self.set
            .sites
            .iter()
            .zip(&self.set.hooks)
            .map(|(site, hook)| {
                let t = self
                    .got
                    .get(site)
                    .with_context(|| format!("internal: the pass did not reach hook {hook}"))?;
                shape(t)
            })
            .collect()
    }
}

/// The activations of a pass that read one hook.
pub fn one_hook(acts: Vec<Tensor>) -> Result<Tensor> {
    let n = acts.len();
    acts.into_iter()
        .next()
        .filter(|_| n == 1)
        .with_context(|| format!("internal: {n} activations where one hook was read"))
}

/// One block's part of a pass: what is left to capture, and what was.
pub struct BlockRun {
    pending: Vec<HookKind>,
    whole: bool,
    captured: Vec<(HookKind, Tensor)>,
}

impl BlockRun {
    /// Captures `kind`, computed by `compute`, when the pass reads it (`compute` runs only
    /// then); returns whether the block must go on.
    pub fn read_with(
        &mut self,
        kind: HookKind,
        compute: impl FnOnce() -> Result<Tensor>,
    ) -> Result<bool> {
        if self.pending.contains(&kind) {
            let t = compute()?;
            return Ok(self.read(kind, &t));
        }
        Ok(self.goes_on())
    }

    /// Captures `t` at `kind` when the pass reads it; returns whether the block must go on.
    pub fn read(&mut self, kind: HookKind, t: &Tensor) -> bool {
        if let Some(i) = self.pending.iter().position(|&k| k == kind) {
            self.pending.swap_remove(i);
            self.captured.push((kind, t.clone()));
        }
        self.goes_on()
    }

    /// Captures `t` at `kind` when the pass reads it and gives it back for the block to go on
    /// with (a copy when captured, as the pass may then write into it in place); None when the
    /// block stops here.
    pub fn read_owned(&mut self, kind: HookKind, t: Tensor) -> Result<Option<Tensor>> {
        let wanted = self.pending.contains(&kind);
        match (self.read(kind, &t), wanted) {
            (false, _) => Ok(None),
            (true, true) => Ok(Some(t.copy()?)),
            (true, false) => Ok(Some(t)),
        }
    }

    /// Whether anything is left to capture, or the block's output is needed.
    pub fn goes_on(&self) -> bool {
        self.whole || !self.pending.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(name: &str) -> HookPoint {
        HookPoint::parse(name).unwrap()
    }

    #[test]
    fn each_block_reads_its_kinds_and_runs_whole_when_a_later_one_runs() {
        let set = HookSet::new(&[
            hook("blocks.2.attn.hook_z"),
            hook("blocks.1.hook_resid_pre"),
            hook("hook_embed"),
            hook("blocks.2.hook_attn_out"),
            hook("blocks.2.attn.hook_z"),
        ]);
        assert_eq!(
            set.blocks(),
            [
                BlockReads {
                    kinds: vec![HookKind::ResidPost],
                    whole: true
                },
                BlockReads {
                    kinds: vec![],
                    whole: true
                },
                BlockReads {
                    kinds: vec![HookKind::Z, HookKind::AttnOut],
                    whole: false
                },
            ]
        );
        assert!(set.reads_embed() && set.needs_input());
        let embed_only = HookSet::new(&[hook("hook_embed")]);
        assert!(embed_only.blocks().is_empty() && !embed_only.needs_input());
        let err = set.check_loaded(2, hook("blocks.1.hook_resid_post"));
        assert!(err
            .unwrap_err()
            .to_string()
            .contains("blocks.2.attn.hook_z"));
    }

    #[test]
    fn a_block_stops_after_its_last_capture_and_copies_what_it_goes_on_with() {
        let set = HookSet::new(&[
            hook("blocks.0.hook_attn_out"),
            hook("blocks.0.hook_mlp_out"),
        ]);
        let mut reading = Reading::new(&set);
        let x = Tensor::new(&[1f32, 2.], &candle_core::Device::Cpu).unwrap();
        let mut steps = Vec::new();
        reading
            .run_blocks(x.clone(), |_, x, run| {
                steps.push(run.read(HookKind::Z, x));
                let attn = run.read_owned(HookKind::AttnOut, x.clone())?.unwrap();
                steps.push(attn.id() == x.id());
                steps.push(run.read_with(HookKind::MlpInput, || unreachable!())?);
                steps.push(run.read_owned(HookKind::MlpOut, attn)?.is_some());
                Ok(None)
            })
            .unwrap();
        assert_eq!(steps, [true, false, true, false]);
        let got = reading.finish(|t| Ok(t.clone())).unwrap();
        assert_eq!(got.len(), 2);
    }
}
