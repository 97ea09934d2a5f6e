//! Hostile inputs: property-based tests (proptest) feed truncated and garbage files to every
//! loader. Each must return a clear error (or a valid result), never panic. Out-of-range
//! numbers in configs, flags and SAE files are refused up front, naming the key and value.

use crate::common;
use candle_core::Device;
use proptest::prelude::*;
use saecooc::config::{Config, PcaConfig};
use saecooc::hub::{Hub, Location};
use saecooc::io::csr::{read_csr_rows, save_csr};
use saecooc::io::npy::parse_npy;
use saecooc::io::npz::{read_f32_rows, read_npz, NpzWriter};
use saecooc::model::gguf::Gguf;
use saecooc::model::{check_safetensors_header, ModelFiles};
use saecooc::sae::{Sae, SaeDefaults, SaeFiles};
use std::path::Path;

fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// A real file truncated at `cut` (a fraction of its length), or with bytes flipped.
fn damage(valid: &[u8], cut: f64, flip: Option<(usize, u8)>) -> Vec<u8> {
    let mut v = valid[..(valid.len() as f64 * cut) as usize].to_vec();
    if let Some((i, b)) = flip {
        if !v.is_empty() {
            let i = i % v.len();
            v[i] ^= b;
        }
    }
    v
}

fn valid_npz() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.npz");
    let mut w = saecooc::io::npz::NpzWriter::create(&p, true).unwrap();
    w.add_f32_rows("arr_0", 8, 8, |i, row| {
        row.iter_mut()
            .enumerate()
            .for_each(|(j, x)| *x = (i * j) as f32)
    })
    .unwrap();
    w.finish().unwrap();
    std::fs::read(p).unwrap()
}

fn valid_csr() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("c.npz");
    let pairs: std::collections::BTreeSet<(u32, u32)> = (0..8u32)
        .flat_map(|i| [(i, i), (i, (i * 3 + 1) % 8)])
        .collect();
    let entries: Vec<(u32, u32, f32)> = pairs
        .into_iter()
        .map(|(i, j)| (i, j, if i == j { 1.0 } else { 0.5 }))
        .collect();
    save_csr(&p, 8, &entries).unwrap();
    std::fs::read(p).unwrap()
}

/// A CSR file with the given index arrays (data all ones).
fn csr_with(dir: &Path, indptr: &[i32], indices: &[i32], n: i64) -> std::path::PathBuf {
    let p = dir.join("bad.npz");
    let mut w = NpzWriter::create(&p, false).unwrap();
    w.add_array("indices", &[indices.len()], indices).unwrap();
    w.add_array("indptr", &[indptr.len()], indptr).unwrap();
    w.add_bytes_scalar("format", b"csr").unwrap();
    w.add_array("shape", &[2], &[n, n]).unwrap();
    w.add_array("data", &[indices.len()], &vec![1f32; indices.len()])
        .unwrap();
    w.finish().unwrap();
    p
}

#[test]
fn inconsistent_csr_files_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let read = |p: &Path| {
        format!(
            "{:#}",
            read_csr_rows(p, |_, _| Ok(()), |_, _, _| Ok(())).unwrap_err()
        )
    };
    let err = read(&csr_with(dir.path(), &[0, 1, 2], &[0, 5], 2));
    assert!(err.contains("column 5 of row 1"), "{err}");
    let err = read(&csr_with(dir.path(), &[0, 2, 1], &[0, 1], 2));
    assert!(err.contains("indptr"), "{err}");
    let err = read(&csr_with(dir.path(), &[0, 2, 2], &[1, 1], 2));
    assert!(err.contains("duplicate entry at [0, 1]"), "{err}");
    let err = read(&csr_with(dir.path(), &[0, 1, 3], &[0, 1], 2));
    assert!(err.contains("indptr says 3 entries"), "{err}");
}

fn tiny_llama_weights() -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny-llama/model.safetensors"),
    )
    .unwrap()
}

