//! The HDF5 files of the original's explorer app (see docs/formats.md, "PCA h5 files"): one
//! group `subgraph_{sid}` per subgraph with the datasets `[processing.save_options]` asks for,
//! in h5py's dtypes for what the original wrote: numpy `S` fixed-length byte strings (UTF-8
//! bytes), float32 matrices, int64 integers, `example_context` stored one character per
//! element, `top_3_tokens` as tuple reprs.

use super::gather::Examples;
use crate::config::SaveOptions;
use crate::pyfmt::str_repr;
use anyhow::{bail, Context, Result};
use hdf5::types::TypeDescriptor;
use hdf5::{File, Group};
use std::path::{Path, PathBuf};

/// Everything written for one subgraph.
pub struct SubgraphOutput {
    pub subgraph_id: i64,
    pub examples: Examples,
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
        .empty_as(TypeDescriptor::FixedAscii(len))
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
    // `len` bytes), and both ids are valid for the duration of the call.
    let status = unsafe {
        hdf5_sys::h5d::H5Dwrite(
            ds.id(),
            dtype.id(),
            hdf5_sys::h5s::H5S_ALL,
            hdf5_sys::h5s::H5S_ALL,
            hdf5_sys::h5p::H5P_DEFAULT,
            buf.as_ptr().cast(),
        )
    };
    if status < 0 {
        bail!("cannot write dataset {name}");
    }
    Ok(())
}

fn write_strings(group: &Group, name: &str, items: &[String]) -> Result<()> {
    let bytes: Vec<&[u8]> = items.iter().map(|s| s.as_bytes()).collect();
    write_bytes_dataset(group, name, &bytes)
}

fn write_f32(group: &Group, name: &str, shape: &[usize], data: &[f32]) -> Result<()> {
    let ds = group
        .new_dataset::<f32>()
        .shape(shape)
        .create(name)
        .with_context(|| format!("cannot create dataset {name}"))?;
    ds.write_raw(data)
        .with_context(|| format!("cannot write dataset {name}"))
}

fn write_i64(group: &Group, name: &str, data: &[i64]) -> Result<()> {
    let ds = group
        .new_dataset::<i64>()
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
    let g = file
        .create_group(&format!("subgraph_{}", s.subgraph_id))
        .with_context(|| format!("cannot create group subgraph_{}", s.subgraph_id))?;
    let ex = &s.examples;
    let n = ex.found();
    let fired: Vec<String> = ex.rows.iter().map(|r| r.str_token.clone()).collect();
    let contexts: Vec<String> = ex.rows.iter().map(|r| r.context.clone()).collect();
    if save.fired_tokens {
        write_strings(&g, "all_fired_tokens", &fired)?;
    }
    if save.top_3_tokens {
        let reprs: Vec<String> = s
            .top_3_tokens
            .iter()
            .map(|(t, c)| tuple_repr(t, *c))
            .collect();
        write_strings(&g, "top_3_tokens", &reprs)?;
    }
    if save.context {
        // The original iterates the string: one character per element.
        let chars: Vec<String> = s.example_context.chars().map(String::from).collect();
        write_strings(&g, "example_context", &chars)?;
    }
    if save.reconstructions {
        write_f32(&g, "all_reconstructions", &[n, d_in], &ex.reconstructions)?;
    }
    if save.graph_feature_acts {
        write_f32(
            &g,
            "all_graph_feature_acts",
            &[n, ex.latents.len()],
            &ex.graph_acts,
        )?;
    }
    if save.feature_acts {
        write_f32(&g, "all_feature_acts", &[n, d_sae], &ex.feature_acts)?;
    }
    if save.max_feature_info {
        write_f32(&g, "all_max_feature_info", &[n, 3], &ex.max_info.concat())?;
    }
    if save.examples_found {
        let ds = g.new_dataset::<i64>().create("all_examples_found")?;
        ds.write_scalar(&(n as i64))?;
    }
    if save.token_dfs {
        let t = g.create_group("all_token_dfs")?;
        write_strings(&t, "str_tokens", &fired)?;
        let unique: Vec<String> = ex
            .rows
            .iter()
            .map(|r| format!("{}/{}", r.str_token, r.pos))
            .collect();
        write_strings(&t, "unique_token", &unique)?;
        write_strings(&t, "context", &contexts)?;
        write_i64(
            &t,
            "batch",
            &ex.rows.iter().map(|r| r.batch).collect::<Vec<_>>(),
        )?;
        write_i64(
            &t,
            "pos",
            &ex.rows.iter().map(|r| r.pos).collect::<Vec<_>>(),
        )?;
        let labels: Vec<String> = ex
            .rows
            .iter()
            .map(|r| format!("{}/{}", r.batch, r.pos))
            .collect();
        write_strings(&t, "label", &labels)?;
    }
    if save.pca {
        let p = g.create_group("pca_df")?;
        for (k, name) in ["PC1", "PC2", "PC3"].iter().enumerate() {
            let column: Vec<f32> = s.pca_scores.chunks_exact(3).map(|r| r[k]).collect();
            write_f32(&p, name, &[n], &column)?;
        }
        write_strings(&p, "tokens", &fired)?;
        write_strings(&p, "context", &contexts)?;
        write_i64(&p, "point_id", &(0..n as i64).collect::<Vec<_>>())?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tuples_print_as_python() {
        assert_eq!(tuple_repr(" the", 523), "(' the', 523)");
        assert_eq!(tuple_repr("'s", 2), "(\"'s\", 2)");
    }
}
