//! Inputs are read into strict types and checked before any work: a key present with the wrong
//! type is an error naming it and its file (absent keys keep their defaults, unknown keys are
//! ignored), SAE weights must be floats, cross-field constraints hold, every token id from a
//! config or a model file is an id of the vocabulary, and text that is not UTF-8 is refused
//! saying what its bytes look like.

use crate::common;
use crate::common::{assert_ok, config_text, fixture, run_cooc, saelens_sae};
use candle_core::{DType, Device, Tensor};
use saecooc::hub::{Hub, Location};
use saecooc::io::npz::NpzWriter;
use saecooc::model::decoder::DecoderConfig;
use saecooc::model::{load_model, HookPoint, ModelFiles};
use saecooc::sae::{Architecture, Normalization, Sae, SaeDefaults, SaeFiles};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

const HOOK: &str = "blocks.0.hook_resid_pre";

/// Loads the SAE in `dir`.
fn load_sae(dir: &Path) -> anyhow::Result<Sae> {
    let hub = Hub::from_env(false).unwrap();
    let files = SaeFiles::resolve(&Location::Local(dir.to_path_buf()), "", &hub)?;
    Sae::load(&files, &SaeDefaults::default(), &Device::Cpu)
}

/// The error of loading the SAE in `dir`, as the CLI shows it.
fn sae_error(dir: &Path) -> String {
    format!(
        "{:#}",
        load_sae(dir).err().expect("the SAE should be refused")
    )
}

/// `base` with `key` set to `value` (a `metadata.` prefix sets it under `metadata`).
fn with(base: &Value, key: &str, value: Value) -> Value {
    let mut cfg = base.clone();
    match key.strip_prefix("metadata.") {
        Some(inner) => {
            cfg["metadata"][inner] = value;
        }
        None => cfg[key] = value,
    }
    cfg
}

#[test]
fn sae_cfg_keys_of_the_wrong_type_are_refused_naming_key_value_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let base = json!({"d_in": 4, "d_sae": 3, "hook_name": HOOK});
    let cases = [
        (
            "d_sae",
            json!("512"),
            "d_sae must be a positive integer, found \"512\"",
        ),
        (
            "d_sae",
            json!(-512),
            "d_sae must be a positive integer, found -512",
        ),
        (
            "d_sae",
            json!(512.5),
            "d_sae must be a positive integer, found 512.5",
        ),
        (
            "d_in",
            json!("4"),
            "d_in must be a positive integer, found \"4\"",
        ),
        (
            "context_size",
            json!("big"),
            "context_size must be a positive integer, found \"big\"",
        ),
        (
            "apply_b_dec_to_input",
            json!(0),
            "apply_b_dec_to_input must be true or false, found 0",
        ),
        (
            "prepend_bos",
            json!("yes"),
            "prepend_bos must be true or false, found \"yes\"",
        ),
        ("hook_name", json!(7), "hook_name must be a string, found 7"),
        (
            "normalize_activations",
            json!(false),
            "normalize_activations must be a string",
        ),
        (
            "norm_scaling_factor",
            json!(-2.0),
            "norm_scaling_factor must be a finite number > 0, found -2.0",
        ),
        (
            "norm_scaling_factor",
            json!("1.5"),
            "norm_scaling_factor must be a finite number > 0",
        ),
        (
            "rescale_acts_by_decoder_norm",
            json!("true"),
            "rescale_acts_by_decoder_norm must be true or false",
        ),
        (
            "activation_fn_kwargs",
            json!({"k": "2"}),
            "activation_fn_kwargs.k must be a positive integer, found \"2\"",
        ),
        (
            "model_from_pretrained_kwargs",
            json!({"center_writing_weights": "no"}),
            "model_from_pretrained_kwargs.center_writing_weights must be true or false",
        ),
        // SAELens 6 keeps some keys under `metadata`.
        (
            "metadata.context_size",
            json!("big"),
            "metadata.context_size must be a positive integer, found \"big\"",
        ),
        (
            "metadata.prepend_bos",
            json!(1),
            "metadata.prepend_bos must be true or false, found 1",
        ),
        ("metadata", json!("none"), "metadata must be an object"),
    ];
    for (i, (key, value, want)) in cases.into_iter().enumerate() {
        let sae = dir.path().join(format!("sae{i}"));
        saelens_sae(&sae, with(&base, key, value), 4, 3);
        let err = sae_error(&sae);
        let cfg = sae.join("cfg.json").display().to_string();
        assert!(err.contains(&format!("{cfg}: {want}")), "{key}: {err}");
    }
}

