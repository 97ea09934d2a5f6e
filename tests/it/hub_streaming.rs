//! Hub dataset shards read in ranges as they are decoded, against the local stand-in hub with
//! the real layouts: the pile's `train/NN.jsonl.zst` on `main`, openwebtext's
//! `plain_text/train/NNNN.parquet` on `refs/convert/parquet`. A run that needs the first part
//! of a multi-MB shard fetches a small part of it, counts exactly what the same run counts from
//! the whole local file, reuses what it fetched, and keeps a shard read to its end in the cache.

use crate::common;
use crate::common::hub_server::{hf_home, npz_outputs, run, HubRepo, HubServer, Kind, Outputs};
use crate::common::{assert_ok, config_text, fixture, saecooc, stderr};
use saecooc::data::{read_documents, PARQUET_REVISION};
use saecooc::synth::SynthPaths;
use std::path::{Path, PathBuf};

const PILE: &str = "monology/pile-uncopyrighted";
const OWT: &str = "Skylion007/openwebtext";
const N_BATCHES: usize = 3;
const MIB: usize = 1 << 20;

/// Documents of random lowercase words (hardly compressible, so that a shard of a few MB holds
/// them), `bytes` in all, deterministic.
fn filler(bytes: usize) -> Vec<String> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut docs = Vec::new();
    let mut total = 0;
    while total < bytes {
        let mut doc = String::new();
        while doc.len() < 4000 {
            let len = 2 + next() % 8;
            doc.extend((0..len).map(|_| (b'a' + (next() % 26) as u8) as char));
            doc.push(' ');
        }
        total += doc.len();
        docs.push(doc);
    }
    docs
}

/// `docs` as pile JSONL (`text` and `meta` fields), zstd-compressed.
fn jsonl_zst(docs: &[String]) -> Vec<u8> {
    let mut text = String::new();
    for doc in docs {
        let line = serde_json::json!({ "text": doc, "meta": { "pile_set_name": "Pile-CC" } });
        text.push_str(&line.to_string());
        text.push('\n');
    }
    zstd::encode_all(text.as_bytes(), 3).unwrap()
}

/// `docs` as a parquet file with a `text` column, `rows` rows per row group.
fn parquet(docs: &[String], rows: usize) -> Vec<u8> {
    crate::common::parquet::parquet_file(docs, rows, false)
}

/// The fixture's corpus as two shards: its first 3 documents (read to the end by every run),
/// then the rest followed by `filler_bytes` of filler (read only in part).
fn two_shards(p: &SynthPaths, filler_bytes: usize) -> (Vec<String>, Vec<String>) {
    let docs = read_documents(&p.corpus, "text").unwrap();
    let (first, rest) = docs.split_at(3);
    let mut second = rest.to_vec();
    second.extend(filler(filler_bytes));
    (first.to_vec(), second)
}

/// Writes `files` (name, bytes) under `dir`; the folder.
fn write_tree(dir: &Path, files: &[(String, Vec<u8>)]) -> PathBuf {
    for (name, bytes) in files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
    dir.to_path_buf()
}

/// The fixture's config reading `dataset`, with `extra` added to `[source]`, for `n_batches`.
/// The counts of a run over `files` written as a local folder `name` in `dir` (`extra`: more
/// `[source]` keys): what the same run streamed from the hub must give.
fn local_counts(
    dir: &Path,
    p: &SynthPaths,
    name: &str,
    files: &[(String, Vec<u8>)],
    extra: &str,
) -> Outputs {
    let local = write_tree(&dir.join(name), files);
    let (out, results) = run(
        dir,
        "local",
        &config(p, N_BATCHES, &local.display().to_string(), extra),
        &[],
    );
    assert_ok(&out);
    npz_outputs(&results, N_BATCHES)
}

