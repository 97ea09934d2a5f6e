//! One activation stream for every stage: `cooc`, `pca`, `stats` and `train-sae` read the same
//! windows, drop special tokens by the same rule (each stage's own setting), and stop at a
//! non-finite value with an error naming its window and position.
//!
//! The model's embedding of BOS is made NaN. With special tokens kept, the first position read
//! (window 0, position 0) is BOS itself; with them dropped it is position 1, which attends to
//! BOS and so is NaN too. The error of each stage must name exactly that position (an SAE's
//! ReLU would turn the NaN into a silent zero, so the stream checks the residual stream).

use crate::common::{config_text, pca_config, prepare, results_dir, saecooc};
use candle_core::{Device, Tensor};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Output;

const BOS: usize = 50256;

/// A copy of the fixture's model whose BOS embedding is NaN.
fn nan_bos_model(model: &Path, out: &Path) -> PathBuf {
    std::fs::create_dir_all(out).unwrap();
    for e in std::fs::read_dir(model).unwrap().flatten() {
        std::fs::copy(e.path(), out.join(e.file_name())).unwrap();
    }
    let weights = out.join("model.safetensors");
    let mut tensors: HashMap<String, Tensor> =
        candle_core::safetensors::load(&weights, &Device::Cpu).unwrap();
    let wte = &tensors["wte.weight"];
    let (vocab, d) = wte.dims2().unwrap();
    let mut values = wte.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    values[BOS * d..(BOS + 1) * d].fill(f32::NAN);
    tensors.insert(
        "wte.weight".into(),
        Tensor::from_vec(values, (vocab, d), &Device::Cpu).unwrap(),
    );
    candle_core::safetensors::save(&tensors, &weights).unwrap();
    out.to_path_buf()
}

fn stderr(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "should fail: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts the error names a non-finite `what` at window 0 and `position`.
fn assert_names(err: &str, what: &str, position: usize) {
    let want = format!("{what} is NaN at window 0 position {position} ");
    assert!(err.contains(&want), "expected '{want}' in: {err}");
}

fn run(dir: &Path, name: &str, config: &str, args: &[&str]) -> Output {
    let path = dir.join(name);
    std::fs::write(&path, config).unwrap();
    let mut cmd = saecooc(&["--quiet"]);
    cmd.args(args).arg("--config").arg(&path);
    cmd.output().unwrap()
}

#[test]
fn every_stage_reads_one_stream_with_one_nan_rule() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Node tables from the healthy model, for pca and stats. The NaN model is not the model cooc
    // counted, which pca and stats refuse while run.json records it (tests/it/provenance.rs): the
    // folder is read as the original's results are, without saecooc's manifests.
    let (p, results) = prepare(d);
    for manifest in ["run.json", "graphs_run.json"] {
        std::fs::remove_file(results_dir(&results, 6).join(manifest)).unwrap();
    }
    let nan_model = nan_bos_model(&p.model, &d.join("nan_model"));
    let with_nan_model = |text: String| {
        text.replace(
            &p.model.display().to_string(),
            &nan_model.display().to_string(),
        )
    };
    let results_arg = results.to_str().unwrap();

    // cooc: the config's remove_special_tokens decides the first position read.
    let removed = with_nan_model(config_text(&p, 6, ""));
    let kept = removed.replace(
        "remove_special_tokens = true",
        "remove_special_tokens = false",
    );
    for (config, position) in [(&removed, 1), (&kept, 0)] {
        let out = run(
            d,
            "cooc.toml",
            config,
            &["cooc", "--results-dir", d.join("r").to_str().unwrap()],
        );
        assert_names(&stderr(&out), "residual stream", position);
    }

    // stats: its token pass over the config's data, same rule.
    for (config, position) in [(&removed, 1), (&kept, 0)] {
        let out = run(
            d,
            "stats.toml",
            config,
            &[
                "stats",
                "--results-dir",
                results_arg,
                "--out",
                d.join("s").to_str().unwrap(),
            ],
        );
        assert_names(&stderr(&out), "residual stream", position);
    }

    // pca: processing.remove_special_tokens decides.
    let pca_removed = with_nan_model(pca_config(&p, 4, 4, 50));
    let pca_kept = pca_removed.replace(
        "remove_special_tokens = true",
        "remove_special_tokens = false",
    );
    for (config, position) in [(&pca_removed, 1), (&pca_kept, 0)] {
        let out = run(
            d,
            "pca.toml",
            config,
            &["pca", "--results-dir", results_arg],
        );
        assert_names(&stderr(&out), "residual stream", position);
    }

    // train-sae: drops special tokens unless --keep-special-tokens; it checks the residual rows.
    let train = [
        "train-sae",
        "--hook",
        "blocks.1.hook_resid_pre",
        "--d-sae",
        "16",
        "--architecture",
        "topk",
        "--k",
        "2",
        "--tokens",
        "512",
        "--batch-tokens",
        "128",
        "--buffer-tokens",
        "256",
        "--heldout-tokens",
        "64",
        "--out",
    ];
    let out_dir = d.join("sae_out");
    let mut args: Vec<&str> = train.to_vec();
    args.push(out_dir.to_str().unwrap());
    let out = run(d, "train.toml", &removed, &args);
    assert_names(&stderr(&out), "residual stream", 1);
    args.push("--keep-special-tokens");
    let out = run(d, "train.toml", &removed, &args);
    assert_names(&stderr(&out), "residual stream", 0);
}
