//! The hub download path end to end: `saecooc cooc` fetching the model, SAE and dataset from a
//! local stand-in for huggingface.co (`HF_ENDPOINT`) into a fresh cache (`HF_HOME`), through
//! hf-hub as in real use.

mod common;

use common::hub_server::{HubRepo, HubServer, Kind, Logged};
use common::{assert_ok, config_text, fixture, results_dir};
use saecooc::io::npz::read_npz;
use saecooc::synth::SynthPaths;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const MODEL: &str = "openai-community/gpt2";
const SAES: &str = "test-org/synthetic-saes";
const DATA: &str = "test-org/synthetic-corpus";
const SAE_ID: &str = "blocks.1.hook_resid_pre";
const TOKEN: &str = "hf_test_token_123";
const N_BATCHES: usize = 3;

/// The fixture's files as three hub repos: the model under the real GPT-2 repo id, the SAE in
/// its subfolder, the corpus as a dataset (beside files the reader must skip).
fn repos(p: &SynthPaths) -> Vec<HubRepo> {
    vec![
        HubRepo::new(Kind::Model, MODEL)
            .folder("", &p.model)
            .file("README.md", b"# gpt2\n".to_vec()),
        HubRepo::new(Kind::Model, SAES).folder(SAE_ID, &p.sae),
        HubRepo::new(Kind::Dataset, DATA)
            .file("data/train.txt", std::fs::read(&p.corpus).unwrap())
            .file("README.md", b"# corpus\n".to_vec())
            .file(".gitattributes", b"*.parquet filter=lfs\n".to_vec()),
    ]
}

/// The fixture's config with `[source]` naming hub repos instead of local paths.
fn hub_config(p: &SynthPaths, model: &str) -> String {
    let local = config_text(p, N_BATCHES, "");
    local
        .replace(
            &format!("model = \"{}\"", p.model.display()),
            &format!("model = \"{model}\""),
        )
        .replace(
            &format!("sae = \"{}\"", p.sae.parent().unwrap().display()),
            &format!("sae = \"{SAES}\""),
        )
        .replace(
            &format!("dataset = \"{}\"", p.corpus.display()),
            &format!("dataset = \"{DATA}\""),
        )
}

/// Runs `saecooc cooc` in `dir` with only the hub variables given in `env` set.
fn run(dir: &Path, name: &str, config: &str, env: &[(&str, &str)]) -> (Output, PathBuf) {
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

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Every `.npz` of a run, by file name.
fn npz_outputs(results: &Path) -> Vec<(String, Vec<(String, saecooc::io::npy::NpyArray)>)> {
    let dir = results_dir(results, N_BATCHES);
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
            let arrays = read_npz(&dir.join(&n)).unwrap();
            (n, arrays)
        })
        .collect()
}

fn resolves(log: &[Logged]) -> Vec<&Logged> {
    log.iter()
        .filter(|r| r.path.contains("/resolve/"))
        .collect()
}

fn hf_home(dir: &Path) -> String {
    dir.join("hf-home").display().to_string()
}

