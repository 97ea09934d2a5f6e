//! Result sets: the outputs of one stage for one SAE results folder, published all or nothing.
//!
//! A stage writes its files into a staging folder next to them (`.staging-{stage}-{pid}/`,
//! mirroring the results folder) while it holds the folder's [`FolderLock`]. [`Staging::publish`]
//! then syncs the files, writes the stage's manifest into the staging folder listing every file
//! with its size and SHA-256 ([`SetRecord`]), writes a publish plan, and only then moves the
//! files into place, the manifest last, and removes the previous set's files that the new set
//! does not have (stale outputs). Only files the previous manifest lists are ever removed, never
//! through a symbolic link, and a set is never written through one: whatever else lies in the
//! folder (the original's outputs, the user's files) is left where it is. A run that fails or
//! is killed before the plan is written
//! leaves the previous set untouched; one killed while moving leaves a plan that the next
//! writer of the folder completes ([`recover`]), and readers refuse the folder until then.
//! Readers check the manifest ([`SetRecord::check_complete`], [`SetRecord::verify`]) and so
//! never accept a set that mixes two runs.

use super::lock::{remove_dead_temporaries, FolderLock};
use crate::io::hash::{sha256_bytes, sha256_file};
use anyhow::{bail, ensure, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The publish plan inside a staging folder: present only once every staged file and the
/// manifest are complete and synced.
const PLAN_FILE: &str = ".saecooc-publish.json";
const STAGING_PREFIX: &str = ".staging-";

/// One file of a set, relative to the SAE results folder (`/`-separated).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    pub path: String,
    pub bytes: u64,
    pub sha256: String,
}

/// What every saecooc manifest records about its set (flattened into the manifest's JSON).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetRecord {
    /// Identifies this set: SHA-256 over its files and inputs.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub set_id: String,
    /// Every file of the set with its size and SHA-256 (the manifest itself excluded).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<FileEntry>,
    /// What the set was computed from: input fingerprints (`cooc`) or the set ids of the
    /// sets it read (`graphs`: `cooc`; `pca`: `graphs`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub inputs: BTreeMap<String, String>,
}

impl SetRecord {
    /// Reads the set record of the manifest at `path`: `None` when there is no manifest, or
    /// when it lists no files (written by the original's scripts or an older saecooc).
    pub fn read(path: &Path) -> Result<Option<Self>> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        let value: serde_json::Value = serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not valid JSON", path.display()))?;
        // Manifests of older saecooc versions list no files, or only file names.
        Ok(serde_json::from_value::<Self>(value)
            .ok()
            .filter(|r| !r.files.is_empty()))
    }

    /// The entry of `rel` (a path relative to the results folder).
    pub fn entry(&self, rel: &str) -> Option<&FileEntry> {
        self.files.iter().find(|f| f.path == rel)
    }

    /// Checks that every file of the set is present with its recorded size.
    pub fn check_complete(&self, dir: &Path, manifest: &str) -> Result<()> {
        for f in &self.files {
            let path = dir.join(&f.path);
            let size = std::fs::metadata(&path).map(|m| m.len()).map_err(|_| {
                anyhow::anyhow!(
                    "{} is missing: {} lists it, so the set in {} is incomplete; rerun the stage that wrote {manifest}",
                    path.display(),
                    manifest,
                    dir.display()
                )
            })?;
            ensure!(
                size == f.bytes,
                "{} has {size} bytes but {manifest} lists {}: the folder mixes files of two runs; rerun the stage that wrote {manifest}",
                path.display(),
                f.bytes
            );
        }
        Ok(())
    }

    /// Checks the size and SHA-256 of the file at `path` (inside `dir`) against the set.
    pub fn verify(&self, dir: &Path, path: &Path, manifest: &str) -> Result<()> {
        let rel = relative(dir, path)?;
        let entry = self.entry(&rel).with_context(|| {
            format!(
                "{} is not part of the set that {} in {} describes (left over from another run?)",
                path.display(),
                manifest,
                dir.display()
            )
        })?;
        let size = std::fs::metadata(path)
            .with_context(|| format!("{} is missing ({manifest} lists it)", path.display()))?
            .len();
        let same = size == entry.bytes && sha256_file(path)? == entry.sha256;
        ensure!(
            same,
            "{} does not match {manifest} (its size or SHA-256 differs): the folder mixes files of two runs; rerun the stage that wrote {manifest}",
            path.display()
        );
        Ok(())
    }
}

/// One stage's published set in a results folder, as a reader checks it: refused while a
/// publish is interrupted, or when a file is missing or has another size; files written
/// without a saecooc manifest (the original's scripts) are read unchecked.
#[derive(Debug, Clone)]
pub struct PublishedSet {
    pub dir: PathBuf,
    /// The manifest, relative to `dir`.
    pub manifest: String,
    /// `None`: no saecooc manifest with a file list.
    pub record: Option<SetRecord>,
}

