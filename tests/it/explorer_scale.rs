//! Measures the explorer at a real run's scale (ignored by default; it takes minutes):
//!
//! ```sh
//! SAECOOC_SCALE_CAP=1000 SAECOOC_OLD_BIN=/path/to/older/saecooc \
//!   cargo test --release --offline --test it -- explorer_scale:: --ignored --nocapture
//! ```
//!
//! A wide SAE's results written in the real formats (about 7,500 subgraphs of 2–25 latents, 470
//! of them with PCA, sizes 4–13, each with between half the example cap and the cap of points),
//! exported by this saecooc (and by `SAECOOC_OLD_BIN` when given), served by the same binary's
//! `serve`, opened in headless Chromium. Prints and writes to `artifacts/explorer-scale-{cap}.json`
//! per binary: site size and files, export time, bytes transferred and time until the first
//! subgraph is drawn, mean time per subgraph switch, and after visiting 50 subgraphs (and a
//! garbage collection) the renderer's resident memory and JavaScript heap.

use crate::common::serve::ServeChild;
use crate::explorer_fixture::browser::{browser_or_skip, processes_with, Browser};
use crate::explorer_fixture::{write_wide, WideResults, WideSpec};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn scale_spec(cap: usize) -> WideSpec {
    let mut subgraphs = vec![
        (2, 4000),
        (3, 1500),
        (4, 600),
        (5, 400),
        (6, 300),
        (7, 200),
        (8, 150),
        (9, 100),
        (10, 80),
        (11, 60),
        (12, 50),
        (13, 47),
    ];
    subgraphs.extend((14..=25).map(|s| (s, 3)));
    WideSpec {
        subgraphs,
        pca: (4..=13).map(|s| (s, 47)).collect(),
        cap,
        n_batches: 400,
        seed: 3,
    }
}

/// Files and bytes under `dir`.
fn tree_size(dir: &Path) -> (u64, u64) {
    let mut total = (0, 0);
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            let (f, b) = tree_size(&p);
            total = (total.0 + f, total.1 + b);
        } else {
            total = (total.0 + 1, total.1 + e.metadata().unwrap().len());
        }
    }
    total
}

/// `bin serve` on `site`.
fn serve(bin: &Path, site: &Path) -> ServeChild {
    ServeChild::spawn(
        Command::new(bin)
            .args(["serve", "--port", "0", "--dir"])
            .arg(site)
            .stderr(Stdio::null()),
    )
}

/// Resident memory (kB) of each renderer process of `browser`.
fn renderer_rss_kb(browser: &Browser) -> Vec<u64> {
    processes_with(&browser.marker())
        .into_iter()
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains("--type=renderer"))
        })
        .filter_map(|pid| {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
            status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()
        })
        .collect()
}