#[test]
fn absent_null_and_unknown_sae_cfg_keys_keep_the_defaults() {
    let dir = tempfile::tempdir().unwrap();
    // SAELens ≤ 5: top-level keys, nulls and keys saecooc does not read.
    let old = dir.path().join("old");
    saelens_sae(
        &old,
        json!({"d_in": 4, "d_sae": 3, "hook_name": HOOK, "neuronpedia_id": null,
               "context_size": null, "norm_scaling_factor": null, "device": "cuda",
               "some_future_key": [1, {"x": "y"}], "dtype": "float32"}),
        4,
        3,
    );
    let sae = load_sae(&old).unwrap();
    assert!(sae.cfg.apply_b_dec_to_input);
    assert_eq!(sae.cfg.context_size, None);
    assert_eq!(sae.cfg.architecture, Architecture::Standard);
    assert_eq!(sae.cfg.normalize_activations, Normalization::None);
    // SAELens 6: metadata holds hook_name, context_size and prepend_bos.
    let new = dir.path().join("new");
    saelens_sae(
        &new,
        json!({"d_in": 4, "d_sae": 3, "architecture": "topk", "k": 2,
               "apply_b_dec_to_input": false,
               "normalize_activations": "expected_average_only_in", "norm_scaling_factor": 2.5,
               "metadata": {"hook_name": HOOK, "context_size": 64, "prepend_bos": false,
                            "sae_lens_version": "6.0.0"}}),
        4,
        3,
    );
    let sae = load_sae(&new).unwrap();
    assert_eq!(sae.cfg.hook_name, HOOK);
    assert_eq!(sae.cfg.context_size, Some(64));
    assert_eq!(sae.cfg.prepend_bos, Some(false));
    assert!(!sae.cfg.apply_b_dec_to_input);
    assert_eq!(sae.cfg.architecture, Architecture::TopK(2));
    assert_eq!(
        sae.cfg.normalize_activations,
        Normalization::ExpectedAverageOnlyIn(Some(2.5))
    );
}

#[test]
fn topk_k_beyond_d_sae_is_refused_naming_key_value_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let sae = dir.path().join("sae");
    saelens_sae(
        &sae,
        json!({"d_in": 4, "hook_name": HOOK, "architecture": "topk",
               "activation_fn_kwargs": {"k": 9}}),
        4,
        3,
    );
    let err = sae_error(&sae);
    assert!(
        err.contains(&format!("{}: TopK k = 9", sae.join("cfg.json").display()))
            && err.contains("d_sae = 3"),
        "{err}"
    );
    // k = d_sae is the largest k allowed.
    saelens_sae(
        &sae,
        json!({"d_in": 4, "hook_name": HOOK, "architecture": "topk", "k": 3}),
        4,
        3,
    );
    assert_eq!(
        load_sae(&sae).unwrap().cfg.architecture,
        Architecture::TopK(3)
    );
}

/// An SAE folder whose `W_enc` is an integer tensor of `dtype`.
fn sae_with_integer_encoder(dir: &Path, dtype: DType) {
    std::fs::create_dir_all(dir).unwrap();
    let zeros = |shape: &[usize], dtype| Tensor::zeros(shape, dtype, &Device::Cpu).unwrap();
    let tensors = std::collections::HashMap::from([
        ("W_enc", zeros(&[4, 3], dtype)),
        ("b_enc", zeros(&[3], DType::F32)),
        ("W_dec", zeros(&[3, 4], DType::F32)),
        ("b_dec", zeros(&[4], DType::F32)),
    ]);
    candle_core::safetensors::save(&tensors, dir.join("sae_weights.safetensors")).unwrap();
    std::fs::write(
        dir.join("cfg.json"),
        json!({"d_in": 4, "hook_name": HOOK}).to_string(),
    )
    .unwrap();
}

