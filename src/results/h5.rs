//! The HDF5 files of the original's explorer app (see docs/formats.md, "PCA h5 files"): `pca`
//! writes them ([`write_split`]), `export` reads them back ([`pca_runs`], [`read_pca_file`]),
//! ours or the original's. One group `subgraph_{sid}` per subgraph with the datasets
//! `[processing.save_options]` asks for, in h5py's dtypes for what the original wrote: numpy `S`
//! fixed-length byte strings (UTF-8 bytes), float32 matrices, int64 integers, `example_context`
//! stored one character per element, `top_3_tokens` as tuple reprs.
//!
//! Writer and reader share the names and dtypes below, so the two cannot drift apart.

use crate::config::SaveOptions;
use crate::io::pyfmt::str_repr;
use anyhow::{bail, ensure, Context, Result};
use hdf5::types::TypeDescriptor;
use hdf5::{Dataset, File, Group};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Prefix of the per-subgraph groups, `subgraph_{sid}`.
const SUBGRAPH_PREFIX: &str = "subgraph_";
/// Group of the PCA table (`pca_df`) and its columns.
const PCA_DF: &str = "pca_df";
const PC_COLUMNS: [&str; 3] = ["PC1", "PC2", "PC3"];
const PCA_TOKENS: &str = "tokens";
const PCA_CONTEXT: &str = "context";
const PCA_POINT_ID: &str = "point_id";
/// Group of the token table (`all_token_dfs`) and its columns.
const TOKEN_DFS: &str = "all_token_dfs";
const TOKEN_STR_TOKENS: &str = "str_tokens";
const TOKEN_UNIQUE: &str = "unique_token";
const TOKEN_CONTEXT: &str = "context";
const TOKEN_BATCH: &str = "batch";
const TOKEN_POS: &str = "pos";
const TOKEN_LABEL: &str = "label";
/// The subgraph group's own datasets.
const FIRED_TOKENS: &str = "all_fired_tokens";
const TOP_3_TOKENS: &str = "top_3_tokens";
const EXAMPLE_CONTEXT: &str = "example_context";
const RECONSTRUCTIONS: &str = "all_reconstructions";
const GRAPH_FEATURE_ACTS: &str = "all_graph_feature_acts";
const FEATURE_ACTS: &str = "all_feature_acts";
const MAX_FEATURE_INFO: &str = "all_max_feature_info";
const EXAMPLES_FOUND: &str = "all_examples_found";

/// Element type of the float datasets (numpy float32).
type Float = f32;
/// Element type of the integer datasets (numpy int64).
type Int = i64;

/// The string dtype written: numpy `S{len}`, as h5py writes `np.array(bytes)`.
fn string_dtype(len: usize) -> TypeDescriptor {
    TypeDescriptor::FixedAscii(len)
}

/// String dtypes read: ours ([`string_dtype`]) and fixed-length Unicode from other writers.
fn is_string_dtype(t: &TypeDescriptor) -> bool {
    matches!(
        t,
        TypeDescriptor::FixedAscii(_) | TypeDescriptor::FixedUnicode(_)
    )
}

fn group_name(subgraph_id: i64) -> String {
    format!("{SUBGRAPH_PREFIX}{subgraph_id}")
}

/// The subgraph id of a `subgraph_{sid}` group name.
fn parse_group_name(name: &str) -> Option<i64> {
    name.strip_prefix(SUBGRAPH_PREFIX)?.parse().ok()
}

// ----------------------------------------------------------------------------------------------
// Writing.

/// Everything written for one subgraph: its examples (the tokens where it fired, one row each)
/// and their PCA scores.
pub struct SubgraphOutput {
    pub subgraph_id: i64,
    /// Per example: the token's text.
    pub tokens: Vec<String>,
    /// Per example: up to 10 previous tokens, `|token|`, up to 10 following ones.
    pub contexts: Vec<String>,
    /// Per example: the window within its batch.
    pub batches: Vec<i64>,
    /// Per example: the position within the window.
    pub positions: Vec<i64>,
    /// The subgraph's latents, the columns of `graph_acts`.
    pub n_latents: usize,
    /// `rows × d_in`: the subgraph's part of each reconstruction.
    pub reconstructions: Vec<f32>,
    /// `rows × n_latents`.
    pub graph_acts: Vec<f32>,
    /// `rows × d_sae`, only when asked for.
    pub feature_acts: Vec<f32>,
    /// Per row: (max activation, its latent, 1.0 if that latent is in the subgraph).
    pub max_info: Vec<[f32; 3]>,
    pub top_3_tokens: Vec<(String, usize)>,
    pub example_context: String,
    /// PCA scores, `rows × 3`.
    pub pca_scores: Vec<f32>,
}

