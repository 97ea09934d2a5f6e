//! The results folder layout, byte-for-byte the original's names so its notebooks and app
//! keep working:
//! `{results}/{model}/{release_short}/{neat_sae_id}/n_batches_{N}/feature_acts_cooc_{kind}_threshold_{ts}.npz`,
//! and the `graphs` outputs beside them (see docs/formats.md, "Results folder layout").

use super::set::Ownership;
use crate::io::pyfmt::{neat_sae_id, threshold_tag};
use anyhow::{ensure, Context, Result};
use std::path::{Path, PathBuf};

/// The three matrices `cooc` writes per threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CoocKind {
    /// Pair counts C (F×F).
    Total,
    /// Jaccard similarity J (F×F).
    Jaccard,
    /// Per-latent totals diag(C) (F).
    Activations,
}

impl CoocKind {
    fn name(self) -> &'static str {
        match self {
            Self::Total => "total",
            Self::Jaccard => "jaccard",
            Self::Activations => "activations",
        }
    }
}

/// Where `subspace` writes its folders unless told: `figures` beside the results folder.
pub fn default_figures_dir(results_root: &Path) -> PathBuf {
    beside(results_root, "figures")
}

/// Where `export` looks for the output of `stats` unless told: `stats` beside the results
/// folder (where `stats` writes it by default, run from the folder that holds `results`).
pub fn default_stats_dir(results_root: &Path) -> PathBuf {
    beside(results_root, "stats")
}

/// The folder `name` beside the folder `dir`.
fn beside(dir: &Path, name: &str) -> PathBuf {
    dir.parent().unwrap_or(Path::new("")).join(name)
}

/// `{results}/{model}/{release_short}/{neat_sae_id}/n_batches_{N}`, each name one folder (see
/// [`path_component`]). The names must have passed `config::check_name` (config loading does
/// it), so that none can leave `results`.
pub fn sae_results_dir(
    results: &Path,
    model: &str,
    release_short: &str,
    sae_id: &str,
    n_batches: usize,
) -> PathBuf {
    sae_names_dir(results, model, release_short, sae_id).join(format!("n_batches_{n_batches}"))
}

/// `{root}/{model}/{release_short}/{neat_sae_id}`: an SAE's folder under a results or figures
/// root, for checked names as in [`sae_results_dir`].
pub fn sae_names_dir(root: &Path, model: &str, release_short: &str, sae_id: &str) -> PathBuf {
    root.join(path_component(model))
        .join(path_component(release_short))
        .join(neat_sae_id(sae_id))
}

/// The folder name of a model or release name: the name itself, except that a hub-style `/`
/// (`google/gemma-2-2b`) becomes `%2F`, and a `%` that would be read back as the start of
/// `%2F` or `%25` becomes `%25`. Every name without `/`, `%2F` and `%25` keeps its folder, and
/// [`name_from_component`] reads every folder name back to its one name.
pub fn path_component(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for (i, c) in name.char_indices() {
        match c {
            '/' => out.push_str("%2F"),
            '%' if starts_escape(&name[i..]) => out.push_str("%25"),
            c => out.push(c),
        }
    }
    out
}

