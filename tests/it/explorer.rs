//! The exported explorer, in a real browser (headless Chromium through chromedriver; see
//! `explorer_fixture/browser.rs` for how it is started, skipped and cleaned up) and on disk:
//!
//! - at the sizes where it used to break (a wide SAE written in the real formats, subgraphs of
//!   4 to 25 latents), served by `saecooc serve`: the first page loads only the indexes and one
//!   subgraph (resource timing and the server's log), gzip-compressed; for every subgraph with
//!   PCA the bar labels and graph labels do not overlap, the context above the bars is wholly
//!   visible with its token marked, the selected PCA point is the topmost element; every
//!   subgraph is reachable through the table's pages, also with the "has PCA" filter;
//! - on the real pipeline's outputs, opened from disk: no console errors, a real click, bars and
//!   graph colouring, reload from the shared URL; after a second `pca` run the export shows that
//!   run and only it;
//! - a folder with two runs and no manifest: both exported, the newest shown first, and said so;
//! - a subspace analysed by the real `subspace` stage: its page shows every example and the
//!   custom prompts' tokens (marked), its representative points and `--points`, and its figures;
//! - the figures of `stats` (every PNG its output manifest lists, with the page and CSV of the
//!   same name) and of `graphs` appear, loaded, in the page;
//! - a subgraph of one latent is reported as such instead of plotted, one of two latents is
//!   shown as PC1 vs PC2 with a note (its PC3 carries no variance).

use crate::common;
use crate::common::serve::ServeChild;
use crate::common::{assert_ok, pca_config, prepare, saecooc};
use crate::explorer_fixture::browser::{browser_or_skip, processes_with, Browser};
use crate::explorer_fixture::{write_another_run, write_wide, WideResults, WideSpec};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Reads a site data file `SAECOOC.{f}("{key}", {...});` as (key, value).
fn read_call(path: &Path) -> (String, Value) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let open = text.find('(').unwrap();
    let close = text.rfind(");").unwrap();
    let args: Value = serde_json::from_str(&format!("[{}]", &text[open + 1..close])).unwrap();
    (args[0].as_str().unwrap().to_string(), args[1].clone())
}

fn run_ok(args: &[&str]) -> std::process::Output {
    let out = saecooc(args).output().unwrap();
    assert_ok(&out);
    out
}

fn export(results: &Path, site: &Path) -> std::process::Output {
    run_ok(&[
        "export",
        "--results-dir",
        results.to_str().unwrap(),
        "--out",
        site.to_str().unwrap(),
    ])
}

/// The one SAE's entry of `data/index.js` and its own index.
fn sae_index(site: &Path) -> (Value, Value) {
    let (_, index) = read_call(&site.join("data/index.js"));
    let entry = index["saes"][0].clone();
    let (_, sae) = read_call(&site.join(entry["file"].as_str().unwrap()));
    (entry, sae)
}

/// `saecooc serve --log` on a free port, killed when dropped.
struct Served {
    server: ServeChild,
    log: PathBuf,
}

impl Served {
    fn start(site: &Path, log: PathBuf) -> Self {
        let server = ServeChild::spawn(
            saecooc(&["serve", "--port", "0", "--log", "--dir"])
                .arg(site)
                .stderr(std::fs::File::create(&log).unwrap()),
        );
        Self { server, log }
    }

    /// The request paths logged so far (favicon requests left out).
    fn requests(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            // Request lines only: the log also notes connections the browser closed early.
            .filter(|l| l.starts_with("GET ") || l.starts_with("HEAD "))
            .filter_map(|l| l.split_whitespace().nth(1).map(String::from))
            .filter(|p| p != "/favicon.ico")
            .collect()
    }
}

/// Shows subgraph `id` of `size` through the URL fragment and waits until it is drawn.
fn show(browser: &Browser, run: &str, size: usize, id: i64) -> String {
    let script = format!(
        "const s = SAECOOC.indexData.saes[0]; \
         const h = '#' + new URLSearchParams({{model: s.model, release: s.release, sae: s.sae, run: '{run}', size: '{size}', subgraph: '{id}'}}).toString(); \
         if (h !== location.hash) {{ SAECOOC.shown = null; location.hash = h; }} \
         return s.key + '/{run}/{id}';"
    );
    let key = browser.js(&script).as_str().unwrap().to_string();
    browser.wait_for(&format!("return SAECOOC.shown === '{key}';"));
    key
}

/// Clicks PCA point `i` (through the page: it may lie under other points) and waits for the
/// bar chart.
fn select_point(browser: &Browser, i: usize) {
    browser.js(&format!(
        "document.querySelector('#pca circle.point[data-i=\"{i}\"]').dispatchEvent(new MouseEvent('click', {{bubbles: true}}));"
    ));
    browser.wait_for(&format!(
        "const c = document.querySelector('#pca circle.selected'); \
         return !!c && c.getAttribute('data-i') === '{i}' && document.querySelectorAll('#bars rect.bar').length > 0;"
    ));
}

/// Overlaps among the boxes of `a` (and between `a` and `b`), in page pixels (more than
/// half a pixel each way counts), and boxes of `a` outside the svg `within`.
const LAYOUT_CHECK: &str = r#"
const box = e => { const r = e.getBoundingClientRect(); return {l: r.left, t: r.top, r: r.right, b: r.bottom, what: e.textContent || e.getAttribute('data-id')}; };
const hit = (p, q) => Math.min(p.r, q.r) - Math.max(p.l, q.l) > 0.5 && Math.min(p.b, q.b) - Math.max(p.t, q.t) > 0.5;
const check = (a, b, within) => {
  const A = Array.from(document.querySelectorAll(a)).map(box), B = b ? Array.from(document.querySelectorAll(b)).map(box) : [];
  const W = document.querySelector(within).getBoundingClientRect(), out = [];
  A.forEach((p, i) => {
    A.slice(i + 1).forEach(q => { if (hit(p, q)) out.push(p.what + ' overlaps ' + q.what); });
    B.forEach(q => { if (hit(p, q)) out.push(p.what + ' overlaps node ' + q.what); });
    if (p.l < W.left - 0.5 || p.r > W.right + 0.5 || p.t < W.top - 0.5 || p.b > W.bottom + 0.5) out.push(p.what + ' outside');
  });
  return {count: A.length, problems: out};
};
"#;

