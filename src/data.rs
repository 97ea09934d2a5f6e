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
use anyhow::{bail, ensure, Context, Result};
use hf_hub::RepoType;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use tokenizers::models::bpe::BPE;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{AddedToken, Tokenizer};

/// Loads a tokenizer from `tokenizer.json`, or builds GPT-2's byte-level BPE from
/// `vocab.json` + `merges.txt`, found in a local file/folder or a hub repo.
pub fn load_tokenizer(location: &Location, hub: &Hub) -> Result<Tokenizer> {
    match location {
        Location::Local(path)
            if path.is_file() && path.extension().is_some_and(|e| e == "gguf") =>
        {
            crate::model::gguf::Gguf::read(path)?.tokenizer()
        }
        Location::Local(path) if path.is_file() => tokenizer_from_json(path),
        Location::Local(dir) => {
            ensure!(
                dir.is_dir(),
                "tokenizer location {} does not exist",
                dir.display()
            );
            if dir.join("tokenizer.json").is_file() {
                tokenizer_from_json(&dir.join("tokenizer.json"))
            } else if dir.join("vocab.json").is_file() && dir.join("merges.txt").is_file() {
                gpt2_bpe(&dir.join("vocab.json"), &dir.join("merges.txt"))
            } else {
                bail!(
                    "{} has no tokenizer.json (nor vocab.json + merges.txt)",
                    dir.display()
                )
            }
        }
        Location::Hub { repo, revision } => {
            if let Some(json) = hub.try_get(repo, RepoType::Model, revision, "tokenizer.json") {
                return tokenizer_from_json(&json);
            }
            let vocab = hub.get(repo, RepoType::Model, revision, "vocab.json")?;
            let merges = hub.get(repo, RepoType::Model, revision, "merges.txt")?;
            gpt2_bpe(&vocab, &merges)
        }
    }
}

fn tokenizer_from_json(path: &Path) -> Result<Tokenizer> {
    Tokenizer::from_file(path)
        .map_err(|e| anyhow::anyhow!("cannot load tokenizer {}: {e}", path.display()))
}

/// GPT-2's tokenizer from `vocab.json` + `merges.txt` (byte-level BPE, `<|endoftext|>` special).
pub fn gpt2_bpe(vocab: &Path, merges: &Path) -> Result<Tokenizer> {
    let bpe = BPE::from_file(&vocab.to_string_lossy(), &merges.to_string_lossy())
        .build()
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot build BPE from {} and {}: {e}",
                vocab.display(),
                merges.display()
            )
        })?;
    let mut tokenizer = Tokenizer::new(bpe);
    tokenizer.with_pre_tokenizer(Some(ByteLevel::new(false, true, true)));
    tokenizer.with_decoder(Some(ByteLevel::default()));
    tokenizer
        .add_special_tokens([AddedToken::from("<|endoftext|>", true)])
        .map_err(|e| anyhow::anyhow!("cannot add <|endoftext|> to the GPT-2 tokenizer: {e}"))?;
    Ok(tokenizer)
}

/// Decodes single tokens as the original did (`tokenizer.decode([id])` in transformers).
pub struct TokenDecoder {
    tokenizer: Tokenizer,
    /// transformers' `clean_up_tokenization_spaces`, as the tokenizer transformers builds for
    /// the same files has it: false for a GGUF file (built from the GGUF metadata alone, which
    /// sets nothing, so transformers' default of no clean-up holds; no `tokenizer_config.json`
    /// is read); else from `tokenizer_config.json`; else true (the default of the transformers
    /// releases the original ran on; its GPT-2 node tables show `'.'` and never `' .'`).
    pub clean_up_spaces: bool,
}

impl TokenDecoder {
    /// Wraps `tokenizer`.
    pub fn new(tokenizer: Tokenizer, clean_up_spaces: bool) -> Self {
        Self {
            tokenizer,
            clean_up_spaces,
        }
    }

    /// Loads the tokenizer at `location` and its clean-up setting (see `clean_up_spaces`).
    pub fn load(location: &Location, hub: &Hub) -> Result<Self> {
        let tokenizer = load_tokenizer(location, hub)?;
        let config = match location {
            Location::Local(p) if p.is_file() && p.extension().is_some_and(|e| e == "gguf") => {
                return Ok(Self::new(tokenizer, false));
            }
            Location::Local(p) if p.is_file() => {
                p.parent().map(|d| d.join("tokenizer_config.json"))
            }
            Location::Local(dir) => Some(dir.join("tokenizer_config.json")),
            Location::Hub { repo, revision } => {
                hub.try_get(repo, RepoType::Model, revision, "tokenizer_config.json")
            }
        };
        let clean_up_spaces = config
            .and_then(|p| std::fs::read_to_string(p).ok())
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| v.get("clean_up_tokenization_spaces")?.as_bool())
            .unwrap_or(true);
        Ok(Self::new(tokenizer, clean_up_spaces))
    }

    /// The text of one token id (invalid UTF-8 bytes become U+FFFD, as in Python).
    pub fn decode_one(&self, id: u32) -> Result<String> {
        let text = self
            .tokenizer
            .decode(&[id], false)
            .map_err(|e| anyhow::anyhow!("cannot decode token id {id}: {e}"))?;
        Ok(if self.clean_up_spaces {
            clean_up_tokenization(&text)
        } else {
            text
        })
    }
}

