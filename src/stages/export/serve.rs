//! `saecooc serve`: serves an exported site on 127.0.0.1 over HTTP/1.1, with hyper on a
//! single-threaded tokio runtime (files are read and compressed on tokio's blocking threads).
//! Text files go out gzip-compressed when the client accepts it.
//!
//! Clients that misbehave cannot starve it ([`Limits`]): the request line and headers are
//! bounded (more: 431 and the connection closed), they must arrive within a few seconds (also
//! the longest a kept-alive connection may wait idle), a connection lives a couple of minutes
//! at most, and a bounded number of connections is served at once (the others wait in the
//! listen queue, and so does the accept loop). Only GET and HEAD (others: 405). Only regular
//! files that lie under the site folder once symlinks are resolved, outside dot-files and
//! dot-folders (others: 404).

use crate::results::layout::site_files::INDEX_HTML;
use anyhow::{Context, Result};
use flate2::write::GzEncoder;
use flate2::Compression;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{
    HeaderValue, ACCEPT_ENCODING, ALLOW, CONTENT_ENCODING, CONTENT_TYPE, VARY,
    X_CONTENT_TYPE_OPTIONS,
};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::io::Write;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// What one client may take of the server.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Request line and headers, in bytes (more: 431).
    pub max_header_bytes: usize,
    /// Time to send the request line and headers, counted from the connection's start or the
    /// previous response (so also the idle time allowed between requests).
    pub header_timeout: Duration,
    /// How long a connection may live; then it is closed once the response under way is
    /// sent, or a quarter of this later at most (a client that does not read its response).
    pub connection_lifetime: Duration,
    /// Connections served at once.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_header_bytes: 16 << 10,
            header_timeout: Duration::from_secs(5),
            connection_lifetime: Duration::from_secs(120),
            max_connections: 2048,
        }
    }
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("json") => "application/json",
        Some("css") => "text/css",
        Some("png") => "image/png",
        _ => "application/octet-stream",
    }
}

/// Whether a file of this type is worth compressing (text, not images).
fn compressible(content_type: &str) -> bool {
    content_type.starts_with("text/") || content_type == "application/json"
}

/// `%XX` escapes decoded; None for a bad escape or a result that is not UTF-8.
fn percent_decode(path: &str) -> Option<String> {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Whether a path component may be served: a plain name that is not a dot-file or dot-folder.
fn servable(component: Component) -> bool {
    matches!(component, Component::Normal(name) if !name.to_string_lossy().starts_with('.'))
}

/// The file of the (canonical) site folder `root` for a request path (a folder means its
/// `index.html`): None for a path with `..`, `.` or a dot-name in it, for anything that,
/// symlinks resolved, lies outside `root` or in a dot-folder of it, and for what is not a file.
fn resolve(root: &Path, url_path: &str) -> Option<PathBuf> {
    let decoded = percent_decode(url_path)?;
    let mut rel = PathBuf::new();
    for part in decoded.split('/').filter(|p| !p.is_empty()) {
        if part.starts_with('.') || part.contains(['\\', '\0']) {
            return None;
        }
        rel.push(part);
    }
    let mut full = root.join(&rel).canonicalize().ok()?;
    if full.is_dir() {
        full = full.join(INDEX_HTML).canonicalize().ok()?;
    }
    let inside = full.strip_prefix(root).ok()?;
    (inside.components().all(servable) && full.is_file()).then_some(full)
}

/// Whether an `Accept-Encoding` value allows gzip (listed without `q=0`).
fn accepts_gzip(value: &str) -> bool {
    value.split(',').any(|item| {
        let mut parts = item.split(';').map(str::trim);
        parts.next().is_some_and(|c| c.eq_ignore_ascii_case("gzip"))
            && !parts.any(|p| p.replace(' ', "") == "q=0")
    })
}

fn gzip(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut encoder = GzEncoder::new(Vec::with_capacity(bytes.len() / 4), Compression::fast());
    encoder.write_all(bytes)?;
    encoder.finish()
}

/// A response ready to send.
struct Reply {
    status: StatusCode,
    content_type: &'static str,
    body: Vec<u8>,
    gzipped: bool,
    raw_len: usize,
}

impl Reply {
    fn text(status: StatusCode, text: &str) -> Self {
        Self {
            status,
            content_type: "text/plain; charset=utf-8",
            body: text.as_bytes().to_vec(),
            gzipped: false,
            raw_len: text.len(),
        }
    }

    fn into_response(self) -> Response<Full<Bytes>> {
        let mut response = Response::new(Full::new(Bytes::from(self.body)));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(self.content_type));
        headers.insert(VARY, HeaderValue::from_static("Accept-Encoding"));
        headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        if self.gzipped {
            headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        if self.status == StatusCode::METHOD_NOT_ALLOWED {
            headers.insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        }
        response
    }
}

/// The reply to a GET or HEAD of `url_path`: the file, compressed if `gzip` and worth it, or 404.
fn file_reply(root: &Path, url_path: &str, gzip_ok: bool) -> Reply {
    let found = resolve(root, url_path).and_then(|p| std::fs::read(&p).ok().map(|b| (p, b)));
    let Some((path, raw)) = found else {
        return Reply::text(StatusCode::NOT_FOUND, "not found");
    };
    let content_type = content_type(&path);
    let raw_len = raw.len();
    let compressed = (gzip_ok && compressible(content_type) && raw_len > 256)
        .then(|| gzip(&raw).ok())
        .flatten();
    Reply {
        status: StatusCode::OK,
        content_type,
        gzipped: compressed.is_some(),
        body: compressed.unwrap_or(raw),
        raw_len,
    }
}

/// Answers one request (the file read off the runtime's thread); logs it with `log`.
async fn answer(root: Arc<Path>, log: bool, request: Request<Incoming>) -> Reply {
    let method = request.method().clone();
    let url_path = request.uri().path().to_string();
    let gzip_ok = request
        .headers()
        .get_all(ACCEPT_ENCODING)
        .iter()
        .any(|v| v.to_str().is_ok_and(accepts_gzip));
    let reply = if method == Method::GET || method == Method::HEAD {
        let path = url_path.clone();
        tokio::task::spawn_blocking(move || file_reply(&root, &path, gzip_ok))
            .await
            .unwrap_or_else(|_| Reply::text(StatusCode::INTERNAL_SERVER_ERROR, "error"))
    } else {
        Reply::text(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD")
    };
    if log {
        crate::report::log(format_args!(
            "{method} {url_path} {} {} bytes{}",
            reply.status.as_u16(),
            reply.body.len(),
            if reply.gzipped {
                format!(" gzip (of {})", reply.raw_len)
            } else {
                String::new()
            }
        ));
    }
    reply
}

/// Raises the soft limit on open files (as far as the hard limit allows) so that `connections`
/// fit, each with a file being read, beside the server's own files; returns how many
/// connections do fit.
fn fit_open_files(connections: usize) -> usize {
    const OWN_FILES: u64 = 64;
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return connections;
        }
        let wanted = (2 * connections as u64 + OWN_FILES).min(limit.rlim_max);
        if limit.rlim_cur < wanted {
            let raised = libc::rlimit {
                rlim_cur: wanted,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit.rlim_cur = wanted;
            }
        }
    }
    (limit.rlim_cur.saturating_sub(OWN_FILES) as usize / 2).clamp(1, connections)
}

