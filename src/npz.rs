//! NumPy `.npy` / `.npz` reading and writing (the formats of `np.save`, `np.savez[_compressed]`).
//!
//! Writing streams rows straight into the zip entry, so an F×F matrix is never held twice in
//! memory. Files are written under a temporary name and renamed when complete.

use crate::atomic::AtomicFile;
use anyhow::{bail, ensure, Context, Result};
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::Path;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

/// Element data of an array read from a `.npy` file.
#[derive(Debug, Clone, PartialEq)]
pub enum NpyData {
    F16(Vec<half::f16>),
    F32(Vec<f32>),
    F64(Vec<f64>),
    I32(Vec<i32>),
    I64(Vec<i64>),
    U32(Vec<u32>),
    U64(Vec<u64>),
    U8(Vec<u8>),
    Bool(Vec<bool>),
    /// Fixed-length byte strings (`|S{n}`), trailing NULs removed.
    Bytes(Vec<Vec<u8>>),
}

/// A C-ordered n-dimensional array read from a `.npy` file (Fortran-ordered files are
/// reordered on reading; the shape is the header's).
#[derive(Debug, Clone, PartialEq)]
pub struct NpyArray {
    pub shape: Vec<usize>,
    pub data: NpyData,
}

impl NpyArray {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// True when the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The elements converted to `f32` (integers and doubles are cast).
    pub fn to_f32(&self) -> Vec<f32> {
        match &self.data {
            NpyData::F16(v) => v.iter().map(|x| x.to_f32()).collect(),
            NpyData::F32(v) => v.clone(),
            NpyData::F64(v) => v.iter().map(|&x| x as f32).collect(),
            NpyData::I32(v) => v.iter().map(|&x| x as f32).collect(),
            NpyData::I64(v) => v.iter().map(|&x| x as f32).collect(),
            NpyData::U32(v) => v.iter().map(|&x| x as f32).collect(),
            NpyData::U64(v) => v.iter().map(|&x| x as f32).collect(),
            NpyData::U8(v) => v.iter().map(|&x| x as f32).collect(),
            NpyData::Bool(v) => v.iter().map(|&x| x as u8 as f32).collect(),
            NpyData::Bytes(_) => Vec::new(),
        }
    }
}

/// An element type that can be written to `.npy`.
pub trait NpyElement: Copy {
    /// The numpy dtype string, e.g. `<f4`.
    const DESCR: &'static str;
    /// Appends the little-endian bytes of `values` to `out`.
    fn extend_le(values: &[Self], out: &mut Vec<u8>);
}

macro_rules! npy_element {
    ($t:ty, $descr:literal) => {
        impl NpyElement for $t {
            const DESCR: &'static str = $descr;
            fn extend_le(values: &[Self], out: &mut Vec<u8>) {
                out.reserve(values.len() * std::mem::size_of::<$t>());
                for v in values {
                    out.extend_from_slice(&v.to_le_bytes());
                }
            }
        }
    };
}
npy_element!(f32, "<f4");
npy_element!(f64, "<f8");
npy_element!(i32, "<i4");
npy_element!(i64, "<i8");
npy_element!(u32, "<u4");
npy_element!(u64, "<u8");
npy_element!(u8, "|u1");

/// The `.npy` version 1.0 header for a C-ordered array of `descr` and `shape`.
pub fn npy_header(descr: &str, shape: &[usize]) -> Vec<u8> {
    let shape_txt = match shape {
        [] => "()".to_string(),
        [n] => format!("({n},)"),
        dims => format!(
            "({})",
            dims.iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut dict =
        format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_txt}, }}");
    // magic (6) + version (2) + length (2) + dict + '\n' must be a multiple of 64.
    let unpadded = 10 + dict.len() + 1;
    dict.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    dict.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out
}

/// Writes the arrays of one `.npz` file, each under its own key.
pub struct NpzWriter {
    zip: ZipWriter<BufWriter<File>>,
    guard: AtomicFile,
    options: SimpleFileOptions,
}

