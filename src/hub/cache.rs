//! The local hub cache as huggingface_hub lays it out: cached files, refs, the records of
//! files a repo lacks, and the file listings kept between runs.

use super::{Hub, HubRepo};
use crate::io::pyfmt::check_name;
use anyhow::{Context, Result};
use hf_hub::api::sync::Api;
use hf_hub::RepoType;
use std::path::{Path, PathBuf};

impl Hub {
    /// The cached copy of `filename` of a hub repo at `revision` (a name the cache has a ref
    /// for, or a commit), if there is one.
    pub fn cached(&self, at: HubRepo, filename: &str) -> Option<PathBuf> {
        let commit = self.known_commit(at.repo, at.kind, at.revision)?;
        let path = self
            .repo_folder(at.repo, at.kind)
            .join("snapshots")
            .join(commit)
            .join(filename);
        path.exists().then_some(path)
    }

    /// The commit `revision` names as far as the cache knows: itself for a commit, else what
    /// `refs/{revision}` holds.
    fn known_commit(&self, repo: &str, kind: RepoType, revision: &str) -> Option<String> {
        if is_commit(revision) {
            return Some(revision.to_string());
        }
        let folder = self.repo_folder(repo, kind);
        std::fs::read_to_string(folder.join("refs").join(revision))
            .ok()
            .map(|c| c.trim().to_string())
    }

    /// huggingface_hub's record that the repo has no `filename` at `commit`:
    /// `.no_exist/{commit}/{filename}`, an empty file.
    fn no_exist_path(&self, repo: &str, kind: RepoType, commit: &str, filename: &str) -> PathBuf {
        self.repo_folder(repo, kind)
            .join(NO_EXIST_DIR)
            .join(commit)
            .join(filename)
    }

    /// Whether the cache records that the repo lacks `filename` at `revision`.
    pub(super) fn known_absent(&self, at: HubRepo, filename: &str) -> bool {
        self.known_commit(at.repo, at.kind, at.revision)
            .is_some_and(|c| self.no_exist_path(at.repo, at.kind, &c, filename).is_file())
    }

    /// Records a 404 for `filename` as huggingface_hub does, so that later runs do not ask
    /// again: `.no_exist/{commit}/{filename}` and `refs/{revision}`. The commit is the cache's,
    /// else the hub's (one listing request). Best effort: a failure only costs a request later.
    pub(super) fn record_absent(&self, at: HubRepo, filename: &str) {
        let HubRepo {
            repo,
            kind,
            revision,
        } = at;
        let commit = self.known_commit(repo, kind, revision).or_else(|| {
            let api = self.api.as_ref()?;
            api.repo(Self::repo(repo, kind, revision))
                .info()
                .ok()
                .map(|info| info.sha)
        });
        let Some(commit) = commit.filter(|c| is_commit(c)) else {
            return;
        };
        let marker = self.no_exist_path(repo, kind, &commit, filename);
        let _ = (|| -> std::io::Result<()> {
            std::fs::create_dir_all(marker.parent().unwrap_or(Path::new(".")))?;
            std::fs::File::create(&marker)?;
            if revision != commit {
                self.cache
                    .repo(Self::repo(repo, kind, revision))
                    .create_ref(&commit)?;
            }
            Ok(())
        })();
    }

    /// All file names of a hub repo at `revision`, asked for once per run: the listing an
    /// earlier run kept for the commit the cache knows `revision` by (no request, as for a
    /// cached file), else the hub's (kept for later runs), else offline the files of the cached
    /// snapshot and those read in part.
    pub fn list(&self, repo: &str, kind: RepoType, revision: &str) -> Result<Vec<String>> {
        check_name(&format!("the revision of hub repo {repo}"), revision)?;
        let key = (
            Self::repo(repo, kind, revision).folder_name(),
            revision.to_string(),
        );
        let mut listed = self.listed.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(files) = listed.get(&key) {
            return Ok(files.clone());
        }
        let files = match (self.kept_listing(repo, kind, revision), &self.api) {
            (Some(files), _) => files,
            (None, Some(api)) => self.fetch_listing(api, repo, kind, revision)?,
            (None, None) => self.snapshot_listing(repo, kind, revision)?,
        };
        listed.insert(key, files.clone());
        Ok(files)
    }

    /// Where the listing of a repo at `commit` is kept: `.saecooc-listing/{commit}.json`.
    fn listing_path(&self, repo: &str, kind: RepoType, commit: &str) -> PathBuf {
        self.repo_folder(repo, kind)
            .join(LISTING_DIR)
            .join(format!("{commit}.json"))
    }