impl PublishedSet {
    /// Opens the set of `stage` whose manifest is `manifest` (relative to `dir`).
    pub fn open(dir: &Path, stage: &str, manifest: &str) -> Result<Self> {
        check_no_interrupted_publish(dir, stage)?;
        let record = SetRecord::read(&dir.join(manifest))?;
        if let Some(r) = &record {
            r.check_complete(dir, manifest)?;
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            manifest: manifest.to_string(),
            record,
        })
    }

    /// Checks a file the reader is about to read (nothing to check without a manifest).
    pub fn verify(&self, path: &Path) -> Result<()> {
        match &self.record {
            Some(r) => r.verify(&self.dir, path, &self.manifest),
            None => Ok(()),
        }
    }

    /// Whether `path` belongs to the set (every file does without a manifest).
    pub fn lists(&self, path: &Path) -> bool {
        self.record
            .as_ref()
            .is_none_or(|r| relative(&self.dir, path).is_ok_and(|rel| r.entry(&rel).is_some()))
    }

    /// The set's id, if it has a manifest.
    pub fn set_id(&self) -> Option<&str> {
        self.record.as_ref().map(|r| r.set_id.as_str())
    }

    /// What this set reads of `upstream` (named `input`, e.g. "cooc"), as recorded inputs:
    /// `{input}:{path}` → the SHA-256 that `upstream`'s manifest lists for each of `paths`
    /// ("unchecked" without a manifest). Recording the files read, rather than the upstream
    /// set's id, keeps a set valid while its upstream set only gains files (new thresholds).
    pub fn file_inputs(&self, input: &str, paths: &[PathBuf]) -> Result<BTreeMap<String, String>> {
        paths
            .iter()
            .map(|path| {
                let rel = relative(&self.dir, path)?;
                let sha = self
                    .record
                    .as_ref()
                    .and_then(|r| r.entry(&rel))
                    .map_or_else(|| "unchecked".to_string(), |e| e.sha256.clone());
                Ok((format!("{input}:{rel}"), sha))
            })
            .collect()
    }

    /// Refuses a set computed from another version of `upstream` than the one in the folder
    /// now (`input` names it in the record's inputs, e.g. "cooc"): every upstream file it
    /// recorded (`{input}:{path}`, see [`PublishedSet::file_inputs`]) must still be listed
    /// with the same SHA-256; a set recording only the upstream set's id needs that set.
    pub fn check_built_from(
        &self,
        input: &str,
        upstream: &PublishedSet,
        rerun: &str,
    ) -> Result<()> {
        let (Some(record), Some(now)) = (&self.record, &upstream.record) else {
            return Ok(());
        };
        let prefix = format!("{input}:");
        let files: Vec<(&str, &str)> = record
            .inputs
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix(&prefix)?, v.as_str())))
            .collect();
        if files.is_empty() {
            let used = record.inputs.get(input).map(String::as_str);
            ensure!(
                used == Some(now.set_id.as_str()),
                "{} in {} was computed from another {} than the one there now ({}): rerun `{rerun}`",
                self.manifest,
                self.dir.display(),
                upstream.manifest,
                match used {
                    Some(u) => format!("set {u}, now {}", now.set_id),
                    None => format!("now set {}", now.set_id),
                }
            );
            return Ok(());
        }
        for (rel, sha) in files {
            let listed = now.entry(rel).map(|e| e.sha256.as_str());
            ensure!(
                listed == Some(sha),
                "{} in {} was computed from another {} than the one there now ({rel} {}): rerun `{rerun}`",
                self.manifest,
                self.dir.display(),
                upstream.manifest,
                if listed.is_some() { "changed since" } else { "is no longer part of it" }
            );
        }
        Ok(())
    }

    /// The one-line note for a set read without a manifest.
    pub fn unchecked_note(&self) -> String {
        format!(
            "note: {} has no saecooc manifest ({}): its files are read unchecked (written by the original's scripts or an older saecooc)",
            self.dir.display(),
            self.manifest
        )
    }
}

/// `path` relative to `dir`, `/`-separated.
fn relative(dir: &Path, path: &Path) -> Result<String> {
    let rel = path
        .strip_prefix(dir)
        .with_context(|| format!("{} is not inside {}", path.display(), dir.display()))?;
    Ok(rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/"))
}

/// Where a stage writes in a results folder besides the files its manifest lists. Files found
/// there that no manifest of the stage lists (the original's outputs, or the user's) are never
/// removed: a publish only names them in a note.
#[derive(Debug, Clone, Default)]
pub struct Ownership {
    /// Folders relative to the results folder that the stage writes into.
    pub dirs: Vec<String>,
    /// Name prefixes of the results folder's own entries the stage writes (files or folders).
    pub prefixes: Vec<String>,
}

impl Ownership {
    /// Files in the stage's places in `target` (`/`-separated, relative), never looking
    /// through a symbolic link.
    fn files_in(&self, target: &Path) -> Result<Vec<String>> {
        let mut dirs = self.dirs.clone();
        let mut files = Vec::new();
        if !self.prefixes.is_empty() {
            for e in std::fs::read_dir(target)
                .with_context(|| format!("cannot list {}", target.display()))?
                .flatten()
            {
                let name = e.file_name().to_string_lossy().into_owned();
                if !self.prefixes.iter().any(|p| name.starts_with(p.as_str())) {
                    continue;
                }
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    dirs.push(name);
                } else {
                    files.push(name);
                }
            }
        }
        for dir in &dirs {
            let abs = target.join(dir);
            if std::fs::symlink_metadata(&abs).is_ok_and(|m| m.is_dir()) {
                files.extend(files_under(&abs)?.into_iter().map(|f| format!("{dir}/{f}")));
            }
        }
        Ok(files)
    }
}