impl NpzWriter {
    /// Starts `path` (written under a temporary name until [`NpzWriter::finish`]).
    /// `compressed` gives `np.savez_compressed` files (deflate), else `np.savez` (stored).
    pub fn create(path: &Path, compressed: bool) -> Result<Self> {
        let (guard, writer) = AtomicFile::create(path)?;
        let options = if compressed {
            SimpleFileOptions::default()
                .compression_method(CompressionMethod::Deflated)
                .compression_level(Some(1))
        } else {
            SimpleFileOptions::default().compression_method(CompressionMethod::Stored)
        };
        Ok(Self {
            zip: ZipWriter::new(writer),
            guard,
            options,
        })
    }

    fn start_entry(&mut self, name: &str, descr: &str, shape: &[usize], elem: usize) -> Result<()> {
        let bytes = shape.iter().product::<usize>() as u64 * elem as u64;
        let options = self.options.large_file(bytes >= u32::MAX as u64 / 2);
        self.zip.start_file(format!("{name}.npy"), options)?;
        self.zip.write_all(&npy_header(descr, shape))?;
        Ok(())
    }

    /// Adds a whole array.
    pub fn add_array<T: NpyElement>(
        &mut self,
        name: &str,
        shape: &[usize],
        data: &[T],
    ) -> Result<()> {
        ensure!(
            shape.iter().product::<usize>() == data.len(),
            "array {name}: shape {shape:?} does not match {} elements",
            data.len()
        );
        self.start_entry(name, T::DESCR, shape, std::mem::size_of::<T>())?;
        let mut buf = Vec::new();
        for chunk in data.chunks(1 << 18) {
            buf.clear();
            T::extend_le(chunk, &mut buf);
            self.zip.write_all(&buf)?;
        }
        Ok(())
    }

    /// Adds a 2-D float32 array produced one row at a time by `fill_row(row_index, row)`.
    pub fn add_f32_rows(
        &mut self,
        name: &str,
        rows: usize,
        cols: usize,
        mut fill_row: impl FnMut(usize, &mut [f32]),
    ) -> Result<()> {
        self.start_entry(name, "<f4", &[rows, cols], 4)?;
        let mut row = vec![0f32; cols];
        let mut buf = Vec::with_capacity(cols * 4);
        for i in 0..rows {
            fill_row(i, &mut row);
            buf.clear();
            f32::extend_le(&row, &mut buf);
            self.zip.write_all(&buf)?;
        }
        Ok(())
    }

    /// Adds a 0-d byte-string array (numpy dtype `|S{len}`), e.g. scipy's `format` = b'csr'.
    pub fn add_bytes_scalar(&mut self, name: &str, bytes: &[u8]) -> Result<()> {
        self.start_entry(name, &format!("|S{}", bytes.len().max(1)), &[], 1)?;
        self.zip.write_all(bytes)?;
        if bytes.is_empty() {
            self.zip.write_all(&[0])?;
        }
        Ok(())
    }

    /// Finishes the archive and renames it to its final name.
    pub fn finish(self) -> Result<()> {
        let writer = self.zip.finish()?;
        self.guard.commit(writer)
    }
}

/// Writes a single float32 array as `np.savez_compressed(path, a)` does (key `arr_0`).
pub fn save_f32_compressed(path: &Path, shape: &[usize], data: &[f32]) -> Result<()> {
    let mut w = NpzWriter::create(path, true)?;
    w.add_array("arr_0", shape, data)?;
    w.finish()
}

fn header_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let start = header.find(&format!("'{key}'"))? + key.len() + 2;
    let rest = header[start..].trim_start().strip_prefix(':')?.trim_start();
    Some(rest)
}

/// The header of a `.npy` array: dtype string, shape, and whether the data is stored in
/// Fortran (column-major) order, as `np.save` writes a transposed array.
#[derive(Debug, Clone, PartialEq)]
pub struct NpyHeader {
    pub descr: String,
    pub shape: Vec<usize>,
    pub fortran_order: bool,
}

