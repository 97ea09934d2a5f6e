//! Each shipped config of configs/ run through `saecooc cooc` against the local stand-in for
//! huggingface.co, with tiny stand-ins hosted under the REAL repo ids and file paths the built-in
//! table resolves them to (models, SAE folders, datasets in their hub layouts). The configs are
//! read from configs/ and only the sizes (and the device) are changed, so a renamed model, SAE
//! or dataset in a shipped config that the stand-in does not serve fails here.
//!
//! Checked: the run succeeds; exactly the expected files land in `$HF_HOME/hub` in
//! huggingface_hub's layout; a second run makes no request; a pinned model revision (a branch,
//! or a 40-hex commit) is what the server sees and what the cache records; a sharded model
//! (index + 2 shards, as gemma-2-2b is stored) counts as its unsharded weights do.

use crate::common::hub_server::{etag, hf_home, run, HubRepo, HubServer, Kind, Logged};
use crate::common::{assert_ok, files_under, write_gemma_scope_params, write_word_level_tokenizer};
use saecooc::data::PARQUET_REVISION;
use saecooc::io::npy::NpyArray;
use saecooc::synth::{SynthOptions, SynthPaths};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

const GPT2: &str = "openai-community/gpt2";
const RES_JB: &str = "jbloom/GPT2-Small-SAEs-Reformatted";
const SPLITTING: &str = "jbloom/GPT2-Small-Feature-Splitting-Experiment-Layer-8";
const OWT: &str = "Skylion007/openwebtext";
const GEMMA: &str = "google/gemma-2-2b";
const SCOPE: &str = "google/gemma-scope-2b-pt-res";
const PILE: &str = "monology/pile-uncopyrighted";
const N_BATCHES: i64 = 2;

// The shipped configs, made tiny.

/// `configs/{name}.toml`, parsed.
fn shipped(name: &str) -> toml::Table {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("configs")
        .join(format!("{name}.toml"));
    let text = std::fs::read_to_string(&path).unwrap();
    text.parse()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The sub-table `key` of `table`, created if absent.
fn table<'a>(t: &'a mut toml::Table, key: &str) -> &'a mut toml::Table {
    t.entry(key)
        .or_insert_with(|| toml::Value::Table(toml::Table::new()))
        .as_table_mut()
        .unwrap()
}

/// The config with only the sizes changed (a few small batches of short windows, on the CPU)
/// and `source` added to `[source]`.
fn tiny(mut config: toml::Table, source: &[(&str, &str)]) -> String {
    let generation = table(&mut config, "generation");
    generation.insert("n_batches".into(), N_BATCHES.into());
    generation.insert("n_batches_in_buffer".into(), 1.into());
    let run = table(&mut config, "run");
    for (k, v) in [
        ("context_size", 32),
        ("prompts_per_batch", 4),
        ("tokens_per_batch", 100),
    ] {
        run.insert(k.into(), v.into());
    }
    run.insert("device".into(), "cpu".into());
    let src = table(&mut config, "source");
    for (k, v) in source {
        src.insert(k.to_string(), (*v).into());
    }
    toml::to_string(&config).unwrap()
}

