//! Writing the site: `index.html` and the data files under `data/`, each a JavaScript call
//! `SAECOOC.{function}("{key}", {...});` so that the site also opens from disk (`file://`,
//! where a page cannot fetch files). The data folder is written beside the old one and swapped
//! in whole, so no file of an earlier export lingers and a failed export leaves the old site.
//! `.saecooc-site.json` lists every file of the site: an out folder whose `data/` or
//! `index.html` that manifest does not list (someone else's) is refused, never replaced, and
//! the `.data-new-{pid}`/`.data-old-{pid}` folders of killed exports are removed.

use crate::results::layout::site_files::{
    DATA, INDEX_HTML, MANIFEST, NEW_DATA_PREFIX, OLD_DATA_PREFIX,
};
use crate::results::out_folder::{files_under, OutFolder};
use anyhow::{Context, Result};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// The data folder being written; removed unless [`SiteWriter::finish`]ed.
pub(super) struct SiteWriter {
    out: PathBuf,
    folder: OutFolder,
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
    /// Starts writing a site into `out`, refused when `out` holds a `data/` or `index.html`
    /// that no earlier export wrote.
    pub fn begin(out: &Path) -> Result<Self> {
        let folder = OutFolder::open(out, MANIFEST, "export", &[NEW_DATA_PREFIX, OLD_DATA_PREFIX])?;
        folder.check_writable(&[DATA, INDEX_HTML])?;
        let staging = out.join(format!("{NEW_DATA_PREFIX}{}", std::process::id()));
        remove_dir(&staging)?;
        std::fs::create_dir_all(&staging)
            .with_context(|| format!("cannot create {}", staging.display()))?;
        Ok(Self {
            out: out.to_path_buf(),
            folder,
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

    /// Copies the file `base/src` to `data/{rel}` as it is (figures shown by the page), refusing
    /// a source reached through a symbolic link.
    pub fn copy_file(&mut self, rel: &str, base: &Path, src: &str) -> Result<()> {
        let src = crate::results::set::real_file(base, src)?;
        let path = self.staging.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        self.bytes += std::fs::copy(&src, &path)
            .with_context(|| format!("cannot copy {} to {}", src.display(), path.display()))?;
        self.files += 1;
        Ok(())
    }

    /// Swaps the new data folder in and writes `index.html`; returns its path. The manifest
    /// claims the new files before the swap and lists exactly them after.
    pub fn finish(mut self, index_html: &str) -> Result<PathBuf> {
        let mut files = files_under(&self.staging, DATA)?;
        files.push(INDEX_HTML.to_string());
        self.folder.claim(files.iter().cloned())?;
        let data = self.out.join(DATA);
        let old = self
            .out
            .join(format!("{OLD_DATA_PREFIX}{}", std::process::id()));
        if std::fs::symlink_metadata(&data).is_ok() {
            remove_dir(&old)?;
            std::fs::rename(&data, &old)
                .with_context(|| format!("cannot move the previous {} aside", data.display()))?;
        }
        std::fs::rename(&self.staging, &data)
            .with_context(|| format!("cannot move the new data into {}", data.display()))?;
        self.finished = true;
        remove_dir(&old)?;
        let html = self.out.join(INDEX_HTML);
        crate::io::atomic::write_bytes(&html, index_html.as_bytes())?;
        self.bytes += index_html.len() as u64;
        self.files += 1;
        self.folder.finish(files)?;
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