/// GGUF headers that declare absurd counts or string lengths.
#[test]
fn gguf_with_absurd_counts_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    for (tensors, metadata, tail) in [
        (u64::MAX, 0u64, vec![]),
        (0, u64::MAX, vec![]),
        (1, 0, u64::MAX.to_le_bytes().to_vec()),
        (0, 1, (u64::MAX / 2).to_le_bytes().to_vec()),
    ] {
        let mut data = b"GGUF\x03\x00\x00\x00".to_vec();
        data.extend_from_slice(&tensors.to_le_bytes());
        data.extend_from_slice(&metadata.to_le_bytes());
        data.extend_from_slice(&tail);
        let p = write(dir.path(), "absurd.gguf", &data);
        let err = Gguf::read(&p).err().expect("an error").to_string();
        assert!(err.contains("absurd.gguf"), "{err}");
    }
}

/// An npz whose array header declares far more data than the entry holds.
#[test]
fn npz_with_an_absurd_shape_is_an_error() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absurd.npz");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    zip.start_file("arr_0.npy", zip::write::SimpleFileOptions::default())
        .unwrap();
    zip.write_all(&saecooc::io::npy::npy_header("<f4", &[10, 1 << 40]))
        .unwrap();
    zip.write_all(&[0u8; 64]).unwrap();
    zip.finish().unwrap();
    let err = read_f32_rows(&path, None, |_| Ok(()), |_, _| Ok(()))
        .unwrap_err()
        .to_string();
    assert!(err.contains("truncated"), "{err}");
    let err = format!("{:#}", read_npz(&path).unwrap_err());
    assert!(err.contains("truncated"), "{err}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    #[test]
    fn npy_and_npz_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300),
                               cut in 0.0f64..1.0, flip in proptest::option::of((any::<usize>(), 1u8..255))) {
        let _ = parse_npy(&bytes, "garbage");
        let dir = tempfile::tempdir().unwrap();
        let damaged = write(dir.path(), "d.npz", &damage(&valid_npz(), cut, flip));
        let _ = read_npz(&damaged);
        let _ = read_f32_rows(&damaged, None, |_| Ok(()), |_, _| Ok(()));
        let csr = write(dir.path(), "c.npz", &damage(&valid_csr(), cut, flip));
        let _ = read_csr_rows(&csr, |_, _| Ok(()), |_, _, _| Ok(()));
        let garbage = write(dir.path(), "g.npz", &bytes);
        prop_assert!(read_npz(&garbage).is_err() || bytes.starts_with(b"PK"));
    }

    #[test]
    fn safetensors_and_models_never_panic(cut in 0.0f64..1.0, flip in proptest::option::of((any::<usize>(), 1u8..255))) {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("m");
        std::fs::create_dir_all(&model).unwrap();
        std::fs::copy(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny-llama/config.json"), model.join("config.json")).unwrap();
        let bytes = damage(&tiny_llama_weights(), cut, flip);
        write(&model, "model.safetensors", &bytes);
        let _ = check_safetensors_header(&model.join("model.safetensors"));
        let hub = Hub::from_env(false).unwrap();
        let files = ModelFiles::resolve(&Location::Local(model.clone()), &hub).unwrap();
        let hook = saecooc::model::HookPoint::parse("blocks.1.hook_resid_pre").unwrap();
        // Truncated or corrupted weights: an error, never a panic.
        if let Ok(m) = saecooc::model::load_model(&files, hook, &Device::Cpu) {
            let tokens = candle_core::Tensor::new(&[[1u32, 5, 7]], &Device::Cpu).unwrap();
            let _ = m.activations(&tokens);
        }
    }

    #[test]
    fn gguf_headers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let dir = tempfile::tempdir().unwrap();
        let mut data = b"GGUF\x03\x00\x00\x00".to_vec();
        data.extend_from_slice(&bytes);
        let p = write(dir.path(), "x.gguf", &data);
        if let Ok(g) = Gguf::read(&p) {
            let _ = g.config_json();
            let _ = g.tokenizer();
        }
    }

    #[test]
    fn sae_configs_never_panic(json in "\\PC{0,200}", d_in in 0u64..100, d_sae in 0u64..100) {
        let dir = tempfile::tempdir().unwrap();
        let sae = dir.path().join("sae");
        std::fs::create_dir_all(&sae).unwrap();
        write(&sae, "cfg.json", json.as_bytes());
        // A well-formed cfg with arbitrary sizes, over weights that may not match.
        let cfg = format!("{{\"d_in\": {d_in}, \"d_sae\": {d_sae}, \"hook_name\": \"blocks.0.hook_resid_pre\"}}");
        let sae2 = dir.path().join("sae2");
        std::fs::create_dir_all(&sae2).unwrap();
        write(&sae2, "cfg.json", cfg.as_bytes());
        for dir in [&sae, &sae2] {
            write(dir, "sae_weights.safetensors", &tiny_llama_weights()[..64]);
            let hub = Hub::from_env(false).unwrap();
            if let Ok(files) = SaeFiles::resolve(&Location::Local(dir.to_path_buf()), "", &hub) {
                prop_assert!(Sae::load(&files, &SaeDefaults::default(), &Device::Cpu).is_err());
            }
        }
    }

    #[test]
    fn configs_never_panic(text in "\\PC{0,300}") {
        let _ = Config::parse(&text);
        let _ = PcaConfig::parse(&text);
    }

    #[test]
    fn text_files_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2000), long_line in 0usize..100_000) {
        let dir = tempfile::tempdir().unwrap();
        let mut data = bytes.clone();
        data.extend(std::iter::repeat_n(b'x', long_line));
        for name in ["t.txt", "t.jsonl", "t.parquet"] {
            let p = write(dir.path(), name, &data);
            let _ = saecooc::data::read_documents(&p, "text");
        }
    }
}

