//! Names from a config that become paths: hub-style names (`google/gemma-2-2b`) run end to end
//! as one folder each; names that would leave the results folder are refused, naming the key
//! and the file, before any folder is created; inputs that cannot be loaded leave no folder;
//! folders whose names differ only in punctuation export to distinct keys.

use crate::common::{assert_ok, config_text, fixture, pca_config, run_stage, saecooc};
use saecooc::results::node_table::read_node_table;
use saecooc::synth::SynthPaths;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Output;

const ANALYSIS: &str = "\n[analysis]\nmin_subgraph_size = 20\nmax_subgraph_size = 40\nskip_subgraph_plots = true\nskip_subgraph_pickles = true\n";

/// `text` with `from = "..."` set to `value` (quoted as TOML quotes it).
fn set(text: &str, from: &str, key: &str, value: &str) -> String {
    assert!(text.contains(from), "{from} is not in the config");
    text.replacen(from, &format!("{key} = {}", toml::Value::from(value)), 1)
}

/// The fixture's cooc config with `model` and `release`.
fn cooc_config(p: &SynthPaths, model: &str, release: &str) -> String {
    let text = config_text(p, 6, ANALYSIS);
    let text = set(
        &text,
        "model_name = \"synthetic-gpt2\"",
        "model_name",
        model,
    );
    set(
        &text,
        "sae_release_short = \"synthetic\"",
        "sae_release_short",
        release,
    )
}

/// The fixture's PCA config with `model` and `release`.
fn pca_config_named(p: &SynthPaths, model: &str, release: &str) -> String {
    let text = pca_config(p, 6, 4, 60);
    let text = set(&text, "name = \"synthetic-gpt2\"", "name", model);
    set(
        &text,
        "sae_release_short = \"synthetic\"",
        "sae_release_short",
        release,
    )
}

/// cooc, graphs and pca of `model` / `release` into `results`.
fn pipeline(dir: &Path, p: &SynthPaths, model: &str, release: &str, cooc: &str, results: &Path) {
    let tag = model.replace(|c: char| !c.is_ascii_alphanumeric(), "-");
    let cooc_name = format!("cooc-{tag}.toml");
    assert_ok(&run_stage(dir, &cooc_name, "cooc", cooc, results, &[]));
    assert_ok(&run_stage(dir, &cooc_name, "graphs", cooc, results, &[]));
    let pca = pca_config_named(p, model, release);
    assert_ok(&run_stage(
        dir,
        &format!("pca-{tag}.toml"),
        "pca",
        &pca,
        results,
        &[],
    ));
}

/// Reads a site data file `SAECOOC.{f}("{key}", {...});` as its value.
fn read_call(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let (open, close) = (text.find('(').unwrap(), text.rfind(");").unwrap());
    let args: Value = serde_json::from_str(&format!("[{}]", &text[open + 1..close])).unwrap();
    args[1].clone()
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn is_key(key: &str) -> bool {
    key.chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

#[test]
fn hub_style_names_run_end_to_end_as_one_folder_each() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = fixture(d);
    let (model, release) = ("google/synthetic-gpt2", "jbloom/Synthetic-SAEs");
    let results = d.join("results");
    pipeline(
        d,
        &p,
        model,
        release,
        &cooc_config(&p, model, release),
        &results,
    );

    assert_eq!(names_in(&results), ["google%2Fsynthetic-gpt2"]);
    let sae = results.join(
        "google%2Fsynthetic-gpt2/jbloom%2FSynthetic-SAEs/blocks_1_hook_resid_pre/n_batches_6",
    );
    assert!(sae.join("dataframes/node_info_df_1_5.csv").is_file());
    assert!(sae
        .join("blocks_1_hook_resid_pre_pca_for_streamlit")
        .is_dir());

    // subspace writes its figures under the same folder names, and export finds them.
    let rows = read_node_table(&sae.join("dataframes/node_info_df_1_5.csv")).unwrap();
    let best = rows.iter().max_by_key(|r| r.subgraph_size).unwrap();
    let figures = d.join("figures");
    let pca = pca_config_named(&p, model, release);
    let out = run_stage(
        d,
        "subspace.toml",
        "subspace",
        &pca,
        &results,
        &[
            "--subgraph",
            &best.subgraph_id.to_string(),
            "--out",
            figures.to_str().unwrap(),
        ],
    );
    assert_ok(&out);
    assert_eq!(names_in(&figures), ["google%2Fsynthetic-gpt2"]);

    // A recommended view names the SAE by its hub-style names.
    let views = format!(
        "{pca}\n[recommended_views.hub]\nmodel = \"{model}\"\nsae_release = \"{release}\"\nsae_id = \"blocks_1_hook_resid_pre\"\nsize = 4\nsubgraph = 1\n"
    );
    let views_path = d.join("views.toml");
    std::fs::write(&views_path, views).unwrap();
    let site = d.join("site");
    let out = saecooc(&["--quiet", "export", "--results-dir"])
        .arg(&results)
        .arg("--figures-dir")
        .arg(&figures)
        .arg("--out")
        .arg(&site)
        .arg("--config")
        .arg(&views_path)
        .output()
        .unwrap();
    assert_ok(&out);
    let index = read_call(&site.join("data/index.js"));
    let entry = &index["saes"][0];
    assert_eq!(entry["model"], model);
    assert_eq!(entry["release"], release);
    let key = entry["key"].as_str().unwrap();
    assert!(is_key(key), "{key}");
    assert!(site.join("data").join(key).join("index.js").is_file());
    assert_eq!(index["recommended"][0]["model"], entry["model"]);
    assert_eq!(index["recommended"][0]["release"], entry["release"]);
    assert_eq!(
        index["subspaces"].as_array().map(Vec::len),
        Some(1),
        "{index}"
    );

    let stats = d.join("stats");
    let out = saecooc(&["--quiet", "stats", "--results-dir"])
        .arg(&results)
        .arg("--out")
        .arg(&stats)
        .output()
        .unwrap();
    assert_ok(&out);
    let summary: Value =
        serde_json::from_slice(&std::fs::read(stats.join("summary.json")).unwrap()).unwrap();
    let rows = summary.as_array().unwrap();
    assert!(
        !rows.is_empty()
            && rows
                .iter()
                .all(|r| r["model"] == model && r["release"] == release),
        "{summary}"
    );
    let csv = std::fs::read_to_string(stats.join("summary.csv")).unwrap();
    assert!(
        csv.contains(&format!("\n{model},{release},blocks_1_hook_resid_pre,6,")),
        "{csv}"
    );
}

#[test]
fn folders_differing_only_in_punctuation_export_to_distinct_keys() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = fixture(d);
    let results = d.join("results");
    // Different token budgets, so that the two SAEs' tables differ.
    for (model, tokens) in [("model.v1", 500), ("model_v1", 400)] {
        let cooc = cooc_config(&p, model, "synthetic").replace(
            "tokens_per_batch = 500",
            &format!("tokens_per_batch = {tokens}"),
        );
        pipeline(d, &p, model, "synthetic", &cooc, &results);
    }
    let site = d.join("site");
    let out = saecooc(&["--quiet", "export", "--results-dir"])
        .arg(&results)
        .arg("--out")
        .arg(&site)
        .output()
        .unwrap();
    assert_ok(&out);
    let index = read_call(&site.join("data/index.js"));
    let saes = index["saes"].as_array().unwrap();
    assert_eq!(saes.len(), 2);
    let models: Vec<&str> = saes.iter().map(|s| s["model"].as_str().unwrap()).collect();
    assert_eq!(models, ["model.v1", "model_v1"]);
    let keys: Vec<&str> = saes.iter().map(|s| s["key"].as_str().unwrap()).collect();
    assert_ne!(keys[0], keys[1]);
    // The plain name keeps the key it always had.
    assert_eq!(keys[1], "model_v1__synthetic__blocks_1_hook_resid_pre__6");
    let tables: Vec<Value> = saes
        .iter()
        .map(|s| read_call(&site.join(s["file"].as_str().unwrap())))
        .collect();
    for (s, k) in saes.iter().zip(&keys) {
        assert!(is_key(k), "{k}");
        assert_eq!(s["file"], format!("data/{k}/index.js"));
    }
    assert_ne!(tables[0], tables[1], "the two SAEs' data mixed");
    // Every run directory of each SAE lies under its own key.
    for (t, k) in tables.iter().zip(&keys) {
        for run in t["runs"].as_array().unwrap() {
            assert!(
                run["dir"]
                    .as_str()
                    .unwrap()
                    .starts_with(&format!("data/{k}/")),
                "{run}"
            );
        }
    }
}

