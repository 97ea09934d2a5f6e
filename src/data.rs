//! Text in, token windows out.
//!
//! Documents come from local `.txt` (one document per line), `.jsonl` (a `text` field) and
//! `.parquet` (a `text` column) files, folders of them, or a Hugging Face dataset repo (its
//! parquet files, downloaded one at a time as they are needed). Every document is kept as the
//! source gives it, as SAELens keeps every row of a dataset: one that tokenizes to nothing adds
//! nothing, a whitespace-only one adds its whitespace tokens.
//!
//! Windows are deterministic, with no shuffle: each document is tokenized without special
//! tokens and the token stream is cut into windows by [`Windower`], which follows SAELens'
//! `concat_and_batch_sequences` token for token (see docs/formats.md, "Token windows").

use crate::hub::{Hub, Location};
use crate::tokenizer::encode_documents;
use anyhow::{bail, ensure, Context, Result};
use hf_hub::RepoType;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use tokenizers::Tokenizer;

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

/// A lazy stream of documents from a text source.
pub struct Documents<'h> {
    hub: &'h Hub,
    files: VecDeque<TextFile>,
    current: VecDeque<String>,
    text_field: String,
    /// Description of the source, for messages.
    pub source: String,
}

fn is_text_file(name: &str) -> bool {
    [".txt", ".jsonl", ".parquet"]
        .iter()
        .any(|ext| name.ends_with(ext))
}

impl<'h> Documents<'h> {
    /// Opens a text source. `filter` keeps only folder/hub files whose path contains it.
    pub fn open(
        location: &Location,
        hub: &'h Hub,
        text_field: &str,
        filter: Option<&str>,
    ) -> Result<Self> {
        let keep = |name: &str| is_text_file(name) && filter.is_none_or(|f| name.contains(f));
        let files: Vec<TextFile> = match location {
            Location::Local(path) if path.is_file() => vec![TextFile::Local(path.clone())],
            Location::Local(dir) if dir.is_dir() => {
                let mut found = Vec::new();
                collect_local(dir, &mut found)?;
                found.sort();
                found
                    .into_iter()
                    .filter(|p| keep(&p.to_string_lossy()))
                    .map(TextFile::Local)
                    .collect()
            }
            Location::Local(path) => bail!("dataset {} does not exist", path.display()),
            Location::Hub { repo, revision } => {
                let mut names: Vec<String> = hub
                    .list(repo, RepoType::Dataset, revision)?
                    .into_iter()
                    .filter(|n| keep(n))
                    .collect();
                names.sort();
                // Prefer parquet when a repo ships several formats.
                if names.iter().any(|n| n.ends_with(".parquet")) {
                    names.retain(|n| n.ends_with(".parquet"));
                }
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
            "dataset {} has no .txt, .jsonl or .parquet files{}",
            location.describe(),
            filter
                .map(|f| format!(" matching '{f}'"))
                .unwrap_or_default()
        );
        Ok(Self {
            hub,
            files: files.into(),
            current: VecDeque::new(),
            text_field: text_field.to_string(),
            source: location.describe(),
        })
    }

    /// The next up-to-`n` documents (fewer only at the end of the data).
    pub fn next_chunk(&mut self, n: usize) -> Result<Vec<String>> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            if let Some(doc) = self.current.pop_front() {
                out.push(doc);
                continue;
            }
            let Some(file) = self.files.pop_front() else {
                break;
            };
            let path = match file {
                TextFile::Local(p) => p,
                TextFile::Hub {
                    repo,
                    revision,
                    name,
                } => self.hub.get(&repo, RepoType::Dataset, &revision, &name)?,
            };
            self.current = read_documents(&path, &self.text_field)?.into();
        }
        Ok(out)
    }
}

