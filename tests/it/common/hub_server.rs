//! A local stand-in for huggingface.co, enough for hf-hub's sync client: file downloads through
//! `/{repo}/resolve/{revision}/{path}` (models) and `/datasets/{repo}/resolve/...`, with
//! `Range` support and the `x-repo-commit` / `etag` headers hf-hub reads, large files
//! redirected to a "CDN" path as the hub does for LFS files, and repo listings through
//! `/api/models/{repo}[/revision/{rev}]` and `/api/datasets/...`. Unknown repos and files are
//! 404; a gated repo answers 401 unless the request carries `Authorization: Bearer <token>`.
//! A repo's files are those of `main` (also served at its commit) unless it is given files on
//! other revisions (e.g. `refs/convert/parquet`, which hf-hub sends as `refs%2Fconvert%2Fparquet`);
//! any other revision is 404, as on the hub.
//! Every request is logged for the tests to inspect, with the body bytes sent. A fault can be
//! injected: the next body of a given file stops after a given number of bytes (the connection
//! is closed, as a cut network would).
//!
//! One thread per connection, `Connection: close`, GET only.

use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Whether a file is stored with git LFS (as a typical `.gitattributes` has it): the hub
/// answers these with a 302 to the CDN (here `/cdn/{sha256}`) and the sha256 as
/// `x-linked-etag`; other files come straight back with a git blob id as `etag`.
pub fn is_lfs(path: &str) -> bool {
    [
        ".safetensors",
        ".npz",
        ".parquet",
        ".bin",
        ".gguf",
        ".zst",
        ".gz",
    ]
    .iter()
    .any(|e| path.ends_with(e))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Model,
    Dataset,
}

/// One repo of the hub: its files on `main`, and on other revisions if given.
#[derive(Debug, Clone)]
pub struct HubRepo {
    pub kind: Kind,
    pub id: String,
    /// The commit of `main`: 40 hex digits, derived from the repo id.
    pub commit: String,
    /// The files on `main`.
    pub files: BTreeMap<String, Vec<u8>>,
    /// The files on other revisions (branch or ref names such as `refs/convert/parquet`).
    pub revisions: BTreeMap<String, BTreeMap<String, Vec<u8>>>,
    /// The token a gated repo accepts.
    pub token: Option<String>,
}

impl HubRepo {
    pub fn new(kind: Kind, id: &str) -> Self {
        let commit = hex(&Sha256::digest(format!("{kind:?}/{id}").as_bytes()))[..40].to_string();
        Self {
            kind,
            id: id.to_string(),
            commit,
            files: BTreeMap::new(),
            revisions: BTreeMap::new(),
            token: None,
        }
    }

    pub fn file(mut self, path: &str, bytes: Vec<u8>) -> Self {
        self.files.insert(path.to_string(), bytes);
        self
    }

    /// A file on revision `revision` (not `main`).
    pub fn file_at(mut self, revision: &str, path: &str, bytes: Vec<u8>) -> Self {
        assert_ne!(revision, "main", "main's files are added with `file`");
        self.revisions
            .entry(revision.to_string())
            .or_default()
            .insert(path.to_string(), bytes);
        self
    }

    /// The commit of `revision` (`main`'s is [`HubRepo::commit`]; others are derived from it).
    pub fn commit_of(&self, revision: &str) -> String {
        if revision == "main" {
            return self.commit.clone();
        }
        let key = format!("{:?}/{}@{revision}", self.kind, self.id);
        hex(&Sha256::digest(key.as_bytes()))[..40].to_string()
    }

    /// The commit and files of `revision` (a name, or a commit), if the repo has it.
    fn at(&self, revision: &str) -> Option<(String, &BTreeMap<String, Vec<u8>>)> {
        if revision == "main" || revision == self.commit {
            return Some((self.commit.clone(), &self.files));
        }
        if let Some(files) = self.revisions.get(revision) {
            return Some((self.commit_of(revision), files));
        }
        self.revisions
            .iter()
            .find(|(name, _)| self.commit_of(name) == revision)
            .map(|(name, files)| (self.commit_of(name), files))
    }