/// `[generation] sae_ids` of a shipped config.
fn sae_ids(config: &toml::Table) -> Vec<String> {
    config["generation"]["sae_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

// The stand-ins.

/// Tokenizer files as `openai-community/gpt2` has them: `tokenizer.json` beside `vocab.json`
/// and `merges.txt`, all giving the same tokens.
fn gpt2_repo(p: &SynthPaths, dir: &Path) -> HubRepo {
    let json = dir.join("gpt2-tokenizer.json");
    saecooc::tokenizer::gpt2_bpe(&p.model.join("vocab.json"), &p.model.join("merges.txt"))
        .unwrap()
        .save(&json, false)
        .unwrap();
    HubRepo::new(Kind::Model, GPT2)
        .folder("", &p.model)
        .file("tokenizer.json", std::fs::read(&json).unwrap())
        .file(
            "tokenizer_config.json",
            b"{\"model_max_length\": 1024}".to_vec(),
        )
        .file("README.md", b"# gpt2\n".to_vec())
        .file("pytorch_model.bin", vec![1u8; 256])
        .file("64.tflite", vec![2u8; 256])
}

/// A SAELens SAE folder `{folder}/cfg.json` + `sae_weights.safetensors` (+ the
/// `sparsity.safetensors` jbloom's repos also hold): an SAE calibrated on the fixture's model at
/// `blocks.{layer}.hook_resid_pre`, its cfg naming the model and dataset the real ones name.
fn saelens_files(
    p: &SynthPaths,
    options: &SynthOptions,
    folder: &str,
    layer: usize,
) -> Vec<(String, Vec<u8>)> {
    let sae = p.sae.with_file_name(format!("calibrated-{layer}"));
    if !sae.is_dir() {
        let options = SynthOptions {
            hook_layer: layer,
            ..options.clone()
        };
        saecooc::synth::write_calibrated_sae(&p.model, &p.corpus, &sae, &options).unwrap();
    }
    let mut cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(sae.join("cfg.json")).unwrap()).unwrap();
    cfg["model_name"] = "gpt2-small".into();
    cfg["dataset_path"] = OWT.into();
    cfg["context_size"] = 128.into();
    vec![
        (
            format!("{folder}/cfg.json"),
            serde_json::to_vec_pretty(&cfg).unwrap(),
        ),
        (
            format!("{folder}/sae_weights.safetensors"),
            std::fs::read(sae.join("sae_weights.safetensors")).unwrap(),
        ),
        (format!("{folder}/sparsity.safetensors"), vec![3u8; 64]),
    ]
}

fn with_files(repo: HubRepo, files: Vec<(String, Vec<u8>)>) -> HubRepo {
    files
        .into_iter()
        .fold(repo, |repo, (name, bytes)| repo.file(&name, bytes))
}

/// `docs` as a parquet file with a `text` column.
fn parquet(docs: &[String]) -> Vec<u8> {
    crate::common::parquet::parquet_file(docs, docs.len(), false)
}

/// openwebtext as it is on the hub: a loading script and `.tar`s on `main`, the data as
/// parquet on `refs/convert/parquet` only.
fn owt_repo(docs: &[String]) -> HubRepo {
    HubRepo::new(Kind::Dataset, OWT)
        .file("openwebtext.py", b"import datasets\n".to_vec())
        .file("README.md", b"# openwebtext\n".to_vec())
        .file("subsets/urlsf_subset00.tar", vec![7u8; 2048])
        .file_at(
            PARQUET_REVISION,
            "plain_text/train/0000.parquet",
            parquet(docs),
        )
        .file_at(
            PARQUET_REVISION,
            "plain_text/train/0001.parquet",
            parquet(docs),
        )
}

/// The GPT-2 world: a 12-block GPT-2 (so that every res-jb hook exists) with its SAE, and the
/// repos of both GPT-2 releases and openwebtext.
struct Gpt2World {
    repos: Vec<HubRepo>,
}

fn gpt2_world(dir: &Path) -> Gpt2World {
    let options = SynthOptions {
        layers: 12,
        d_model: 32,
        heads: 4,
        n_positions: 64,
        d_sae: 64,
        hook_layer: 8,
        documents: 300,
        seed: 7,
    };
    let paths = saecooc::synth::write_all(&dir.join("gpt2"), &options).unwrap();
    let res_jb = sae_ids(&shipped("gpt2-small-res-jb"));
    let mut jb = HubRepo::new(Kind::Model, RES_JB).file("README.md", b"# saes\n".to_vec());
    for id in &res_jb {
        let layer = id.split('.').nth(1).unwrap().parse().unwrap();
        jb = with_files(jb, saelens_files(&paths, &options, id, layer));
    }
    // The feature-splitting repo: the widths the paper used, one folder each.
    let mut fs = HubRepo::new(Kind::Model, SPLITTING);
    for width in [768, 24576, 98304] {
        let folder = format!("blocks.8.hook_resid_pre_{width}");
        fs = with_files(fs, saelens_files(&paths, &options, &folder, 8));
    }
    let docs: Vec<String> = std::fs::read_to_string(&paths.corpus)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    let repos = vec![gpt2_repo(&paths, dir), jb, fs, owt_repo(&docs)];
    Gpt2World { repos }
}

// Gemma-2 and Gemma Scope.

/// The tiny Gemma-2 of tests/fixtures, grown to `layers` blocks (block i has the weights of
/// fixture block i mod 3): its config.json and tensors.
fn gemma_model(layers: usize) -> (Vec<u8>, HashMap<String, candle_core::Tensor>) {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny-gemma2");
    let mut cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture.join("config.json")).unwrap()).unwrap();
    let fixture_layers = cfg["num_hidden_layers"].as_u64().unwrap() as usize;
    cfg["num_hidden_layers"] = layers.into();
    cfg["layer_types"] = (0..layers)
        .map(|i| {
            if i % 2 == 0 {
                "sliding_attention"
            } else {
                "full_attention"
            }
        })
        .collect::<Vec<_>>()
        .into();
    let tensors = candle_core::safetensors::load(
        fixture.join("model.safetensors"),
        &candle_core::Device::Cpu,
    )
    .unwrap();
    let mut grown = HashMap::new();
    for (name, t) in tensors {
        let block = name
            .strip_prefix("model.layers.")
            .and_then(|r| r.split_once('.'));
        match block {
            Some((k, rest)) => {
                let k: usize = k.parse().unwrap();
                for i in (k..layers).step_by(fixture_layers) {
                    grown.insert(format!("model.layers.{i}.{rest}"), t.clone());
                }
            }
            None => {
                grown.insert(name, t);
            }
        }
    }
    (serde_json::to_vec_pretty(&cfg).unwrap(), grown)
}