fn collect_local(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            collect_local(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

/// Reads the documents of one file, in order (`.txt`: one per line, split as Python's
/// `str.splitlines`, which is what the `datasets` library's text loader does).
pub fn read_documents(path: &Path, text_field: &str) -> Result<Vec<String>> {
    let name = path.to_string_lossy();
    let docs = if name.ends_with(".parquet") {
        read_parquet(path, text_field)?
    } else {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let text = String::from_utf8(bytes).map_err(|e| {
            anyhow::anyhow!(
                "{} is not valid UTF-8 (first bad byte at offset {})",
                path.display(),
                e.utf8_error().valid_up_to()
            )
        })?;
        if name.ends_with(".jsonl") {
            read_jsonl(&text, path, text_field)?
        } else if name.ends_with(".txt") {
            python_splitlines(&text)
                .into_iter()
                .map(String::from)
                .collect()
        } else {
            bail!(
                "{}: unsupported text file type (use .txt, .jsonl or .parquet)",
                path.display()
            )
        }
    };
    Ok(docs)
}

/// Python's `str.splitlines()`: lines split at `\n`, `\r\n`, `\r`, `\v`, `\f`, `\x1c`–`\x1e`,
/// `\x85`, U+2028 and U+2029, without the line breaks; no empty last line after a final break.
pub fn python_splitlines(text: &str) -> Vec<&str> {
    let is_break = |c: char| {
        matches!(
            c,
            '\n' | '\r'
                | '\x0b'
                | '\x0c'
                | '\x1c'
                | '\x1d'
                | '\x1e'
                | '\u{85}'
                | '\u{2028}'
                | '\u{2029}'
        )
    };
    let mut lines = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if !is_break(c) {
            continue;
        }
        lines.push(&text[start..i]);
        start = i + c.len_utf8();
        if c == '\r' && chars.peek().is_some_and(|&(_, n)| n == '\n') {
            chars.next();
            start += 1;
        }
    }
    if start < text.len() {
        lines.push(&text[start..]);
    }
    lines
}

fn read_jsonl(text: &str, path: &Path, field: &str) -> Result<Vec<String>> {
    let mut docs = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value = serde_json::from_str(line)
            .with_context(|| format!("{} line {}: invalid JSON", path.display(), i + 1))?;
        let doc = value.get(field).and_then(|v| v.as_str()).with_context(|| {
            format!(
                "{} line {}: no string field '{field}'",
                path.display(),
                i + 1
            )
        })?;
        docs.push(doc.to_string());
    }
    Ok(docs)
}

fn read_parquet(path: &Path, field: &str) -> Result<Vec<String>> {
    use polars::prelude::*;
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let df = ParquetReader::new(file)
        .finish()
        .map_err(|e| anyhow::anyhow!("cannot read parquet file {}: {e}", path.display()))?;
    let column = df.column(field).map_err(|_| {
        let names: Vec<String> = df
            .get_column_names()
            .iter()
            .map(|s| s.to_string())
            .collect();
        anyhow::anyhow!(
            "{} has no column '{field}' (columns: {})",
            path.display(),
            names.join(", ")
        )
    })?;
    let strings = column.str().map_err(|_| {
        anyhow::anyhow!("{}: column '{field}' is not a text column", path.display())
    })?;
    Ok(strings
        .iter()
        .map(|s| s.unwrap_or_default().to_string())
        .collect())
}

/// A token named in a config: `"bos"`, `"eos"`, `"none"` or a token id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(into = "TokenSpecRepr")]
pub enum TokenSpec {
    Bos,
    Eos,
    Id(u32),
    /// No token.
    Nothing,
}

/// How a [`TokenSpec`] is written in TOML and JSON.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
enum TokenSpecRepr {
    Id(u32),
    Name(String),
}

impl From<TokenSpec> for TokenSpecRepr {
    fn from(spec: TokenSpec) -> Self {
        match spec {
            TokenSpec::Id(id) => Self::Id(id),
            TokenSpec::Bos => Self::Name("bos".into()),
            TokenSpec::Eos => Self::Name("eos".into()),
            TokenSpec::Nothing => Self::Name("none".into()),
        }
    }
}

