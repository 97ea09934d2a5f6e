//! `.parquet` files, one document per cell of a text column, read a row group at a time.
//! A hub file not in the cache is read in ranges: its footer first, then the text column of
//! one row group at a time (see `remote`).

use super::open_file;
use super::pieces::{block_end, Cutter, PieceSizes};
use super::remote::Shard;
use anyhow::{bail, ensure, Context, Result};
use std::path::{Path, PathBuf};

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
    metadata: polars::io::parquet::metadata::FileMetadataRef,
    /// The file's metadata without row groups (one is put in to read it alone).
    base: polars::io::parquet::metadata::FileMetadata,
    /// The next row group to read.
    group: usize,
    /// The text column of the row group being read.
    column: Option<polars::prelude::StringChunked>,
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
        use polars::prelude::*;
        let cannot = |e: PolarsError| anyhow::anyhow!("cannot read parquet file {label}: {e}");
        let mut reader = ParquetReader::new(open_file(path)?);
        let schema = reader.schema().map_err(cannot)?;
        if !schema.contains(field) {
            let names: Vec<&str> = schema.iter_names().map(|s| s.as_str()).collect();
            bail!(
                "{label} has no column '{field}' (columns: {})",
                names.join(", ")
            );
        }
        let metadata = reader.get_metadata().map_err(cannot)?.clone();
        let mut base = (*metadata).clone();
        base.row_groups.clear();
        Ok(Self {
            path: path.to_path_buf(),
            label,
            shard,
            field: field.to_string(),
            metadata,
            base,
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
            if self.group == self.metadata.row_groups.len() {
                if let Some(shard) = &mut self.shard {
                    shard.finish()?;
                }
                return Ok(false);
            }
            self.column = Some(self.read_group()?);
            (self.group, self.row, self.pos) = (self.group + 1, 0, 0);
            return Ok(true);
        };
        if self.row >= column.len() {
            self.column = None;
            return Ok(true);
        }
        let cell = column.get(self.row).unwrap_or_default();
        let end = block_end(cell, self.pos, self.block);
        self.cutter.push_text(&cell[self.pos..end]);
        self.pos = end;
        if end == cell.len() {
            self.cutter.end_document();
            (self.row, self.pos) = (self.row + 1, 0);
        }
        Ok(true)
    }

    /// The text column of the next row group, read alone (polars reads the row groups a
    /// metadata lists).
    fn read_group(&mut self) -> Result<polars::prelude::StringChunked> {
        use polars::prelude::*;
        let group = self.metadata.row_groups[self.group].clone();
        if let Some(shard) = &mut self.shard {
            let ranges: Vec<std::ops::Range<u64>> = group
                .columns_under_root_iter(&self.field)
                .into_iter()
                .flatten()
                .map(|c| c.byte_range())
                .collect();
            for range in ranges {
                shard.ensure(range.start, range.end).with_context(|| {
                    format!("cannot read row group {} of {}", self.group, self.label)
                })?;
            }
        }
        let mut metadata = self.base.clone();
        metadata.num_rows = group.num_rows();
        metadata.row_groups.push(group);
        let mut reader = ParquetReader::new(open_file(&self.path)?)
            .with_columns(Some(vec![self.field.clone()]))
            .read_parallel(ParallelStrategy::None);
        reader.set_metadata(std::sync::Arc::new(metadata));
        let df = reader
            .finish()
            .map_err(|e| anyhow::anyhow!("cannot read parquet file {}: {e}", self.label))?;
        let column = df.column(&self.field).map_err(|e| anyhow::anyhow!("{e}"))?;
        column.str().cloned().map_err(|_| {
            anyhow::anyhow!(
                "{}: column '{}' is not a text column",
                self.label,
                self.field
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::read_documents;
    use crate::data::tests::{read_with, tiny};

    #[test]
    fn parquet_text_column_is_read() {
        use polars::prelude::*;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.parquet");
        let mut df = df!("id" => &[1i64, 2, 3], "text" => &["alpha beta", "", "gamma"]).unwrap();
        ParquetWriter::new(std::fs::File::create(&path).unwrap())
            .finish(&mut df)
            .unwrap();
        assert_eq!(
            read_documents(&path, "text").unwrap(),
            vec!["alpha beta", "", "gamma"]
        );
        let err = format!("{:#}", read_documents(&path, "content").unwrap_err());
        assert!(
            err.contains("no column 'content'") && err.contains("id, text"),
            "{err}"
        );
    }

    #[test]
    fn parquet_files_are_read_a_row_group_at_a_time() {
        use polars::prelude::*;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.parquet");
        let texts: Vec<Option<String>> = (0..10)
            .map(|i| (i != 4).then(|| format!("row {i}:{}", " wörd".repeat(i * 7))))
            .collect();
        let mut df = df!("text" => &texts, "n" => &(0..10i64).collect::<Vec<_>>()).unwrap();
        ParquetWriter::new(std::fs::File::create(&path).unwrap())
            .with_row_group_size(Some(3))
            .finish(&mut df)
            .unwrap();
        let rows = ParquetRows::open(&path, "text", tiny(5)).unwrap();
        assert!(rows.metadata.row_groups.len() >= 3, "row groups");
        let expected: Vec<String> = texts.into_iter().map(Option::unwrap_or_default).collect();
        assert_eq!(read_with(&path, tiny(5)).unwrap(), expected);
        let err = format!("{:#}", read_documents(&path, "n").unwrap_err());
        assert!(err.contains("not a text column"), "{err}");
    }
}
