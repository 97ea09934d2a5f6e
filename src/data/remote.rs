//! Hub dataset files read in byte ranges as they are decoded, instead of downloaded whole
//! before the first document.
//!
//! A file that is not in the cache is fetched [`CHUNK`] bytes at a time: a sequential reader
//! (`.txt`, `.jsonl`, `.jsonl.zst`, `.jsonl.gz`) asks for a growing run of chunks ahead of
//! where it reads (up to [`MAX_AHEAD`]), a parquet reader for the footer and then, one row
//! group at a time, the chunks that hold the text column. The chunks go into a sparse file
//! beside the cache's blobs, `blobs/{etag}.saecooc-partial`, and a map of the chunks it holds,
//! `blobs/{etag}.saecooc-chunks` (one `0`/`1` byte per chunk, replaced atomically under a lock
//! on the partial file), so that the next pass over the same data (the next SAE of the run, a
//! rerun, a resumed run, a parallel `--shard`) reads them from disk. A file read to its end is
//! completed (the chunks it never needed, such as other parquet columns, are fetched), checked
//! against its etag when that is a sha256 (LFS files), and renamed to `blobs/{etag}` with its
//! `snapshots/{commit}/{name}` symlink and `refs/{revision}`: an ordinary cache entry that
//! hf-hub, huggingface_hub and an `HF_HUB_OFFLINE=1` run use. A partly read file is no cache
//! entry for those tools; saecooc records it (its etag and size, under the repo folder's
//! `.saecooc-partial/{commit}/{name}`), so that an `HF_HUB_OFFLINE=1` run reads it as far as
//! earlier runs fetched it, and stops with an error naming the file and the first byte missing
//! if it needs more.

use super::jsonl::RemoteReadError;
use crate::hub::{Hub, HubRepo, RemoteFile};
use anyhow::{Context, Result};
use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Bytes fetched and recorded at a time.
pub(super) const CHUNK: u64 = 1 << 20;

/// The most chunks one request fetches (a sequential reader's read-ahead).
pub(super) const MAX_AHEAD: u64 = 16;

/// A hub dataset file: in the cache, or to be read in ranges.
pub(super) enum Opened {
    Cached(PathBuf),
    Remote(Box<Shard>),
}

/// Opens `name` of dataset `repo` at `revision`: the cached file when there is one (no
/// request), else a [`Shard`] read in ranges. Offline, a file missing from the cache is an
/// error naming it.
pub(super) fn open(hub: &Hub, repo: &str, revision: &str, name: &str) -> Result<Opened> {
    let at = HubRepo::dataset(repo, revision);
    if let Some(path) = hub.cached(at, name) {
        return Ok(Opened::Cached(path));
    }
    let remote = hub.remote(at, name)?;
    if remote.blob_path().is_file() {
        // The same bytes were cached under another revision or file name.
        return Ok(Opened::Cached(remote.link_blob()?));
    }
    remote.record_partial()?;
    Ok(Opened::Remote(Box::new(Shard::open(remote)?)))
}

/// A hub file read in ranges into a sparse partial file (see the module doc).
pub(super) struct Shard {
    remote: RemoteFile,
    data: File,
    data_path: PathBuf,
    map_path: PathBuf,
    /// The chunks the partial file holds.
    have: Vec<bool>,
    /// Bytes this reader fetched from the hub.
    fetched: u64,
    /// The cache entry, once the file was read to its end.
    cached: Option<PathBuf>,
}