impl<'de> Deserialize<'de> for TokenSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        match TokenSpecRepr::deserialize(d)? {
            TokenSpecRepr::Id(id) => Ok(Self::Id(id)),
            TokenSpecRepr::Name(name) => match name.as_str() {
                "bos" => Ok(Self::Bos),
                "eos" => Ok(Self::Eos),
                "none" => Ok(Self::Nothing),
                _ => Err(serde::de::Error::custom(format!(
                    "unknown token '{name}': use \"bos\", \"eos\", \"none\" or a token id"
                ))),
            },
        }
    }
}

impl TokenSpec {
    /// The token id, given the model's BOS and EOS (`None` for [`TokenSpec::Nothing`]).
    pub fn resolve(self, bos: u32, eos: Option<u32>) -> Result<Option<u32>> {
        match self {
            Self::Bos => Ok(Some(bos)),
            Self::Eos => eos
                .map(Some)
                .context("the model's config.json has no eos_token_id: give the separator's token id instead"),
            Self::Id(id) => Ok(Some(id)),
            Self::Nothing => Ok(None),
        }
    }
}

/// The tokens a window stream puts around documents, as SAELens'
/// `concat_and_batch_sequences` takes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowTokens {
    /// `begin_batch_token_id`: the first token of every window (none: windows start with text).
    pub begin: Option<u32>,
    /// `sequence_separator_token_id`: put between two documents inside a window.
    pub separator: Option<u32>,
}

/// Cuts the concatenated documents into windows exactly as SAELens'
/// `concat_and_batch_sequences` does (with no `begin_sequence_token_id`):
/// - a window starts with `begin` unless the token that would follow it already is `begin`;
/// - a document that continues an unfinished window is preceded by `separator`, unless its
///   first token already is `separator`; a document that starts a new window gets none;
/// - documents with no tokens add nothing; the last, incomplete window is never produced.
#[derive(Debug, Clone)]
pub struct Windower {
    tokens: WindowTokens,
    context_size: usize,
    /// The window being filled (`None`: the next token starts a new window).
    partial: Option<Vec<u32>>,
    complete: VecDeque<Vec<u32>>,
}

impl Windower {
    /// Windows of `context_size` tokens (at least 2).
    pub fn new(context_size: usize, tokens: WindowTokens) -> Self {
        assert!(context_size >= 2, "context_size must be at least 2");
        Self {
            tokens,
            context_size,
            partial: None,
            complete: VecDeque::new(),
        }
    }

    /// Appends a document's tokens.
    pub fn push_document(&mut self, ids: &[u32]) {
        let mut rest = ids;
        while let Some(&first) = rest.first() {
            let (mut window, prefix) = match self.partial.take() {
                None => (Vec::with_capacity(self.context_size), self.tokens.begin),
                Some(window) => (window, self.tokens.separator),
            };
            if let Some(prefix) = prefix.filter(|&p| p != first) {
                window.push(prefix);
            }
            let take = (self.context_size - window.len()).min(rest.len());
            window.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if window.len() == self.context_size {
                self.complete.push_back(window);
            } else {
                self.partial = Some(window);
            }
        }
    }

    /// The next complete window, if any.
    pub fn pop_window(&mut self) -> Option<Vec<u32>> {
        self.complete.pop_front()
    }
}

/// Documents → tokenizer → windows, lazily.
pub struct WindowStream<'h> {
    documents: Documents<'h>,
    tokenizer: Tokenizer,
    windower: Windower,
    /// Windows handed out so far (the data position).
    pub windows_read: u64,
}

impl<'h> WindowStream<'h> {
    pub fn new(
        documents: Documents<'h>,
        tokenizer: Tokenizer,
        context_size: usize,
        tokens: WindowTokens,
    ) -> Self {
        Self {
            documents,
            tokenizer,
            windower: Windower::new(context_size, tokens),
            windows_read: 0,
        }
    }

    /// The next window, or `None` when the data is exhausted.
    pub fn next_window(&mut self) -> Result<Option<Vec<u32>>> {
        loop {
            if let Some(w) = self.windower.pop_window() {
                self.windows_read += 1;
                return Ok(Some(w));
            }
            let docs = self.documents.next_chunk(64)?;
            if docs.is_empty() {
                return Ok(None);
            }
            for ids in encode_documents(&self.tokenizer, docs)? {
                self.windower.push_document(&ids);
            }
        }
    }

