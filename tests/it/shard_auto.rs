//! `cooc --shard auto`: the share a scheduler gave the task (SLURM array jobs by count or by
//! MIN/MAX, Kubernetes indexed Jobs with the count on the command line) writes exactly the
//! shard file of the same share given as `--shard I/N`; bad variables are refused naming them,
//! and a SLURM array task without `--shard` is warned that it counts everything.

use crate::common::{assert_ok, config_text, fixture, results_dir, saecooc, stderr};
use std::path::{Path, PathBuf};
use std::process::Output;

/// Every variable `--shard auto` reads, cleared around each run so the test's own
/// environment (e.g. a CI job in a SLURM array) cannot leak in.
const SCHEDULER_VARS: [&str; 6] = [
    "SLURM_ARRAY_TASK_ID",
    "SLURM_ARRAY_TASK_COUNT",
    "SLURM_ARRAY_TASK_MIN",
    "SLURM_ARRAY_TASK_MAX",
    "SLURM_ARRAY_TASK_STEP",
    "JOB_COMPLETION_INDEX",
];

/// `saecooc -q cooc` of `config` into `results` with `args` and the scheduler variables `env`.
fn cooc(config: &Path, results: &Path, args: &[&str], env: &[(&str, String)]) -> Output {
    let mut cmd = saecooc(&["--quiet", "cooc", "--config"]);
    cmd.arg(config).arg("--results-dir").arg(results).args(args);
    for var in SCHEDULER_VARS {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().map(|(k, v)| (k, v)));
    cmd.output().unwrap()
}

/// The tiny synthetic world in `dir` and a config counting `n_batches` on it; returns the
/// config's path.
fn tiny_world(dir: &Path, n_batches: usize) -> PathBuf {
    let p = fixture(dir);
    let config = dir.join("run.toml");
    std::fs::write(&config, config_text(&p, n_batches, "")).unwrap();
    config
}

/// The bytes of shard `i` of 2 in the results root `results`.
fn shard_bytes(results: &Path, i: usize) -> Vec<u8> {
    let path = results_dir(results, 3).join(format!("shards/shard_{i}_of_2.npz"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn scheduler_shards_equal_the_explicit_shards() {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_world(dir.path(), 3);
    let explicit = dir.path().join("explicit");
    for i in 0..2 {
        assert_ok(&cooc(
            &config,
            &explicit,
            &["--shard", &format!("{i}/2")],
            &[],
        ));
    }
    type Vars = fn(usize) -> Vec<(&'static str, String)>;
    let schedulers: [(&str, &str, Vars); 3] = [
        ("slurm_count", "auto", |i| {
            vec![
                ("SLURM_ARRAY_TASK_ID", i.to_string()),
                ("SLURM_ARRAY_TASK_COUNT", "2".into()),
            ]
        }),
        ("slurm_range", "auto", |i| {
            vec![
                ("SLURM_ARRAY_TASK_ID", (i + 4).to_string()),
                ("SLURM_ARRAY_TASK_MIN", "4".into()),
                ("SLURM_ARRAY_TASK_MAX", "5".into()),
            ]
        }),
        ("kubernetes", "auto/2", |i| {
            vec![("JOB_COMPLETION_INDEX", i.to_string())]
        }),
    ];
    for (name, flag, vars) in schedulers {
        let results = dir.path().join(name);
        for i in 0..2 {
            assert_ok(&cooc(&config, &results, &["--shard", flag], &vars(i)));
            assert!(
                shard_bytes(&results, i) == shard_bytes(&explicit, i),
                "{name}: shard {i} differs from --shard {i}/2"
            );
        }
    }
}

#[test]
fn bad_scheduler_variables_are_refused_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_world(dir.path(), 3);
    let results = dir.path().join("results");
    let var = |k: &'static str, v: &str| (k, v.to_string());
    let cases = [
        (
            "auto",
            vec![
                var("SLURM_ARRAY_TASK_ID", "2"),
                var("SLURM_ARRAY_TASK_COUNT", "2"),
            ],
            "SLURM_ARRAY_TASK_ID=2",
        ),
        (
            "auto",
            vec![
                var("SLURM_ARRAY_TASK_ID", "0"),
                var("SLURM_ARRAY_TASK_MIN", "0"),
                var("SLURM_ARRAY_TASK_MAX", "6"),
                var("SLURM_ARRAY_TASK_STEP", "2"),
            ],
            "SLURM_ARRAY_TASK_STEP=2",
        ),
        (
            "auto",
            vec![var("SLURM_ARRAY_TASK_ID", "one")],
            "SLURM_ARRAY_TASK_ID=\"one\"",
        ),
        (
            "auto",
            vec![var("JOB_COMPLETION_INDEX", "1")],
            "JOB_COMPLETION_INDEX=1",
        ),
        (
            "auto/2",
            vec![var("JOB_COMPLETION_INDEX", "2")],
            "JOB_COMPLETION_INDEX=2",
        ),
        ("auto", vec![], "neither SLURM_ARRAY_TASK_ID"),
    ];
    for (flag, vars, expected) in cases {
        let out = cooc(&config, &results, &["--shard", flag], &vars);
        let err = stderr(&out);
        assert!(!out.status.success(), "{flag} {vars:?} was accepted");
        assert!(err.contains(expected), "{flag} {vars:?}: {err}");
    }
    assert!(
        !results.exists(),
        "a refused run wrote {}",
        results.display()
    );
}

#[test]
fn an_array_task_without_shard_is_warned_even_when_quiet() {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_world(dir.path(), 1);
    let results = dir.path().join("results");
    let task = [("SLURM_ARRAY_TASK_ID", "3".to_string())];
    let warned = cooc(&config, &results, &[], &task);
    assert_ok(&warned);
    let err = stderr(&warned);
    assert!(
        err.contains("SLURM_ARRAY_TASK_ID=3 is set") && err.contains("--shard auto"),
        "{err}"
    );
    let alone = cooc(&config, &results, &["--replace"], &[]);
    assert_ok(&alone);
    assert!(!stderr(&alone).contains("SLURM"), "{}", stderr(&alone));
}