/// A fixed-length byte-string dataset (numpy `S{max len}`), as h5py writes `np.array(bytes)`.
fn write_bytes_dataset(group: &Group, name: &str, items: &[&[u8]]) -> Result<()> {
    let len = items.iter().map(|b| b.len()).max().unwrap_or(0).max(1);
    let ds = group
        .new_dataset_builder()
        .empty_as(string_dtype(len))
        .shape(items.len())
        .create(name)
        .with_context(|| format!("cannot create dataset {name}"))?;
    if items.is_empty() {
        return Ok(());
    }
    let mut buf = vec![0u8; len * items.len()];
    for (slot, item) in buf.chunks_exact_mut(len).zip(items) {
        slot[..item.len()].copy_from_slice(item);
    }
    let dtype = ds.dtype()?;
    // SAFETY: `buf` holds `items.len()` elements of exactly the dataset's type (fixed strings of
    // `len` bytes), and both ids are valid for the duration of the call. The HDF5 library is not
    // thread-safe: like every call the hdf5 crate makes, this one holds the crate's global lock.
    let status = hdf5::sync::sync(|| unsafe {
        hdf5_sys::h5d::H5Dwrite(
            ds.id(),
            dtype.id(),
            hdf5_sys::h5s::H5S_ALL,
            hdf5_sys::h5s::H5S_ALL,
            hdf5_sys::h5p::H5P_DEFAULT,
            buf.as_ptr().cast(),
        )
    });
    if status < 0 {
        bail!("cannot write dataset {name}");
    }
    Ok(())
}

fn write_strings(group: &Group, name: &str, items: &[String]) -> Result<()> {
    let bytes: Vec<&[u8]> = items.iter().map(|s| s.as_bytes()).collect();
    write_bytes_dataset(group, name, &bytes)
}

fn write_floats(group: &Group, name: &str, shape: &[usize], data: &[Float]) -> Result<()> {
    let ds = group
        .new_dataset::<Float>()
        .shape(shape)
        .create(name)
        .with_context(|| format!("cannot create dataset {name}"))?;
    ds.write_raw(data)
        .with_context(|| format!("cannot write dataset {name}"))
}

fn write_ints(group: &Group, name: &str, data: &[Int]) -> Result<()> {
    let ds = group
        .new_dataset::<Int>()
        .shape(data.len())
        .create(name)
        .with_context(|| format!("cannot create dataset {name}"))?;
    ds.write_raw(data)
        .with_context(|| format!("cannot write dataset {name}"))
}

/// `str((token, count))` as Python prints the tuple.
fn tuple_repr(token: &str, count: usize) -> String {
    format!("({}, {count})", str_repr(token))
}

