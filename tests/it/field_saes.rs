//! The field's SAEs end to end through `cooc`: registry releases read from a local mirror
//! (`[source] sae` holding the registry's folders), at hooks beyond the residual stream, on tiny
//! random models of their families. Every count `cooc` writes equals a brute-force count over
//! the same batches: the model run to the hook, the SAE's encode, `act > t + θ`, and every pair
//! of active latents counted on each token (exact: integer counts).
//!
//! - Gemma 3 (tests/fixtures/tiny-gemma3) with Gemma Scope 2-shaped SAEs (`params.safetensors`
//!   and `config.json`) of the `-mlp-all` (hook_mlp_out) and `-att-all` (the attention output
//!   projection's input, `hook_z`) releases;
//! - Pythia (tests/fixtures/tiny-pythia) with a SAELens-format SAE of the `att-sm` release
//!   (hook_attn_out, centred as TransformerLens centres Pythia's writing weights).

use crate::common::{
    assert_ok, files_under, saecooc, write_word_corpus, write_word_level_tokenizer,
};
use rand::{Rng, SeedableRng};
use saecooc::activations::HookedSae;
use saecooc::config::Config;
use saecooc::inputs::{resolve, InputSpec, ResolveOptions};
use saecooc::results::layout::sae_results_dir;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

const THRESHOLDS: [f64; 2] = [0.0, 0.5];
const N_BATCHES: usize = 3;

/// Random SAE weights: `W_dec` rows drawn from `seed`, `W_enc` their transpose scaled so that
/// pre-activations are of order one, zero biases.
fn sae_weights(d_in: usize, d_sae: usize, seed: u64) -> (Vec<f32>, Vec<f32>) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let w_dec: Vec<f32> = (0..d_sae * d_in)
        .map(|_| rng.random_range(-1.0..1.0f32))
        .collect();
    let scale = 1.0 / (d_in as f32).sqrt();
    let w_enc: Vec<f32> = (0..d_in * d_sae)
        .map(|k| scale * w_dec[(k % d_sae) * d_in + k / d_sae])
        .collect();
    (w_enc, w_dec)
}

fn save(tensors: Vec<(&str, Vec<usize>, Vec<f32>)>, path: &Path) {
    let map: HashMap<String, candle_core::Tensor> = tensors
        .into_iter()
        .map(|(name, shape, data)| {
            let t = candle_core::Tensor::from_vec(data, shape, &candle_core::Device::Cpu).unwrap();
            (name.to_string(), t)
        })
        .collect();
    saecooc::model::save_safetensors(&map, path).unwrap();
}

/// A Gemma Scope 2 SAE folder: `params.safetensors` (lower-case names, JumpReLU threshold)
/// and the `config.json` Gemma Scope 2 ships, reading `hf_hook`.
fn write_gemma_scope_2(dir: &Path, d_in: usize, hf_hook: &str, seed: u64) {
    std::fs::create_dir_all(dir).unwrap();
    let d_sae = 48;
    let (w_enc, w_dec) = sae_weights(d_in, d_sae, seed);
    save(
        vec![
            ("w_enc", vec![d_in, d_sae], w_enc),
            ("w_dec", vec![d_sae, d_in], w_dec),
            ("b_enc", vec![d_sae], vec![0.0; d_sae]),
            ("b_dec", vec![d_in], vec![0.0; d_in]),
            ("threshold", vec![d_sae], vec![0.2; d_sae]),
        ],
        &dir.join("params.safetensors"),
    );
    let config = serde_json::json!({
        "architecture": "jump_relu",
        "model_name": "gemma-v3-270m-pt",
        "hf_hook_point_in": hf_hook,
    });
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
}

