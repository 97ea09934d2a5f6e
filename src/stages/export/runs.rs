//! Which `pca` runs `export` shows. With a saecooc manifest (`pca_run.json` listing its files)
//! exactly the run it lists; h5 files it does not list are left out, and said so. Without one
//! (the original's scripts, or files copied together) every run in the folder is exported and
//! offered in the explorer, the one `pca_run.json` names (older saecooc) or else the newest
//! shown first, and a note says which.

use crate::results::h5::{pca_runs, PcaFile, PcaRun};
use crate::results::layout::{site_key, PCA_RUN_JSON};
use crate::results::set::PublishedSet;
use anyhow::Result;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// One run as the site offers it.
pub(super) struct ExportRun {
    /// Short name used in the site's paths and URLs (`1000cap_nbatch_40`).
    pub id: String,
    /// What a reader sees: `1000-example cap, nbatch 40`.
    pub label: String,
    /// Why it is there: listed in the manifest, the newest files, …
    pub source: String,
    pub files: Vec<PcaFile>,
}

/// The runs to export, the one shown first at the front, and notes for the user.
pub(super) struct RunChoice {
    pub runs: Vec<ExportRun>,
    pub notes: Vec<String>,
}

/// `1000cap_graph_analysis_results_nbatch_40` → `1000cap_nbatch_40`, as a site key (so two
/// runs never share an id; see [`site_key`]).
fn run_id(name: &str) -> String {
    site_key(&[&name.replacen("graph_analysis_results_", "", 1)])
}

/// `1000cap_graph_analysis_results_nbatch_40` → `1000-example cap, nbatch 40`.
fn run_label(name: &str) -> String {
    let cap = name
        .split_once("cap_")
        .map(|(c, _)| c)
        .filter(|c| !c.is_empty() && c.chars().all(|d| d.is_ascii_digit()));
    let nbatch = name
        .rsplit_once("_nbatch_")
        .map(|(_, n)| n)
        .filter(|n| !n.is_empty());
    match (cap, nbatch) {
        (Some(c), Some(n)) => format!("{c}-example cap, nbatch {n}"),
        (None, Some(n)) => format!("no example cap, nbatch {n}"),
        _ => name.to_string(),
    }
}

fn paths(run: &PcaRun) -> impl Iterator<Item = &PathBuf> {
    run.files.iter().flat_map(|f| f.paths.iter())
}

/// When the run's newest file was written.
fn modified(run: &PcaRun) -> SystemTime {
    paths(run)
        .filter_map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
        .max()
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned()
}