/// Reorders the elements of an array stored in Fortran order (first axis fastest) into C
/// order (last axis fastest); `shape` is the array's shape, as the header states it.
fn fortran_to_c<T: Clone>(data: Vec<T>, shape: &[usize]) -> Vec<T> {
    if shape.iter().filter(|&&d| d > 1).count() < 2 {
        return data; // one axis at most: both orders are the same
    }
    let mut strides = vec![1usize; shape.len()];
    for k in 1..shape.len() {
        strides[k] = strides[k - 1] * shape[k - 1];
    }
    let mut out = Vec::with_capacity(data.len());
    let mut index = vec![0usize; shape.len()];
    let mut offset = 0usize;
    for _ in 0..data.len() {
        out.push(data[offset].clone());
        for k in (0..shape.len()).rev() {
            index[k] += 1;
            offset += strides[k];
            if index[k] < shape[k] {
                break;
            }
            offset -= strides[k] * shape[k];
            index[k] = 0;
        }
    }
    out
}

/// Length of the fixed prefix (magic, version, header length) and of the header dict, from
/// the first 12 bytes (or fewer, for version 1) of a `.npy` file.
fn npy_prefix(bytes: &[u8], what: &str) -> Result<(usize, usize)> {
    ensure!(
        bytes.len() >= 10 && &bytes[..6] == b"\x93NUMPY",
        "{what} is not a .npy array (bad magic)"
    );
    match bytes[6] {
        1 => Ok((10, u16::from_le_bytes([bytes[8], bytes[9]]) as usize)),
        2 | 3 => {
            ensure!(bytes.len() >= 12, "{what}: truncated .npy header");
            let len = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize;
            Ok((12, len))
        }
        v => bail!("{what}: unsupported .npy version {v}"),
    }
}

/// Parses the header dict text (`{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }`).
fn parse_header_dict(header: &str, what: &str) -> Result<NpyHeader> {
    let descr = header_value(header, "descr")
        .and_then(|v| v.strip_prefix('\''))
        .and_then(|v| v.split('\'').next())
        .with_context(|| format!("{what}: .npy header has no 'descr'"))?;
    let fortran = header_value(header, "fortran_order")
        .with_context(|| format!("{what}: .npy header has no 'fortran_order'"))?;
    let fortran_order = if fortran.starts_with("False") {
        false
    } else if fortran.starts_with("True") {
        true
    } else {
        bail!("{what}: bad 'fortran_order' in the .npy header")
    };
    let shape_txt = header_value(header, "shape")
        .and_then(|v| v.strip_prefix('('))
        .and_then(|v| v.split(')').next())
        .with_context(|| format!("{what}: .npy header has no 'shape'"))?;
    let shape = shape_txt
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.trim_end_matches('L').parse::<usize>())
        .collect::<std::result::Result<Vec<_>, _>>()
        .with_context(|| format!("{what}: bad shape ({shape_txt})"))?;
    Ok(NpyHeader {
        descr: descr.to_string(),
        shape,
        fortran_order,
    })
}

/// Reads a `.npy` header from the start of a stream, leaving the stream at the data.
fn read_npy_header(reader: &mut impl Read, what: &str) -> Result<NpyHeader> {
    let mut prefix = [0u8; 10];
    reader
        .read_exact(&mut prefix)
        .with_context(|| format!("{what}: truncated .npy header"))?;
    let mut bytes = prefix.to_vec();
    if prefix[6] >= 2 {
        let mut more = [0u8; 2];
        reader
            .read_exact(&mut more)
            .with_context(|| format!("{what}: truncated .npy header"))?;
        bytes.extend_from_slice(&more);
    }
    let (_, len) = npy_prefix(&bytes, what)?;
    let mut dict = vec![0u8; len];
    reader
        .read_exact(&mut dict)
        .with_context(|| format!("{what}: truncated .npy header"))?;
    let text =
        std::str::from_utf8(&dict).with_context(|| format!("{what}: .npy header is not text"))?;
    parse_header_dict(text, what)
}