impl Shard {
    fn open(remote: RemoteFile) -> Result<Self> {
        let blob = remote.blob_path();
        let dir = blob.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create cache folder {}", dir.display()))?;
        let data_path = dir.join(format!("{}.saecooc-partial", remote.etag));
        let map_path = dir.join(format!("{}.saecooc-chunks", remote.etag));
        let data = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&data_path)
            .with_context(|| format!("cannot open {}", data_path.display()))?;
        let mut shard = Self {
            have: vec![false; chunks(remote.size)],
            remote,
            data,
            data_path,
            map_path,
            fetched: 0,
            cached: None,
        };
        shard
            .locked(|s| {
                if s.data.metadata()?.len() == s.remote.size {
                    s.have = s.read_map();
                } else {
                    // New, or left by an interrupted start: sparse, holding nothing yet.
                    s.data.set_len(s.remote.size)?;
                    s.write_map(&s.have)?;
                }
                Ok(())
            })
            .with_context(|| format!("cannot set up {}", shard.data_path.display()))?;
        note_streaming(&shard);
        Ok(shard)
    }

    /// The path of the partial file, which holds every range [`Shard::ensure`] was asked for.
    pub(super) fn path(&self) -> &Path {
        &self.data_path
    }

    /// A name for messages: `hf:{repo}/{name}`.
    pub(super) fn label(&self) -> String {
        format!("hf:{}/{}", self.remote.repo, self.remote.name)
    }

    pub(super) fn size(&self) -> u64 {
        self.remote.size
    }

    /// Makes bytes `start..end` present in the partial file, fetching the chunks it lacks
    /// (several contiguous ones with one request, at most [`MAX_AHEAD`]).
    pub(super) fn ensure(&mut self, start: u64, end: u64) -> Result<()> {
        let end = end.min(self.remote.size);
        if start >= end {
            return Ok(());
        }
        let (first, last) = ((start / CHUNK) as usize, ((end - 1) / CHUNK) as usize);
        if self.have[first..=last].iter().all(|&h| h) {
            return Ok(());
        }
        // Another process may have fetched some meanwhile.
        let on_disk = self.read_map();
        merge(&mut self.have, &on_disk);
        let mut c = first;
        while c <= last {
            if self.have[c] {
                c += 1;
                continue;
            }
            let run_end = (c..=last)
                .find(|&k| self.have[k])
                .unwrap_or(last + 1)
                .min(c + MAX_AHEAD as usize);
            self.fetch(c, run_end)?;
            c = run_end;
        }
        Ok(())
    }

    /// Fetches chunks `first..end` into the partial file and records them.
    fn fetch(&mut self, first: usize, end: usize) -> Result<()> {
        let start = first as u64 * CHUNK;
        let stop = (end as u64 * CHUNK).min(self.remote.size);
        let bytes = self.remote.read_range(start, stop - start)?;
        let written = self
            .data
            .write_all_at(&bytes, start)
            .and_then(|()| self.data.sync_data());
        written.with_context(|| format!("cannot write {}", self.data_path.display()))?;
        self.fetched += bytes.len() as u64;
        self.have[first..end].iter_mut().for_each(|h| *h = true);
        self.locked(|s| {
            let mut map = s.read_map();
            merge(&mut map, &s.have);
            Ok(s.write_map(&map)?)
        })
        .with_context(|| format!("cannot update {}", self.map_path.display()))
    }

    /// Reads into `buf` from `offset`, which [`Shard::ensure`] made present.
    pub(super) fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<usize> {
        self.data
            .read_at(buf, offset)
            .with_context(|| format!("cannot read {}", self.data_path.display()))
    }

    /// Completes the file once it was read to its end (fetching what was never needed),
    /// checks it and moves it into the cache; the cache entry's path (none offline when
    /// chunks are missing). Done once.
    pub(super) fn finish(&mut self) -> Result<Option<PathBuf>> {
        if let Some(path) = &self.cached {
            return Ok(Some(path.clone()));
        }
        if !self.remote.online() && !self.have.iter().all(|&h| h) {
            // Offline, what was never fetched stays so: the part read is all there is.
            return Ok(None);
        }
        self.ensure(0, self.remote.size)?;
        let blob = self.remote.blob_path();
        self.locked(|s| {
            if blob.is_file() {
                // Another process completed it first.
                return Ok(());
            }
            if let Err(err) = s.check_sha256() {
                // Fetched anew by the next run.
                let _ = std::fs::remove_file(&s.map_path);
                let _ = std::fs::remove_file(&s.data_path);
                return Err(err);
            }
            std::fs::rename(&s.data_path, &blob)?;
            let _ = std::fs::remove_file(&s.map_path);
            Ok(())
        })
        .with_context(|| format!("cannot store {} in the cache", self.remote.describe()))?;
        let path = self.remote.link_blob()?;
        self.remote.forget_partial();
        crate::report::warning(format_args!(
            "note: {} was read to its end ({} bytes fetched by this pass): kept in the cache \
             as {}",
            self.remote.describe(),
            self.fetched,
            path.display()
        ));
        self.cached = Some(path.clone());
        Ok(Some(path))
    }

    /// The assembled file must have the sha256 an LFS file's etag gives.
    fn check_sha256(&self) -> Result<()> {
        use sha2::{Digest, Sha256};
        let mut hasher = Sha256::new();
        let mut file = File::open(&self.data_path)?;
        let mut buf = vec![0; CHUNK as usize];
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        let sha: String = hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        self.remote.check_sha256(&sha)
    }

    /// Runs `f` holding the lock on the partial file (exclusive between processes).
    fn locked<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        self.data
            .lock()
            .with_context(|| format!("cannot lock {}", self.data_path.display()))?;
        let result = f(self);
        let _ = self.data.unlock();
        result
    }

    /// The chunk map on disk; none held when it is missing or of another length.
    fn read_map(&self) -> Vec<bool> {
        let n = self.have.len();
        match std::fs::read(&self.map_path) {
            Ok(bytes) if bytes.len() == n => bytes.iter().map(|&b| b == b'1').collect(),
            _ => vec![false; n],
        }
    }

    /// Replaces the chunk map on disk (a temporary file renamed over it).
    fn write_map(&self, map: &[bool]) -> std::io::Result<()> {
        let bytes: Vec<u8> = map.iter().map(|&h| if h { b'1' } else { b'0' }).collect();
        let tmp = self
            .map_path
            .with_extension(format!("saecooc-chunks.tmp-{}", std::process::id()));
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(&tmp, &self.map_path)
    }
}

