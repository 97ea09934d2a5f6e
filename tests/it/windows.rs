//! The token stream against SAELens: windows, and which tokens a batch counts.
//!
//! `tests/fixtures/golden/saelens_windows.json` holds documents, their GPT-2 tokens and the
//! windows SAELens' own `concat_and_batch_sequences` cut from them (written by
//! `scripts/golden/gen_window_golden.py`), with documents built to end exactly at window ends.
//! The end-to-end tests run `saecooc cooc` on those documents and compare its counts with a
//! brute-force count over the golden windows (exact: integer counts).

use crate::common::{assert_ok, fixture, gpt2_tokenizer, read_json, results_dir, run_cooc};
use saecooc::activations::HookedSae;
use saecooc::config::{Config, Generation, Run, Source};
use saecooc::data::{TokenSpec, WindowTokens, Windower};
use saecooc::inputs::{resolve, InputSpec, ResolveOptions};
use saecooc::tokenizer::encode_documents;
use serde_json::Value;
use std::path::Path;

const GPT2_BOS: u32 = 50256;

struct Case {
    name: String,
    context_size: usize,
    tokens: WindowTokens,
    documents: Vec<String>,
    document_tokens: Vec<Vec<u32>>,
    windows: Vec<Vec<u32>>,
    docs_ending_at_window_end: usize,
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

fn golden_cases() -> Vec<Case> {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden/saelens_windows.json");
    let json: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    json["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| Case {
            name: c["name"].as_str().unwrap().to_string(),
            context_size: c["context_size"].as_u64().unwrap() as usize,
            tokens: WindowTokens {
                begin: c["begin_batch_token_id"].as_u64().map(|x| x as u32),
                separator: c["sequence_separator_token_id"].as_u64().map(|x| x as u32),
            },
            documents: c["documents"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_str().unwrap().to_string())
                .collect(),
            document_tokens: c["document_tokens"]
                .as_array()
                .unwrap()
                .iter()
                .map(ids)
                .collect(),
            windows: c["windows"].as_array().unwrap().iter().map(ids).collect(),
            docs_ending_at_window_end: c["docs_ending_at_window_end"].as_u64().unwrap() as usize,
        })
        .collect()
}

/// The golden case with BOS windows at `context_size`.
fn bos_case(context_size: usize) -> Case {
    golden_cases()
        .into_iter()
        .find(|c| {
            c.context_size == context_size
                && c.tokens.begin == Some(GPT2_BOS)
                && c.tokens.separator == Some(GPT2_BOS)
        })
        .unwrap_or_else(|| panic!("no BOS case at context {context_size} in the golden file"))
}

#[test]
fn windows_equal_saelens_token_for_token() {
    let cases = golden_cases();
    let contexts: Vec<usize> = cases.iter().map(|c| c.context_size).collect();
    for ctx in [8, 32, 128] {
        assert!(contexts.contains(&ctx), "golden file lacks context {ctx}");
    }
    let tokenizer = gpt2_tokenizer();
    for case in &cases {
        // The golden must exercise the boundary rule, or it proves nothing.
        assert!(
            case.docs_ending_at_window_end >= 5,
            "{}: only {} documents end at a window end",
            case.name,
            case.docs_ending_at_window_end
        );
        let ours = encode_documents(&tokenizer, case.documents.clone()).unwrap();
        assert_eq!(
            ours, case.document_tokens,
            "{}: our GPT-2 tokens differ from transformers'",
            case.name
        );
        let mut windower = Windower::new(case.context_size, case.tokens);
        let mut windows = Vec::new();
        for doc in &ours {
            windower.push_document(doc);
            windows.extend(std::iter::from_fn(|| windower.pop_window()));
        }
        assert_eq!(
            windows.len(),
            case.windows.len(),
            "{}: window count",
            case.name
        );
        for (k, (a, b)) in windows.iter().zip(&case.windows).enumerate() {
            assert_eq!(a, b, "{}: window {k} differs", case.name);
        }
    }
}

/// Brute-force counts of the golden `windows` (row-major positions, special tokens dropped
/// and each batch cut to `tokens_per_batch` when asked): `counts[t][i * d + j]`, tokens counted.
struct BruteForce {
    counts: Vec<Vec<u64>>,
    tokens: u64,
}

