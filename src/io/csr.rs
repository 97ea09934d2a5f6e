//! `scipy.sparse.save_npz` files of CSR matrices: written row by row, read row by row with every
//! index checked (see docs/formats.md, "Co-occurrence files").

use super::npy::{decode_floats, read_npy_header, NpyData, NpyElement};
use super::npz::{open_npz, read_npz_array, NpzWriter};
use anyhow::{bail, ensure, Context, Result};
use std::io::{Read, Write};
use std::path::Path;

/// Writes a square sparse matrix as `scipy.sparse.save_npz` does for a CSR matrix
/// (`indices`, `indptr`, `format` = b'csr', `shape`, `data`; compressed), so
/// `scipy.sparse.load_npz` opens it. `entries` are `(row, col, value)` sorted row-major.
pub fn save_csr(path: &Path, n: usize, entries: &[(u32, u32, f32)]) -> Result<()> {
    ensure!(
        entries
            .windows(2)
            .all(|w| (w[0].0, w[0].1) < (w[1].0, w[1].1)),
        "CSR entries must be sorted row-major without duplicates"
    );
    let mut indptr = vec![0u64; n + 1];
    for &(r, _, _) in entries {
        ensure!(
            (r as usize) < n,
            "CSR row {r} is outside a {n} × {n} matrix"
        );
        indptr[r as usize + 1] += 1;
    }
    for i in 0..n {
        indptr[i + 1] += indptr[i];
    }
    write_csr(path, n, &indptr, |i, cols, values| {
        for &(_, c, v) in &entries[indptr[i] as usize..indptr[i + 1] as usize] {
            cols.push(c);
            values.push(v);
        }
    })
}

/// Writes a square `n × n` float32 CSR matrix in `scipy.sparse.save_npz`'s layout, streaming
/// it: `row(i, cols, values)` appends row i's entries (columns ascending) and is called twice
/// per row, once for `indices` and once for `data`. `indptr` holds the n + 1 row offsets.
/// Index arrays are int32 when every index fits, else int64, as scipy chooses.
pub fn write_csr(
    path: &Path,
    n: usize,
    indptr: &[u64],
    mut row: impl FnMut(usize, &mut Vec<u32>, &mut Vec<f32>),
) -> Result<()> {
    ensure!(
        indptr.len() == n + 1 && indptr[0] == 0 && indptr.windows(2).all(|w| w[0] <= w[1]),
        "CSR indptr must hold {} non-decreasing offsets from 0",
        n + 1
    );
    let nnz = indptr[n] as usize;
    let wide = nnz >= i32::MAX as usize || n >= i32::MAX as usize;
    let mut w = NpzWriter::create(path, true)?;
    let (mut cols, mut values) = (Vec::new(), Vec::new());
    let mut buf = Vec::new();
    let mut pass = |w: &mut NpzWriter, data: bool| -> Result<()> {
        for i in 0..n {
            cols.clear();
            values.clear();
            row(i, &mut cols, &mut values);
            let len = (indptr[i + 1] - indptr[i]) as usize;
            ensure!(
                cols.len() == len && values.len() == len,
                "CSR row {i} has {} entries but indptr says {len}",
                cols.len()
            );
            if data {
                f32::extend_le(&values, &mut buf);
            } else {
                ensure!(
                    cols.windows(2).all(|c| c[0] < c[1])
                        && cols.last().is_none_or(|&c| (c as usize) < n),
                    "CSR row {i}: columns must ascend and be below {n}"
                );
                if wide {
                    let wide_cols: Vec<i64> = cols.iter().map(|&c| c as i64).collect();
                    i64::extend_le(&wide_cols, &mut buf);
                } else {
                    let narrow: Vec<i32> = cols.iter().map(|&c| c as i32).collect();
                    i32::extend_le(&narrow, &mut buf);
                }
            }
            if buf.len() >= 1 << 20 || i + 1 == n {
                w.zip().write_all(&buf).with_context(|| w.cannot_write())?;
                buf.clear();
            }
        }
        Ok(())
    };
    let (index_descr, index_size) = if wide { ("<i8", 8) } else { ("<i4", 4) };
    w.start_entry("indices", index_descr, &[nnz], index_size)?;
    pass(&mut w, false)?;
    if wide {
        let v: Vec<i64> = indptr.iter().map(|&x| x as i64).collect();
        w.add_array("indptr", &[n + 1], &v)?;
    } else {
        let v: Vec<i32> = indptr.iter().map(|&x| x as i32).collect();
        w.add_array("indptr", &[n + 1], &v)?;
    }
    w.add_bytes_scalar("format", b"csr")?;
    w.add_array("shape", &[2], &[n as i64, n as i64])?;
    w.start_entry("data", "<f4", &[nnz], 4)?;
    pass(&mut w, true)?;
    w.finish()
}

/// True when `path` holds a scipy sparse matrix (`save_npz`: `format`, `indptr`, ...).
pub fn is_sparse_npz(path: &Path) -> Result<bool> {
    let zip = open_npz(path)?;
    let has = |k: &str| zip.index_for_name(k).is_some();
    Ok(has("format.npy") && has("indptr.npy") && has("indices.npy") && has("data.npy"))
}