fn config(p: &SynthPaths, n_batches: usize, dataset: &str, extra: &str) -> String {
    let old = format!("dataset = \"{}\"", p.corpus.display());
    let text = config_text(p, n_batches, "");
    assert!(text.contains(&old));
    text.replace(&old, &format!("dataset = \"{dataset}\"\n{extra}"))
}

/// The pile's layout: `train/00.jsonl.zst`, `train/01.jsonl.zst`, `val.jsonl.zst`,
/// `test.jsonl.zst`.
fn pile_files(first: &[String], second: &[String]) -> Vec<(String, Vec<u8>)> {
    vec![
        ("train/00.jsonl.zst".into(), jsonl_zst(first)),
        ("train/01.jsonl.zst".into(), jsonl_zst(second)),
        ("val.jsonl.zst".into(), jsonl_zst(&filler(20_000))),
        ("test.jsonl.zst".into(), jsonl_zst(&filler(20_000))),
    ]
}

fn pile_repo(files: &[(String, Vec<u8>)]) -> HubRepo {
    files.iter().fold(
        HubRepo::new(Kind::Dataset, PILE).file("README.md", b"# pile\n".to_vec()),
        |repo, (name, bytes)| repo.file(name, bytes.clone()),
    )
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn a_pile_shard_is_streamed_only_as_far_as_the_run_reads() {
    let dir = tempfile::tempdir().unwrap();
    let p = fixture(dir.path());
    let (first, second) = two_shards(&p, 12 * MIB);
    let files = pile_files(&first, &second);
    let big = &files[1].1;
    assert!(big.len() > 6 * MIB, "{}", big.len());
    let repo = pile_repo(&files);
    let server = HubServer::start(vec![repo.clone()]);
    let endpoint = server.endpoint();
    let home = hf_home(dir.path());
    let online = [
        ("HF_HOME", home.as_str()),
        ("HF_ENDPOINT", endpoint.as_str()),
    ];
    let train = "dataset_files = \"train/\"";

    // The same run on the whole files, local.
    let want = local_counts(dir.path(), &p, "pile", &files, train);

    let hub_config = config(&p, N_BATCHES, PILE, train);
    let (out, results) = run(dir.path(), "hub", &hub_config, &online);
    assert_ok(&out);
    assert_eq!(npz_outputs(&results, N_BATCHES), want);
    let err = stderr(&out);
    assert!(
        err.contains("note: streaming train/01.jsonl.zst") && err.contains("partly read"),
        "{err}"
    );
    let served = server.bytes_served(big);
    eprintln!(
        "pile shard: {served} of {} bytes served ({:.1}%)",
        big.len(),
        100.0 * served as f64 / big.len() as f64
    );
    assert_eq!(served, MIB, "one chunk of {}", big.len());
    assert!(served * 6 < big.len(), "{served} of {}", big.len());
    let log = server.requests();
    assert!(
        !log.iter()
            .any(|r| r.path.contains("val.jsonl") || r.path.contains("test.jsonl")),
        "{log:#?}"
    );
    assert!(log.iter().all(|r| r.status < 400), "{log:#?}");

    // train/00 was read to its end: a cache entry in huggingface_hub's layout. train/01 was
    // read in part: its chunks are kept beside the blobs, not in the snapshot.
    let cache = Path::new(&home).join("hub/datasets--monology--pile-uncopyrighted");
    assert_eq!(
        std::fs::read_to_string(cache.join("refs/main")).unwrap(),
        repo.commit
    );
    let snapshot = cache.join("snapshots").join(&repo.commit);
    let entry = snapshot.join("train/00.jsonl.zst");
    assert!(std::fs::symlink_metadata(&entry)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(std::fs::read(&entry).unwrap(), files[0].1);
    assert_eq!(
        std::fs::canonicalize(&entry).unwrap(),
        std::fs::canonicalize(cache.join("blobs").join(sha256(&files[0].1))).unwrap()
    );
    assert!(!snapshot.join("train/01.jsonl.zst").exists());
    let partial = cache
        .join("blobs")
        .join(format!("{}.saecooc-partial", sha256(big)));
    assert_eq!(std::fs::metadata(&partial).unwrap().len(), big.len() as u64);

    // A rerun reads what was fetched from disk, and lists the repo from the listing kept:
    // not one request.
    server.clear_log();
    let (out, results) = run(dir.path(), "hub-again", &hub_config, &online);
    assert_ok(&out);
    assert_eq!(npz_outputs(&results, N_BATCHES), want);
    assert!(server.requests().is_empty(), "{:#?}", server.requests());

    // Offline, the part read is enough for the same run, with no request.
    server.clear_log();
    let (out, results) = run(
        dir.path(),
        "hub-offline",
        &hub_config,
        &[("HF_HOME", &home), ("HF_HUB_OFFLINE", "1")],
    );
    assert_ok(&out);
    assert_eq!(npz_outputs(&results, N_BATCHES), want);
    assert!(server.requests().is_empty(), "{:#?}", server.requests());

    // Offline, a run that needs bytes never fetched (here: the chunk map emptied, as before
    // any run) stops with an error naming the shard and the byte range.
    let chunks = cache
        .join("blobs")
        .join(format!("{}.saecooc-chunks", sha256(big)));
    let held = std::fs::read(&chunks).unwrap();
    assert_eq!(
        held.iter().filter(|&&c| c == b'1').count(),
        1,
        "one chunk fetched"
    );
    std::fs::write(&chunks, vec![b'0'; held.len()]).unwrap();
    let (out, _) = run(
        dir.path(),
        "hub-offline-more",
        &hub_config,
        &[("HF_HOME", &home), ("HF_HUB_OFFLINE", "1")],
    );
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("train/01.jsonl.zst")
            && err.contains(PILE)
            && err.contains("only partly in the local cache")
            && err.contains(&format!("bytes 0-{}", MIB - 1))
            && err.contains("HF_HUB_OFFLINE"),
        "{err}"
    );
}

#[test]
fn an_openwebtext_parquet_shard_is_read_a_row_group_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let p = fixture(dir.path());
    let (first, second) = two_shards(&p, 16 * MIB);
    // About 1 MB of parquet per row group of filler.
    let files = vec![
        (
            "plain_text/train/0000.parquet".to_string(),
            parquet(&first, 2),
        ),
        (
            "plain_text/train/0001.parquet".to_string(),
            parquet(&second, 400),
        ),
        (
            "plain_text/validation/0000.parquet".to_string(),
            parquet(&filler(10_000), 10),
        ),
    ];
    let big = &files[1].1;
    assert!(big.len() > 8 * MIB, "{}", big.len());
    let mut owt = HubRepo::new(Kind::Dataset, OWT)
        .file("openwebtext.py", b"import datasets\n".to_vec())
        .file("subsets/urlsf_subset00.tar", vec![7u8; 4096]);
    for (name, bytes) in &files {
        owt = owt.file_at(PARQUET_REVISION, name, bytes.clone());
    }
    let server = HubServer::start(vec![owt.clone()]);
    let home = hf_home(dir.path());

    let want = local_counts(dir.path(), &p, "owt", &files[..2], "");

    let (out, results) = run(
        dir.path(),
        "hub",
        &config(&p, N_BATCHES, OWT, ""),
        &[("HF_HOME", &home), ("HF_ENDPOINT", &server.endpoint())],
    );
    assert_ok(&out);
    assert_eq!(npz_outputs(&results, N_BATCHES), want);
    let served = server.bytes_served(big);
    eprintln!(
        "openwebtext parquet shard: {served} of {} bytes served ({:.1}%)",
        big.len(),
        100.0 * served as f64 / big.len() as f64
    );
    // The footer's chunk, the first chunk and the first row group's text column.
    assert!(served > 0 && served <= 3 * MIB, "{served} of {}", big.len());
    assert!(served * 3 < big.len(), "{served} of {}", big.len());
    // Ranges of the converted revision's commit.
    let commit = owt.commit_of(PARQUET_REVISION);
    let log = server.requests();
    assert!(
        log.iter().any(|r| r.path
            == format!("/datasets/{OWT}/resolve/{commit}/plain_text/train/0001.parquet")
            && r.range.as_deref() != Some("bytes=0-0")),
        "{log:#?}"
    );
    let cache = Path::new(&home).join("hub/datasets--Skylion007--openwebtext");
    let snapshot = cache.join("snapshots").join(&commit);
    assert_eq!(
        std::fs::read(snapshot.join("plain_text/train/0000.parquet")).unwrap(),
        files[0].1
    );
    assert!(!snapshot.join("plain_text/train/0001.parquet").exists());
    assert_eq!(
        std::fs::read_to_string(cache.join("refs").join(PARQUET_REVISION)).unwrap(),
        commit
    );
}