/// The name a folder written by [`path_component`] stands for.
pub fn name_from_component(component: &str) -> String {
    let mut out = String::with_capacity(component.len());
    let mut rest = component;
    while let Some(c) = rest.chars().next() {
        if rest.starts_with("%2F") {
            out.push('/');
            rest = &rest[3..];
        } else if rest.starts_with("%25") {
            out.push('%');
            rest = &rest[3..];
        } else {
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

/// Whether `text` (starting with `%`) begins with one of the escapes of [`path_component`].
fn starts_escape(text: &str) -> bool {
    text.starts_with("%2F") || text.starts_with("%25")
}

/// Checks, creating nothing, that `dir` could be created (or, if it exists, written): its
/// nearest existing folder must be a writable folder. A stage calls it before loading its
/// inputs, so that an unwritable results folder is refused first, and creates the folder only
/// once the inputs load, so that inputs that cannot be loaded leave nothing behind.
pub fn check_creatable(dir: &Path) -> Result<()> {
    let existing = dir
        .ancestors()
        .find(|a| a.as_os_str().is_empty() || a.symlink_metadata().is_ok())
        .filter(|a| !a.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    ensure!(
        existing.is_dir(),
        "cannot create results folder {}: {} is not a folder",
        dir.display(),
        existing.display()
    );
    ensure!(
        writable(existing),
        "cannot create results folder {}: {} is not writable",
        dir.display(),
        existing.display()
    );
    Ok(())
}

/// Whether this process may create entries in the folder `dir` (`access(W_OK | X_OK)`).
fn writable(dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(path) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: `path` is a NUL-terminated string that outlives the call; access only reads it.
    unsafe { libc::access(path.as_ptr(), libc::W_OK | libc::X_OK) == 0 }
}

/// `feature_acts_cooc_{kind}_threshold_{ts}.npz` inside a results folder.
pub fn cooc_file(dir: &Path, kind: CoocKind, threshold: f64) -> PathBuf {
    dir.join(format!(
        "feature_acts_cooc_{}_threshold_{}.npz",
        kind.name(),
        threshold_tag(threshold)
    ))
}

/// The threshold in a `feature_acts_cooc_{kind}_threshold_{ts}.npz` name, parsed back as the
/// original's readers do (`float(ts.replace("_", "."))`).
pub fn cooc_file_threshold(file_name: &str, kind: CoocKind) -> Option<f64> {
    let prefix = format!("feature_acts_cooc_{}_threshold_", kind.name());
    let ts = file_name.strip_prefix(&prefix)?.strip_suffix(".npz")?;
    ts.replace('_', ".").parse().ok()
}

/// Every `{kind}` file in `dir` (or, as the original falls back to, in a `raw_cooc_*`
/// subfolder of it), with its threshold, in ascending threshold order.
pub fn find_cooc_files(dir: &Path, kind: CoocKind) -> Result<Vec<(f64, PathBuf)>> {
    let mut found = cooc_files_in(dir, kind)?;
    if found.is_empty() {
        for sub in sorted_entries(dir)? {
            let raw = sub
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("raw_cooc_"));
            if raw && sub.is_dir() {
                found.extend(cooc_files_in(&sub, kind)?);
            }
        }
    }
    found.sort_by(|a, b| a.0.total_cmp(&b.0));
    Ok(found)
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut paths = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<Vec<_>>>()
        .with_context(|| format!("cannot list {}", dir.display()))?;
    paths.sort();
    Ok(paths)
}

fn cooc_files_in(dir: &Path, kind: CoocKind) -> Result<Vec<(f64, PathBuf)>> {
    Ok(sorted_entries(dir)?
        .into_iter()
        .filter_map(|p| {
            let t = cooc_file_threshold(p.file_name()?.to_str()?, kind)?;
            Some((t, p))
        })
        .collect())
}

/// The files `graphs` writes for one activation threshold, under one SAE's results folder.
#[derive(Debug, Clone)]
pub struct GraphFiles {
    pub node_table: PathBuf,
    pub thresholded: PathBuf,
    pub sparse_thresholded: PathBuf,
    pub histogram: PathBuf,
    /// `graphs_{ts}/`: one `subgraph_{sid}.html` per plotted subgraph.
    pub html_dir: PathBuf,
    /// `subgraph_objects/activation_{ts}/`: one `subgraph_{sid}.graphml` per subgraph.
    pub graph_dir: PathBuf,
}

impl GraphFiles {
    /// The original's names (`ts` as in the cooc files).
    pub fn new(dir: &Path, threshold: f64) -> Self {
        Self::tagged(dir, &threshold_tag(threshold))
    }

    /// The names for the threshold tag `ts` (as written by [`threshold_tag`]).
    pub fn tagged(dir: &Path, ts: &str) -> Self {
        let matrices = dir.join("thresholded_matrices");
        Self {
            node_table: dir.join(DATAFRAMES).join(node_table_name(ts)),
            thresholded: matrices.join(format!("thresholded_matrix_{ts}.npz")),
            sparse_thresholded: matrices.join(format!("sparse_thresholded_matrix_{ts}.npz")),
            histogram: dir
                .join("histograms")
                .join(format!("subgraph_density_{ts}.png")),
            html_dir: dir.join(format!("graphs_{ts}")),
            graph_dir: dir
                .join("subgraph_objects")
                .join(format!("activation_{ts}")),
        }
    }

    /// `graphs_{ts}/subgraph_{sid}.html`.
    pub fn html(&self, subgraph: usize) -> PathBuf {
        self.html_dir.join(format!("subgraph_{subgraph}.html"))
    }

    /// `subgraph_objects/activation_{ts}/subgraph_{sid}.graphml`.
    pub fn graphml(&self, subgraph: usize) -> PathBuf {
        self.graph_dir.join(format!("subgraph_{subgraph}.graphml"))
    }
}

/// The folder of the node tables in an SAE's results folder.
pub const DATAFRAMES: &str = "dataframes";

const NODE_TABLE_PREFIX: &str = "node_info_df_";

/// `node_info_df_{ts}.csv`: the node table of the threshold tag `ts`.
pub fn node_table_name(ts: &str) -> String {
    format!("{NODE_TABLE_PREFIX}{ts}.csv")
}

/// Whether `name` is a node table's file name (`node_info_df_…`).
pub fn is_node_table_name(name: &str) -> bool {
    name.starts_with(NODE_TABLE_PREFIX)
}

/// The node tables (`dataframes/node_info_df_{ts}.csv`) of an SAE results folder with their
/// thresholds (parsed back as the cooc files' are), in threshold order.
pub fn find_node_tables(dir: &Path) -> Result<Vec<(f64, PathBuf)>> {
    let frames = dir.join(DATAFRAMES);
    if !frames.is_dir() {
        return Ok(Vec::new());
    }
    let mut found: Vec<(f64, PathBuf)> = sorted_entries(&frames)?
        .into_iter()
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?;
            let ts = node_table_tag(name.strip_suffix(".csv")?)?;
            Some((ts.replace('_', ".").parse().ok()?, p))
        })
        .collect();
    found.sort_by(|a, b| a.0.total_cmp(&b.0));
    Ok(found)
}

/// The threshold tag of a node table's file name or stem (`None` for other names).
pub fn node_table_tag(name: &str) -> Option<&str> {
    let stem = name.strip_suffix(".csv").unwrap_or(name);
    stem.strip_prefix(NODE_TABLE_PREFIX)
}

/// The manifest of the `cooc` set (written by `cooc` and `merge`) in an SAE's results folder.
pub const RUN_JSON: &str = "run.json";

/// The checkpoint of an unsharded `cooc` run in an SAE's results folder (removed once the run
/// completes).
pub const CHECKPOINT_NPZ: &str = "checkpoint.npz";

/// The folder of a sharded run's partial counts, checkpoints and locks in an SAE's results
/// folder.
pub const SHARDS_DIR: &str = "shards";

/// `{dir}/shards/shard_{i}_of_{n}.npz`: the finished partial counts of shard `i` of `n`.
pub fn shard_file(dir: &Path, index: usize, count: usize) -> PathBuf {
    dir.join(SHARDS_DIR)
        .join(format!("shard_{index}_of_{count}.npz"))
}

/// `{dir}/shards/checkpoint_{i}_of_{n}.npz`: the checkpoint of shard `i` of `n`.
pub fn shard_checkpoint_file(dir: &Path, index: usize, count: usize) -> PathBuf {
    dir.join(SHARDS_DIR)
        .join(format!("checkpoint_{index}_of_{count}.npz"))
}

/// `.shard_{i}_of_{n}.lock`: the lock file of shard `i` of `n`, inside [`SHARDS_DIR`].
pub fn shard_lock_name(index: usize, count: usize) -> String {
    format!(".shard_{index}_of_{count}.lock")
}

/// The manifest of the `graphs` set of an SAE's results folder.
pub const GRAPHS_JSON: &str = "graphs_run.json";

/// The manifest of the `pca` set, inside its folder ([`pca_dir_name`]).
pub const PCA_RUN_JSON: &str = "pca_run.json";

/// What `graphs` owns in an SAE results folder: its folders, the per-threshold `graphs_{ts}/`
/// pages and `edge_thresholds.csv` (so outputs of other thresholds or sizes never linger).
pub fn graphs_ownership() -> Ownership {
    Ownership {
        dirs: [
            DATAFRAMES,
            "thresholded_matrices",
            "histograms",
            "subgraph_objects",
        ]
        .map(String::from)
        .to_vec(),
        prefixes: vec!["graphs_".into(), "edge_thresholds.csv".into()],
    }
}

/// `{neat_sae_id}_pca_for_streamlit`: the folder of an SAE's PCA h5 files (the original's
/// name), and the manifest of the `pca` set inside it.
pub fn pca_dir_name(neat_sae: &str) -> String {
    format!("{neat_sae}_pca_for_streamlit")
}

/// The manifest of the `pca` set, relative to the SAE results folder.
pub fn pca_manifest(neat_sae: &str) -> String {
    format!("{}/{PCA_RUN_JSON}", pca_dir_name(neat_sae))
}

/// What `pca` owns: its whole folder (h5 files of sizes no longer asked for are stale).
pub fn pca_ownership(neat_sae: &str) -> Ownership {
    Ownership {
        dirs: vec![pca_dir_name(neat_sae)],
        prefixes: Vec::new(),
    }
}

/// `edge_thresholds.csv` in an SAE's results folder.
pub fn edge_thresholds_file(dir: &Path) -> PathBuf {
    dir.join("edge_thresholds.csv")
}

/// `pca_{ts}_subgraph_{sid}_n_batches_{N}_graphs_{id}`: a subspace's folder name, keyed by
/// the results folder (`n_batches_{N}`) and the graphs set (`id`, the start of its set id)
/// whose subgraph it analysed, so that another results folder's subgraph of the same id never
/// replaces it.
pub fn subspace_folder_name(threshold: f64, sid: i64, n_batches: usize, graphs_id: &str) -> String {
    format!(
        "{}_n_batches_{n_batches}_graphs_{graphs_id}",
        subspace_folder_prefix(threshold, sid)
    )
}

/// `pca_{ts}_subgraph_{sid}`: how every subspace folder name starts (the whole name in
/// folders of older versions).
pub fn subspace_folder_prefix(threshold: f64, sid: i64) -> String {
    format!("pca_{}_subgraph_{sid}", threshold_tag(threshold))
}

/// The summary file of a subspace folder, and the manifest of its set.
pub const SUBSPACE_JSON: &str = "subspace.json";

/// The manifest of the subspace set in `folder` ([`subspace_folder_name`]), relative to the
/// SAE's figures folder.
pub fn subspace_manifest(folder: &str) -> String {
    format!("{folder}/{SUBSPACE_JSON}")
}

/// `graph_analysis_results_subgraph_{sid}.h5`: a subspace folder's h5 file (one group in
/// `pca`'s layout).
pub fn subspace_h5_name(subgraph: i64) -> String {
    format!("graph_analysis_results_subgraph_{subgraph}.h5")
}

/// The custom prompts' CSV of a subspace folder (written when `--prompts` was given).
pub fn subspace_prompts_csv_name(subgraph: i64) -> String {
    format!("prompts_subgraph_{subgraph}.csv")
}

/// `pca_df_subgraph_{sid}.csv`: a subspace folder's examples with their PC scores.
pub fn subspace_examples_csv_name(subgraph: i64) -> String {
    format!("pca_df_subgraph_{subgraph}.csv")
}

/// `pca_decoder_df_subgraph_{sid}.csv`: a subspace folder's decoder rows in PC space.
pub fn subspace_decoder_csv_name(subgraph: i64) -> String {
    format!("pca_decoder_df_subgraph_{subgraph}.csv")
}

/// The copy of the subgraph's `graphs` picture in a subspace folder.
pub const SUBSPACE_PICTURE: &str = "overall_subgraph.html";

/// The manifest `stats` writes beside its outputs: how, when and by which build they were made.
pub const STATS_RUN_JSON: &str = "stats_run.json";

/// The table of every `stats` row, as CSV and as JSON.
pub const STATS_SUMMARY_CSV: &str = "summary.csv";
pub const STATS_SUMMARY_JSON: &str = "summary.json";

/// The size-effects figure of `stats`.
pub const STATS_SIZE_EFFECTS_PNG: &str = "size_effects.png";

/// `cooccurrence_{model}_{release}_{sae}_{ts}.png`: the observed-vs-expected figure `stats`
/// draws for one SAE (`sae`: its folder name) at one threshold.
pub fn stats_cooccurrence_png(model: &str, release: &str, sae: &str, threshold: f64) -> String {
    format!(
        "{}.png",
        stats_sae_stem("cooccurrence", model, release, sae, threshold)
    )
}

/// `{kind}_{model}_{release}_{sae}_{ts}`: the file stem of a `stats` figure of one SAE (`sae`:
/// its folder name) at one threshold.
pub fn stats_sae_stem(kind: &str, model: &str, release: &str, sae: &str, threshold: f64) -> String {
    format!(
        "{kind}_{}_{}_{sae}_{}",
        path_component(model),
        path_component(release),
        threshold_tag(threshold)
    )
}

/// The stems of the `stats` figures across SAEs, each written as `{stem}.png`, `{stem}.html`
/// and `{stem}.csv` (the numbers plotted): subgraph statistics against SAE width and against
/// L0, and active latents and subgraphs per token as fractions of all.
pub const STATS_SUBGRAPH_SIZE_VS_WIDTH: &str = "subgraph_size_vs_width";
pub const STATS_SUBGRAPH_SIZE_VS_L0: &str = "subgraph_size_vs_l0";
pub const STATS_FEATURE_GRAPH_L0: &str = "feature_graph_l0_normalised";
/// The stem of the box plots of observed and expected co-occurrence across SAEs.
pub const STATS_DISTRIBUTION_BOXPLOTS: &str = "combined_boxplot_observed_expected";

/// The files `train-sae` writes into its out folder: the SAE in SAELens' layout
/// ([`SAE_CFG_JSON`], [`SAE_WEIGHTS`]) and the training record ([`TRAINING_JSON`]).
pub const SAE_CFG_JSON: &str = "cfg.json";
pub const SAE_WEIGHTS: &str = "sae_weights.safetensors";
pub const TRAINING_JSON: &str = "training.json";

/// The explorer site `export` writes into its out folder: the page, and beside it the data
/// folder of JavaScript files it loads. Paths in the data folder are relative to it (as the
/// site writer takes them); [`site_files::page_path`] is how the page names one.
pub mod site_files {
    /// The page of the site (the whole app), in the out folder.
    pub const INDEX_HTML: &str = "index.html";
    /// The data folder, beside the page.
    pub const DATA: &str = "data";
    /// The site's index in the data folder: every SAE and subspace.
    pub const INDEX_JS: &str = "index.js";
    /// The manifest of the site's files, in the out folder.
    pub const MANIFEST: &str = ".saecooc-site.json";
    /// How the new data folder's name starts while an export writes it (`{prefix}{pid}`).
    pub const NEW_DATA_PREFIX: &str = ".data-new-";
    /// How the previous data folder's name starts while an export swaps it out.
    pub const OLD_DATA_PREFIX: &str = ".data-old-";

    /// `{key}/index.js`: an SAE's index (its PCA runs and subgraph table).
    pub fn sae_index(key: &str) -> String {
        format!("{key}/{INDEX_JS}")
    }

    /// `{key}/{run}`: the folder of one PCA run of an SAE, and the key prefix of its subgraphs.
    pub fn pca_run_dir(key: &str, run: &str) -> String {
        format!("{key}/{run}")
    }

    /// `{run_dir}/{sid}`: a subgraph's key in a PCA run's folder ([`pca_run_dir`]).
    pub fn subgraph_key(run_dir: &str, subgraph: i64) -> String {
        format!("{run_dir}/{subgraph}")
    }

    /// `{run_dir}/{sid}.js`: a subgraph's file in a PCA run's folder.
    pub fn subgraph_file(run_dir: &str, subgraph: i64) -> String {
        format!("{}.js", subgraph_key(run_dir, subgraph))
    }

    /// `subspaces/{key}`: the folder of a subspace's figures.
    pub fn subspace_dir(key: &str) -> String {
        format!("subspaces/{key}")
    }

    /// `subspaces/{key}.js`: a subspace's file.
    pub fn subspace_file(key: &str) -> String {
        format!("{}.js", subspace_dir(key))
    }

    /// `data/{rel}`: how the page names the file or folder `rel` of the data folder.
    pub fn page_path(rel: &str) -> String {
        format!("{DATA}/{rel}")
    }
}

/// One SAE's results folder: `{root}/{model}/{release}/{neat}/n_batches_{N}`.
pub struct SaeFolder {
    /// The model's name, read back from its folder name ([`name_from_component`]).
    pub model: String,
    /// The release's name, read back as the model's.
    pub release: String,
    /// The folder name of the SAE (its neat id).
    pub sae: String,
    pub n_batches: String,
    pub dir: PathBuf,
}

impl SaeFolder {
    /// The SAE's key in the explorer site (see [`site_key`]).
    pub fn key(&self) -> String {
        site_key(&[&self.model, &self.release, &self.sae, &self.n_batches])
    }
}

/// The explorer site's key of `parts` (file and folder names under `data/`, names in its
/// JavaScript): the parts joined by `__`, in the alphabet `A–Z a–z 0–9 _ -`, and different for
/// different parts. A part of that alphabet that neither starts nor ends with `_` nor holds
/// `__` is kept as it is (so `gpt2-small__res-jb__blocks_8_hook_resid_pre__1000`); any other
/// part is written as `_` followed by its letters and digits, every other character as `-` and
/// the two hex digits of each of its UTF-8 bytes (`model.v1` → `_model-2ev1`). Such a part holds
/// no other `_`, so the key splits back into its parts in one way only.
pub fn site_key(parts: &[&str]) -> String {
    parts
        .iter()
        .map(|part| key_part(part))
        .collect::<Vec<_>>()
        .join("__")
}

fn key_part(part: &str) -> String {
    let plain = !part.is_empty()
        && part
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && !part.starts_with('_')
        && !part.ends_with('_')
        && !part.contains("__");
    if plain {
        return part.to_string();
    }
    let mut out = String::from("_");
    for c in part.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else {
            let mut bytes = [0; 4];
            for b in c.encode_utf8(&mut bytes).bytes() {
                out.push_str(&format!("-{b:02x}"));
            }
        }
    }
    out
}

