//! The output folder of a command (`export --out`, `stats --out`, `train-sae --out`,
//! `synth --out`): saecooc writes there only paths that are absent or that its own manifest in
//! the folder lists, so pointing `--out` at a folder that already holds other files (a
//! project's `data/`, someone's `index.html`) is refused instead of overwriting them; files
//! beside them are left alone. The manifest (`.saecooc-out.json`, the site's
//! `.saecooc-site.json`) lists every file the command wrote; it is written before the files
//! (claiming them) and rewritten with exactly the new files after, and only files it listed
//! are ever removed. Temporary entries of killed runs (`.{name}.partial-{pid}` and the
//! command's own `{prefix}{pid}` names) are removed when the folder is opened.

use super::lock::remove_dead_temporaries;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The manifest of `stats`, `train-sae` and `synth` output folders.
pub const OUT_MANIFEST: &str = ".saecooc-out.json";

/// The probe file [`crate::io::atomic::ensure_writable_dir`] creates and removes at once.
const WRITE_PROBE_PREFIX: &str = ".saecooc-write-test-";

#[derive(Debug, Serialize, Deserialize)]
struct OutManifest {
    tool: String,
    command: String,
    /// Every file the command wrote, relative to the folder (`/`-separated); `{folder}/`:
    /// a whole folder it wrote.
    files: BTreeSet<String>,
}

/// An output folder opened for one command.
#[derive(Debug)]
pub struct OutFolder {
    dir: PathBuf,
    manifest: &'static str,
    command: String,
    listed: BTreeSet<String>,
}

impl OutFolder {
    /// Creates `dir` if needed (checking it is writable), removes what killed runs left there
    /// (`temp_prefixes`: the command's own `{prefix}{pid}` names) and reads the manifest
    /// `manifest`, refusing one written by another command.
    pub fn open(
        dir: &Path,
        manifest: &'static str,
        command: &str,
        temp_prefixes: &[&str],
    ) -> Result<Self> {
        crate::io::atomic::ensure_writable_dir(dir)?;
        let prefixes: Vec<&str> = [WRITE_PROBE_PREFIX]
            .iter()
            .chain(temp_prefixes)
            .copied()
            .collect();
        remove_dead_temporaries(dir, &prefixes);
        let listed = listed_files(dir, manifest, command)?.unwrap_or_default();
        Ok(Self {
            dir: dir.to_path_buf(),
            manifest,
            command: command.to_string(),
            listed,
        })
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Refuses when any of `paths` (files or folders, relative) exists and is not wholly
    /// saecooc's: a file its manifest does not list, a folder holding such a file, or a
    /// symbolic link.
    pub fn check_writable(&self, paths: &[&str]) -> Result<()> {
        let foreign: Vec<String> = paths
            .iter()
            .filter(|rel| !self.owns(rel))
            .map(|rel| self.dir.join(rel).display().to_string())
            .collect();
        if !foreign.is_empty() {
            bail!(
                "{} already holds {} that saecooc did not write (no {} there lists it): `saecooc {}` never replaces files it did not write; choose an empty or new output folder",
                self.dir.display(),
                foreign.join(", "),
                self.manifest,
                self.command
            );
        }
        Ok(())
    }

    /// Whether `rel` is absent or wholly listed.
    fn owns(&self, rel: &str) -> bool {
        let path = self.dir.join(rel);
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            return true;
        };
        if meta.is_dir() {
            // `{folder}/` listed: the whole folder is the command's.
            self.listed.contains(&format!("{rel}/"))
                || files_under(&path, rel)
                    .is_ok_and(|files| files.iter().all(|f| self.listed.contains(f)))
        } else {
            meta.is_file() && self.listed.contains(rel)
        }
    }

    /// Adds `files` to the manifest before they are written (so that a run killed while
    /// writing them leaves files the next run may replace).
    pub fn claim<I: IntoIterator<Item = String>>(&mut self, files: I) -> Result<()> {
        self.listed.extend(files);
        self.write_manifest()
    }

