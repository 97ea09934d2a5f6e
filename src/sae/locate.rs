//! Finding an SAE's files: a local folder or file, or a hub repo's subfolder, laid out as the
//! SAE's format lays them out.

use super::convert::ConvertedFiles;
use super::{SaeDefaults, SaeFormat};
use crate::hub::{Hub, HubRepo, Location};
use anyhow::{bail, ensure, Context, Result};
use std::path::{Path, PathBuf};

/// The files of one SAE.
#[derive(Debug, Clone)]
pub enum SaeFiles {
    SaeLens {
        cfg: PathBuf,
        weights: PathBuf,
    },
    GemmaScope {
        params: PathBuf,
    },
    /// A format SAELens converts when it loads it (the registry's `conversion_func`).
    Converted(ConvertedFiles),
}

impl SaeFiles {
    /// Finds the files of a SAELens-format SAE in a local folder (or a `params.npz` path) or a
    /// hub repo subfolder; see [`SaeFiles::resolve_any`].
    pub fn resolve(location: &Location, subfolder: &str, hub: &Hub) -> Result<Self> {
        Self::resolve_any(location, &[subfolder], hub, &SaeDefaults::default())
    }

    /// Finds the files of an SAE of format `defaults.format`. A hub repo: in its first
    /// `subfolders` entry (the registry's `path`). A local path, for SAELens' own format: a
    /// `params.npz`, `sae_weights.safetensors` (with `cfg.json` beside it) or `cfg.json` file;
    /// else a folder, looked for first in each of `subfolders` under it (the SAE's subfolder),
    /// then in the folder itself; for a converted format, a folder laid out as the hub repo
    /// (the SAE in one of `subfolders` under it) or as the SAE's own folder. When none holds
    /// an SAE, the error lists every path tried.
    pub fn resolve_any(
        location: &Location,
        subfolders: &[&str],
        hub: &Hub,
        defaults: &SaeDefaults,
    ) -> Result<Self> {
        if defaults.format != SaeFormat::SaeLens {
            return ConvertedFiles::resolve(location, subfolders, hub, defaults)
                .map(Self::Converted);
        }
        match location {
            Location::Local(path) => Self::find_local(path, subfolders),
            Location::Hub { repo, revision } => {
                let subfolder = subfolders.first().copied().unwrap_or("");
                let file = |name: &str| {
                    if subfolder.is_empty() {
                        name.to_string()
                    } else {
                        format!("{subfolder}/{name}")
                    }
                };
                let at = HubRepo::model(repo, revision);
                if let Some(cfg) = hub.try_get(at, &file("cfg.json")) {
                    let weights = hub.get(at, &file("sae_weights.safetensors"))?;
                    Ok(Self::SaeLens { cfg, weights })
                } else {
                    let params = hub.get(at, &file("params.npz")).with_context(|| {
                        format!(
                            "hub repo {repo} has neither {} nor {}",
                            file("cfg.json"),
                            file("params.npz")
                        )
                    })?;
                    Ok(Self::GemmaScope { params })
                }
            }
        }
    }

    fn find_local(path: &Path, subfolders: &[&str]) -> Result<Self> {
        if path.is_file() {
            return Self::from_file(path);
        }
        let mut candidates: Vec<PathBuf> = Vec::new();
        for dir in subfolders
            .iter()
            .filter(|s| !s.is_empty())
            .map(|s| path.join(s))
            .chain([path.to_path_buf()])
        {
            if !candidates.contains(&dir) {
                candidates.push(dir);
            }
        }
        let mut tried: Vec<String> = Vec::new();
        for dir in candidates {
            match Self::from_dir(&dir)? {
                Ok(files) => return Ok(files),
                Err(why) => tried.push(format!("{} ({why})", dir.display())),
            }
        }
        bail!(
            "no SAE found at {}; tried:\n  {}\n[source] sae may be the SAE's folder (SAELens cfg.json + sae_weights.safetensors, or Gemma Scope params.npz), the folder holding its subfolder, or the params.npz / sae_weights.safetensors file",
            path.display(),
            tried.join("\n  ")
        )
    }

    /// A local file: `params.npz` (any `.npz`), `sae_weights.safetensors` (any `.safetensors`,
    /// with `cfg.json` beside it) or `cfg.json` (with `sae_weights.safetensors` beside it).
    fn from_file(path: &Path) -> Result<Self> {
        let sibling = |name: &str| path.with_file_name(name);
        if path.extension().is_some_and(|e| e == "npz") {
            Ok(Self::GemmaScope {
                params: path.to_path_buf(),
            })
        } else if path.extension().is_some_and(|e| e == "safetensors") {
            let cfg = sibling("cfg.json");
            ensure!(
                cfg.is_file(),
                "SAE weights {} have no cfg.json beside them ({} does not exist)",
                path.display(),
                cfg.display()
            );
            Ok(Self::SaeLens {
                cfg,
                weights: path.to_path_buf(),
            })
        } else if path.file_name().is_some_and(|n| n == "cfg.json") {
            let weights = sibling("sae_weights.safetensors");
            ensure!(
                weights.is_file(),
                "SAE config {} has no sae_weights.safetensors beside it",
                path.display()
            );
            Ok(Self::SaeLens {
                cfg: path.to_path_buf(),
                weights,
            })
        } else {
            bail!(
                "{} is not an SAE file: [source] sae may be a folder, a params.npz, a sae_weights.safetensors or a cfg.json",
                path.display()
            )
        }
    }

    /// The SAE in `dir`: `Ok(Ok(files))`, `Ok(Err(why))` when the folder holds no SAE (or does
    /// not exist), and an error when it holds a broken one (cfg.json without weights).
    fn from_dir(dir: &Path) -> Result<std::result::Result<Self, &'static str>> {
        if !dir.is_dir() {
            return Ok(Err("does not exist"));
        }
        let cfg = dir.join("cfg.json");
        let weights = dir.join("sae_weights.safetensors");
        let params = dir.join("params.npz");
        if cfg.is_file() {
            ensure!(
                weights.is_file(),
                "SAE folder {} has cfg.json but no sae_weights.safetensors",
                dir.display()
            );
            Ok(Ok(Self::SaeLens { cfg, weights }))
        } else if params.is_file() {
            Ok(Ok(Self::GemmaScope { params }))
        } else {
            Ok(Err(
                "has neither cfg.json + sae_weights.safetensors (SAELens) nor params.npz (Gemma Scope)",
            ))
        }
    }

    pub(super) fn describe(&self) -> String {
        match self {
            Self::SaeLens { weights, .. } => weights.display().to_string(),
            Self::GemmaScope { params } => params.display().to_string(),
            Self::Converted(c) => c.weights.display().to_string(),
        }
    }

    /// Every file the SAE is read from.
    pub fn paths(&self) -> Vec<PathBuf> {
        match self {
            Self::SaeLens { cfg, weights } => vec![cfg.clone(), weights.clone()],
            Self::GemmaScope { params } => vec![params.clone()],
            Self::Converted(c) => c.config.iter().chain([&c.weights]).cloned().collect(),
        }
    }
}
