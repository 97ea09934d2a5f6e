//! `.parquet` files, one document per cell of a text column, read a row group at a time.
//! A hub file not in the cache is read in ranges: its footer first, then the text column of
//! one row group at a time (see `remote`).

use super::open_file;
use super::pieces::{block_end, Cutter, PieceSizes};
use super::remote::Shard;
use anyhow::{bail, ensure, Context, Result};
use parquet::basic::{ConvertedType, LogicalType, Type as PhysicalType};
use parquet::column::reader::ColumnReader;
use parquet::data_type::ByteArray;
use parquet::errors::ParquetError;
use parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};
use parquet::file::properties::ReaderProperties;
use parquet::file::reader::RowGroupReader;
use parquet::file::serialized_reader::SerializedRowGroupReader;
use parquet::schema::types::ColumnDescriptor;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Bytes at the end of a parquet file: the footer's length (4 bytes) and `PAR1`.
const TAIL: u64 = 8;

/// The text column of a parquet file, one row group at a time (a cell is held whole while it
/// is cut into pieces).
pub(super) struct ParquetRows {
    /// The file read: a local file, or the partial file of `shard`.
    path: PathBuf,
    /// The file, for messages.
    label: String,
    /// The hub file read in ranges, if it is one.
    shard: Option<Shard>,
    field: String,
    metadata: ParquetMetaData,
    /// The leaf column of `field`, when it is a text column.
    text_column: Option<usize>,
    /// The next row group to read.
    group: usize,
    /// The text column of the row group being read (a missing value is empty).
    column: Option<Vec<String>>,
    row: usize,
    /// Bytes of the current cell handed to the cutter.
    pos: usize,
    block: usize,
    pub(super) cutter: Cutter,
}

impl ParquetRows {
    pub(super) fn open(path: &Path, field: &str, sizes: PieceSizes) -> Result<Self> {
        Self::read_footer(path, path.display().to_string(), None, field, sizes)
    }

    /// The rows of a hub file read in ranges: its footer is fetched now, each row group's text
    /// column when it is read; at the end the file goes into the cache.
    pub(super) fn open_remote(mut shard: Shard, field: &str, sizes: PieceSizes) -> Result<Self> {
        let size = shard.size();
        let label = shard.label();
        ensure!(
            size >= 2 * TAIL,
            "{label} is too short to be a parquet file"
        );
        shard.ensure(size - TAIL, size)?;
        let mut tail = [0u8; TAIL as usize];
        shard.read_at(&mut tail, size - TAIL)?;
        let footer = u64::from(u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]));
        ensure!(
            &tail[4..] == b"PAR1" && footer + TAIL <= size,
            "{label} is not a parquet file (no PAR1 footer)"
        );
        shard.ensure(size - TAIL - footer, size)?;
        // The magic number at the start, which readers may check.
        shard.ensure(0, 4)?;
        let path = shard.path().to_path_buf();
        Self::read_footer(&path, label, Some(shard), field, sizes)
    }

    fn read_footer(
        path: &Path,
        label: String,
        shard: Option<Shard>,
        field: &str,
        sizes: PieceSizes,
    ) -> Result<Self> {
        let metadata = ParquetMetaDataReader::new()
            .parse_and_finish(&open_file(path)?)
            .map_err(|e| anyhow::anyhow!("cannot read parquet file {label}: {e}"))?;
        let schema = metadata.file_metadata().schema_descr();
        let names: Vec<&str> = schema
            .root_schema()
            .get_fields()
            .iter()
            .map(|f| f.name())
            .collect();
        if !names.contains(&field) {
            bail!(
                "{label} has no column '{field}' (columns: {})",
                names.join(", ")
            );
        }
        let text_column = schema.columns().iter().position(|c| is_text(c, field));
        Ok(Self {
            path: path.to_path_buf(),
            label,
            shard,
            field: field.to_string(),
            metadata,
            text_column,
            group: 0,
            column: None,
            row: 0,
            pos: 0,
            block: sizes.block,
            cutter: Cutter::new(sizes),
        })
    }

    /// Hands the cutter the next block of the current cell, reading the next row group when
    /// needed; false at the end of the file.
    pub(super) fn feed(&mut self) -> Result<bool> {
        let Some(column) = &self.column else {
            if self.group == self.metadata.num_row_groups() {
                if let Some(shard) = &mut self.shard {
                    shard.finish()?;
                }
                return Ok(false);
            }
            self.column = Some(self.read_group()?);
            (self.group, self.row, self.pos) = (self.group + 1, 0, 0);
            return Ok(true);
        };
        let Some(cell) = column.get(self.row) else {
            self.column = None;
            return Ok(true);
        };
        let end = block_end(cell, self.pos, self.block);
        self.cutter.push_text(&cell[self.pos..end]);
        self.pos = end;
        if end == cell.len() {
            self.cutter.end_document();
            (self.row, self.pos) = (self.row + 1, 0);
        }
        Ok(true)
    }

    /// The text column of the next row group, read alone (only its column chunk is read).
    fn read_group(&mut self) -> Result<Vec<String>> {
        let Some(index) = self.text_column else {
            bail!(
                "{}: column '{}' is not a text column",
                self.label,
                self.field
            );
        };
        let group = self.metadata.row_group(self.group);
        if let Some(shard) = &mut self.shard {
            let (start, length) = group.column(index).byte_range();
            shard.ensure(start, start + length).with_context(|| {
                format!("cannot read row group {} of {}", self.group, self.label)
            })?;
        }
        let cannot =
            |e: ParquetError| anyhow::anyhow!("cannot read parquet file {}: {e}", self.label);
        let file = Arc::new(open_file(&self.path)?);
        let properties = Arc::new(ReaderProperties::builder().build());
        let reader =
            SerializedRowGroupReader::new(file, group, None, properties).map_err(cannot)?;
        let ColumnReader::ByteArrayColumnReader(mut column) =
            reader.get_column_reader(index).map_err(cannot)?
        else {
            bail!(
                "{}: column '{}' is not a text column",
                self.label,
                self.field
            );
        };
        // Not reserved up front: the count comes from the file.
        let rows = usize::try_from(group.num_rows()).unwrap_or(0);
        let (mut levels, mut values) = (Vec::new(), Vec::new());
        column
            .read_records(rows, Some(&mut levels), None, &mut values)
            .map_err(cannot)?;
        let texts = values.into_iter().map(|v: ByteArray| {
            String::from_utf8(v.data().to_vec()).with_context(|| {
                format!(
                    "{}: column '{}' holds text that is not UTF-8",
                    self.label, self.field
                )
            })
        });
        let defined = group.column(index).column_descr().max_def_level();
        with_missing_values(&levels, defined, texts)
    }
}

