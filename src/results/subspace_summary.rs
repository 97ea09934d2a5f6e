//! Folders that `subspace` wrote (`{figures}/{model}/{release}/{neat_sae_id}/pca_{ts}_subgraph_{sid}[_n_batches_{N}_graphs_{id}]/`):
//! `subspace.json` (one type, written by `subspace` and read back by other stages), the file
//! names, and the custom prompts' CSV (see docs/formats.md, "One subspace in depth").

use super::layout::{sorted_subdirs, subspace_h5_name, subspace_prompts_csv_name, SUBSPACE_JSON};
use super::set::SetRecord;
use crate::io::csv_table::Table;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Explained variance of a PCA.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Variance {
    pub explained_variance: Vec<f64>,
    pub explained_variance_ratio: Vec<f64>,
}

/// An example shown in depth (a representative point or one of `--points`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShownPoint {
    pub point_id: usize,
    pub token: String,
    pub context: String,
    pub pcs: Vec<f32>,
    /// Its folder of figures, inside the subspace folder.
    pub folder: String,
}

/// What the custom prompts gave.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PromptsInfo {
    pub file: PathBuf,
    pub prompts: usize,
    /// Tokens of the prompts where the subgraph fired (rows of the prompts CSV).
    pub examples: usize,
    /// Line numbers of prompts where no latent of the subgraph fired.
    pub silent_lines: Vec<usize>,
}

/// The doubly clustered heat map's orders (Ward, scipy's leaf order).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Heatmap {
    /// Examples clustered: the first `examples` ones.
    pub examples: usize,
    /// Positions in the subgraph's latent list, top to bottom.
    pub latent_order: Vec<usize>,
    /// Example ids, left to right.
    pub example_order: Vec<usize>,
}

/// `subspace.json`: what a `subspace` run produced.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SubspaceSummary {
    pub model: String,
    pub release: String,
    pub sae_id: String,
    pub activation_threshold: f64,
    pub subgraph_id: i64,
    /// The subgraph's latents, in node-table order (the order of every latent column).
    pub latents: Vec<u32>,
    pub examples: usize,
    pub batches_read: u64,
    /// True when the first pass found too few examples and the batches were doubled.
    pub retried: bool,
    pub pca: Variance,
    /// Of the decoder rows `W_dec[subgraph]`; null with fewer than 3 latents.
    pub decoder_pca: Option<Variance>,
    /// 3 farthest from the centre of the min–max-scaled PCs, then 2 nearest the median
    /// distance.
    pub representative_points: Vec<ShownPoint>,
    /// The `--points`.
    pub points: Vec<ShownPoint>,
    pub heatmap: Heatmap,
    pub prompts: Option<PromptsInfo>,
    /// The node table the subgraph came from.
    pub node_table: PathBuf,
    /// The subgraph picture `graphs` drew, copied here (null when it drew none).
    pub subgraph_picture: Option<String>,
    /// The folder written.
    pub folder: PathBuf,
    pub seconds: f64,
    /// How, when and by which build the run was made, with its settings (absent in older
    /// summaries).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_info: Option<crate::results::manifest::RunInfo>,
    /// Every file of the folder with size and SHA-256, and the graphs set it came from.
    #[serde(flatten)]
    pub set: SetRecord,
}

/// One subspace folder and its summary.
#[derive(Debug, Clone)]
pub struct SubspaceFolder {
    pub dir: PathBuf,
    pub summary: SubspaceSummary,
}

impl SubspaceFolder {
    /// `graph_analysis_results_subgraph_{sid}.h5` (one group in `pca`'s layout).
    pub fn h5(&self) -> PathBuf {
        self.dir.join(subspace_h5_name(self.summary.subgraph_id))
    }

    /// `prompts_subgraph_{sid}.csv`, present when `--prompts` was given.
    pub fn prompts_csv(&self) -> PathBuf {
        self.dir
            .join(subspace_prompts_csv_name(self.summary.subgraph_id))
    }
}

/// Reads `{dir}/subspace.json`.
pub fn read_summary(dir: &Path) -> Result<SubspaceSummary> {
    let path = dir.join(SUBSPACE_JSON);
    let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is not a subspace summary", path.display()))
}

/// Every folder `{root}/{model}/{release}/{neat}/pca_*_subgraph_*` holding a `subspace.json`,
/// in name order; those whose summary cannot be read come back as notes naming the file and the error.
/// A missing `root` has none.
pub fn find_subspaces(root: &Path) -> (Vec<SubspaceFolder>, Vec<String>) {
    let (mut found, mut notes) = (Vec::new(), Vec::new());
    let candidates = sorted_subdirs(root)
        .into_iter()
        .flat_map(|m| sorted_subdirs(&m))
        .flat_map(|r| sorted_subdirs(&r))
        .flat_map(|s| sorted_subdirs(&s))
        .filter(|d| {
            let name = d.file_name().unwrap_or_default().to_string_lossy();
            name.starts_with("pca_") && name.contains("_subgraph_")
        })
        .filter(|d| d.join(SUBSPACE_JSON).is_file());
    for dir in candidates {
        match read_summary(&dir) {
            Ok(summary) => found.push(SubspaceFolder { dir, summary }),
            Err(e) => notes.push(format!("{e:#}")),
        }
    }
    (found, notes)
}