#[test]
fn integer_sae_weights_are_refused_naming_tensor_dtype_and_file() {
    let dir = tempfile::tempdir().unwrap();
    for (dtype, name) in [(DType::I64, "i64"), (DType::U8, "u8"), (DType::U32, "u32")] {
        let sae = dir.path().join(name);
        sae_with_integer_encoder(&sae, dtype);
        let err = sae_error(&sae);
        let weights = sae.join("sae_weights.safetensors").display().to_string();
        assert!(
            err.contains(&format!("{weights}: tensor 'W_enc' has dtype {name}")),
            "{err}"
        );
    }
    // Gemma Scope params.npz: an int32 decoder.
    let params = dir.path().join("params.npz");
    let mut npz = NpzWriter::create(&params, false).unwrap();
    npz.add_array("W_enc", &[4, 3], &[0f32; 12]).unwrap();
    npz.add_array("W_dec", &[3, 4], &[1i32; 12]).unwrap();
    npz.add_array("b_enc", &[3], &[0f32; 3]).unwrap();
    npz.add_array("b_dec", &[4], &[0f32; 4]).unwrap();
    npz.add_array("threshold", &[3], &[0f32; 3]).unwrap();
    npz.finish().unwrap();
    let hub = Hub::from_env(false).unwrap();
    let files = SaeFiles::resolve(&Location::Local(params.clone()), "", &hub).unwrap();
    let defaults = SaeDefaults {
        hook_name: Some(HOOK.into()),
        ..Default::default()
    };
    let err = format!(
        "{:#}",
        Sae::load(&files, &defaults, &Device::Cpu).err().unwrap()
    );
    assert!(
        err.contains(&format!(
            "{}: tensor 'W_dec' has dtype int32",
            params.display()
        )),
        "{err}"
    );
}

/// A copy of the fixture's model folder whose config.json has `key` set to `value`.
fn model_with(dir: &Path, model: &Path, key: &str, value: Value) -> PathBuf {
    let copy = dir.join(format!("model_{key}"));
    std::fs::create_dir_all(&copy).unwrap();
    for entry in std::fs::read_dir(model).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, copy.join(path.file_name().unwrap())).unwrap();
    }
    let cfg_path = copy.join("config.json");
    let mut cfg: Value = serde_json::from_slice(&std::fs::read(&cfg_path).unwrap()).unwrap();
    cfg[key] = value;
    std::fs::write(&cfg_path, cfg.to_string()).unwrap();
    copy
}

#[test]
fn model_config_keys_of_the_wrong_type_are_refused_naming_key_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = fixture(dir.path());
    let hub = Hub::from_env(false).unwrap();
    let hook = HookPoint::parse("blocks.1.hook_resid_pre").unwrap();
    let cases = [
        (
            "n_embd",
            json!("64"),
            "n_embd must be a positive integer, found \"64\"",
        ),
        (
            "n_layer",
            json!(2.5),
            "n_layer must be a positive integer, found 2.5",
        ),
        (
            "layer_norm_epsilon",
            json!("1e-5"),
            "layer_norm_epsilon must be a finite number > 0",
        ),
        (
            "model_type",
            json!(2),
            "model_type must be a string, found 2",
        ),
        (
            "bos_token_id",
            json!("50256"),
            "bos_token_id must be a token id",
        ),
        ("eos_token_id", json!(-1), "eos_token_id must be a token id"),
    ];
    for (key, value, want) in cases {
        let model = model_with(dir.path(), &p.model, key, value);
        let files = ModelFiles::resolve(&Location::Local(model.clone()), &hub).unwrap();
        let err = match load_model(&files, hook, &Device::Cpu) {
            Err(e) => format!("{e:#}"),
            Ok(_) => format!("{:#}", files.special_tokens().unwrap_err()),
        };
        let cfg = model.join("config.json").display().to_string();
        assert!(err.contains(&format!("{cfg}: {want}")), "{key}: {err}");
    }

    // The decoder family's config.json.
    let base = json!({"model_type": "llama", "hidden_size": 64, "num_attention_heads": 4,
                      "num_hidden_layers": 2, "vocab_size": 100, "intermediate_size": 128,
                      "rope_scaling": null, "torch_dtype": "bfloat16"});
    assert!(DecoderConfig::from_json(&base, "config.json").is_ok());
    let cases = [
        (
            "hidden_size",
            json!("64"),
            "hidden_size must be a positive integer",
        ),
        (
            "num_key_value_heads",
            json!(0),
            "num_key_value_heads must be a positive integer, found 0",
        ),
        (
            "rope_theta",
            json!("10000"),
            "rope_theta must be a finite number > 0, found \"10000\"",
        ),
        (
            "rms_norm_eps",
            json!(-1e-6),
            "rms_norm_eps must be a finite number > 0",
        ),
        (
            "tie_word_embeddings",
            json!(1),
            "tie_word_embeddings must be true or false, found 1",
        ),
        (
            "max_position_embeddings",
            json!("4k"),
            "max_position_embeddings must be a positive integer",
        ),
        ("hidden_act", json!(["silu"]), "hidden_act must be a string"),
        (
            "rope_parameters",
            json!({"rope_theta": "big"}),
            "rope_parameters.rope_theta must be a finite number > 0",
        ),
    ];
    for (key, value, want) in cases {
        let err = DecoderConfig::from_json(&with(&base, key, value), "m/config.json")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!("m/config.json: {want}")),
            "{key}: {err}"
        );
    }
    let gemma = with(&base, "model_type", json!("gemma2"));
    let err = DecoderConfig::from_json(&with(&gemma, "layer_types", json!([1, 2])), "g.json")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("g.json: layer_types must be a list of strings"),
        "{err}"
    );
}

