//! The text of each job script: `#SBATCH` lines (name, log file, array), then the saecooc
//! command(s), run from the folder `saecooc slurm` ran in.

use super::done::SaeProgress;
use super::{write_file, Job, SlurmOptions};
use anyhow::Result;
use std::path::Path;

/// Writes the scripts of one study.
pub(super) struct Writer<'a> {
    pub options: &'a SlurmOptions,
    /// The results root every stage is given (absolute).
    pub root: &'a Path,
}

impl Writer<'_> {
    /// The cooc array job: a task `s × shards + i` per SAE `s` and shard `i` not yet complete;
    /// `None` when every SAE's set or shard is.
    pub fn cooc(&self, progress: &[SaeProgress]) -> Result<Option<Job>> {
        let o = self.options;
        let n = o.shards;
        let mut tasks = Vec::new();
        for (s, sae) in progress.iter().enumerate().filter(|(_, p)| !p.published) {
            for i in (0..n).filter(|i| !sae.shards_done[*i]) {
                let args = [
                    "--sae-id".into(),
                    sae.sae_id.clone(),
                    "--shard".into(),
                    format!("{i}/{n}"),
                    "--resume".into(),
                    "--checkpoint-every".into(),
                    o.checkpoint_every.to_string(),
                ];
                tasks.push((s * n + i, self.stage("cooc", &o.config, &args)));
            }
        }
        self.array_job("cooc", tasks)
    }

    /// The merge job, for the SAEs whose set is not yet published; `None` when all are.
    pub fn merge(&self, progress: &[SaeProgress]) -> Result<Option<Job>> {
        let o = self.options;
        let pending: Vec<&SaeProgress> = progress.iter().filter(|p| !p.published).collect();
        if pending.is_empty() {
            return Ok(None);
        }
        let mut args = vec!["--shards".to_string(), o.shards.to_string()];
        for p in pending {
            args.extend(["--sae-id".to_string(), p.sae_id.clone()]);
        }
        let command = self.stage("merge", &o.config, &args);
        self.single_job("merge", &command).map(Some)
    }

    /// The graphs job, over every SAE of the config.
    pub fn graphs(&self) -> Result<Job> {
        let command = self.stage("graphs", &self.options.config, &[]);
        self.single_job("graphs", &command)
    }

    /// The pca array job: a task per SAE of the PCA config.
    pub fn pca(&self, sae_ids: &[String]) -> Result<Job> {
        let config = self.options.pca_config.as_deref().unwrap_or(Path::new(""));
        let tasks = sae_ids
            .iter()
            .enumerate()
            .map(|(t, id)| {
                (
                    t,
                    self.stage("pca", config, &["--sae-id".into(), id.clone()]),
                )
            })
            .collect();
        self.array_job("pca", tasks)?
            .ok_or_else(|| anyhow::anyhow!("{} lists no SAE ([model] sae_ids)", config.display()))
    }

    /// The export job: the explorer site of the results into `{out}/site`.
    pub fn export(&self) -> Result<Job> {
        let o = self.options;
        let mut words = vec![
            quote_path(&o.binary),
            "export".into(),
            "--results-dir".into(),
            quote_path(self.root),
            "--out".into(),
            quote_path(&o.out.join("site")),
        ];
        if let Some(pca) = &o.pca_config {
            words.extend(["--config".into(), quote_path(pca)]);
        }
        self.single_job("export", &words.join(" "))
    }

    /// `{binary} {stage} --config {config} --results-dir {root} {args}`, quoted for bash.
    fn stage(&self, stage: &str, config: &Path, args: &[String]) -> String {
        let mut words = vec![
            quote_path(&self.options.binary),
            stage.to_string(),
            "--config".into(),
            quote_path(config),
            "--results-dir".into(),
            quote_path(self.root),
        ];
        words.extend(args.iter().map(|a| shell_quote(a)));
        words.join(" ")
    }

    /// An array job running `tasks` (task id, command); `None` without tasks.
    fn array_job(&self, name: &'static str, tasks: Vec<(usize, String)>) -> Result<Option<Job>> {
        if tasks.is_empty() {
            return Ok(None);
        }
        let ids: Vec<usize> = tasks.iter().map(|(t, _)| *t).collect();
        let list: Vec<String> = ids.iter().map(usize::to_string).collect();
        let mut body = format!("#SBATCH --array={}\n", list.join(","));
        body.push_str(&self.prologue());
        body.push_str("case \"${SLURM_ARRAY_TASK_ID:?this script is a SLURM array job}\" in\n");
        for (t, command) in &tasks {
            body.push_str(&format!("  {t}) exec {command} ;;\n"));
        }
        body.push_str(
            "  *) echo \"no task ${SLURM_ARRAY_TASK_ID} in this script\" >&2; exit 1 ;;\nesac\n",
        );
        let log = format!("{name}_%A_%a.log");
        let script = self.write(name, &log, &body)?;
        Ok(Some(Job {
            name,
            script,
            array: Some(ids),
            after: None,
        }))
    }

    /// A job running `command` once.
    fn single_job(&self, name: &'static str, command: &str) -> Result<Job> {
        let body = format!("{}exec {command}\n", self.prologue());
        let script = self.write(name, &format!("{name}_%j.log"), &body)?;
        Ok(Job {
            name,
            script,
            array: None,
            after: None,
        })
    }

    /// `set -euo pipefail` and the folder the jobs run in.
    fn prologue(&self) -> String {
        format!(
            "set -euo pipefail\ncd {}\n",
            quote_path(&self.options.workdir)
        )
    }

    /// Writes `{out}/{name}.sh`: the header (name, log `{out}/logs/{log}`) then `body`.
    fn write(&self, name: &str, log: &str, body: &str) -> Result<std::path::PathBuf> {
        let out = &self.options.out;
        let path = out.join(format!("{name}.sh"));
        let text = format!(
            "#!/bin/bash\n# Written by `saecooc slurm`; submit with {}.\n#SBATCH --job-name=saecooc-{name}\n#SBATCH --output={}\n{body}",
            out.join("submit.sh").display(),
            out.join("logs").join(log).display(),
        );
        write_file(&path, &text)?;
        Ok(path)
    }
}

/// `path` quoted for bash.
fn quote_path(path: &Path) -> String {
    shell_quote(&path.to_string_lossy())
}

/// `word` as bash reads it back: unchanged when it holds only safe characters, else in single
/// quotes (a `'` inside written `'\''`).
pub fn shell_quote(word: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c);
    if !word.is_empty() && word.chars().all(safe) {
        return word.to_string();
    }
    format!("'{}'", word.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use super::shell_quote;

    #[test]
    fn safe_words_stay_as_they_are() {
        for word in [
            "blocks.1.hook_resid_pre",
            "/a/b-c/run.toml",
            "0/2",
            "--shard",
        ] {
            assert_eq!(shell_quote(word), word);
        }
    }

    #[test]
    fn other_words_read_back_through_bash_unchanged() {
        let words = ["with space", "it's", "$HOME", "a;b", "", "\"q\" `x`"];
        let line: Vec<String> = words.iter().map(|w| shell_quote(w)).collect();
        let script = format!(
            "for w in {}; do printf '%s\\n' \"$w\"; done",
            line.join(" ")
        );
        let out = std::process::Command::new("bash")
            .args(["-c", &script])
            .output()
            .unwrap();
        let read = String::from_utf8(out.stdout).unwrap();
        assert_eq!(read.lines().collect::<Vec<_>>(), words);
    }
}