/// Finds SAE folders: those with a `dataframes/` folder or cooc files, four levels under `root`.
pub fn find_sae_folders(root: &Path) -> Result<Vec<SaeFolder>> {
    ensure!(
        root.is_dir(),
        "results folder {} does not exist",
        root.display()
    );
    let mut out = Vec::new();
    let name = |p: &Path| {
        p.file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned()
    };
    for model in sorted_subdirs(root) {
        for release in sorted_subdirs(&model) {
            for sae in sorted_subdirs(&release) {
                for nb in sorted_subdirs(&sae) {
                    if name(&nb).starts_with("n_batches_")
                        && (nb.join(DATAFRAMES).is_dir() || nb.join(RUN_JSON).is_file())
                    {
                        out.push(SaeFolder {
                            model: name_from_component(&name(&model)),
                            release: name_from_component(&name(&release)),
                            sae: name(&sae),
                            n_batches: name(&nb).trim_start_matches("n_batches_").to_string(),
                            dir: nb,
                        });
                    }
                }
            }
        }
    }
    Ok(out)
}

/// The folders directly inside `dir`, sorted by path (none if it cannot be read).
pub fn sorted_subdirs(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|r| {
            r.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_parse_back_from_names() {
        let t = |n| cooc_file_threshold(n, CoocKind::Jaccard);
        assert_eq!(t("feature_acts_cooc_jaccard_threshold_1_5.npz"), Some(1.5));
        assert_eq!(
            t("feature_acts_cooc_jaccard_threshold_1e-05.npz"),
            Some(1e-5)
        );
        assert_eq!(t("feature_acts_cooc_jaccard_threshold_0_0.npz"), Some(0.0));
        assert_eq!(t("feature_acts_cooc_total_threshold_0_0.npz"), None);
        assert_eq!(t("feature_acts_cooc_jaccard_threshold_x.npz"), None);
        let g = GraphFiles::new(Path::new("r"), 1.5);
        assert_eq!(g.node_table, Path::new("r/dataframes/node_info_df_1_5.csv"));
        assert_eq!(
            g.graphml(3),
            Path::new("r/subgraph_objects/activation_1_5/subgraph_3.graphml")
        );
    }

    #[test]
    fn names_match_the_original() {
        let d = sae_results_dir(
            Path::new("results"),
            "gpt2-small",
            "res-jb",
            "blocks.8.hook_resid_pre",
            1000,
        );
        assert_eq!(
            d,
            PathBuf::from("results/gpt2-small/res-jb/blocks_8_hook_resid_pre/n_batches_1000")
        );
        assert_eq!(
            cooc_file(&d, CoocKind::Jaccard, 1.5).file_name().unwrap(),
            "feature_acts_cooc_jaccard_threshold_1_5.npz"
        );
        assert_eq!(
            cooc_file(&d, CoocKind::Activations, 0.0)
                .file_name()
                .unwrap(),
            "feature_acts_cooc_activations_threshold_0_0.npz"
        );
    }

    #[test]
    fn hub_style_names_are_one_folder_and_read_back() {
        for plain in [
            "gpt2-small",
            "res-jb",
            "gemma-scope-2b-pt-res",
            "100%",
            "a%2",
            "x.y",
        ] {
            assert_eq!(path_component(plain), plain);
        }
        let d = sae_results_dir(
            Path::new("r"),
            "google/gemma-2-2b",
            "jbloom/GPT2-Small-SAEs-Reformatted",
            "layer_12/width_16k/canonical",
            3,
        );
        assert_eq!(
            d,
            Path::new(
                "r/google%2Fgemma-2-2b/jbloom%2FGPT2-Small-SAEs-Reformatted/layer_12_width_16k_canonical/n_batches_3"
            )
        );
        // Injective: names that differ keep different folders, and each reads back.
        let names = [
            "a/b", "a%2Fb", "a%252Fb", "a%/b", "a%2/b", "a%25", "a%", "%", "%%2F", "a//b", "/",
        ];
        for (i, a) in names.iter().enumerate() {
            let folder = path_component(a);
            assert!(!folder.contains('/'), "{a} → {folder}");
            assert_eq!(name_from_component(&folder), *a, "{a} → {folder}");
            for b in &names[..i] {
                assert_ne!(folder, path_component(b), "{a} and {b}");
            }
        }
    }

    #[test]
    fn site_keys_are_unique_and_keep_plain_names() {
        assert_eq!(
            site_key(&["gpt2-small", "res-jb", "blocks_8_hook_resid_pre", "1000"]),
            "gpt2-small__res-jb__blocks_8_hook_resid_pre__1000"
        );
        let alphabet = |k: &str| {
            k.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-".contains(c))
        };
        let parts = [
            "model.v1",
            "model_v1",
            "model-v1",
            "model_2ev1",
            "_model-2ev1",
            "_",
            "",
            "a__b",
            "a_",
            "_a",
            "a/b",
            "a_b",
            "é",
            "-2d",
            "x-2e",
        ];
        let mut keys = std::collections::BTreeMap::new();
        for a in parts {
            for b in parts {
                let key = site_key(&[a, b]);
                assert!(alphabet(&key), "{key}");
                if let Some(other) = keys.insert(key.clone(), (a, b)) {
                    panic!("{other:?} and {:?} share the key {key}", (a, b));
                }
            }
        }
        assert_eq!(site_key(&["model.v1"]), "_model-2ev1");
    }

    #[test]
    fn creatable_folders_are_checked_without_creating_anything() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("a/b/c");
        check_creatable(&deep).unwrap();
        assert!(!dir.path().join("a").exists());
        let file = dir.path().join("file");
        std::fs::write(&file, "").unwrap();
        let err = check_creatable(&file.join("x/y")).unwrap_err().to_string();
        assert!(
            err.contains("cannot create results folder") && err.contains("is not a folder"),
            "{err}"
        );
    }
}