    /// Up to `n` windows (fewer at the end of the data).
    /// Reads and drops `n` windows (to resume at a saved position).
    pub fn skip(&mut self, n: u64) -> Result<()> {
        for _ in 0..n {
            if self.next_window()?.is_none() {
                break;
            }
        }
        Ok(())
    }

    pub fn next_windows(&mut self, n: usize) -> Result<Vec<Vec<u32>>> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            match self.next_window()? {
                Some(w) => out.push(w),
                None => break,
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOS: WindowTokens = WindowTokens {
        begin: Some(0),
        separator: Some(0),
    };

    fn windows(context_size: usize, tokens: WindowTokens, docs: &[&[u32]]) -> Vec<Vec<u32>> {
        let mut w = Windower::new(context_size, tokens);
        let mut out = Vec::new();
        for doc in docs {
            w.push_document(doc);
            out.extend(std::iter::from_fn(|| w.pop_window()));
        }
        out
    }

    #[test]
    fn windows_join_documents_with_bos_and_drop_the_tail() {
        // [0 1 2 | 0 3], then [0 4 5 6], [0 7 …] dropped: BOS starts every window, the
        // separator goes only between documents inside a window.
        assert_eq!(
            windows(5, BOS, &[&[1, 2], &[3, 4, 5, 6], &[7]]),
            vec![vec![0, 1, 2, 0, 3], vec![0, 4, 5, 6, 0]]
        );
    }

    #[test]
    fn a_document_that_starts_a_window_gets_no_separator() {
        // The first document fills its window exactly: the next window is [BOS, doc…],
        // never [BOS, BOS, doc…]; an empty document adds nothing.
        assert_eq!(
            windows(4, BOS, &[&[1, 2, 3], &[], &[4, 5, 6], &[7]]),
            vec![vec![0, 1, 2, 3], vec![0, 4, 5, 6]]
        );
        // One slot left: the separator fills it and the document starts the next window.
        assert_eq!(
            windows(4, BOS, &[&[1, 2], &[3, 4, 5]]),
            vec![vec![0, 1, 2, 0], vec![0, 3, 4, 5]]
        );
    }

    #[test]
    fn tokens_already_in_place_are_not_repeated() {
        // A document starting with the separator gets no second one.
        assert_eq!(
            windows(4, BOS, &[&[1], &[0, 2, 3, 0, 4, 5]]),
            vec![vec![0, 1, 0, 2], vec![0, 3, 0, 4]]
        );
        // A window whose first text token is BOS gets no extra BOS.
        assert_eq!(
            windows(3, BOS, &[&[1, 2, 0, 7, 8]]),
            vec![vec![0, 1, 2], vec![0, 7, 8]]
        );
    }

    #[test]
    fn windows_without_bos_and_with_another_separator() {
        let none = WindowTokens {
            begin: None,
            separator: None,
        };
        assert_eq!(
            windows(3, none, &[&[1, 2], &[3, 4, 5, 6]]),
            vec![vec![1, 2, 3], vec![4, 5, 6]]
        );
        let sep9 = WindowTokens {
            begin: Some(0),
            separator: Some(9),
        };
        assert_eq!(
            windows(4, sep9, &[&[1], &[2, 3, 4], &[5]]),
            vec![vec![0, 1, 9, 2], vec![0, 3, 4, 9]]
        );
    }

    #[test]
    fn python_splitlines_splits_like_python() {
        assert_eq!(
            python_splitlines("a\r\nb\rc\n\nd\x0ce\u{2028}f\n"),
            vec!["a", "b", "c", "", "d", "e", "f"]
        );
        assert_eq!(python_splitlines(""), Vec::<&str>::new());
        assert_eq!(python_splitlines("x"), vec!["x"]);
        assert_eq!(python_splitlines("\n"), vec![""]);
    }

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
}
