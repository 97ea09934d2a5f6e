//! The exported explorer in a real browser: headless Chromium driven through chromedriver
//! (WebDriver over HTTP). Loads the site from disk, checks there are no console or script
//! errors, clicks a PCA point and checks the bar chart appears and the graph is coloured by
//! that token's activations; keeps a screenshot in `artifacts/explorer.png`.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them and sets
//! SAECOOC_REQUIRE_BROWSER=1 so that a missing browser fails there instead of skipping).

mod common;

use base64::Engine;
use common::{assert_ok, pca_config, prepare, saecooc};
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Driver {
    child: Child,
    base: String,
    session: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = ureq::delete(&format!("{}/session/{}", self.base, self.session)).call();
        let _ = self.child.kill();
    }
}

fn post(url: &str, body: Value) -> Value {
    let mut resp = ureq::post(url)
        .send_json(&body)
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    resp.body_mut().read_json::<Value>().unwrap()["value"].clone()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Driver {
    fn start(chromedriver: &str) -> Self {
        let port = free_port();
        let child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        while ureq::get(&format!("{base}/status")).call().is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "chromedriver did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let caps = json!({"capabilities": {"alwaysMatch": {"goog:chromeOptions": {
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1500",
                     "--allow-file-access-from-files"]
        }}}});
        let session = post(&format!("{base}/session"), caps)["sessionId"]
            .as_str()
            .expect("a WebDriver session")
            .to_string();
        let mut driver = Self {
            child,
            base,
            session,
        };
        driver.base = format!("{}/session/{}", driver.base, driver.session);
        driver
    }

    fn js(&self, script: &str) -> Value {
        post(
            &format!("{}/execute/sync", self.base),
            json!({"script": script, "args": []}),
        )
    }

    fn wait_for(&self, script: &str) {
        let started = Instant::now();
        while self.js(script) != Value::Bool(true) {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "timed out waiting for: {script}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn errors(&self) -> Value {
        self.js("return window.__errors;")
    }
}

fn find_chromedriver() -> Option<String> {
    ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
        .iter()
        .find(|p| Path::new(p).is_file())
        .map(|p| p.to_string())
}

#[test]
fn explorer_works_in_a_real_browser() {
    let Some(chromedriver) = find_chromedriver() else {
        assert!(
            std::env::var("SAECOOC_REQUIRE_BROWSER").is_err(),
            "chromedriver not found (apt-get install chromium chromium-driver)"
        );
        eprintln!("skipped: no chromedriver (apt-get install chromium chromium-driver)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (p, results) = prepare(dir.path());
    std::fs::write(dir.path().join("pca.toml"), pca_config(&p, 6, 4, 150)).unwrap();
    let run = |args: &[&str]| {
        let out = saecooc(args).output().unwrap();
        assert_ok(&out);
    };
    let results_arg = results.to_str().unwrap();
    run(&[
        "--quiet",
        "pca",
        "--config",
        dir.path().join("pca.toml").to_str().unwrap(),
        "--results-dir",
        results_arg,
    ]);
    let site = dir.path().join("site");
    run(&[
        "--quiet",
        "export",
        "--results-dir",
        results_arg,
        "--out",
        site.to_str().unwrap(),
    ]);

    let driver = Driver::start(&chromedriver);
    let url = format!("file://{}", site.join("index.html").display());
    post(&format!("{}/url", driver.base), json!({ "url": url }));
    driver.wait_for("return document.querySelectorAll('#pca circle.point').length > 0;");
    assert_eq!(driver.errors(), json!([]), "errors while loading");
    let before = driver.js(
        "return {bars: document.querySelectorAll('#bars rect.bar').length, \
         coloured: Array.from(document.querySelectorAll('#graph circle.node')).filter(c => c.getAttribute('fill') !== '#ffffff').length, \
         nodes: document.querySelectorAll('#graph circle.node').length};",
    );
    assert_eq!(before["bars"], 0, "{before}");
    assert_eq!(before["coloured"], 0, "{before}");
    let nodes = before["nodes"].as_u64().unwrap();
    assert!(nodes >= 2, "{before}");

    // A real click on a point of the PCA plot.
    let element = post(
        &format!("{}/element", driver.base),
        json!({"using": "css selector", "value": "#pca circle.point"}),
    );
    let id = element
        .as_object()
        .unwrap()
        .values()
        .next()
        .unwrap()
        .as_str()
        .unwrap()
        .to_string();
    post(&format!("{}/element/{id}/click", driver.base), json!({}));
    driver.wait_for("return document.querySelectorAll('#bars rect.bar').length > 0;");
    let after = driver.js(
        "return {bars: document.querySelectorAll('#bars rect.bar').length, \
         coloured: Array.from(document.querySelectorAll('#graph circle.node')).filter(c => c.getAttribute('fill') !== '#ffffff').length, \
         hash: location.hash, info: document.getElementById('point-info').textContent};",
    );
    assert_eq!(after["bars"].as_u64().unwrap(), nodes, "{after}");
    assert!(after["coloured"].as_u64().unwrap() >= 1, "{after}");
    assert!(
        after["hash"].as_str().unwrap().contains("point=0"),
        "{after}"
    );
    assert!(
        after["info"].as_str().unwrap().starts_with("Token: "),
        "{after}"
    );

    // The state is in the URL: reloading it shows the same point.
    let shared = driver.js("return document.getElementById('share').value;");
    post(
        &format!("{}/url", driver.base),
        json!({ "url": "about:blank" }),
    );
    post(&format!("{}/url", driver.base), json!({ "url": shared }));
    driver.wait_for("return document.querySelectorAll('#bars rect.bar').length > 0;");
    assert_eq!(driver.errors(), json!([]), "errors after clicking");

    let shot = ureq::get(&format!("{}/screenshot", driver.base))
        .call()
        .unwrap()
        .body_mut()
        .read_json::<Value>()
        .unwrap();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(shot["value"].as_str().unwrap())
        .unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    std::fs::write(artifacts.join("explorer.png"), &bytes).unwrap();
}
