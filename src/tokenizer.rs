//! Tokenizers: `tokenizer.json`, GPT-2's `vocab.json` + `merges.txt`, or the tokenizer in a
//! GGUF file's metadata; documents tokenized without special tokens; single tokens decoded as
//! transformers decodes them.

use crate::encoding::{file_looks_like, read_text_file};
use crate::hub::{Hub, HubRepo, Location};
use crate::json_keys::JsonKeys;
use anyhow::{bail, ensure, Context, Result};
use std::path::Path;
use tokenizers::models::bpe::BPE;
use tokenizers::normalizers::NormalizerWrapper;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::split::SplitPattern;
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::{AddedToken, SplitDelimiterBehavior, Tokenizer};

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
            let at = HubRepo::model(repo, revision);
            if let Some(json) = hub.try_get(at, "tokenizer.json") {
                return tokenizer_from_json(&json);
            }
            let vocab = hub.get(at, "vocab.json")?;
            let merges = hub.get(at, "merges.txt")?;
            gpt2_bpe(&vocab, &merges)
        }
    }
}

/// A `tokenizer.json`, without the truncation and padding it may set (transformers turns them
/// off unless asked, and a document is tokenized whole).
fn tokenizer_from_json(path: &Path) -> Result<Tokenizer> {
    let mut tokenizer = Tokenizer::from_file(path).map_err(|e| {
        anyhow::anyhow!(
            "cannot load tokenizer {}: {e}{}",
            path.display(),
            file_looks_like(path)
        )
    })?;
    tokenizer
        .with_truncation(None)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    tokenizer.with_padding(None);
    Ok(tokenizer)
}

/// GPT-2's tokenizer from `vocab.json` + `merges.txt` (byte-level BPE, `<|endoftext|>` special).
pub fn gpt2_bpe(vocab: &Path, merges: &Path) -> Result<Tokenizer> {
    let bpe = BPE::from_file(&vocab.to_string_lossy(), &merges.to_string_lossy())
        .build()
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot build BPE from {}{} and {}{}: {e}",
                vocab.display(),
                file_looks_like(vocab),
                merges.display(),
                file_looks_like(merges)
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
        Self::with_config(load_tokenizer(location, hub)?, location, hub)
    }

    /// Wraps `tokenizer`, loaded from `location`, with the clean-up setting found there.
    pub fn with_config(tokenizer: Tokenizer, location: &Location, hub: &Hub) -> Result<Self> {
        let config = match location {
            Location::Local(p) if p.is_file() && p.extension().is_some_and(|e| e == "gguf") => {
                return Ok(Self::new(tokenizer, false));
            }
            Location::Local(p) if p.is_file() => {
                p.parent().map(|d| d.join("tokenizer_config.json"))
            }
            Location::Local(dir) => Some(dir.join("tokenizer_config.json")),
            Location::Hub { repo, revision } => {
                hub.try_get(HubRepo::model(repo, revision), "tokenizer_config.json")
            }
        };
        let clean_up_spaces = match config.filter(|p| p.is_file()) {
            Some(path) => clean_up_setting(&path)?,
            None => None,
        };
        Ok(Self::new(tokenizer, clean_up_spaces.unwrap_or(true)))
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

/// `clean_up_tokenization_spaces` from a `tokenizer_config.json`: None when absent; a file
/// that is not UTF-8 JSON, or a key that is not true or false, is an error naming the file.
fn clean_up_setting(path: &Path) -> Result<Option<bool>> {
    let file = path.display().to_string();
    let text = read_text_file(path)?;
    let json: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{file} is not valid JSON"))?;
    JsonKeys::new(&json, &file)?.bool("clean_up_tokenization_spaces")
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

/// Split patterns known to keep a cut just before a space between two non-whitespace
/// characters (no match holds a non-space character followed by a space, and none looks
/// behind): GPT-2's, Llama 3's and Qwen2's.
const SPACE_SAFE_PATTERNS: [&str; 3] = [
    r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+",
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
];

/// Whether tokenizing a text in pieces cut just before an ASCII space that follows and
/// precedes a non-whitespace character gives the tokens of the whole text: true for byte-level
/// BPE with a regex pre-tokenizer (GPT-2, Llama 3, SmolLM2, Qwen2), no normalizer other than
/// NFC, NFD, NFKC or NFKD, and no added token holding whitespace or stripping it on its right
/// (docs/formats.md, "Token windows").
pub fn cuts_at_spaces_are_exact(tokenizer: &Tokenizer) -> bool {
    tokenizer.get_normalizer().is_none_or(|n| {
        // A space neither composes nor reorders with its neighbours.
        matches!(
            n,
            NormalizerWrapper::NFC(_)
                | NormalizerWrapper::NFD(_)
                | NormalizerWrapper::NFKC(_)
                | NormalizerWrapper::NFKD(_)
        )
    }) && tokenizer.get_pre_tokenizer().is_some_and(splits_at_spaces)
        && tokenizer
            .get_added_tokens_decoder()
            .values()
            .all(|t| !t.rstrip && !t.single_word && !t.content.contains(char::is_whitespace))
}

/// A pre-tokenizer that always splits at such a space and sees nothing beyond it: the GPT-2
/// regex (`ByteLevel`), a known [split pattern](SPACE_SAFE_PATTERNS), or a sequence of digit
/// splits, one of these, then digit splits and byte-level mappings.
fn splits_at_spaces(pre: &PreTokenizerWrapper) -> bool {
    match pre {
        PreTokenizerWrapper::ByteLevel(b) => b.use_regex,
        PreTokenizerWrapper::Split(s) => {
            !s.invert
                && s.behavior == SplitDelimiterBehavior::Isolated
                && matches!(&s.pattern, SplitPattern::Regex(r) if SPACE_SAFE_PATTERNS.contains(&r.as_str()))
        }
        PreTokenizerWrapper::Sequence(seq) => {
            let steps = seq.as_ref();
            let digits = |p: &PreTokenizerWrapper| matches!(p, PreTokenizerWrapper::Digits(_));
            let k = steps.iter().take_while(|p| digits(p)).count();
            steps.get(k).is_some_and(splits_at_spaces)
                && steps[k + 1..]
                    .iter()
                    .all(|p| digits(p) || matches!(p, PreTokenizerWrapper::ByteLevel(_)))
        }
        _ => false,
    }
}