/// Parses the bytes of a `.npy` file; `what` names it in errors.
pub fn parse_npy(bytes: &[u8], what: &str) -> Result<NpyArray> {
    let (offset, header_len) = npy_prefix(bytes, what)?;
    ensure!(
        bytes.len() >= offset + header_len,
        "{what}: truncated .npy header"
    );
    let header = std::str::from_utf8(&bytes[offset..offset + header_len])
        .with_context(|| format!("{what}: .npy header is not text"))?;
    let NpyHeader {
        descr,
        shape,
        fortran_order,
    } = parse_header_dict(header, what)?;
    let descr = descr.as_str();
    let n: usize = shape.iter().product();
    let body = &bytes[offset + header_len..];
    let need = |size: usize| -> Result<&[u8]> {
        let len = n
            .checked_mul(size)
            .with_context(|| format!("{what}: shape {shape:?} too large"))?;
        ensure!(
            body.len() >= len,
            "{what}: truncated data ({} bytes, shape {shape:?} of {descr} needs {len})",
            body.len()
        );
        Ok(&body[..len])
    };
    macro_rules! decode {
        ($t:ty, $size:literal, $variant:ident) => {
            NpyData::$variant(
                need($size)?
                    .chunks_exact($size)
                    .map(|c| <$t>::from_le_bytes(c.try_into().unwrap()))
                    .collect(),
            )
        };
    }
    let data = match descr {
        "<f2" => NpyData::F16(
            need(2)?
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]))
                .collect(),
        ),
        "<f4" => decode!(f32, 4, F32),
        "<f8" => decode!(f64, 8, F64),
        "<i4" => decode!(i32, 4, I32),
        "<i8" => decode!(i64, 8, I64),
        "<u4" => decode!(u32, 4, U32),
        "<u8" => decode!(u64, 8, U64),
        "|u1" => NpyData::U8(need(1)?.to_vec()),
        "|b1" => NpyData::Bool(need(1)?.iter().map(|&b| b != 0).collect()),
        s if s.starts_with("|S") => {
            let width: usize = s[2..]
                .parse()
                .with_context(|| format!("{what}: bad string dtype {s}"))?;
            NpyData::Bytes(
                need(width.max(1))?
                    .chunks_exact(width.max(1))
                    .map(|c| {
                        let end = c.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
                        c[..end].to_vec()
                    })
                    .collect(),
            )
        }
        other => bail!("{what}: unsupported dtype {other} (expected float, int or bool)"),
    };
    let data = if fortran_order {
        macro_rules! reorder {
            ($($variant:ident),*) => {
                match data {
                    $(NpyData::$variant(v) => NpyData::$variant(fortran_to_c(v, &shape)),)*
                }
            };
        }
        reorder!(F16, F32, F64, I32, I64, U32, U64, U8, Bool, Bytes)
    } else {
        data
    };
    Ok(NpyArray { shape, data })
}

fn open_npz(path: &Path) -> Result<ZipArchive<File>> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    ZipArchive::new(file)
        .with_context(|| format!("{} is not a valid .npz (zip) file", path.display()))
}

/// Reads every array of an `.npz` file, in archive order, keyed without the `.npy` suffix.
pub fn read_npz(path: &Path) -> Result<Vec<(String, NpyArray)>> {
    let mut zip = open_npz(path)?;
    let mut out = Vec::new();
    for i in 0..zip.len() {
        let mut entry = zip
            .by_index(i)
            .with_context(|| format!("{}: cannot read zip entry {i}", path.display()))?;
        let key = entry
            .name()
            .with_context(|| format!("{}: zip entry {i} has a bad name", path.display()))?
            .trim_end_matches(".npy")
            .to_string();
        let mut bytes = Vec::new();
        entry
            .read_to_end(&mut bytes)
            .with_context(|| format!("{}: corrupt entry {key}", path.display()))?;
        out.push((
            key.clone(),
            parse_npy(&bytes, &format!("{} [{key}]", path.display()))?,
        ));
    }
    Ok(out)
}

/// Reads the array stored under `key` in an `.npz` file.
pub fn read_npz_array(path: &Path, key: &str) -> Result<NpyArray> {
    let mut zip = open_npz(path)?;
    let names: Vec<String> = zip
        .file_names()
        .filter_map(|n| n.ok().map(|n| n.trim_end_matches(".npy").to_string()))
        .collect();
    let mut entry = zip.by_name(&format!("{key}.npy")).with_context(|| {
        format!(
            "{} has no array '{key}' (it has: {})",
            path.display(),
            names.join(", ")
        )
    })?;
    let mut bytes = Vec::new();
    entry
        .read_to_end(&mut bytes)
        .with_context(|| format!("{}: corrupt entry {key}", path.display()))?;
    parse_npy(&bytes, &format!("{} [{key}]", path.display()))
}