/// Accepts connections while a slot is free and serves each within the limits.
async fn accept_loop(
    listener: tokio::net::TcpListener,
    root: Arc<Path>,
    log: bool,
    limits: Limits,
) -> Result<()> {
    let slots = Arc::new(tokio::sync::Semaphore::new(fit_open_files(
        limits.max_connections,
    )));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_header_size(limits.max_header_bytes)
        .max_buf_size((4 * limits.max_header_bytes).max(8192));
    loop {
        let slot = Arc::clone(&slots).acquire_owned().await?;
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors, or a connection reset before it was taken: wait
                // rather than retry at once.
                crate::report::warning(format_args!("warning: cannot accept a connection: {e}"));
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let root = Arc::clone(&root);
        let service = hyper::service::service_fn(move |request| {
            let root = Arc::clone(&root);
            async move { Ok::<_, Infallible>(answer(root, log, request).await.into_response()) }
        });
        let connection = http.serve_connection(TokioIo::new(stream), service);
        let lifetime = limits.connection_lifetime;
        tokio::spawn(async move {
            let _slot = slot;
            let mut connection = std::pin::pin!(connection);
            let ended = match tokio::time::timeout(lifetime, connection.as_mut()).await {
                Ok(ended) => Some(ended),
                // Past its lifetime: the response under way may still finish, briefly.
                Err(_) => {
                    connection.as_mut().graceful_shutdown();
                    tokio::time::timeout(lifetime / 4, connection).await.ok()
                }
            };
            match ended {
                Some(Err(e)) if log => crate::report::log(format_args!("connection closed: {e}")),
                None if log => crate::report::log(format_args!(
                    "connection closed: open longer than {lifetime:?}"
                )),
                _ => {}
            }
        });
    }
}

/// Serves the site folder `root` on `listener` within `limits`, until the process ends.
pub fn serve_on(
    listener: std::net::TcpListener,
    root: &Path,
    log: bool,
    limits: &Limits,
) -> Result<()> {
    let root: Arc<Path> = Arc::from(
        root.canonicalize()
            .with_context(|| format!("cannot resolve {}", root.display()))?,
    );
    listener.set_nonblocking(true)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the server's runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        accept_loop(listener, root, log, limits.clone()).await
    })
}

