//! Write-to-temporary-then-rename, so an interrupted run never leaves a file that looks complete.

use anyhow::{Context, Result};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// A file being written under a temporary name next to its final path.
///
/// [`AtomicFile::create`] hands out the writer; [`AtomicFile::commit`] takes it back, flushes,
/// syncs and renames the file into place. Dropping an uncommitted `AtomicFile` removes the
/// temporary file.
pub struct AtomicFile {
    final_path: PathBuf,
    temp_path: PathBuf,
    committed: bool,
}

impl AtomicFile {
    /// Creates the temporary file (and the parent directories) and returns its writer.
    pub fn create(path: &Path) -> Result<(Self, BufWriter<File>)> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create directory {}", parent.display()))?;
        }
        let name = path
            .file_name()
            .with_context(|| format!("{} is not a file path", path.display()))?
            .to_string_lossy();
        let temp_path = path.with_file_name(format!(".{name}.partial-{}", std::process::id()));
        let file = File::create(&temp_path)
            .with_context(|| format!("cannot create {}", temp_path.display()))?;
        let guard = Self {
            final_path: path.to_path_buf(),
            temp_path,
            committed: false,
        };
        Ok((guard, BufWriter::with_capacity(1 << 20, file)))
    }

    /// Flushes and syncs `writer`, then renames the temporary file to its final name.
    pub fn commit(self, writer: BufWriter<File>) -> Result<()> {
        self.finish(writer, true)
    }

    fn finish(mut self, writer: BufWriter<File>, sync: bool) -> Result<()> {
        let file = writer
            .into_inner()
            .map_err(|e| e.into_error())
            .with_context(|| format!("cannot write {}", self.temp_path.display()))?;
        if sync {
            file.sync_all()
                .with_context(|| format!("cannot sync {}", self.temp_path.display()))?;
        }
        std::fs::rename(&self.temp_path, &self.final_path).with_context(|| {
            format!(
                "cannot rename {} to {}",
                self.temp_path.display(),
                self.final_path.display()
            )
        })?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.temp_path);
        }
    }
}

/// Writes a small file atomically: complete or absent if the process dies. It is not synced
/// to disk (many small outputs, e.g. one GraphML per subgraph, would wait on every fsync).
pub fn write_bytes(path: &Path, bytes: &[u8]) -> Result<()> {
    let (file, mut writer) = AtomicFile::create(path)?;
    writer
        .write_all(bytes)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.finish(writer, false)
}

/// Creates `dir` if needed and checks that files can be created in it, so an output folder
/// that cannot be written fails before the work that would fill it.
pub fn ensure_writable_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create output folder {}", dir.display()))?;
    let probe = dir.join(format!(".saecooc-write-test-{}", std::process::id()));
    File::create(&probe)
        .with_context(|| format!("output folder {} is not writable", dir.display()))?;
    std::fs::remove_file(&probe).with_context(|| format!("cannot remove {}", probe.display()))
}

/// Writes a file atomically and syncs it to disk before it takes its name.
pub fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let (file, mut writer) = AtomicFile::create(path)?;
    writer
        .write_all(bytes)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.commit(writer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uncommitted_file_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.bin");
        {
            let (_file, mut w) = AtomicFile::create(&path).unwrap();
            w.write_all(b"half").unwrap();
        }
        assert!(!path.exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        write_bytes(&path, b"whole").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"whole");
    }
}
