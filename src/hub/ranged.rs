//! Hub files read in byte ranges: ranged reads tried again when cut, whole-file downloads
//! checked against their sha256, and the cache records of files read in part.

use super::cache::{cached_commit, PARTIAL_DIR};
use super::{check_request, download_error, failure, Failure, Hub, HubRepo};
use anyhow::{bail, Context, Result};
use hf_hub::api::sync::{Api, ApiError};
use hf_hub::{Cache, Repo, RepoType};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Tries of one ranged read before a cut connection or a timeout is an error.
const TRIES: u32 = 4;

/// Bytes asked for by one request of a whole-file download.
const DOWNLOAD_PIECE: u64 = 16 << 20;

/// The wait before the second try of a ranged read; doubled for each further try.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);

impl Hub {
    /// A hub file to read in byte ranges instead of downloading it whole: its commit, etag and
    /// size as earlier runs that read part of it recorded them ([`RemoteFile::record_partial`];
    /// no request, as for a cached file), else from the hub (one request, as hf-hub makes
    /// before a download). Offline, a file no run read part of is an error naming it.
    pub fn remote(&self, at: HubRepo, filename: &str) -> Result<RemoteFile> {
        let HubRepo {
            repo,
            kind,
            revision,
        } = at;
        check_request(repo, revision, filename)?;
        if let Some(partial) = self.partial_remote(at, filename) {
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

    /// `filename` as far as earlier runs read it in ranges, if they did (the rest is fetched
    /// from its commit when online).
    fn partial_remote(&self, at: HubRepo, filename: &str) -> Option<RemoteFile> {
        let HubRepo {
            repo,
            kind,
            revision,
        } = at;
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
            let bar = match progress {
                true => crate::report::bar(self.size, &self.name, "bytes"),
                false => crate::report::Bar::hidden(),
            };
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
            self.check_sha256(&crate::io::hash::hex(&hasher.finalize()))?;
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