/// Asserts what the issue found broken, for the shown subgraph with point `i` selected.
fn assert_readable(browser: &Browser, size: usize, context: &str, token: &str) {
    let what = format!("subgraph of {size} latents");
    let bars = browser.js(&format!(
        "{LAYOUT_CHECK} return check('#bars text.bar-label', null, '#bars');"
    ));
    assert_eq!(bars["count"], size, "{what}: bar labels {bars}");
    assert_eq!(bars["problems"], json!([]), "{what}: bar labels {bars}");
    let graph = browser.js(&format!(
        "{LAYOUT_CHECK} return check('#graph text.label', '#graph circle.node', '#graph');"
    ));
    assert_eq!(graph["count"], size, "{what}: graph labels {graph}");
    assert_eq!(graph["problems"], json!([]), "{what}: graph labels {graph}");
    // The layout uses the panel: nodes spread over most of its height and width.
    let spread = browser.js(
        "const svg = document.getElementById('graph').getBoundingClientRect(); \
         const r = Array.from(document.querySelectorAll('#graph circle.node')).map(c => c.getBoundingClientRect()); \
         return [(Math.max(...r.map(x => x.bottom)) - Math.min(...r.map(x => x.top))) / svg.height, \
                 (Math.max(...r.map(x => x.right)) - Math.min(...r.map(x => x.left))) / svg.width];",
    );
    if size >= 7 {
        for (axis, v) in ["height", "width"].iter().zip(spread.as_array().unwrap()) {
            assert!(
                v.as_f64().unwrap() > 0.6,
                "{what}: nodes use {v} of the graph's {axis}"
            );
        }
    }
    // The context: wrapped, wholly inside its panel, the token marked.
    let shown = browser.js(
        "const b = document.getElementById('bar-context'), r = b.getBoundingClientRect(), \
         p = document.getElementById('bars-panel').getBoundingClientRect(), m = b.querySelector('mark'); \
         return {hidden: b.hidden, text: b.textContent, mark: m && m.textContent, \
                 overflow: b.scrollWidth - b.clientWidth, overflowY: b.scrollHeight - b.clientHeight, \
                 inside: r.left >= p.left && r.right <= p.right && r.top >= p.top && r.bottom <= p.bottom, \
                 lines: Math.round(r.height / parseFloat(getComputedStyle(b).lineHeight))};",
    );
    let expected = context.replacen(&format!("|{token}|"), token, 1);
    assert_eq!(shown["hidden"], false, "{what}: {shown}");
    assert_eq!(
        shown["text"],
        expected.replace('\n', "\\n"),
        "{what}: {shown}"
    );
    assert_eq!(shown["mark"], token, "{what}: {shown}");
    assert!(shown["overflow"].as_i64().unwrap() <= 0, "{what}: {shown}");
    assert!(shown["overflowY"].as_i64().unwrap() <= 0, "{what}: {shown}");
    assert_eq!(shown["inside"], true, "{what}: {shown}");
    if context.len() > 200 {
        assert!(
            shown["lines"].as_i64().unwrap() >= 2,
            "{what}: not wrapped: {shown}"
        );
    }
    // The selected point is on top of the points drawn at the same place.
    let top = browser.js(
        "const c = document.querySelector('#pca circle.selected'); c.scrollIntoView({block: 'center'}); \
         const r = c.getBoundingClientRect(), x = (r.left + r.right) / 2, y = (r.top + r.bottom) / 2; \
         return {top: document.elementFromPoint(x, y) === c, \
                 under: document.elementsFromPoint(x, y).filter(e => e.classList.contains('point')).length};",
    );
    assert_eq!(top["top"], true, "{what}: selected point hidden: {top}");
    assert!(top["under"].as_u64().unwrap() >= 6, "{what}: {top}");
}

