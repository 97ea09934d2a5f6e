//! Text in, token windows out.
//!
//! Documents come from local `.txt` (one document per line), `.jsonl` (a `text` field; also
//! `.jsonl.zst` and `.jsonl.gz`, decompressed as they are read) and `.parquet` (a `text`
//! column) files, folders of them, or a Hugging Face dataset repo (its parquet files when it
//! has any, else its other text files, downloaded one at a time as they are needed; when `main`
//! has none, the parquet files of its conversion, [`PARQUET_REVISION`]). Every document is kept
//! as the source gives it, as SAELens keeps every row of a dataset: one that tokenizes to nothing adds
//! nothing, a whitespace-only one adds its whitespace tokens.
//!
//! Memory stays bounded whatever the corpus: files are read a block at a time and a long
//! document reaches the tokenizer in [`Piece`]s cut just before a space, which leaves the tokens
//! of byte-level BPE tokenizers unchanged (see docs/formats.md, "Token windows").
//!
//! Windows are deterministic, with no shuffle: each document is tokenized without special
//! tokens and the token stream is cut into windows by [`Windower`], which follows SAELens'
//! `concat_and_batch_sequences` token for token (see docs/formats.md, "Token windows").
//!
//! The submodules, one concern each: `pieces` (piece sizes and the chunking rule), `utf8`
//! (UTF-8 decoded a block at a time), `text` (the streaming `.txt` reader and
//! [`python_splitlines`]), `jsonl` (the streaming JSONL scanner, compressed files decompressed
//! into it as they are read), `parquet` (the Parquet
//! reader, a row group at a time) and `windows` ([`TokenSpec`], [`WindowTokens`],
//! [`Windower`], [`WindowStream`]). This file holds [`Documents`], the dataset-folder walk and
//! [`read_documents`].

mod jsonl;
mod parquet;
mod pieces;
mod remote;
mod text;
mod utf8;
mod windows;

pub use pieces::{Piece, PieceSizes, PieceStart};
pub use text::python_splitlines;
pub use windows::{TokenSpec, WindowStream, WindowTokens, Windower};

use crate::hub::{Hub, Location};
use anyhow::{bail, ensure, Context, Result};
use hf_hub::RepoType;
use jsonl::{Compression, JsonlReader};
use parquet::ParquetRows;
use pieces::Cutter;
use remote::{Opened, Shard, ShardReader};
use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::path::{Path, PathBuf};
use text::TxtReader;

/// One input file of a text source.
#[derive(Debug, Clone)]
enum TextFile {
    Local(PathBuf),
    Hub {
        repo: String,
        revision: String,
        name: String,
    },
}

/// A lazy stream of documents from a text source, a [`Piece`] at a time.
pub struct Documents<'h> {
    hub: &'h Hub,
    files: VecDeque<TextFile>,
    current: Option<FileReader>,
    text_field: String,
    sizes: PieceSizes,
    /// Description of the source, for messages.
    pub source: String,
}

/// The file types a text source reads, for messages.
const TEXT_FILE_TYPES: &str = ".txt, .jsonl, .jsonl.zst, .jsonl.gz or .parquet";

fn is_text_file(name: &str) -> bool {
    name.ends_with(".txt") || name.ends_with(".parquet") || Compression::of(name).is_some()
}

impl<'h> Documents<'h> {
    /// Opens a text source. `filter` keeps only folder/hub files whose path contains it.
    pub fn open(
        location: &Location,
        hub: &'h Hub,
        text_field: &str,
        filter: Option<&str>,
    ) -> Result<Self> {
        Self::open_with(location, hub, text_field, filter, PieceSizes::default())
    }

    /// [`Documents::open`] with other piece sizes.
    pub fn open_with(
        location: &Location,
        hub: &'h Hub,
        text_field: &str,
        filter: Option<&str>,
        sizes: PieceSizes,
    ) -> Result<Self> {
        let keep = |name: &str| is_text_file(name) && filter.is_none_or(|f| name.contains(f));
        let files: Vec<TextFile> = match location {
            Location::Local(path) if path.is_file() => vec![TextFile::Local(path.clone())],
            Location::Local(dir) if dir.is_dir() => collect_local(dir, &keep)?
                .into_iter()
                .map(TextFile::Local)
                .collect(),
            Location::Local(path) => bail!("dataset {} does not exist", path.display()),
            Location::Hub { repo, revision } => {
                let (revision, names) = hub_files(hub, repo, revision, &keep, filter)?;
                names
                    .into_iter()
                    .map(|name| TextFile::Hub {
                        repo: repo.clone(),
                        revision: revision.clone(),
                        name,
                    })
                    .collect()
            }
        };
        ensure!(
            !files.is_empty(),
            "dataset {} has no {TEXT_FILE_TYPES} files{}",
            location.describe(),
            matching(filter)
        );
        Ok(Self {
            hub,
            files: files.into(),
            current: None,
            text_field: text_field.to_string(),
            sizes,
            source: location.describe(),
        })
    }

