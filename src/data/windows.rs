//! Token windows as SAELens cuts them: the tokens put around documents ([`TokenSpec`],
//! [`WindowTokens`]), the cutting rule ([`Windower`]) and the lazy documents → tokenizer →
//! windows stream ([`WindowStream`]).

use super::{Documents, Piece, PieceStart};
use crate::tokenizer::{cuts_at_spaces_are_exact, encode_documents};
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::path::PathBuf;
use tokenizers::Tokenizer;

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
    /// The next token is the first of a document.
    document_start: bool,
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
            document_start: true,
            complete: VecDeque::new(),
        }
    }

    /// Appends a document's tokens.
    pub fn push_document(&mut self, ids: &[u32]) {
        self.start_document();
        self.push_tokens(ids);
    }

    /// Starts a document, whose tokens then come through [`Windower::push_tokens`].
    pub fn start_document(&mut self) {
        self.document_start = true;
    }

    /// Appends tokens of the current document (which may come in several pieces: only its
    /// first token can be preceded by the separator).
    pub fn push_tokens(&mut self, ids: &[u32]) {
        let mut rest = ids;
        while let Some(&first) = rest.first() {
            let (mut window, prefix) = match self.partial.take() {
                None => (Vec::with_capacity(self.context_size), self.tokens.begin),
                Some(window) if self.document_start => (window, self.tokens.separator),
                Some(window) => (window, None),
            };
            self.document_start = false;
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

/// Text handed to the tokenizer at once: at most this many pieces...
const BATCH_PIECES: usize = 64;
/// ...and about this many bytes.
const BATCH_BYTES: usize = 256 << 10;

/// Documents → tokenizer → windows, lazily, in bounded memory: documents arrive in
/// [`Piece`]s, tokenized a batch at a time.
pub struct WindowStream<'h> {
    documents: Documents<'h>,
    tokenizer: Tokenizer,
    windower: Windower,
    /// Cuts at spaces leave this tokenizer's tokens unchanged.
    exact_cuts: bool,
    /// A note on a cut that may change tokens was printed.
    noted: bool,
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
            exact_cuts: cuts_at_spaces_are_exact(&tokenizer),
            tokenizer,
            windower: Windower::new(context_size, tokens),
            noted: false,
            windows_read: 0,
        }
    }

    /// The local dataset files not yet read, in reading order (none for a hub dataset).
    pub fn dataset_files(&self) -> Vec<PathBuf> {
        self.documents.local_files()
    }

    /// The next window, or `None` when the data is exhausted.
    pub fn next_window(&mut self) -> Result<Option<Vec<u32>>> {
        loop {
            if let Some(w) = self.windower.pop_window() {
                self.windows_read += 1;
                return Ok(Some(w));
            }
            let pieces = self.next_pieces()?;
            if pieces.is_empty() {
                return Ok(None);
            }
            let starts: Vec<PieceStart> = pieces.iter().map(|p| p.start).collect();
            let texts = pieces.into_iter().map(|p| p.text).collect();
            for (ids, start) in encode_documents(&self.tokenizer, texts)?.iter().zip(starts) {
                if start == PieceStart::Document {
                    self.windower.start_document();
                }
                self.windower.push_tokens(ids);
            }
        }
    }

    /// The pieces for one tokenizer call.
    fn next_pieces(&mut self) -> Result<Vec<Piece>> {
        let (mut pieces, mut bytes) = (Vec::new(), 0);
        while pieces.len() < BATCH_PIECES && bytes < BATCH_BYTES {
            let Some(piece) = self.documents.next_piece()? else {
                break;
            };
            self.note_cut(piece.start);
            bytes += piece.text.len();
            pieces.push(piece);
        }
        Ok(pieces)
    }

    /// Says once when a document is cut where tokens may differ from whole-document
    /// tokenization.
    fn note_cut(&mut self, start: PieceStart) {
        let why = match start {
            PieceStart::Forced => "it had no space to cut at",
            PieceStart::Space if !self.exact_cuts => {
                "this tokenizer is not known to keep its tokens at spaces"
            }
            _ => return,
        };
        if !std::mem::replace(&mut self.noted, true) {
            crate::report::warning(format_args!(
                "note: {}: a long document was tokenized in pieces and {why}, so a token at a \
                 cut may differ from whole-document tokenization (docs/formats.md, \"Token windows\")",
                self.documents.source
            ));
        }
    }

    /// Reads and drops `n` windows (to resume at a saved position).
    pub fn skip(&mut self, n: u64) -> Result<()> {
        for _ in 0..n {
            if self.next_window()?.is_none() {
                break;
            }
        }
        Ok(())
    }

    /// Up to `n` windows (fewer at the end of the data).
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
    fn a_document_in_pieces_makes_the_windows_of_the_whole_document() {
        let docs: [&[u32]; 4] = [
            &[1, 2, 3, 4, 5, 6, 7],
            &[0, 8, 9],
            &[],
            &[10, 11, 12, 13, 14],
        ];
        for ctx in 2..6 {
            let whole = windows(ctx, BOS, &docs);
            for cut in 0..8 {
                let mut w = Windower::new(ctx, BOS);
                let mut out = Vec::new();
                for doc in docs {
                    let (a, b) = doc.split_at(cut.min(doc.len()));
                    w.start_document();
                    w.push_tokens(a);
                    w.push_tokens(&[]);
                    w.push_tokens(b);
                    out.extend(std::iter::from_fn(|| w.pop_window()));
                }
                assert_eq!(out, whole, "context {ctx}, cut {cut}");
            }
        }
    }
}
