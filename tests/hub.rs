//! The hub download path end to end: `saecooc cooc` fetching the model, SAE and dataset from a
//! local stand-in for huggingface.co (`HF_ENDPOINT`) into a fresh cache (`HF_HOME`), through
//! hf-hub as in real use.

mod common;

use common::hub_server::{HubRepo, HubServer, Kind, Logged};
use common::{assert_ok, config_text, fixture, results_dir};
use saecooc::data::{read_documents, PARQUET_REVISION};
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
/// The paper's dataset: a loading script and `.tar` archives on `main`, its data as parquet on
/// `refs/convert/parquet` only.
const OWT: &str = "Skylion007/openwebtext";

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

/// Reruns `config` with `HF_HUB_OFFLINE=1` from the cache in `home`: the counts are `want`,
/// and the server sees no request.
fn assert_offline_rerun_matches(
    server: &HubServer,
    dir: &Path,
    name: &str,
    config: &str,
    home: &str,
    want: &[(String, Vec<(String, saecooc::io::npy::NpyArray)>)],
) {
    server.clear_log();
    let (out, offline) = run(
        dir,
        name,
        config,
        &[("HF_HOME", home), ("HF_HUB_OFFLINE", "1")],
    );
    assert_ok(&out);
    assert_eq!(npz_outputs(&offline), want);
    assert!(server.requests().is_empty(), "{:#?}", server.requests());
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
    assert_offline_rerun_matches(&server, dir.path(), "hub-offline", &config, &home, &want);
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

/// The fixture's corpus as two parquet files with a `text` column, written to `dir` as
/// `0000.parquet` (its first 3 short documents, so that a run reads on into the second file)
/// and `0001.parquet` (the rest); their names and bytes.
fn corpus_as_parquet(p: &SynthPaths, dir: &Path) -> Vec<(String, Vec<u8>)> {
    use polars::prelude::*;
    std::fs::create_dir_all(dir).unwrap();
    let docs = read_documents(&p.corpus, "text").unwrap();
    assert!(docs.len() > 100, "{}", docs.len());
    let (a, b) = docs.split_at(3);
    [("0000.parquet", a), ("0001.parquet", b)]
        .into_iter()
        .map(|(name, part)| {
            let path = dir.join(name);
            let mut df = df!("text" => part).unwrap();
            ParquetWriter::new(std::fs::File::create(&path).unwrap())
                .finish(&mut df)
                .unwrap();
            (name.to_string(), std::fs::read(&path).unwrap())
        })
        .collect()
}

/// The fixture's config reading `dataset` (a hub repo id or a local path).
fn with_dataset(config: &str, from: &str, dataset: &str) -> String {
    let (old, new) = (
        format!("dataset = \"{from}\""),
        format!("dataset = \"{dataset}\""),
    );
    assert!(config.contains(&old), "{config}");
    config.replace(&old, &new)
}

#[test]
fn a_dataset_without_data_files_on_main_is_read_from_its_parquet_conversion() {
    let dir = tempfile::tempdir().unwrap();
    let p = fixture(dir.path());
    let local_parquet = dir.path().join("owt-parquet");
    let mut owt = HubRepo::new(Kind::Dataset, OWT)
        .file("openwebtext.py", b"import datasets\n".to_vec())
        .file("README.md", b"# openwebtext\n".to_vec())
        .file("subsets/urlsf_subset00.tar", vec![7u8; 2048]);
    for (name, bytes) in corpus_as_parquet(&p, &local_parquet) {
        owt = owt.file_at(PARQUET_REVISION, &format!("plain_text/train/{name}"), bytes);
    }
    let mut all = repos(&p);
    all.push(owt.clone());
    let server = HubServer::start(all);
    let endpoint = server.endpoint();
    let home = hf_home(dir.path());

    // The same documents read from a local folder.
    let local_config = with_dataset(
        &config_text(&p, N_BATCHES, ""),
        &p.corpus.display().to_string(),
        &local_parquet.display().to_string(),
    );
    let (out, local) = run(dir.path(), "owt-local", &local_config, &[]);
    assert_ok(&out);
    let want = npz_outputs(&local);

    let config = with_dataset(&hub_config(&p, MODEL), DATA, OWT);
    let (out, hub) = run(
        dir.path(),
        "owt-hub",
        &config,
        &[("HF_HOME", &home), ("HF_ENDPOINT", &endpoint)],
    );
    assert_ok(&out);
    assert_eq!(npz_outputs(&hub), want);
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "revision {PARQUET_REVISION}: 2 files of the train split"
        )),
        "{err}"
    );

    // Both revisions were listed; only the converted files were downloaded, from the converted
    // revision (its `/` sent as `%2F`, as hf-hub writes it).
    let log = server.requests();
    let escaped = PARQUET_REVISION.replace('/', "%2F");
    for rev in ["main", escaped.as_str()] {
        assert!(
            log.iter()
                .any(|r| r.path == format!("/api/datasets/{OWT}/revision/{rev}") && r.status == 200),
            "{log:#?}"
        );
    }
    let owt_files: Vec<&str> = resolves(&log)
        .into_iter()
        .filter(|r| r.path.starts_with(&format!("/datasets/{OWT}/")))
        .map(|r| r.path.as_str())
        .collect();
    let prefix = format!("/datasets/{OWT}/resolve/{escaped}/plain_text/train");
    assert_eq!(
        owt_files,
        [
            format!("{prefix}/0000.parquet"),
            format!("{prefix}/0000.parquet"),
            format!("{prefix}/0001.parquet"),
            format!("{prefix}/0001.parquet"),
        ],
        "{log:#?}"
    );

    // The cache keeps the revision as huggingface_hub does: `refs/refs/convert/parquet`.
    let cache = Path::new(&home).join("hub/datasets--Skylion007--openwebtext");
    let commit = owt.commit_of(PARQUET_REVISION);
    assert_ne!(commit, owt.commit);
    assert_eq!(
        std::fs::read_to_string(cache.join("refs").join(PARQUET_REVISION)).unwrap(),
        commit
    );
    assert!(cache
        .join("snapshots")
        .join(&commit)
        .join("plain_text/train/0001.parquet")
        .is_file());

    // Offline, from that cache (`main` was never downloaded): the same counts, no request.
    assert_offline_rerun_matches(&server, dir.path(), "owt-offline", &config, &home, &want);
}