/// Runs cooc on the fixture with `run_extra` appended to `[run]` and the model at `model`;
/// returns its stderr, asserting a clean failure.
fn cooc_error(dir: &Path, p: &saecooc::synth::SynthPaths, model: &Path, run_extra: &str) -> String {
    std::fs::create_dir_all(dir).unwrap();
    let config = config_text(p, 1, "").replace(
        &format!("model = \"{}\"", p.model.display()),
        &format!("model = \"{}\"", model.display()),
    ) + run_extra;
    let (out, results) = run_cooc(dir, &config);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        common::files_under(&results).is_empty(),
        "nothing is written before the check"
    );
    err
}

#[test]
fn every_sae_that_cannot_be_resolved_is_named_at_once_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = fixture(d);
    let config = config_text(&p, 1, "").replace(
        r#"sae_ids = ["blocks.1.hook_resid_pre"]"#,
        r#"sae_ids = ["blocks.7.hook_resid_pre", "blocks.1.hook_resid_pre", "layer_3/width_1k/x"]"#,
    );
    let (out, results) = run_cooc(d, &config);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("cooc: 2 of the 3 SAEs cannot be resolved, so nothing was run")
            && err.contains("SAE blocks.7.hook_resid_pre: ")
            && err.contains("SAE layer_3/width_1k/x: ")
            && !err.contains("SAE blocks.1.hook_resid_pre: "),
        "{err}"
    );
    assert!(
        common::files_under(&results).is_empty(),
        "nothing is written: the good SAE is not counted either"
    );
}

#[test]
fn token_ids_outside_the_vocabulary_are_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = fixture(d);
    let err = cooc_error(
        &d.join("sep"),
        &p,
        &p.model,
        "sequence_separator = 99999999\n",
    );
    // The key, the value and the file that holds them.
    let file = d.join("sep").join("run.toml");
    assert!(
        err.contains(&format!(
            "[run] sequence_separator in {} is 99999999",
            file.display()
        )) && err.contains("50257 ids"),
        "{err}"
    );
    for key in ["bos_token_id", "eos_token_id", "pad_token_id"] {
        let model = model_with(d, &p.model, key, json!(99999999));
        let err = cooc_error(&d.join(key), &p, &model, "");
        let cfg = model.join("config.json").display().to_string();
        assert!(
            err.contains(&format!("{key} in {cfg} is 99999999")) && err.contains("50257 ids"),
            "{err}"
        );
    }
    // A list of ids (as Llama 3 writes eos_token_id) is checked id by id.
    let model = model_with(d, &p.model, "eos_token_id", json!([50256, 60000]));
    let err = cooc_error(&d.join("list"), &p, &model, "");
    assert!(
        err.contains("eos_token_id in") && err.contains("is 60000"),
        "{err}"
    );
    // An id inside the vocabulary runs.
    std::fs::create_dir_all(d.join("ok")).unwrap();
    let (out, _) = run_cooc(
        &d.join("ok"),
        &(config_text(&p, 1, "") + "sequence_separator = 13\n"),
    );
    assert_ok(&out);
}

