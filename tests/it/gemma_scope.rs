//! Gemma-2 with a Gemma Scope SAE (`params.npz`, JumpReLU) end to end through `cooc`, on the
//! random tiny Gemma-2 of the golden tests, a word-level tokenizer written here, and a corpus
//! of its words.

use crate::common::{
    assert_ok, files_under, saecooc, write_gemma_scope_params, write_word_corpus,
    write_word_level_tokenizer,
};
use std::path::Path;

#[test]
fn gemma2_with_a_gemma_scope_sae_runs_through_cooc() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny-gemma2");
    write_word_level_tokenizer(&d.join("tokenizer.json"));
    let scope = d.join("scope/layer_1/width_16k/canonical");
    std::fs::create_dir_all(&scope).unwrap();
    write_gemma_scope_params(&scope.join("params.npz"), 3);
    write_word_corpus(&d.join("corpus.txt"), 200, 5);
    let config = format!(
        r#"[generation]
n_batches = 3
model_name = "tiny-gemma2"
sae_release_short = "scope-test"
sae_ids = ["layer_1/width_16k/canonical"]
activation_thresholds = [0.0, 1.0]
remove_special_tokens = true

[source]
model = "{model}"
tokenizer = "{tok}"
sae = "{scope}/{{sae_id}}"
dataset = "{corpus}"

[run]
context_size = 32
prompts_per_batch = 4
tokens_per_batch = 100
"#,
        model = model.display(),
        tok = d.join("tokenizer.json").display(),
        scope = d.join("scope").display(),
        corpus = d.join("corpus.txt").display(),
    );
    std::fs::write(d.join("run.toml"), config).unwrap();
    let out = saecooc(&["--quiet", "cooc", "--config"])
        .arg(d.join("run.toml"))
        .arg("--results-dir")
        .arg(d.join("results"))
        .output()
        .unwrap();
    assert_ok(&out);
    let folder = d.join("results/tiny-gemma2/scope-test/layer_1_width_16k_canonical/n_batches_3");
    assert_eq!(files_under(&folder).len(), 7, "{:?}", files_under(&folder));
    let run: serde_json::Value =
        serde_json::from_slice(&std::fs::read(folder.join("run.json")).unwrap()).unwrap();
    // Each batch: 4 windows, BOS and separators dropped (at most 124 kept), first 100 counted.
    assert_eq!(run["tokens_counted"], 300);
    assert_eq!(run["batch_rule"], "special_removed");
    assert_eq!(run["hook"], "blocks.1.hook_resid_post");
    assert_eq!(run["sae"]["architecture"], "JumpRelu");
    assert_eq!(
        run["sae"]["residual_centred"], false,
        "RMSNorm models are not centred"
    );
    let (l0_low, l0_high) = (
        run["thresholds"][0]["l0_mean"].as_f64().unwrap(),
        run["thresholds"][1]["l0_mean"].as_f64().unwrap(),
    );
    assert!(
        l0_low > 0.0 && l0_low < 48.0 && l0_high < l0_low,
        "{l0_low} {l0_high}"
    );
}