fn safetensors_bytes(tensors: &HashMap<String, candle_core::Tensor>, path: &Path) -> Vec<u8> {
    saecooc::model::save_safetensors(tensors, path).unwrap();
    std::fs::read(path).unwrap()
}

/// The model's weights as `gemma-2-2b` stores them: `model-0000{1,2}-of-00002.safetensors` and
/// `model.safetensors.index.json` naming the shard of each tensor.
fn sharded(tensors: &HashMap<String, candle_core::Tensor>, dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut names: Vec<&String> = tensors.keys().collect();
    names.sort();
    let (a, b) = names.split_at(names.len() / 2);
    let mut files = Vec::new();
    let mut weight_map = serde_json::Map::new();
    for (i, part) in [a, b].into_iter().enumerate() {
        let shard = format!("model-0000{}-of-00002.safetensors", i + 1);
        let subset: HashMap<String, candle_core::Tensor> = part
            .iter()
            .map(|n| ((*n).clone(), tensors[*n].clone()))
            .collect();
        for n in part {
            weight_map.insert((*n).clone(), shard.clone().into());
        }
        files.push((shard.clone(), safetensors_bytes(&subset, &dir.join(&shard))));
    }
    let index = serde_json::json!({ "metadata": { "total_size": 0 }, "weight_map": weight_map });
    files.push((
        "model.safetensors.index.json".into(),
        serde_json::to_vec_pretty(&index).unwrap(),
    ));
    files
}

/// A Gemma Scope `params.npz` (JumpReLU) on the 64-wide residual stream.
fn gemma_scope_params(path: &Path, seed: u64) -> Vec<u8> {
    write_gemma_scope_params(path, seed);
    std::fs::read(path).unwrap()
}

/// Pile-style documents of the tiny Gemma's words, as zstd JSONL.
fn pile_shard(seed: u64, n: usize) -> Vec<u8> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut text = String::new();
    for _ in 0..n {
        let doc: Vec<String> = (0..rng.random_range(5..40))
            .map(|_| format!("w{}", rng.random_range(4..1000)))
            .collect();
        let line =
            serde_json::json!({ "text": doc.join(" "), "meta": { "pile_set_name": "Pile-CC" } });
        text.push_str(&line.to_string());
        text.push('\n');
    }
    zstd::encode_all(text.as_bytes(), 3).unwrap()
}