/// An integer array read whole (int32/int64/uint32/uint64) as u64, refusing negatives.
fn read_index_array(path: &Path, key: &str) -> Result<Vec<u64>> {
    let a = read_npz_array(path, key)?;
    let what = || format!("{} [{key}]", path.display());
    let out: Vec<u64> = match a.data {
        NpyData::I32(v) => v
            .iter()
            .map(|&x| u64::try_from(x))
            .collect::<Result<_, _>>(),
        NpyData::I64(v) => v
            .iter()
            .map(|&x| u64::try_from(x))
            .collect::<Result<_, _>>(),
        NpyData::U32(v) => Ok(v.iter().map(|&x| x as u64).collect()),
        NpyData::U64(v) => Ok(v),
        _ => bail!("{}: expected an integer array", what()),
    }
    .map_err(|_| anyhow::anyhow!("{}: negative value", what()))?;
    Ok(out)
}

/// Streams a scipy CSR matrix (`save_npz` layout, float data) row by row without holding its
/// entries: `check_shape(rows, cols)` sees the shape first, then `on_row(i, cols, values)`
/// gets each row with columns ascending (rows are sorted if the file's are not). Duplicate
/// entries, out-of-range columns, a bad `indptr` and truncated arrays are errors.
pub fn read_csr_rows(
    path: &Path,
    check_shape: impl FnOnce(usize, usize) -> Result<()>,
    mut on_row: impl FnMut(usize, &[u32], &[f32]) -> Result<()>,
) -> Result<()> {
    let format = read_npz_array(path, "format")?;
    ensure!(
        format.data == NpyData::Bytes(vec![b"csr".to_vec()]),
        "{}: a sparse matrix in format {:?}, not csr (save it with .tocsr())",
        path.display(),
        format.data
    );
    let shape = read_index_array(path, "shape")?;
    ensure!(
        shape.len() == 2,
        "{}: shape must have 2 entries",
        path.display()
    );
    let (rows, ncols) = (shape[0] as usize, shape[1] as usize);
    check_shape(rows, ncols)?;
    let indptr = read_index_array(path, "indptr")?;
    ensure!(
        indptr.len().checked_sub(1) == Some(rows)
            && indptr[0] == 0
            && indptr.windows(2).all(|w| w[0] <= w[1]),
        "{}: indptr must hold {} non-decreasing offsets from 0",
        path.display(),
        rows + 1
    );
    let nnz = indptr[rows] as usize;
    // Two readers of the same file: one walks `indices`, the other `data`.
    let (mut zi, mut zd) = (open_npz(path)?, open_npz(path)?);
    let mut indices = zi
        .by_name("indices.npy")
        .with_context(|| format!("{} has no indices", path.display()))?;
    let mut data = zd
        .by_name("data.npy")
        .with_context(|| format!("{} has no data", path.display()))?;
    let what_i = format!("{} [indices]", path.display());
    let what_d = format!("{} [data]", path.display());
    let hi = read_npy_header(&mut indices, &what_i)?;
    let hd = read_npy_header(&mut data, &what_d)?;
    let isize = match hi.descr.as_str() {
        "<i4" | "<u4" => 4,
        "<i8" | "<u8" => 8,
        other => bail!("{what_i}: dtype {other} is not an index type"),
    };
    let dsize = match hd.descr.as_str() {
        "<f4" => 4,
        "<f8" => 8,
        "<f2" => 2,
        other => bail!("{what_d}: dtype {other} is not a float type"),
    };
    ensure!(
        hi.shape == [nnz] && hd.shape == [nnz],
        "{}: indptr says {nnz} entries but indices has shape {:?} and data {:?}",
        path.display(),
        hi.shape,
        hd.shape
    );
    ensure!(
        (nnz as u128) * (isize as u128) <= indices.size() as u128
            && (nnz as u128) * (dsize as u128) <= data.size() as u128,
        "{}: truncated indices or data",
        path.display()
    );
    let (mut ib, mut db) = (Vec::new(), Vec::new());
    let mut entries: Vec<(u32, f32)> = Vec::new();
    let (mut cols, mut vals) = (Vec::new(), Vec::new());
    for i in 0..rows {
        let len = (indptr[i + 1] - indptr[i]) as usize;
        ib.resize(len * isize, 0);
        db.resize(len * dsize, 0);
        indices
            .read_exact(&mut ib)
            .with_context(|| format!("{what_i}: truncated at row {i}"))?;
        data.read_exact(&mut db)
            .with_context(|| format!("{what_d}: truncated at row {i}"))?;
        vals.resize(len, 0.0);
        decode_floats(&hd.descr, &db, &mut vals);
        entries.clear();
        for (k, c) in ib.chunks_exact(isize).enumerate() {
            let col = match hi.descr.as_str() {
                "<i4" => i32::from_le_bytes(c.try_into().unwrap()) as i64,
                "<u4" => u32::from_le_bytes(c.try_into().unwrap()) as i64,
                "<i8" => i64::from_le_bytes(c.try_into().unwrap()),
                _ => u64::from_le_bytes(c.try_into().unwrap()).min(i64::MAX as u64) as i64,
            };
            ensure!(
                col >= 0 && (col as usize) < ncols,
                "{what_i}: column {col} of row {i} is outside the {rows} × {ncols} matrix"
            );
            entries.push((col as u32, vals[k]));
        }
        if !entries.windows(2).all(|w| w[0].0 < w[1].0) {
            entries.sort_by_key(|e| e.0);
            if let Some(w) = entries.windows(2).find(|w| w[0].0 == w[1].0) {
                bail!(
                    "{}: duplicate entry at [{i}, {}] (call sum_duplicates() before save_npz)",
                    path.display(),
                    w[0].0
                );
            }
        }
        cols.clear();
        vals.clear();
        for &(c, v) in &entries {
            cols.push(c);
            vals.push(v);
        }
        on_row(i, &cols, &vals)?;
    }
    Ok(())
}