#[test]
fn a_dataset_with_nothing_readable_on_either_revision_names_both() {
    let dir = tempfile::tempdir().unwrap();
    let p = fixture(dir.path());
    let scripts = "test-org/script-only";
    let mut all = repos(&p);
    all.push(
        HubRepo::new(Kind::Dataset, scripts)
            .file("script-only.py", b"import datasets\n".to_vec())
            .file("README.md", b"# script only\n".to_vec())
            .file("data/archive.tar", vec![7u8; 64]),
    );
    let server = HubServer::start(all);
    let home = hf_home(dir.path());
    let config = with_dataset(&hub_config(&p, MODEL), DATA, scripts);
    let (out, _) = run(
        dir.path(),
        "script-only",
        &config,
        &[("HF_HOME", &home), ("HF_ENDPOINT", &server.endpoint())],
    );
    assert!(!out.status.success());
    let err = stderr(&out);
    for part in [
        scripts,
        "on revision main (it holds README.md, data/archive.tar, script-only.py)",
        &format!("nor on revision {PARQUET_REVISION}"),
    ] {
        assert!(err.contains(part), "{part}: {err}");
    }
    let escaped = PARQUET_REVISION.replace('/', "%2F");
    let log = server.requests();
    assert!(
        log.iter().any(
            |r| r.path == format!("/api/datasets/{scripts}/revision/{escaped}") && r.status == 404
        ),
        "{log:#?}"
    );
    assert!(
        !log.iter()
            .any(|r| r.path.starts_with(&format!("/datasets/{scripts}/"))),
        "{log:#?}"
    );
}