/// Whether `column` is the top-level text column `field` (UTF-8 byte arrays, not repeated).
fn is_text(column: &ColumnDescriptor, field: &str) -> bool {
    let utf8 = matches!(column.logical_type_ref(), Some(LogicalType::String))
        || column.converted_type() == ConvertedType::UTF8;
    column.path().parts() == [field]
        && column.max_rep_level() == 0
        && column.physical_type() == PhysicalType::BYTE_ARRAY
        && utf8
}

/// The cells of a column: the next of `texts` where a value is defined (its definition level
/// is `defined`; `levels` is empty when every value is), an empty text where it is missing.
fn with_missing_values(
    levels: &[i16],
    defined: i16,
    mut texts: impl Iterator<Item = Result<String>>,
) -> Result<Vec<String>> {
    if levels.is_empty() {
        return texts.collect();
    }
    let mut cell = |level: i16| match level == defined {
        true => texts.next().unwrap_or_else(|| Ok(String::new())),
        false => Ok(String::new()),
    };
    levels.iter().map(|&level| cell(level)).collect()
}

#[cfg(test)]
mod tests {
    //! The files in testdata/ were written by polars 0.55 (the reader saecooc used before):
    //! `id` (0..50) and `text` (`doc {i}: ` and `wörd ` 3i times, missing where i % 7 == 3),
    //! 7 rows per row group, in each codec; and a float, a binary, an all-missing and an
    //! empty `text` column.
    use super::*;
    use crate::data::read_documents;
    use crate::data::tests::{read_with, tiny};

    fn testdata(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(format!("src/data/testdata/polars-{name}.parquet"))
    }

    fn expected() -> Vec<String> {
        (0..50)
            .map(|i| match i % 7 {
                3 => String::new(),
                _ => format!("doc {i}: {}", "wörd ".repeat(i * 3)),
            })
            .collect()
    }

    #[test]
    fn every_codec_reads_the_text_column() {
        for codec in ["snappy", "gzip", "lz4", "brotli", "zstd"] {
            assert_eq!(
                read_documents(&testdata(codec), "text").unwrap(),
                expected(),
                "{codec}"
            );
        }
    }

    #[test]
    fn parquet_files_are_read_a_row_group_at_a_time() {
        let path = testdata("zstd");
        let rows = ParquetRows::open(&path, "text", tiny(5)).unwrap();
        assert_eq!(rows.metadata.num_row_groups(), 7);
        assert_eq!(read_with(&path, tiny(5)).unwrap(), expected());
    }

    #[test]
    fn missing_and_empty_columns_read_as_empty_documents() {
        assert_eq!(
            read_documents(&testdata("allnull"), "text").unwrap(),
            ["", ""]
        );
        assert!(read_documents(&testdata("empty"), "text")
            .unwrap()
            .is_empty());
    }

    #[test]
    fn other_columns_are_refused_by_name() {
        let err = |name: &str, field: &str| {
            format!("{:#}", read_documents(&testdata(name), field).unwrap_err())
        };
        let missing = err("zstd", "content");
        assert!(
            missing.contains("no column 'content'") && missing.contains("(columns: id, text)"),
            "{missing}"
        );
        for (name, field) in [("zstd", "id"), ("float", "text"), ("binary", "text")] {
            let e = err(name, field);
            assert!(
                e.ends_with(&format!("column '{field}' is not a text column")),
                "{e}"
            );
        }
    }

    #[test]
    fn damaged_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let good = std::fs::read(testdata("zstd")).unwrap();
        let mut flipped = good.clone();
        flipped[200..400].iter_mut().for_each(|b| *b ^= 0x5a);
        for (name, bytes) in [
            ("garbage", b"hello world, not parquet".to_vec()),
            ("zero", Vec::new()),
            ("truncated", good[..good.len() / 2].to_vec()),
            ("flipped", flipped),
        ] {
            let path = dir.path().join(format!("{name}.parquet"));
            std::fs::write(&path, bytes).unwrap();
            let e = format!("{:#}", read_documents(&path, "text").unwrap_err());
            assert!(e.starts_with("cannot read parquet file"), "{name}: {e}");
        }
    }
}