/// The subgraph ids on every page of the table, paging with real clicks.
fn table_ids(browser: &Browser) -> Vec<i64> {
    let mut ids = Vec::new();
    loop {
        let page = browser.js(
            "return {ids: Array.from(document.querySelectorAll('#all tbody tr')).map(r => +r.getAttribute('data-id')), \
                     last: document.getElementById('page-next').disabled, info: document.getElementById('page-info').textContent};",
        );
        ids.extend(
            page["ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_i64().unwrap()),
        );
        if page["last"] == true {
            break;
        }
        browser.click("#page-next");
        assert!(ids.len() < 100_000, "the table never ends: {page}");
    }
    ids.sort();
    ids
}

fn wide_spec() -> WideSpec {
    WideSpec {
        subgraphs: vec![
            (2, 60),
            (3, 30),
            (4, 12),
            (5, 6),
            (7, 5),
            (10, 4),
            (13, 4),
            (18, 3),
            (25, 3),
        ],
        pca: vec![(4, 3), (5, 2), (7, 2), (10, 2), (13, 2), (18, 1), (25, 2)],
        cap: 300,
        n_batches: 8,
        seed: 7,
    }
}

#[test]
fn explorer_at_scale_in_a_real_browser() {
    let dir = tempfile::tempdir().unwrap();
    let wide: WideResults = write_wide(&dir.path().join("results"), &wide_spec());
    let site = dir.path().join("site");
    let out = export(&wide.root, &site);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("PCA run 300-example cap, nbatch 8 (the only run)"),
        "{stdout}"
    );
    let Some(browser) = browser_or_skip("explorer_at_scale_in_a_real_browser") else {
        return;
    };
    let marker = browser.marker();
    let served = Served::start(&site, dir.path().join("serve.log"));
    let (entry, _) = sae_index(&site);
    let key = entry["key"].as_str().unwrap().to_string();
    let run = "300cap_nbatch_8";

    // First load: the page, the two indexes and the first subgraph, compressed.
    browser.goto(&served.server.url);
    let first = wide.pca.iter().min_by_key(|p| (p.0, p.1)).unwrap();
    browser.wait_for(&format!(
        "return SAECOOC.shown === '{key}/{run}/{}';",
        first.1
    ));
    let resources = browser.js(
        "return performance.getEntriesByType('resource').filter(e => !e.name.startsWith('data:')) \
         .map(e => ({path: new URL(e.name).pathname, encoded: e.encodedBodySize, decoded: e.decodedBodySize}));",
    );
    let paths: Vec<&str> = resources
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["path"].as_str().unwrap())
        .filter(|p| *p != "/favicon.ico")
        .collect();
    let subgraph_file = format!("/data/{key}/{run}/{}.js", first.1);
    assert_eq!(
        paths,
        [
            "/data/index.js",
            &format!("/data/{key}/index.js"),
            &subgraph_file
        ],
        "{resources}"
    );
    for r in resources
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["path"] != "/favicon.ico")
    {
        assert!(
            r["encoded"].as_u64().unwrap() < r["decoded"].as_u64().unwrap(),
            "not compressed: {r}"
        );
    }
    let started = Instant::now();
    while served.requests().len() < 4 && started.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        served.requests(),
        [
            "/".to_string(),
            "/data/index.js".into(),
            format!("/data/{key}/index.js"),
            subgraph_file.clone()
        ]
    );
    assert_eq!(browser.errors(), json!([]), "errors while loading");

    // Every subgraph with PCA, 4 to 25 latents: readable, each loading only its own file.
    let mut sizes_seen = Vec::new();
    for &(size, id, _) in &wide.pca {
        let before = served.requests().len();
        let shown = show(&browser, run, size, id);
        let (_, data) = read_call(&site.join(format!("data/{shown}.js")));
        assert_eq!(data["nodes"].as_array().unwrap().len(), size);
        select_point(&browser, 0);
        let context = data["points"]["context"][0].as_str().unwrap();
        let token = data["points"]["token"][0].as_str().unwrap();
        assert_readable(&browser, size, context, token);
        let new: Vec<String> = served.requests()[before..].to_vec();
        assert!(
            new.iter().all(|p| p == &format!("/data/{shown}.js")),
            "showing {shown} loaded {new:?}"
        );
        sizes_seen.push(size);
        if size == 25 {
            let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("artifacts");
            std::fs::create_dir_all(&artifacts).unwrap();
            std::fs::write(artifacts.join("explorer-25.png"), browser.screenshot()).unwrap();
        }
    }
    assert!(sizes_seen.contains(&4) && sizes_seen.contains(&25));
    let cached = browser.js("return SAECOOC.cached();");
    assert!(cached["subgraphs"].as_u64().unwrap() <= 8, "{cached}");

    // The table: every subgraph on some page; with the filter, every one with PCA; a size-4
    // subgraph with PCA opens from it.
    let mut all: Vec<i64> = wide.table.iter().map(|t| t.0).collect();
    all.sort();
    assert!(all.len() > 100);
    assert_eq!(table_ids(&browser), all);
    browser.js("document.getElementById('page-size').value = '25'; document.getElementById('page-size').dispatchEvent(new Event('change'));");
    assert_eq!(table_ids(&browser), all);
    browser.click("#pca-only");
    let mut with_pca: Vec<i64> = wide.pca.iter().map(|p| p.1).collect();
    with_pca.sort();
    assert_eq!(table_ids(&browser), with_pca);
    let target = wide
        .pca
        .iter()
        .filter(|p| p.0 == 4)
        .map(|p| p.1)
        .max()
        .unwrap();
    browser.js("document.getElementById('page-size').value = '500'; document.getElementById('page-size').dispatchEvent(new Event('change'));");
    browser.js("SAECOOC.shown = null;");
    browser.click(&format!("#all tbody tr[data-id=\"{target}\"]"));
    browser.wait_for(&format!("return SAECOOC.shown === '{key}/{run}/{target}';"));
    assert_eq!(
        browser.js("return document.querySelectorAll('#graph circle.node').length;"),
        4
    );
    assert_eq!(browser.errors(), json!([]), "errors while browsing");

    drop(browser);
    assert_eq!(
        processes_with(&marker),
        Vec::<u32>::new(),
        "Chromium processes left running"
    );
}

/// `export` of a folder with two `pca` runs and no saecooc manifest (the original's scripts):
/// both offered, the newest first, and the user told; the older one was taken before because
/// its name sorts first.
#[test]
fn export_offers_every_run_of_a_folder_without_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results");
    let older = WideSpec {
        subgraphs: vec![(4, 3), (5, 2)],
        pca: vec![(4, 3), (5, 1)],
        cap: 60,
        n_batches: 40,
        seed: 1,
    };
    write_wide(&results, &older);
    std::thread::sleep(Duration::from_millis(50));
    let newer = WideSpec {
        n_batches: 400,
        pca: vec![(4, 2)],
        ..older
    };
    let newest = write_another_run(&results, &newer);
    let site = dir.path().join("site");
    let out = export(&results, &site);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        stdout.contains("PCA run 60-example cap, nbatch 400 (newest files)")
            && stdout.contains("PCA run 60-example cap, nbatch 40 (older files)"),
        "{stdout}"
    );
    assert!(
        stderr.contains("holds 2 PCA runs and no saecooc manifest"),
        "{stderr}"
    );
    let (_, sae) = sae_index(&site);
    let runs: Vec<&str> = sae["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(runs, ["60cap_nbatch_400", "60cap_nbatch_40"]);
    let shown: Vec<i64> = sae["runs"][0]["sizes"]["4"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l[0].as_i64().unwrap())
        .collect();
    let expected: Vec<i64> = newest.iter().map(|p| p.1).collect();
    assert_eq!(shown, expected);
    assert_eq!(sae["runs"][1]["sizes"]["5"].as_array().unwrap().len(), 1);
}

fn pca_run(dir: &Path, p: &saecooc::synth::SynthPaths, results: &Path, max_examples: usize) {
    let config = dir.join(format!("pca-{max_examples}.toml"));
    std::fs::write(&config, pca_config(p, 6, 4, max_examples)).unwrap();
    run_ok(&[
        "--quiet",
        "pca",
        "--config",
        config.to_str().unwrap(),
        "--results-dir",
        results.to_str().unwrap(),
    ]);
}

/// The run `data/{key}/index.js` shows first, and the most points of its subgraphs.
fn shown_run(site: &Path) -> (String, String, u64) {
    let (_, sae) = sae_index(site);
    let run = &sae["runs"][0];
    let most = run["sizes"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|v| v.as_array().unwrap().iter().map(|l| l[3].as_u64().unwrap()))
        .max()
        .unwrap_or(0);
    (
        run["id"].as_str().unwrap().to_string(),
        run["source"].as_str().unwrap().to_string(),
        most,
    )
}