    /// Every file of local folder `dir` (not recursive), under `prefix` in the repo.
    pub fn folder(mut self, prefix: &str, dir: &std::path::Path) -> Self {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                let key = if prefix.is_empty() {
                    name
                } else {
                    format!("{prefix}/{name}")
                };
                self.files.insert(key, std::fs::read(&path).unwrap());
            }
        }
        self
    }

    /// Makes the repo gated: only requests with `Authorization: Bearer {token}` get in.
    pub fn gated(mut self, token: &str) -> Self {
        self.token = Some(token.to_string());
        self
    }
}

/// One request the server answered.
#[derive(Debug, Clone)]
pub struct Logged {
    pub method: String,
    pub path: String,
    pub range: Option<String>,
    pub authorized: bool,
    pub status: u16,
    /// Body bytes sent.
    pub bytes: usize,
    /// The sha256 of the file the body is (part of).
    pub file: Option<String>,
}

/// The running server; stops when dropped.
pub struct HubServer {
    port: u16,
    log: Arc<Mutex<Vec<Logged>>>,
    stop: Arc<AtomicBool>,
    faults: Faults,
}

/// Pending cuts: the sha256 of a file, and the body bytes sent before the connection closes.
type Faults = Arc<Mutex<Vec<(String, usize)>>>;

struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// The sha256 of the file the body is (part of).
    file: Option<String>,
}

impl Response {
    fn error(status: u16, message: &str) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: format!("{{\"error\":\"{message}\"}}").into_bytes(),
            file: None,
        }
    }
}

impl HubServer {
    pub fn start(repos: Vec<HubRepo>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let log = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let repos = Arc::new(repos);
        let faults: Faults = Arc::default();
        let (log2, stop2, faults2) = (log.clone(), stop.clone(), faults.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (repos, log, faults) = (repos.clone(), log2.clone(), faults2.clone());
                std::thread::spawn(move || {
                    let _ = serve(stream, port, &repos, &log, &faults);
                });
            }
        });
        Self {
            port,
            log,
            stop,
            faults,
        }
    }

    /// The next response carrying more than one byte of the file `bytes` sends only `after`
    /// bytes of its body, then closes the connection.
    pub fn cut_once(&self, bytes: &[u8], after: usize) {
        let sha = hex(&Sha256::digest(bytes));
        self.faults.lock().unwrap().push((sha, after));
    }

    /// Body bytes sent of the file `bytes` (by the CDN or the resolve path), leaving out the
    /// one-byte metadata probes (`Range: bytes=0-0`).
    pub fn bytes_served(&self, bytes: &[u8]) -> usize {
        let sha = hex(&Sha256::digest(bytes));
        self.requests()
            .iter()
            .filter(|r| r.file.as_ref() == Some(&sha) && r.range.as_deref() != Some("bytes=0-0"))
            .map(|r| r.bytes)
            .sum()
    }

    /// The value for `HF_ENDPOINT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The requests answered so far, in order.
    pub fn requests(&self) -> Vec<Logged> {
        self.log.lock().unwrap().clone()
    }

    pub fn clear_log(&self) {
        self.log.lock().unwrap().clear();
    }
}

impl Drop for HubServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn serve(
    stream: TcpStream,
    port: u16,
    repos: &[HubRepo],
    log: &Mutex<Vec<Logged>>,
    faults: &Mutex<Vec<(String, usize)>>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("").to_string();
    let mut headers = BTreeMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let path = target.split('?').next().unwrap_or("").to_string();
    let range = headers.get("range").cloned();
    let auth = headers.get("authorization").cloned();
    let response = if method == "GET" {
        route(&path, range.as_deref(), auth.as_deref(), port, repos)
    } else {
        Response::error(405, "method not allowed")
    };
    let cut = response.file.as_ref().and_then(|sha| {
        let mut faults = faults.lock().unwrap();
        let at = faults
            .iter()
            .position(|(f, _)| f == sha && response.body.len() > 1)?;
        Some(faults.remove(at).1)
    });
    let sent = cut.unwrap_or(response.body.len()).min(response.body.len());
    log.lock().unwrap().push(Logged {
        method,
        path,
        range,
        authorized: auth.is_some(),
        status: response.status,
        bytes: sent,
        file: response.file.clone(),
    });
    let reason = match response.status {
        200 => "OK",
        206 => "Partial Content",
        302 => "Found",
        401 => "Unauthorized",
        404 => "Not Found",
        416 => "Range Not Satisfiable",
        _ => "Error",
    };
    let mut out = format!("HTTP/1.1 {} {reason}\r\n", response.status);
    for (k, v) in &response.headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n",
        response.body.len()
    ));
    let mut stream = stream;
    stream.write_all(out.as_bytes())?;
    stream.write_all(&response.body[..sent])?;
    stream.flush()?;
    if cut.is_some() {
        stream.shutdown(std::net::Shutdown::Both)?;
    }
    Ok(())
}

