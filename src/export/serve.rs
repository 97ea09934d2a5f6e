//! `saecooc serve`: serves an exported site on localhost (a minimal static HTTP/1.1 server,
//! one thread per connection). Text files go out gzip-compressed when the client accepts it.

use anyhow::{Context, Result};
use flate2::write::GzEncoder;
use flate2::Compression;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

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

/// The file under `root` for a request path; None for paths that leave the folder.
fn resolve(root: &Path, url: &str) -> Option<PathBuf> {
    let path = url.split(['?', '#']).next().unwrap_or("/");
    let rel = Path::new(path.trim_start_matches('/'));
    if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return None;
    }
    let full = root.join(rel);
    Some(if full.is_dir() {
        full.join("index.html")
    } else {
        full
    })
}

/// What the client asked for.
struct Request {
    method: String,
    url: String,
    gzip: bool,
}

fn read_request(stream: &TcpStream) -> Result<Request> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut words = line.split_whitespace();
    let method = words.next().unwrap_or("GET").to_string();
    let url = words.next().unwrap_or("/").to_string();
    let mut gzip = false;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header == "\r\n" || header == "\n" {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.trim().eq_ignore_ascii_case("accept-encoding") {
                gzip = accepts_gzip(value);
            }
        }
    }
    Ok(Request { method, url, gzip })
}

/// Whether an `Accept-Encoding` value allows gzip (listed without `q=0`).
fn accepts_gzip(value: &str) -> bool {
    value.split(',').any(|item| {
        let mut parts = item.split(';').map(str::trim);
        parts.next().is_some_and(|c| c.eq_ignore_ascii_case("gzip"))
            && !parts.any(|p| p.replace(' ', "") == "q=0")
    })
}

fn gzip(bytes: &[u8]) -> Result<Vec<u8>> {
    let mut encoder = GzEncoder::new(Vec::with_capacity(bytes.len() / 4), Compression::fast());
    encoder.write_all(bytes)?;
    Ok(encoder.finish()?)
}

/// A response ready to send.
struct Response {
    status: &'static str,
    content_type: &'static str,
    body: Vec<u8>,
    gzipped: bool,
    raw_len: usize,
}

fn respond(root: &Path, request: &Request) -> Result<Response> {
    let found = resolve(root, &request.url).and_then(|p| std::fs::read(&p).ok().map(|b| (p, b)));
    let Some((path, raw)) = found else {
        return Ok(Response {
            status: "404 Not Found",
            content_type: "text/plain; charset=utf-8",
            body: b"not found".to_vec(),
            gzipped: false,
            raw_len: 9,
        });
    };
    let content_type = content_type(&path);
    let raw_len = raw.len();
    let gzipped = request.gzip && compressible(content_type) && raw_len > 256;
    let body = if gzipped { gzip(&raw)? } else { raw };
    Ok(Response {
        status: "200 OK",
        content_type,
        body,
        gzipped,
        raw_len,
    })
}

fn handle(root: &Path, mut stream: TcpStream, log: bool) -> Result<()> {
    let request = read_request(&stream)?;
    let response = respond(root, &request)?;
    write!(
        stream,
        "HTTP/1.1 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n{}Vary: Accept-Encoding\r\nConnection: close\r\n\r\n",
        response.status,
        response.content_type,
        response.body.len(),
        if response.gzipped {
            "Content-Encoding: gzip\r\n"
        } else {
            ""
        }
    )?;
    if request.method != "HEAD" {
        stream.write_all(&response.body)?;
    }
    if log {
        eprintln!(
            "{} {} {} {} bytes{}",
            request.method,
            request.url,
            &response.status[..3],
            response.body.len(),
            if response.gzipped {
                format!(" gzip (of {})", response.raw_len)
            } else {
                String::new()
            }
        );
    }
    Ok(())
}

/// Serves `root` on `127.0.0.1:port` until interrupted; prints the URL. With `log`, one line
/// per request on stderr.
pub fn serve(root: &Path, port: u16, log: bool) -> Result<()> {
    anyhow::ensure!(
        root.join("index.html").is_file(),
        "{} has no index.html: run `saecooc export` first",
        root.display()
    );
    let listener = TcpListener::bind(("127.0.0.1", port))
        .with_context(|| format!("cannot listen on 127.0.0.1:{port}"))?;
    println!(
        "serving {} at http://127.0.0.1:{}/ (Ctrl-C to stop)",
        root.display(),
        listener.local_addr()?.port()
    );
    let root: Arc<Path> = Arc::from(root);
    for stream in listener.incoming().flatten() {
        let root = Arc::clone(&root);
        std::thread::spawn(move || {
            if let Err(e) = handle(&root, stream, log) {
                eprintln!("warning: request failed: {e}");
            }
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn paths_stay_inside_the_site() {
        let root = Path::new("/site");
        assert_eq!(
            resolve(root, "/data/index.js?x=1"),
            Some(PathBuf::from("/site/data/index.js"))
        );
        assert_eq!(resolve(root, "/../etc/passwd"), None);
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
        let text = "SAECOOC.subgraph(\"k\", [1, 2, 3]);\n".repeat(100);
        std::fs::write(dir.path().join("a.js"), &text).unwrap();
        let ask = |gzip| Request {
            method: "GET".into(),
            url: "/a.js".into(),
            gzip,
        };
        let r = respond(dir.path(), &ask(true)).unwrap();
        assert!(r.gzipped && r.body.len() < text.len() / 4);
        let mut back = String::new();
        flate2::read::GzDecoder::new(&r.body[..])
            .read_to_string(&mut back)
            .unwrap();
        assert_eq!(back, text);
        let r = respond(dir.path(), &ask(false)).unwrap();
        assert!(!r.gzipped);
        assert_eq!(r.body, text.as_bytes());
        let missing = Request {
            url: "/nope.js".into(),
            ..ask(true)
        };
        assert_eq!(
            respond(dir.path(), &missing).unwrap().status,
            "404 Not Found"
        );
    }
}
