//! `.txt` files, one document per line, streamed a block at a time; lines are split as
//! Python's `str.splitlines` splits them ([`python_splitlines`]).

use super::open_file;
use super::pieces::{Cutter, PieceSizes};
use super::utf8::Utf8Stream;
use crate::encoding::check_text_head;
use anyhow::{Context, Result};
use std::io::Read;
use std::path::{Path, PathBuf};

/// Python's line breaks (`str.splitlines`): `\n`, `\r`, `\v`, `\f`, `\x1c`–`\x1e`, `\x85`,
/// U+2028 and U+2029.
fn is_line_break(c: char) -> bool {
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
}

/// Splits `text` at line breaks as `str.splitlines` does, calling `line` with every line a
/// break ends, and returns where the rest (a line not ended yet) starts. `after_cr`: the text
/// before ended with `\r`, so a `\n` starting this one belongs to that break; it is updated
/// for the text that follows.
fn split_line_breaks<'a>(
    text: &'a str,
    after_cr: &mut bool,
    mut line: impl FnMut(&'a str),
) -> usize {
    let mut chars = text.char_indices().peekable();
    let mut start = 0;
    if !text.is_empty() && std::mem::take(after_cr) && text.starts_with('\n') {
        chars.next();
        start = 1;
    }
    while let Some((i, c)) = chars.next() {
        if !is_line_break(c) {
            continue;
        }
        line(&text[start..i]);
        start = i + c.len_utf8();
        if c == '\r' {
            match chars.peek() {
                Some((_, '\n')) => {
                    chars.next();
                    start += 1;
                }
                None => *after_cr = true,
                Some(_) => {}
            }
        }
    }
    start
}

/// Python's `str.splitlines()`: lines split at every [line break](is_line_break), `\r\n`
/// counting as one, without the breaks; no empty last line after a final break.
pub fn python_splitlines(text: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let rest = split_line_breaks(text, &mut false, |l| lines.push(l));
    if rest < text.len() {
        lines.push(&text[rest..]);
    }
    lines
}

/// The lines of a `.txt` file, read a block at a time.
pub(super) struct TxtReader {
    path: PathBuf,
    src: Box<dyn Read + Send>,
    block: Vec<u8>,
    /// File offset of the next block.
    offset: u64,
    utf8: Utf8Stream,
    /// The current line has text (at the end of the file, only such a line is a document).
    line_open: bool,
    after_cr: bool,
    pub(super) cutter: Cutter,
    done: bool,
}

impl TxtReader {
    pub(super) fn open(path: &Path, sizes: PieceSizes) -> Result<Self> {
        Ok(Self::from_raw(path, Box::new(open_file(path)?), sizes))
    }

    /// The reader of the file at `path` whose bytes `src` reads.
    pub(super) fn from_raw(path: &Path, src: Box<dyn Read + Send>, sizes: PieceSizes) -> Self {
        Self {
            path: path.to_path_buf(),
            src,
            block: vec![0; sizes.block],
            offset: 0,
            utf8: Utf8Stream::default(),
            line_open: false,
            after_cr: false,
            cutter: Cutter::new(sizes),
            done: false,
        }
    }

    /// Hands the cutter the lines of the next block; false at the end of the file.
    pub(super) fn feed(&mut self) -> Result<bool> {
        if self.done {
            return Ok(false);
        }
        let n = read_some(&mut self.src, &mut self.block)
            .with_context(|| format!("cannot read {}", self.path.display()))?;
        if n == 0 {
            if let Err(at) = self.utf8.finish() {
                return Err(self.utf8.error(&self.path, at, ""));
            }
            if self.line_open {
                self.cutter.end_document();
            }
            self.done = true;
            return Ok(true);
        }
        // The file's first block shows its encoding; a UTF-8 byte-order mark is skipped.
        let skip = if self.offset == 0 {
            check_text_head(&self.block[..n], &self.path)?
        } else {
            0
        };
        let mut text = String::with_capacity(n);
        if let Err(at) = self
            .utf8
            .push(&self.block[skip..n], self.offset + skip as u64, &mut text)
        {
            return Err(self.utf8.error(&self.path, at, ""));
        }
        self.offset += n as u64;
        let (cutter, line_open) = (&mut self.cutter, &mut self.line_open);
        let rest = split_line_breaks(&text, &mut self.after_cr, |line| {
            cutter.push_text(line);
            cutter.end_document();
            *line_open = false;
        });
        if rest < text.len() {
            cutter.push_text(&text[rest..]);
            *line_open = true;
        }
        Ok(true)
    }
}

/// `read`, retried when interrupted.
fn read_some(src: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        match src.read(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::read_documents;
    use crate::data::tests::{read_with, tiny};

    #[test]
    fn python_splitlines_splits_like_python() {
        assert_eq!(
            python_splitlines("a\r\nb\rc\n\nd\x0ce\u{2028}f\n"),
            vec!["a", "b", "c", "", "d", "e", "f"]
        );
        assert_eq!(python_splitlines(""), Vec::<&str>::new());
        assert_eq!(python_splitlines("x"), vec!["x"]);
        assert_eq!(python_splitlines("\n"), vec![""]);
        // Python's own answers.
        assert_eq!(python_splitlines("\r\r\n"), vec!["", ""]);
        assert_eq!(python_splitlines("a\r"), vec!["a"]);
        assert_eq!(python_splitlines("\n\r"), vec!["", ""]);
        assert_eq!(
            python_splitlines("x\x1cy\x1d\x1ez"),
            vec!["x", "y", "", "z"]
        );
        assert_eq!(python_splitlines("a\u{85}b\u{2029}"), vec!["a", "b"]);
        assert_eq!(python_splitlines("\r\n\r\n\r\r\n\n"), vec![""; 5]);
    }

    #[test]
    fn txt_files_stream_into_the_lines_of_python_splitlines() {
        let texts = [
            "",
            "\n",
            "one line",
            "a\r\nb\rc\n\nd\x0ce\u{2028}f\n",
            "\r\n\r\n\r\r\n\n",
            "é日本語 👍🏽 x\u{85}y\u{2029}z\x1c\x1d\x1e\x0b end",
            "word word  word   w\r\n  lead and trail  \r\nlast-no-break",
            "long line without any space at all, just commas,and,more,text,to,exceed,pieces\n",
        ];
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.txt");
        for text in texts {
            std::fs::write(&path, text).unwrap();
            let expected: Vec<&str> = python_splitlines(text);
            for block in 1..=7 {
                assert_eq!(
                    read_with(&path, tiny(block)).unwrap(),
                    expected,
                    "{text:?} block {block}"
                );
            }
            assert_eq!(read_documents(&path, "text").unwrap(), expected, "{text:?}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]
        #[test]
        fn any_text_splits_into_the_lines_of_python_splitlines(
            text in "[a \r\n\x0b\x1c\u{85}\u{2028}é日👍]{0,80}",
            block in 1usize..9,
        ) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("t.txt");
            std::fs::write(&path, &text).unwrap();
            proptest::prop_assert_eq!(read_with(&path, tiny(block)).unwrap(), python_splitlines(&text));
        }
    }
}
