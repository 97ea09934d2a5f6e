//! `saecooc slurm`: the job scripts of a study (the cooc array over SAE × shard, merge, graphs,
//! pca, export chained by `afterok`), a rerun that writes only what is not complete, and the
//! submission order. SLURM itself is not needed: scripts/slurm-test.sh runs a real cluster.

use crate::common::{
    assert_ok, config_text, pca_config, saecooc, stderr, two_sae_fixture, with_both_saes,
    COPIED_SAE, FIXTURE_SAE,
};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The SAEs of the two-SAE config, in its order.
const SAES: [&str; 2] = [FIXTURE_SAE, COPIED_SAE];

/// A folder with the two-SAE world, `run.toml` (6 batches, thresholds 0, 1.5 and 3) and
/// `pca.toml` naming both SAEs.
fn study_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = two_sae_fixture(d);
    std::fs::write(d.join("run.toml"), with_both_saes(config_text(&p, 6, ""))).unwrap();
    std::fs::write(d.join("pca.toml"), with_both_saes(pca_config(&p, 2, 4, 50))).unwrap();
    dir
}

/// Runs `saecooc {args}` in `dir`.
fn run_in(dir: &Path, args: &[&str]) -> Output {
    saecooc(args).current_dir(dir).output().unwrap()
}

/// The command `saecooc slurm` in `dir` with the study's results folder and `jobs/`, plus
/// `extra`.
fn slurm_command(dir: &Path, extra: &[&str]) -> Command {
    let mut args = vec![
        "slurm",
        "--config",
        "run.toml",
        "--results-dir",
        "results",
        "--out",
        "jobs",
    ];
    args.extend_from_slice(extra);
    let mut command = saecooc(&args);
    command.current_dir(dir);
    command
}

/// Runs [`slurm_command`], which must succeed.
fn slurm(dir: &Path, extra: &[&str]) -> Output {
    let out = slurm_command(dir, extra).output().unwrap();
    assert_ok(&out);
    out
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The binary's absolute path, as the scripts run it.
fn binary() -> PathBuf {
    std::fs::canonicalize(env!("CARGO_BIN_EXE_saecooc")).unwrap()
}

/// The line a cooc array task runs for SAE `sae`, shard `i` of `n`.
fn cooc_task(dir: &Path, task: usize, sae: &str, (i, n): (usize, usize)) -> String {
    format!(
        "  {task}) exec {} cooc --config {} --results-dir {} --sae-id {sae} --shard {i}/{n} --resume --checkpoint-every 50 ;;",
        binary().display(),
        dir.join("run.toml").display(),
        dir.join("results").display()
    )
}

/// The `#SBATCH --array=` value of a script.
fn array_of(script: &str) -> Option<&str> {
    script
        .lines()
        .find_map(|l| l.strip_prefix("#SBATCH --array="))
}

#[test]
fn the_scripts_run_every_sae_and_shard_then_chain_the_stages_with_their_logs() {
    let dir = study_dir();
    let d = &std::fs::canonicalize(dir.path()).unwrap();
    let out = slurm(d, &["--shards", "3", "--pca-config", "pca.toml"]);
    let jobs = d.join("jobs");

    let cooc = read(&jobs.join("cooc.sh"));
    assert_eq!(array_of(&cooc), Some("0,1,2,3,4,5"), "{cooc}");
    for task in 0..6 {
        let expected = cooc_task(d, task, SAES[task / 3], (task % 3, 3));
        assert!(cooc.contains(&expected), "{expected}\nnot in\n{cooc}");
    }
    let log = |name: &str| {
        format!(
            "#SBATCH --output={}",
            jobs.join("logs").join(name).display()
        )
    };
    assert!(cooc.contains(&log("cooc_%A_%a.log")), "{cooc}");

    let merge = read(&jobs.join("merge.sh"));
    assert!(merge.contains(&log("merge_%j.log")), "{merge}");
    let merged = format!("merge --config {} --results-dir {} --shards 3 --sae-id {FIXTURE_SAE} --sae-id {COPIED_SAE}\n", d.join("run.toml").display(), d.join("results").display());
    assert!(merge.contains(&merged), "{merge}");
    assert_eq!(array_of(&merge), None);

    let pca = read(&jobs.join("pca.sh"));
    assert_eq!(array_of(&pca), Some("0,1"), "{pca}");
    for (task, sae) in SAES.iter().enumerate() {
        let line = format!(
            "  {task}) exec {} pca --config {} --results-dir {} --sae-id {sae} ;;",
            binary().display(),
            d.join("pca.toml").display(),
            d.join("results").display()
        );
        assert!(pca.contains(&line), "{line}\nnot in\n{pca}");
    }
    let export = read(&jobs.join("export.sh"));
    assert!(
        export.contains(&format!(
            "export --results-dir {} --out {}",
            d.join("results").display(),
            jobs.join("site").display()
        )),
        "{export}"
    );

    // The sbatch lines, printed and in submit.sh: each job after the one before.
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let order = ["cooc", "merge", "graphs", "pca", "export"];
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), order.len(), "{stdout}");
    for (k, (line, name)) in lines.iter().zip(order).enumerate() {
        let script = jobs.join(format!("{name}.sh"));
        assert!(
            line.starts_with(&format!(
                "job_{name}=$(sbatch --parsable --kill-on-invalid-dep=yes "
            )),
            "{line}"
        );
        assert!(line.ends_with(&format!(" {})", script.display())), "{line}");
        let after = (k > 0).then(|| format!("--dependency=afterok:${{job_{}%%;*}}", order[k - 1]));
        assert_eq!(line.contains("--dependency"), after.is_some(), "{line}");
        if let Some(after) = after {
            assert!(line.contains(&after), "{line}");
        }
    }
    let submit = read(&jobs.join("submit.sh"));
    for line in &lines {
        assert!(submit.contains(line), "{line} not in submit.sh:\n{submit}");
    }
}