/// The Gemma world: gemma-2-2b sharded (and the same weights unsharded in a local folder),
/// Gemma Scope's layer-12 folders, the pile.
struct GemmaWorld {
    repos: Vec<HubRepo>,
    /// config.json, tokenizer.json and model.safetensors of the same model, unsharded.
    unsharded: std::path::PathBuf,
}

fn gemma_world(dir: &Path) -> GemmaWorld {
    let (cfg, tensors) = gemma_model(13);
    let unsharded = dir.join("gemma-unsharded");
    std::fs::create_dir_all(&unsharded).unwrap();
    std::fs::write(unsharded.join("config.json"), &cfg).unwrap();
    write_word_level_tokenizer(&unsharded.join("tokenizer.json"));
    safetensors_bytes(&tensors, &unsharded.join("model.safetensors"));
    let shards = dir.join("gemma-shards");
    std::fs::create_dir_all(&shards).unwrap();
    let model = with_files(
        HubRepo::new(Kind::Model, GEMMA)
            .file("config.json", cfg)
            .file("generation_config.json", b"{}".to_vec())
            .file(
                "tokenizer.json",
                std::fs::read(unsharded.join("tokenizer.json")).unwrap(),
            )
            .file("tokenizer.model", vec![5u8; 128])
            .file("tokenizer_config.json", b"{}".to_vec())
            .file("special_tokens_map.json", b"{}".to_vec()),
        sharded(&tensors, &shards),
    );
    let mut scope = HubRepo::new(Kind::Model, SCOPE);
    let npz = dir.join("params.npz");
    let mut ids = sae_ids(&shipped("gemma-scope-2b"));
    ids.push("layer_12/width_65k/average_l0_72".into());
    for (i, id) in ids.iter().enumerate() {
        scope = scope.file(
            &format!("{id}/params.npz"),
            gemma_scope_params(&npz, i as u64),
        );
    }
    let pile = HubRepo::new(Kind::Dataset, PILE)
        .file("README.md", b"# pile\n".to_vec())
        .file("train/00.jsonl.zst", pile_shard(1, 300))
        .file("train/01.jsonl.zst", pile_shard(2, 300))
        .file("val.jsonl.zst", pile_shard(3, 50))
        .file("test.jsonl.zst", pile_shard(4, 50));
    GemmaWorld {
        repos: vec![model, scope, pile],
        unsharded,
    }
}

// What a run leaves.

/// Every `.npz` under a results folder: its path there, then its arrays.
fn outputs(results: &Path) -> Vec<(String, Vec<(String, NpyArray)>)> {
    let mut files: Vec<_> = files_under(results)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "npz"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .npz under {}", results.display());
    files
        .into_iter()
        .map(|f| {
            let name = f.strip_prefix(results).unwrap().display().to_string();
            (name, saecooc::io::npz::read_npz(&f).unwrap())
        })
        .collect()
}

/// The folders of results the `.npz` outputs are in (`{model}/{release}/{sae}`).
fn sae_folders(outputs: &[(String, Vec<(String, NpyArray)>)]) -> BTreeSet<String> {
    outputs
        .iter()
        .map(|(name, _)| name.split('/').take(3).collect::<Vec<_>>().join("/"))
        .collect()
}

/// Each SAE's outputs hold a nonzero value (latents fired), so that equal outputs mean
/// something.
fn assert_something_counted(name: &str, outputs: &[(String, Vec<(String, NpyArray)>)]) {
    for folder in sae_folders(outputs) {
        let fired = outputs
            .iter()
            .filter(|(file, _)| file.starts_with(&folder))
            .flat_map(|(_, arrays)| arrays)
            .any(|(_, a)| a.to_f32().iter().any(|&x| x != 0.0));
        assert!(fired, "{name}: nothing counted in {folder}");
    }
}