/// UTF-16 LE bytes of `text`, with a byte-order mark when `bom`.
fn utf16le(text: &str, bom: bool) -> Vec<u8> {
    let mut out = if bom { vec![0xFF, 0xFE] } else { vec![] };
    out.extend(text.encode_utf16().flat_map(|u| u.to_le_bytes()));
    out
}

fn utf16be(text: &str) -> Vec<u8> {
    let mut out = vec![0xFE, 0xFF];
    out.extend(text.encode_utf16().flat_map(|u| u.to_be_bytes()));
    out
}

fn utf32le(text: &str) -> Vec<u8> {
    let mut out = vec![0xFF, 0xFE, 0, 0];
    out.extend(text.chars().flat_map(|c| (c as u32).to_le_bytes()));
    out
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// Byte encodings of `text` and what an error must say about each.
fn foreign_encodings(text: &str) -> Vec<(&'static str, Vec<u8>, &'static str)> {
    vec![
        (
            "utf16le",
            utf16le(text, true),
            "UTF-16 LE text (byte-order mark FF FE)",
        ),
        (
            "utf16le_nobom",
            utf16le(text, false),
            "UTF-16 LE text without a byte-order mark",
        ),
        (
            "utf16be",
            utf16be(text),
            "UTF-16 BE text (byte-order mark FE FF)",
        ),
        (
            "utf32le",
            utf32le(text),
            "UTF-32 LE text (byte-order mark FF FE 00 00)",
        ),
        ("gzip", gzip(text.as_bytes()), "gzip-compressed data"),
        (
            "zstd",
            zstd::encode_all(text.as_bytes(), 3).unwrap(),
            "zstd-compressed data",
        ),
        (
            "latin1",
            text.chars().map(|c| c as u32 as u8).collect(),
            "Latin-1 / Windows-1252 text",
        ),
        (
            "binary",
            b"\x7fELF\x02\x01\x01\x00\x00\x00".to_vec(),
            "binary data",
        ),
    ]
}

#[test]
fn text_that_is_not_utf8_is_refused_saying_what_its_bytes_look_like() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let text = "Caf\u{e9} one\nsecond line\n";
    let json_text = "{\"text\": \"caf\u{e9} one\"}\n{\"text\": \"two\"}\n";
    for (name, bytes, want) in foreign_encodings(text) {
        let path = d.join(format!("{name}.txt"));
        std::fs::write(&path, &bytes).unwrap();
        let err = format!(
            "{:#}",
            saecooc::data::read_documents(&path, "text").unwrap_err()
        );
        assert!(
            err.contains(&path.display().to_string()) && err.contains(want),
            "{name}.txt: {err}"
        );
    }
    for (name, bytes, want) in foreign_encodings(json_text) {
        if name == "binary" {
            continue;
        }
        let path = d.join(format!("{name}.jsonl"));
        std::fs::write(&path, &bytes).unwrap();
        let err = format!(
            "{:#}",
            saecooc::data::read_documents(&path, "text").unwrap_err()
        );
        assert!(err.contains(want), "{name}.jsonl: {err}");
    }
    // A UTF-8 byte-order mark is skipped, as Python's utf-8-sig does.
    for (name, body) in [("bom.txt", text), ("bom.jsonl", json_text)] {
        let path = d.join(name);
        std::fs::write(&path, [b"\xEF\xBB\xBF", body.as_bytes()].concat()).unwrap();
        let docs = saecooc::data::read_documents(&path, "text").unwrap();
        assert!(
            docs[0].starts_with("Caf") || docs[0].starts_with("caf"),
            "{name}: {docs:?}"
        );
    }
}