fn write_subgraph(
    file: &File,
    s: &SubgraphOutput,
    save: &SaveOptions,
    d_in: usize,
    d_sae: usize,
) -> Result<()> {
    let name = group_name(s.subgraph_id);
    let g = file
        .create_group(&name)
        .with_context(|| format!("cannot create group {name}"))?;
    let n = s.tokens.len();
    if save.fired_tokens {
        write_strings(&g, FIRED_TOKENS, &s.tokens)?;
    }
    if save.top_3_tokens {
        let reprs: Vec<String> = s
            .top_3_tokens
            .iter()
            .map(|(t, c)| tuple_repr(t, *c))
            .collect();
        write_strings(&g, TOP_3_TOKENS, &reprs)?;
    }
    if save.context {
        // The original iterates the string: one character per element.
        let chars: Vec<String> = s.example_context.chars().map(String::from).collect();
        write_strings(&g, EXAMPLE_CONTEXT, &chars)?;
    }
    if save.reconstructions {
        write_floats(&g, RECONSTRUCTIONS, &[n, d_in], &s.reconstructions)?;
    }
    if save.graph_feature_acts {
        write_floats(&g, GRAPH_FEATURE_ACTS, &[n, s.n_latents], &s.graph_acts)?;
    }
    if save.feature_acts {
        write_floats(&g, FEATURE_ACTS, &[n, d_sae], &s.feature_acts)?;
    }
    if save.max_feature_info {
        write_floats(&g, MAX_FEATURE_INFO, &[n, 3], &s.max_info.concat())?;
    }
    if save.examples_found {
        let ds = g.new_dataset::<Int>().create(EXAMPLES_FOUND)?;
        ds.write_scalar(&(n as Int))?;
    }
    if save.token_dfs {
        let t = g.create_group(TOKEN_DFS)?;
        write_strings(&t, TOKEN_STR_TOKENS, &s.tokens)?;
        let unique: Vec<String> = s
            .tokens
            .iter()
            .zip(&s.positions)
            .map(|(token, pos)| format!("{token}/{pos}"))
            .collect();
        write_strings(&t, TOKEN_UNIQUE, &unique)?;
        write_strings(&t, TOKEN_CONTEXT, &s.contexts)?;
        write_ints(&t, TOKEN_BATCH, &s.batches)?;
        write_ints(&t, TOKEN_POS, &s.positions)?;
        let labels: Vec<String> = s
            .batches
            .iter()
            .zip(&s.positions)
            .map(|(batch, pos)| format!("{batch}/{pos}"))
            .collect();
        write_strings(&t, TOKEN_LABEL, &labels)?;
    }
    if save.pca {
        let p = g.create_group(PCA_DF)?;
        for (k, name) in PC_COLUMNS.iter().enumerate() {
            let column: Vec<Float> = s.pca_scores.chunks_exact(3).map(|r| r[k]).collect();
            write_floats(&p, name, &[n], &column)?;
        }
        write_strings(&p, PCA_TOKENS, &s.tokens)?;
        write_strings(&p, PCA_CONTEXT, &s.contexts)?;
        write_ints(&p, PCA_POINT_ID, &(0..n as Int).collect::<Vec<_>>())?;
    }
    Ok(())
}