fn brute_force(
    config: &Config,
    windows: &[Vec<u32>],
    thresholds: &[f64],
    per_batch: impl Fn(usize) -> usize,
) -> BruteForce {
    let resolved = resolve(InputSpec::of_config(config), &ResolveOptions::default()).unwrap();
    let device = &resolved.device;
    let mut encoder = HookedSae::load(&resolved, &config.generation.sae_ids[0]).unwrap();
    let d = encoder.sae.cfg.d_sae;
    let special = encoder.runner.special.clone();
    let remove = config.generation.remove_special_tokens;
    let mut counts = vec![vec![0u64; d * d]; thresholds.len()];
    let mut tokens = 0u64;
    for (b, batch) in windows
        .chunks(config.run.prompts_per_batch)
        .take(config.generation.n_batches)
        .enumerate()
    {
        let positions: Vec<u32> = batch
            .iter()
            .flatten()
            .enumerate()
            .filter(|(_, t)| !(remove && special.contains(t)))
            .map(|(p, _)| p as u32)
            .take(per_batch(b))
            .collect();
        if positions.is_empty() {
            continue;
        }
        tokens += positions.len() as u64;
        let resid = encoder.runner.residual(batch, &positions, device).unwrap();
        let acts = encoder.encode(&resid).unwrap();
        for row in acts.chunks(d) {
            for (k, &t) in thresholds.iter().enumerate() {
                let active: Vec<usize> = (0..d)
                    .filter(|&i| row[i] > t as f32 + encoder.sae.threshold[i])
                    .collect();
                for &i in &active {
                    for &j in &active {
                        counts[k][i * d + j] += 1;
                    }
                }
            }
        }
    }
    BruteForce { counts, tokens }
}

fn config_for(
    paths: &saecooc::synth::SynthPaths,
    dataset: &Path,
    n_batches: usize,
    remove_special_tokens: bool,
    run: Run,
) -> String {
    Config::new(
        Generation::new(
            "synthetic-gpt2",
            "synthetic",
            vec!["blocks.1.hook_resid_pre".into()],
            vec![0.0, 1.5],
            n_batches,
            remove_special_tokens,
        ),
        Source::local(&paths.model, paths.sae.parent().unwrap(), dataset),
        Run {
            context_size: Some(32),
            ..run
        },
    )
    .to_toml()
    .unwrap()
}

/// `[run]` with `prompts` windows and `tokens` tokens per batch.
fn batches(prompts: usize, tokens: usize) -> Run {
    Run {
        prompts_per_batch: prompts,
        tokens_per_batch: tokens,
        ..Run::default()
    }
}

/// The count matrices `cooc` wrote (dense `arr_0`, row-major) for each threshold tag.
fn written_counts(dir: &Path, tags: &[&str]) -> Vec<Vec<u64>> {
    tags.iter()
        .map(|tag| {
            let path = dir.join(format!("feature_acts_cooc_total_threshold_{tag}.npz"));
            let arrays = saecooc::io::npz::read_npz(&path).unwrap();
            arrays[0].1.to_f32().iter().map(|&x| x as u64).collect()
        })
        .collect()
}

/// Every count entry `cooc` wrote (thresholds 0.0 and 1.5) equals the brute force's.
fn assert_counts_written(out_dir: &Path, expected: &BruteForce, what: &str) {
    let written = written_counts(out_dir, &["0_0", "1_5"]);
    for (k, (w, e)) in written.iter().zip(&expected.counts).enumerate() {
        let differing = w.iter().zip(e).filter(|(a, b)| a != b).count();
        assert_eq!(
            differing, 0,
            "threshold {k}: {differing} count entries differ from {what}"
        );
    }
}

fn run_json(dir: &Path) -> Value {
    read_json(&dir.join("run.json"))
}

/// Writes the context-32 golden documents as a `.txt` corpus, one per line.
fn golden_corpus(dir: &Path) -> (Case, std::path::PathBuf) {
    let case = bos_case(32);
    for d in &case.documents {
        assert_eq!(
            saecooc::data::python_splitlines(d).len().max(1),
            1,
            "golden document spans lines: {d:?}"
        );
    }
    let path = dir.join("golden.txt");
    std::fs::write(&path, case.documents.join("\n") + "\n").unwrap();
    (case, path)
}