#[test]
fn cooc_from_the_hub_matches_local_paths_then_runs_from_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let p = fixture(dir.path());
    let repos = repos(&p);
    let server = HubServer::start(repos.clone());
    let endpoint = server.endpoint();
    let home = hf_home(dir.path());
    let online = [
        ("HF_HOME", home.as_str()),
        ("HF_ENDPOINT", endpoint.as_str()),
    ];

    let (out, local) = run(dir.path(), "local", &config_text(&p, N_BATCHES, ""), &[]);
    assert_ok(&out);
    let want = npz_outputs(&local);

    // Cold cache: everything is downloaded and the counts are those of the local run.
    let config = hub_config(&p, MODEL);
    let (out, first) = run(dir.path(), "hub", &config, &online);
    assert_ok(&out);
    assert_eq!(npz_outputs(&first), want);
    let log = server.requests();
    assert!(
        log.iter().all(|r| r.method == "GET" && !r.authorized),
        "{log:#?}"
    );
    // Each file the run needs was downloaded: hf-hub's metadata request (Range bytes=0-0),
    // then the body (Range bytes=0-).
    let needed = [
        format!("/{MODEL}/resolve/main/config.json"),
        format!("/{MODEL}/resolve/main/model.safetensors"),
        format!("/{MODEL}/resolve/main/vocab.json"),
        format!("/{MODEL}/resolve/main/merges.txt"),
        format!("/{SAES}/resolve/main/{SAE_ID}/cfg.json"),
        format!("/{SAES}/resolve/main/{SAE_ID}/sae_weights.safetensors"),
        format!("/datasets/{DATA}/resolve/main/data/train.txt"),
    ];
    for path in &needed {
        let ranges: Vec<Option<&str>> = log
            .iter()
            .filter(|r| &r.path == path)
            .map(|r| r.range.as_deref())
            .collect();
        assert_eq!(
            ranges,
            [Some("bytes=0-0"), Some("bytes=0-")],
            "requests for {path}: {log:#?}"
        );
    }
    // LFS files went through the CDN redirect: 302 for both, then the blob from /cdn/.
    assert!(log
        .iter()
        .any(|r| r.path.ends_with("model.safetensors") && r.status == 302));
    assert!(log
        .iter()
        .any(|r| r.path.starts_with("/cdn/") && r.status == 206));
    // The dataset was listed through the API; the README was not fetched.
    assert!(log
        .iter()
        .any(|r| r.path == format!("/api/datasets/{DATA}/revision/main") && r.status == 200));
    assert!(
        !log.iter().any(|r| r.path.ends_with("README.md")),
        "{log:#?}"
    );

    // The huggingface_hub cache layout.
    let model_repo = &repos[0];
    let cache = Path::new(&home).join("hub/models--openai-community--gpt2");
    assert_eq!(
        std::fs::read_to_string(cache.join("refs/main")).unwrap(),
        model_repo.commit
    );
    let snapshot = cache.join("snapshots").join(&model_repo.commit);
    for file in [
        "config.json",
        "model.safetensors",
        "vocab.json",
        "merges.txt",
    ] {
        let link = snapshot.join(file);
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink(),
            "{} is not a symlink",
            link.display()
        );
        assert_eq!(
            std::fs::read(&link).unwrap(),
            model_repo.files[file],
            "{file}"
        );
    }
    let sha = {
        use sha2::Digest;
        let d = sha2::Sha256::digest(&model_repo.files["model.safetensors"]);
        d.iter().map(|b| format!("{b:02x}")).collect::<String>()
    };
    assert_eq!(
        std::fs::canonicalize(snapshot.join("model.safetensors")).unwrap(),
        std::fs::canonicalize(cache.join("blobs").join(sha)).unwrap(),
        "an LFS file's blob is named by its sha256"
    );
    let sae_snapshot = Path::new(&home)
        .join("hub/models--test-org--synthetic-saes/snapshots")
        .join(&repos[1].commit)
        .join(SAE_ID);
    assert!(sae_snapshot.join("cfg.json").is_file());
    assert!(sae_snapshot.join("sae_weights.safetensors").is_file());
    assert!(Path::new(&home)
        .join("hub/datasets--test-org--synthetic-corpus/snapshots")
        .join(&repos[2].commit)
        .join("data/train.txt")
        .is_file());

    // Warm cache: no file already cached is requested again. What is still asked: the files
    // the repo lacks (hf-hub keeps no record of a 404) and the dataset listing.
    server.clear_log();
    let (out, second) = run(dir.path(), "hub-warm", &config, &online);
    assert_ok(&out);
    assert_eq!(npz_outputs(&second), want);
    let log = server.requests();
    for r in resolves(&log) {
        assert!(
            !needed.contains(&r.path) && r.status == 404,
            "a cached file was requested again: {r:?}\n{log:#?}"
        );
    }
    assert!(log
        .iter()
        .any(|r| r.path == format!("/api/datasets/{DATA}/revision/main")));

    // Offline from the warm cache: the same counts, and not one request.
    server.clear_log();
    let (out, offline) = run(
        dir.path(),
        "hub-offline",
        &config,
        &[("HF_HOME", &home), ("HF_HUB_OFFLINE", "1")],
    );
    assert_ok(&out);
    assert_eq!(npz_outputs(&offline), want);
    assert!(server.requests().is_empty(), "{:#?}", server.requests());
}

