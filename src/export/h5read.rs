//! Reading the `pca` h5 files (ours or the original's) for the explorer.

use anyhow::{bail, Context, Result};
use hdf5::{Dataset, File, Group};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The h5 file(s) of one subgraph size (several when split into chunks).
pub struct PcaFile {
    pub size: usize,
    pub paths: Vec<PathBuf>,
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

/// The h5 files in a `{neat}_pca_for_streamlit` folder, one entry per size (the first file
/// name in sorted order when several runs are there).
pub fn pca_files(dir: &Path) -> Result<Vec<PcaFile>> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    names.sort();
    let mut by_base: BTreeMap<String, (usize, Vec<PathBuf>)> = BTreeMap::new();
    for p in names {
        let Some((size, base)) = p.file_name().and_then(|n| n.to_str()).and_then(parse_name) else {
            continue;
        };
        by_base
            .entry(base)
            .or_insert_with(|| (size, Vec::new()))
            .1
            .push(p);
    }
    let mut by_size: BTreeMap<usize, Vec<PathBuf>> = BTreeMap::new();
    for (_, (size, paths)) in by_base {
        by_size.entry(size).or_insert(paths);
    }
    Ok(by_size
        .into_iter()
        .map(|(size, paths)| PcaFile { size, paths })
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
    if !matches!(
        dtype.to_descriptor()?,
        hdf5::types::TypeDescriptor::FixedAscii(_) | hdf5::types::TypeDescriptor::FixedUnicode(_)
    ) {
        bail!("dataset {} is not a fixed-length string array", ds.name());
    }
    let mut buf = vec![0u8; n * size];
    // SAFETY: `buf` has room for `n` elements of the dataset's own type.
    let status = unsafe {
        hdf5_sys::h5d::H5Dread(
            ds.id(),
            dtype.id(),
            hdf5_sys::h5s::H5S_ALL,
            hdf5_sys::h5s::H5S_ALL,
            hdf5_sys::h5p::H5P_DEFAULT,
            buf.as_mut_ptr().cast(),
        )
    };
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

fn read_f32(group: &Group, name: &str) -> Result<Vec<f32>> {
    Ok(group
        .dataset(name)
        .with_context(|| format!("group {} has no {name}", group.name()))?
        .read_raw::<f32>()?)
}

fn read_group(g: &Group, sid: i64) -> Result<PcaGroup> {
    let pca = g
        .group("pca_df")
        .with_context(|| format!("{} has no pca_df", g.name()))?;
    let (pc1, pc2, pc3) = (
        read_f32(&pca, "PC1")?,
        read_f32(&pca, "PC2")?,
        read_f32(&pca, "PC3")?,
    );
    let pcs = (0..pc1.len())
        .flat_map(|i| [pc1[i], pc2[i], pc3[i]])
        .collect();
    let info = read_f32(g, "all_max_feature_info")?;
    let max_latent = info
        .chunks_exact(3)
        .map(|r| if r[2] > 0.5 { r[1] as i64 } else { -1 })
        .collect();
    let text = |name: &str| -> Result<Vec<String>> {
        match g.dataset(name) {
            Ok(ds) => read_strings(&ds),
            Err(_) => Ok(Vec::new()),
        }
    };
    Ok(PcaGroup {
        subgraph_id: sid,
        pcs,
        tokens: read_strings(&pca.dataset("tokens")?)?,
        contexts: read_strings(&pca.dataset("context")?)?,
        max_latent,
        graph_acts: read_f32(g, "all_graph_feature_acts")?,
        top_3_tokens: text("top_3_tokens")?,
        example_context: text("example_context")?.concat(),
    })
}

/// Every subgraph group of a size's file(s), by id.
pub fn read_pca_file(paths: &[PathBuf]) -> Result<Vec<PcaGroup>> {
    let mut out = Vec::new();
    for path in paths {
        let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        for name in file.member_names()? {
            let Some(sid) = name
                .strip_prefix("subgraph_")
                .and_then(|s| s.parse::<i64>().ok())
            else {
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
}