/// Serves `root` on `127.0.0.1:port` until interrupted; prints the URL. With `log`, one line
/// per request on stderr.
pub fn serve(root: &Path, port: u16, log: bool) -> Result<()> {
    anyhow::ensure!(
        root.join(INDEX_HTML).is_file(),
        "{} has no {INDEX_HTML}: run `saecooc export` first",
        root.display()
    );
    let listener = std::net::TcpListener::bind(("127.0.0.1", port))
        .with_context(|| format!("cannot listen on 127.0.0.1:{port}"))?;
    crate::report::output(format_args!(
        "serving {} at http://127.0.0.1:{}/ (Ctrl-C to stop)",
        root.display(),
        listener.local_addr()?.port()
    ));
    serve_on(listener, root, log, &Limits::default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn paths_stay_inside_the_site_and_out_of_dot_folders() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("site");
        std::fs::create_dir_all(root.join("data/.data-new-1")).unwrap();
        std::fs::write(root.join("index.html"), "x").unwrap();
        std::fs::write(root.join("data/a b.js"), "x").unwrap();
        std::fs::write(root.join("data/.data-new-1/x.js"), "x").unwrap();
        std::fs::write(root.join(".saecooc-site.json"), "x").unwrap();
        std::fs::write(dir.path().join("secret"), "x").unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret"), root.join("data/link.js")).unwrap();
        std::os::unix::fs::symlink(root.join("data/.data-new-1"), root.join("data/hidden"))
            .unwrap();
        let root = root.canonicalize().unwrap();
        assert_eq!(
            resolve(&root, "/data/a%20b.js"),
            Some(root.join("data/a b.js"))
        );
        assert_eq!(resolve(&root, "/"), Some(root.join("index.html")));
        for refused in [
            "/../secret",
            "/data/../../secret",
            "/%2e%2e/secret",
            "/data/%2E%2E/%2e%2e/secret",
            "/data%2f..%2f..%2fsecret",
            "/data/link.js",
            "/data/hidden/x.js",
            "/data/.data-new-1/x.js",
            "/.saecooc-site.json",
            "/data/%zz",
            "/data/%ff.js",
        ] {
            assert_eq!(resolve(&root, refused), None, "{refused}");
        }
    }

    #[test]
    fn gzip_only_when_accepted() {
        assert!(accepts_gzip(" gzip, deflate, br"));
        assert!(accepts_gzip("br;q=1.0, GZIP;q=0.5"));
        assert!(!accepts_gzip("gzip;q=0, br"));
        assert!(!accepts_gzip("deflate"));
    }

    #[test]
    fn text_goes_out_compressed_and_decompresses_to_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let text = "SAECOOC.subgraph(\"k\", [1, 2, 3]);\n".repeat(100);
        std::fs::write(root.join("a.js"), &text).unwrap();
        let r = file_reply(&root, "/a.js", true);
        assert!(r.gzipped && r.body.len() < text.len() / 4);
        let mut back = String::new();
        flate2::read::GzDecoder::new(&r.body[..])
            .read_to_string(&mut back)
            .unwrap();
        assert_eq!(back, text);
        let r = file_reply(&root, "/a.js", false);
        assert!(!r.gzipped);
        assert_eq!(r.body, text.as_bytes());
        assert_eq!(
            file_reply(&root, "/nope.js", true).status,
            StatusCode::NOT_FOUND
        );
    }

    /// A server on a free port with `limits`, in a thread of this test process.
    fn start(root: &Path, limits: Limits) -> std::net::SocketAddr {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let root = root.to_path_buf();
        std::thread::spawn(move || serve_on(listener, &root, false, &limits));
        addr
    }

    #[test]
    fn connections_beyond_the_limit_wait_for_a_free_slot() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("index.html"), "hello").unwrap();
        let limits = Limits {
            max_connections: 2,
            header_timeout: Duration::from_millis(1500),
            ..Limits::default()
        };
        let addr = start(dir.path(), limits);
        let idle: Vec<_> = (0..2)
            .map(|_| std::net::TcpStream::connect(addr).unwrap())
            .collect();
        std::thread::sleep(Duration::from_millis(200));
        let started = std::time::Instant::now();
        let mut third = std::net::TcpStream::connect(addr).unwrap();
        third
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        third
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut response = String::new();
        third.read_to_string(&mut response).unwrap();
        let waited = started.elapsed();
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        assert!(response.ends_with("hello"), "{response}");
        // Served only once the two idle connections were dropped (1.5 s after they opened).
        assert!(
            waited > Duration::from_millis(900) && waited < Duration::from_secs(5),
            "{waited:?}"
        );
        drop(idle);
    }

    #[test]
    fn a_busy_connection_is_closed_after_its_lifetime() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("index.html"), "hello").unwrap();
        let limits = Limits {
            connection_lifetime: Duration::from_secs(1),
            ..Limits::default()
        };
        let addr = start(dir.path(), limits);
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let started = std::time::Instant::now();
        let mut answered = 0;
        let mut buf = [0u8; 4096];
        // Kept alive with a request every 100 ms: answered until the lifetime is over.
        while started.elapsed() < Duration::from_secs(5) {
            if stream
                .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                .is_err()
            {
                break;
            }
            match stream.read(&mut buf) {
                Ok(n) if n > 0 => answered += 1,
                _ => break,
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let lived = started.elapsed();
        assert!(answered >= 5, "{answered} answers");
        assert!(
            lived > Duration::from_millis(900) && lived < Duration::from_secs(3),
            "{lived:?}"
        );
    }
}
