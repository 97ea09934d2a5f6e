//! The stage graph: `cooc` → `graphs` → `pca` / `subspace` / `stats` / `export`. Each stage
//! reads the set its upstream stage published, and a set it publishes records that set, so a
//! reader refuses a set computed from another version of its upstream set ([`open_checked`]).

use super::layout::{GRAPHS_JSON, RUN_JSON};
use super::set::PublishedSet;
use anyhow::Result;
use std::path::Path;

/// A stage of the pipeline, by the name its command, lock and manifests use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Cooc,
    Graphs,
    Pca,
    Subspace,
    Stats,
    Export,
}

impl Stage {
    /// The command's name (`saecooc {name}`), as locks, staging folders and notes say it.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Cooc => "cooc",
            Self::Graphs => "graphs",
            Self::Pca => "pca",
            Self::Subspace => "subspace",
            Self::Stats => "stats",
            Self::Export => "export",
        }
    }

    /// The stage whose set this stage reads and checks (none for `cooc`, which reads the inputs).
    pub const fn upstream(self) -> Option<Stage> {
        match self {
            Self::Cooc => None,
            Self::Graphs => Some(Self::Cooc),
            Self::Pca | Self::Subspace | Self::Stats => Some(Self::Graphs),
            Self::Export => Some(Self::Pca),
        }
    }
}

/// The `cooc` set of the SAE results folder `dir`.
pub fn open_cooc(dir: &Path) -> Result<PublishedSet> {
    PublishedSet::open(dir, Stage::Cooc.name(), RUN_JSON)
}

/// The set `stage` published in `dir` under `manifest`, refused unless it was computed from
/// `upstream`, the set of its upstream stage there now (see [`PublishedSet::check_built_from`]).
pub fn open_checked(
    dir: &Path,
    stage: Stage,
    manifest: &str,
    upstream: &PublishedSet,
) -> Result<PublishedSet> {
    let set = PublishedSet::open(dir, stage.name(), manifest)?;
    let input = stage.upstream().map_or("", Stage::name);
    set.check_built_from(input, upstream, &format!("saecooc {}", stage.name()))?;
    Ok(set)
}

/// The `graphs` set of the SAE results folder `dir` with the `cooc` set it was computed from,
/// both checked.
pub fn open_graphs(dir: &Path) -> Result<(PublishedSet, PublishedSet)> {
    let cooc = open_cooc(dir)?;
    let graphs = open_checked(dir, Stage::Graphs, GRAPHS_JSON, &cooc)?;
    Ok((cooc, graphs))
}