    /// The local files not opened yet, in reading order (none for a hub dataset).
    pub fn local_files(&self) -> Vec<PathBuf> {
        self.files
            .iter()
            .filter_map(|f| match f {
                TextFile::Local(p) => Some(p.clone()),
                TextFile::Hub { .. } => None,
            })
            .collect()
    }

    /// The next piece of a document, or `None` at the end of the data.
    pub fn next_piece(&mut self) -> Result<Option<Piece>> {
        loop {
            if let Some(reader) = &mut self.current {
                if let Some(piece) = reader.next_piece()? {
                    return Ok(Some(piece));
                }
                self.current = None;
            }
            let Some(file) = self.files.pop_front() else {
                return Ok(None);
            };
            let path = match file {
                TextFile::Local(p) => p,
                TextFile::Hub {
                    repo,
                    revision,
                    name,
                } => match remote::open(self.hub, &repo, &revision, &name)? {
                    Opened::Cached(path) => path,
                    Opened::Remote(shard) => {
                        let reader = FileReader::open_remote(*shard, &self.text_field, self.sizes);
                        self.current = Some(reader?);
                        continue;
                    }
                },
            };
            self.current = Some(FileReader::open(&path, &self.text_field, self.sizes)?);
        }
    }
}

/// The revision on which the hub keeps a dataset's parquet conversion, which the `datasets`
/// library reads when a dataset's own files are not data files it can load (as for
/// `Skylion007/openwebtext`: a loading script and `.tar` archives on `main`).
pub const PARQUET_REVISION: &str = "refs/convert/parquet";

/// The hub dataset files to read, in path order, and the revision they are on: the files of
/// `revision` that `keep` accepts (only the parquet ones when there are any), or, when
/// `revision` is `main` and has none, the parquet files of [`PARQUET_REVISION`] that `keep`
/// accepts (only its train split when no `filter` is set and it has one).
fn hub_files(
    hub: &Hub,
    repo: &str,
    revision: &str,
    keep: &dyn Fn(&str) -> bool,
    filter: Option<&str>,
) -> Result<(String, Vec<String>)> {
    let listed = hub.list(repo, RepoType::Dataset, revision);
    if revision != "main" {
        return Ok((revision.to_string(), readable(listed?, keep)));
    }
    // Offline, `main` may be missing from the cache when only the conversion was downloaded:
    // its error is kept for when the conversion is not there either.
    let main = match listed {
        Err(err) if !hub.offline() => return Err(err),
        Ok(all) => {
            let names = readable(all.clone(), keep);
            if !names.is_empty() {
                return Ok((revision.to_string(), names));
            }
            Ok(all)
        }
        Err(err) => Err(err),
    };
    let converted = hub
        .list(repo, RepoType::Dataset, PARQUET_REVISION)
        .map(|all| readable(all, &|n: &str| n.ends_with(".parquet") && keep(n)));
    let (all, converted) = match (main, converted) {
        (main, Ok(mut names)) if !names.is_empty() => {
            let why = match main {
                Ok(_) => format!("has no {TEXT_FILE_TYPES} files{} on", matching(filter)),
                Err(_) => "(HF_HUB_OFFLINE) has no local cache of".to_string(),
            };
            let split = if filter.is_none() && names.iter().any(|n| in_train_split(n)) {
                names.retain(|n| in_train_split(n));
                " of the train split"
            } else {
                ""
            };
            crate::report::warning(format_args!(
                "note: dataset hf:{repo} {why} revision main; reading its parquet \
                 conversion, revision {PARQUET_REVISION}: {} files{split}",
                names.len()
            ));
            return Ok((PARQUET_REVISION.to_string(), names));
        }
        (Err(err), _) => return Err(err),
        (Ok(all), converted) => (all, converted),
    };
    let holds = if all.is_empty() {
        "it holds no files".to_string()
    } else {
        let mut all = all;
        all.sort();
        let shown = all.iter().take(4).cloned().collect::<Vec<_>>().join(", ");
        match all.len() {
            n if n > 4 => format!("it holds {shown} and {} more", n - 4),
            _ => format!("it holds {shown}"),
        }
    };
    let conversion = match converted {
        Ok(_) => format!("it has no parquet files{}", matching(filter)),
        Err(err) => format!("{err:#}"),
    };
    bail!(
        "dataset hf:{repo} has no {TEXT_FILE_TYPES} files{} on revision main ({holds}) nor on \
         revision {PARQUET_REVISION}, the hub's parquet conversion ({conversion}); set \
         dataset_revision to a revision that has such files, or give a local copy as dataset",
        matching(filter)
    )
}