/// The results folder of each SAE of a config: `{model_name}/{release_short}/{neat sae id}`.
fn expected_folders(config: &toml::Table) -> BTreeSet<String> {
    let g = &config["generation"];
    sae_ids(config)
        .iter()
        .map(|id| {
            format!(
                "{}/{}/{}",
                g["model_name"].as_str().unwrap(),
                g["sae_release_short"].as_str().unwrap(),
                saecooc::io::pyfmt::neat_sae_id(id)
            )
        })
        .collect()
}

/// Everything under `$HF_HOME/hub` but folders: `path -> target` for a symlink, `path = text`
/// for a ref, `path` for a file.
fn cache_listing(home: &str) -> BTreeSet<String> {
    let root = Path::new(home).join("hub");
    let mut out = BTreeSet::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let rel = path.strip_prefix(&root).unwrap().display().to_string();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&path).unwrap();
                out.insert(format!("{rel} -> {}", target.display()));
            } else if meta.is_dir() {
                stack.push(path);
            } else if rel.contains("/refs/") {
                let text = std::fs::read_to_string(&path).unwrap();
                out.insert(format!("{rel} = {text}"));
            } else {
                out.insert(rel);
            }
        }
    }
    out
}

/// One file the run asks the hub for: repo, the revision asked for, path, and what the run
/// leaves of it in the cache.
struct Fetched<'a> {
    repo: &'a HubRepo,
    revision: &'a str,
    path: &'a str,
    how: How,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum How {
    /// Downloaded whole.
    Whole,
    /// A dataset file read in ranges, not to its end.
    Part,
    /// Not in the repo (the run's fallback takes over).
    Absent,
}

fn whole<'a>(repo: &'a HubRepo, revision: &'a str, paths: &[&'a str]) -> Vec<Fetched<'a>> {
    paths
        .iter()
        .map(|path| Fetched {
            repo,
            revision,
            path,
            how: How::Whole,
        })
        .collect()
}

/// What [`cache_listing`] shows after `fetched` were downloaded, as huggingface_hub lays it
/// out: `blobs/{etag}`, `snapshots/{commit}/{path}` linking to it, `refs/{revision}` naming
/// the commit (none when the revision is the commit itself); and for a dataset, the listing of
/// each revision listed, `.saecooc-listing/{commit}.json`.
fn expected_cache(fetched: &[Fetched]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for f in fetched {
        let kind = match f.repo.kind {
            Kind::Model => "models",
            Kind::Dataset => "datasets",
        };
        let folder = format!("{kind}--{}", f.repo.id.replace('/', "--"));
        let commit = f.repo.commit_of_any(f.revision);
        let path = f.path;
        match f.how {
            How::Whole => {
                let blob = etag(path, f.repo.bytes_at(f.revision, path));
                let up = "../".repeat(2 + path.matches('/').count());
                out.insert(format!("{folder}/blobs/{blob}"));
                out.insert(format!(
                    "{folder}/snapshots/{commit}/{path} -> {up}blobs/{blob}"
                ));
            }
            How::Part => {
                let blob = etag(path, f.repo.bytes_at(f.revision, path));
                out.insert(format!("{folder}/.saecooc-partial/{commit}/{path}"));
                out.insert(format!("{folder}/blobs/{blob}.saecooc-partial"));
                out.insert(format!("{folder}/blobs/{blob}.saecooc-chunks"));
            }
            How::Absent => {
                out.insert(format!("{folder}/.no_exist/{commit}/{path}"));
            }
        }
        if f.revision != commit {
            out.insert(format!("{folder}/refs/{} = {commit}", f.revision));
        }
        if f.repo.kind == Kind::Dataset {
            for rev in listed_revisions(f) {
                let commit = f.repo.commit_of_any(rev);
                out.insert(format!("{folder}/.saecooc-listing/{commit}.json"));
                if rev != commit {
                    out.insert(format!("{folder}/refs/{rev} = {commit}"));
                }
            }
        }
    }
    out
}

