//! `saecooc serve` against clients that misbehave, on loopback: a huge request line is refused
//! without the server's memory growing, idle and trickling connections are closed, a thousand
//! idle connections neither starve a normal request nor make the accept loop spin (also when
//! the server runs out of file descriptors), and only files inside the site are served (no
//! symlink out, no `..`, no dot-files), to GET and HEAD only.

use crate::common::serve::ServeChild;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// `saecooc serve --port 0` on `site`, optionally with a soft and a hard limit on open files
/// (None: as this process's); killed when dropped.
struct Server {
    process: ServeChild,
    addr: SocketAddr,
}

impl Server {
    fn start(site: &Path, open_files: Option<(u64, Option<u64>)>) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_saecooc"));
        command
            .args(["serve", "--port", "0", "--dir"])
            .arg(site)
            .stderr(Stdio::null());
        if let Some((soft, hard)) = open_files {
            // SAFETY: getrlimit and setrlimit are async-signal-safe; they only limit the child.
            unsafe {
                command.pre_exec(move || {
                    let mut limit = libc::rlimit {
                        rlim_cur: 0,
                        rlim_max: 0,
                    };
                    if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    limit.rlim_max = hard.unwrap_or(limit.rlim_max);
                    limit.rlim_cur = soft.min(limit.rlim_max);
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let process = ServeChild::spawn(&mut command);
        let port: u16 = process
            .url
            .strip_prefix("http://127.0.0.1:")
            .and_then(|rest| rest.split('/').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("not a loopback URL: {}", process.url));
        Self {
            process,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        }
    }

    /// A field of /proc/PID/status, in its unit (kB for memory).
    fn status(&self, field: &str) -> u64 {
        let text =
            std::fs::read_to_string(format!("/proc/{}/status", self.process.child.id())).unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("no {field} in {text}"))
    }

    fn rss_kib(&self) -> u64 {
        self.status("VmRSS")
    }

    /// CPU time used so far (user + system), in clock ticks.
    fn cpu_ticks(&self) -> u64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.process.child.id())).unwrap();
        let fields: Vec<&str> = stat
            .rsplit(')')
            .next()
            .unwrap()
            .split_whitespace()
            .collect();
        fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
    }

    /// Sends `raw` and reads the whole response (the server closes after it).
    fn exchange(&self, raw: &[u8]) -> Vec<u8> {
        let mut stream = TcpStream::connect(self.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        stream.write_all(raw).unwrap();
        let mut out = Vec::new();
        stream.read_to_end(&mut out).unwrap();
        out
    }

    /// `method path` with `Connection: close`, as (status line, headers, body).
    fn request(&self, method: &str, path: &str, headers: &str) -> (String, String, Vec<u8>) {
        let raw = format!(
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\n{headers}Connection: close\r\n\r\n"
        );
        let out = self.exchange(raw.as_bytes());
        let end = out
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(&out)));
        let head = String::from_utf8_lossy(&out[..end]).to_string();
        let (status, headers) = head.split_once("\r\n").unwrap_or((&head, ""));
        (
            status.to_string(),
            headers.to_lowercase(),
            out[end + 4..].to_vec(),
        )
    }
}

/// A small site: index.html, a data file, a PNG; beside it a file outside the site.
fn site(dir: &Path) -> std::path::PathBuf {
    let site = dir.join("site");
    std::fs::create_dir_all(site.join("data/.data-new-123")).unwrap();
    std::fs::write(
        site.join("index.html"),
        "<!DOCTYPE html><title>site</title>",
    )
    .unwrap();
    std::fs::write(
        site.join("data/index.js"),
        "SAECOOC.index(\"\", {});\n".repeat(50),
    )
    .unwrap();
    std::fs::write(site.join("data/a.png"), b"\x89PNG\r\n\x1a\n").unwrap();
    std::fs::write(site.join("data/.data-new-123/index.js"), "staging").unwrap();
    std::fs::write(site.join(".saecooc-site.json"), "{}").unwrap();
    std::fs::write(dir.join("secret.txt"), "SECRET").unwrap();
    std::os::unix::fs::symlink(dir.join("secret.txt"), site.join("data/leak.js")).unwrap();
    std::os::unix::fs::symlink(dir, site.join("data/up")).unwrap();
    site
}

