//! Where inputs come from: a local path or a Hugging Face hub repository.
//!
//! Hub files are fetched with `hf-hub` into the standard cache (`$HF_HOME/hub`, the layout
//! Python's `huggingface_hub` uses, so files downloaded by either are shared). `HF_TOKEN`
//! authenticates gated repos (e.g. `google/gemma-2-2b`); `HF_HUB_OFFLINE=1` uses only the cache.

use crate::io::pyfmt::check_name;
use anyhow::{bail, Context, Result};
use hf_hub::api::sync::{Api, ApiBuilder, ApiError};
use hf_hub::{Cache, Repo, RepoType};
use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

/// Tries of one ranged read before a cut connection or a timeout is an error.
const TRIES: u32 = 4;

/// Bytes asked for by one request of a whole-file download.
const DOWNLOAD_PIECE: u64 = 16 << 20;

/// Lowercase hex digits of `bytes`.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The wait before the second try of a ranged read; doubled for each further try.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);

/// A source named in a config: a local path or a hub repo at a revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Local(PathBuf),
    Hub { repo: String, revision: String },
}

impl Location {
    /// Interprets `spec`: an existing path, or anything path-like (`./x`, `/x`, `a/b/c`), is
    /// local; `owner/name` (or `hf:owner/name`) that does not exist locally is a hub repo.
    pub fn parse(spec: &str, revision: Option<&str>) -> Self {
        let revision = revision.unwrap_or("main").to_string();
        if let Some(repo) = spec.strip_prefix("hf:") {
            return Self::Hub {
                repo: repo.to_string(),
                revision,
            };
        }
        let path = Path::new(spec);
        let looks_like_repo = spec.split('/').count() == 2
            && !spec.starts_with(['.', '/', '~'])
            && !spec.ends_with('/')
            && path.extension().is_none();
        if path.exists() || !looks_like_repo {
            Self::Local(path.to_path_buf())
        } else {
            Self::Hub {
                repo: spec.to_string(),
                revision,
            }
        }
    }

    /// A short human description for messages and the run manifest.
    pub fn describe(&self) -> String {
        match self {
            Self::Local(p) => p.display().to_string(),
            Self::Hub { repo, revision } if revision == "main" => format!("hf:{repo}"),
            Self::Hub { repo, revision } => format!("hf:{repo}@{revision}"),
        }
    }
}

/// How an hf-hub request failed.
enum Failure {
    /// The hub answered with this HTTP status.
    Status(u16),
    /// The hub could not be reached.
    Unreachable,
    Other,
}

/// Classifies a download error. ureq (a dev-dependency only here) is read through its message:
/// `http status: 404`, `io: ...`, `timeout: ...`, `host not found`, ...
fn failure(err: &ApiError) -> Failure {
    let ApiError::RequestError(e) = err else {
        return Failure::Other;
    };
    let message = e.to_string();
    if let Some(code) = message
        .strip_prefix("http status: ")
        .and_then(|c| c.trim().parse().ok())
    {
        return Failure::Status(code);
    }
    let unreachable = ["io: ", "timeout: ", "host not found", "connection failed"]
        .iter()
        .any(|p| message.starts_with(p));
    if unreachable {
        Failure::Unreachable
    } else {
        Failure::Other
    }
}