/// The real pipeline's outputs: after a second `pca` run the export shows that run (also when
/// the first run's files are put back, as an older saecooc left them), and the site works from
/// disk in a browser.
#[test]
fn explorer_shows_the_newest_pca_run_and_works_from_disk() {
    let dir = tempfile::tempdir().unwrap();
    let (p, results) = prepare(dir.path());
    let site = dir.path().join("site");
    let stats_files = stats_with_a_new_figure(&results);
    pca_run(dir.path(), &p, &results, 150);
    export(&results, &site);
    let (first, _, _) = shown_run(&site);
    assert!(first.starts_with("150cap_"), "{first}");
    let pca_dir =
        common::results_dir(&results, 6).join("blocks_1_hook_resid_pre_pca_for_streamlit");
    let saved = dir.path().join("first-run");
    std::fs::create_dir_all(&saved).unwrap();
    for e in std::fs::read_dir(&pca_dir).unwrap().flatten() {
        if e.path().extension().is_some_and(|x| x == "h5") {
            std::fs::copy(e.path(), saved.join(e.file_name())).unwrap();
        }
    }
    pca_run(dir.path(), &p, &results, 60);
    export(&results, &site);
    let (second, source, most) = shown_run(&site);
    assert!(second.starts_with("60cap_"), "{second}");
    assert_eq!(source, "listed in pca_run.json");
    assert!(most <= 60, "{most} points in a 60-example run");
    // The first run's files back in the folder: left out, and said so.
    for e in std::fs::read_dir(&saved).unwrap().flatten() {
        std::fs::copy(e.path(), pca_dir.join(e.file_name())).unwrap();
    }
    let out = export(&results, &site);
    let (again, _, _) = shown_run(&site);
    assert_eq!(again, second);
    let (_, sae) = sae_index(&site);
    assert_eq!(sae["runs"].as_array().unwrap().len(), 1);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("that pca_run.json does not list"),
        "{stderr}"
    );
    assert!(
        !site
            .join("data")
            .join(entry_key(&site))
            .join(&first)
            .exists(),
        "files of the earlier export linger"
    );

    let Some(browser) = browser_or_skip("explorer_shows_the_newest_pca_run_and_works_from_disk")
    else {
        return;
    };
    let marker = browser.marker();
    let url = format!("file://{}", site.join("index.html").display());
    browser.goto(&url);
    browser.wait_for("return document.querySelectorAll('#pca circle.point').length > 0;");
    assert_eq!(browser.errors(), json!([]), "errors while loading");
    let info = browser.js("return document.getElementById('run-info').textContent;");
    assert!(info.as_str().unwrap().contains("60-example cap"), "{info}");
    let before = browser.js(
        "return {bars: document.querySelectorAll('#bars rect.bar').length, \
         coloured: Array.from(document.querySelectorAll('#graph circle.node')).filter(c => c.getAttribute('fill') !== '#ffffff').length, \
         nodes: document.querySelectorAll('#graph circle.node').length};",
    );
    assert_eq!(before["bars"], 0, "{before}");
    assert_eq!(before["coloured"], 0, "{before}");
    let nodes = before["nodes"].as_u64().unwrap();
    assert!(nodes >= 2, "{before}");

    // A real click on a point of the PCA plot (the last drawn, so nothing lies on it).
    browser.click("#pca circle.point:last-of-type");
    browser.wait_for("return document.querySelectorAll('#bars rect.bar').length > 0;");
    let after = browser.js(
        "return {bars: document.querySelectorAll('#bars rect.bar').length, \
         coloured: Array.from(document.querySelectorAll('#graph circle.node')).filter(c => c.getAttribute('fill') !== '#ffffff').length, \
         hash: location.hash, info: document.getElementById('point-info').textContent};",
    );
    assert_eq!(after["bars"].as_u64().unwrap(), nodes, "{after}");
    assert!(after["coloured"].as_u64().unwrap() >= 1, "{after}");
    assert!(
        after["hash"].as_str().unwrap().contains("point="),
        "{after}"
    );
    assert!(
        after["info"].as_str().unwrap().starts_with("Token: "),
        "{after}"
    );

    assert_figures_shown(&browser, &site, &stats_files);

    // The state is in the URL: reloading it shows the same point.
    let shared = browser.js("return document.getElementById('share').value;");
    browser.goto("about:blank");
    browser.goto(shared.as_str().unwrap());
    browser.wait_for("return document.querySelectorAll('#bars rect.bar').length > 0;");
    assert_eq!(browser.errors(), json!([]), "errors after clicking");

    let bytes = browser.screenshot();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    std::fs::write(artifacts.join("explorer.png"), &bytes).unwrap();
    drop(browser);
    assert_eq!(
        processes_with(&marker),
        Vec::<u32>::new(),
        "Chromium processes left running"
    );
}

