//! End-to-end tests of `saecooc pca`: h5 files checked with h5py, scikit-learn and the original
//! app's loading logic (tests/python), the shared pass against one pass per subgraph, the
//! retry for subgraphs with too few examples, and bad inputs.

use crate::common::{
    assert_ok, check_python, files_under, fixture, pca_config, prepare, results_dir, saecooc,
};
use std::path::Path;
use std::process::Output;

const NEAT: &str = "blocks_1_hook_resid_pre";

fn run_pca(dir: &Path, config: &str, results: &Path, extra: &[&str]) -> Output {
    let path = dir.join("pca.toml");
    std::fs::write(&path, config).unwrap();
    let mut cmd = saecooc(&["pca", "--config"]);
    cmd.arg(&path).arg("--results-dir").arg(results).args(extra);
    cmd.output().unwrap()
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(e.file_name());
        if e.path().is_dir() {
            copy_tree(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

fn pca_run(results: &Path) -> serde_json::Value {
    let path = results_dir(results, 6).join(format!("{NEAT}_pca_for_streamlit/pca_run.json"));
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn h5_files_read_back_with_h5py_and_the_original_apps_loader() {
    let dir = tempfile::tempdir().unwrap();
    let (p, results) = prepare(dir.path());
    let split = dir.path().join("split");
    copy_tree(&results, &split);
    // Size 8: the synthetic SAE's planted groups, many subgraphs, so the file splits.
    let config = pca_config(&p, 10, 4, 150).replace(
        "subgraph_sizes_to_plot = [2, 3, 4, 5, 6]",
        "subgraph_sizes_to_plot = [2, 3, 4, 5, 6, 8]",
    );
    assert_ok(&run_pca(dir.path(), &config, &results, &["--quiet"]));
    assert_ok(&run_pca(
        dir.path(),
        &config,
        &split,
        &["--quiet", "--split-mb", "0.05"],
    ));
    let chunks: Vec<String> =
        std::fs::read_dir(results_dir(&split, 6).join(format!("{NEAT}_pca_for_streamlit")))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains("_chunk"))
            .collect();
    assert!(
        chunks.len() >= 2,
        "{chunks:?} in {:?}",
        files_under(&results_dir(&split, 6))
    );
    let run = pca_run(&results);
    assert!(run["subgraphs_written"].as_u64().unwrap() >= 3, "{run}");

    let root = results_dir(&results, 6);
    let split_root = results_dir(&split, 6);
    let weights = p.sae.join("sae_weights.safetensors");
    check_python(
        "check_pca.py",
        [
            &root,
            Path::new(NEAT),
            Path::new("150cap_"),
            Path::new("10"),
            &weights,
            Path::new("<|endoftext|>"),
            &split_root,
        ],
    );
}

/// The shared pass gives every subgraph exactly what a pass of its own would.
#[test]
fn shared_pass_equals_one_pass_per_subgraph() {
    let dir = tempfile::tempdir().unwrap();
    let (p, results) = prepare(dir.path());
    let separate = dir.path().join("separate");
    copy_tree(&results, &separate);
    let config = pca_config(&p, 8, 3, 40);
    assert_ok(&run_pca(dir.path(), &config, &results, &["--quiet"]));
    assert_ok(&run_pca(
        dir.path(),
        &config,
        &separate,
        &["--quiet", "--one-pass-per-subgraph"],
    ));
    let (shared, alone) = (pca_run(&results), pca_run(&separate));
    assert_eq!(shared["subgraphs"], alone["subgraphs"]);
    assert!(
        shared["batches_read"].as_u64() < alone["batches_read"].as_u64(),
        "{} vs {}",
        shared["batches_read"],
        alone["batches_read"]
    );
    let sub = format!("{NEAT}_pca_for_streamlit");
    check_python(
        "same_h5.py",
        [
            results_dir(&results, 6).join(&sub),
            results_dir(&separate, 6).join(&sub),
        ],
    );
}

/// Subgraphs with fewer than 3 examples get twice the batches; those still short are skipped
/// with a warning and have no group.
#[test]
fn too_few_examples_retry_with_twice_the_batches_then_skip() {
    let dir = tempfile::tempdir().unwrap();
    let (p, results) = prepare(dir.path());
    let two = dir.path().join("two");
    copy_tree(&results, &two);
    let one_batch = run_pca(dir.path(), &pca_config(&p, 1, 1, 1000), &results, &[]);
    assert_ok(&one_batch);
    assert_ok(&run_pca(
        dir.path(),
        &pca_config(&p, 2, 1, 1000),
        &two,
        &["--quiet"],
    ));
    let stderr = String::from_utf8_lossy(&one_batch.stderr);
    let (a, b) = (pca_run(&results), pca_run(&two));
    let (a, b) = (
        a["subgraphs"].as_array().unwrap(),
        b["subgraphs"].as_array().unwrap(),
    );
    let mut retried = 0;
    let mut skipped = 0;
    for (x, y) in a.iter().zip(b) {
        assert_eq!(x["subgraph_id"], y["subgraph_id"]);
        if x["retried"] != true {
            continue;
        }
        retried += 1;
        let found = x["examples"].as_u64().unwrap();
        if found >= 3 {
            // Two batches were enough: the same examples as a 2-batch run without retry.
            assert_eq!(x["examples"], y["examples"]);
            assert_eq!(y["retried"], false);
            assert_eq!(x["skipped"], false);
        } else {
            skipped += 1;
            assert_eq!(x["skipped"], true);
            assert_eq!(y["retried"], true, "{y}");
            let sid = &x["subgraph_id"];
            assert!(
                stderr.contains(&format!("subgraph {sid} ")) && stderr.contains("too few"),
                "{stderr}"
            );
        }
    }
    assert!(
        retried > 0 && skipped > 0,
        "retried {retried}, skipped {skipped}"
    );
    // Skipped subgraphs have no group (checked in Python on the real files).
    let sids: Vec<String> = a
        .iter()
        .filter(|x| x["skipped"] == true)
        .map(|x| x["subgraph_id"].to_string())
        .collect();
    let h5_dir = results_dir(&results, 6).join(format!("{NEAT}_pca_for_streamlit"));
    check_python(
        "check_no_subgraph_groups.py",
        std::iter::once(h5_dir.into_os_string()).chain(sids.into_iter().map(Into::into)),
    );
}

#[test]
fn missing_node_table_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let p = fixture(dir.path());
    let out = run_pca(
        dir.path(),
        &pca_config(&p, 2, 2, 10),
        &dir.path().join("results"),
        &[],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("node_info_df_1_5.csv") && stderr.contains("saecooc graphs"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}
