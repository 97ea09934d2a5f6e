//! Headless Chromium through chromedriver (WebDriver over HTTP on localhost), for the explorer's
//! tests. The browser runs with a profile folder of its own; when the [`Browser`] is dropped
//! (test passed, failed or panicked) the session is ended, chromedriver's process group killed,
//! and every process still using that profile killed by id, so no Chromium outlives a test.
//!
//! Needs Debian's `chromium` and `chromium-driver` (SAECOOC_CHROMEDRIVER names another
//! chromedriver). Without them a test is skipped with a line on the terminal saying so, unless
//! SAECOOC_REQUIRE_BROWSER is set (not "0"), as `.ci/run` does, which makes it a failure.

use crate::common::skip::{skip_or_fail, REQUIRE_BROWSER};
use serde_json::{json, Value};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CHROMEDRIVERS: [&str; 2] = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"];
const CHROMIUMS: [&str; 4] = [
    "/usr/bin/chromium",
    "/usr/bin/chromium-browser",
    "/usr/lib/chromium/chromium",
    "/usr/bin/google-chrome",
];

pub struct Browser {
    driver: Child,
    /// `http://127.0.0.1:{port}/session/{id}`.
    pub base: String,
    session_url: Option<String>,
    profile: tempfile::TempDir,
}

fn first_file(candidates: &[&str]) -> Option<PathBuf> {
    candidates
        .iter()
        .map(Path::new)
        .find(|p| p.is_file())
        .map(Path::to_path_buf)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn agent() -> ureq::Agent {
    ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(120)))
            .http_status_as_error(false)
            .build(),
    )
}

fn post(url: &str, body: Value) -> Result<Value, String> {
    let mut resp = agent()
        .post(url)
        .send_json(&body)
        .map_err(|e| format!("POST {url}: {e}"))?;
    let status = resp.status();
    let value = resp
        .body_mut()
        .with_config()
        .limit(1 << 30)
        .read_json::<Value>()
        .map_err(|e| format!("POST {url}: {e}"))?["value"]
        .clone();
    if status.is_success() {
        Ok(value)
    } else {
        Err(format!("POST {url}: {status}: {value}"))
    }
}

/// A started browser, or None after [`skip_or_fail`] says that `test` is skipped and why (a
/// failure instead when SAECOOC_REQUIRE_BROWSER is set).
pub fn browser_or_skip(test: &str) -> Option<Browser> {
    match Browser::start() {
        Ok(b) => Some(b),
        Err(why) => {
            skip_or_fail(
                test,
                &why,
                "Install chromium and chromium-driver (apt-get install chromium chromium-driver) to run it",
                REQUIRE_BROWSER,
            );
            None
        }
    }
}

/// Pids of the live processes whose command line contains `marker`.
pub fn processes_with(marker: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(marker))
        })
        .collect()
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session.
    pub fn start() -> Result<Self, String> {
        let chromedriver = match std::env::var_os("SAECOOC_CHROMEDRIVER") {
            Some(path) => Some(PathBuf::from(path))
                .filter(|p| p.is_file())
                .ok_or("no chromedriver at SAECOOC_CHROMEDRIVER")?,
            None => first_file(&CHROMEDRIVERS)
                .ok_or("no chromedriver (looked in /usr/bin and /usr/lib/chromium)")?,
        };
        let chromium = first_file(&CHROMIUMS).ok_or("no chromium binary found")?;
        let port = free_port();
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", chromedriver.display()))?;
        let profile = tempfile::Builder::new()
            .prefix("saecooc-chromium-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let mut browser = Self {
            driver,
            base: format!("http://127.0.0.1:{port}"),
            session_url: None,
            profile,
        };
        let started = Instant::now();
        while agent()
            .get(&format!("{}/status", browser.base))
            .call()
            .is_err()
        {
            if started.elapsed() > Duration::from_secs(20) {
                return Err("chromedriver did not answer within 20 s".into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let caps = json!({"capabilities": {"alwaysMatch": {"goog:chromeOptions": {
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1400,1500", "--allow-file-access-from-files",
                     "--js-flags=--expose-gc", "--enable-precise-memory-info",
                     format!("--user-data-dir={}", browser.profile.path().display())]
        }}}});
        let session = post(&format!("{}/session", browser.base), caps)?["sessionId"]
            .as_str()
            .ok_or("chromedriver gave no session id")?
            .to_string();
        browser.base = format!("{}/session/{session}", browser.base);
        browser.session_url = Some(browser.base.clone());
        Ok(browser)
    }

    /// What identifies this browser's processes on their command lines.
    pub fn marker(&self) -> String {
        self.profile.path().display().to_string()
    }

    /// The pid of chromedriver.
    pub fn driver_pid(&self) -> u32 {
        self.driver.id()
    }

    pub fn post(&self, path: &str, body: Value) -> Value {
        post(&format!("{}/{path}", self.base), body).unwrap_or_else(|e| panic!("{e}"))
    }

    pub fn goto(&self, url: &str) {
        self.post("url", json!({ "url": url }));
    }

    /// Runs `script` (a function body) in the page and returns its result.
    pub fn js(&self, script: &str) -> Value {
        self.post("execute/sync", json!({"script": script, "args": []}))
    }

    /// Waits until `script` returns true.
    pub fn wait_for(&self, script: &str) {
        let started = Instant::now();
        while self.js(script) != Value::Bool(true) {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "timed out waiting for: {script}\npage errors: {}",
                self.errors()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn errors(&self) -> Value {
        self.js("return window.__errors;")
    }

    /// A real (WebDriver) click on the first element matching `css`.
    pub fn click(&self, css: &str) {
        let element = self.post("element", json!({"using": "css selector", "value": css}));
        let id = element
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no element {css}"))
            .to_string();
        self.post(&format!("element/{id}/click"), json!({}));
    }

    /// A PNG of the window.
    pub fn screenshot(&self) -> Vec<u8> {
        use base64::Engine;
        let mut resp = agent()
            .get(&format!("{}/screenshot", self.base))
            .call()
            .unwrap();
        let shot: Value = resp
            .body_mut()
            .with_config()
            .limit(1 << 30)
            .read_json()
            .unwrap();
        base64::engine::general_purpose::STANDARD
            .decode(shot["value"].as_str().unwrap())
            .unwrap()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(url) = self.session_url.take() {
            let _ = agent().delete(&url).call();
        }
        let pid = self.driver.id() as libc::pid_t;
        // SAFETY: signals to the process group this test started (chromedriver's own).
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let marker = self.marker();
        let started = Instant::now();
        loop {
            let left = processes_with(&marker);
            if left.is_empty() || started.elapsed() > Duration::from_secs(10) {
                break;
            }
            for pid in left {
                // SAFETY: only processes running with this test's own profile folder.
                unsafe {
                    libc::kill(pid as libc::pid_t, libc::SIGKILL);
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
