//! `saecooc stats` against a direct computation from the node tables and count matrices
//! (pandas / numpy).

use crate::common::{
    assert_ok, batches_read_from_the_data, check_python, config_text, cooc_and_graphs_of, fixture,
    prepare, read_json, saecooc, stderr, with_sae_ids, write_second_sae, FIXTURE_SAE,
    GRAPHS_ANALYSIS,
};
use serde_json::Value;

#[test]
fn stats_agree_with_a_direct_computation() {
    let dir = tempfile::tempdir().unwrap();
    let (_, results) = prepare(dir.path());
    let out = dir.path().join("stats");
    let o = saecooc(&[
        "--quiet",
        "stats",
        "--results-dir",
        results.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ])
    .output()
    .unwrap();
    assert_ok(&o);
    check_python("check_stats.py", [&results, &out]);
}

/// `stats --config` of two SAEs reads the data once for both, and each SAE's token pass
/// equals (exactly) that of a run whose config names that SAE alone.
#[test]
fn token_pass_of_two_saes_reads_the_data_once_and_equals_each_alone() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = fixture(d);
    let ids = [FIXTURE_SAE, write_second_sae(&p)];
    let config = config_text(&p, 6, GRAPHS_ANALYSIS);
    let results = cooc_and_graphs_of(d, &with_sae_ids(&config, &ids));
    let stats = |saes: &[&str], name: &str| -> (Vec<Value>, String) {
        let path = d.join(format!("{name}.toml"));
        std::fs::write(&path, with_sae_ids(&config, saes)).unwrap();
        let out_dir = d.join(name);
        let o = saecooc(&["stats", "--batches", "3", "--results-dir"])
            .arg(&results)
            .arg("--out")
            .arg(&out_dir)
            .arg("--config")
            .arg(&path)
            .output()
            .unwrap();
        assert_ok(&o);
        let rows = read_json(&out_dir.join("summary.json"));
        (rows.as_array().unwrap().clone(), stderr(&o))
    };
    let passes = |rows: &[Value], id: &str| -> Vec<Value> {
        let neat = saecooc::io::pyfmt::neat_sae_id(id);
        rows.iter()
            .filter(|r| r["sae"] == neat.as_str())
            .map(|r| r["token_pass"].clone())
            .collect()
    };
    let (both, said) = stats(&ids, "both");
    assert_eq!(batches_read_from_the_data(&said, 2), 3, "{said}");
    for (i, id) in ids.iter().enumerate() {
        let (alone, _) = stats(&[id], &format!("alone_{i}"));
        let want = passes(&alone, id);
        let counted = want.iter().filter(|t| t["tokens"].as_u64() > Some(0));
        assert!(counted.count() >= 1, "{want:?}");
        assert_eq!(passes(&both, id), want, "{id}");
        // The other SAE, not in this config, has no token pass.
        let other = ids[1 - i];
        assert!(passes(&alone, other).iter().all(Value::is_null), "{other}");
    }
}
