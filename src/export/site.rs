//! Writing the site: `index.html` and the data files under `data/`, each a JavaScript call
//! `SAECOOC.{function}("{key}", {...});` so that the site also opens from disk (`file://`,
//! where a page cannot fetch files). The data folder is written beside the old one and swapped
//! in whole, so no file of an earlier export lingers and a failed export leaves the old site.

use anyhow::{Context, Result};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// The data folder being written; removed unless [`SiteWriter::finish`]ed.
pub(super) struct SiteWriter {
    out: PathBuf,
    staging: PathBuf,
    finished: bool,
    /// Bytes and files written so far.
    pub bytes: u64,
    pub files: usize,
}

fn remove_dir(path: &Path) -> Result<()> {
    match std::fs::remove_dir_all(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("cannot remove {}", path.display()))
        }
        _ => Ok(()),
    }
}

impl SiteWriter {
    /// Starts writing a site into `out`.
    pub fn begin(out: &Path) -> Result<Self> {
        crate::io::atomic::ensure_writable_dir(out)?;
        let staging = out.join(format!(".data-new-{}", std::process::id()));
        remove_dir(&staging)?;
        std::fs::create_dir_all(&staging)
            .with_context(|| format!("cannot create {}", staging.display()))?;
        Ok(Self {
            out: out.to_path_buf(),
            staging,
            finished: false,
            bytes: 0,
            files: 0,
        })
    }

    /// Writes `data/{rel}` as `SAECOOC.{function}({key}, {value});`.
    pub fn write_call<T: Serialize + ?Sized>(
        &mut self,
        rel: &str,
        function: &str,
        key: &str,
        value: &T,
    ) -> Result<()> {
        let path = self.staging.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        let body = format!(
            "SAECOOC.{function}({}, {});\n",
            serde_json::to_string(key)?,
            serde_json::to_string(value)?
        );
        std::fs::write(&path, &body).with_context(|| format!("cannot write {}", path.display()))?;
        self.bytes += body.len() as u64;
        self.files += 1;
        Ok(())
    }

    /// Copies the file `src` to `data/{rel}` as it is (figures shown by the page).
    pub fn copy_file(&mut self, rel: &str, src: &Path) -> Result<()> {
        let path = self.staging.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        self.bytes += std::fs::copy(src, &path)
            .with_context(|| format!("cannot copy {} to {}", src.display(), path.display()))?;
        self.files += 1;
        Ok(())
    }

    /// Swaps the new data folder in and writes `index.html`; returns its path.
    pub fn finish(mut self, index_html: &str) -> Result<PathBuf> {
        let data = self.out.join("data");
        let old = self.out.join(format!(".data-old-{}", std::process::id()));
        if data.exists() {
            remove_dir(&old)?;
            std::fs::rename(&data, &old)
                .with_context(|| format!("cannot move the previous {} aside", data.display()))?;
        }
        std::fs::rename(&self.staging, &data)
            .with_context(|| format!("cannot move the new data into {}", data.display()))?;
        self.finished = true;
        remove_dir(&old)?;
        let html = self.out.join("index.html");
        crate::io::atomic::write_bytes(&html, index_html.as_bytes())?;
        self.bytes += index_html.len() as u64;
        self.files += 1;
        Ok(html)
    }
}

impl Drop for SiteWriter {
    fn drop(&mut self) {
        if !self.finished {
            let _ = std::fs::remove_dir_all(&self.staging);
        }
    }
}
