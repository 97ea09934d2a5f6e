//! The wide-SAE path: the sparse pair accumulator and scipy CSR count/Jaccard files give
//! exactly the dense run's matrices (checked with our reader and with `scipy.sparse.load_npz`),
//! sharded sparse runs merge to the same files, and `graphs` and `stats` read CSR inputs to
//! the same results as dense ones.

use crate::common::{
    assert_ok, check_python, config_text, fixture, results_dir, run_stats, saecooc,
};
use saecooc::io::csr::read_csr_rows;
use saecooc::io::npz::{read_f32_rows, read_npz};
use std::path::{Path, PathBuf};

const TAGS: [&str; 3] = ["0_0", "1_5", "3_0"];
const ANALYSIS: &str =
    "\n[analysis]\nmin_subgraph_size = 20\nmax_subgraph_size = 40\nskip_subgraph_plots = true\n";
const SPARSE: &str = "accumulator = \"sparse\"\nmatrix_format = \"csr\"\n";

fn run(args: &[&str], config: &Path, results: &Path) {
    let mut cmd = saecooc(&["--quiet"]);
    cmd.args(args)
        .arg("--config")
        .arg(config)
        .arg("--results-dir")
        .arg(results);
    assert_ok(&cmd.output().unwrap());
}

fn dense_rows(path: &Path) -> Vec<Vec<f32>> {
    let mut rows = Vec::new();
    read_f32_rows(
        path,
        None,
        |_| Ok(()),
        |_, r| {
            rows.push(r.to_vec());
            Ok(())
        },
    )
    .unwrap();
    rows
}

fn csr_as_dense(path: &Path) -> Vec<Vec<f32>> {
    let mut rows = Vec::new();
    read_csr_rows(
        path,
        |_, _| Ok(()),
        |_, cols, vals| {
            let mut row = vec![0f32; 256];
            for (&c, &v) in cols.iter().zip(vals) {
                row[c as usize] = v;
            }
            rows.push(row);
            Ok(())
        },
    )
    .unwrap();
    rows
}

fn matrix(dir: &Path, kind: &str, tag: &str) -> PathBuf {
    dir.join(format!("feature_acts_cooc_{kind}_threshold_{tag}.npz"))
}

#[test]
fn sparse_accumulator_and_csr_files_match_the_dense_run() {
    let dir = tempfile::tempdir().unwrap();
    let p = fixture(dir.path());
    let dense_cfg = dir.path().join("dense.toml");
    let sparse_cfg = dir.path().join("sparse.toml");
    let text = config_text(&p, 6, ANALYSIS);
    std::fs::write(&dense_cfg, &text).unwrap();
    std::fs::write(&sparse_cfg, format!("{text}{SPARSE}")).unwrap();
    let (dense, sparse, split) = (
        dir.path().join("dense"),
        dir.path().join("sparse"),
        dir.path().join("split"),
    );
    run(&["cooc"], &dense_cfg, &dense);
    run(&["cooc"], &sparse_cfg, &sparse);
    for i in 0..2 {
        run(&["cooc", "--shard", &format!("{i}/2")], &sparse_cfg, &split);
    }
    run(&["merge", "--shards", "2"], &sparse_cfg, &split);
    let (d, s, m) = (
        results_dir(&dense, 6),
        results_dir(&sparse, 6),
        results_dir(&split, 6),
    );

    for tag in TAGS {
        for kind in ["total", "jaccard"] {
            let want = dense_rows(&matrix(&d, kind, tag));
            assert!(want.iter().flatten().any(|&v| v > 0.0));
            assert_eq!(csr_as_dense(&matrix(&s, kind, tag)), want, "{kind} {tag}");
            assert_eq!(
                read_npz(&matrix(&m, kind, tag)).unwrap(),
                read_npz(&matrix(&s, kind, tag)).unwrap(),
                "merged shards: {kind} {tag}"
            );
        }
        assert_eq!(
            read_npz(&matrix(&d, "activations", tag)).unwrap(),
            read_npz(&matrix(&s, "activations", tag)).unwrap()
        );
    }
    check_python("check_csr_matches_dense.py", [&d, &s]);

    // graphs reads CSR Jaccard matrices to the same edge thresholds, node tables and edges;
    // the dense thresholded matrix is only written for dense inputs.
    run(&["graphs"], &dense_cfg, &dense);
    run(&["graphs"], &sparse_cfg, &sparse);
    let read = |p: PathBuf| std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    assert_eq!(
        read(d.join("edge_thresholds.csv")),
        read(s.join("edge_thresholds.csv"))
    );
    for tag in TAGS {
        let table = format!("dataframes/node_info_df_{tag}.csv");
        assert_eq!(read(d.join(&table)), read(s.join(&table)), "{table}");
        let sparse_t = format!("thresholded_matrices/sparse_thresholded_matrix_{tag}.npz");
        assert_eq!(
            read_npz(&d.join(&sparse_t)).unwrap(),
            read_npz(&s.join(&sparse_t)).unwrap()
        );
        let dense_t = format!("thresholded_matrices/thresholded_matrix_{tag}.npz");
        assert!(d.join(&dense_t).is_file() && !s.join(&dense_t).exists());
    }

    // stats reads CSR count matrices to the same numbers.
    let stats = |results: &Path, out: &Path| -> serde_json::Value {
        run_stats(results, out);
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap()
    };
    let (a, b) = (
        stats(&dense, &dir.path().join("stats_dense")),
        stats(&sparse, &dir.path().join("stats_sparse")),
    );
    for k in 0..3 {
        assert!(a[k]["cooccurrence"]["pairs_observed"].as_u64().unwrap() > 0);
        assert_eq!(a[k]["cooccurrence"], b[k]["cooccurrence"], "threshold {k}");
    }
}

#[test]
fn a_dense_accumulator_that_does_not_fit_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = fixture(dir.path());
    let cfg = dir.path().join("run.toml");
    let text = config_text(&p, 1, "");
    std::fs::write(
        &cfg,
        format!("{text}accumulator = \"dense\"\ndense_limit_gib = 0.00001\n"),
    )
    .unwrap();
    let out = saecooc(&["--quiet", "cooc", "--config"])
        .arg(&cfg)
        .arg("--results-dir")
        .arg(dir.path().join("r"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("run.dense_limit_gib") && err.contains("accumulator = \"sparse\""),
        "{err}"
    );
}
