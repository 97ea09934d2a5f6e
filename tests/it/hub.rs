//! The hub download path end to end: `saecooc cooc` fetching the model, SAE and dataset from a
//! local stand-in for huggingface.co (`HF_ENDPOINT`) into a fresh cache (`HF_HOME`), through
//! hf-hub as in real use.

use crate::common::hub_server::{
    hf_home, npz_outputs, run, HubRepo, HubServer, Kind, Logged, Outputs,
};
use crate::common::{assert_ok, config_text, fixture, stderr};
use saecooc::data::{read_documents, PARQUET_REVISION};
use saecooc::synth::SynthPaths;
use std::path::Path;

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
    want: &Outputs,
) {
    server.clear_log();
    let (out, offline) = run(
        dir,
        name,
        config,
        &[("HF_HOME", home), ("HF_HUB_OFFLINE", "1")],
    );
    assert_ok(&out);
    assert_eq!(&npz_outputs(&offline, N_BATCHES), want);
    assert!(server.requests().is_empty(), "{:#?}", server.requests());
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
    let want = npz_outputs(&local, N_BATCHES);

    // Cold cache: everything is downloaded and the counts are those of the local run.
    let config = hub_config(&p, MODEL);
    let (out, first) = run(dir.path(), "hub", &config, &online);
    assert_ok(&out);
    assert_eq!(npz_outputs(&first, N_BATCHES), want);
    let log = server.requests();
    assert!(
        log.iter().all(|r| r.method == "GET" && !r.authorized),
        "{log:#?}"
    );
    // Each file the run needs was downloaded: hf-hub's metadata request (Range bytes=0-0),
    // then the body in one range (these files are small; the dataset is read in chunks).
    // (repo index, path prefix, file) of each file the run needs.
    let files = [
        (0, format!("/{MODEL}"), "config.json"),
        (0, format!("/{MODEL}"), "model.safetensors"),
        (0, format!("/{MODEL}"), "vocab.json"),
        (0, format!("/{MODEL}"), "merges.txt"),
        (1, format!("/{SAES}"), &format!("{SAE_ID}/cfg.json")),
        (
            1,
            format!("/{SAES}"),
            &format!("{SAE_ID}/sae_weights.safetensors"),
        ),
        (2, format!("/datasets/{DATA}"), "data/train.txt"),
    ];
    for (i, prefix, file) in &files {
        // The metadata request on the revision asked for, then the bytes, all in one range
        // (the files are small), from the commit it resolved to.
        let len = repos[*i].files[*file].len();
        let ranges = |path: String| -> Vec<Option<String>> {
            log.iter()
                .filter(|r| r.path == path)
                .map(|r| r.range.clone())
                .collect()
        };
        assert_eq!(
            ranges(format!("{prefix}/resolve/main/{file}")),
            [Some("bytes=0-0".to_string())],
            "{file}: {log:#?}"
        );
        assert_eq!(
            ranges(format!("{prefix}/resolve/{}/{file}", repos[*i].commit)),
            [Some(format!("bytes=0-{}", len - 1))],
            "{file}: {log:#?}"
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
    // The run read the start of the dataset's file, not to its end: it is recorded as read
    // in part, not in the snapshot.
    let corpus = Path::new(&home).join("hub/datasets--test-org--synthetic-corpus");
    assert!(!corpus
        .join("snapshots")
        .join(&repos[2].commit)
        .join("data/train.txt")
        .exists());
    assert!(corpus
        .join(".saecooc-partial")
        .join(&repos[2].commit)
        .join("data/train.txt")
        .is_file());

    // Warm cache: not one request. The files are in the cache, the file the repo lacks is
    // recorded under `.no_exist/`, the dataset file read in part under `.saecooc-partial/`, and
    // the dataset listing under `.saecooc-listing/{commit}.json` with `refs/main`.
    let listing = corpus
        .join(".saecooc-listing")
        .join(format!("{}.json", repos[2].commit));
    let mut kept: Vec<String> = serde_json::from_slice(&std::fs::read(&listing).unwrap()).unwrap();
    kept.sort();
    let mut served: Vec<String> = repos[2].files.keys().cloned().collect();
    served.sort();
    assert_eq!(kept, served, "the listing kept is the hub's");
    assert_eq!(
        std::fs::read_to_string(corpus.join("refs/main")).unwrap(),
        repos[2].commit
    );
    server.clear_log();
    let (out, second) = run(dir.path(), "hub-warm", &config, &online);
    assert_ok(&out);
    assert_eq!(npz_outputs(&second, N_BATCHES), want);
    assert!(server.requests().is_empty(), "{:#?}", server.requests());

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
    std::fs::create_dir_all(dir).unwrap();
    let docs = read_documents(&p.corpus, "text").unwrap();
    assert!(docs.len() > 100, "{}", docs.len());
    let (a, b) = docs.split_at(3);
    [("0000.parquet", a), ("0001.parquet", b)]
        .into_iter()
        .map(|(name, part)| {
            let bytes = crate::common::parquet::parquet_file(part, part.len(), false);
            std::fs::write(dir.join(name), &bytes).unwrap();
            (name.to_string(), bytes)
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
    let want = npz_outputs(&local, N_BATCHES);

    let config = with_dataset(&hub_config(&p, MODEL), DATA, OWT);
    let (out, hub) = run(
        dir.path(),
        "owt-hub",
        &config,
        &[("HF_HOME", &home), ("HF_ENDPOINT", &endpoint)],
    );
    assert_ok(&out);
    assert_eq!(npz_outputs(&hub, N_BATCHES), want);
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
    // Each file: its metadata on the revision named, then its bytes (one range: the files
    // are small) from the commit that revision resolved to.
    let commit = owt.commit_of(PARQUET_REVISION);
    let named = format!("/datasets/{OWT}/resolve/{escaped}/plain_text/train");
    let pinned = format!("/datasets/{OWT}/resolve/{commit}/plain_text/train");
    assert_eq!(
        owt_files,
        [
            format!("{named}/0000.parquet"),
            format!("{pinned}/0000.parquet"),
            format!("{named}/0001.parquet"),
            format!("{pinned}/0001.parquet"),
        ],
        "{log:#?}"
    );

    // The cache keeps the revision as huggingface_hub does: `refs/refs/convert/parquet`.
    let cache = Path::new(&home).join("hub/datasets--Skylion007--openwebtext");
    assert_ne!(commit, owt.commit);
    assert_eq!(
        std::fs::read_to_string(cache.join("refs").join(PARQUET_REVISION)).unwrap(),
        commit
    );
    // The first file was read to its end, the second (its row groups not all needed) not.
    let snapshot = cache.join("snapshots").join(&commit);
    assert!(snapshot.join("plain_text/train/0000.parquet").is_file());
    assert!(!snapshot.join("plain_text/train/0001.parquet").exists());

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

#[test]
fn a_model_download_cut_mid_file_is_resumed_and_never_cached_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let p = fixture(dir.path());
    let repos = repos(&p);
    let weights = repos[0].files["model.safetensors"].clone();
    let server = HubServer::start(repos);
    let endpoint = server.endpoint();
    let config = hub_config(&p, MODEL);
    let (out, local) = run(dir.path(), "local", &config_text(&p, N_BATCHES, ""), &[]);
    assert_ok(&out);
    let want = npz_outputs(&local, N_BATCHES);
    let blob = |home: &str| {
        Path::new(home)
            .join("hub/models--openai-community--gpt2/blobs")
            .join(sha256_hex(&weights))
    };

    // Cut once: the range is asked for again.
    server.cut_once(&weights, weights.len() / 3);
    let home = hf_home(&dir.path().join("once"));
    let env = [
        ("HF_HOME", home.as_str()),
        ("HF_ENDPOINT", endpoint.as_str()),
    ];
    let (out, results) = run(dir.path(), "cut-once", &config, &env);
    assert_ok(&out);
    assert_eq!(npz_outputs(&results, N_BATCHES), want);
    assert_eq!(std::fs::read(blob(&home)).unwrap(), weights);
    let resumed: Vec<(Option<String>, usize)> = server
        .requests()
        .iter()
        .filter(|r| r.path.starts_with("/cdn/") && r.bytes > 1)
        .filter(|r| r.file.as_deref() == Some(&sha256_hex(&weights)))
        .map(|r| (r.range.clone(), r.bytes))
        .collect();
    let whole = Some(format!("bytes=0-{}", weights.len() - 1));
    assert!(weights.len() < 16 << 20, "one range holds the file");
    assert_eq!(
        resumed,
        [(whole.clone(), weights.len() / 3), (whole, weights.len())]
    );

    // Cut on every try: an error, no blob in the cache; the next run completes it.
    for _ in 0..4 {
        server.cut_once(&weights, 1000);
    }
    let home = hf_home(&dir.path().join("always"));
    let env = [
        ("HF_HOME", home.as_str()),
        ("HF_ENDPOINT", endpoint.as_str()),
    ];
    let (out, _) = run(dir.path(), "cut-always", &config, &env);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("model.safetensors") && err.contains(MODEL),
        "{err}"
    );
    assert!(!blob(&home).exists(), "a cut download left a blob");
    assert!(
        err.contains("at byte 0 of") && err.contains("after 4 tries"),
        "{err}"
    );
    let (out, results) = run(dir.path(), "after-cuts", &config, &env);
    assert_ok(&out);
    assert_eq!(npz_outputs(&results, N_BATCHES), want);
    assert_eq!(std::fs::read(blob(&home)).unwrap(), weights);
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