/// Waits until subgraph `id` (of `size` latents and `points` points) is drawn; returns the
/// page's clock then (ms).
fn wait_drawn(browser: &Browser, size: usize, id: i64, points: usize) -> f64 {
    let script = format!(
        "return document.getElementById('sel-subgraph').value === '{id}' && \
         document.querySelectorAll('#graph circle.node').length === {size} && \
         document.querySelectorAll('#pca circle.point').length === {points} ? performance.now() : false;"
    );
    let started = Instant::now();
    loop {
        let v = browser.js(&script);
        if let Some(t) = v.as_f64() {
            return t;
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "subgraph {id} never drawn; errors: {}",
            browser.errors()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Exports `wide` with `bin` and measures the site in a browser.
fn measure(label: &str, bin: &Path, wide: &WideResults, work: &Path) -> Value {
    let site = work.join(format!("site-{label}"));
    let started = Instant::now();
    let out = Command::new(bin)
        .args(["--quiet", "export", "--results-dir"])
        .arg(&wide.root)
        .arg("--out")
        .arg(&site)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let export_s = started.elapsed().as_secs_f64();
    let (files, bytes) = tree_size(&site);
    let server = serve(bin, &site);
    let browser = Browser::start().unwrap_or_else(|e| panic!("{e}"));
    let first = wide.pca.iter().min_by_key(|p| (p.0, p.1)).unwrap();
    browser.goto(&server.url);
    let first_ms = wait_drawn(&browser, first.0, first.1, first.2);
    let first_bytes = browser.js(
        "return performance.getEntries().filter(e => e.transferSize !== undefined).reduce((s, e) => s + e.transferSize, 0);",
    );
    // 50 subgraphs, 5 of each size.
    let visits: Vec<&(usize, i64, usize)> = (4..=13)
        .flat_map(|s| wide.pca.iter().filter(move |p| p.0 == s).take(5))
        .collect();
    let mut switch_ms = Vec::new();
    for &&(size, id, points) in &visits {
        let t0 = browser
            .js(&format!(
                "const s = (window.SAECOOC.indexData || {{}}).saes[0]; \
                 location.hash = new URLSearchParams({{model: s.model, release: s.release, sae: s.sae, size: '{size}', subgraph: '{id}'}}).toString(); \
                 return performance.now();"
            ))
            .as_f64()
            .unwrap();
        switch_ms.push(wait_drawn(&browser, size, id, points) - t0);
    }
    browser.js("if (window.gc) { window.gc(); window.gc(); }");
    std::thread::sleep(Duration::from_secs(2));
    let heap = browser.js("return performance.memory ? performance.memory.usedJSHeapSize : null;");
    let rss = renderer_rss_kb(&browser);
    let errors = browser.errors();
    drop(browser);
    let result = json!({
        "binary": label,
        "site_files": files,
        "site_mb": bytes as f64 / 1e6,
        "export_s": export_s,
        "first_load_mb": first_bytes.as_f64().unwrap_or(0.0) / 1e6,
        "first_draw_ms": first_ms,
        "switch_ms_mean": switch_ms.iter().sum::<f64>() / switch_ms.len() as f64,
        "switch_ms_max": switch_ms.iter().cloned().fold(0.0, f64::max),
        "visited": visits.len(),
        "renderer_rss_mb_max": rss.iter().max().copied().unwrap_or(0) as f64 / 1024.0,
        "renderer_rss_mb_sum": rss.iter().sum::<u64>() as f64 / 1024.0,
        "js_heap_mb": heap.as_f64().unwrap_or(0.0) / 1e6,
        "errors": errors,
    });
    println!("{result}");
    let _ = std::fs::remove_dir_all(&site);
    result
}

#[test]
#[ignore = "takes minutes: run with --ignored to measure the explorer at scale"]
fn measure_explorer_at_scale() {
    let Some(browser) = browser_or_skip("measure_explorer_at_scale") else {
        return;
    };
    drop(browser);
    let cap: usize = std::env::var("SAECOOC_SCALE_CAP")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let work = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let wide = write_wide(&work.path().join("results"), &scale_spec(cap));
    let points: usize = wide.pca.iter().map(|p| p.2).sum();
    println!(
        "fixture: {} subgraphs of 2+ latents, {} with PCA, {points} points, cap {cap} ({:.0} s)",
        wide.table.len(),
        wide.pca.len(),
        started.elapsed().as_secs_f64()
    );
    let mut results = vec![measure(
        "this",
        Path::new(env!("CARGO_BIN_EXE_saecooc")),
        &wide,
        work.path(),
    )];
    if let Ok(old) = std::env::var("SAECOOC_OLD_BIN") {
        results.push(measure("old", &PathBuf::from(old), &wide, work.path()));
    }
    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    std::fs::write(
        artifacts.join(format!("explorer-scale-{cap}.json")),
        serde_json::to_vec_pretty(&json!({
            "cap": cap,
            "subgraphs": wide.table.len(),
            "with_pca": wide.pca.len(),
            "points": points,
            "results": results,
        }))
        .unwrap(),
    )
    .unwrap();
}