/// Runs `stats` into `stats` beside `results` (where `export` looks by default) and adds a
/// figure with its CSV to its output manifest, as a new kind of `stats` figure would be;
/// returns the files the manifest lists.
fn stats_with_a_new_figure(results: &Path) -> Vec<String> {
    let stats = results.parent().unwrap().join("stats");
    run_ok(&[
        "--quiet",
        "stats",
        "--results-dir",
        results.to_str().unwrap(),
        "--out",
        stats.to_str().unwrap(),
    ]);
    std::fs::copy(stats.join("size_effects.png"), stats.join("new_figure.png")).unwrap();
    std::fs::write(stats.join("new_figure.csv"), "x,y\n1,2\n").unwrap();
    let manifest = stats.join(".saecooc-out.json");
    let mut m: Value = serde_json::from_slice(&std::fs::read(&manifest).unwrap()).unwrap();
    let files = m["files"].as_array_mut().unwrap();
    files.extend([json!("new_figure.png"), json!("new_figure.csv")]);
    std::fs::write(&manifest, serde_json::to_vec(&m).unwrap()).unwrap();
    let mut listed: Vec<String> = m["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().to_string())
        .collect();
    listed.sort();
    listed
}

/// The site lists every PNG of the `stats` output's files `stats_files` (the new one with its
/// CSV) and the SAE's `graphs` histograms, and the page shows every one of them as a loaded
/// image, with links to the interactive page and the CSV of the same name where listed.
fn assert_figures_shown(browser: &Browser, site: &Path, stats_files: &[String]) {
    let stats_pngs: Vec<String> = stats_files
        .iter()
        .filter(|f| f.ends_with(".png"))
        .cloned()
        .collect();
    let links: Vec<Vec<&str>> = stats_pngs
        .iter()
        .map(|png| {
            let stem = png.trim_end_matches(".png");
            [("html", "interactive"), ("csv", "numbers (CSV)")]
                .into_iter()
                .filter(|(ext, _)| stats_files.contains(&format!("{stem}.{ext}")))
                .map(|(_, text)| text)
                .collect()
        })
        .collect();
    let (_, index) = read_call(&site.join("data/index.js"));
    let listed: Vec<String> = index["stats_figures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            f["png"]
                .as_str()
                .unwrap()
                .trim_start_matches("data/stats/")
                .to_string()
        })
        .collect();
    assert_eq!(listed, stats_pngs);
    let new = &index["stats_figures"][listed.iter().position(|f| f == "new_figure.png").unwrap()];
    assert_eq!(new["csv"], "data/stats/new_figure.csv", "{new}");
    assert!(site.join("data/stats/new_figure.csv").is_file());
    let (_, sae) = sae_index(site);
    let histograms = sae["figures"].as_array().unwrap().len();
    assert!(histograms >= 1, "no graphs figures: {}", sae["figures"]);
    browser.wait_for(
        "return Array.from(document.querySelectorAll('#figures-panel img')).every(i => i.complete);",
    );
    let shown = browser.js(
        "const loaded = sel => Array.from(document.querySelectorAll(sel)).filter(i => i.naturalWidth > 0).length; \
         return {stats: loaded('#stats-figures img'), graphs: loaded('#graph-figures img'), \
                 links: Array.from(document.querySelectorAll('#stats-figures figure')).map(f => Array.from(f.querySelectorAll('a.figure-link')).map(a => a.textContent))};",
    );
    assert_eq!(shown["stats"], stats_pngs.len(), "{shown}");
    assert_eq!(shown["graphs"], histograms, "{shown}");
    assert_eq!(shown["links"], json!(links), "{shown}");
}

/// `pca` of one-latent subgraphs says what their PCs hold; the explorer reports a one-latent
/// subgraph instead of plotting it, and shows a two-latent one as PC1 vs PC2 (its PC3 carries
/// no variance) with a note.
#[test]
fn one_latent_subgraphs_are_reported_not_plotted() {
    let dir = tempfile::tempdir().unwrap();
    let (p, results) = prepare(dir.path());
    let config = dir.path().join("pca-small.toml");
    let text = pca_config(&p, 6, 4, 100).replace(
        "subgraph_sizes_to_plot = [2, 3, 4, 5, 6]",
        "subgraph_sizes_to_plot = [1, 3]",
    );
    std::fs::write(&config, text).unwrap();
    let out = run_ok(&[
        "pca",
        "--config",
        config.to_str().unwrap(),
        "--results-dir",
        results.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("of size 1 are one latent each"), "{stderr}");

    // The fixture's synthetic SAE has no subgraph of two latents: the wide one has.
    let spec = WideSpec {
        subgraphs: vec![(2, 3), (3, 2)],
        pca: vec![(1, 2), (2, 2), (3, 1)],
        cap: 40,
        n_batches: 8,
        seed: 11,
    };
    let wide = write_wide(&dir.path().join("wide"), &spec);
    let site = dir.path().join("site");
    export(&wide.root, &site);
    let first_of = |size: usize| wide.pca.iter().find(|w| w.0 == size).unwrap().1;
    let (_, sae) = sae_index(&site);
    let run_id = sae["runs"][0]["id"].as_str().unwrap().to_string();

    let Some(browser) = browser_or_skip("one_latent_subgraphs_are_reported_not_plotted") else {
        return;
    };
    browser.goto(&format!("file://{}", site.join("index.html").display()));
    browser.wait_for("return !!SAECOOC.indexData;");
    show(&browser, &run_id, 1, first_of(1));
    let view = browser.js(
        "return {points: document.querySelectorAll('#pca circle.point').length, \
                 said: Array.from(document.querySelectorAll('#pca text.pca-note')).map(t => t.textContent), \
                 note: document.getElementById('pca-note').textContent};",
    );
    assert_eq!(view["points"], 0, "{view}");
    assert_eq!(
        view["said"],
        json!(["One latent: no PCA to plot"]),
        "{view}"
    );
    assert!(
        view["note"].as_str().unwrap().contains("one latent"),
        "{view}"
    );
    let axes_and_note =
        "const t = Array.from(document.querySelectorAll('#pca text')).map(t => t.textContent); \
         return {points: document.querySelectorAll('#pca circle.point').length, axes: t, \
                 note: document.getElementById('pca-note').textContent};";
    show(&browser, &run_id, 2, first_of(2));
    let view = browser.js(axes_and_note);
    assert!(view["points"].as_u64().unwrap() > 0, "{view}");
    assert_eq!(view["axes"], json!(["PC1", "PC2"]), "{view}");
    assert!(
        view["note"]
            .as_str()
            .unwrap()
            .contains("PC3 carries no variance"),
        "{view}"
    );
    // Three latents: the PCs chosen (PC2 vs PC3 by default), no note.
    show(&browser, &run_id, 3, first_of(3));
    let view = browser.js(axes_and_note);
    assert_eq!(view["axes"], json!(["PC2", "PC3"]), "{view}");
    assert_eq!(view["note"], "", "{view}");
    assert_eq!(browser.errors(), json!([]));
}

fn entry_key(site: &Path) -> String {
    sae_index(site).0["key"].as_str().unwrap().to_string()
}

/// Records of a CSV text (RFC 4180: line breaks inside quotes belong to the field), header
/// left out.
fn csv_records(text: &str) -> usize {
    let (mut records, mut quoted, mut at_start) = (0, false, true);
    for c in text.chars() {
        match c {
            '"' => quoted = !quoted,
            '\n' if !quoted => {
                records += 1;
                at_start = true;
                continue;
            }
            _ => {}
        }
        at_start = false;
    }
    records + usize::from(!at_start) - 1
}

/// The PNG files of a subspace folder and of its point folders.
fn pngs_under(dir: &Path) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        if e.path().is_dir() {
            n += pngs_under(&e.path());
        } else if e.path().extension().is_some_and(|x| x == "png") {
            n += 1;
        }
    }
    n
}