#[test]
fn a_rerun_writes_tasks_only_for_what_is_not_complete() {
    let dir = study_dir();
    let d = &std::fs::canonicalize(dir.path()).unwrap();
    // The first SAE counted whole on one machine, the second SAE's shard 1 of 2 finished.
    let counted = ["cooc", "--config", "run.toml", "--results-dir", "results"];
    assert_ok(&run_in(
        d,
        &[&counted[..], &["--sae-id", FIXTURE_SAE]].concat(),
    ));
    let shard = ["--sae-id", COPIED_SAE, "--shard", "1/2"];
    assert_ok(&run_in(d, &[&counted[..], &shard].concat()));

    let out = slurm(d, &["--shards", "2"]);
    let jobs = d.join("jobs");
    let cooc = read(&jobs.join("cooc.sh"));
    assert_eq!(array_of(&cooc), Some("2"), "{cooc}");
    assert!(
        cooc.contains(&cooc_task(d, 2, COPIED_SAE, (0, 2))),
        "{cooc}"
    );
    assert!(!cooc.contains(FIXTURE_SAE), "{cooc}");
    let merge = read(&jobs.join("merge.sh"));
    assert!(
        merge.contains(&format!("--shards 2 --sae-id {COPIED_SAE}\n")),
        "{merge}"
    );
    assert!(!merge.contains(FIXTURE_SAE), "{merge}");
    let notes = stderr(&out);
    assert!(
        notes.contains(&format!("{FIXTURE_SAE}: cooc complete")),
        "{notes}"
    );
    assert!(
        notes.contains(&format!("{COPIED_SAE}: 1 of 2 shards complete")),
        "{notes}"
    );

    // Counted with other settings (another threshold list), nothing is complete.
    let other = read(&d.join("run.toml")).replace("[0.0, 1.5, 3]", "[0.0, 1.5]");
    assert_ne!(other, read(&d.join("run.toml")));
    std::fs::write(d.join("run.toml"), other).unwrap();
    slurm(d, &["--shards", "2"]);
    let cooc = read(&jobs.join("cooc.sh"));
    assert_eq!(array_of(&cooc), Some("0,1,2,3"), "{cooc}");
}

#[test]
fn when_every_sae_is_counted_only_graphs_and_export_are_left() {
    let dir = study_dir();
    let d = &std::fs::canonicalize(dir.path()).unwrap();
    slurm(d, &["--shards", "2"]);
    assert!(d.join("jobs/cooc.sh").is_file());
    assert_ok(&run_in(
        d,
        &["cooc", "--config", "run.toml", "--results-dir", "results"],
    ));
    let out = slurm(d, &["--shards", "2"]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let jobs: Vec<&str> = stdout
        .lines()
        .map(|l| l.split('=').next().unwrap())
        .collect();
    assert_eq!(jobs, ["job_graphs", "job_export"], "{stdout}");
    assert!(
        !stdout.lines().next().unwrap().contains("--dependency"),
        "{stdout}"
    );
    for stale in ["cooc", "merge"] {
        let script = d.join("jobs").join(format!("{stale}.sh"));
        assert!(
            !script.exists(),
            "{} left from the first run",
            script.display()
        );
    }
}

#[test]
fn submit_runs_sbatch_in_order_each_job_after_the_one_before() {
    use std::os::unix::fs::PermissionsExt;
    let dir = study_dir();
    let d = &std::fs::canonicalize(dir.path()).unwrap();
    // A stand-in sbatch: records its arguments, prints ids 101, 102, ... as `--parsable` does.
    let bin = d.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let calls = d.join("sbatch-calls.txt");
    let fake = format!(
        "#!/bin/sh\necho \"$@\" >> {0}\necho \"$((100 + $(wc -l < {0})));testcluster\"\n",
        calls.display()
    );
    std::fs::write(bin.join("sbatch"), fake).unwrap();
    std::fs::set_permissions(bin.join("sbatch"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let extra = [
        "--shards",
        "2",
        "--submit",
        "--sbatch-args",
        "--partition=gpu --time=1:00:00",
    ];
    let out = slurm_command(d, &extra).env("PATH", path).output().unwrap();
    assert_ok(&out);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let order = ["cooc", "merge", "graphs", "export"];
    for (k, name) in order.iter().enumerate() {
        assert!(
            stdout.contains(&format!("submitted {name}: job {}\n", 101 + k)),
            "{stdout}"
        );
    }
    let calls = read(&calls);
    let calls: Vec<&str> = calls.lines().collect();
    assert_eq!(calls.len(), order.len(), "{calls:?}");
    for (k, (call, name)) in calls.iter().zip(order).enumerate() {
        let dependency = match k {
            0 => String::new(),
            _ => format!("--dependency=afterok:{} ", 100 + k),
        };
        let expected = format!(
            "--parsable --kill-on-invalid-dep=yes {dependency}--partition=gpu --time=1:00:00 {}",
            d.join("jobs").join(format!("{name}.sh")).display()
        );
        assert_eq!(*call, expected);
    }
}