/// `/api/{models|datasets}/{owner}/{name}[/revision/{rev}]`, `/cdn/{sha256}`,
/// `[/datasets]/{owner}/{name}/resolve/{rev}/{path}`.
fn route(
    path: &str,
    range: Option<&str>,
    auth: Option<&str>,
    port: u16,
    repos: &[HubRepo],
) -> Response {
    let find = |kind: Kind, id: &str| repos.iter().find(|r| r.kind == kind && r.id == id);
    let allowed = |repo: &HubRepo| match &repo.token {
        None => true,
        Some(t) => auth == Some(format!("Bearer {t}").as_str()),
    };
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    if let Some(sha) = path.strip_prefix("/cdn/") {
        return match repos
            .iter()
            .flat_map(|r| {
                r.files
                    .values()
                    .chain(r.revisions.values().flat_map(|f| f.values()))
            })
            .find(|b| hex(&Sha256::digest(b)) == sha)
        {
            Some(bytes) => file_response(bytes, range, Vec::new()),
            None => Response::error(404, "no such blob"),
        };
    }
    if segs.first() == Some(&"api") && segs.len() >= 4 {
        let kind = match segs[1] {
            "models" => Kind::Model,
            "datasets" => Kind::Dataset,
            _ => return Response::error(404, "unknown repo type"),
        };
        let id = format!("{}/{}", segs[2], segs[3]);
        let Some(repo) = find(kind, &id) else {
            return Response::error(404, "Repository not found");
        };
        if !allowed(repo) {
            return Response::error(401, "Access to this repo is restricted");
        }
        // `/api/{kind}/{owner}/{name}` is `main`; `.../revision/{rev}` names one.
        let revision = match segs.get(4..) {
            Some([]) | None => "main".to_string(),
            Some(["revision", rev]) => unescape(rev),
            Some(_) => return Response::error(404, "not found"),
        };
        let Some((commit, files)) = repo.at(&revision) else {
            return Response::error(404, "Revision not found");
        };
        let siblings: Vec<serde_json::Value> = files
            .keys()
            .map(|f| serde_json::json!({ "rfilename": f }))
            .collect();
        let body = serde_json::json!({ "id": repo.id, "sha": commit, "siblings": siblings });
        return Response {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_string().into_bytes(),
            file: None,
        };
    }
    let (kind, segs) = match segs.first() {
        Some(&"datasets") => (Kind::Dataset, &segs[1..]),
        _ => (Kind::Model, &segs[..]),
    };
    if segs.len() < 5 || segs[2] != "resolve" {
        return Response::error(404, "not found");
    }
    let id = format!("{}/{}", segs[0], segs[1]);
    let file = segs[4..].join("/");
    let Some(repo) = find(kind, &id) else {
        return Response::error(404, "Repository not found");
    };
    if !allowed(repo) {
        return Response::error(401, "Access to this repo is restricted");
    }
    let Some((commit, files)) = repo.at(&unescape(segs[3])) else {
        return Response::error(404, "Revision not found");
    };
    let Some(bytes) = files.get(&file) else {
        return Response::error(404, "Entry not found");
    };
    let mut headers = vec![("x-repo-commit".to_string(), commit)];
    if is_lfs(&file) {
        // As the hub does for LFS files: a redirect to the CDN, the sha256 as linked etag.
        let sha = hex(&Sha256::digest(bytes));
        headers.push(("x-linked-etag".into(), format!("\"{sha}\"")));
        headers.push(("x-linked-size".into(), bytes.len().to_string()));
        headers.push(("etag".into(), format!("\"{sha}\"")));
        headers.push((
            "location".into(),
            format!("http://127.0.0.1:{port}/cdn/{sha}"),
        ));
        return Response {
            status: 302,
            headers,
            body: Vec::new(),
            file: None,
        };
    }
    headers.push(("etag".into(), format!("\"{}\"", etag(&file, bytes))));
    file_response(bytes, range, headers)
}