/// The plan written before any file moves.
#[derive(Debug, Serialize, Deserialize)]
struct Plan {
    stage: String,
    manifest: String,
    files: Vec<String>,
    /// Files of the previous set (its manifest lists them) that the new set does not have.
    stale: Vec<String>,
    /// Folders to remove if the stale files leave them empty, deepest first.
    stale_dirs: Vec<String>,
}

/// A set being written: its staging folder, removed unless published.
pub struct Staging {
    target: PathBuf,
    root: PathBuf,
    stage: String,
    manifest: String,
    ownership: Ownership,
    inputs: BTreeMap<String, String>,
    /// Files of the previous set carried into this one unchanged, with their entries.
    carried: BTreeMap<String, FileEntry>,
    published: bool,
}

impl Staging {
    /// Starts a set of `stage` in the folder `lock` holds, described by the manifest file
    /// `manifest` (relative to the folder) and computed from `inputs`.
    pub fn begin(
        lock: &FolderLock,
        stage: &str,
        manifest: &str,
        ownership: Ownership,
        inputs: BTreeMap<String, String>,
    ) -> Result<Self> {
        let target = lock.dir().to_path_buf();
        let root = target.join(staging_name(stage, lock.output(), std::process::id()));
        if std::fs::symlink_metadata(&root).is_ok() {
            remove_entry(&root)?;
        }
        std::fs::create_dir_all(&root).with_context(|| {
            format!(
                "results folder {} is not writable (cannot create {})",
                target.display(),
                root.display()
            )
        })?;
        Ok(Self {
            target,
            root,
            stage: stage.to_string(),
            manifest: manifest.to_string(),
            ownership,
            inputs,
            carried: BTreeMap::new(),
            published: false,
        })
    }

    /// The staging folder: write the set's files here, with the results folder's layout.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Adds the previous set's file `entry` to the new set unchanged (a hard link, or a copy
    /// where links are not possible), refused when it no longer has its listed size.
    pub fn carry(&mut self, entry: &FileEntry) -> Result<()> {
        let rel = checked_relative(&entry.path)?;
        let (from, to) = (self.target.join(rel), self.root.join(rel));
        check_real_folders(&self.target, rel)?;
        let size = std::fs::symlink_metadata(&from)
            .ok()
            .filter(|m| m.is_file())
            .map(|m| m.len());
        ensure!(
            size == Some(entry.bytes),
            "{} is missing or has changed since {} listed it: rerun with --replace to recompute the whole set",
            from.display(),
            self.manifest
        );
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create folder {}", parent.display()))?;
        }
        if std::fs::hard_link(&from, &to).is_err() {
            std::fs::copy(&from, &to)
                .with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))?;
        }
        self.carried.insert(rel.to_string(), entry.clone());
        Ok(())
    }

    /// Publishes the staged files: `manifest` turns the set's record into the manifest's bytes.
    pub fn publish(
        mut self,
        manifest: impl FnOnce(&SetRecord) -> Result<Vec<u8>>,
    ) -> Result<SetRecord> {
        let files = files_under(&self.root)?;
        ensure!(
            !files.iter().any(|f| f == &self.manifest),
            "{} was written as a data file",
            self.manifest
        );
        for rel in files.iter().chain([&self.manifest]) {
            check_real_folders(&self.target, rel)?;
        }
        sync_written(&self.root, &files)?;
        let mut record = SetRecord {
            files: files
                .iter()
                .map(|rel| match self.carried.remove(rel) {
                    Some(entry) => Ok(entry),
                    None => entry_of(&self.root, rel),
                })
                .collect::<Result<_>>()?,
            inputs: std::mem::take(&mut self.inputs),
            set_id: String::new(),
        };
        record.set_id = sha256_bytes(&serde_json::to_vec(&record)?)[..16].to_string();
        let bytes = manifest(&record)?;
        crate::io::atomic::write_synced(&self.root.join(&self.manifest), &bytes)?;
        fault_point("staged");
        let previous = SetRecord::read(&self.target.join(&self.manifest))
            .ok()
            .flatten();
        let (stale, stale_dirs) = stale_files(previous.as_ref(), &files, &self.manifest);
        self.note_unlisted(previous.as_ref(), &files)?;
        let plan = Plan {
            stage: self.stage.clone(),
            manifest: self.manifest.clone(),
            files,
            stale,
            stale_dirs,
        };
        crate::io::atomic::write_synced(&self.root.join(PLAN_FILE), &serde_json::to_vec(&plan)?)?;
        self.published = true;
        complete_publish(&self.target, &self.root, &plan)?;
        Ok(record)
    }

    /// Names the files in the stage's places that neither the previous nor the new set
    /// lists: they are left in place.
    fn note_unlisted(&self, previous: Option<&SetRecord>, new: &[String]) -> Result<()> {
        let listed: BTreeSet<&str> = new
            .iter()
            .map(String::as_str)
            .chain(
                previous
                    .iter()
                    .flat_map(|p| p.files.iter().map(|f| f.path.as_str())),
            )
            .collect();
        let unlisted: Vec<String> = self
            .ownership
            .files_in(&self.target)?
            .into_iter()
            .filter(|f| !listed.contains(f.as_str()) && *f != self.manifest)
            .collect();
        if let Some(first) = unlisted.first() {
            crate::report::warning(format_args!(
                "note: {} file(s) in {} that no saecooc manifest lists are left in place (e.g. {first})",
                unlisted.len(),
                self.target.display()
            ));
        }
        Ok(())
    }
}