/// Chunks of a file of `size` bytes.
fn chunks(size: u64) -> usize {
    size.div_ceil(CHUNK) as usize
}

/// Marks in `into` the chunks `from` holds.
fn merge(into: &mut [bool], from: &[bool]) {
    into.iter_mut().zip(from).for_each(|(a, &b)| *a |= b);
}

/// Says once per file and process that it is streamed, and what is kept.
fn note_streaming(shard: &Shard) {
    static NOTED: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
    let key = shard.data_path.display().to_string();
    if !NOTED.lock().map(|mut n| n.insert(key)).unwrap_or(false) {
        return;
    }
    let held = shard.have.iter().filter(|&&h| h).count();
    crate::report::warning(format_args!(
        "note: streaming {} ({} bytes) in ranges as it is read ({held} of {} chunks of {} \
         bytes already fetched); it becomes a cache entry only when read to its end: the \
         chunks of a partly read file are kept in {}, for later runs (online or with \
         HF_HUB_OFFLINE=1) that read no further",
        shard.remote.describe(),
        shard.remote.size,
        shard.have.len(),
        CHUNK,
        shard.data_path.display()
    ));
}

/// A [`Shard`] read from the start to the end, fetching ahead of the reader; at its end the
/// file goes into the cache.
pub(super) struct ShardReader {
    shard: Shard,
    pos: u64,
    /// Chunks the next fetch asks for: 1, doubled with each fetch up to [`MAX_AHEAD`].
    ahead: u64,
}

impl ShardReader {
    pub(super) fn new(shard: Shard) -> Self {
        Self {
            shard,
            pos: 0,
            ahead: 1,
        }
    }

    fn read_more(&mut self, buf: &mut [u8]) -> Result<usize> {
        let size = self.shard.size();
        if self.pos >= size {
            self.shard.finish()?;
            return Ok(0);
        }
        let chunk_end = ((self.pos / CHUNK + 1) * CHUNK).min(size);
        if !self.shard.have[(self.pos / CHUNK) as usize] {
            self.shard.ensure(self.pos, self.pos + self.ahead * CHUNK)?;
            self.ahead = (self.ahead * 2).min(MAX_AHEAD);
        }
        let n = (buf.len() as u64).min(chunk_end - self.pos) as usize;
        let got = self.shard.read_at(&mut buf[..n], self.pos)?;
        self.pos += got as u64;
        Ok(got)
    }
}

impl Read for ShardReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.read_more(buf)
            .map_err(|err| std::io::Error::other(RemoteReadError(format!("{err:#}"))))
    }
}
