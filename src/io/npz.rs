//! `.npz` archives (`np.savez[_compressed]`): reading whole arrays or streaming rows, and
//! writing rows straight into the zip entry, so an F×F matrix is never held twice in memory.
//! Files are written under a temporary name and renamed when complete.

use super::atomic::AtomicFile;
use super::npy::{decode_floats, npy_header, parse_npy, read_npy_header, NpyArray, NpyElement};
use anyhow::{bail, ensure, Context, Result};
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::Path;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

/// Writes the arrays of one `.npz` file, each under its own key.
pub struct NpzWriter {
    /// `None` once finished; dropped unfinished, it is forgotten rather than finalised, so a
    /// failed write reports one error (ours, naming the file) and the temporary file goes.
    zip: Option<ZipWriter<Sink>>,
    guard: Option<AtomicFile>,
    options: SimpleFileOptions,
    path: std::path::PathBuf,
}

/// The file under the zip writer. After its first I/O error (e.g. a full disk) it accepts and
/// drops everything, keeping positions consistent, so that the zip writer, finalising itself
/// on the error path, does not print a second, unnamed error of its own; the first error
/// reaches the caller with the file named.
pub(super) struct Sink {
    inner: BufWriter<File>,
    failed: bool,
    /// The stream position and length, as the zip writer sees them.
    pos: u64,
    len: u64,
}

impl Sink {
    fn new(inner: BufWriter<File>) -> Self {
        Self {
            inner,
            failed: false,
            pos: 0,
            len: 0,
        }
    }

    fn fail(&mut self, e: std::io::Error) -> std::io::Error {
        self.failed = true;
        e
    }

    fn advance(&mut self, n: usize) -> usize {
        self.pos += n as u64;
        self.len = self.len.max(self.pos);
        n
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.failed {
            return Ok(self.advance(buf.len()));
        }
        match self.inner.write(buf) {
            Ok(n) => Ok(self.advance(n)),
            Err(e) => Err(self.fail(e)),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.failed {
            return Ok(());
        }
        self.inner.flush().map_err(|e| self.fail(e))
    }
}

impl std::io::Seek for Sink {
    fn seek(&mut self, to: std::io::SeekFrom) -> std::io::Result<u64> {
        use std::io::SeekFrom;
        if !self.failed {
            self.pos = self.inner.seek(to).map_err(|e| self.fail(e))?;
            return Ok(self.pos);
        }
        let base = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
        };
        self.pos = base.ok_or_else(|| std::io::Error::other("seek before the start"))?;
        Ok(self.pos)
    }
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
            zip: Some(ZipWriter::new(Sink::new(writer))),
            guard: Some(guard),
            options,
            path: path.to_path_buf(),
        })
    }

    /// The zip writer (present until [`NpzWriter::finish`]).
    pub(super) fn zip(&mut self) -> &mut ZipWriter<Sink> {
        self.zip
            .as_mut()
            .expect("an NpzWriter is open until finished")
    }

    /// The error context naming the file being written.
    pub(super) fn cannot_write(&self) -> String {
        format!("cannot write {}", self.path.display())
    }

    pub(super) fn start_entry(
        &mut self,
        name: &str,
        descr: &str,
        shape: &[usize],
        elem: usize,
    ) -> Result<()> {
        let bytes = shape.iter().product::<usize>() as u64 * elem as u64;
        let options = self.options.large_file(bytes >= u32::MAX as u64 / 2);
        self.zip()
            .start_file(format!("{name}.npy"), options)
            .with_context(|| self.cannot_write())?;
        self.zip()
            .write_all(&npy_header(descr, shape))
            .with_context(|| self.cannot_write())
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
            self.zip()
                .write_all(&buf)
                .with_context(|| self.cannot_write())?;
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
            self.zip()
                .write_all(&buf)
                .with_context(|| self.cannot_write())?;
        }
        Ok(())
    }

    /// Adds a 0-d byte-string array (numpy dtype `|S{len}`), e.g. scipy's `format` = b'csr'.
    pub fn add_bytes_scalar(&mut self, name: &str, bytes: &[u8]) -> Result<()> {
        self.start_entry(name, &format!("|S{}", bytes.len().max(1)), &[], 1)?;
        let padding: &[u8] = if bytes.is_empty() { &[0] } else { &[] };
        self.zip()
            .write_all(bytes)
            .and_then(|_| self.zip().write_all(padding))
            .with_context(|| self.cannot_write())
    }

    /// Finishes the archive and renames it to its final name.
    pub fn finish(mut self) -> Result<()> {
        let context = self.cannot_write();
        let zip = self.zip.take().expect("an NpzWriter is finished once");
        let sink = zip.finish().context(context.clone())?;
        ensure!(!sink.failed, "{context}: an earlier write failed");
        let guard = self.guard.take().expect("an NpzWriter is finished once");
        guard.commit(sink.inner).context(context)
    }
}

impl Drop for NpzWriter {
    fn drop(&mut self) {
        if let Some(zip) = self.zip.take() {
            std::mem::forget(zip);
        }
    }
}

/// Writes a single float32 array as `np.savez_compressed(path, a)` does (key `arr_0`).
pub fn save_f32_compressed(path: &Path, shape: &[usize], data: &[f32]) -> Result<()> {
    let mut w = NpzWriter::create(path, true)?;
    w.add_array("arr_0", shape, data)?;
    w.finish()
}

pub(crate) fn open_npz(path: &Path) -> Result<ZipArchive<File>> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    ZipArchive::new(file)
        .with_context(|| format!("{} is not a valid .npz (zip) file", path.display()))
}

/// The array name of zip entry `i` (its file name without `.npy`).
fn array_name(entry: &zip::read::ZipFile<'_, File>, i: usize, path: &Path) -> Result<String> {
    Ok(entry
        .name()
        .with_context(|| format!("{}: zip entry {i} has a bad name", path.display()))?
        .trim_end_matches(".npy")
        .to_string())
}

/// Reads every array of an `.npz` file, in archive order, keyed without the `.npy` suffix.
pub fn read_npz(path: &Path) -> Result<Vec<(String, NpyArray)>> {
    let mut zip = open_npz(path)?;
    let mut out = Vec::new();
    for i in 0..zip.len() {
        let mut entry = zip
            .by_index(i)
            .with_context(|| format!("{}: cannot read zip entry {i}", path.display()))?;
        let key = array_name(&entry, i, path)?;
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

/// The name (without `.npy`) and shape of every array of an `.npz` file, from their headers.
pub fn array_shapes(path: &Path) -> Result<Vec<(String, Vec<usize>)>> {
    let mut zip = open_npz(path)?;
    let mut out = Vec::new();
    for i in 0..zip.len() {
        let mut entry = zip
            .by_index(i)
            .with_context(|| format!("{}: cannot read zip entry {i}", path.display()))?;
        let key = array_name(&entry, i, path)?;
        let header = read_npy_header(&mut entry, &format!("{} [{key}]", path.display()))?;
        out.push((key, header.shape));
    }
    Ok(out)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::csr::*;
    use crate::io::npy::*;

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
        let options = w.options;
        w.zip().start_file("arr_0.npy", options).unwrap();
        w.zip()
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