/// Files the previous set lists that the new set does not have, and the folders they leave
/// (deepest first).
fn stale_files(
    previous: Option<&SetRecord>,
    new: &[String],
    manifest: &str,
) -> (Vec<String>, Vec<String>) {
    let new: BTreeSet<&str> = new.iter().map(String::as_str).collect();
    let stale: Vec<String> = previous
        .map(|p| {
            p.files
                .iter()
                .map(|f| f.path.clone())
                .collect::<BTreeSet<_>>()
        })
        .unwrap_or_default()
        .into_iter()
        .filter(|f| !new.contains(f.as_str()) && f != manifest)
        .collect();
    let mut dirs = BTreeSet::new();
    for f in &stale {
        let mut path = Path::new(f.as_str());
        while let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            dirs.insert(parent.to_string_lossy().into_owned());
            path = parent;
        }
    }
    let mut dirs: Vec<String> = dirs.into_iter().collect();
    dirs.sort_by_key(|d| std::cmp::Reverse(d.matches('/').count()));
    (stale, dirs)
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.published {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }
}

fn entry_of(root: &Path, rel: &str) -> Result<FileEntry> {
    let path = root.join(rel);
    Ok(FileEntry {
        path: rel.to_string(),
        bytes: std::fs::metadata(&path)
            .with_context(|| format!("cannot stat {}", path.display()))?
            .len(),
        sha256: sha256_file(&path)?,
    })
}

/// `rel` when it is a plain relative path inside a folder (no `..`, not absolute): the paths
/// of a plan or manifest are read back from disk, so they are checked before use.
fn checked_relative(rel: &str) -> Result<&str> {
    let plain = Path::new(rel)
        .components()
        .all(|c| matches!(c, std::path::Component::Normal(_)));
    ensure!(
        plain && !rel.is_empty(),
        "{rel:?} is not a path inside the results folder"
    );
    Ok(rel)
}

/// `base/rel` when it is a regular file reached through real folders of `base`: no symbolic
/// link on the way or at the end. For readers that copy a file out as it is, where no recorded
/// hash would catch a file swapped for a link to something else.
pub fn real_file(base: &Path, rel: &str) -> Result<PathBuf> {
    checked_relative(rel)?;
    let path = base.join(rel);
    let is_file = std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file());
    ensure!(
        is_file && linked_folder(base, rel).is_none(),
        "{} is not a file in a real folder of {} (a symbolic link, a folder, or missing): saecooc copies only the files it wrote there and never through a link",
        path.display(),
        base.display()
    );
    Ok(path)
}

/// The first folder between `target` and `target/rel` that is a symbolic link (or not a
/// folder), if any.
fn linked_folder(target: &Path, rel: &str) -> Option<PathBuf> {
    let mut path = target.to_path_buf();
    let parent = Path::new(rel).parent()?;
    for c in parent.components() {
        path.push(c);
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Some(path),
            Err(_) => return None,
        }
    }
    None
}

/// Refuses to write `rel` through a folder that is a symbolic link (or a file) in `target`.
fn check_real_folders(target: &Path, rel: &str) -> Result<()> {
    checked_relative(rel)?;
    if let Some(link) = linked_folder(target, rel) {
        bail!(
            "{} is a symbolic link or not a folder: saecooc writes {} only into real folders of {} and never through a link; replace it by a folder (moving what it points to elsewhere) and rerun",
            link.display(),
            rel,
            target.display()
        );
    }
    Ok(())
}

/// Removes a file, link or folder at `path` without following a link.
fn remove_entry(path: &Path) -> Result<()> {
    let meta = std::fs::symlink_metadata(path)
        .with_context(|| format!("cannot stat {}", path.display()))?;
    let removed = if meta.is_dir() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    };
    removed.with_context(|| format!("cannot remove {}", path.display()))
}

/// Moves the planned files into place, the manifest last, then removes stale files and the
/// staging folder. Files already moved by an interrupted attempt are skipped. A stale file
/// behind a symbolic link, or that is now a folder, is left alone with a note.
fn complete_publish(target: &Path, root: &Path, plan: &Plan) -> Result<()> {
    for rel in plan.files.iter().chain([&plan.manifest]) {
        check_real_folders(target, rel)?;
    }
    for (k, rel) in plan.files.iter().chain([&plan.manifest]).enumerate() {
        let (from, to) = (root.join(rel), target.join(rel));
        if std::fs::symlink_metadata(&from).is_err() {
            continue;
        }
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create folder {}", parent.display()))?;
        }
        std::fs::rename(&from, &to)
            .with_context(|| format!("cannot move {} to {}", from.display(), to.display()))?;
        fault_point(&format!("moved:{}", k + 1));
    }
    for rel in &plan.stale {
        remove_stale(target, rel)?;
    }
    for dir in &plan.stale_dirs {
        let path = target.join(checked_relative(dir)?);
        if linked_folder(target, &format!("{dir}/x")).is_none() {
            // Only an empty folder goes; one still holding files stays.
            let _ = std::fs::remove_dir(&path);
        }
    }
    std::fs::remove_dir_all(root).with_context(|| format!("cannot remove {}", root.display()))?;
    sync_written(
        target,
        plan.files.iter().chain([&plan.manifest]).chain(&plan.stale),
    )
}

