//! The original pipeline's eight config files (tests/fixtures/original-configs/) parse, and
//! every SAE they name resolves in the shipped SAELens registry, offline (no hub reachable,
//! an empty cache); an id the registry lacks is reported, with the closest ids, before anything
//! is downloaded or run.

use crate::common::stderr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn original(name: &str) -> PathBuf {
    crate::common::repo_path("tests/fixtures/original-configs").join(name)
}

/// `saecooc ARGS` with the hub out of reach: offline, an empty HF_HOME, a dead endpoint.
fn offline(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_saecooc"))
        .args(args)
        .env("HF_HUB_OFFLINE", "1")
        .env("HF_HOME", dir.join("hf-home"))
        .env("HF_ENDPOINT", "http://127.0.0.1:9")
        .env_remove("HF_HUB_CACHE")
        .env_remove("HUGGINGFACE_HUB_CACHE")
        .output()
        .unwrap()
}

/// The SAE ids a config names (`[generation]` or, for a PCA config, `[model]`).
fn sae_ids(path: &Path) -> Vec<String> {
    let table: toml::Table = std::fs::read_to_string(path).unwrap().parse().unwrap();
    let names = table
        .get("generation")
        .and_then(|g| g.get("sae_ids"))
        .or_else(|| table.get("model").and_then(|m| m.get("sae_ids")))
        .unwrap();
    names
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn every_original_config_parses_and_its_saes_resolve_offline() {
    let dir = tempfile::tempdir().unwrap();
    // Each config with one SAE it names and where the registry puts it.
    let expected = [
        (
            "config_feature_split.toml",
            "blocks.8.hook_resid_pre_24576",
            "jbloom/GPT2-Small-Feature-Splitting-Experiment-Layer-8/blocks.8.hook_resid_pre_24576",
        ),
        (
            "config_gemma.toml",
            "layer_0/width_16k/canonical",
            "google/gemma-scope-2b-pt-res/layer_0/width_16k/average_l0_105",
        ),
        (
            "config_gemma_l0.toml",
            "layer_12/width_16k/average_l0_445",
            "google/gemma-scope-2b-pt-res/layer_12/width_16k/average_l0_445",
        ),
        (
            "config_gemma_widths.toml",
            "layer_12/width_1m/canonical",
            "google/gemma-scope-2b-pt-res/layer_12/width_1m/average_l0_107",
        ),
        (
            "config_test.toml",
            "blocks.8.hook_resid_pre_768",
            "reads blocks.8.hook_resid_pre",
        ),
        (
            "config_pca_streamlit_maxexamples.toml",
            "blocks.0.hook_resid_pre",
            "jbloom/GPT2-Small-SAEs-Reformatted/blocks.0.hook_resid_pre",
        ),
        (
            "config_pca_streamlit.toml",
            "layer_21/width_16k/canonical",
            "google/gemma-scope-2b-pt-res/layer_21/width_16k/average_l0_70",
        ),
    ];
    for (name, id, place) in expected {
        let path = original(name);
        let out = offline(&["check", "--config", path.to_str().unwrap()], dir.path());
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{name}: {}{stdout}", stderr(&out));
        let ok_lines = stdout.lines().filter(|l| l.starts_with("ok  ")).count();
        assert_eq!(ok_lines, sae_ids(&path).len(), "{name}: {stdout}");
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&format!("ok  {id}: ")))
            .unwrap_or_else(|| panic!("{name}: no line for {id} in {stdout}"));
        assert!(line.contains(place), "{name}: {line}");
    }
    assert!(
        !dir.path().join("hf-home").exists(),
        "check downloaded something"
    );
}

#[test]
fn the_original_config_toml_names_an_sae_the_registry_lacks() {
    // config.toml asks for blocks.0..12.hook_resid_pre; res-jb has resid_pre of blocks 0..11
    // (and blocks.11.hook_resid_post).
    let dir = tempfile::tempdir().unwrap();
    let path = original("config.toml");
    let out = offline(&["check", "--config", path.to_str().unwrap()], dir.path());
    let err = stderr(&out);
    assert!(!out.status.success());
    assert!(
        err.contains("1 problem(s)")
            && err.contains(
                "SAE id 'blocks.12.hook_resid_pre' is not in release 'gpt2-small-res-jb'"
            )
            && err.contains("closest ids: blocks.1.hook_resid_pre"),
        "{err}"
    );
}

#[test]
fn cooc_names_every_sae_the_registry_lacks_before_downloading_anything() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(original("config_gemma_l0.toml"))
        .unwrap()
        .replace("average_l0_22", "average_l0_23")
        .replace("average_l0_445", "average_l0_44");
    let config = dir.path().join("config.toml");
    std::fs::write(&config, text).unwrap();
    let results = dir.path().join("results");
    let out = offline(
        &[
            "--quiet",
            "cooc",
            "--config",
            config.to_str().unwrap(),
            "--results-dir",
            results.to_str().unwrap(),
        ],
        dir.path(),
    );
    let err = stderr(&out);
    assert!(!out.status.success());
    assert!(
        err.contains("2 of the 5 SAEs cannot be resolved, so nothing was run")
            && err.contains(
                "'layer_12/width_16k/average_l0_23' is not in release 'gemma-scope-2b-pt-res'"
            )
            && err.contains("closest ids: layer_12/width_16k/average_l0_22")
            && err.contains("'layer_12/width_16k/average_l0_44' is not in release"),
        "{err}"
    );
    assert!(
        !dir.path().join("hf-home").exists(),
        "cooc downloaded something"
    );
    let written = crate::common::files_under(&results);
    assert!(
        written
            .iter()
            .all(|p| !p.to_string_lossy().contains("n_batches_")),
        "{written:?}"
    );
}