#[test]
fn a_shard_read_to_its_end_is_completed_and_checked_into_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let p = fixture(dir.path());
    let docs = read_documents(&p.corpus, "text").unwrap();
    // A parquet file with a second column the run never reads: completing it fetches that.
    let bytes = crate::common::parquet::parquet_file(&docs, 50, true);
    let repo = HubRepo::new(Kind::Dataset, "test-org/whole").file("data/0.parquet", bytes.clone());
    let server = HubServer::start(vec![repo.clone()]);
    let home = hf_home(dir.path());
    // More batches than the data holds: the run reads the file to its end.
    let (out, _) = run(
        dir.path(),
        "whole",
        &config(&p, 400, "test-org/whole", ""),
        &[("HF_HOME", &home), ("HF_ENDPOINT", &server.endpoint())],
    );
    assert_ok(&out);
    let err = stderr(&out);
    assert!(
        err.contains("data/0.parquet of Hugging Face dataset repo test-org/whole")
            && err.contains("read to its end"),
        "{err}"
    );
    let cache = Path::new(&home).join("hub/datasets--test-org--whole");
    let entry = cache
        .join("snapshots")
        .join(&repo.commit)
        .join("data/0.parquet");
    assert_eq!(std::fs::read(&entry).unwrap(), bytes);
    let blobs: Vec<String> = std::fs::read_dir(cache.join("blobs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(blobs, [sha256(&bytes)], "only the blob is left");
    assert!(!cache
        .join(".saecooc-partial")
        .join(&repo.commit)
        .join("data/0.parquet")
        .exists());
}

#[test]
fn a_connection_cut_mid_range_is_retried_then_reported_with_the_offset() {
    let dir = tempfile::tempdir().unwrap();
    let p = fixture(dir.path());
    let (first, second) = two_shards(&p, 3 * MIB);
    let files = pile_files(&first, &second);
    let big = files[1].1.clone();
    let server = HubServer::start(vec![pile_repo(&files)]);
    let endpoint = server.endpoint();
    let train = "dataset_files = \"train/\"";
    let hub_config = config(&p, N_BATCHES, PILE, train);

    let want = local_counts(dir.path(), &p, "pile", &files, train);

    // Cut once after 100 kB: the range is fetched again and the counts are right.
    server.cut_once(&big, 100_000);
    let home = hf_home(&dir.path().join("a"));
    let (out, results) = run(
        dir.path(),
        "cut-once",
        &hub_config,
        &[("HF_HOME", &home), ("HF_ENDPOINT", &endpoint)],
    );
    assert_ok(&out);
    assert_eq!(npz_outputs(&results, N_BATCHES), want);
    let first_range = format!("bytes=0-{}", MIB - 1);
    let tries: Vec<usize> = server
        .requests()
        .iter()
        .filter(|r| {
            r.file.as_deref() == Some(&sha256(&big)) && r.range.as_deref() == Some(&first_range)
        })
        .map(|r| r.bytes)
        .collect();
    assert_eq!(tries, [100_000, MIB], "{:#?}", server.requests());

    // Cut every time: the error names the repo, the file and the byte offset.
    for _ in 0..4 {
        server.cut_once(&big, 1000);
    }
    let home = hf_home(&dir.path().join("b"));
    let (out, _) = run(
        dir.path(),
        "cut-always",
        &hub_config,
        &[("HF_HOME", &home), ("HF_ENDPOINT", &endpoint)],
    );
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "cannot read train/01.jsonl.zst of Hugging Face dataset repo {PILE} (revision main) \
             at byte 0 of {} ",
            big.len()
        )) && err.contains("after 4 tries"),
        "{err}"
    );
    // Nothing of it was recorded as fetched; the next run fetches it and is right.
    let (out, results) = run(
        dir.path(),
        "after-cuts",
        &hub_config,
        &[("HF_HOME", &home), ("HF_ENDPOINT", &endpoint)],
    );
    assert_ok(&out);
    assert_eq!(npz_outputs(&results, N_BATCHES), want);
}