/// The names that `keep` accepts, in path order; only the parquet ones when there are any (a
/// repo that ships several formats).
fn readable(names: Vec<String>, keep: &dyn Fn(&str) -> bool) -> Vec<String> {
    let mut names: Vec<String> = names.into_iter().filter(|n| keep(n)).collect();
    names.sort();
    if names.iter().any(|n| n.ends_with(".parquet")) {
        names.retain(|n| n.ends_with(".parquet"));
    }
    names
}

/// Whether a file of a parquet conversion (`{config}/{split}/{nnnn}.parquet`) is in the train
/// split (`partial-train` when the hub converted only the first part of a large split).
fn in_train_split(name: &str) -> bool {
    let mut parts = name.rsplit('/');
    parts.next();
    matches!(parts.next(), Some("train" | "partial-train"))
}

/// ` matching '{filter}'`, or nothing.
fn matching(filter: Option<&str>) -> String {
    filter
        .map(|f| format!(" matching '{f}'"))
        .unwrap_or_default()
}

/// The text files under `dir` that `keep` accepts, symlinks followed, in path order. Each real
/// file (device and inode) is listed once: a file or folder met again, as a duplicate or
/// through a symlink cycle, is skipped with a note.
fn collect_local(dir: &Path, keep: &dyn Fn(&str) -> bool) -> Result<Vec<PathBuf>> {
    let mut seen = HashMap::new();
    seen.insert(file_id(dir)?, dir.to_path_buf());
    let mut out = Vec::new();
    walk(dir, keep, &mut seen, &mut out)?;
    Ok(out)
}

/// Device and inode of what `path` names (symlinks followed).
fn file_id(path: &Path) -> Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let meta =
        std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok((meta.dev(), meta.ino()))
}