/// The real `subspace` stage on the tiny world, then `export`: the subspace gets its page, with
/// every example in the scatter, the custom prompts' tokens marked, the representative points
/// and `--points` of `subspace.json`, bars for a chosen one, and its figures loaded.
#[test]
fn explorer_shows_an_analysed_subspace() {
    let dir = tempfile::tempdir().unwrap();
    let (p, results) = prepare(dir.path());
    pca_run(dir.path(), &p, &results, 150);
    let site = dir.path().join("site");
    // No subspace analysed yet: an empty list, nothing else.
    export(&results, &site);
    let (_, index) = read_call(&site.join("data/index.js"));
    assert_eq!(index["subspaces"], json!([]));
    assert!(!site.join("data/subspaces").exists());

    let table = common::results_dir(&results, 6).join("dataframes/node_info_df_1_5.csv");
    let rows = saecooc::results::node_table::read_node_table(&table).unwrap();
    let sid = rows
        .iter()
        .max_by_key(|r| (r.subgraph_size, std::cmp::Reverse(r.subgraph_id)))
        .unwrap()
        .subgraph_id;
    let corpus = std::fs::read_to_string(&p.corpus).unwrap();
    let mut prompts: Vec<&str> = corpus
        .lines()
        .filter(|l| !l.trim().is_empty())
        .take(6)
        .collect();
    prompts.push("zzz");
    let prompts_path = dir.path().join("prompts.txt");
    std::fs::write(&prompts_path, prompts.join("\n")).unwrap();
    let config = dir.path().join("subspace.toml");
    std::fs::write(&config, pca_config(&p, 6, 4, 150)).unwrap();
    // `figures` beside the results folder: where `subspace` and `export` look by default.
    let figures = results.parent().unwrap().join("figures");
    run_ok(&[
        "--quiet",
        "subspace",
        "--config",
        config.to_str().unwrap(),
        "--results-dir",
        results.to_str().unwrap(),
        "--subgraph",
        &sid.to_string(),
        "--points",
        "0,2",
        "--prompts",
        prompts_path.to_str().unwrap(),
    ]);
    // `pca_1_5_subgraph_{sid}_n_batches_6_graphs_{id}`: the only folder `subspace` wrote.
    let sae_figures = figures.join("synthetic-gpt2/synthetic/blocks_1_hook_resid_pre");
    let folder = std::fs::read_dir(&sae_figures)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with(&format!("pca_1_5_subgraph_{sid}_n_batches_6_graphs_"))
        })
        .unwrap();
    let summary: Value =
        serde_json::from_slice(&std::fs::read(folder.join("subspace.json")).unwrap()).unwrap();
    let examples = csv_records(
        &std::fs::read_to_string(folder.join(format!("pca_df_subgraph_{sid}.csv"))).unwrap(),
    );
    let prompt_rows = csv_records(
        &std::fs::read_to_string(folder.join(format!("prompts_subgraph_{sid}.csv"))).unwrap(),
    );
    assert_eq!(examples as u64, summary["examples"].as_u64().unwrap());
    assert!(prompt_rows > 0, "no prompt token fired");
    let latents = summary["latents"].as_array().unwrap().len();
    let ids = |key: &str| -> Vec<u64> {
        summary[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["point_id"].as_u64().unwrap())
            .collect()
    };
    let (representative, chosen) = (ids("representative_points"), ids("points"));
    assert_eq!(representative.len(), 5);
    assert_eq!(chosen, [0, 2]);

    let out = export(&results, &site);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("1 analysed subspaces"), "{stdout}");
    let (_, index) = read_call(&site.join("data/index.js"));
    let entry = &index["subspaces"][0];
    assert_eq!(entry["subgraph"], sid);
    assert_eq!(entry["examples"], examples);
    assert_eq!(entry["prompt_points"], prompt_rows);
    let key = entry["key"].as_str().unwrap().to_string();
    let copied = site.join(format!("data/subspaces/{key}"));
    let pngs = pngs_under(&folder);
    assert!(pngs >= 10, "{pngs} figures");
    assert_eq!(
        pngs_under(&copied),
        pngs,
        "figures not copied into the site"
    );

    let Some(browser) = browser_or_skip("explorer_shows_an_analysed_subspace") else {
        return;
    };
    let marker = browser.marker();
    let url = format!("file://{}", site.join("index.html").display());
    browser.goto(&url);
    browser.wait_for("return document.querySelectorAll('#pca circle.point').length > 0;");
    // The list of subspaces, and a click opens the page.
    browser.js("SAECOOC.shown = null;");
    browser.click(&format!("#subspaces button[data-key=\"{key}\"]"));
    browser.wait_for(&format!("return SAECOOC.shown === 'subspace/{key}';"));
    let page = browser.js(
        "const ids = s => Array.from(document.querySelectorAll(s)).map(e => +e.getAttribute('data-i')); \
         return {examples: document.querySelectorAll('#pca .point:not(.prompt)').length, \
                 prompts: document.querySelectorAll('#pca path.point.prompt').length, \
                 nodes: document.querySelectorAll('#graph circle.node').length, \
                 variance: document.querySelectorAll('#variance rect.ev-bar').length, \
                 representative: ids('#rep-points li'), chosen: ids('#chosen-points li'), \
                 panel: getComputedStyle(document.getElementById('subspace-panel')).display, \
                 table: getComputedStyle(document.getElementById('all').closest('section')).display, \
                 hash: location.hash};",
    );
    assert_eq!(page["examples"], examples, "{page}");
    assert_eq!(page["prompts"], prompt_rows, "{page}");
    assert_eq!(page["nodes"], latents, "{page}");
    assert_eq!(page["variance"], 3, "{page}");
    assert_eq!(page["representative"], json!(representative), "{page}");
    assert_eq!(page["chosen"], json!(chosen), "{page}");
    assert_ne!(page["panel"], "none", "{page}");
    assert_eq!(page["table"], "none", "{page}");
    assert!(
        page["hash"].as_str().unwrap().contains("subspace="),
        "{page}"
    );
    // Every figure loads.
    browser.wait_for("return Array.from(document.querySelectorAll('#subspace-figures img')).every(i => i.complete);");
    let images = browser.js(
        "const imgs = Array.from(document.querySelectorAll('#subspace-figures img')); \
         return {count: imgs.length, broken: imgs.filter(i => !(i.naturalWidth > 0)).map(i => i.src)};",
    );
    assert_eq!(images["count"], pngs, "{images}");
    assert_eq!(images["broken"], json!([]), "{images}");

    // A representative point: selected in the scatter, its bars and context shown.
    let first = &summary["representative_points"][0];
    browser.click("#rep-points li:first-child");
    browser.wait_for("return document.querySelectorAll('#bars rect.bar').length > 0;");
    let selected = browser.js(
        "return {i: document.querySelector('#pca .selected').getAttribute('data-i'), \
                 bars: document.querySelectorAll('#bars rect.bar').length, \
                 mark: document.querySelector('#bar-context mark').textContent};",
    );
    assert_eq!(selected["i"], first["point_id"].to_string(), "{selected}");
    assert_eq!(selected["bars"], latents, "{selected}");
    assert_eq!(
        selected["mark"],
        first["token"].as_str().unwrap().replace('\n', "\\n"),
        "{selected}"
    );
    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    std::fs::write(
        artifacts.join("explorer-subspace.png"),
        browser.screenshot(),
    )
    .unwrap();
    // The shared link reopens the subspace with that point; back to the clusters from there.
    let shared = browser.js("return document.getElementById('share').value;");
    browser.goto("about:blank");
    browser.goto(shared.as_str().unwrap());
    browser.wait_for("return document.querySelectorAll('#rep-points li.current').length === 1;");
    browser.js("SAECOOC.shown = null;");
    browser.click("#subspace-back");
    browser.wait_for("return !!SAECOOC.shown && !SAECOOC.shown.startsWith('subspace/');");
    let back =
        browser.js("return getComputedStyle(document.getElementById('subspace-panel')).display;");
    assert_eq!(back, "none");
    assert_eq!(browser.errors(), json!([]), "errors on the subspace page");
    drop(browser);
    assert_eq!(
        processes_with(&marker),
        Vec::<u32>::new(),
        "Chromium processes left running"
    );
}