#[test]
fn sharded_and_resumed_runs_over_streamed_shards_count_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let p = fixture(dir.path());
    let (first, second) = two_shards(&p, 4 * MIB);
    let files = pile_files(&first, &second);
    let server = HubServer::start(vec![pile_repo(&files)]);
    let home = hf_home(dir.path());
    let env = [
        ("HF_HOME", home.as_str()),
        ("HF_ENDPOINT", &server.endpoint()),
    ];
    let n_batches = 200;
    let config_path = dir.path().join("run.toml");
    std::fs::write(
        &config_path,
        config(&p, n_batches, PILE, "dataset_files = \"train/\""),
    )
    .unwrap();
    let cooc = |results: &str, extra: &[&str]| {
        let mut cmd = saecooc(&["--quiet", "cooc", "--config"]);
        cmd.arg(&config_path)
            .arg("--results-dir")
            .arg(dir.path().join(results))
            .args(extra);
        for var in [
            "HF_TOKEN",
            "HF_HUB_OFFLINE",
            "HF_HUB_CACHE",
            "HUGGINGFACE_HUB_CACHE",
        ] {
            cmd.env_remove(var);
        }
        cmd.env("NO_PROXY", "127.0.0.1").envs(env);
        cmd.output().unwrap()
    };
    assert_ok(&cooc("whole", &[]));
    let want: Outputs = npz_outputs(&dir.path().join("whole"), n_batches);

    // Two shards, merged.
    for i in 0..2 {
        assert_ok(&cooc("split", &["--shard", &format!("{i}/2")]));
    }
    let out = saecooc(&["--quiet", "merge", "--config"])
        .arg(&config_path)
        .args(["--shards", "2", "--results-dir"])
        .arg(dir.path().join("split"))
        .output()
        .unwrap();
    assert_ok(&out);
    assert_eq!(npz_outputs(&dir.path().join("split"), n_batches), want);

    // A run killed after its first checkpoint, then resumed.
    let resumed = dir.path().join("resumed");
    let checkpoint = common::results_dir(&resumed, n_batches).join("checkpoint.npz");
    let mut child = saecooc(&["--quiet", "cooc", "--config"])
        .arg(&config_path)
        .arg("--results-dir")
        .arg(&resumed)
        .args(["--checkpoint-every", "3"])
        .env("NO_PROXY", "127.0.0.1")
        .envs(env)
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while !checkpoint.is_file() {
        assert!(started.elapsed().as_secs() < 120, "no checkpoint appeared");
        assert!(child.try_wait().unwrap().is_none(), "the run ended first");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!common::results_dir(&resumed, n_batches)
        .join("run.json")
        .exists());
    assert_ok(&cooc("resumed", &["--resume"]));
    assert_eq!(npz_outputs(&resumed, n_batches), want);
}
