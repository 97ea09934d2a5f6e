//! `--shard auto`: the share of a sharded run that the cluster scheduler gave this task, read
//! once from the scheduler's own variables: a SLURM array job's `SLURM_ARRAY_TASK_ID` with
//! `SLURM_ARRAY_TASK_COUNT` (or `_MIN`/`_MAX`), a Kubernetes indexed Job's
//! `JOB_COMPLETION_INDEX` with the count given as `--shard auto/N`.

use crate::stages::cooc::{Shard, ShardRequest};
use anyhow::{bail, ensure, Result};

const SLURM_ID: &str = "SLURM_ARRAY_TASK_ID";
const SLURM_COUNT: &str = "SLURM_ARRAY_TASK_COUNT";
const SLURM_MIN: &str = "SLURM_ARRAY_TASK_MIN";
const SLURM_MAX: &str = "SLURM_ARRAY_TASK_MAX";
const SLURM_STEP: &str = "SLURM_ARRAY_TASK_STEP";
const K8S_INDEX: &str = "JOB_COMPLETION_INDEX";

/// The process's environment variables, or a test's.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process's environment.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// The shard `--shard` asks for, `auto` resolved from `env`, with a line saying where it came
/// from (`None` for a shard given outright or no `--shard`).
pub fn resolve_shard(
    request: Option<ShardRequest>,
    env: Env,
) -> Result<(Option<Shard>, Option<String>)> {
    let count = match request {
        None => return Ok((None, None)),
        Some(ShardRequest::Given(shard)) => return Ok((Some(shard), None)),
        Some(ShardRequest::Auto { count }) => count,
    };
    let (shard, source) = match (env(SLURM_ID), env(K8S_INDEX)) {
        (Some(id), Some(index)) => bail!(
            "--shard auto: both {SLURM_ID}={id} (SLURM) and {K8S_INDEX}={index} (Kubernetes) are set; give the share as --shard I/N"
        ),
        (Some(id), None) => slurm_shard(&id, count, env)?,
        (None, Some(index)) => kubernetes_shard(&index, count)?,
        (None, None) => bail!(
            "--shard auto: neither {SLURM_ID} (a SLURM array job) nor {K8S_INDEX} (a Kubernetes indexed Job) is set; outside a scheduler give the share as --shard I/N"
        ),
    };
    let line = format!(
        "--shard auto: shard {}/{} ({source})",
        shard.index, shard.count
    );
    Ok((Some(shard), Some(line)))
}

/// The warning for a run inside a SLURM array job without `--shard`: every task would count
/// the whole data.
pub fn array_job_warning(env: Env) -> Option<String> {
    let id = env(SLURM_ID)?;
    Some(format!(
        "warning: {SLURM_ID}={id} is set (a SLURM array job) but --shard is not: every task of the array counts the whole data. To split the work across the array's tasks, run `saecooc cooc --shard auto`, then `saecooc merge --shards N`"
    ))
}

/// The whole number in the variable `name` (whose value is `value`).
fn whole_number(name: &str, value: &str) -> Result<usize> {
    value
        .trim()
        .parse()
        .map_err(|_| anyhow::anyhow!("--shard auto: {name}={value:?} is not a whole number"))
}

/// The variable `name` of `env` as a whole number, if set.
fn optional_number(env: Env, name: &str) -> Result<Option<usize>> {
    env(name).map(|v| whole_number(name, &v)).transpose()
}

