//! `saecooc serve`: serves an exported site on localhost (a minimal static HTTP/1.1 server).

use anyhow::{Context, Result};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Component, Path, PathBuf};

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

fn handle(root: &Path, stream: TcpStream) -> Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let url = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header == "\r\n" {
            break;
        }
    }
    let mut stream = stream;
    match resolve(root, &url).and_then(|p| std::fs::read(&p).ok().map(|b| (p, b))) {
        Some((path, body)) => {
            write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                content_type(&path),
                body.len()
            )?;
            stream.write_all(&body)?;
        }
        None => {
            let body = b"not found";
            write!(
                stream,
                "HTTP/1.1 404 Not Found\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )?;
            stream.write_all(body)?;
        }
    }
    Ok(())
}

/// Serves `root` on `127.0.0.1:port` until interrupted; prints the URL.
pub fn serve(root: &Path, port: u16) -> Result<()> {
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
    for stream in listener.incoming().flatten() {
        if let Err(e) = handle(root, stream) {
            eprintln!("warning: request failed: {e}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside_the_site() {
        let root = Path::new("/site");
        assert_eq!(
            resolve(root, "/data/index.js?x=1"),
            Some(PathBuf::from("/site/data/index.js"))
        );
        assert_eq!(resolve(root, "/../etc/passwd"), None);
    }
}
