//! Documents in bounded pieces: how much text is held at a time ([`PieceSizes`]), and the
//! chunking rule, which cuts a long document just before a space between words ([`Cutter`]).

use std::collections::VecDeque;

/// How much text is held at a time: file blocks, and the pieces long documents are cut into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PieceSizes {
    /// Bytes read from a file at a time.
    pub block: usize,
    /// A document is cut once this many of its bytes are waiting, at the last place allowed.
    pub piece: usize,
    /// With no place allowed, it is cut at a character boundary once this many are waiting.
    pub max_piece: usize,
}

impl Default for PieceSizes {
    fn default() -> Self {
        Self {
            block: 64 << 10,
            piece: 128 << 10,
            max_piece: 256 << 10,
        }
    }
}

/// A bounded piece of a document, in reading order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    pub text: String,
    pub start: PieceStart,
}

/// Where a [`Piece`] starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PieceStart {
    /// A new document (a short document is a single piece).
    Document,
    /// A cut just before an ASCII space that follows and precedes a non-whitespace character.
    Space,
    /// A cut at a character boundary: the document had no such space in `max_piece` bytes.
    Forced,
}

/// Cuts documents, handed over a block of text at a time, into [`Piece`]s of at most
/// `max_piece` bytes plus one block (and a character).
pub(super) struct Cutter {
    sizes: PieceSizes,
    /// Text of the current document not cut off yet.
    buf: String,
    /// How `buf` starts.
    start: PieceStart,
    /// `buf[..scanned]` holds no place to cut (its last byte may make one with more text).
    scanned: usize,
    ready: VecDeque<Piece>,
}

impl Cutter {
    pub(super) fn new(sizes: PieceSizes) -> Self {
        Self {
            sizes,
            buf: String::new(),
            start: PieceStart::Document,
            scanned: 0,
            ready: VecDeque::new(),
        }
    }

    /// Appends text of the current document.
    pub(super) fn push_text(&mut self, text: &str) {
        self.buf.push_str(text);
        while self.buf.len() >= self.sizes.piece && self.cut() {}
    }

    /// Ends the current document (an empty document is one empty piece).
    pub(super) fn end_document(&mut self) {
        if !self.buf.is_empty() || self.start == PieceStart::Document {
            self.emit(self.buf.len(), PieceStart::Document);
        }
        self.start = PieceStart::Document;
    }

    /// Cuts `buf` at the last place allowed, or at its end once it reaches `max_piece`.
    fn cut(&mut self) -> bool {
        match space_cut(&self.buf, self.scanned.saturating_sub(1)) {
            Some(at) => self.emit(at, PieceStart::Space),
            None if self.buf.len() >= self.sizes.max_piece => {
                self.emit(self.buf.len(), PieceStart::Forced)
            }
            None => {
                self.scanned = self.buf.len();
                return false;
            }
        }
        true
    }

    /// Hands `buf[..at]` out; the rest starts as `next` says.
    fn emit(&mut self, at: usize, next: PieceStart) {
        let rest = self.buf.split_off(at);
        let text = std::mem::replace(&mut self.buf, rest);
        let start = std::mem::replace(&mut self.start, next);
        self.ready.push_back(Piece { text, start });
        self.scanned = 0;
    }

    pub(super) fn pop(&mut self) -> Option<Piece> {
        self.ready.pop_front()
    }
}

/// The last place in `text`, at `from` or after, where a document may be cut: just before an
/// ASCII space that follows a non-whitespace character and precedes one.
fn space_cut(text: &str, from: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    (from.max(1)..bytes.len().saturating_sub(1))
        .rev()
        .find(|&i| {
            bytes[i] == b' '
                && text[..i]
                    .chars()
                    .next_back()
                    .is_some_and(|c| !c.is_whitespace())
                && text[i + 1..]
                    .chars()
                    .next()
                    .is_some_and(|c| !c.is_whitespace())
        })
}

/// The end of the block of `text` that starts at `pos`: about `block` bytes, on a character
/// boundary, past `pos` unless `pos` is the end.
pub(super) fn block_end(text: &str, pos: usize, block: usize) -> usize {
    let mut end = (pos + block).min(text.len());
    while !text.is_char_boundary(end) {
        end += 1;
    }
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_documents_are_cut_just_before_a_space_between_words() {
        let sizes = PieceSizes {
            block: 5,
            piece: 16,
            max_piece: 40,
        };
        let text = "Hello,  world! It's 2024;\tcafé  déjà-vu x y  z \u{3000}q end. \
                    abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz tail";
        let mut cutter = Cutter::new(sizes);
        let mut pieces = Vec::new();
        let mut pos = 0;
        while pos < text.len() {
            let end = block_end(text, pos, sizes.block);
            cutter.push_text(&text[pos..end]);
            pieces.extend(std::iter::from_fn(|| cutter.pop()));
            pos = end;
        }
        cutter.end_document();
        pieces.extend(std::iter::from_fn(|| cutter.pop()));
        let joined: String = pieces.iter().map(|p| p.text.as_str()).collect();
        assert_eq!(joined, text);
        assert_eq!(pieces[0].start, PieceStart::Document);
        let mut at = 0;
        for p in &pieces {
            if p.start == PieceStart::Space {
                let (before, after) = text.split_at(at);
                assert!(after.starts_with(' '), "cut at {at}");
                assert!(!before.ends_with(char::is_whitespace), "cut at {at}");
                assert!(!after[1..].starts_with(char::is_whitespace), "cut at {at}");
            }
            assert!(p.text.len() <= sizes.max_piece + sizes.block);
            at += p.text.len();
        }
        let starts: Vec<PieceStart> = pieces.iter().map(|p| p.start).collect();
        assert!(starts.contains(&PieceStart::Space) && starts.contains(&PieceStart::Forced));
    }
}