/// The shard of SLURM array task `id`: index `id - MIN` (0 without `_MIN`), count from
/// `_COUNT` or `_MAX - _MIN + 1`, which must agree with each other and with `given`.
fn slurm_shard(id: &str, given: Option<usize>, env: Env) -> Result<(Shard, String)> {
    let task = whole_number(SLURM_ID, id)?;
    if let Some(step) = optional_number(env, SLURM_STEP)? {
        ensure!(
            step == 1,
            "--shard auto: {SLURM_STEP}={step}: the array has a step, so its task ids are not the shards 0..N; submit it without one (e.g. --array=0-7)"
        );
    }
    let min = optional_number(env, SLURM_MIN)?;
    let first = min.unwrap_or(0);
    ensure!(
        task >= first,
        "--shard auto: {SLURM_ID}={task} is below {SLURM_MIN}={first}"
    );
    let mut sources = vec![format!("{SLURM_ID}={task}")];
    let span = match optional_number(env, SLURM_MAX)? {
        Some(max) => {
            ensure!(
                task <= max,
                "--shard auto: {SLURM_ID}={task} is outside {SLURM_MIN}..{SLURM_MAX} = {first}..{max}"
            );
            sources.push(format!("{SLURM_MIN}={first}, {SLURM_MAX}={max}"));
            Some(max - first + 1)
        }
        None => None,
    };
    let count = optional_number(env, SLURM_COUNT)?;
    if let (Some(count), Some(span)) = (count, span) {
        ensure!(
            count == span,
            "--shard auto: {SLURM_COUNT}={count} but {SLURM_MIN}..{SLURM_MAX} spans {span} tasks: the array is not contiguous; submit it as a range (e.g. --array=0-7)"
        );
    }
    if let Some(count) = count {
        sources.push(format!("{SLURM_COUNT}={count}"));
    }
    let count = agreed_count(count.or(span), given, SLURM_COUNT)?;
    let index = task - first;
    ensure!(
        index < count,
        "--shard auto: {SLURM_ID}={task} gives shard {index}, not below the count {count} ({})",
        sources.join(", ")
    );
    Ok((Shard { index, count }, sources.join(", ")))
}

/// The scheduler's count and the one given as `--shard auto/N`: either, and equal when both.
fn agreed_count(scheduler: Option<usize>, given: Option<usize>, name: &str) -> Result<usize> {
    match (scheduler, given) {
        (Some(s), Some(g)) => {
            ensure!(
                s == g,
                "--shard auto/{g}: the scheduler's array has {s} tasks ({name}); give --shard auto, or submit {g} tasks"
            );
            Ok(s)
        }
        (Some(n), None) | (None, Some(n)) => Ok(n),
        (None, None) => bail!(
            "--shard auto: {SLURM_ID} is set but neither {SLURM_COUNT} nor {SLURM_MIN}/{SLURM_MAX}; give the count as --shard auto/N"
        ),
    }
}