/// The h5 file names in `pca_run.json`'s `h5_files` (manifests of older saecooc versions name
/// their files there but have no checked file list).
fn named_in_manifest(manifest: &Path) -> Vec<String> {
    std::fs::read(manifest)
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .and_then(|v| v["h5_files"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|p| p.as_str().map(|s| file_name(Path::new(s))))
        .collect()
}

fn export_run(run: PcaRun, source: &str) -> ExportRun {
    ExportRun {
        id: run_id(&run.name),
        label: run_label(&run.name),
        source: source.to_string(),
        files: run.files,
    }
}

/// The run the manifest lists, its unlisted files left out (and named in a note).
fn listed_runs(found: Vec<PcaRun>, pca: &PublishedSet, dir: &Path) -> RunChoice {
    let mut ignored = Vec::new();
    let mut runs = Vec::new();
    for mut run in found {
        for file in &mut run.files {
            let (kept, left): (Vec<PathBuf>, Vec<PathBuf>) =
                file.paths.drain(..).partition(|p| pca.lists(p));
            file.paths = kept;
            ignored.extend(left.iter().map(|p| file_name(p)));
        }
        run.files.retain(|f| !f.paths.is_empty());
        if !run.files.is_empty() {
            runs.push(export_run(run, &format!("listed in {PCA_RUN_JSON}")));
        }
    }
    let mut notes = Vec::new();
    if !ignored.is_empty() {
        notes.push(format!(
            "note: {}: left out {} h5 file(s) that {PCA_RUN_JSON} does not list (from another run; remove them or rerun `saecooc pca`): {}",
            dir.display(),
            ignored.len(),
            ignored.join(", ")
        ));
    }
    RunChoice { runs, notes }
}

/// Every run, the one an older manifest names or else the newest first.
fn all_runs(mut found: Vec<PcaRun>, dir: &Path) -> RunChoice {
    let named = named_in_manifest(&dir.join(PCA_RUN_JSON));
    let named_source = format!("named in {PCA_RUN_JSON}");
    let is_named =
        |run: &PcaRun| !named.is_empty() && paths(run).all(|p| named.contains(&file_name(p)));
    found.sort_by_key(|run| (!is_named(run), std::cmp::Reverse(modified(run))));
    let first_named = found.first().is_some_and(is_named);
    let several = found.len() > 1;
    let runs: Vec<ExportRun> = found
        .into_iter()
        .enumerate()
        .map(|(i, run)| {
            let source = match (i, first_named) {
                (0, true) => named_source.as_str(),
                (0, false) if several => "newest files",
                (0, false) => "the only run",
                _ => "older files",
            };
            export_run(run, source)
        })
        .collect();
    let mut notes = Vec::new();
    if several {
        notes.push(format!(
            "note: {} holds {} PCA runs and no saecooc manifest saying which is current: all exported, choose under \"PCA run\"; shown first: {} ({}); others: {}",
            dir.display(),
            runs.len(),
            runs[0].label,
            runs[0].source,
            runs[1..].iter().map(|r| r.label.as_str()).collect::<Vec<_>>().join("; ")
        ));
    }
    RunChoice { runs, notes }
}

/// The runs of the `pca` folder `dir` to export, given its published set.
pub(super) fn choose_runs(dir: &Path, pca: &PublishedSet) -> Result<RunChoice> {
    let found = pca_runs(dir)?;
    Ok(match pca.record {
        Some(_) => listed_runs(found, pca, dir),
        None => all_runs(found, dir),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_are_named_for_readers() {
        let name = "1000cap_graph_analysis_results_nbatch_40";
        assert_eq!(run_id(name), "1000cap_nbatch_40");
        assert_eq!(run_label(name), "1000-example cap, nbatch 40");
        assert_eq!(
            run_label("graph_analysis_results_nbatch_7"),
            "no example cap, nbatch 7"
        );
        assert_eq!(run_id("odd name/x"), "_odd-20name-2fx");
        assert_ne!(run_id("a.b_nbatch_1"), run_id("a_b_nbatch_1"));
        assert_eq!(run_label("odd"), "odd");
    }

    /// Runs of a folder without a manifest: the newest first, none silently dropped.
    #[test]
    fn without_a_manifest_every_run_is_offered_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str| std::fs::write(dir.path().join(name), b"").unwrap();
        write("1000cap_graph_analysis_results_size_4_nbatch_400.h5");
        std::thread::sleep(std::time::Duration::from_millis(20));
        write("1000cap_graph_analysis_results_size_4_nbatch_40.h5");
        let set = PublishedSet {
            dir: dir.path().to_path_buf(),
            manifest: "pca_run.json".into(),
            record: None,
        };
        let choice = choose_runs(dir.path(), &set).unwrap();
        let ids: Vec<&str> = choice.runs.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["1000cap_nbatch_40", "1000cap_nbatch_400"]);
        assert_eq!(choice.runs[0].source, "newest files");
        assert_eq!(choice.notes.len(), 1, "{:?}", choice.notes);
        // An older saecooc manifest naming the other run wins over the file times.
        std::fs::write(
            dir.path().join("pca_run.json"),
            br#"{"h5_files": ["x/1000cap_graph_analysis_results_size_4_nbatch_400.h5"]}"#,
        )
        .unwrap();
        let choice = choose_runs(dir.path(), &set).unwrap();
        assert_eq!(choice.runs[0].id, "1000cap_nbatch_400");
        assert_eq!(choice.runs[0].source, "named in pca_run.json");
    }
}
