//! Sweeps: the SAEs of one config share one model pass per batch, and each SAE's files equal,
//! byte for byte, those of a run of that SAE alone, also split into shards or killed and
//! resumed; the memory plan splits a sweep into passes that fit the limit.

use crate::common::{assert_ok, files_under, kill_once_written, saecooc, stderr};
use saecooc::synth::{self, SynthOptions};
use std::path::{Path, PathBuf};

/// SAEs of the sweep fixture: (id, layer of its `hook_resid_pre`, latents).
const SAES: [(&str, usize, usize); 3] =
    [("l2-w256", 2, 256), ("l1-w128", 1, 128), ("l2-w96", 2, 96)];

/// A 3-layer synthetic GPT-2, its corpus and the SAEs of [`SAES`] under `dir/inputs`.
fn sweep_world(dir: &Path) -> PathBuf {
    let inputs = dir.join("inputs");
    let base = SynthOptions {
        layers: 3,
        documents: 1500,
        ..SynthOptions::default()
    };
    let (model, corpus) = (inputs.join("model"), inputs.join("corpus.txt"));
    synth::write_gpt2_model(&model, &base).unwrap();
    std::fs::write(&corpus, synth::corpus(base.documents, base.seed)).unwrap();
    for (id, layer, d_sae) in SAES {
        let o = SynthOptions {
            hook_layer: layer,
            d_sae,
            ..base.clone()
        };
        synth::write_calibrated_sae(&model, &corpus, &inputs.join("sae").join(id), &o).unwrap();
    }
    inputs
}

/// A config of the SAEs `ids` of the world in `inputs`, `n_batches` batches.
fn sweep_config(inputs: &Path, ids: &[&str], n_batches: usize) -> String {
    let list: Vec<String> = ids.iter().map(|id| format!("{id:?}")).collect();
    format!(
        r#"[generation]
n_batches = {n_batches}
model_name = "synthetic-gpt2"
sae_release_short = "synthetic"
sae_ids = [{}]
activation_thresholds = [0.0, 1.5]
remove_special_tokens = true

[source]
model = "{}"
sae = "{}"
dataset = "{}"

[run]
context_size = 32
prompts_per_batch = 8
tokens_per_batch = 250
"#,
        list.join(", "),
        inputs.join("model").display(),
        inputs.join("sae").display(),
        inputs.join("corpus.txt").display()
    )
}

/// `saecooc cooc` of `config` (written to `dir/{name}.toml`) into `results`.
fn cooc(
    dir: &Path,
    name: &str,
    config: &str,
    results: &Path,
    extra: &[&str],
) -> std::process::Command {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, config).unwrap();
    let mut cmd = saecooc(&["cooc", "--config"]);
    cmd.arg(&path).arg("--results-dir").arg(results).args(extra);
    cmd
}

/// The results folder of SAE `id` under `results`.
fn sae_dir(results: &Path, id: &str, n_batches: usize) -> PathBuf {
    results.join(format!(
        "synthetic-gpt2/synthetic/{id}/n_batches_{n_batches}"
    ))
}

/// Each SAE alone, one run each, into `dir/alone`.
fn runs_alone(dir: &Path, inputs: &Path, n_batches: usize) -> PathBuf {
    let results = dir.join("alone");
    for (id, _, _) in SAES {
        let config = sweep_config(inputs, &[id], n_batches);
        assert_ok(&cooc(dir, id, &config, &results, &[]).output().unwrap());
    }
    results
}

/// The run.json of `dir` without what differs between two runs of the same count (times,
/// the command line).
fn stable_manifest(dir: &Path) -> serde_json::Value {
    let mut run: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("run.json")).unwrap()).unwrap();
    let object = run.as_object_mut().unwrap();
    for volatile in [
        "timings",
        "elapsed_s",
        "tokens_per_second",
        "run_info",
        "config",
    ] {
        object.remove(volatile);
    }
    run
}

/// Every file of SAE `id`'s folder is the same in both results roots (run.json less its
/// times and command line).
fn assert_same_sae_files(a: &Path, b: &Path, id: &str, n_batches: usize) {
    let (da, db) = (sae_dir(a, id, n_batches), sae_dir(b, id, n_batches));
    let names = |d: &Path| -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = files_under(d)
            .into_iter()
            .map(|p| p.strip_prefix(d).unwrap().to_path_buf())
            .collect();
        files.sort();
        files
    };
    let files = names(&da);
    assert_eq!(files, names(&db), "{id}: different files");
    assert!(files
        .iter()
        .any(|f| f.extension().is_some_and(|e| e == "npz")));
    for f in files {
        if f == Path::new("run.json") {
            assert_eq!(stable_manifest(&da), stable_manifest(&db), "{id}: run.json");
        } else {
            let (x, y) = (
                std::fs::read(da.join(&f)).unwrap(),
                std::fs::read(db.join(&f)).unwrap(),
            );
            assert!(x == y, "{id}: {} differs", f.display());
        }
    }
}