/// Removes the stale file `target/rel`, unless it is reached through a symbolic link or is
/// now a folder (then left alone, with a note).
fn remove_stale(target: &Path, rel: &str) -> Result<()> {
    let path = target.join(checked_relative(rel)?);
    if let Some(link) = linked_folder(target, rel) {
        crate::report::warning(format_args!(
            "note: {} is a symbolic link or not a folder: {} is left alone",
            link.display(),
            path.display()
        ));
        return Ok(());
    }
    match std::fs::symlink_metadata(&path) {
        Ok(m) if m.is_dir() => {
            crate::report::warning(format_args!(
                "note: {} is now a folder, not the file the previous set listed: left alone",
                path.display()
            ));
            Ok(())
        }
        Ok(_) => std::fs::remove_file(&path)
            .with_context(|| format!("cannot remove stale {}", path.display())),
        Err(_) => Ok(()),
    }
}

/// The staging folder of process `pid` publishing `stage`'s set: `.staging-{stage}-{pid}`
/// for a whole folder, `.staging-{stage}-{output}-{pid}` for one output of it, so that a
/// writer of one output recognises the staging folders of its own output only.
fn staging_name(stage: &str, output: Option<&str>, pid: u32) -> String {
    match output {
        None => format!("{STAGING_PREFIX}{stage}-{pid}"),
        Some(output) => format!("{STAGING_PREFIX}{stage}-{output}-{pid}"),
    }
}

/// Whether the staging folder `name` publishes the output `output` (of any process).
fn stages_output(name: &str, output: &str) -> bool {
    name.strip_prefix(STAGING_PREFIX)
        .and_then(|rest| rest.rsplit_once('-'))
        .and_then(|(rest, pid)| pid.parse::<u32>().ok().map(|_| rest))
        .and_then(|rest| rest.split_once('-'))
        .is_some_and(|(_stage, staged)| staged == output)
}

/// Makes what `lock` covers consistent before a writer uses it (the caller holds the lock):
/// completes a publish that a killed run left planned, and removes staging folders and
/// `.partial-*` files that dead runs left behind. A lock on one output of the folder touches
/// only that output and the staging folders that publish it.
pub fn recover(lock: &FolderLock) -> Result<()> {
    let dir = lock.dir();
    let mut stagings = staging_folders(dir)?;
    if let Some(output) = lock.output() {
        stagings.retain(|p| {
            stages_output(&p.file_name().unwrap_or_default().to_string_lossy(), output)
        });
    }
    for path in stagings {
        let plan_file = path.join(PLAN_FILE);
        if plan_file.is_file() {
            let plan: Plan = serde_json::from_slice(&std::fs::read(&plan_file)?)
                .with_context(|| format!("cannot read {}", plan_file.display()))?;
            check_plan_within(&plan, lock.output(), &plan_file)?;
            crate::report::note(format_args!(
                "completing the `saecooc {}` publish that an interrupted run left in {}",
                plan.stage,
                path.display()
            ));
            complete_publish(dir, &path, &plan)?;
        } else {
            std::fs::remove_dir_all(&path)
                .with_context(|| format!("cannot remove {}", path.display()))?;
        }
    }
    match lock.output() {
        None => remove_dead_partials(dir, 3),
        Some(output) => remove_dead_partials(&dir.join(checked_relative(output)?), 2),
    }
    Ok(())
}

/// Refuses to complete a plan that moves files outside `output` (the one the lock covers).
fn check_plan_within(plan: &Plan, output: Option<&str>, plan_file: &Path) -> Result<()> {
    let Some(output) = output else {
        return Ok(());
    };
    let inside = |rel: &String| rel.starts_with(&format!("{output}/"));
    let all = plan.files.iter().chain(&plan.stale).chain([&plan.manifest]);
    for rel in all {
        ensure!(
            inside(rel),
            "{} plans to write {rel}, outside {output}: remove that staging folder by hand",
            plan_file.display()
        );
    }
    Ok(())
}

/// Refuses a folder where a publish of `stage` was interrupted (files half moved).
pub fn check_no_interrupted_publish(dir: &Path, stage: &str) -> Result<()> {
    for path in staging_folders(dir)? {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if name.starts_with(&format!("{STAGING_PREFIX}{stage}-")) && path.join(PLAN_FILE).is_file()
        {
            bail!(
                "{}: a `saecooc {stage}` run was interrupted while publishing its results ({}); run `saecooc {stage}` on this folder again to complete it",
                dir.display(),
                path.display()
            );
        }
    }
    Ok(())
}

fn staging_folders(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(found),
        Err(e) => return Err(e).with_context(|| format!("cannot list {}", dir.display())),
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with(STAGING_PREFIX) && e.file_type().is_ok_and(|t| t.is_dir()) {
            found.push(e.path());
        }
    }
    found.sort();
    Ok(found)
}

/// Removes `.{name}.partial-{pid}` files of processes that no longer run, `depth` folders deep
/// (never inside a symbolic link or a staging folder).
pub fn remove_dead_partials(dir: &Path, depth: usize) {
    remove_dead_temporaries(dir, &[]);
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
        if is_dir && depth > 0 && !name.starts_with(STAGING_PREFIX) {
            remove_dead_partials(&e.path(), depth - 1);
        }
    }
}