#[test]
fn configs_and_tokenizer_files_that_are_not_utf8_say_what_their_bytes_look_like() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = fixture(d);
    // The run config (TOML).
    let config = d.join("run.toml");
    std::fs::write(&config, utf16le(&config_text(&p, 1, ""), true)).unwrap();
    let out = common::saecooc(&["--quiet", "cooc", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("UTF-16 LE text (byte-order mark FF FE)"),
        "{err}"
    );
    // An SAE's cfg.json.
    let sae = d.join("sae");
    saelens_sae(&sae, json!({"d_in": 4, "hook_name": HOOK}), 4, 3);
    std::fs::write(
        sae.join("cfg.json"),
        utf16le(&json!({"d_in": 4, "hook_name": HOOK}).to_string(), false),
    )
    .unwrap();
    let err = sae_error(&sae);
    assert!(
        err.contains("UTF-16 LE text without a byte-order mark"),
        "{err}"
    );
    // A model's config.json and tokenizer files.
    let hub = Hub::from_env(false).unwrap();
    let model = model_with(d, &p.model, "n_head", json!(4));
    let cfg = model.join("config.json");
    let body = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(&cfg, utf16be(&body)).unwrap();
    let files = ModelFiles::resolve(&Location::Local(model.clone()), &hub).unwrap();
    let err = format!("{:#}", files.config_json().unwrap_err());
    assert!(
        err.contains("UTF-16 BE text (byte-order mark FE FF)"),
        "{err}"
    );
    let vocab = model.join("vocab.json");
    let body = std::fs::read_to_string(&vocab).unwrap();
    std::fs::write(&vocab, utf16le(&body, true)).unwrap();
    let err = format!(
        "{:#}",
        saecooc::tokenizer::load_tokenizer(&Location::Local(model.clone()), &hub).unwrap_err()
    );
    assert!(
        err.contains("vocab.json: its bytes look like UTF-16 LE text"),
        "{err}"
    );
    let json = d.join("tokenizer.json");
    std::fs::write(&json, gzip(b"{}")).unwrap();
    let err = format!(
        "{:#}",
        saecooc::tokenizer::load_tokenizer(&Location::Local(json), &hub).unwrap_err()
    );
    assert!(err.contains("gzip-compressed data"), "{err}");
}

#[test]
fn integer_model_weights_are_refused_naming_tensor_dtype_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = fixture(dir.path());
    let model = model_with(dir.path(), &p.model, "n_head", json!(4));
    let weights = model.join("model.safetensors");
    let mut tensors = candle_core::safetensors::load(&weights, &Device::Cpu).unwrap();
    let name = tensors
        .keys()
        .find(|k| k.ends_with("ln_f.weight"))
        .unwrap()
        .clone();
    let as_int = tensors[&name].to_dtype(DType::I64).unwrap();
    tensors.insert(name.clone(), as_int);
    candle_core::safetensors::save(&tensors, &weights).unwrap();
    let hub = Hub::from_env(false).unwrap();
    let files = ModelFiles::resolve(&Location::Local(model), &hub).unwrap();
    let hook = HookPoint::parse("blocks.1.hook_resid_post").unwrap();
    let err = match load_model(&files, hook, &Device::Cpu) {
        Err(e) => format!("{e:#}"),
        Ok(_) => panic!("integer weights were accepted"),
    };
    assert!(
        err.contains(&format!(
            "{}: tensor '{name}' has dtype I64",
            weights.display()
        )),
        "{err}"
    );
}