/// The revisions of a dataset file's repo that a run lists: `main`, and the revision read from
/// when not `main`.
fn listed_revisions<'a>(f: &Fetched<'a>) -> [&'a str; 2] {
    ["main", f.revision]
}

/// The API paths listing the revisions of the datasets in `fetched` a run asks for (see
/// [`listed_revisions`]).
fn dataset_listings(fetched: &[Fetched]) -> BTreeSet<String> {
    fetched
        .iter()
        .filter(|f| f.repo.kind == Kind::Dataset)
        .flat_map(|f| {
            listed_revisions(f).map(|rev| {
                format!(
                    "/api/datasets/{}/revision/{}",
                    f.repo.id,
                    rev.replace('/', "%2F")
                )
            })
        })
        .collect()
}

/// `[/datasets]/{repo}/resolve/{revision}/{path}` of a planned file.
fn resolve_path(f: &Fetched, revision: &str) -> String {
    let kind = if f.repo.kind == Kind::Dataset {
        "/datasets"
    } else {
        ""
    };
    format!("{kind}/{}/resolve/{revision}/{}", f.repo.id, f.path)
}

fn resolves(log: &[Logged]) -> Vec<String> {
    log.iter()
        .filter(|r| r.path.contains("/resolve/"))
        .map(|r| r.path.clone())
        .collect()
}

/// Runs `config` twice with `home` against `server`: the first run must fetch exactly
/// `fetched` into the cache, the second makes no request. The first run's outputs.
fn run_cold_then_warm(
    server: &HubServer,
    dir: &Path,
    name: &str,
    config: &str,
    home: &str,
    fetched: &[Fetched],
) -> Vec<(String, Vec<(String, NpyArray)>)> {
    let env = [("HF_HOME", home), ("HF_ENDPOINT", &server.endpoint())];
    server.clear_log();
    let (out, results) = run(dir, name, config, &env);
    assert_ok(&out);
    let want = outputs(&results);
    assert_something_counted(name, &want);
    let listing = cache_listing(home);
    let expected = expected_cache(fetched);
    assert_eq!(
        listing,
        expected,
        "{name}: the cache holds what was not expected: {:#?}\nand lacks {:#?}\nlog: {:#?}",
        listing.difference(&expected).collect::<Vec<_>>(),
        expected.difference(&listing).collect::<Vec<_>>(),
        resolves(&server.requests())
    );
    // Each file of the plan was asked for by the revision named, then read at its commit;
    // no other file was asked for.
    let log = server.requests();
    let asked: BTreeSet<String> = resolves(&log).into_iter().collect();
    let planned: BTreeSet<String> = fetched
        .iter()
        .flat_map(|f| {
            let named = resolve_path(f, &f.revision.replace('/', "%2F"));
            let pinned = resolve_path(f, &f.repo.commit_of_any(f.revision));
            assert!(
                asked.contains(&named),
                "{name}: {named} was not asked for: {asked:#?}"
            );
            [named, pinned]
        })
        .collect();
    assert!(
        asked.is_subset(&planned),
        "{name}: asked for files not planned: {:#?}",
        asked.difference(&planned).collect::<Vec<_>>()
    );

    // Each dataset listing once, however many SAEs read the dataset.
    let listings = dataset_listings(fetched);
    let listed: Vec<&str> = log
        .iter()
        .map(|r| r.path.as_str())
        .filter(|p| p.starts_with("/api/datasets/"))
        .collect();
    assert_eq!(listed.len(), listings.len(), "{name}: {listed:#?}");

    server.clear_log();
    let (out, results) = run(dir, &format!("{name}-warm"), config, &env);
    assert_ok(&out);
    assert_eq!(outputs(&results), want, "{name}: warm run");
    // Not one request: the files, the files a repo lacks and the dataset listings are all
    // in the cache.
    assert!(
        server.requests().is_empty(),
        "{name}: warm run: {:#?}",
        server.requests()
    );
    assert_eq!(cache_listing(home), expected, "{name}: warm run");
    want
}

// The tests.