/// transformers' `clean_up_tokenization`: removes the space before punctuation and
/// English contractions.
pub fn clean_up_tokenization(text: &str) -> String {
    [
        (" .", "."),
        (" ?", "?"),
        (" !", "!"),
        (" ,", ","),
        (" ' ", "'"),
        (" n't", "n't"),
        (" 'm", "'m"),
        (" 's", "'s"),
        (" 've", "'ve"),
        (" 're", "'re"),
    ]
    .iter()
    .fold(text.to_string(), |t, (from, to)| t.replace(from, to))
}

/// The byte-level BPE tokenizer stored in GGUF metadata (`tokenizer.ggml.tokens`, `.merges`,
/// `.token_type`, `.pre`). Control tokens become special tokens; the `smollm` pre-tokenizer
/// splits digits individually before the GPT-2 regex, as SmolLM2's `tokenizer.json` does.
pub fn gguf_tokenizer(
    metadata: &std::collections::HashMap<String, candle_core::quantized::gguf_file::Value>,
    path: &Path,
) -> Result<Tokenizer> {
    use tokenizers::pre_tokenizers::digits::Digits;
    use tokenizers::pre_tokenizers::sequence::Sequence;
    use tokenizers::pre_tokenizers::PreTokenizerWrapper;
    let strings = |key: &str| -> Result<Vec<String>> {
        let value = metadata
            .get(key)
            .with_context(|| format!("{}: GGUF metadata has no {key}", path.display()))?;
        value
            .to_vec()
            .map_err(|e| anyhow::anyhow!("{}: {key}: {e}", path.display()))?
            .iter()
            .map(|v| {
                v.to_string()
                    .cloned()
                    .map_err(|e| anyhow::anyhow!("{}: {key}: {e}", path.display()))
            })
            .collect()
    };
    let model = metadata
        .get("tokenizer.ggml.model")
        .and_then(|v| v.to_string().ok().cloned())
        .unwrap_or_default();
    ensure!(
        model == "gpt2",
        "{}: GGUF tokenizer model '{model}' is not supported (supported: gpt2 byte-level BPE)",
        path.display()
    );
    let tokens = strings("tokenizer.ggml.tokens")?;
    let merges: Vec<(String, String)> = strings("tokenizer.ggml.merges")?
        .into_iter()
        .map(|m| {
            m.split_once(' ')
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .with_context(|| format!("{}: bad merge '{m}'", path.display()))
        })
        .collect::<Result<_>>()?;
    let vocab: tokenizers::models::bpe::Vocab = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), i as u32))
        .collect();
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .build()
        .map_err(|e| anyhow::anyhow!("{}: cannot build the BPE tokenizer: {e}", path.display()))?;
    let mut tokenizer = Tokenizer::new(bpe);
    let byte_level = ByteLevel::new(false, true, true);
    let pre = metadata
        .get("tokenizer.ggml.pre")
        .and_then(|v| v.to_string().ok().cloned())
        .unwrap_or_default();
    if pre == "smollm" {
        tokenizer.with_pre_tokenizer(Some(Sequence::new(vec![
            PreTokenizerWrapper::Digits(Digits::new(true)),
            PreTokenizerWrapper::ByteLevel(byte_level),
        ])));
    } else {
        tokenizer.with_pre_tokenizer(Some(byte_level));
    }
    tokenizer.with_decoder(Some(ByteLevel::default()));
    let types: Vec<i64> = metadata
        .get("tokenizer.ggml.token_type")
        .and_then(|v| v.to_vec().ok())
        .map(|v| {
            v.iter()
                .map(|t| t.to_i32().map(|x| x as i64).unwrap_or(1))
                .collect()
        })
        .unwrap_or_default();
    let special: Vec<AddedToken> = tokens
        .iter()
        .zip(&types)
        .filter(|(_, &t)| t == 3)
        .map(|(tok, _)| AddedToken::from(tok.clone(), true))
        .collect();
    tokenizer
        .add_special_tokens(special)
        .map_err(|e| anyhow::anyhow!("{}: cannot add special tokens: {e}", path.display()))?;
    Ok(tokenizer)
}

/// Tokenizes documents without special tokens.
pub fn encode_documents(tokenizer: &Tokenizer, docs: Vec<String>) -> Result<Vec<Vec<u32>>> {
    let encodings = tokenizer
        .encode_batch(docs, false)
        .map_err(|e| anyhow::anyhow!("tokenization failed: {e}"))?;
    Ok(encodings
        .into_iter()
        .map(|e| e.get_ids().to_vec())
        .collect())
}

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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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