/// Writes `subgraphs` to `path` (an empty file when there are none, as the original), under a
/// temporary name first.
pub fn write_file(
    path: &Path,
    subgraphs: &[&SubgraphOutput],
    save: &SaveOptions,
    d_in: usize,
    d_sae: usize,
) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let tmp = dir.join(format!(
        ".{}.partial-{}",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("out.h5"),
        std::process::id()
    ));
    let result = (|| {
        let file =
            File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
        for s in subgraphs {
            write_subgraph(&file, s, save, d_in, d_sae)?;
        }
        file.close()?;
        std::fs::rename(&tmp, path)
            .with_context(|| format!("cannot move {} into place", path.display()))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.with_context(|| format!("cannot write {}", path.display()))
}

/// Writes the file, split as the original's `split_large_h5_files` does when it is larger than
/// `max_mb`: `⌈size / max_mb⌉` files `{stem}_chunk{i}.h5` (i from 1), whole subgraph groups,
/// `len / n` per chunk with the remainder in the last. Returns the files written.
pub fn write_split(
    path: &Path,
    subgraphs: &[SubgraphOutput],
    save: &SaveOptions,
    d_in: usize,
    d_sae: usize,
    max_mb: Option<f64>,
) -> Result<Vec<PathBuf>> {
    let all: Vec<&SubgraphOutput> = subgraphs.iter().collect();
    write_file(path, &all, save, d_in, d_sae)?;
    let Some(max_mb) = max_mb else {
        return Ok(vec![path.to_path_buf()]);
    };
    let size_mb = std::fs::metadata(path)?.len() as f64 / (1024.0 * 1024.0);
    let n = (size_mb / max_mb).ceil() as usize;
    if n <= 1 || all.len() < 2 {
        return Ok(vec![path.to_path_buf()]);
    }
    let n = n.min(all.len());
    let per = all.len() / n;
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("out");
    let mut written = Vec::new();
    for i in 0..n {
        let end = if i + 1 == n { all.len() } else { (i + 1) * per };
        let chunk = path.with_file_name(format!("{stem}_chunk{}.h5", i + 1));
        write_file(&chunk, &all[i * per..end], save, d_in, d_sae)?;
        written.push(chunk);
    }
    std::fs::remove_file(path).with_context(|| format!("cannot remove {}", path.display()))?;
    Ok(written)
}

// ----------------------------------------------------------------------------------------------
// Reading.

/// The h5 file(s) of one subgraph size (several when split into chunks).
pub struct PcaFile {
    pub size: usize,
    pub paths: Vec<PathBuf>,
}

/// `{max_examples}cap_graph_analysis_results_size_{k}_nbatch_{nb}.h5` (no `cap` part without a cap).
pub fn h5_file_name(max_examples: Option<usize>, size: usize, n_batches: usize) -> String {
    let cap = max_examples.map(|m| format!("{m}cap_")).unwrap_or_default();
    format!("{cap}graph_analysis_results_size_{size}_nbatch_{n_batches}.h5")
}

/// `..._size_{k}_nbatch_{nb}[_chunk{i}].h5` → (k, name without the chunk part).
fn parse_name(name: &str) -> Option<(usize, String)> {
    let stem = name.strip_suffix(".h5")?;
    let base = match stem.rfind("_chunk") {
        Some(i) if stem[i + 6..].chars().all(|c| c.is_ascii_digit()) => &stem[..i],
        _ => stem,
    };
    let size = base
        .split("_size_")
        .nth(1)?
        .split("_nbatch_")
        .next()?
        .parse()
        .ok()?;
    Some((size, base.to_string()))
}

/// One run's h5 files in a `{neat}_pca_for_streamlit` folder: the files whose names differ
/// only in the size (`{cap}cap_graph_analysis_results_nbatch_{nb}` is the run's `name`).
pub struct PcaRun {
    pub name: String,
    /// One entry per size, sizes ascending.
    pub files: Vec<PcaFile>,
}

/// Every run of h5 files in a `{neat}_pca_for_streamlit` folder (names ascending), so that a
/// reader can choose among them instead of taking the first name per size.
pub fn pca_runs(dir: &Path) -> Result<Vec<PcaRun>> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    names.sort();
    let mut runs: BTreeMap<String, BTreeMap<usize, Vec<PathBuf>>> = BTreeMap::new();
    for p in names {
        let Some((size, base)) = p.file_name().and_then(|n| n.to_str()).and_then(parse_name) else {
            continue;
        };
        let run = base.replacen(&format!("_size_{size}"), "", 1);
        runs.entry(run)
            .or_default()
            .entry(size)
            .or_default()
            .push(p);
    }
    Ok(runs
        .into_iter()
        .map(|(name, sizes)| PcaRun {
            name,
            files: sizes
                .into_iter()
                .map(|(size, paths)| PcaFile { size, paths })
                .collect(),
        })
        .collect())
}

/// One `subgraph_{sid}` group.
pub struct PcaGroup {
    pub subgraph_id: i64,
    /// `n × 3`.
    pub pcs: Vec<f32>,
    pub tokens: Vec<String>,
    pub contexts: Vec<String>,
    /// The max-activating latent per point, or −1 when it is not in the subgraph.
    pub max_latent: Vec<i64>,
    /// `n × |F|`.
    pub graph_acts: Vec<f32>,
    pub top_3_tokens: Vec<String>,
    pub example_context: String,
}

/// Fixed-length byte strings (numpy `S`), decoded as UTF-8 (lossy), NUL padding removed.
fn read_strings(ds: &Dataset) -> Result<Vec<String>> {
    let dtype = ds.dtype()?;
    let size = dtype.size();
    let n = ds.size();
    if n == 0 {
        return Ok(Vec::new());
    }
    if !is_string_dtype(&dtype.to_descriptor()?) {
        bail!("dataset {} is not a fixed-length string array", ds.name());
    }
    let mut buf = vec![0u8; n * size];
    // SAFETY: `buf` has room for `n` elements of the dataset's own type; the call holds the
    // hdf5 crate's global lock, as in `write_bytes_dataset`.
    let status = hdf5::sync::sync(|| unsafe {
        hdf5_sys::h5d::H5Dread(
            ds.id(),
            dtype.id(),
            hdf5_sys::h5s::H5S_ALL,
            hdf5_sys::h5s::H5S_ALL,
            hdf5_sys::h5p::H5P_DEFAULT,
            buf.as_mut_ptr().cast(),
        )
    });
    if status < 0 {
        bail!("cannot read dataset {}", ds.name());
    }
    Ok(buf
        .chunks_exact(size)
        .map(|b| {
            let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
            String::from_utf8_lossy(&b[..end]).into_owned()
        })
        .collect())
}