    /// Records that the folder now holds exactly `files` of this command: previously listed
    /// files not among them are removed (regular files only, never through a link), then the
    /// manifest lists `files`.
    pub fn finish<I: IntoIterator<Item = String>>(&mut self, files: I) -> Result<()> {
        let now: BTreeSet<String> = files.into_iter().collect();
        for rel in self.listed.difference(&now) {
            let path = self.dir.join(rel);
            let plain = Path::new(rel)
                .components()
                .all(|c| matches!(c, std::path::Component::Normal(_)));
            if plain
                && !rel.ends_with('/')
                && !through_link(&self.dir, rel)
                && path.symlink_metadata().is_ok_and(|m| m.is_file())
            {
                std::fs::remove_file(&path)
                    .with_context(|| format!("cannot remove {}", path.display()))?;
            }
        }
        self.listed = now;
        self.write_manifest()
    }

    fn write_manifest(&self) -> Result<()> {
        let m = OutManifest {
            tool: "saecooc".into(),
            command: self.command.clone(),
            files: self.listed.clone(),
        };
        crate::io::atomic::write_bytes(
            &self.dir.join(self.manifest),
            &serde_json::to_vec_pretty(&m)?,
        )
    }
}

/// The files that the manifest `manifest` of the folder `dir` lists as written by `saecooc
/// {command}` (`None`: no manifest there), refusing a manifest of another command.
pub fn listed_files(dir: &Path, manifest: &str, command: &str) -> Result<Option<BTreeSet<String>>> {
    let path = dir.join(manifest);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let m: OutManifest = serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is not a saecooc output manifest", path.display()))?;
    if m.command != command {
        bail!(
            "{} holds the output of `saecooc {}` ({}), not of `saecooc {command}`: choose an empty or new folder",
            dir.display(),
            m.command,
            path.display()
        );
    }
    Ok(Some(m.files))
}

/// Whether a folder between `dir` and `dir/rel` is a symbolic link.
fn through_link(dir: &Path, rel: &str) -> bool {
    let mut path = dir.to_path_buf();
    let Some(parent) = Path::new(rel).parent() else {
        return false;
    };
    parent.components().any(|c| {
        path.push(c);
        std::fs::symlink_metadata(&path).is_ok_and(|m| !m.is_dir())
    })
}

/// Files (and links) under the folder `path`, as `{prefix}/{relative}`, never following a link.
pub fn files_under(path: &Path, prefix: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(path).with_context(|| format!("cannot list {}", path.display()))? {
        let e = e.with_context(|| format!("cannot list {}", path.display()))?;
        let rel = format!("{prefix}/{}", e.file_name().to_string_lossy());
        if e.file_type()?.is_dir() {
            out.extend(files_under(&e.path(), &rel)?);
        } else {
            out.push(rel);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_listed_files_are_replaced_or_removed() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("data")).unwrap();
        std::fs::write(d.join("data/theirs.csv"), "x").unwrap();
        std::fs::write(d.join("notes.txt"), "x").unwrap();
        let mut out = OutFolder::open(d, OUT_MANIFEST, "stats", &[]).unwrap();
        let err = format!("{:#}", out.check_writable(&["data", "a.csv"]).unwrap_err());
        assert!(
            err.contains("data") && err.contains("empty or new"),
            "{err}"
        );
        out.check_writable(&["a.csv", "b.png"]).unwrap();
        out.claim(["a.csv".to_string(), "b.png".to_string()])
            .unwrap();
        std::fs::write(d.join("a.csv"), "1").unwrap();
        std::fs::write(d.join("b.png"), "1").unwrap();
        out.finish(["a.csv".to_string(), "b.png".to_string()])
            .unwrap();

        let mut again = OutFolder::open(d, OUT_MANIFEST, "stats", &[]).unwrap();
        again.check_writable(&["a.csv", "b.png"]).unwrap();
        again.finish(["a.csv".to_string()]).unwrap();
        assert!(!d.join("b.png").exists(), "a listed stale file kept");
        assert!(d.join("notes.txt").exists() && d.join("data/theirs.csv").exists());
        let err = format!(
            "{:#}",
            OutFolder::open(d, OUT_MANIFEST, "synth", &[]).unwrap_err()
        );
        assert!(err.contains("`saecooc stats`"), "{err}");
    }
}