/// The shape of the array stored under `key`, from its header alone; None if there is none.
pub fn array_shape(path: &Path, key: &str) -> Result<Option<Vec<usize>>> {
    let mut zip = open_npz(path)?;
    let Some(index) = zip.index_for_name(&format!("{key}.npy")) else {
        return Ok(None);
    };
    let mut entry = zip
        .by_index(index)
        .with_context(|| format!("{}: cannot read entry {key}", path.display()))?;
    let header = read_npy_header(&mut entry, &format!("{} [{key}]", path.display()))?;
    Ok(Some(header.shape))
}

/// Decodes little-endian floats of dtype `descr` into `out` (which sets the count).
fn decode_floats(descr: &str, bytes: &[u8], out: &mut [f32]) {
    match descr {
        "<f4" => {
            for (o, c) in out.iter_mut().zip(bytes.chunks_exact(4)) {
                *o = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            }
        }
        "<f8" => {
            for (o, c) in out.iter_mut().zip(bytes.chunks_exact(8)) {
                *o = f64::from_le_bytes(c.try_into().unwrap()) as f32;
            }
        }
        _ => {
            for (o, c) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                *o = half::f16::from_le_bytes([c[0], c[1]]).to_f32();
            }
        }
    }
}

/// Streams a 2-D float array (`<f4`, `<f8` or `<f2`) out of an `.npz` one row at a time, so an
/// F×F matrix is never held whole (except a Fortran-ordered one, which is read whole). `key` None takes the first array (as the original's
/// loaders do). `check_shape` sees the shape before any row; `on_row(i, row)` gets each row
/// as f32. Returns the shape.
pub fn read_f32_rows(
    path: &Path,
    key: Option<&str>,
    check_shape: impl FnOnce(&[usize]) -> Result<()>,
    mut on_row: impl FnMut(usize, &[f32]) -> Result<()>,
) -> Result<Vec<usize>> {
    let mut zip = open_npz(path)?;
    let index = match key {
        Some(k) => zip
            .index_for_name(&format!("{k}.npy"))
            .with_context(|| format!("{} has no array '{k}'", path.display()))?,
        None => {
            ensure!(!zip.is_empty(), "{} holds no arrays", path.display());
            0
        }
    };
    let mut entry = zip
        .by_index(index)
        .with_context(|| format!("{}: cannot read zip entry {index}", path.display()))?;
    let what = format!(
        "{} [{}]",
        path.display(),
        entry
            .name()
            .map(|n| n.trim_end_matches(".npy").to_string())
            .unwrap_or_default()
    );
    let header = read_npy_header(&mut entry, &what)?;
    let elem = match header.descr.as_str() {
        "<f4" => 4,
        "<f8" => 8,
        "<f2" => 2,
        other => bail!("{what}: dtype {other} is not a float matrix"),
    };
    ensure!(
        header.shape.len() == 2,
        "{what}: expected a 2-D matrix, found shape {:?}",
        header.shape
    );
    check_shape(&header.shape)?;
    let (rows, cols) = (header.shape[0], header.shape[1]);
    let declared = (rows as u128) * (cols as u128) * elem as u128;
    ensure!(
        declared <= entry.size() as u128,
        "{what}: truncated data (shape {:?} needs {declared} bytes, the entry has {})",
        header.shape,
        entry.size()
    );
    if header.fortran_order && rows > 1 && cols > 1 {
        // Column-major data: read it whole, then hand out the rows.
        let mut bytes = vec![0u8; rows * cols * elem];
        entry
            .read_exact(&mut bytes)
            .with_context(|| format!("{what}: truncated data"))?;
        let mut columns = vec![0f32; rows * cols];
        decode_floats(&header.descr, &bytes, &mut columns);
        drop(bytes);
        let mut row = vec![0f32; cols];
        for i in 0..rows {
            for (j, v) in row.iter_mut().enumerate() {
                *v = columns[j * rows + i];
            }
            on_row(i, &row)?;
        }
        return Ok(header.shape);
    }
    let mut bytes = vec![0u8; cols * elem];
    let mut row = vec![0f32; cols];
    for i in 0..rows {
        entry.read_exact(&mut bytes).with_context(|| {
            format!("{what}: truncated data (row {i} of {rows} could not be read)")
        })?;
        decode_floats(&header.descr, &bytes, &mut row);
        on_row(i, &row)?;
    }
    Ok(header.shape)
}

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
                w.zip.write_all(&buf)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A `.npy` file with a hand-written header (`fortran_order` as given) and raw data.
    fn npy_bytes(descr: &str, fortran: bool, shape: &str, data: &[u8]) -> Vec<u8> {
        let order = if fortran { "True" } else { "False" };
        let mut dict =
            format!("{{'descr': '{descr}', 'fortran_order': {order}, 'shape': {shape}, }}");
        dict.push_str(&" ".repeat((64 - (10 + dict.len() + 1) % 64) % 64));
        dict.push('\n');
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
        out.extend_from_slice(dict.as_bytes());
        out.extend_from_slice(data);
        out
    }

    #[test]
    fn fortran_ordered_arrays_are_read_in_c_order() {
        // [[1, 2, 3], [4, 5, 6]] stored column by column, as np.save writes `a.T` of a 3×2.
        let mut data = Vec::new();
        f32::extend_le(&[1.0, 4.0, 2.0, 5.0, 3.0, 6.0], &mut data);
        let a = parse_npy(&npy_bytes("<f4", true, "(2, 3)", &data), "t").unwrap();
        assert_eq!(a.shape, vec![2, 3]);
        assert_eq!(a.data, NpyData::F32(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]));
        // The same bytes in C order are taken as they are.
        let c = parse_npy(&npy_bytes("<f4", false, "(2, 3)", &data), "t").unwrap();
        assert_eq!(c.data, NpyData::F32(vec![1.0, 4.0, 2.0, 5.0, 3.0, 6.0]));
        // Three axes, an integer dtype: element [i, j, k] sits at i + 2j + 6k.
        let shape = [2usize, 3, 4];
        let mut stored = vec![0i64; 24];
        for i in 0..2 {
            for j in 0..3 {
                for k in 0..4 {
                    stored[i + 2 * j + 6 * k] = (100 * i + 10 * j + k) as i64;
                }
            }
        }
        let mut data = Vec::new();
        i64::extend_le(&stored, &mut data);
        let a = parse_npy(&npy_bytes("<i8", true, "(2, 3, 4)", &data), "t").unwrap();
        assert_eq!(a.shape, shape);
        let want: Vec<i64> = (0..2)
            .flat_map(|i| (0..3).flat_map(move |j| (0..4).map(move |k| 100 * i + 10 * j + k)))
            .collect();
        assert_eq!(a.data, NpyData::I64(want));
        // Byte strings and a 1-D array (the same in either order).
        let a = parse_npy(&npy_bytes("|S1", true, "(2, 2)", b"acbd"), "t").unwrap();
        assert_eq!(
            a.data,
            NpyData::Bytes(vec![
                b"a".to_vec(),
                b"b".to_vec(),
                b"c".to_vec(),
                b"d".to_vec()
            ])
        );
        let a = parse_npy(&npy_bytes("|u1", true, "(3,)", &[7, 8, 9]), "t").unwrap();
        assert_eq!(a.data, NpyData::U8(vec![7, 8, 9]));
    }

    #[test]
    fn fortran_ordered_matrices_stream_row_by_row() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.npz");
        let mut w = NpzWriter::create(&path, true).unwrap();
        let mut data = Vec::new();
        f64::extend_le(&[1.0, 4.0, 2.0, 5.0, 3.0, 6.0], &mut data);
        w.zip.start_file("arr_0.npy", w.options).unwrap();
        w.zip
            .write_all(&npy_bytes("<f8", true, "(2, 3)", &data))
            .unwrap();
        w.finish().unwrap();
        let mut rows = Vec::new();
        let shape = read_f32_rows(
            &path,
            None,
            |_| Ok(()),
            |i, r| {
                rows.push((i, r.to_vec()));
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(shape, vec![2, 3]);
        assert_eq!(
            rows,
            vec![(0, vec![1.0, 2.0, 3.0]), (1, vec![4.0, 5.0, 6.0])]
        );
        assert_eq!(
            read_npz_array(&path, "arr_0").unwrap().data,
            NpyData::F64(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
        );
        assert_eq!(array_shape(&path, "arr_0").unwrap(), Some(vec![2, 3]));
    }

    #[test]
    fn header_is_aligned_and_parsable() {
        for shape in [vec![], vec![3], vec![2, 5], vec![1000, 1000, 7]] {
            let h = npy_header("<f4", &shape);
            assert_eq!(h.len() % 64, 0);
            let n: usize = shape.iter().product();
            let mut bytes = h.clone();
            f32::extend_le(&vec![1.5f32; n], &mut bytes);
            let a = parse_npy(&bytes, "t").unwrap();
            assert_eq!(a.shape, shape);
            assert_eq!(a.data, NpyData::F32(vec![1.5; n]));
        }
    }

    #[test]
    fn npz_round_trip_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.npz");
        let mut w = NpzWriter::create(&path, true).unwrap();
        w.add_f32_rows("m", 3, 2, |i, row| {
            row[0] = i as f32;
            row[1] = -(i as f32);
        })
        .unwrap();
        w.add_array("v", &[2], &[7i64, -8]).unwrap();
        w.finish().unwrap();
        let all = read_npz(&path).unwrap();
        assert_eq!(all[0].0, "m");
        assert_eq!(all[0].1.data, NpyData::F32(vec![0., -0., 1., -1., 2., -2.]));
        assert_eq!(
            read_npz_array(&path, "v").unwrap().data,
            NpyData::I64(vec![7, -8])
        );
        let err = read_npz_array(&path, "nope").unwrap_err().to_string();
        let csr = dir.path().join("csr.npz");
        save_csr(&csr, 3, &[(0, 2, 0.5), (2, 0, 0.25), (2, 1, 1.0)]).unwrap();
        assert!(is_sparse_npz(&csr).unwrap() && !is_sparse_npz(&path).unwrap());
        let mut rows = Vec::new();
        read_csr_rows(
            &csr,
            |r, c| {
                ensure!((r, c) == (3, 3));
                Ok(())
            },
            |i, cols, vals| {
                rows.push((i, cols.to_vec(), vals.to_vec()));
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(
            rows,
            [
                (0, vec![2], vec![0.5]),
                (1, vec![], vec![]),
                (2, vec![0, 1], vec![0.25, 1.0])
            ]
        );
        assert_eq!(
            read_npz_array(&csr, "format").unwrap().data,
            NpyData::Bytes(vec![b"csr".to_vec()])
        );
        assert!(
            err.contains("no array 'nope'") && err.contains("m, v"),
            "{err}"
        );

        // Truncated data inside a well-formed zip.
        let mut bytes = npy_header("<f4", &[4]);
        bytes.extend_from_slice(&[0u8; 7]);
        let err = parse_npy(&bytes, "x").unwrap_err().to_string();
        assert!(err.contains("truncated"), "{err}");

        // Rows stream out of the archive without loading it whole.
        let mut rows = Vec::new();
        let shape = read_f32_rows(
            &path,
            None,
            |s| {
                ensure!(s == [3, 2]);
                Ok(())
            },
            |i, row| {
                rows.push((i, row.to_vec()));
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(shape, vec![3, 2]);
        assert_eq!(rows[2], (2, vec![2.0, -2.0]));
        let err = read_f32_rows(&path, Some("v"), |_| Ok(()), |_, _| Ok(()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a float matrix"), "{err}");

        // A file that is not a zip at all.
        std::fs::write(&path, b"not a zip").unwrap();
        let err = format!("{:#}", read_npz(&path).unwrap_err());
        assert!(err.contains("not a valid .npz"), "{err}");
    }
}