/// Runs `saecooc {stage} --config` on `config` and returns its stderr, asserting a clean
/// failure: exit status 1, no panic.
fn stage_error(stage: &str, config: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "config.toml", config.as_bytes());
    let out = common::saecooc(&["--quiet", stage, "--config"])
        .arg(&path)
        .output()
        .unwrap();
    clean_error(&out)
}

/// The stderr of a command that must have failed cleanly (exit status 1, no panic).
fn clean_error(out: &std::process::Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

/// A `cooc` config with `thresholds` and `run` keys. Its inputs do not exist, so an error
/// about the values shows they were checked before anything was opened.
fn cooc_config(thresholds: &str, run: &str) -> String {
    format!(
        r#"[generation]
n_batches = 1
model_name = "m"
sae_release_short = "r"
sae_ids = ["blocks.0.hook_resid_pre"]
activation_thresholds = {thresholds}

[source]
model = "/nonexistent/model"
sae = "/nonexistent/sae"
dataset = "/nonexistent/corpus.txt"

[run]
{run}
"#
    )
}

#[test]
fn negative_duplicate_and_non_finite_thresholds_are_refused() {
    for (thresholds, want) in [
        (
            "[0, -0.5]",
            "generation.activation_thresholds contains -0.5",
        ),
        (
            "[1.5, 0, 1.5]",
            "generation.activation_thresholds contains 1.5 twice",
        ),
        ("[nan]", "generation.activation_thresholds contains NaN"),
        (
            "[0, -inf]",
            "generation.activation_thresholds contains -inf",
        ),
    ] {
        let err = stage_error("cooc", &cooc_config(thresholds, ""));
        assert!(err.contains(want), "{thresholds}: {err}");
    }
    let pca = r#"[generation]
n_batches_generation = 1
[model]
name = "m"
sae_release_short = "r"
sae_ids = ["blocks.0.hook_resid_pre"]
[processing]
n_batches_reconstruction = 1
activation_threshold = -1
subgraph_sizes_to_plot = [4]
"#;
    let err = stage_error("pca", pca);
    assert!(
        err.contains("processing.activation_threshold contains -1"),
        "{err}"
    );
}

#[test]
fn absurd_batch_sizes_are_refused_before_any_allocation() {
    for prompts in ["1000000000000", "1000000000000000000"] {
        let run = format!("prompts_per_batch = {prompts}");
        let err = stage_error("cooc", &cooc_config("[0]", &run));
        assert!(
            err.contains(&format!("run.prompts_per_batch is {prompts}"))
                && err.contains("at most 65536"),
            "{err}"
        );
    }
    let run = "prompts_per_batch = 65536\ncontext_size = 1024";
    let err = stage_error("cooc", &cooc_config("[0]", run));
    assert!(
        err.contains("run.prompts_per_batch × context_size = 65536 × 1024"),
        "{err}"
    );
}

#[test]
fn saes_without_latents_or_inputs_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let hook = "blocks.0.hook_resid_pre";
    let cases = [
        (
            serde_json::json!({"d_in": 4, "hook_name": hook}),
            4,
            0,
            "d_sae is 0",
        ),
        (
            serde_json::json!({"d_in": 4, "d_sae": 0, "hook_name": hook}),
            4,
            0,
            "cfg.json: d_sae must be a positive integer, found 0",
        ),
        (
            serde_json::json!({"d_in": 0, "hook_name": hook}),
            0,
            3,
            "cfg.json: d_in must be a positive integer, found 0",
        ),
        (
            serde_json::json!({"d_in": 4, "hook_name": hook, "architecture": "topk",
                               "activation_fn_kwargs": {"k": 0}}),
            4,
            3,
            "cfg.json: activation_fn_kwargs.k must be a positive integer, found 0",
        ),
        (
            serde_json::json!({"d_in": 4, "hook_name": hook, "context_size": 1}),
            4,
            3,
            "context_size is 1",
        ),
    ];
    let hub = Hub::from_env(false).unwrap();
    for (i, (cfg, d_in, d_sae, want)) in cases.into_iter().enumerate() {
        let sae = dir.path().join(format!("sae{i}"));
        common::saelens_sae(&sae, cfg, d_in, d_sae);
        let files = SaeFiles::resolve(&Location::Local(sae), "", &hub).unwrap();
        let err = Sae::load(&files, &SaeDefaults::default(), &Device::Cpu)
            .err()
            .expect("an error")
            .to_string();
        // The error names the file the bad value is in: cfg.json, or the weights.
        let file = if want.contains("cfg.json") {
            "cfg.json"
        } else {
            "sae_weights.safetensors"
        };
        assert!(err.contains(want) && err.contains(file), "{err}");
    }
}