#[test]
fn gpt2_small_res_jb_from_the_hub() {
    let dir = tempfile::tempdir().unwrap();
    let world = gpt2_world(dir.path());
    let server = HubServer::start(world.repos.clone());
    let config = tiny(shipped("gpt2-small-res-jb"), &[]);
    let ids = sae_ids(&shipped("gpt2-small-res-jb"));
    assert_eq!(ids.len(), 12);
    let files: Vec<String> = ids
        .iter()
        .flat_map(|id| {
            [
                format!("{id}/cfg.json"),
                format!("{id}/sae_weights.safetensors"),
            ]
        })
        .collect();
    let [model, saes, _, owt] = &world.repos[..] else {
        unreachable!()
    };
    let mut fetched = whole(
        model,
        "main",
        &["config.json", "model.safetensors", "tokenizer.json"],
    );
    let files: Vec<&str> = files.iter().map(String::as_str).collect();
    fetched.extend(whole(saes, "main", &files));
    fetched.push(Fetched {
        repo: owt,
        revision: PARQUET_REVISION,
        path: "plain_text/train/0000.parquet",
        how: How::Part,
    });
    let home = hf_home(dir.path());
    let out = run_cold_then_warm(&server, dir.path(), "res-jb", &config, &home, &fetched);
    assert_eq!(
        sae_folders(&out),
        expected_folders(&shipped("gpt2-small-res-jb"))
    );
}

#[test]
fn gpt2_small_feature_splitting_from_the_hub_and_pinned_revisions() {
    let dir = tempfile::tempdir().unwrap();
    let world = gpt2_world(dir.path());
    let branch = "saecooc-test-branch";
    let mut repos = world.repos.clone();
    // The model also on a branch, its config.json one key different (so another blob).
    let mut on_branch = repos[0].clone();
    for (path, bytes) in repos[0].files.clone() {
        let bytes = if path == "config.json" {
            let mut cfg: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            cfg["_branch"] = true.into();
            serde_json::to_vec(&cfg).unwrap()
        } else {
            bytes
        };
        on_branch = on_branch.file_at(branch, &path, bytes);
    }
    repos[0] = on_branch;
    let server = HubServer::start(repos.clone());
    let shipped_config = shipped("gpt2-small-feature-splitting");
    let ids = sae_ids(&shipped_config);
    assert_eq!(ids, ["blocks.8.hook_resid_pre_24576"]);
    let [model, _, saes, owt] = &repos[..] else {
        unreachable!()
    };
    let sae_files: Vec<String> = ["cfg.json", "sae_weights.safetensors"]
        .iter()
        .map(|f| format!("{}/{f}", ids[0]))
        .collect();
    let plan = |revision: &str| -> Vec<(usize, String, String)> {
        let mut v: Vec<(usize, String, String)> =
            ["config.json", "model.safetensors", "tokenizer.json"]
                .iter()
                .map(|p| (0, revision.to_string(), p.to_string()))
                .collect();
        v.extend(sae_files.iter().map(|p| (1, "main".to_string(), p.clone())));
        v.push((
            2,
            PARQUET_REVISION.to_string(),
            "plain_text/train/0000.parquet".into(),
        ));
        v
    };
    let repos3 = [model, saes, owt];

    // As shipped: main.
    let main = plan("main");
    let want = run_cold_then_warm(
        &server,
        dir.path(),
        "fs",
        &tiny(shipped_config.clone(), &[]),
        &hf_home(&dir.path().join("main")),
        &as_fetched(repos3, &main),
    );
    assert_eq!(sae_folders(&want), expected_folders(&shipped_config));

    // A branch: requested by name, recorded as refs/{branch}; main is never asked for.
    let on_branch = plan(branch);
    let home = hf_home(&dir.path().join("branch"));
    let config = tiny(shipped_config.clone(), &[("model_revision", branch)]);
    let got = run_cold_then_warm(
        &server,
        dir.path(),
        "fs-branch",
        &config,
        &home,
        &as_fetched(repos3, &on_branch),
    );
    assert_eq!(got, want, "the branch holds the same weights");

    // A 40-hex commit (the branch's): requested as such; no ref is written for it.
    let commit = model.commit_of(branch);
    let pinned = plan(&commit);
    let home = hf_home(&dir.path().join("commit"));
    let config = tiny(shipped_config.clone(), &[("model_revision", &commit)]);
    let got = run_cold_then_warm(
        &server,
        dir.path(),
        "fs-commit",
        &config,
        &home,
        &as_fetched(repos3, &pinned),
    );
    assert_eq!(got, want);
}

