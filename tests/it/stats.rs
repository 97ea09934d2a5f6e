//! `saecooc stats` against a direct computation from the node tables and count matrices
//! (pandas / numpy).

use crate::common::{assert_ok, check_python, prepare, saecooc};

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