/// The etag the server gives file `path` with content `bytes` (the name of its blob in the
/// cache): the sha256 of an LFS file, else a git-style blob id (40 hex digits).
pub fn etag(path: &str, bytes: &[u8]) -> String {
    if is_lfs(path) {
        return hex(&Sha256::digest(bytes));
    }
    let mut h = Sha256::new();
    h.update(format!("blob {}\0", bytes.len()).as_bytes());
    h.update(bytes);
    hex(&h.finalize())[..40].to_string()
}

/// A revision as it appears in a URL path: hf-hub writes `/` in it as `%2F`.
fn unescape(revision: &str) -> String {
    revision.replace("%2F", "/").replace("%2f", "/")
}

/// The bytes, or the part a `Range: bytes=a-b` / `bytes=a-` asks for.
fn file_response(
    bytes: &[u8],
    range: Option<&str>,
    mut headers: Vec<(String, String)>,
) -> Response {
    let size = bytes.len();
    let file = Some(hex(&Sha256::digest(bytes)));
    let Some(spec) = range.and_then(|r| r.strip_prefix("bytes=")) else {
        return Response {
            status: 200,
            headers,
            body: bytes.to_vec(),
            file,
        };
    };
    let (a, b) = spec.split_once('-').unwrap_or((spec, ""));
    let start: usize = a.parse().unwrap_or(0);
    let end: usize = b
        .parse()
        .unwrap_or(size.saturating_sub(1))
        .min(size.saturating_sub(1));
    if start >= size || start > end {
        headers.push(("content-range".into(), format!("bytes */{size}")));
        return Response {
            status: 416,
            headers,
            body: Vec::new(),
            file: None,
        };
    }
    headers.push((
        "content-range".into(),
        format!("bytes {start}-{end}/{size}"),
    ));
    Response {
        status: 206,
        headers,
        body: bytes[start..=end].to_vec(),
        file,
    }
}

// Running saecooc against the server.

/// The `.npz` outputs of a run: file name, then its arrays.
pub type Outputs = Vec<(String, Vec<(String, saecooc::io::npy::NpyArray)>)>;

/// Runs `saecooc cooc` in `dir` with only the hub variables given in `env` set.
pub fn run(dir: &Path, name: &str, config: &str, env: &[(&str, &str)]) -> (Output, PathBuf) {
    let config_path = dir.join(format!("{name}.toml"));
    std::fs::write(&config_path, config).unwrap();
    let results = dir.join(format!("results-{name}"));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_saecooc"));
    cmd.current_dir(dir)
        .args(["--quiet", "cooc", "--config"])
        .arg(&config_path)
        .arg("--results-dir")
        .arg(&results);
    for var in [
        "HF_HOME",
        "HF_ENDPOINT",
        "HF_TOKEN",
        "HF_HUB_OFFLINE",
        "HF_HUB_CACHE",
        "HUGGINGFACE_HUB_CACHE",
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("NO_PROXY", "127.0.0.1")
        .env("no_proxy", "127.0.0.1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    (cmd.output().unwrap(), results)
}

/// Every `.npz` of a run, by file name.
pub fn npz_outputs(results: &Path, n_batches: usize) -> Outputs {
    let dir = super::results_dir(results, n_batches);
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".npz"))
        .collect();
    names.sort();
    assert!(!names.is_empty(), "no .npz in {}", dir.display());
    names
        .into_iter()
        .map(|n| {
            let arrays = saecooc::io::npz::read_npz(&dir.join(&n)).unwrap();
            (n, arrays)
        })
        .collect()
}

/// `$HF_HOME` for runs in `dir`.
pub fn hf_home(dir: &Path) -> String {
    dir.join("hf-home").display().to_string()
}