/// Runs cooc on `config` in a fresh folder under `dir`; returns its output and results folder.
fn refused_cooc(dir: &Path, name: &str, config: &str) -> (Output, PathBuf) {
    let sub = dir.join(name);
    std::fs::create_dir_all(&sub).unwrap();
    let results = sub.join("results");
    let out = run_stage(&sub, "run.toml", "cooc", config, &results, &[]);
    assert!(!out.status.success(), "{name}: cooc succeeded");
    (out, results)
}

#[test]
fn names_that_leave_the_results_folder_are_refused_before_any_folder_is_made() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = fixture(d);
    let outside = d.join("outside");
    let absolute = outside.join("abs").display().to_string();
    for (i, (key, value)) in [
        ("model_name", "../escape"),
        ("model_name", absolute.as_str()),
        ("model_name", ".."),
        ("sae_release_short", "../../escape"),
        ("sae_release_short", "a\\b"),
        ("model_name", ""),
    ]
    .into_iter()
    .enumerate()
    {
        let config = match key {
            "model_name" => cooc_config(&p, value, "synthetic"),
            _ => cooc_config(&p, "synthetic-gpt2", value),
        };
        let (out, results) = refused_cooc(d, &format!("case{i}"), &config);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("generation.{key} is {value:?}")) && err.contains("run.toml"),
            "{value:?}: {err}"
        );
        assert!(!results.exists(), "{value:?} created {}", results.display());
        assert!(!d.join(format!("case{i}/escape")).exists() && !d.join("escape").exists());
        assert!(
            !outside.exists(),
            "{value:?} wrote outside the results folder"
        );
    }

    // pca and subspace refuse the same names (and a bad --sae-id) before reading anything.
    let results = d.join("pca-results");
    let pca = pca_config_named(&p, "../escape", "synthetic");
    let out = run_stage(d, "pca.toml", "pca", &pca, &results, &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("model.name is \"../escape\""),
        "{err}"
    );
    let pca = pca_config_named(&p, "synthetic-gpt2", "synthetic");
    let out = run_stage(
        d,
        "subspace.toml",
        "subspace",
        &pca,
        &results,
        &["--subgraph", "1", "--sae-id", "/etc"],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("--sae-id is \"/etc\""),
        "{err}"
    );
    assert!(!results.exists());
}

#[test]
fn inputs_that_cannot_be_loaded_leave_the_results_folder_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = fixture(d);
    let sae = p.sae.parent().unwrap().display().to_string();
    let missing = d.join("no-such-sae").display().to_string();
    let config = cooc_config(&p, "synthetic-gpt2", "synthetic").replace(&sae, &missing);
    let (out, results) = refused_cooc(d, "missing-sae", &config);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no-such-sae"), "{err}");
    assert!(
        !results.exists(),
        "a failed cooc left {:?}",
        names_in(&results)
    );
}