#[test]
fn gemma_scope_l0_sweep_from_the_hub_with_a_sharded_model() {
    let dir = tempfile::tempdir().unwrap();
    let world = gemma_world(dir.path());
    let server = HubServer::start(world.repos.clone());
    let shipped_config = shipped("gemma-scope-2b");
    let ids = sae_ids(&shipped_config);
    assert_eq!(ids.len(), 5);
    let [model, scope, pile] = &world.repos[..] else {
        unreachable!()
    };
    let params: Vec<String> = ids.iter().map(|id| format!("{id}/params.npz")).collect();
    // As gemma-2-2b is stored: no model.safetensors, an index and its shards.
    let mut fetched = whole(
        model,
        "main",
        &[
            "config.json",
            "tokenizer.json",
            "model.safetensors.index.json",
            "model-00001-of-00002.safetensors",
            "model-00002-of-00002.safetensors",
        ],
    );
    let absent = |repo, path| Fetched {
        repo,
        revision: "main",
        path,
        how: How::Absent,
    };
    fetched.push(absent(model, "model.safetensors"));
    // Gemma Scope folders hold params.npz; the registry's format (gemma_2) asks for nothing else.
    let params: Vec<&str> = params.iter().map(String::as_str).collect();
    fetched.extend(whole(scope, "main", &params));
    fetched.push(Fetched {
        repo: pile,
        revision: "main",
        path: "train/00.jsonl.zst",
        how: How::Part,
    });
    let home = hf_home(dir.path());
    let config = tiny(shipped_config.clone(), &[]);
    let want = run_cold_then_warm(&server, dir.path(), "gemma", &config, &home, &fetched);
    assert_eq!(sae_folders(&want), expected_folders(&shipped_config));

    // The same weights unsharded, from a local folder: the same counts.
    let local = world.unsharded.display().to_string();
    let config = tiny(shipped_config, &[("model", &local)]);
    let (out, results) = run(
        dir.path(),
        "gemma-unsharded",
        &config,
        &[("HF_HOME", &home), ("HF_ENDPOINT", &server.endpoint())],
    );
    assert_ok(&out);
    assert_eq!(outputs(&results), want);
}

/// The files of `plan` (index into `repos`, revision, path).
fn as_fetched<'a>(
    repos: [&'a HubRepo; 3],
    plan: &'a [(usize, String, String)],
) -> Vec<Fetched<'a>> {
    plan.iter()
        .map(|(i, revision, path)| Fetched {
            repo: repos[*i],
            revision,
            path,
            how: if *i == 2 { How::Part } else { How::Whole },
        })
        .collect()
}

trait RepoAt {
    fn commit_of_any(&self, revision: &str) -> String;
    fn bytes_at(&self, revision: &str, path: &str) -> &[u8];
}

impl RepoAt for HubRepo {
    /// The commit a revision (a name or a commit) resolves to.
    fn commit_of_any(&self, revision: &str) -> String {
        if revision.len() == 40 && revision.bytes().all(|b| b.is_ascii_hexdigit()) {
            revision.to_string()
        } else {
            self.commit_of(revision)
        }
    }

    fn bytes_at(&self, revision: &str, path: &str) -> &[u8] {
        let files: BTreeMap<_, _> = std::iter::once(("main".to_string(), &self.files))
            .chain(self.revisions.iter().map(|(k, v)| (k.clone(), v)))
            .chain(self.revisions.iter().map(|(k, v)| (self.commit_of(k), v)))
            .chain(std::iter::once((self.commit.clone(), &self.files)))
            .collect();
        &files[revision][path]
    }
}