/// Lets this test process hold `n` more sockets (the soft limit raised toward the hard one).
fn allow_open_files(n: u64) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: only reads and writes the struct passed.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        assert!(
            limit.rlim_max >= n + 64,
            "this test needs {} open files; the hard limit is {}",
            n + 64,
            limit.rlim_max
        );
        limit.rlim_cur = limit.rlim_cur.max(n + 64);
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
    }
}

/// Opens up to `n` connections that send nothing (each given `wait` to connect).
fn idle_connections(addr: SocketAddr, n: usize, wait: Duration) -> Vec<TcpStream> {
    (0..n)
        .filter_map(|_| TcpStream::connect_timeout(&addr, wait).ok())
        .collect()
}

/// Whether the server closed `stream` within `limit` (it reads end-of-file or a reset);
/// while waiting, `trickle` sends one header byte every 300 ms.
fn closed_within(stream: &mut TcpStream, limit: Duration, trickle: bool) -> Option<Duration> {
    let started = Instant::now();
    stream
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buf = [0u8; 1024];
    while started.elapsed() < limit {
        if trickle && stream.write_all(b"x").is_err() {
            return Some(started.elapsed());
        }
        match stream.read(&mut buf) {
            Ok(0) => return Some(started.elapsed()),
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return Some(started.elapsed()),
        }
    }
    None
}

#[test]
fn a_huge_request_line_is_refused_and_memory_stays_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&site(dir.path()), None);
    let before = server.rss_kib();

    // Headers over the limit, all sent: 431.
    let big_header = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(20 << 10)
    );
    let reply = String::from_utf8_lossy(&server.exchange(big_header.as_bytes())).to_string();
    assert!(reply.starts_with("HTTP/1.1 431"), "{reply}");

    // A 64 MiB request line: refused long before its end (the write fails, or the answer is a
    // 4xx), and the server does not keep it.
    let mut stream = TcpStream::connect(server.addr).unwrap();
    stream
        .set_write_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let chunk = vec![b'a'; 1 << 20];
    let mut sent = 0usize;
    if stream.write_all(b"GET /").is_ok() {
        while sent < 64 << 20 && stream.write_all(&chunk).is_ok() {
            sent += chunk.len();
        }
    }
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 4"),
        "{answer}"
    );
    let after = server.rss_kib();
    assert!(
        after < before + 16 * 1024,
        "RSS grew from {before} kB to {after} kB after a 64 MiB request line ({sent} bytes taken)"
    );
    drop(stream);
    let (status, _, body) = server.request("GET", "/", "");
    assert!(status.contains(" 200"), "{status}");
    assert!(body.starts_with(b"<!DOCTYPE html>"));
}

#[test]
fn idle_and_trickling_connections_are_closed() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&site(dir.path()), None);
    let mut idle = TcpStream::connect(server.addr).unwrap();
    let mut trickling = TcpStream::connect(server.addr).unwrap();
    trickling.write_all(b"GET / HTTP/1.1\r\nX-Slow: ").unwrap();
    let waited = closed_within(&mut idle, Duration::from_secs(20), false);
    assert!(
        waited.is_some_and(|w| w < Duration::from_secs(10)),
        "an idle connection was left open: {waited:?}"
    );
    let waited = closed_within(&mut trickling, Duration::from_secs(20), true);
    assert!(
        waited.is_some_and(|w| w < Duration::from_secs(10)),
        "a trickling connection was left open: {waited:?}"
    );
}

