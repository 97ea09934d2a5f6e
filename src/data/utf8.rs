//! UTF-8 read a block at a time, with invalid bytes reported by their offset in the file and
//! described by [`crate::encoding::describe_bytes`].

use crate::encoding::{not_utf8_in, HEAD_BYTES};
use std::path::Path;

/// UTF-8 arriving a block at a time: a character split between blocks is carried over, and
/// the first invalid byte is reported by its offset in the file.
#[derive(Default)]
pub(super) struct Utf8Stream {
    carry: Vec<u8>,
    carry_at: u64,
    /// The first [`HEAD_BYTES`] bytes pushed, and those from the first bad byte on, for
    /// [`Utf8Stream::error`].
    head: Vec<u8>,
    bad: Vec<u8>,
}

impl Utf8Stream {
    /// Appends the text of `bytes`, which start at file offset `at`, to `out`.
    pub(super) fn push(
        &mut self,
        mut bytes: &[u8],
        mut at: u64,
        out: &mut String,
    ) -> Result<(), u64> {
        let room = HEAD_BYTES.saturating_sub(self.head.len()).min(bytes.len());
        self.head.extend_from_slice(&bytes[..room]);
        if let Some(&lead) = self.carry.first() {
            let width = match lead {
                0xC0..=0xDF => 2,
                0xE0..=0xEF => 3,
                _ => 4,
            };
            let take = (width - self.carry.len()).min(bytes.len());
            self.carry.extend_from_slice(&bytes[..take]);
            (bytes, at) = (&bytes[take..], at + take as u64);
            if self.carry.len() < width {
                return Ok(());
            }
            if std::str::from_utf8(&self.carry).is_err() {
                self.bad = self.carry.clone();
                return Err(self.carry_at);
            }
            out.push_str(std::str::from_utf8(&self.carry).expect("checked valid"));
            self.carry.clear();
        }
        let valid = match std::str::from_utf8(bytes) {
            Ok(text) => {
                out.push_str(text);
                return Ok(());
            }
            Err(e) if e.error_len().is_some() => {
                let bad = &bytes[e.valid_up_to()..];
                self.bad = bad[..bad.len().min(16)].to_vec();
                return Err(at + e.valid_up_to() as u64);
            }
            Err(e) => e.valid_up_to(),
        };
        out.push_str(std::str::from_utf8(&bytes[..valid]).expect("checked valid"));
        self.carry.extend_from_slice(&bytes[valid..]);
        self.carry_at = at + valid as u64;
        Ok(())
    }

    /// Checks that no character is left unfinished (at the end of the text, or before a byte
    /// that cannot continue it).
    pub(super) fn finish(&mut self) -> Result<(), u64> {
        if self.carry.is_empty() {
            Ok(())
        } else {
            self.bad = self.carry.clone();
            Err(self.carry_at)
        }
    }

    /// The error for the bad byte at `offset` of `path` that `push` or `finish` reported,
    /// saying what the bytes look like; `note` follows the offset.
    pub(super) fn error(&self, path: &Path, offset: u64, note: &str) -> anyhow::Error {
        not_utf8_in(path, offset, note, &self.head, &self.bad)
    }
}

#[cfg(test)]
mod tests {
    use crate::data::tests::{read_with, tiny};

    #[test]
    fn invalid_utf8_is_reported_at_its_offset_whatever_the_blocks() {
        let cases: [&[u8]; 5] = [
            b"ok\n\xff\xfe bad\n",
            "ab\u{e9}cd\n".as_bytes().split_at(3).0, // a character cut off by the end
            b"abc\xe6\x97x\n",                       // a character cut off by an ASCII byte
            b"\xe6\x97\xa5\xe6\x97",
            b"x\xed\xa0\x80y", // an encoded surrogate
        ];
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.txt");
        for bytes in cases {
            std::fs::write(&path, bytes).unwrap();
            let offset = String::from_utf8(bytes.to_vec())
                .unwrap_err()
                .utf8_error()
                .valid_up_to();
            for block in 1..=5 {
                let err = format!("{:#}", read_with(&path, tiny(block)).unwrap_err());
                assert!(
                    err.contains("not valid UTF-8") && err.contains(&format!("offset {offset})")),
                    "{bytes:?} block {block}: {err}"
                );
            }
        }
    }
}
