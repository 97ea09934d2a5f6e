//! Where inputs come from: a local path or a Hugging Face hub repository.
//!
//! Hub files are fetched with `hf-hub` into the standard cache (`$HF_HOME/hub`, the layout
//! Python's `huggingface_hub` uses, so files downloaded by either are shared). `HF_TOKEN`
//! authenticates gated repos (e.g. `google/gemma-2-2b`); `HF_HUB_OFFLINE=1` uses only the cache.

use anyhow::{bail, Context, Result};
use hf_hub::api::sync::{Api, ApiBuilder, ApiError};
use hf_hub::{Cache, Repo, RepoType};
use std::path::{Path, PathBuf};

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
        Ok(Self { api, cache })
    }

    fn repo(repo: &str, kind: RepoType, revision: &str) -> Repo {
        Repo::with_revision(repo.to_string(), kind, revision.to_string())
    }

    /// The local path of `filename` in a hub repo, downloading it if needed. A download error
    /// keeps hf-hub's [`hf_hub::api::sync::ApiError`] as its source.
    pub fn get(
        &self,
        repo: &str,
        kind: RepoType,
        revision: &str,
        filename: &str,
    ) -> Result<PathBuf> {
        if let Some(path) = self
            .cache
            .repo(Self::repo(repo, kind, revision))
            .get(filename)
        {
            return Ok(path);
        }
        let Some(api) = &self.api else {
            bail!(
                "{filename} of hub repo {repo} (revision {revision}) is not in the local cache \
                 ({}) and HF_HUB_OFFLINE is set: unset HF_HUB_OFFLINE to download it",
                self.cache.path().display()
            );
        };
        let api_repo = api.repo(Self::repo(repo, kind, revision));
        let url = api_repo.url(filename);
        api_repo
            .get(filename)
            .map_err(|err| download_error(err, repo, revision, filename, &url))
    }

    /// Like [`Hub::get`] but `None` when the file is not in the repo (HTTP 404) or, offline, not
    /// in the cache. Other failures (access denied, network) also give `None`, so that the
    /// caller's fallback runs, after a warning naming the cause.
    pub fn try_get(
        &self,
        repo: &str,
        kind: RepoType,
        revision: &str,
        filename: &str,
    ) -> Option<PathBuf> {
        match self.get(repo, kind, revision, filename) {
            Ok(path) => Some(path),
            Err(err) => {
                let absent = match err.downcast_ref::<ApiError>() {
                    // Offline and not cached.
                    None => true,
                    Some(e) => matches!(failure(e), Failure::Status(404)),
                };
                if !absent {
                    eprintln!("warning: {err:#}");
                }
                None
            }
        }
    }

    /// Whether `HF_HUB_OFFLINE` is set: only the local cache is read.
    pub fn offline(&self) -> bool {
        self.api.is_none()
    }

    /// All file names of a hub repo (from the API, or from the cached snapshot when offline).
    pub fn list(&self, repo: &str, kind: RepoType, revision: &str) -> Result<Vec<String>> {
        if let Some(api) = &self.api {
            let info = api
                .repo(Self::repo(repo, kind, revision))
                .info()
                .with_context(|| format!("cannot list files of Hugging Face repo {repo}"))?;
            return Ok(info.siblings.into_iter().map(|s| s.rfilename).collect());
        }
        let repo_obj = Self::repo(repo, kind, revision);
        let snapshot_root = self
            .cache
            .path()
            .join(repo_obj.folder_name())
            .join("snapshots");
        let refs = self
            .cache
            .path()
            .join(repo_obj.folder_name())
            .join("refs")
            .join(revision);
        let commit = std::fs::read_to_string(&refs).unwrap_or_else(|_| revision.to_string());
        let snapshot = snapshot_root.join(commit.trim());
        let mut files = Vec::new();
        collect_files(&snapshot, &snapshot, &mut files).with_context(|| {
            format!("hub repo {repo} is not in the local cache and HF_HUB_OFFLINE is set")
        })?;
        files.sort();
        Ok(files)
    }
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