#[test]
fn a_thousand_idle_connections_neither_starve_a_request_nor_spin() {
    let dir = tempfile::tempdir().unwrap();
    allow_open_files(1200);
    // A usual soft limit on open files (the server may raise it toward the hard one).
    let server = Server::start(&site(dir.path()), Some((1024, None)));
    let idle = idle_connections(server.addr, 1100, Duration::from_millis(300));
    let cpu_before = server.cpu_ticks();
    let started = Instant::now();
    let (status, _, _) = server.request("GET", "/data/index.js", "");
    let took = started.elapsed();
    assert!(status.contains(" 200"), "{status}");
    assert!(took < Duration::from_secs(3), "the GET took {took:?}");
    std::thread::sleep(Duration::from_secs(2));
    let cpu = server.cpu_ticks() - cpu_before;
    // 100 ticks a second: a spinning accept loop would use about 200.
    assert!(cpu < 40, "the server used {cpu} ticks of CPU in 2 s");
    assert!(idle.len() >= 1000, "only {} connections opened", idle.len());
    drop(idle);
}

#[test]
fn out_of_file_descriptors_the_accept_loop_waits() {
    let dir = tempfile::tempdir().unwrap();
    allow_open_files(300);
    // So few files that the server cannot take every connection.
    let server = Server::start(&site(dir.path()), Some((96, Some(96))));
    let idle = idle_connections(server.addr, 200, Duration::from_millis(50));
    let cpu_before = server.cpu_ticks();
    std::thread::sleep(Duration::from_secs(2));
    let cpu = server.cpu_ticks() - cpu_before;
    assert!(cpu < 40, "the server used {cpu} ticks of CPU in 2 s");
    drop(idle);
    // Once the idle connections are gone, requests are served again.
    let (status, _, _) = server.request("GET", "/", "");
    assert!(status.contains(" 200"), "{status}");
}

#[test]
fn only_files_inside_the_site_are_served_to_get_and_head() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&site(dir.path()), None);
    for path in [
        "/../secret.txt",
        "/data/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/data/%2E%2E/%2e%2e/secret.txt",
        "/data%2f..%2f..%2fsecret.txt",
        "/data/leak.js",
        "/data/up/secret.txt",
        "/data/.data-new-123/index.js",
        "/.saecooc-site.json",
        "/nope.js",
    ] {
        let (status, _, body) = server.request("GET", path, "");
        assert!(
            status.contains(" 404") || status.contains(" 403") || status.contains(" 400"),
            "{path}: {status}"
        );
        assert!(!String::from_utf8_lossy(&body).contains("SECRET"), "{path}");
        assert!(
            !String::from_utf8_lossy(&body).contains("staging"),
            "{path}"
        );
    }
    let (status, headers, body) = server.request("GET", "/", "");
    assert!(status.contains(" 200"), "{status}");
    assert!(headers.contains("content-type: text/html; charset=utf-8"));
    assert!(body.starts_with(b"<!DOCTYPE html>"));
    let (status, headers, body) = server.request("GET", "/data/a.png", "Accept-Encoding: gzip\r\n");
    assert!(status.contains(" 200"), "{status}");
    assert!(headers.contains("content-type: image/png") && !headers.contains("content-encoding"));
    assert_eq!(body, b"\x89PNG\r\n\x1a\n");
    let (status, headers, body) =
        server.request("GET", "/data/index.js?v=1", "Accept-Encoding: gzip\r\n");
    assert!(status.contains(" 200"), "{status}");
    assert!(headers.contains("content-type: text/javascript; charset=utf-8"));
    assert!(headers.contains("content-encoding: gzip"), "{headers}");
    let mut text = String::new();
    flate2::read::GzDecoder::new(&body[..])
        .read_to_string(&mut text)
        .unwrap();
    assert_eq!(
        text,
        std::fs::read_to_string(dir.path().join("site/data/index.js")).unwrap()
    );

    let (status, headers, body) = server.request("HEAD", "/data/index.js", "");
    assert!(status.contains(" 200"), "{status}");
    assert!(
        headers.contains(&format!("content-length: {}", text.len())),
        "{headers}"
    );
    assert!(body.is_empty());
    for method in ["POST", "PUT", "DELETE", "OPTIONS"] {
        let (status, headers, _) = server.request(method, "/index.html", "Content-Length: 0\r\n");
        assert!(status.contains(" 405"), "{method}: {status}");
        assert!(headers.contains("allow: get, head"), "{headers}");
    }
}