/// Files under `dir`, relative and `/`-separated, sorted.
fn files_under(dir: &Path) -> Result<Vec<String>> {
    fn walk(dir: &Path, prefix: &str, out: &mut Vec<String>) -> Result<()> {
        for e in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
            let e = e.with_context(|| format!("cannot list {}", dir.display()))?;
            let name = e.file_name().to_string_lossy().into_owned();
            let rel = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            if e.file_type()?.is_dir() {
                walk(&e.path(), &rel, out)?;
            } else {
                out.push(rel);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, "", &mut out)?;
    out.retain(|f| !f.ends_with(PLAN_FILE));
    out.sort();
    Ok(out)
}

/// Makes the files `rels` under `base` durable, with the folder entries that name them: one
/// `syncfs` of the file system that holds `base` where there is one (Linux), else an fsync of
/// each file and of each folder from `base` down to it.
#[cfg(target_os = "linux")]
fn sync_written<'a>(base: &Path, _rels: impl IntoIterator<Item = &'a String>) -> Result<()> {
    let file =
        std::fs::File::open(base).with_context(|| format!("cannot open {}", base.display()))?;
    use std::os::fd::AsRawFd;
    // SAFETY: syncfs takes an open file descriptor, which `file` keeps alive for the call.
    let rc = unsafe { libc::syncfs(file.as_raw_fd()) };
    ensure!(
        rc == 0,
        "cannot sync {}: {}",
        base.display(),
        std::io::Error::last_os_error()
    );
    Ok(())
}

/// Makes the files `rels` under `base` durable, with the folder entries that name them: an
/// fsync of each file and of each folder from `base` down to it (no `syncfs` here).
#[cfg(not(target_os = "linux"))]
fn sync_written<'a>(base: &Path, rels: impl IntoIterator<Item = &'a String>) -> Result<()> {
    fsync_each(base, rels)
}

/// Fsyncs each file `rels` under `base` that exists (a removed stale file has none), then each
/// folder from `base` down to them, deepest first, so that a file's entry is durable once its
/// folder's is.
#[cfg_attr(target_os = "linux", allow(dead_code))]
fn fsync_each<'a>(base: &Path, rels: impl IntoIterator<Item = &'a String>) -> Result<()> {
    let (files, folders) = paths_to_sync(base, rels);
    for path in files.iter().chain(folders.iter().rev()) {
        let file = match std::fs::File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot open {}", path.display())),
        };
        file.sync_all()
            .with_context(|| format!("cannot sync {}", path.display()))?;
    }
    Ok(())
}

/// The files `base/rel` and the folders that hold them, from `base` down (sorted, each once).
#[cfg_attr(target_os = "linux", allow(dead_code))]
fn paths_to_sync<'a>(
    base: &Path,
    rels: impl IntoIterator<Item = &'a String>,
) -> (Vec<PathBuf>, BTreeSet<PathBuf>) {
    let mut folders = BTreeSet::from([base.to_path_buf()]);
    let files: Vec<PathBuf> = rels
        .into_iter()
        .map(|rel| {
            let path = base.join(rel);
            folders.extend(
                path.ancestors()
                    .skip(1)
                    .take_while(|a| a.starts_with(base))
                    .map(Path::to_path_buf),
            );
            path
        })
        .collect();
    (files, folders)
}