#[test]
fn gguf_metadata_of_the_wrong_type_is_refused_naming_key_and_file() {
    use candle_core::quantized::gguf_file::{self, Value as G};
    use saecooc::model::gguf::Gguf;
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, extra: (&str, G)| -> PathBuf {
        let mut metadata: Vec<(&str, G)> = vec![
            ("general.architecture", G::String("llama".into())),
            ("llama.attention.head_count", G::U32(4)),
            ("llama.embedding_length", G::U32(64)),
            ("llama.block_count", G::U32(2)),
            ("llama.feed_forward_length", G::U32(128)),
            ("llama.vocab_size", G::U32(100)),
        ];
        metadata.push(extra);
        let meta: Vec<(&str, &G)> = metadata.iter().map(|(k, v)| (*k, v)).collect();
        let none: [(&str, &candle_core::quantized::QTensor); 0] = [];
        let path = dir.path().join(name);
        let mut file = std::fs::File::create(&path).unwrap();
        gguf_file::write(&mut file, &meta, &none).unwrap();
        path
    };
    let ok = write("ok.gguf", ("tokenizer.ggml.bos_token_id", G::U32(1)));
    let cfg = Gguf::read(&ok).unwrap().config_json().unwrap();
    assert_eq!(cfg["bos_token_id"], 1);
    let cases = [
        (
            "llama.rope.freq_base",
            G::String("10000".into()),
            "must be a number > 0",
        ),
        (
            "llama.context_length",
            G::F32(2048.0),
            "must be a whole number ≥ 0",
        ),
        (
            "tokenizer.ggml.bos_token_id",
            G::I32(-1),
            "must be a whole number ≥ 0",
        ),
        (
            "llama.attention.head_count_kv",
            G::Bool(true),
            "must be a whole number ≥ 0",
        ),
    ];
    for (i, (key, value, want)) in cases.into_iter().enumerate() {
        let path = write(&format!("bad{i}.gguf"), (key, value));
        let err = format!(
            "{:#}",
            Gguf::read(&path).unwrap().config_json().unwrap_err()
        );
        assert!(
            err.contains(&format!("{}: GGUF metadata {key} {want}", path.display())),
            "{key}: {err}"
        );
    }
}

#[test]
fn a_tokenizer_config_of_the_wrong_type_is_refused_naming_key_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::from_env(false).unwrap();
    saecooc::synth::write_gpt2_tokenizer(dir.path()).unwrap();
    let config = dir.path().join("tokenizer_config.json");
    std::fs::write(&config, r#"{"clean_up_tokenization_spaces": "false"}"#).unwrap();
    let location = Location::Local(dir.path().to_path_buf());
    let err = match saecooc::tokenizer::TokenDecoder::load(&location, &hub) {
        Err(e) => format!("{e:#}"),
        Ok(_) => panic!("a string clean-up setting was accepted"),
    };
    assert!(
        err.contains(&format!(
            "{}: clean_up_tokenization_spaces must be true or false, found \"false\"",
            config.display()
        )),
        "{err}"
    );
    std::fs::write(
        &config,
        r#"{"clean_up_tokenization_spaces": false, "model_max_length": 1024}"#,
    )
    .unwrap();
    let decoder = saecooc::tokenizer::TokenDecoder::load(&location, &hub).unwrap();
    assert!(!decoder.clean_up_spaces);
}

/// Every SAE's cfg is read before any work: a broken cfg.json of the second SAE stops the run
/// before the first SAE is counted.
#[test]
fn a_broken_cfg_of_a_later_sae_stops_the_run_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let p = crate::common::fixture(dir.path());
    let saes = p.sae.parent().unwrap();
    let second = saes.join("blocks.1.hook_resid_post");
    std::fs::create_dir_all(&second).unwrap();
    std::fs::copy(
        p.sae.join("sae_weights.safetensors"),
        second.join("sae_weights.safetensors"),
    )
    .unwrap();
    let mut cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(p.sae.join("cfg.json")).unwrap()).unwrap();
    cfg["hook_name"] = "blocks.1.hook_scores".into();
    std::fs::write(second.join("cfg.json"), cfg.to_string()).unwrap();
    let config = crate::common::config_text(&p, 2, "").replace(
        r#"sae_ids = ["blocks.1.hook_resid_pre"]"#,
        r#"sae_ids = ["blocks.1.hook_resid_pre", "blocks.1.hook_resid_post"]"#,
    );
    assert!(config.contains("blocks.1.hook_resid_post"), "{config}");
    let (out, results) = crate::common::run_cooc(dir.path(), &config);
    let err = crate::common::stderr(&out);
    assert!(!out.status.success());
    assert!(
        err.contains("blocks.1.hook_resid_post")
            && err.contains("unsupported hook 'blocks.1.hook_scores'"),
        "{err}"
    );
    let written = crate::common::files_under(&results);
    assert!(
        written
            .iter()
            .all(|f| !f.to_string_lossy().contains("n_batches_")),
        "the first SAE ran: {written:?}"
    );
}