/// The error for a failed download of `filename` (from `url`), saying what to do about it and
/// keeping hf-hub's error as its source.
fn download_error(
    err: ApiError,
    repo: &str,
    revision: &str,
    filename: &str,
    url: &str,
) -> anyhow::Error {
    let token_set = std::env::var("HF_TOKEN").is_ok_and(|t| !t.trim().is_empty());
    let why = match failure(&err) {
        Failure::Status(code @ (401 | 403)) if token_set => format!(
            "access denied (HTTP {code}): the HF_TOKEN given cannot read Hugging Face repo \
             {repo}; for a gated repo, accept its licence on the hub with that account (the hub \
             also answers this for repos that do not exist)"
        ),
        Failure::Status(code @ (401 | 403)) => format!(
            "access denied (HTTP {code}): Hugging Face repo {repo} is gated or private (or does \
             not exist); set HF_TOKEN to a token that can read it (for a gated repo, accept its \
             licence on the hub first)"
        ),
        Failure::Status(404) => format!(
            "not found (HTTP 404): Hugging Face repo {repo} has no file {filename} at revision \
             {revision}, or the repo does not exist; check the repo id, the revision and the file \
             name (if you meant a local path, it does not exist)"
        ),
        Failure::Unreachable => "cannot reach the hub: check your network and HF_ENDPOINT, or \
             set HF_HUB_OFFLINE=1 to use only the local cache"
            .to_string(),
        Failure::Status(_) | Failure::Other => "check the repo id, your network, and HF_TOKEN \
             for gated repos (if you meant a local path, it does not exist)"
            .to_string(),
    };
    anyhow::Error::new(err).context(format!(
        "cannot download {filename} from Hugging Face repo {repo} (revision {revision}, {url}): \
         {why}"
    ))
}

/// Access to the hub and its local cache.
pub struct Hub {
    api: Option<Api>,
    cache: Cache,
    /// Show download bars.
    progress: bool,
    /// Repo listings already asked for in this run, by cache folder name and revision (each
    /// SAE of a run reads the same dataset).
    listed: Mutex<HashMap<(String, String), Vec<String>>>,
}

impl Hub {
    /// Builds a client from the environment (`HF_HOME`, `HF_ENDPOINT`, `HF_TOKEN`,
    /// `HF_HUB_OFFLINE`). `progress` shows download bars.
    pub fn from_env(progress: bool) -> Result<Self> {
        let cache = Cache::from_env();
        // As huggingface_hub reads it: 1/true/yes/on in any case.
        let offline = std::env::var("HF_HUB_OFFLINE")
            .map(|v| {
                ["1", "true", "yes", "on"]
                    .iter()
                    .any(|t| v.trim().eq_ignore_ascii_case(t))
            })
            .unwrap_or(false);
        let api = if offline {
            None
        } else {
            let mut builder = ApiBuilder::from_env().with_progress(progress);
            if let Ok(endpoint) = std::env::var("HF_ENDPOINT") {
                // `http://mirror/` would otherwise give `http://mirror//repo/resolve/...`.
                let endpoint = endpoint.trim().trim_end_matches('/');
                if !endpoint.is_empty() {
                    builder = builder.with_endpoint(endpoint.to_string());
                }
            }
            // An empty HF_TOKEN means none (not `Authorization: Bearer `).
            if let Ok(token) = std::env::var("HF_TOKEN") {
                let token = token.trim();
                if !token.is_empty() {
                    builder = builder.with_token(Some(token.to_string()));
                }
            }
            Some(
                builder
                    .build()
                    .context("cannot set up the Hugging Face hub client")?,
            )
        };
        Ok(Self {
            api,
            cache,
            progress,
            listed: Mutex::default(),
        })
    }

    fn repo(repo: &str, kind: RepoType, revision: &str) -> Repo {
        Repo::with_revision(repo.to_string(), kind, revision.to_string())
    }

    /// The local path of `filename` in a hub repo, downloading it if needed into the cache (in
    /// ranges, each tried again when cut; see [`RemoteFile::download`]). A download error
    /// keeps hf-hub's [`hf_hub::api::sync::ApiError`] as its source.
    pub fn get(
        &self,
        repo: &str,
        kind: RepoType,
        revision: &str,
        filename: &str,
    ) -> Result<PathBuf> {
        check_request(repo, revision, filename)?;
        if let Some(path) = self.cached(repo, kind, revision, filename) {
            return Ok(path);
        }
        self.online(repo, revision, filename)?;
        let remote = self.remote(repo, kind, revision, filename)?;
        if !remote.blob_path().is_file() {
            remote.download(self.progress)?;
        }
        remote.link_blob()
    }