fn read_floats(group: &Group, name: &str) -> Result<Vec<Float>> {
    Ok(group
        .dataset(name)
        .with_context(|| format!("group {} has no {name}", group.name()))?
        .read_raw::<Float>()?)
}

fn read_group(g: &Group, sid: i64) -> Result<PcaGroup> {
    let pca = g
        .group(PCA_DF)
        .with_context(|| format!("{} has no {PCA_DF}", g.name()))?;
    let tokens = read_strings(&pca.dataset(PCA_TOKENS)?)?;
    let n = tokens.len();
    let [pc1, pc2, pc3] = [
        read_floats(&pca, PC_COLUMNS[0])?,
        read_floats(&pca, PC_COLUMNS[1])?,
        read_floats(&pca, PC_COLUMNS[2])?,
    ];
    for (name, column) in PC_COLUMNS.iter().zip([&pc1, &pc2, &pc3]) {
        check_rows(&format!("{PCA_DF}/{name}"), column.len(), 1, n)?;
        check_finite(&format!("{PCA_DF}/{name}"), column)?;
    }
    let pcs = (0..n).flat_map(|i| [pc1[i], pc2[i], pc3[i]]).collect();
    let contexts = read_strings(&pca.dataset(PCA_CONTEXT)?)?;
    check_rows(&format!("{PCA_DF}/{PCA_CONTEXT}"), contexts.len(), 1, n)?;
    let info = read_floats(g, MAX_FEATURE_INFO)?;
    check_rows(MAX_FEATURE_INFO, info.len(), 3, n)?;
    check_finite(MAX_FEATURE_INFO, &info)?;
    let max_latent = info
        .chunks_exact(3)
        .enumerate()
        .map(|(row, r)| {
            ensure!(
                r[1] >= 0.0 && r[1].fract() == 0.0,
                "{MAX_FEATURE_INFO}[{row}, 1] is {}, not a latent index",
                r[1]
            );
            Ok(if r[2] > 0.5 { r[1] as i64 } else { -1 })
        })
        .collect::<Result<_>>()?;
    let graph_acts = read_floats(g, GRAPH_FEATURE_ACTS)?;
    ensure!(
        graph_acts.len() % n.max(1) == 0 && (n > 0 || graph_acts.is_empty()),
        "{GRAPH_FEATURE_ACTS} has {} values, not a whole number of rows for the {n} examples of {PCA_DF}/{PCA_TOKENS}",
        graph_acts.len()
    );
    check_finite(GRAPH_FEATURE_ACTS, &graph_acts)?;
    let text = |name: &str| -> Result<Vec<String>> {
        match g.dataset(name) {
            Ok(ds) => read_strings(&ds),
            Err(_) => Ok(Vec::new()),
        }
    };
    Ok(PcaGroup {
        subgraph_id: sid,
        pcs,
        tokens,
        contexts,
        max_latent,
        graph_acts,
        top_3_tokens: text(TOP_3_TOKENS)?,
        example_context: text(EXAMPLE_CONTEXT)?.concat(),
    })
}

/// Refuses a dataset `name` of `len` values that is not `width` values for each of the `n`
/// examples (the rows of `pca_df/tokens`).
fn check_rows(name: &str, len: usize, width: usize, n: usize) -> Result<()> {
    ensure!(
        len == n * width,
        "{name} has {len} values but {PCA_DF}/{PCA_TOKENS} has {n} examples ({} expected)",
        n * width
    );
    Ok(())
}

/// Refuses a float dataset `name` holding NaN or infinity, naming the first.
fn check_finite(name: &str, values: &[Float]) -> Result<()> {
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        bail!("{name} holds {} at flat index {i}", values[i]);
    }
    Ok(())
}

impl PcaGroup {
    /// Examples (points) of the group.
    pub fn examples(&self) -> usize {
        self.tokens.len()
    }