/// Links a node table from someone else's results folder might carry, by latent: scripts in
/// several spellings, a data URL, and one real dashboard link.
fn hostile_link(latent: u32, k: usize) -> String {
    match k % 5 {
        0 => "javascript:parent.__pwned=1;parent.document.title='pwned'//".into(),
        1 => "JaVaScRiPt:parent.__pwned=2;parent.document.title='pwned'//".into(),
        2 => "\"data:text/html,<script>parent.__pwned=3</script>\"".into(),
        3 => " javascript:parent.__pwned=4//".into(),
        _ => format!("https://www.neuronpedia.org/synthetic/sae/{latent}"),
    }
}

/// Fills the node table's empty `neuronpedia_link` column with [`hostile_link`]s.
fn write_hostile_links(dir: &Path) {
    let path = dir.join("dataframes/node_info_df_1_5.csv");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut out = String::new();
    for (k, line) in text.lines().enumerate() {
        if k == 0 {
            out.push_str(line);
        } else {
            let id: u32 = line.split(',').next().unwrap().parse().unwrap();
            out.push_str(&line.replacen("]\",,", &format!("]\",{},", hostile_link(id, k)), 1));
        }
        out.push('\n');
    }
    std::fs::write(&path, out).unwrap();
}

/// The Neuronpedia panel of the shown subgraph, after a real click on "Show dashboards": every
/// link and frame is an https link, no script ran, and the non-links (`not_links` of them) are
/// shown as text.
fn assert_links_inert(browser: &Browser, not_links: usize) {
    browser.click("#np-embed");
    std::thread::sleep(Duration::from_millis(500));
    let panel = browser.js(
        "const np = document.querySelector('#np-links'); \
         return {hrefs: [...document.querySelectorAll('a[href]')].map(a => a.getAttribute('href')), \
                 frames: [...document.querySelectorAll('iframe')].map(f => f.getAttribute('src')), \
                 text: [...np.querySelectorAll('.not-a-link')].map(s => s.textContent), \
                 pwned: window.__pwned === undefined ? null : window.__pwned, title: document.title};",
    );
    let strings = |k: &str| -> Vec<String> {
        panel[k]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    };
    for link in strings("hrefs").iter().chain(&strings("frames")) {
        assert!(
            link.starts_with("https://www.neuronpedia.org/") || !link.contains(':'),
            "{link} used as a link: {panel}"
        );
    }
    assert!(
        strings("frames").iter().all(|f| f.starts_with("https://")),
        "{panel}"
    );
    assert_eq!(panel["pwned"], Value::Null, "a link ran: {panel}");
    assert_eq!(panel["title"], "SAE Latent Co-occurrence Explorer");
    assert_eq!(strings("text").len(), not_links, "{panel}");
    assert!(
        strings("text")
            .iter()
            .all(|t| t.contains("not an http(s) link")),
        "{panel}"
    );
}