/// Fault injection for the tests of interrupted publishing: `SAECOOC_TEST_ABORT=staged` aborts
/// once the staged set is complete but not planned; `moved:N` after the N-th file is moved.
fn fault_point(name: &str) {
    if std::env::var("SAECOOC_TEST_ABORT").is_ok_and(|v| v == name) {
        crate::report::warning(format_args!("SAECOOC_TEST_ABORT={name}: aborting"));
        std::process::abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    /// A staging of stage `test` that owns no folders and records no inputs.
    fn begin_plain(lock: &FolderLock) -> Staging {
        Staging::begin(
            lock,
            "test",
            "test_run.json",
            Ownership::default(),
            BTreeMap::new(),
        )
        .unwrap()
    }

    fn publish(dir: &Path, files: &[(&str, &str)], owned: &[&str]) -> SetRecord {
        let lock = FolderLock::acquire(dir, "test").unwrap();
        recover(&lock).unwrap();
        let staging = Staging::begin(
            &lock,
            "test",
            "test_run.json",
            Ownership {
                dirs: owned.iter().map(|s| s.to_string()).collect(),
                prefixes: Vec::new(),
            },
            BTreeMap::from([("source".to_string(), "x".to_string())]),
        )
        .unwrap();
        for (rel, text) in files {
            write(&staging.root().join(rel), text);
        }
        staging
            .publish(|r| Ok(serde_json::to_vec(r).unwrap()))
            .unwrap()
    }

    #[test]
    fn a_published_set_replaces_the_previous_one_and_its_stale_files() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write(&d.join("other_stage.csv"), "kept");
        write(&d.join("pics/old_from_before_manifests.html"), "stale");
        publish(
            d,
            &[("a.npz", "1"), ("pics/0.html", "p0"), ("pics/1.html", "p1")],
            &["pics"],
        );
        // Not listed by any manifest: never saecooc's to remove.
        assert!(d.join("pics/old_from_before_manifests.html").exists());
        let record = publish(d, &[("a.npz", "22"), ("pics/0.html", "q0")], &["pics"]);
        assert_eq!(std::fs::read_to_string(d.join("a.npz")).unwrap(), "22");
        assert!(!d.join("pics/1.html").exists(), "stale picture kept");
        assert!(
            d.join("other_stage.csv").exists(),
            "another stage's file removed"
        );
        let read = SetRecord::read(&d.join("test_run.json")).unwrap().unwrap();
        assert_eq!(read, record);
        assert_eq!(read.inputs["source"], "x");
        read.check_complete(d, "test_run.json").unwrap();
        read.verify(d, &d.join("a.npz"), "test_run.json").unwrap();
        assert!(staging_folders(d).unwrap().is_empty());

        // A file replaced by another run's is refused, naming it.
        write(&d.join("a.npz"), "33");
        let err = format!(
            "{:#}",
            read.verify(d, &d.join("a.npz"), "test_run.json")
                .unwrap_err()
        );
        assert!(err.contains("a.npz does not match test_run.json"), "{err}");
        write(&d.join("a.npz"), "333");
        let err = format!("{:#}", read.check_complete(d, "test_run.json").unwrap_err());
        assert!(err.contains("mixes files of two runs"), "{err}");
    }

    #[test]
    fn stale_files_are_never_removed_through_a_symlink_nor_written_through_one() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        let d = dir.path();
        publish(d, &[("a.npz", "1"), ("pics/0.html", "p0")], &["pics"]);
        // The user's own file in the owned folder keeps the folder alive.
        write(&d.join("pics/mine.txt"), "mine");
        publish(d, &[("a.npz", "2")], &["pics"]);
        assert!(!d.join("pics/0.html").exists(), "a listed stale file kept");
        assert!(d.join("pics/mine.txt").exists(), "the user's file removed");

        // `pics/` replaced by a link to a folder that holds a file of the same name.
        publish(d, &[("a.npz", "3"), ("pics/0.html", "p0")], &["pics"]);
        std::fs::remove_dir_all(d.join("pics")).unwrap();
        write(&elsewhere.path().join("0.html"), "theirs");
        write(&elsewhere.path().join("other.txt"), "theirs");
        std::os::unix::fs::symlink(elsewhere.path(), d.join("pics")).unwrap();
        publish(d, &[("a.npz", "4")], &["pics"]);
        assert!(
            elsewhere.path().join("0.html").exists(),
            "removed through a link"
        );
        assert!(elsewhere.path().join("other.txt").exists());

        // Writing into the linked folder is refused, and the previous set stays.
        let lock = FolderLock::acquire(d, "test").unwrap();
        let staging = begin_plain(&lock);
        write(&staging.root().join("pics/1.html"), "new");
        let err = format!(
            "{:#}",
            staging.publish(|r| Ok(serde_json::to_vec(r)?)).unwrap_err()
        );
        assert!(err.contains("is a symbolic link"), "{err}");
        assert!(!elsewhere.path().join("1.html").exists());
        assert_eq!(std::fs::read_to_string(d.join("a.npz")).unwrap(), "4");
        assert!(checked_relative("../x").is_err() && checked_relative("/x").is_err());
    }

    #[test]
    fn manifests_of_older_versions_read_as_unchecked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pca_run.json");
        std::fs::write(&path, r#"{"sae_id": "x", "files": ["a/b.h5"]}"#).unwrap();
        assert_eq!(SetRecord::read(&path).unwrap(), None);
        std::fs::write(&path, r#"{"sae_id": "x"}"#).unwrap();
        assert_eq!(SetRecord::read(&path).unwrap(), None);
        std::fs::write(&path, "{").unwrap();
        assert!(SetRecord::read(&path).is_err());
        assert_eq!(
            SetRecord::read(&dir.path().join("absent.json")).unwrap(),
            None
        );
    }

    #[test]
    fn an_unpublished_staging_folder_leaves_the_previous_set_and_is_cleaned_up() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        publish(d, &[("a.npz", "1")], &[]);
        {
            let lock = FolderLock::acquire(d, "test").unwrap();
            let staging = begin_plain(&lock);
            write(&staging.root().join("a.npz"), "half");
            // A crash leaves the folder; simulate by forgetting the guard.
            std::mem::forget(staging);
        }
        write(&d.join(".a.npz.partial-999999999"), "x");
        assert_eq!(std::fs::read_to_string(d.join("a.npz")).unwrap(), "1");
        check_no_interrupted_publish(d, "test").unwrap();
        let lock = FolderLock::acquire(d, "test").unwrap();
        recover(&lock).unwrap();
        assert!(staging_folders(d).unwrap().is_empty());
        assert!(!d.join(".a.npz.partial-999999999").exists());
    }

    #[test]
    fn a_lock_on_one_output_recovers_only_that_output() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let dead = 999_999_999;
        for name in [
            staging_name("test", Some("x"), dead),
            staging_name("test", Some("x_2"), dead),
            staging_name("test", None, dead),
        ] {
            write(&d.join(&name).join("x/half.txt"), "half");
        }
        write(&d.join("x/.a.partial-999999999"), "x");
        write(&d.join("x_2/.a.partial-999999999"), "x");
        let lock = FolderLock::acquire_output(d, "x", "test").unwrap();
        recover(&lock).unwrap();
        let left: Vec<PathBuf> = staging_folders(d).unwrap();
        let names: Vec<String> = (left.iter())
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [".staging-test-999999999", ".staging-test-x_2-999999999"]
        );
        assert!(!d.join("x/.a.partial-999999999").exists());
        assert!(d.join("x_2/.a.partial-999999999").exists());

        // Its own set publishes through its own staging folder.
        let staging = Staging::begin(
            &lock,
            "test",
            "x/run.json",
            Ownership::default(),
            BTreeMap::new(),
        )
        .unwrap();
        assert!(stages_output(
            &staging.root().file_name().unwrap().to_string_lossy(),
            "x"
        ));
        write(&staging.root().join("x/a.txt"), "a");
        staging.publish(|r| Ok(serde_json::to_vec(r)?)).unwrap();
        assert_eq!(std::fs::read_to_string(d.join("x/a.txt")).unwrap(), "a");

        // A plan in its staging folder that writes elsewhere is refused, not completed.
        let root = d.join(staging_name("test", Some("x"), dead));
        let plan = Plan {
            stage: "test".into(),
            manifest: "x/run.json".into(),
            files: vec!["x_2/a.txt".into()],
            stale: vec![],
            stale_dirs: vec![],
        };
        write(
            &root.join(PLAN_FILE),
            &serde_json::to_string(&plan).unwrap(),
        );
        let err = format!("{:#}", recover(&lock).unwrap_err());
        assert!(err.contains("outside x"), "{err}");
    }

    #[test]
    fn a_planned_publish_is_refused_by_readers_and_completed_by_the_next_writer() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        publish(d, &[("a.npz", "1"), ("b.npz", "1")], &[]);
        // Stage a second set and plan it, then move only its first file.
        let root = d.join(".staging-test-1");
        write(&root.join("a.npz"), "2");
        write(&root.join("b.npz"), "2");
        let record = SetRecord {
            set_id: "s".into(),
            files: ["a.npz", "b.npz"]
                .iter()
                .map(|f| entry_of(&root, f).unwrap())
                .collect(),
            inputs: BTreeMap::new(),
        };
        write(
            &root.join("test_run.json"),
            &serde_json::to_string(&record).unwrap(),
        );
        let plan = Plan {
            stage: "test".into(),
            manifest: "test_run.json".into(),
            files: vec!["a.npz".into(), "b.npz".into()],
            stale: vec![],
            stale_dirs: vec![],
        };
        write(
            &root.join(PLAN_FILE),
            &serde_json::to_string(&plan).unwrap(),
        );
        std::fs::rename(root.join("a.npz"), d.join("a.npz")).unwrap();
        let err = format!("{:#}", check_no_interrupted_publish(d, "test").unwrap_err());
        assert!(err.contains("interrupted while publishing"), "{err}");
        let old = SetRecord::read(&d.join("test_run.json")).unwrap().unwrap();
        assert!(old.verify(d, &d.join("a.npz"), "test_run.json").is_err());

        let lock = FolderLock::acquire(d, "test").unwrap();
        recover(&lock).unwrap();
        let new = SetRecord::read(&d.join("test_run.json")).unwrap().unwrap();
        assert_eq!(new, record);
        new.check_complete(d, "test_run.json").unwrap();
        new.verify(d, &d.join("b.npz"), "test_run.json").unwrap();
        check_no_interrupted_publish(d, "test").unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn a_real_file_is_never_reached_through_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write(&d.join("in/a.png"), "a");
        write(&d.join("elsewhere/secret"), "s");
        std::os::unix::fs::symlink(d.join("elsewhere/secret"), d.join("in/b.png")).unwrap();
        std::os::unix::fs::symlink(d.join("elsewhere"), d.join("in/sub")).unwrap();
        let base = d.join("in");
        assert_eq!(real_file(&base, "a.png").unwrap(), base.join("a.png"));
        for rel in ["b.png", "sub/secret", "missing.png"] {
            let err = format!("{:#}", real_file(&base, rel).unwrap_err());
            assert!(
                err.contains(&base.join(rel).display().to_string()),
                "{rel}: {err}"
            );
        }
        assert!(real_file(&base, "../elsewhere/secret").is_err());
    }

    #[test]
    fn the_portable_sync_covers_each_file_and_each_folder_down_to_it() {
        let rels: Vec<String> = ["a/b/c.h5", "a/d.csv", "x.json"].map(String::from).into();
        let base = Path::new("/r");
        let (files, folders) = paths_to_sync(base, &rels);
        assert_eq!(
            files,
            ["/r/a/b/c.h5", "/r/a/d.csv", "/r/x.json"].map(PathBuf::from)
        );
        assert_eq!(
            folders.into_iter().collect::<Vec<_>>(),
            ["/r", "/r/a", "/r/a/b"].map(PathBuf::from)
        );
    }

    #[test]
    fn the_portable_sync_skips_removed_files_and_names_what_it_cannot_open() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write(&d.join("a/b/c.h5"), "c");
        write(&d.join("x.json"), "x");
        let written: Vec<String> = ["a/b/c.h5", "x.json", "a/stale.csv"]
            .map(String::from)
            .into();
        fsync_each(d, &written).unwrap();
        let err = fsync_each(d, &["x.json/inside".to_string()]).unwrap_err();
        assert!(format!("{err:#}").contains("x.json/inside"), "{err:#}");
    }
}