#[test]
fn synth_refuses_degenerate_shapes_before_writing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("synth");
    for (flag, value, want) in [
        (
            "--n-positions",
            "1",
            "--n-positions is 1: it must be at least 2",
        ),
        ("--d-model", "0", "--d-model is 0: it must be at least 1"),
        ("--d-sae", "0", "--d-sae is 0: it must be at least 1"),
        (
            "--heads",
            "3",
            "--d-model 64 is not a multiple of --heads 3",
        ),
        ("--random-jaccard", "0", "--random-jaccard is 0"),
    ] {
        let o = common::saecooc(&["--quiet", "synth", "--out", out.to_str().unwrap()])
            .args([flag, value])
            .output()
            .unwrap();
        let err = clean_error(&o);
        assert!(err.contains(want), "{flag} {value}: {err}");
        assert!(!out.exists(), "{flag} {value} wrote {}", out.display());
    }
}

#[test]
fn train_sae_refuses_out_of_range_flags_before_loading() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(dir.path(), "config.toml", cooc_config("[0]", "").as_bytes());
    let out = dir.path().join("trained");
    for (flags, want) in [
        (&["--d-sae", "0"][..], "--d-sae is 0"),
        (
            &["--d-sae", "8", "--k", "9"],
            "--k is 9: it must be at least 1 and at most 8",
        ),
        (&["--d-sae", "64", "--lr", "nan"], "--lr is NaN"),
        (
            &["--d-sae", "64", "--buffer-passes", "0"],
            "--buffer-passes is 0",
        ),
    ] {
        let o = common::saecooc(&["--quiet", "train-sae", "--hook", "blocks.0.hook_resid_pre"])
            .arg("--config")
            .arg(&config)
            .arg("--out")
            .arg(&out)
            .args(flags)
            .output()
            .unwrap();
        let err = clean_error(&o);
        assert!(err.contains(want), "{flags:?}: {err}");
    }
}

/// `saecooc … | head -1`: when the reader goes away, saecooc ends as `cat` would (killed by
/// SIGPIPE), without a panic message.
#[test]
fn a_closed_stdout_ends_quietly() {
    use std::os::unix::process::ExitStatusExt;
    use std::process::Stdio;
    let mut child = common::saecooc(&["bench", "--widths", "8", "--l0", "1", "--tokens", "4"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Close the read end before the table is printed.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !err.contains("panicked") && !err.contains("Broken pipe"),
        "{err}"
    );
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGPIPE),
        "{:?}: {err}",
        out.status
    );
}