/// A SAELens SAE folder (standard ReLU SAE) reading `hook`.
fn write_saelens(dir: &Path, d_in: usize, hook: &str, seed: u64) {
    std::fs::create_dir_all(dir).unwrap();
    let d_sae = 48;
    let (w_enc, w_dec) = sae_weights(d_in, d_sae, seed);
    save(
        vec![
            ("W_enc", vec![d_in, d_sae], w_enc),
            ("W_dec", vec![d_sae, d_in], w_dec),
            ("b_enc", vec![d_sae], vec![0.0; d_sae]),
            ("b_dec", vec![d_in], vec![0.0; d_in]),
        ],
        &dir.join("sae_weights.safetensors"),
    );
    let cfg = serde_json::json!({
        "architecture": "standard", "d_in": d_in, "d_sae": d_sae, "hook_name": hook,
        "apply_b_dec_to_input": true, "normalize_activations": "none", "context_size": 32,
    });
    std::fs::write(dir.join("cfg.json"), cfg.to_string()).unwrap();
}

struct Case<'a> {
    model_name: &'a str,
    fixture: &'a str,
    release_short: &'a str,
    sae_id: &'a str,
    hook: &'a str,
}

/// The config of `case`: the fixture model, the word-level tokenizer, the corpus and the
/// local SAE mirror `saes`.
fn config_text(case: &Case, dir: &Path, saes: &Path) -> String {
    let model = crate::common::repo_path("tests/fixtures").join(case.fixture);
    format!(
        r#"[generation]
n_batches = {N_BATCHES}
model_name = "{model_name}"
sae_release_short = "{release}"
sae_ids = ["{id}"]
activation_thresholds = [0.0, 0.5]
remove_special_tokens = true

[source]
model = "{model}"
tokenizer = "{tok}"
sae = "{saes}"
dataset = "{corpus}"

[run]
context_size = 16
prompts_per_batch = 4
tokens_per_batch = 50
"#,
        model_name = case.model_name,
        release = case.release_short,
        id = case.sae_id,
        model = model.display(),
        tok = dir.join("tokenizer.json").display(),
        saes = saes.display(),
        corpus = dir.join("corpus.txt").display(),
    )
}

/// Brute-force counts of the run `config` describes: `[threshold][i * d + j]`, and the tokens
/// counted.
fn brute_force(config: &Config) -> (Vec<Vec<u64>>, u64) {
    let resolved = resolve(InputSpec::of_config(config), &ResolveOptions::default()).unwrap();
    let mut sae = HookedSae::load(&resolved, &config.generation.sae_ids[0]).unwrap();
    let d = sae.sae.cfg.d_sae;
    let mut stream = sae
        .runner
        .stream(&resolved, config.run.prompts_per_batch, true)
        .unwrap();
    let mut counts = vec![vec![0u64; d * d]; THRESHOLDS.len()];
    let mut tokens = 0u64;
    for _ in 0..N_BATCHES {
        let budget = config.run.tokens_per_batch as u64;
        let Some(batch) = stream.next_batch(budget).unwrap() else {
            break;
        };
        let acts_in = sae.runner.batch_residual(&batch, &resolved.device).unwrap();
        let acts = sae.encode(&acts_in).unwrap();
        tokens += batch.positions.len() as u64;
        for row in acts.chunks(d) {
            for (k, &t) in THRESHOLDS.iter().enumerate() {
                let active: Vec<usize> = (0..d)
                    .filter(|&i| row[i] > t as f32 + sae.sae.threshold[i])
                    .collect();
                for &i in &active {
                    for &j in &active {
                        counts[k][i * d + j] += 1;
                    }
                }
            }
        }
    }
    (counts, tokens)
}

