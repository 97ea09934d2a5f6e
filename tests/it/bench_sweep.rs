//! `bench --sweep` on a tiny shape: the same code as the GPT-2-small benchmark (a 2-layer model,
//! an SAE of 64 latents at layer 1 and one of 128 at layer 0, 512 tokens), run with the saecooc
//! binary: both rows measured, and the outputs check really compares.

use saecooc::config::DeviceKind;
use saecooc::results::layout::{self, CoocKind};
use saecooc::stages::bench::sweep::{self, SweepPlan, ONE_AT_A_TIME, ONE_RUN};
use saecooc::synth::{SweepSae, SynthOptions};
use std::path::{Path, PathBuf};

fn tiny_plan() -> SweepPlan {
    let sae = |id: &str, layer, d_sae| SweepSae {
        id: id.into(),
        layer,
        d_sae,
    };
    SweepPlan {
        name: "tiny".into(),
        model: SynthOptions {
            documents: 400,
            ..SynthOptions::default()
        },
        saes: vec![
            sae("blocks.1.hook_resid_pre_64", 1, 64),
            sae("blocks.0.hook_resid_pre_128", 0, 128),
        ],
        tokens: 512,
        device: DeviceKind::Cpu,
    }
}

/// The results folders of each SAE in the one-run and one-at-a-time results of `dir`.
fn result_pairs(dir: &Path, plan: &SweepPlan) -> Vec<(PathBuf, PathBuf)> {
    let work = dir.join("sweep-tiny");
    let sae_dir = |results: PathBuf, id: &str| {
        layout::sae_results_dir(&results, "synthetic-gpt2-small", "synthetic", id, 1)
    };
    plan.saes
        .iter()
        .map(|s| {
            (
                sae_dir(work.join("results-one-run"), &s.id),
                sae_dir(work.join("results-one-at-a-time").join(&s.id), &s.id),
            )
        })
        .collect()
}

#[test]
fn a_tiny_sweep_measures_both_modes_and_compares_every_count_file() {
    let dir = tempfile::tempdir().unwrap();
    let plan = tiny_plan();
    let exe = Path::new(env!("CARGO_BIN_EXE_saecooc"));
    let report = sweep::run(exe, dir.path(), &plan).unwrap();

    assert_eq!(report.tokens, 512);
    let modes: Vec<&str> = report.rows.iter().map(|r| r.mode).collect();
    assert_eq!(modes, [ONE_AT_A_TIME, ONE_RUN]);
    for row in &report.rows {
        assert_eq!(row.saes, 2);
        assert!(row.seconds > 0.0, "{row:?}");
        // A process that loaded a model and ran it holds more than a megabyte.
        assert!(row.peak_rss_bytes > 1 << 20, "{row:?}");
        let expected = 512.0 * 2.0 / row.seconds;
        assert!((row.sae_tokens_per_s - expected).abs() <= 1e-9 * expected);
    }
    let speedup = report.rows[0].seconds / report.rows[1].seconds;
    assert!((report.speedup - speedup).abs() <= 1e-12 * speedup);
    // total, Jaccard and activations at one threshold, for each of the 2 SAEs.
    assert_eq!(report.files_compared, 6);

    // A second run reuses the inputs (written once) and starts from empty results folders.
    let weights = dir.path().join("model/model.safetensors");
    let written = std::fs::metadata(&weights).unwrap().modified().unwrap();
    let again = sweep::run(exe, dir.path(), &plan).unwrap();
    assert_eq!(again.files_compared, 6);
    assert_eq!(
        std::fs::metadata(&weights).unwrap().modified().unwrap(),
        written
    );

    // The check reads the files: one changed byte, or one missing file, fails naming it.
    let pairs = result_pairs(dir.path(), &plan);
    assert_eq!(sweep::compare_npz(&pairs).unwrap(), 6);
    let altered = layout::cooc_file(&pairs[1].1, CoocKind::Jaccard, 1.5);
    let name = altered.file_name().unwrap().to_string_lossy().into_owned();
    let mut bytes = std::fs::read(&altered).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    std::fs::write(&altered, &bytes).unwrap();
    let err = sweep::compare_npz(&pairs).unwrap_err().to_string();
    assert!(err.contains("differ") && err.contains(&name), "{err}");
    std::fs::remove_file(&altered).unwrap();
    let err = sweep::compare_npz(&pairs).unwrap_err().to_string();
    assert!(err.contains(&format!("has no {name}")), "{err}");
}