fn walk(
    dir: &Path,
    keep: &dyn Fn(&str) -> bool,
    seen: &mut HashMap<(u64, u64), PathBuf>,
    out: &mut Vec<PathBuf>,
) -> Result<()> {
    let mut entries = std::fs::read_dir(dir)
        .and_then(|d| {
            d.map(|e| e.map(|e| e.path()))
                .collect::<std::io::Result<Vec<_>>>()
        })
        .with_context(|| format!("cannot list {}", dir.display()))?;
    entries.sort();
    for path in entries {
        let is_dir = path.is_dir();
        if !is_dir && !keep(&path.to_string_lossy()) {
            continue;
        }
        let id = file_id(&path)?;
        if let Some(first) = seen.get(&id) {
            let what = match (is_dir, path.starts_with(first)) {
                (true, true) => "a symlink cycle back to",
                (true, false) => "the same folder as",
                (false, _) => "the same file as",
            };
            crate::report::warning(format_args!(
                "note: skipping {}: {what} {}",
                path.display(),
                first.display()
            ));
            continue;
        }
        seen.insert(id, path.clone());
        if is_dir {
            walk(&path, keep, seen, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

/// The documents of one file, each whole, in order (`.txt`: one per line, split as Python's
/// `str.splitlines`, which is what the `datasets` library's text loader does). This holds the
/// whole file; the window stream reads [`Piece`]s instead.
pub fn read_documents(path: &Path, text_field: &str) -> Result<Vec<String>> {
    let mut reader = FileReader::open(path, text_field, PieceSizes::default())?;
    let mut docs: Vec<String> = Vec::new();
    while let Some(piece) = reader.next_piece()? {
        match docs.last_mut() {
            Some(doc) if piece.start != PieceStart::Document => doc.push_str(&piece.text),
            _ => docs.push(piece.text),
        }
    }
    Ok(docs)
}

/// The pieces of one file's documents.
enum FileReader {
    Txt(TxtReader),
    Jsonl(JsonlReader),
    Parquet(Box<ParquetRows>),
}

impl FileReader {
    fn open(path: &Path, text_field: &str, sizes: PieceSizes) -> Result<Self> {
        let name = path.to_string_lossy();
        Ok(if name.ends_with(".parquet") {
            Self::Parquet(Box::new(ParquetRows::open(path, text_field, sizes)?))
        } else if let Some(compression) = Compression::of(&name) {
            Self::Jsonl(JsonlReader::open(path, compression, text_field, sizes)?)
        } else if name.ends_with(".txt") {
            Self::Txt(TxtReader::open(path, sizes)?)
        } else {
            bail!(
                "{}: unsupported text file type (use {TEXT_FILE_TYPES})",
                path.display()
            )
        })
    }

    /// The reader of a hub file read in ranges as it is decoded (see `remote`).
    fn open_remote(shard: Shard, text_field: &str, sizes: PieceSizes) -> Result<Self> {
        let name = shard.label();
        let label = Path::new(&name);
        Ok(if name.ends_with(".parquet") {
            Self::Parquet(Box::new(ParquetRows::open_remote(
                shard, text_field, sizes,
            )?))
        } else if let Some(compression) = Compression::of(&name) {
            let raw = ShardReader::new(shard);
            Self::Jsonl(JsonlReader::from_raw(
                label,
                raw,
                compression,
                text_field,
                sizes,
            )?)
        } else if name.ends_with(".txt") {
            Self::Txt(TxtReader::from_raw(
                label,
                Box::new(ShardReader::new(shard)),
                sizes,
            ))
        } else {
            bail!("{name}: unsupported text file type (use {TEXT_FILE_TYPES})")
        })
    }

    fn next_piece(&mut self) -> Result<Option<Piece>> {
        loop {
            if let Some(piece) = self.cutter().pop() {
                return Ok(Some(piece));
            }
            let more = match self {
                Self::Txt(r) => r.feed()?,
                Self::Jsonl(r) => r.feed()?,
                Self::Parquet(r) => r.feed()?,
            };
            if !more {
                return Ok(None);
            }
        }
    }

    fn cutter(&mut self) -> &mut Cutter {
        match self {
            Self::Txt(r) => &mut r.cutter,
            Self::Jsonl(r) => &mut r.cutter,
            Self::Parquet(r) => &mut r.cutter,
        }
    }
}

fn open_file(path: &Path) -> Result<File> {
    File::open(path).with_context(|| format!("cannot open {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_files_yield_every_line_as_a_document() {
        let dir = tempfile::tempdir().unwrap();
        let txt = dir.path().join("a.txt");
        std::fs::write(&txt, "first doc\n\n   \r\nsecond doc\r\n").unwrap();
        assert_eq!(
            read_documents(&txt, "text").unwrap(),
            vec!["first doc", "", "   ", "second doc"]
        );

        let jsonl = dir.path().join("b.jsonl");
        std::fs::write(
            &jsonl,
            "{\"text\": \"x y\"}\n\n{\"text\": \"\", \"id\": 2}\n{\"text\": \"z\"}\n",
        )
        .unwrap();
        assert_eq!(
            read_documents(&jsonl, "text").unwrap(),
            vec!["x y", "", "z"]
        );
        std::fs::write(&jsonl, "{\"body\": \"x\"}\n").unwrap();
        let err = format!("{:#}", read_documents(&jsonl, "text").unwrap_err());
        assert!(err.contains("line 1") && err.contains("'text'"), "{err}");

        std::fs::write(&txt, b"ok\n\xff\xfe bad\n").unwrap();
        let err = format!("{:#}", read_documents(&txt, "text").unwrap_err());
        assert!(
            err.contains("not valid UTF-8") && err.contains("offset 3"),
            "{err}"
        );
    }

    #[test]
    fn hub_files_prefer_parquet_and_the_train_split_is_recognised() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let keep = |n: &str| is_text_file(n);
        assert_eq!(
            readable(
                names(&[
                    "b.jsonl",
                    "openwebtext.py",
                    "a/1.parquet",
                    "a/0.parquet",
                    "x.tar"
                ]),
                &keep
            ),
            ["a/0.parquet", "a/1.parquet"]
        );
        assert_eq!(
            readable(names(&["c.txt", "README.md", "b.jsonl.zst"]), &keep),
            ["b.jsonl.zst", "c.txt"]
        );
        assert!(readable(names(&["openwebtext.py", "subsets/s00.tar"]), &keep).is_empty());
        assert!(in_train_split("plain_text/train/0000.parquet"));
        assert!(in_train_split("default/partial-train/0003.parquet"));
        assert!(!in_train_split("plain_text/validation/0000.parquet"));
        assert!(!in_train_split("train.parquet"));
        assert!(!in_train_split("plain_text/trainset/0000.parquet"));
    }

    /// The documents of a file read with `sizes`, pieces joined.
    pub(super) fn read_with(path: &Path, sizes: PieceSizes) -> Result<Vec<String>> {
        let mut reader = FileReader::open(path, "text", sizes)?;
        let mut docs: Vec<String> = Vec::new();
        while let Some(piece) = reader.next_piece()? {
            // A block, plus a character completed or unescaped.
            let bound = sizes.max_piece + sizes.block + 4;
            assert!(piece.text.len() <= bound, "piece too long");
            match piece.start {
                PieceStart::Document => docs.push(piece.text),
                _ => docs
                    .last_mut()
                    .expect("a first piece")
                    .push_str(&piece.text),
            }
        }
        Ok(docs)
    }

    /// Tiny blocks and pieces, so that blocks end inside `\r\n` and characters and documents
    /// are cut often.
    pub(super) fn tiny(block: usize) -> PieceSizes {
        PieceSizes {
            block,
            piece: 8,
            max_piece: 24,
        }
    }
}