    /// The listing kept for the commit the cache knows `revision` by, if there is one (an
    /// unreadable one counts as none).
    fn kept_listing(&self, repo: &str, kind: RepoType, revision: &str) -> Option<Vec<String>> {
        let commit = self.known_commit(repo, kind, revision)?;
        let text = std::fs::read_to_string(self.listing_path(repo, kind, &commit)).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// The hub's listing of a repo at `revision` (one request), kept for later runs.
    fn fetch_listing(
        &self,
        api: &Api,
        repo: &str,
        kind: RepoType,
        revision: &str,
    ) -> Result<Vec<String>> {
        let info = api
            .repo(Self::repo(repo, kind, revision))
            .info()
            .with_context(|| format!("cannot list files of Hugging Face repo {repo}"))?;
        let files: Vec<String> = info.siblings.into_iter().map(|s| s.rfilename).collect();
        self.keep_listing(repo, kind, revision, &info.sha, &files);
        Ok(files)
    }

    /// Keeps `files`, the listing of a repo at `commit`, as `.saecooc-listing/{commit}.json`
    /// (a temporary file renamed), and `refs/{revision}` naming the commit. Best effort: a
    /// failure only costs a request later.
    fn keep_listing(
        &self,
        repo: &str,
        kind: RepoType,
        revision: &str,
        commit: &str,
        files: &[String],
    ) {
        if !is_commit(commit) {
            return;
        }
        let path = self.listing_path(repo, kind, commit);
        let _ = (|| -> std::io::Result<()> {
            std::fs::create_dir_all(path.parent().unwrap_or(Path::new(".")))?;
            let tmp = path.with_extension(format!("json.tmp-{}", std::process::id()));
            std::fs::write(&tmp, serde_json::to_string(files)?)?;
            std::fs::rename(&tmp, &path)?;
            if revision != commit {
                self.cache
                    .repo(Self::repo(repo, kind, revision))
                    .create_ref(commit)?;
            }
            Ok(())
        })();
    }

    /// Offline, with no listing kept: the files of the cached snapshot of `revision` and
    /// those earlier runs read in part.
    fn snapshot_listing(&self, repo: &str, kind: RepoType, revision: &str) -> Result<Vec<String>> {
        let folder = self.repo_folder(repo, kind);
        let commit = cached_commit(&folder, revision);
        let snapshot = folder.join("snapshots").join(&commit);
        let mut files = Vec::new();
        collect_files(&snapshot, &snapshot, &mut files).with_context(|| {
            format!("hub repo {repo} is not in the local cache and HF_HUB_OFFLINE is set")
        })?;
        // Files read in part by earlier runs (see `RemoteFile::record_partial`).
        let partial = folder.join(PARTIAL_DIR).join(&commit);
        let _ = collect_files(&partial, &partial, &mut files);
        files.sort();
        files.dedup();
        Ok(files)
    }

    /// The cache folder of a repo: `{cache}/{models|datasets}--{owner}--{name}`.
    pub(super) fn repo_folder(&self, repo: &str, kind: RepoType) -> PathBuf {
        self.cache
            .path()
            .join(Self::repo(repo, kind, "main").folder_name())
    }
}

/// The folder of a repo's cache folder recording the files read in part, by commit and name;
/// each holds `{etag} {size}` (the bytes are in `blobs/{etag}.saecooc-partial`). huggingface_hub
/// and hf-hub look only at `blobs`, `refs` and `snapshots`.
pub(super) const PARTIAL_DIR: &str = ".saecooc-partial";

/// The folder of a repo's cache folder keeping its file listings, `{commit}.json` (a JSON array
/// of file names), so that a run whose cache knows the revision's commit lists no files online.
const LISTING_DIR: &str = ".saecooc-listing";

/// The folder of a repo's cache folder recording files the repo lacks, by commit and name (as
/// huggingface_hub keeps it).
const NO_EXIST_DIR: &str = ".no_exist";

/// Whether `revision` is a commit id (40 hex digits) rather than a branch or tag name.
fn is_commit(revision: &str) -> bool {
    revision.len() == 40 && revision.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The commit `refs/{revision}` of a repo's cache folder names, else `revision` itself.
pub(super) fn cached_commit(folder: &Path, revision: &str) -> String {
    std::fs::read_to_string(folder.join("refs").join(revision))
        .map(|c| c.trim().to_string())
        .unwrap_or_else(|_| revision.to_string())
}

fn collect_files(root: &Path, dir: &Path, out: &mut Vec<String>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_files(root, &path, out)?;
        } else if let Ok(rel) = path.strip_prefix(root) {
            out.push(rel.to_string_lossy().into_owned());
        }
    }
    Ok(())
}