    /// The client, or (with `HF_HUB_OFFLINE` set) the error for `filename` of `repo` missing
    /// from the cache.
    fn online(&self, repo: &str, revision: &str, filename: &str) -> Result<&Api> {
        match &self.api {
            Some(api) => Ok(api),
            None => bail!(
                "{filename} of hub repo {repo} (revision {revision}) is not in the local cache \
                 ({}) and HF_HUB_OFFLINE is set: unset HF_HUB_OFFLINE to download it",
                self.cache.path().display()
            ),
        }
    }

    /// The cached copy of `filename` of a hub repo at `revision` (a name the cache has a ref
    /// for, or a commit), if there is one.
    pub fn cached(
        &self,
        repo: &str,
        kind: RepoType,
        revision: &str,
        filename: &str,
    ) -> Option<PathBuf> {
        let commit = self.known_commit(repo, kind, revision)?;
        let path = self
            .repo_folder(repo, kind)
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
    fn known_absent(&self, repo: &str, kind: RepoType, revision: &str, filename: &str) -> bool {
        self.known_commit(repo, kind, revision)
            .is_some_and(|c| self.no_exist_path(repo, kind, &c, filename).is_file())
    }

    /// Records a 404 for `filename` as huggingface_hub does, so that later runs do not ask
    /// again: `.no_exist/{commit}/{filename}` and `refs/{revision}`. The commit is the cache's,
    /// else the hub's (one listing request). Best effort: a failure only costs a request later.
    fn record_absent(&self, repo: &str, kind: RepoType, revision: &str, filename: &str) {
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

    /// A hub file to read in byte ranges instead of downloading it whole: its commit, etag and
    /// size as earlier runs that read part of it recorded them ([`RemoteFile::record_partial`];
    /// no request, as for a cached file), else from the hub (one request, as hf-hub makes
    /// before a download). Offline, a file no run read part of is an error naming it.
    pub fn remote(
        &self,
        repo: &str,
        kind: RepoType,
        revision: &str,
        filename: &str,
    ) -> Result<RemoteFile> {
        check_request(repo, revision, filename)?;
        if let Some(partial) = self.partial_remote(repo, kind, revision, filename) {
            return Ok(partial);
        }
        let api = self.online(repo, revision, filename)?;
        let url = api.repo(Self::repo(repo, kind, revision)).url(filename);
        let metadata = api
            .metadata(&url)
            .map_err(|err| download_error(err, repo, revision, filename, &url))?;
        let commit = metadata.commit_hash().to_string();
        // Every range is read at the commit, so that a branch moving meanwhile changes nothing.
        let pinned = api.repo(Self::repo(repo, kind, &commit)).url(filename);
        Ok(RemoteFile {
            api: Some(api.clone()),
            cache: self.cache.clone(),
            repo: repo.to_string(),
            kind,
            revision: revision.to_string(),
            name: filename.to_string(),
            etag: metadata.etag().to_string(),
            size: metadata.size() as u64,
            url: pinned,
            commit,
        })
    }

    /// Like [`Hub::get`] but `None` when the file is not in the repo (HTTP 404, recorded in
    /// the cache so that it is not asked again) or, offline, not in the cache. Other failures
    /// (access denied, network) also give `None`, so that the caller's fallback runs, after a
    /// warning naming the cause.
    pub fn try_get(
        &self,
        repo: &str,
        kind: RepoType,
        revision: &str,
        filename: &str,
    ) -> Option<PathBuf> {
        if self.known_absent(repo, kind, revision, filename) {
            return None;
        }
        match self.get(repo, kind, revision, filename) {
            Ok(path) => Some(path),
            Err(err) => match err.downcast_ref::<ApiError>().map(failure) {
                Some(Failure::Status(404)) => {
                    self.record_absent(repo, kind, revision, filename);
                    None
                }
                // Offline and not cached.
                None if self.offline() => None,
                // A cut or failed download, access denied, no network.
                _ => {
                    eprintln!("warning: {err:#}");
                    None
                }
            },
        }
    }

    /// Whether `HF_HUB_OFFLINE` is set: only the local cache is read.
    pub fn offline(&self) -> bool {
        self.api.is_none()
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
    fn repo_folder(&self, repo: &str, kind: RepoType) -> PathBuf {
        self.cache
            .path()
            .join(Self::repo(repo, kind, "main").folder_name())
    }

    /// `filename` as far as earlier runs read it in ranges, if they did (the rest is fetched
    /// from its commit when online).
    fn partial_remote(
        &self,
        repo: &str,
        kind: RepoType,
        revision: &str,
        filename: &str,
    ) -> Option<RemoteFile> {
        let folder = self.repo_folder(repo, kind);
        let commit = cached_commit(&folder, revision);
        let pointer = folder.join(PARTIAL_DIR).join(&commit).join(filename);
        let text = std::fs::read_to_string(pointer).ok()?;
        let (etag, size) = text.trim().split_once(' ')?;
        let url = match &self.api {
            Some(api) => api.repo(Self::repo(repo, kind, &commit)).url(filename),
            None => String::new(),
        };
        Some(RemoteFile {
            api: self.api.clone(),
            cache: self.cache.clone(),
            repo: repo.to_string(),
            kind,
            revision: revision.to_string(),
            name: filename.to_string(),
            commit,
            etag: etag.to_string(),
            size: size.parse().ok()?,
            url,
        })
    }
}

/// The folder of a repo's cache folder recording the files read in part, by commit and name;
/// each holds `{etag} {size}` (the bytes are in `blobs/{etag}.saecooc-partial`). huggingface_hub
/// and hf-hub look only at `blobs`, `refs` and `snapshots`.
const PARTIAL_DIR: &str = ".saecooc-partial";

/// The folder of a repo's cache folder keeping its file listings, `{commit}.json` (a JSON array
/// of file names), so that a run whose cache knows the revision's commit lists no files online.
const LISTING_DIR: &str = ".saecooc-listing";

/// The folder of a repo's cache folder recording files the repo lacks, by commit and name (as
/// huggingface_hub keeps it).
const NO_EXIST_DIR: &str = ".no_exist";

/// Whether `revision` is a commit id (40 hex digits) rather than a branch or tag name.
/// Checks a revision and a file name (from a config, or from a repo's own files such as a
/// model's shard index) before they become folders of the cache: neither may leave it.
fn check_request(repo: &str, revision: &str, filename: &str) -> Result<()> {
    check_name(&format!("the revision of hub repo {repo}"), revision)?;
    check_name(&format!("a file name of hub repo {repo}"), filename)
}

fn is_commit(revision: &str) -> bool {
    revision.len() == 40 && revision.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The commit `refs/{revision}` of a repo's cache folder names, else `revision` itself.
fn cached_commit(folder: &Path, revision: &str) -> String {
    std::fs::read_to_string(folder.join("refs").join(revision))
        .map(|c| c.trim().to_string())
        .unwrap_or_else(|_| revision.to_string())
}

/// A hub file read in byte ranges (see [`Hub::remote`]).
pub struct RemoteFile {
    /// None offline: only what earlier runs fetched can be read.
    api: Option<Api>,
    cache: Cache,
    pub repo: String,
    pub kind: RepoType,
    /// The revision asked for (a branch, tag or commit).
    pub revision: String,
    pub name: String,
    /// The commit `revision` resolved to.
    pub commit: String,
    /// The hub's etag: the sha256 of an LFS file, a git blob id otherwise.
    pub etag: String,
    pub size: u64,
    /// The file's URL at `commit`.
    pub url: String,
}

impl RemoteFile {
    /// Whether ranges not fetched yet can be fetched (not `HF_HUB_OFFLINE`).
    pub fn online(&self) -> bool {
        self.api.is_some()
    }

    /// `{name} of Hugging Face {kind} repo {repo} (revision {revision})`, for messages.
    pub fn describe(&self) -> String {
        let kind = match self.kind {
            RepoType::Dataset => "dataset ",
            RepoType::Model => "model ",
            RepoType::Space => "space ",
        };
        format!(
            "{} of Hugging Face {kind}repo {} (revision {})",
            self.name, self.repo, self.revision
        )
    }

    /// The `len` bytes from `start`: one `Range` request to the file's URL (redirects followed,
    /// `Authorization` sent to the hub's own host only, as hf-hub does). A connection cut or a
    /// short body is tried again, up to [`TRIES`] times with a doubling wait; the error then
    /// names the file and the byte offset.
    pub fn read_range(&self, start: u64, len: u64) -> Result<Vec<u8>> {
        let mut wait = FIRST_BACKOFF;
        let mut tries = 1;
        loop {
            match self.try_range(start, len) {
                Ok(bytes) => return Ok(bytes),
                Err(Attempt::Final(err)) => return Err(err),
                Err(Attempt::Transient(err)) if tries == TRIES => {
                    return Err(err.context(format!(
                        "cannot read {} at byte {start} of {} ({}) after {TRIES} tries",
                        self.describe(),
                        self.size,
                        self.url
                    )))
                }
                Err(Attempt::Transient(_)) => {
                    std::thread::sleep(wait);
                    wait *= 2;
                    tries += 1;
                }
            }
        }
    }

    /// One try of [`RemoteFile::read_range`].
    fn try_range(&self, start: u64, len: u64) -> std::result::Result<Vec<u8>, Attempt> {
        let end = start + len - 1;
        let Some(api) = &self.api else {
            return Err(Attempt::Final(anyhow::anyhow!(
                "{} is only partly in the local cache (earlier runs read {} of its bytes, not \
                 bytes {start}-{end}) and HF_HUB_OFFLINE is set: unset HF_HUB_OFFLINE to fetch \
                 the rest",
                self.describe(),
                self.size,
            )));
        };
        let request = api
            .repo(Hub::repo(&self.repo, self.kind, &self.commit))
            .info_request()
            .uri(self.url.as_str())
            .header("Range", format!("bytes={start}-{end}"))
            .config()
            .timeout_recv_response(Some(Duration::from_secs(60)))
            .timeout_recv_body(Some(Duration::from_secs(600)))
            .build();
        let response = request.call().map_err(|err| {
            let err = ApiError::RequestError(Box::new(err));
            match failure(&err) {
                Failure::Status(code) if code < 500 => Attempt::Final(download_error(
                    err,
                    &self.repo,
                    &self.revision,
                    &self.name,
                    &self.url,
                )),
                _ => Attempt::Transient(err.into()),
            }
        })?;
        if response.status().as_u16() != 206 {
            return Err(Attempt::Final(anyhow::anyhow!(
                "cannot read {} in ranges: the hub answered HTTP {} to a Range request for \
                 bytes {start}-{end} ({}); set HF_ENDPOINT to a hub that serves ranges",
                self.describe(),
                response.status().as_u16(),
                self.url
            )));
        }
        let mut bytes = vec![0; len as usize];
        response
            .into_body()
            .into_reader()
            .read_exact(&mut bytes)
            .map_err(|e| Attempt::Transient(e.into()))?;
        Ok(bytes)
    }

    /// Downloads the whole file to [`RemoteFile::blob_path`]: ranges of [`DOWNLOAD_PIECE`]
    /// bytes (each tried again when cut) written to a temporary file in `blobs/`, checked
    /// against the sha256 etag of an LFS file, then renamed. hf-hub's own download is not used:
    /// a download cut on its last try, then resumed, leaves it a corrupt blob.
    pub fn download(&self, progress: bool) -> Result<()> {
        use sha2::{Digest, Sha256};
        use std::io::Write;
        let blob = self.blob_path();
        let dir = blob.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create cache folder {}", dir.display()))?;
        let tmp = dir.join(format!(
            "{}.saecooc-download-{}",
            self.etag,
            std::process::id()
        ));
        let result = (|| -> Result<()> {
            let mut file = std::fs::File::create(&tmp)
                .with_context(|| format!("cannot create {}", tmp.display()))?;
            let mut hasher = Sha256::new();
            let bar = crate::io::progress::bar(self.size, !progress, &self.name, "bytes");
            let mut pos = 0;
            while pos < self.size {
                let len = DOWNLOAD_PIECE.min(self.size - pos);
                let bytes = self.read_range(pos, len)?;
                hasher.update(&bytes);
                file.write_all(&bytes)
                    .with_context(|| format!("cannot write {}", tmp.display()))?;
                pos += len;
                bar.inc(len);
            }
            bar.finish_and_clear();
            file.sync_all()
                .with_context(|| format!("cannot write {}", tmp.display()))?;
            self.check_sha256(&hex(&hasher.finalize()))?;
            std::fs::rename(&tmp, &blob)
                .with_context(|| format!("cannot rename {} to {}", tmp.display(), blob.display()))
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }

    /// The bytes read have sha256 `sha`: an error unless that is the etag (for a file whose
    /// etag is a sha256, an LFS file; a git blob id is not checked).
    pub fn check_sha256(&self, sha: &str) -> Result<()> {
        let etag = &self.etag;
        let is_sha256 = etag.len() == 64 && etag.bytes().all(|b| b.is_ascii_hexdigit());
        if is_sha256 && !sha.eq_ignore_ascii_case(etag) {
            bail!(
                "the bytes read from the hub have sha256 {sha}, not the {etag} the hub gave for \
                 {}; run again to fetch it anew",
                self.describe()
            );
        }
        Ok(())
    }

    /// Where the cache keeps the file's bytes: `blobs/{etag}` of the repo's cache folder.
    pub fn blob_path(&self) -> PathBuf {
        self.cache_repo().blob_path(&self.etag)
    }

    /// Puts the complete blob (already at [`RemoteFile::blob_path`]) into the cache as
    /// huggingface_hub does: `snapshots/{commit}/{name}`, a relative symlink to the blob, and
    /// `refs/{revision}` naming the commit. Returns the snapshot path.
    pub fn link_blob(&self) -> Result<PathBuf> {
        let cache = self.cache_repo();
        let pointer = cache.pointer_path(&self.commit).join(&self.name);
        let linked = (|| -> std::io::Result<()> {
            let dir = pointer.parent().unwrap_or(Path::new("."));
            std::fs::create_dir_all(dir)?;
            if std::fs::symlink_metadata(&pointer).is_err() {
                let blob = self.blob_path();
                std::os::unix::fs::symlink(relative_to(&blob, dir), &pointer)?;
            }
            self.create_ref(&cache)
        })();
        linked.with_context(|| {
            format!(
                "cannot add {} to the cache at {}",
                self.describe(),
                pointer.display()
            )
        })?;
        Ok(pointer)
    }

    /// Records that the file is being read in ranges, so that an offline run finds what was
    /// read: its etag and size under the repo folder's `.saecooc-partial/{commit}/{name}`, and
    /// `refs/{revision}` with an (empty, until a file is complete) `snapshots/{commit}`.
    pub fn record_partial(&self) -> Result<()> {
        if self.api.is_none() {
            return Ok(());
        }
        let cache = self.cache_repo();
        let pointer = self.partial_pointer();
        let recorded = (|| -> std::io::Result<()> {
            std::fs::create_dir_all(cache.pointer_path(&self.commit))?;
            self.create_ref(&cache)?;
            std::fs::create_dir_all(pointer.parent().unwrap_or(Path::new(".")))?;
            let tmp = pointer.with_extension(format!("tmp-{}", std::process::id()));
            std::fs::write(&tmp, format!("{} {}\n", self.etag, self.size))?;
            std::fs::rename(&tmp, &pointer)
        })();
        recorded.with_context(|| format!("cannot write {}", pointer.display()))
    }

    /// `refs/{revision}` naming the commit, unless the revision is the commit itself (as
    /// huggingface_hub writes no ref for a commit).
    fn create_ref(&self, cache: &hf_hub::CacheRepo) -> std::io::Result<()> {
        if self.revision == self.commit {
            return Ok(());
        }
        cache.create_ref(&self.commit)
    }

    /// Removes the record of [`RemoteFile::record_partial`] (the file is complete).
    pub fn forget_partial(&self) {
        let _ = std::fs::remove_file(self.partial_pointer());
    }

    fn partial_pointer(&self) -> PathBuf {
        let folder = self.cache.path().join(
            Repo::with_revision(self.repo.clone(), self.kind, self.revision.clone()).folder_name(),
        );
        folder.join(PARTIAL_DIR).join(&self.commit).join(&self.name)
    }

    fn cache_repo(&self) -> hf_hub::CacheRepo {
        self.cache
            .repo(Hub::repo(&self.repo, self.kind, &self.revision))
    }
}

/// How one try of a ranged read failed.
enum Attempt {
    /// Worth another try: the connection failed or was cut, or the hub had a server error.
    Transient(anyhow::Error),
    /// Not: the file, the repo or access to it is missing, or ranges are not served.
    Final(anyhow::Error),
}

/// `target` as a path relative to folder `dir` (both absolute, or both relative to the same
/// folder), as huggingface_hub writes its snapshot symlinks.
fn relative_to(target: &Path, dir: &Path) -> PathBuf {
    let (t, d): (Vec<_>, Vec<_>) = (target.components().collect(), dir.components().collect());
    let common = t.iter().zip(&d).take_while(|(a, b)| a == b).count();
    let mut out = PathBuf::new();
    for _ in common..d.len() {
        out.push("..");
    }
    for c in &t[common..] {
        out.push(c);
    }
    out
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_would_leave_the_cache_are_refused() {
        check_request("o/r", "refs/convert/parquet", "data/train-0.parquet").unwrap();
        let err = check_request("o/r", "main", "../../evil.safetensors").unwrap_err();
        assert!(
            err.to_string()
                .contains("a file name of hub repo o/r is \"../../evil.safetensors\""),
            "{err}"
        );
        let err = check_request("o/r", "/abs", "config.json").unwrap_err();
        assert!(
            err.to_string().contains("the revision of hub repo o/r"),
            "{err}"
        );
    }

    #[test]
    fn locations_parse_as_users_expect() {
        assert_eq!(
            Location::parse("openai-community/gpt2", None),
            Location::Hub {
                repo: "openai-community/gpt2".into(),
                revision: "main".into()
            }
        );
        assert_eq!(
            Location::parse("hf:google/gemma-2-2b", Some("v1")),
            Location::Hub {
                repo: "google/gemma-2-2b".into(),
                revision: "v1".into()
            }
        );
        assert_eq!(
            Location::parse("./m/gpt2", None),
            Location::Local("./m/gpt2".into())
        );
        assert_eq!(
            Location::parse("demo/tiny/model", None),
            Location::Local("demo/tiny/model".into())
        );
        assert_eq!(
            Location::parse("data/text.txt", None),
            Location::Local("data/text.txt".into())
        );
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().to_string_lossy().to_string();
        assert_eq!(Location::parse(&p, None), Location::Local(p.clone().into()));
    }
}