/// The shard of Kubernetes completion index `index`; the count is `--shard auto/N`'s.
fn kubernetes_shard(index: &str, given: Option<usize>) -> Result<(Shard, String)> {
    let index = whole_number(K8S_INDEX, index)?;
    let Some(count) = given else {
        bail!(
            "--shard auto: {K8S_INDEX}={index} is set (a Kubernetes indexed Job), which gives no count; give it as --shard auto/N with N the Job's completions"
        );
    };
    ensure!(
        index < count,
        "--shard auto/{count}: {K8S_INDEX}={index} is not below the count {count}"
    );
    Ok((Shard { index, count }, format!("{K8S_INDEX}={index}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(arg: &str, vars: &[(&str, &str)]) -> Result<Option<Shard>> {
        let env = |name: &str| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        };
        Ok(resolve_shard(Some(ShardRequest::parse(arg)?), &env)?.0)
    }

    fn shard(index: usize, count: usize) -> Option<Shard> {
        Some(Shard { index, count })
    }

    fn refusal(arg: &str, vars: &[(&str, &str)]) -> String {
        format!("{:#}", resolve(arg, vars).unwrap_err())
    }

    #[test]
    fn slurm_shards_come_from_count_or_min_and_max() {
        let by_count = [(SLURM_ID, "2"), (SLURM_COUNT, "3")];
        assert_eq!(resolve("auto", &by_count).unwrap(), shard(2, 3));
        let by_range = [(SLURM_ID, "5"), (SLURM_MIN, "4"), (SLURM_MAX, "7")];
        assert_eq!(resolve("auto", &by_range).unwrap(), shard(1, 4));
        let all = [
            (SLURM_ID, "5"),
            (SLURM_MIN, "4"),
            (SLURM_MAX, "7"),
            (SLURM_COUNT, "4"),
            (SLURM_STEP, "1"),
        ];
        assert_eq!(resolve("auto/4", &all).unwrap(), shard(1, 4));
        assert_eq!(resolve("auto/3", &[(SLURM_ID, "2")]).unwrap(), shard(2, 3));
    }

    #[test]
    fn kubernetes_needs_the_count_on_the_command_line() {
        assert_eq!(resolve("auto/8", &[(K8S_INDEX, "7")]).unwrap(), shard(7, 8));
        assert!(refusal("auto", &[(K8S_INDEX, "7")]).contains("--shard auto/N"));
        assert!(refusal("auto/8", &[(K8S_INDEX, "8")]).contains("JOB_COMPLETION_INDEX=8"));
    }

    #[test]
    fn bad_variables_are_refused_naming_them() {
        type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
        let cases: [Case; 8] = [
            (
                "auto",
                &[(SLURM_ID, "x"), (SLURM_COUNT, "2")],
                "SLURM_ARRAY_TASK_ID=\"x\"",
            ),
            (
                "auto",
                &[(SLURM_ID, "1"), (SLURM_COUNT, "two")],
                "SLURM_ARRAY_TASK_COUNT=\"two\"",
            ),
            (
                "auto",
                &[(SLURM_ID, "2"), (SLURM_COUNT, "2")],
                "SLURM_ARRAY_TASK_ID=2 gives shard 2",
            ),
            (
                "auto",
                &[
                    (SLURM_ID, "0"),
                    (SLURM_MIN, "0"),
                    (SLURM_MAX, "6"),
                    (SLURM_STEP, "2"),
                ],
                "SLURM_ARRAY_TASK_STEP=2",
            ),
            (
                "auto",
                &[(SLURM_ID, "9"), (SLURM_MIN, "0"), (SLURM_MAX, "7")],
                "SLURM_ARRAY_TASK_ID=9 is outside",
            ),
            (
                "auto",
                &[(SLURM_ID, "1"), (SLURM_MIN, "2"), (SLURM_MAX, "7")],
                "below SLURM_ARRAY_TASK_MIN=2",
            ),
            ("auto", &[(SLURM_ID, "1")], "neither SLURM_ARRAY_TASK_COUNT"),
            (
                "auto/3",
                &[(SLURM_ID, "1"), (SLURM_COUNT, "2")],
                "SLURM_ARRAY_TASK_COUNT",
            ),
        ];
        for (arg, vars, expected) in cases {
            let err = refusal(arg, vars);
            assert!(err.contains(expected), "{arg} {vars:?}: {err}");
        }
        assert!(refusal("auto", &[]).contains("neither SLURM_ARRAY_TASK_ID"));
        let both = [(SLURM_ID, "0"), (SLURM_COUNT, "2"), (K8S_INDEX, "0")];
        assert!(refusal("auto", &both).contains("both"));
    }

    #[test]
    fn the_flag_parses_shares_and_auto() {
        assert_eq!(resolve("1/4", &[(SLURM_ID, "3")]).unwrap(), shard(1, 4));
        assert!(resolve("auto/0", &[]).is_err());
        assert!(resolve("autox", &[]).is_err());
        assert!(resolve("4/4", &[]).is_err());
        assert_eq!(
            resolve_shard(None, &|_: &str| Some("1".into())).unwrap(),
            (None, None)
        );
        assert!(array_job_warning(&|_: &str| None).is_none());
        let warning = array_job_warning(&|n: &str| (n == SLURM_ID).then(|| "3".into())).unwrap();
        assert!(warning.contains("--shard auto"), "{warning}");
    }
}
