//! End-to-end tests of `saecooc pca`: h5 files checked with h5py, scikit-learn and the original
//! app's loading logic (tests/python), the shared pass against one pass per subgraph, the
//! retry for subgraphs with too few examples, and bad inputs.

use crate::common::{
    assert_ok, batches_read_from_the_data, check_python, config_text, cooc_and_graphs_of,
    files_under, fixture, pca_config, prepare, read_json, results_dir, sae_results, saecooc,
    stderr, with_sae_ids, write_second_sae, FIXTURE_SAE, GRAPHS_ANALYSIS,
};
use std::path::{Path, PathBuf};
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

/// The pca folder of SAE `sae_id` under `results`, and its manifest (`pca_run.json`) without
/// what differs between any two runs: timings, run_info, and the h5 files' hashes (HDF5
/// records times; [`same_pca_folders`] compares their datasets), h5 paths relative to
/// `results`.
fn pca_outputs(results: &Path, sae_id: &str) -> (PathBuf, serde_json::Value) {
    let neat = saecooc::io::pyfmt::neat_sae_id(sae_id);
    let folder = sae_results(results, sae_id, 6).join(format!("{neat}_pca_for_streamlit"));
    let mut manifest = read_json(&folder.join("pca_run.json"));
    let m = manifest.as_object_mut().unwrap();
    for key in ["seconds", "run_info", "set_id"] {
        m.remove(key);
    }
    for f in m["files"].as_array_mut().unwrap() {
        f.as_object_mut().unwrap().remove("sha256");
    }
    let h5: Vec<String> = m["h5_files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let path = Path::new(f.as_str().unwrap());
            path.strip_prefix(results).unwrap().display().to_string()
        })
        .collect();
    m.insert("h5_files".into(), serde_json::json!(h5));
    (folder, manifest)
}

/// Asserts two pca folders hold the same files: h5 files with equal datasets (h5py), any
/// other file but the manifest byte for byte.
fn same_pca_folders(a: &Path, b: &Path) {
    let names = |dir: &Path| {
        let mut n: Vec<_> = files_under(dir)
            .into_iter()
            .map(|f| f.strip_prefix(dir).unwrap().to_path_buf())
            .collect();
        n.sort();
        n
    };
    let listed = names(a);
    assert_eq!(listed, names(b));
    assert!(
        listed.iter().any(|n| n.extension() == Some("h5".as_ref())),
        "{listed:?}"
    );
    for name in listed
        .iter()
        .filter(|n| n.extension() != Some("h5".as_ref()))
    {
        if !name.ends_with("pca_run.json") {
            assert!(
                std::fs::read(a.join(name)).unwrap() == std::fs::read(b.join(name)).unwrap(),
                "{name:?}"
            );
        }
    }
    check_python("same_h5.py", [a, b]);
}

/// A pca run of two SAEs reads the data once for both, and writes for each, byte for byte,
/// the files and manifest that a run of that SAE alone writes; the same with one pass per
/// subgraph, and with a budget of one batch (subgraphs retried with two).
#[test]
fn two_saes_in_one_pass_write_what_each_alone_writes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = fixture(d);
    let ids = [FIXTURE_SAE, write_second_sae(&p)];
    let results = cooc_and_graphs_of(d, &with_sae_ids(&config_text(&p, 6, GRAPHS_ANALYSIS), &ids));
    let shared = pca_config(&p, 8, 3, 40);
    let one_batch = pca_config(&p, 1, 1, 1000);
    let cases = [
        (&shared, &[][..]),
        (&shared, &["--one-pass-per-subgraph"][..]),
        (&one_batch, &[][..]),
    ];
    for (tag, (config, extra)) in cases.into_iter().enumerate() {
        let alone: Vec<_> = ids
            .iter()
            .map(|id| {
                let root = d.join(format!("alone_{tag}_{id}"));
                copy_tree(&results, &root);
                let out = run_pca(
                    d,
                    &with_sae_ids(config, &[id]),
                    &root,
                    &[&["--quiet"], extra].concat(),
                );
                assert_ok(&out);
                root
            })
            .collect();
        let both = d.join(format!("both_{tag}"));
        copy_tree(&results, &both);
        let out = run_pca(d, &with_sae_ids(config, &ids), &both, extra);
        assert_ok(&out);
        let (mut read, mut retried) = (Vec::new(), false);
        for (id, root) in ids.iter().zip(&alone) {
            let (folder, manifest) = pca_outputs(&both, id);
            let (folder_alone, manifest_alone) = pca_outputs(root, id);
            assert_eq!(manifest, manifest_alone, "{id}");
            same_pca_folders(&folder, &folder_alone);
            read.push(manifest["batches_read"].as_u64().unwrap());
            let subgraphs = manifest["subgraphs"].as_array().unwrap();
            retried |= subgraphs.iter().any(|s| s["retried"] == true);
        }
        // One pass over the data: as many batches as the pass of an SAE (or subgraph) that
        // read the most, not their sum.
        let pass = batches_read_from_the_data(&stderr(&out), 2);
        let total: u64 = read.iter().sum();
        if extra.is_empty() {
            assert_eq!(pass, *read.iter().max().unwrap(), "{read:?}");
        } else {
            assert!(pass <= 2 * 8 && pass < total, "{pass} of {read:?}");
        }
        if tag == 2 {
            assert!(
                retried,
                "no subgraph was retried with a budget of one batch"
            );
        }
    }
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