#[test]
fn offline_with_a_cold_cache_names_the_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = fixture(dir.path());
    let server = HubServer::start(repos(&p));
    let home = hf_home(dir.path());
    let (out, _) = run(
        dir.path(),
        "cold",
        &hub_config(&p, MODEL),
        &[
            ("HF_HOME", &home),
            ("HF_ENDPOINT", &server.endpoint()),
            ("HF_HUB_OFFLINE", "1"),
        ],
    );
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("not in the local cache") && err.contains("HF_HUB_OFFLINE"),
        "{err}"
    );
    // The first file the run needs is named with its repo.
    assert!(
        (err.contains(SAES) && err.contains("cfg.json"))
            || (err.contains(MODEL) && (err.contains("config.json") || err.contains("vocab.json")))
            || err.contains(DATA),
        "{err}"
    );
    assert!(server.requests().is_empty(), "{:#?}", server.requests());
}

#[test]
fn a_gated_model_needs_hf_token() {
    let dir = tempfile::tempdir().unwrap();
    let p = fixture(dir.path());
    let mut repos = repos(&p);
    repos[0] = repos[0].clone().gated(TOKEN);
    let server = HubServer::start(repos);
    let endpoint = server.endpoint();
    let config = hub_config(&p, MODEL);

    let home = hf_home(dir.path());
    // No token, and an empty HF_TOKEN (which is no token, not `Bearer `).
    for (name, token) in [("no-token", None), ("empty-token", Some(""))] {
        let mut env = vec![
            ("HF_HOME", home.as_str()),
            ("HF_ENDPOINT", endpoint.as_str()),
        ];
        env.extend(token.map(|t| ("HF_TOKEN", t)));
        let (out, _) = run(dir.path(), name, &config, &env);
        assert!(!out.status.success());
        let err = stderr(&out);
        assert!(
            err.contains(MODEL) && err.contains("HTTP 401") && err.contains("set HF_TOKEN"),
            "{name}: {err}"
        );
    }
    let log = server.requests();
    assert!(log
        .iter()
        .any(|r| r.path.starts_with(&format!("/{MODEL}/")) && r.status == 401));
    assert!(log.iter().all(|r| !r.authorized), "{log:#?}");

    let (out, _) = run(
        dir.path(),
        "wrong-token",
        &config,
        &[
            ("HF_HOME", &home),
            ("HF_ENDPOINT", &endpoint),
            ("HF_TOKEN", "hf_wrong"),
        ],
    );
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains(MODEL) && err.contains("HF_TOKEN given cannot read"),
        "{err}"
    );

    server.clear_log();
    let (out, _) = run(
        dir.path(),
        "token",
        &config,
        &[
            ("HF_HOME", &home),
            ("HF_ENDPOINT", &endpoint),
            ("HF_TOKEN", TOKEN),
        ],
    );
    assert_ok(&out);
    let log = server.requests();
    let model_requests: Vec<&Logged> = log
        .iter()
        .filter(|r| r.path.starts_with(&format!("/{MODEL}/")))
        .collect();
    assert!(!model_requests.is_empty());
    assert!(
        log.iter().all(|r| r.authorized),
        "every request carries the token: {log:#?}"
    );
    assert!(model_requests.iter().all(|r| r.status != 401), "{log:#?}");
}

#[test]
fn unknown_repos_and_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let p = fixture(dir.path());
    let server = HubServer::start(repos(&p));
    // A trailing slash on HF_ENDPOINT is tolerated.
    let endpoint = format!("{}/", server.endpoint());
    let home = hf_home(dir.path());
    let env = [
        ("HF_HOME", home.as_str()),
        ("HF_ENDPOINT", endpoint.as_str()),
    ];

    // A model repo the hub does not have.
    let (out, _) = run(
        dir.path(),
        "no-repo",
        &hub_config(&p, "nobody/missing-model"),
        &env,
    );
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("nobody/missing-model") && err.contains("HTTP 404"),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "{endpoint}nobody/missing-model/resolve/main/config.json"
        )),
        "{err}"
    );

    // An SAE id whose subfolder the SAE repo does not have.
    let config = hub_config(&p, MODEL).replace(
        &format!("sae_ids = [\"{SAE_ID}\"]"),
        "sae_ids = [\"blocks.7.hook_resid_pre\"]",
    );
    let (out, _) = run(dir.path(), "no-file", &config, &env);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains(SAES)
            && err.contains("blocks.7.hook_resid_pre/params.npz")
            && err.contains("HTTP 404"),
        "{err}"
    );

    // No hub at all: a port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let (out, _) = run(
        dir.path(),
        "no-hub",
        &hub_config(&p, MODEL),
        &[("HF_HOME", &home), ("HF_ENDPOINT", &endpoint)],
    );
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("cannot reach the hub") && err.contains("HF_HUB_OFFLINE"),
        "{err}"
    );
}