/// The custom prompts' examples of a subspace folder.
#[derive(Debug, Clone, Default)]
pub struct PromptRows {
    /// The prompt's line in the prompts file.
    pub line: Vec<i64>,
    pub tokens: Vec<String>,
    pub contexts: Vec<String>,
    /// PC1..PC3 per row.
    pub pcs: Vec<[f32; 3]>,
    /// One activation per latent (the summary's `latents` order) per row.
    pub acts: Vec<Vec<f32>>,
}

/// Reads `prompts_subgraph_{sid}.csv` (columns `line, tokens, context, batch, pos, PC1..PC3,
/// latent_{id}…`).
pub fn read_prompt_rows(path: &Path, latents: &[u32]) -> Result<PromptRows> {
    let table = Table::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let strings = |name: &str| -> Result<Vec<String>> {
        let cells = table
            .column(name)
            .with_context(|| format!("{} has no column {name}", path.display()))?;
        Ok(cells
            .iter()
            .map(|c| c.clone().unwrap_or_default())
            .collect())
    };
    let numbers = |name: &str| -> Result<Vec<f64>> {
        strings(name)?
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v.trim().parse::<f64>().with_context(|| {
                    format!("{}: {name} of row {} is {v:?}", path.display(), i + 2)
                })
            })
            .collect()
    };
    let (pc1, pc2, pc3) = (numbers("PC1")?, numbers("PC2")?, numbers("PC3")?);
    let columns: Vec<Vec<f64>> = latents
        .iter()
        .map(|id| numbers(&format!("latent_{id}")))
        .collect::<Result<_>>()?;
    let n = pc1.len();
    Ok(PromptRows {
        line: numbers("line")?.iter().map(|&v| v as i64).collect(),
        tokens: strings("tokens")?,
        contexts: strings("context")?,
        pcs: (0..n)
            .map(|i| [pc1[i] as f32, pc2[i] as f32, pc3[i] as f32])
            .collect(),
        acts: (0..n)
            .map(|i| columns.iter().map(|c| c[i] as f32).collect())
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompt_rows_keep_quoted_fields_and_latent_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("prompts_subgraph_3.csv");
        std::fs::write(
            &path,
            "line,tokens,context,batch,pos,PC1,PC2,PC3,latent_7,latent_2\n\
             1, the,\"a, b|\n the| \"\"c\"\"\",0,4,0.5,-1,2e-3,0,1.25\n\
             3,x,|x|,0,1,1,2,3,4.5,0\n",
        )
        .unwrap();
        let rows = read_prompt_rows(&path, &[2, 7]).unwrap();
        assert_eq!(rows.line, [1, 3]);
        assert_eq!(rows.tokens, [" the", "x"]);
        assert_eq!(rows.contexts[0], "a, b|\n the| \"c\"");
        assert_eq!(rows.pcs[0], [0.5, -1.0, 0.002]);
        // Columns in the order asked for, not the file's.
        assert_eq!(rows.acts, [vec![1.25, 0.0], vec![0.0, 4.5]]);
        assert!(read_prompt_rows(&path, &[5]).is_err());
    }

    #[test]
    fn subspace_folders_are_found_three_levels_down_and_bad_summaries_noted() {
        let dir = tempfile::tempdir().unwrap();
        let sae = dir.path().join("m/r/s");
        let good = sae.join("pca_1_5_subgraph_4");
        std::fs::create_dir_all(&good).unwrap();
        std::fs::create_dir_all(sae.join("pca_1_5_subgraph_9")).unwrap();
        std::fs::create_dir_all(sae.join("other")).unwrap();
        std::fs::write(sae.join("other").join(SUBSPACE_JSON), "{}").unwrap();
        std::fs::write(sae.join("pca_1_5_subgraph_9").join(SUBSPACE_JSON), "{").unwrap();
        let summary = serde_json::json!({
            "model": "m", "release": "r", "sae_id": "s", "activation_threshold": 1.5,
            "subgraph_id": 4, "latents": [1, 2, 3], "examples": 10, "batches_read": 40,
            "retried": false,
            "pca": {"explained_variance": [3.0, 2.0, 1.0], "explained_variance_ratio": [0.5, 0.3, 0.2]},
            "decoder_pca": null, "representative_points": [], "points": [],
            "heatmap": {"examples": 10, "latent_order": [0, 2, 1], "example_order": []},
            "prompts": null, "node_table": "t.csv", "subgraph_picture": null,
            "folder": "pca_1_5_subgraph_4", "seconds": 1.5,
        });
        std::fs::write(good.join(SUBSPACE_JSON), summary.to_string()).unwrap();
        let (found, notes) = find_subspaces(dir.path());
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].summary.subgraph_id, 4);
        assert_eq!(
            found[0].h5(),
            good.join("graph_analysis_results_subgraph_4.h5")
        );
        assert_eq!(notes.len(), 1);
        assert!(notes[0].contains("pca_1_5_subgraph_9"), "{notes:?}");
        assert!(find_subspaces(&dir.path().join("absent")).0.is_empty());
    }
}