#[test]
fn links_from_node_tables_are_never_run_nor_linked() {
    let dir = tempfile::tempdir().unwrap();
    let spec = WideSpec {
        subgraphs: vec![(5, 2)],
        pca: vec![(5, 1)],
        cap: 40,
        n_batches: 8,
        seed: 3,
    };
    let wide = write_wide(&dir.path().join("results"), &spec);
    write_hostile_links(&wide.dir);
    let site = dir.path().join("site");
    let out = export(&wide.root, &site);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("neuronpedia_link value(s) are not http(s) links"),
        "{stderr}"
    );
    // The export keeps only the https links.
    let (entry, sae) = sae_index(&site);
    let run = sae["runs"][0]["id"].as_str().unwrap().to_string();
    let id = wide.pca[0].1;
    let file = site.join(format!(
        "data/{}/{run}/{id}.js",
        entry["key"].as_str().unwrap()
    ));
    let (_, data) = read_call(&file);
    let links = data["links"].as_array().unwrap();
    assert!(links.iter().any(|l| l.is_string()), "{links:?}");
    assert!(
        links
            .iter()
            .all(|l| l.is_null() || l.as_str().unwrap().starts_with("https://")),
        "{links:?}"
    );

    let Some(browser) = browser_or_skip("links_from_node_tables_are_never_run_nor_linked") else {
        return;
    };
    let url = format!("file://{}", site.join("index.html").display());
    browser.goto(&url);
    browser.wait_for(&format!(
        "return (SAECOOC.shown || '').endsWith('/{run}/{id}');"
    ));
    assert_links_inert(&browser, 0);

    // A data file not written by this export (or by an older one) is checked in the page too.
    let text = std::fs::read_to_string(&file).unwrap();
    let mut patched = data.clone();
    let hostile: Vec<String> = (0..links.len())
        .map(|k| hostile_link(0, k % 4).trim_matches('"').to_string())
        .collect();
    patched["links"] = json!(hostile);
    let call = &text[..text.find('{').unwrap()];
    std::fs::write(&file, format!("{call}{patched});\n")).unwrap();
    browser.goto("about:blank");
    browser.goto(&url);
    browser.wait_for(&format!(
        "return (SAECOOC.shown || '').endsWith('/{run}/{id}');"
    ));
    assert_links_inert(&browser, links.len().min(10));

    // And the same page over HTTP.
    let served = Served::start(&site, dir.path().join("serve.log"));
    browser.goto(&served.server.url);
    browser.wait_for(&format!(
        "return (SAECOOC.shown || '').endsWith('/{run}/{id}');"
    ));
    assert_links_inert(&browser, links.len().min(10));
    assert_eq!(browser.errors(), json!([]));
}

/// Texts that end or confuse a `<script>` element or a JavaScript string.
const NASTY_TEXTS: [&str; 5] = [
    "Token: <!--<script>",
    "Token: </script><script>window.__pwned=1</script>",
    "Token: a\u{2028}b\u{2029}c",
    "Token: ]]> & &amp; \"quoted\" \\",
    "Token: <img src=x onerror=\"window.__pwned=2\">",
];

#[test]
fn data_in_figure_and_subgraph_pages_stays_text_in_a_real_browser() {
    let dir = tempfile::tempdir().unwrap();
    let title = "Subgraph <!--<script> </title>";
    saecooc::plot::interactive::write_figure(dir.path(), "f", title, (400, 300), |_, hovers| {
        for (k, text) in NASTY_TEXTS.iter().enumerate() {
            hovers.add((40 + 60 * k as i32, 150), text.to_string());
        }
        Ok(())
    })
    .unwrap();
    let tokens: Vec<Vec<String>> = NASTY_TEXTS
        .iter()
        .map(|t| vec![t.to_string(), "</title></svg><!--".to_string()])
        .collect();
    let nodes: Vec<u32> = (0..tokens.len() as u32).collect();
    let picture = saecooc::stages::graph::figures::SubgraphPicture {
        subgraph_id: 3,
        activation_threshold: 1.5,
        edge_threshold: 0.1,
        nodes: &nodes,
        edges: &[(0, 1, 0.5)],
        activations: &[1.0, 2.0, 3.0, 4.0, 5.0],
        top_tokens: &tokens,
        links: Some(vec!["javascript:window.__pwned=3//".into(); 5]),
        seed: 1,
    };
    saecooc::stages::graph::figures::write_subgraph_html(&dir.path().join("g.html"), &picture)
        .unwrap();
    let Some(browser) =
        browser_or_skip("data_in_figure_and_subgraph_pages_stays_text_in_a_real_browser")
    else {
        return;
    };

    // The figure page: its script runs and shows each hover text as it is.
    browser.goto(&format!("file://{}", dir.path().join("f.html").display()));
    let page = browser.js(
        "if (typeof POINTS === 'undefined') return {ran: false}; \
         const img = document.getElementById('picture'), r = img.getBoundingClientRect(); \
         const s = r.width / +img.getAttribute('width'); \
         const shown = POINTS.map(p => { \
           img.dispatchEvent(new MouseEvent('mousemove', {clientX: r.left + p[0] * s, clientY: r.top + p[1] * s, bubbles: true})); \
           return document.getElementById('tip').textContent; }); \
         return {ran: true, texts: TEXTS, shown: shown, title: document.title, \
                 heading: document.querySelector('h3').textContent, scripts: document.scripts.length, \
                 pwned: window.__pwned === undefined ? null : window.__pwned};",
    );
    assert_eq!(page["ran"], true, "the figure's script did not run: {page}");
    assert_eq!(page["texts"], json!(NASTY_TEXTS), "{page}");
    assert_eq!(page["shown"], json!(NASTY_TEXTS), "{page}");
    assert_eq!(page["title"], title);
    assert_eq!(page["heading"], title);
    assert_eq!(page["scripts"], 1);
    assert_eq!(page["pwned"], Value::Null);

    // The subgraph page: no script at all, every token shown literally, no script link.
    browser.goto(&format!("file://{}", dir.path().join("g.html").display()));
    let page = browser.js(
        "return {scripts: document.scripts.length, \
                 cells: [...document.querySelectorAll('tr td:nth-child(3)')].map(c => c.textContent), \
                 labels: [...document.querySelectorAll('svg text')].map(t => t.textContent), \
                 links: document.querySelectorAll('a').length, \
                 pwned: window.__pwned === undefined ? null : window.__pwned};",
    );
    assert_eq!(page["scripts"], 0, "{page}");
    assert_eq!(page["links"], 0, "{page}");
    assert_eq!(page["pwned"], Value::Null);
    let cells: Vec<String> = tokens
        .iter()
        .map(|t| saecooc::io::pyfmt::list_repr(t))
        .collect();
    assert_eq!(page["cells"], json!(cells), "{page}");
    let labels = page["labels"].as_array().unwrap();
    for (k, text) in NASTY_TEXTS.iter().enumerate() {
        assert!(
            labels[k].as_str().unwrap().starts_with(text),
            "{}: {text}",
            labels[k]
        );
    }
}