/// Runs `cooc` on `case` and checks every count against the brute force; returns run.json.
fn run_and_check(case: &Case, dir: &Path, saes: &Path) -> serde_json::Value {
    let config_path = dir.join(format!("{}.toml", case.release_short));
    std::fs::write(&config_path, config_text(case, dir, saes)).unwrap();
    let results = dir.join("results");
    let out = saecooc(&["--quiet", "cooc", "--config"])
        .arg(&config_path)
        .arg("--results-dir")
        .arg(&results)
        .output()
        .unwrap();
    assert_ok(&out);
    let folder = sae_results_dir(
        &results,
        case.model_name,
        case.release_short,
        case.sae_id,
        N_BATCHES,
    );
    let run = crate::common::read_json(&folder.join("run.json"));
    assert_eq!(run["hook"], case.hook, "{}", case.sae_id);
    let (expected, tokens) = brute_force(&Config::load(&config_path).unwrap());
    assert_eq!(run["tokens_counted"], tokens);
    for (k, tag) in ["0_0", "0_5"].iter().enumerate() {
        let path = folder.join(format!("feature_acts_cooc_total_threshold_{tag}.npz"));
        let arrays = saecooc::io::npz::read_npz(&path).unwrap();
        let written: Vec<u64> = arrays[0].1.to_f32().iter().map(|&x| x as u64).collect();
        assert_eq!(written.len(), expected[k].len());
        let differing = written
            .iter()
            .zip(&expected[k])
            .filter(|(a, b)| a != b)
            .count();
        assert_eq!(
            differing, 0,
            "{} at threshold {tag}: {differing} counts differ",
            case.sae_id
        );
        let fired: u64 = expected[k].iter().sum();
        assert!(
            fired > tokens,
            "{}: too few latents fire to test anything",
            case.sae_id
        );
    }
    assert!(files_under(&folder).len() >= 7);
    run
}

fn world() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    write_word_level_tokenizer(&dir.path().join("tokenizer.json"));
    write_word_corpus(&dir.path().join("corpus.txt"), 120, 11);
    let saes = dir.path().join("saes");
    (dir, saes)
}

/// The tiny model's `config.json`, parsed.
fn model_config(fixture: &str) -> serde_json::Value {
    let path = crate::common::repo_path("tests/fixtures")
        .join(fixture)
        .join("config.json");
    crate::common::read_json(&path)
}

#[test]
fn gemma3_with_gemma_scope_2_saes_at_mlp_out_and_attn_out() {
    let (dir, saes) = world();
    let cfg = model_config("tiny-gemma3");
    let d_model = cfg["hidden_size"].as_u64().unwrap() as usize;
    let z_width =
        (cfg["num_attention_heads"].as_u64().unwrap() * cfg["head_dim"].as_u64().unwrap()) as usize;
    let id = "layer_1_width_16k_l0_small";
    write_gemma_scope_2(
        &saes.join("mlp_out_all").join(id),
        d_model,
        "model.layers.1.post_feedforward_layernorm.output",
        1,
    );
    write_gemma_scope_2(
        &saes.join("attn_out_all").join(id),
        z_width,
        "model.layers.1.self_attn.o_proj.input",
        2,
    );
    let mlp = Case {
        model_name: "google/gemma-3-270m",
        fixture: "tiny-gemma3",
        release_short: "gemma-scope-2-270m-pt-mlp-all",
        sae_id: id,
        hook: "blocks.1.hook_mlp_out",
    };
    let run = run_and_check(&mlp, dir.path(), &saes);
    assert_eq!(run["sae"]["residual_centred"], false);
    let att = Case {
        release_short: "gemma-scope-2-270m-pt-att-all",
        hook: "blocks.1.attn.hook_z",
        ..mlp
    };
    run_and_check(&att, dir.path(), &saes);
}

#[test]
fn pythia_with_an_attention_sae() {
    let (dir, saes) = world();
    let d_model = model_config("tiny-pythia")["hidden_size"].as_u64().unwrap() as usize;
    write_saelens(&saes.join("1-att-sm"), d_model, "blocks.1.hook_attn_out", 3);
    let case = Case {
        model_name: "pythia-70m-deduped",
        fixture: "tiny-pythia",
        release_short: "att-sm",
        sae_id: "blocks.1.hook_attn_out",
        hook: "blocks.1.hook_attn_out",
    };
    let run = run_and_check(&case, dir.path(), &saes);
    assert_eq!(
        run["sae"]["residual_centred"], true,
        "TransformerLens centres Pythia"
    );
}