#[test]
fn a_sweep_of_two_hooks_and_two_widths_equals_each_sae_alone() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = sweep_world(dir.path());
    let alone = runs_alone(dir.path(), &inputs, 6);
    let ids: Vec<&str> = SAES.iter().map(|s| s.0).collect();
    let swept = dir.path().join("swept");
    let config = sweep_config(&inputs, &ids, 6);
    let out = cooc(dir.path(), "sweep", &config, &swept, &[])
        .output()
        .unwrap();
    assert_ok(&out);
    let log = stderr(&out);
    assert!(log.contains("sweep of 3 SAEs in 1 model pass(es)"), "{log}");
    // Each SAE's summary line, in config order.
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().filter(|l| l.contains(": counted")).collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    for (line, id) in lines.iter().zip(&ids) {
        assert!(line.starts_with(&format!("{id}: counted")), "{line}");
    }
    for id in ids {
        assert_same_sae_files(&alone, &swept, id, 6);
    }
}

#[test]
fn a_memory_limit_splits_the_sweep_into_passes_with_the_same_files() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = sweep_world(dir.path());
    let alone = runs_alone(dir.path(), &inputs, 3);
    let ids: Vec<&str> = SAES.iter().map(|s| s.0).collect();
    let config = sweep_config(&inputs, &ids, 3);
    let split = dir.path().join("split");
    // Each SAE's buffers alone are 160 MiB: a 0.3 GiB limit holds one SAE per pass.
    let out = cooc(
        dir.path(),
        "sweep",
        &config,
        &split,
        &["--memory-limit-gib", "0.3"],
    )
    .output()
    .unwrap();
    assert_ok(&out);
    let log = stderr(&out);
    assert!(log.contains("sweep of 3 SAEs in 3 model pass(es)"), "{log}");
    assert!(
        log.contains("memory limit 0.3 GiB (--memory-limit-gib)"),
        "{log}"
    );
    for id in ids {
        assert_same_sae_files(&alone, &split, id, 3);
    }
    let bad = cooc(
        dir.path(),
        "sweep",
        &config,
        &split,
        &["--memory-limit-gib=-1"],
    )
    .output()
    .unwrap();
    assert!(!bad.status.success());
    assert!(
        stderr(&bad).contains("--memory-limit-gib"),
        "{}",
        stderr(&bad)
    );
}

#[test]
fn a_sharded_sweep_merges_to_each_sae_alone() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = sweep_world(dir.path());
    let alone = runs_alone(dir.path(), &inputs, 5);
    let ids = [SAES[0].0, SAES[1].0];
    let config = sweep_config(&inputs, &ids, 5);
    let split = dir.path().join("split");
    for shard in ["0/2", "1/2"] {
        let out = cooc(dir.path(), "two", &config, &split, &["--shard", shard])
            .output()
            .unwrap();
        assert_ok(&out);
    }
    let out = saecooc(&["--quiet", "merge", "--config"])
        .arg(dir.path().join("two.toml"))
        .arg("--results-dir")
        .arg(&split)
        .args(["--shards", "2"])
        .output()
        .unwrap();
    assert_ok(&out);
    for id in ids {
        let (a, b) = (sae_dir(&alone, id, 5), sae_dir(&split, id, 5));
        for f in files_under(&a)
            .iter()
            .filter(|f| f.extension().is_some_and(|e| e == "npz"))
        {
            let name = f.file_name().unwrap();
            assert!(
                std::fs::read(f).unwrap() == std::fs::read(b.join(name)).unwrap(),
                "{id}: {name:?}"
            );
        }
    }
}

#[test]
fn a_killed_sweep_resumes_to_each_sae_alone_from_different_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = sweep_world(dir.path());
    let n_batches = 120;
    let ids = [SAES[0].0, SAES[1].0];
    let config = sweep_config(&inputs, &ids, n_batches);
    let killed = dir.path().join("killed");
    let checkpoints: Vec<PathBuf> = ids
        .iter()
        .map(|id| sae_dir(&killed, id, n_batches).join("checkpoint.npz"))
        .collect();
    let cmd = cooc(
        dir.path(),
        "two",
        &config,
        &killed,
        &["--checkpoint-every", "3"],
    );
    kill_once_written(cmd, &checkpoints);
    for id in ids {
        assert!(
            !sae_dir(&killed, id, n_batches).join("run.json").exists(),
            "{id} finished"
        );
    }
    // The second SAE starts over: the pass reads from the start for it, and the first joins
    // at its checkpoint.
    std::fs::remove_file(&checkpoints[1]).unwrap();
    let resumed = cooc(
        dir.path(),
        "two",
        &config,
        &killed,
        &["--resume", "--checkpoint-every", "3"],
    )
    .output()
    .unwrap();
    assert_ok(&resumed);
    assert!(
        stderr(&resumed).contains("resuming from"),
        "{}",
        stderr(&resumed)
    );
    let alone = dir.path().join("alone");
    for id in ids {
        let one = sweep_config(&inputs, &[id], n_batches);
        assert_ok(&cooc(dir.path(), id, &one, &alone, &[]).output().unwrap());
        assert_same_sae_files(&alone, &killed, id, n_batches);
    }
}