#[test]
fn cooc_counts_the_saelens_windows() {
    let dir = tempfile::tempdir().unwrap();
    let paths = fixture(dir.path());
    let (case, corpus) = golden_corpus(dir.path());
    let prompts = 4;
    let n_batches = (case.windows.len() / prompts).min(12);
    assert!(
        n_batches >= 3,
        "golden case too short: {} windows",
        case.windows.len()
    );
    // No special-token removal: the first n_batches × tokens_per_batch tokens, BOS included.
    let text = config_for(
        &paths,
        &corpus,
        n_batches,
        false,
        batches(prompts, prompts * 32),
    );
    let (out, results) = run_cooc(dir.path(), &text);
    assert_ok(&out);
    let out_dir = results_dir(&results, n_batches);
    let config = Config::parse(&text).unwrap();
    let expected = brute_force(&config, &case.windows, &[0.0, 1.5], |_| usize::MAX);
    assert_eq!(expected.tokens, (n_batches * prompts * 32) as u64);
    assert_counts_written(&out_dir, &expected, "the SAELens windows");
    let manifest = run_json(&out_dir);
    assert_eq!(manifest["tokens_counted"], expected.tokens);
    assert_eq!(manifest["windows_read"], (n_batches * prompts) as u64);
    assert_eq!(manifest["batch_rule"], "first_tokens");
    assert_eq!(manifest["window_tokens"]["begin"], GPT2_BOS);
    assert_eq!(manifest["window_tokens"]["separator"], GPT2_BOS);
}

#[test]
fn special_token_removal_counts_the_original_batches() {
    let dir = tempfile::tempdir().unwrap();
    let paths = fixture(dir.path());
    let (case, corpus) = golden_corpus(dir.path());
    let prompts = 4;
    let n_batches = (case.windows.len() / prompts).min(10);
    assert!(
        n_batches >= 3,
        "golden case too short: {} windows",
        case.windows.len()
    );
    let kept = |b: usize| -> usize {
        case.windows[b * prompts..(b + 1) * prompts]
            .iter()
            .flatten()
            .filter(|&&t| t != GPT2_BOS)
            .count()
    };
    // 4 windows of 32 keep at most 124 tokens; a cap of 120 cuts some batches, not others.
    let per_batch = 120;
    assert!((0..n_batches).any(|b| kept(b) > per_batch));
    assert!((0..n_batches).any(|b| kept(b) < per_batch));
    let text = config_for(
        &paths,
        &corpus,
        n_batches,
        true,
        batches(prompts, per_batch),
    );
    let (out, results) = run_cooc(dir.path(), &text);
    assert_ok(&out);
    let out_dir = results_dir(&results, n_batches);
    let config = Config::parse(&text).unwrap();
    let expected = brute_force(&config, &case.windows, &[0.0, 1.5], |_| per_batch);
    let by_hand: usize = (0..n_batches).map(|b| kept(b).min(per_batch)).sum();
    assert_eq!(expected.tokens, by_hand as u64);
    assert!(expected.tokens < (n_batches * per_batch) as u64);
    assert_counts_written(&out_dir, &expected, "the original's batches");
    let manifest = run_json(&out_dir);
    assert_eq!(manifest["tokens_counted"], expected.tokens);
    assert_eq!(manifest["batches_counted"], n_batches as u64);
    assert_eq!(manifest["windows_read"], (n_batches * prompts) as u64);
    assert_eq!(manifest["batch_rule"], "special_removed");
}

#[test]
fn windows_without_bos_follow_the_config() {
    // `[run] prepend_bos = false`: windows start with text and, by default, documents are
    // joined with no separator (SAELens 3); `sequence_separator = "bos"` gives SAELens 6's.
    for (separator, expect_sep) in [(None, None), (Some(TokenSpec::Bos), Some(GPT2_BOS))] {
        let case = golden_cases()
            .into_iter()
            .find(|c| {
                c.context_size == 32 && c.tokens.begin.is_none() && c.tokens.separator == expect_sep
            })
            .expect("golden case without BOS");
        let dir = tempfile::tempdir().unwrap();
        let paths = fixture(dir.path());
        let corpus = dir.path().join("docs.txt");
        std::fs::write(&corpus, case.documents.join("\n") + "\n").unwrap();
        let run = Run {
            prepend_bos: Some(false),
            sequence_separator: separator,
            ..batches(2, 64)
        };
        let text = config_for(&paths, &corpus, 2, false, run);
        let config = Config::parse(&text).unwrap();
        let resolved = resolve(InputSpec::of_config(&config), &ResolveOptions::default()).unwrap();
        let encoder = HookedSae::load(&resolved, "blocks.1.hook_resid_pre").unwrap();
        assert_eq!(encoder.runner.window_tokens, case.tokens, "{}", case.name);
        let mut stream = encoder.runner.windows(&resolved).unwrap();
        let windows: Vec<Vec<u32>> = std::iter::from_fn(|| stream.next_window().unwrap()).collect();
        assert_eq!(windows, case.windows, "{}", case.name);
    }
}