    /// Refuses a group whose activation columns are not the `n_latents` latents its subgraph
    /// has in the node table, or whose max-activating latents are outside `d_sae`.
    pub fn check_fits(&self, n_latents: usize, d_sae: usize) -> Result<()> {
        let n = self.examples();
        ensure!(
            n == 0 || self.graph_acts.len() == n * n_latents,
            "{GRAPH_FEATURE_ACTS} has {} columns but subgraph {} has {n_latents} latents in the node table",
            self.graph_acts.len() / n.max(1),
            self.subgraph_id
        );
        if let Some(bad) = self.max_latent.iter().find(|&&l| l >= d_sae as i64) {
            bail!("{MAX_FEATURE_INFO} names latent {bad}, but the SAE has {d_sae} latents");
        }
        Ok(())
    }
}

/// Every subgraph group of a size's file(s), by id.
pub fn read_pca_file(paths: &[PathBuf]) -> Result<Vec<PcaGroup>> {
    let mut out = Vec::new();
    for path in paths {
        let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        for name in file.member_names()? {
            let Some(sid) = parse_group_name(&name) else {
                continue;
            };
            let g = file.group(&name)?;
            out.push(read_group(&g, sid).with_context(|| format!("{} [{name}]", path.display()))?);
        }
    }
    out.sort_by_key(|g| g.subgraph_id);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_match_the_original() {
        assert_eq!(
            h5_file_name(Some(5000), 5, 10000),
            "5000cap_graph_analysis_results_size_5_nbatch_10000.h5"
        );
        assert_eq!(
            h5_file_name(None, 4, 10),
            "graph_analysis_results_size_4_nbatch_10.h5"
        );
    }

    #[test]
    fn tuples_print_as_python() {
        assert_eq!(tuple_repr(" the", 523), "(' the', 523)");
        assert_eq!(tuple_repr("'s", 2), "(\"'s\", 2)");
    }

    #[test]
    fn names_parse() {
        assert_eq!(
            parse_name("5000cap_graph_analysis_results_size_5_nbatch_10000_chunk2.h5"),
            Some((
                5,
                "5000cap_graph_analysis_results_size_5_nbatch_10000".into()
            ))
        );
        assert_eq!(
            parse_name("graph_analysis_results_size_12_nbatch_10.h5")
                .unwrap()
                .0,
            12
        );
        assert_eq!(parse_name("pca_run.json"), None);
    }

    #[test]
    fn runs_are_told_apart_by_name() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "1000cap_graph_analysis_results_size_4_nbatch_40.h5",
            "1000cap_graph_analysis_results_size_5_nbatch_40.h5",
            "1000cap_graph_analysis_results_size_4_nbatch_400_chunk1.h5",
            "1000cap_graph_analysis_results_size_4_nbatch_400_chunk2.h5",
            "pca_run.json",
        ] {
            std::fs::write(dir.path().join(name), b"").unwrap();
        }
        let runs = pca_runs(dir.path()).unwrap();
        let names: Vec<&str> = runs.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "1000cap_graph_analysis_results_nbatch_40",
                "1000cap_graph_analysis_results_nbatch_400"
            ]
        );
        let sizes: Vec<usize> = runs[0].files.iter().map(|f| f.size).collect();
        assert_eq!(sizes, [4, 5]);
        assert_eq!(runs[1].files.len(), 1);
        assert_eq!(runs[1].files[0].paths.len(), 2);
        assert!(pca_runs(&dir.path().join("absent")).unwrap().is_empty());
    }

    #[test]
    fn group_names_round_trip() {
        assert_eq!(group_name(17), "subgraph_17");
        assert_eq!(parse_group_name(&group_name(17)), Some(17));
        assert_eq!(parse_group_name("pca_df"), None);
    }

    /// A subgraph of `n_latents` latents with `n` examples whose values all derive from `seed`.
    fn subgraph(subgraph_id: i64, n: usize, n_latents: usize, seed: f32) -> SubgraphOutput {
        let d_in = 4;
        let tokens: Vec<String> = (0..n)
            .map(|i| ["é", " the", "日本", "'s", "", "\"x\""][i % 6].to_string() + &"a".repeat(i))
            .collect();
        SubgraphOutput {
            subgraph_id,
            contexts: tokens
                .iter()
                .map(|t| format!("before |{t}| after"))
                .collect(),
            tokens,
            batches: (0..n as i64).map(|i| i / 2).collect(),
            positions: (0..n as i64).map(|i| 3 * i + 1).collect(),
            n_latents,
            reconstructions: (0..n * d_in).map(|i| seed + i as f32 * 0.25).collect(),
            graph_acts: (0..n * n_latents).map(|i| seed - i as f32 * 0.5).collect(),
            feature_acts: (0..n * 6).map(|i| i as f32).collect(),
            max_info: (0..n)
                .map(|i| [seed + i as f32, (i % 6) as f32, (i % 2) as f32])
                .collect(),
            top_3_tokens: vec![(" the".into(), 523), ("'s".into(), 2), ("日本".into(), 1)],
            example_context: format!("ctx é 日本 {seed}"),
            pca_scores: (0..n * 3).map(|i| seed * 10.0 + i as f32 * 0.125).collect(),
        }
    }

    /// What the reader must give back for `s`.
    fn assert_read_back(got: &PcaGroup, s: &SubgraphOutput) {
        assert_eq!(got.subgraph_id, s.subgraph_id);
        assert_eq!(got.pcs, s.pca_scores);
        assert_eq!(got.tokens, s.tokens);
        assert_eq!(got.contexts, s.contexts);
        let max_latent: Vec<i64> = s
            .max_info
            .iter()
            .map(|r| if r[2] == 1.0 { r[1] as i64 } else { -1 })
            .collect();
        assert_eq!(got.max_latent, max_latent);
        assert_eq!(got.graph_acts, s.graph_acts);
        let reprs: Vec<String> = s
            .top_3_tokens
            .iter()
            .map(|(t, c)| tuple_repr(t, *c))
            .collect();
        assert_eq!(got.top_3_tokens, reprs);
        assert_eq!(got.example_context, s.example_context);
    }

    fn all_options() -> SaveOptions {
        SaveOptions {
            fired_tokens: true,
            top_3_tokens: true,
            context: true,
            reconstructions: true,
            graph_feature_acts: true,
            feature_acts: true,
            max_feature_info: true,
            examples_found: true,
            token_dfs: true,
            pca: true,
        }
    }

    #[test]
    fn what_is_written_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("x_pca_for_streamlit");
        // Written out of id order; the reader sorts by id.
        let small = [subgraph(12, 5, 3, 1.5), subgraph(3, 7, 2, -2.0)];
        let large = [subgraph(40, 4, 4, 0.5)];
        for save in [all_options(), SaveOptions::default()] {
            let p = out.join("9cap_graph_analysis_results_size_2_nbatch_7.h5");
            let q = out.join("9cap_graph_analysis_results_size_4_nbatch_7.h5");
            assert_eq!(write_split(&p, &small, &save, 4, 6, None).unwrap(), [p]);
            assert_eq!(write_split(&q, &large, &save, 4, 6, None).unwrap(), [q]);
            let files = single_run(&out);
            assert_eq!(files.iter().map(|f| f.size).collect::<Vec<_>>(), [2, 4]);
            let got = read_pca_file(&files[0].paths).unwrap();
            assert_eq!(got.len(), 2);
            assert_read_back(&got[0], &small[1]);
            assert_read_back(&got[1], &small[0]);
            let got = read_pca_file(&files[1].paths).unwrap();
            assert_eq!(got.len(), 1);
            assert_read_back(&got[0], &large[0]);
        }
    }

    /// The files of the only PCA run in `dir`.
    fn single_run(dir: &Path) -> Vec<PcaFile> {
        let mut runs = pca_runs(dir).unwrap();
        assert_eq!(runs.len(), 1);
        runs.remove(0).files
    }

    #[test]
    fn split_files_read_back_as_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("graph_analysis_results_size_3_nbatch_2.h5");
        let subgraphs: Vec<SubgraphOutput> = (0..5)
            .map(|i| subgraph(i, 3 + i as usize, 3, i as f32))
            .collect();
        let written = write_split(&path, &subgraphs, &all_options(), 4, 6, Some(1e-9)).unwrap();
        assert_eq!(written.len(), 5);
        assert!(!path.exists());
        let files = single_run(dir.path());
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].size, 3);
        assert_eq!(files[0].paths, written);
        let got = read_pca_file(&files[0].paths).unwrap();
        assert_eq!(got.len(), subgraphs.len());
        for (g, s) in got.iter().zip(&subgraphs) {
            assert_read_back(g, s);
        }
    }
}
