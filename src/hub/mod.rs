//! Where inputs come from: a local path or a Hugging Face hub repository.
//!
//! Hub files are fetched with `hf-hub` into the standard cache (`$HF_HOME/hub`, the layout
//! Python's `huggingface_hub` uses, so files downloaded by either are shared). `HF_TOKEN`
//! authenticates gated repos (e.g. `google/gemma-2-2b`); `HF_HUB_OFFLINE=1` uses only the cache.

mod cache;
mod ranged;

pub use ranged::RemoteFile;

use crate::io::pyfmt::check_name;
use anyhow::{bail, Context, Result};
use hf_hub::api::sync::{Api, ApiBuilder, ApiError};
use hf_hub::{Cache, Repo, RepoType};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// A hub repo at a revision: where [`Hub::get`] and the other file methods look.
#[derive(Debug, Clone, Copy)]
pub struct HubRepo<'a> {
    pub repo: &'a str,
    pub kind: RepoType,
    /// A branch, tag or commit.
    pub revision: &'a str,
}

impl<'a> HubRepo<'a> {
    /// The model repo `repo` at `revision`.
    pub fn model(repo: &'a str, revision: &'a str) -> Self {
        Self {
            repo,
            kind: RepoType::Model,
            revision,
        }
    }

    /// The dataset repo `repo` at `revision`.
    pub fn dataset(repo: &'a str, revision: &'a str) -> Self {
        Self {
            repo,
            kind: RepoType::Dataset,
            revision,
        }
    }
}

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

/// Checks a revision and a file name (from a config, or from a repo's own files such as a
/// model's shard index) before they become folders of the cache: neither may leave it.
fn check_request(repo: &str, revision: &str, filename: &str) -> Result<()> {
    check_name(&format!("the revision of hub repo {repo}"), revision)?;
    check_name(&format!("a file name of hub repo {repo}"), filename)
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
    pub fn get(&self, at: HubRepo, filename: &str) -> Result<PathBuf> {
        check_request(at.repo, at.revision, filename)?;
        if let Some(path) = self.cached(at, filename) {
            return Ok(path);
        }
        self.online(at.repo, at.revision, filename)?;
        let remote = self.remote(at, filename)?;
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

    /// Like [`Hub::get`] but `None` when the file is not in the repo (HTTP 404, recorded in
    /// the cache so that it is not asked again) or, offline, not in the cache. Other failures
    /// (access denied, network) also give `None`, so that the caller's fallback runs, after a
    /// warning naming the cause.
    pub fn try_get(&self, at: HubRepo, filename: &str) -> Option<PathBuf> {
        if self.known_absent(at, filename) {
            return None;
        }
        match self.get(at, filename) {
            Ok(path) => Some(path),
            Err(err) => match err.downcast_ref::<ApiError>().map(failure) {
                Some(Failure::Status(404)) => {
                    self.record_absent(at, filename);
                    None
                }
                // Offline and not cached.
                None if self.offline() => None,
                // A cut or failed download, access denied, no network.
                _ => {
                    crate::report::warning(format_args!("warning: {err:#}"));
                    None
                }
            },
        }
    }

    /// Whether `HF_HUB_OFFLINE` is set: only the local cache is read.
    pub fn offline(&self) -> bool {
        self.api.is_none()
    }
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
