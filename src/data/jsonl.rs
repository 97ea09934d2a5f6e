//! `.jsonl` files, one document per line (a string field), scanned as they are read so that
//! a line of any length is never held whole. `.jsonl.zst` and `.jsonl.gz` files are
//! decompressed as they are read, a block at a time, into the same scanner.

use super::open_file;
use super::pieces::{Cutter, PieceSizes};
use super::utf8::Utf8Stream;
use crate::encoding::check_text_head;
use anyhow::{bail, ensure, Context, Result};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// JSON nesting deeper than this is an error (serde_json's limit).
const MAX_JSON_DEPTH: usize = 128;

/// How a JSONL file is stored, from its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Compression {
    /// `.jsonl`
    Plain,
    /// `.jsonl.zst`: Zstandard (one frame or several, as `zstd` and the pile write them).
    Zstd,
    /// `.jsonl.gz`: gzip (one member or several, as `gzip`, `pigz` and `bgzip` write them).
    Gzip,
}

impl Compression {
    /// The endings of JSONL file names, each with how such a file is stored.
    pub(super) const ENDINGS: [(&'static str, Compression); 3] = [
        (".jsonl", Compression::Plain),
        (".jsonl.zst", Compression::Zstd),
        (".jsonl.gz", Compression::Gzip),
    ];

    /// How a file named `name` is stored, or `None` when it is no JSONL file.
    pub(super) fn of(name: &str) -> Option<Self> {
        Self::ENDINGS
            .iter()
            .find(|(ending, _)| name.ends_with(ending))
            .map(|&(_, c)| c)
    }

    fn name(self) -> &'static str {
        match self {
            Self::Plain => "plain",
            Self::Zstd => "zstd",
            Self::Gzip => "gzip",
        }
    }

    /// The text of `raw`, decompressed as it is read. A truncated or corrupt stream is a read
    /// error (zstd: an incomplete frame; gzip: a corrupt deflate stream or a missing or wrong
    /// CRC-32 and length trailer), never an early end.
    fn decoder<R: Read + Send + 'static>(self, raw: R) -> std::io::Result<Box<dyn Read + Send>> {
        Ok(match self {
            Self::Plain => Box::new(raw),
            Self::Zstd => Box::new(zstd::stream::read::Decoder::new(raw)?),
            Self::Gzip => Box::new(flate2::read::MultiGzDecoder::new(raw)),
        })
    }
}

/// The `text_field` string of each line of a `.jsonl` file. Each line is scanned as it is read:
/// other values are checked and skipped, the field's string is decoded a block at a time, so a
/// line of any length is never held whole. Blank lines are skipped.
pub(super) struct JsonlReader {
    json: JsonScanner,
    field: String,
    /// Inside the field's string.
    in_text: bool,
    pub(super) cutter: Cutter,
    done: bool,
}

/// A JSONL file read a byte at a time, values checked as serde_json checks them.
struct JsonScanner {
    path: PathBuf,
    compression: Compression,
    /// The file's text (decompressed).
    src: BufReader<Box<dyn Read + Send>>,
    /// Offset in the (decompressed) text of the next byte of `src`.
    offset: u64,
    /// Line number (from 1) of the line being read.
    line: usize,
    utf8: Utf8Stream,
    /// Bytes of a string decoded at a time.
    block: usize,
}

impl JsonlReader {
    pub(super) fn open(
        path: &Path,
        compression: Compression,
        field: &str,
        sizes: PieceSizes,
    ) -> Result<Self> {
        Self::from_raw(path, open_file(path)?, compression, field, sizes)
    }

    /// The reader of the file at `path` whose bytes (compressed as `compression` says) `raw`
    /// reads.
    pub(super) fn from_raw<R: Read + Send + 'static>(
        path: &Path,
        raw: R,
        compression: Compression,
        field: &str,
        sizes: PieceSizes,
    ) -> Result<Self> {
        let text = compression.decoder(raw).with_context(|| {
            format!(
                "cannot start {} decompression of {}",
                compression.name(),
                path.display()
            )
        })?;
        Ok(Self {
            json: JsonScanner {
                path: path.to_path_buf(),
                compression,
                src: BufReader::with_capacity(sizes.block, text),
                offset: 0,
                line: 1,
                utf8: Utf8Stream::default(),
                block: sizes.block,
            },
            field: field.to_string(),
            in_text: false,
            cutter: Cutter::new(sizes),
            done: false,
        })
    }

    /// Hands the cutter the next block of a document, or starts the next line; false at the
    /// end of the file.
    pub(super) fn feed(&mut self) -> Result<bool> {
        if self.in_text {
            self.read_text()?;
        } else if self.done {
            return Ok(false);
        } else {
            self.in_text = self.start_line()?;
            self.done = !self.in_text;
        }
        Ok(true)
    }

    /// Decodes up to a block of the field's string; at its end, checks the rest of the line.
    fn read_text(&mut self) -> Result<()> {
        let mut text = String::new();
        let ended = self.json.string_part(&mut text, self.json.block)?;
        self.cutter.push_text(&text);
        if ended {
            self.in_text = false;
            if self.seek_field(false)? {
                bail!(
                    "{}: field '{}' appears twice",
                    self.json.at_line(),
                    self.field
                );
            }
            self.json.end_of_line()?;
            self.cutter.end_document();
        }
        Ok(())
    }

    /// Skips blank lines and reads the next line up to the start of the field's string: true
    /// when there, false at the end of the file.
    fn start_line(&mut self) -> Result<bool> {
        if self.json.offset == 0 {
            self.json.check_head()?;
        }
        loop {
            self.json.skip_ws()?;
            match self.json.peek()? {
                None => return Ok(false),
                Some(b'\n') => self.json.newline(),
                Some(b'{') => break,
                Some(_) => {
                    // Valid JSON that is no object lacks the field; anything else is invalid.
                    let missing = self.no_string_field();
                    self.json.skip_value(0)?;
                    self.json.end_of_line()?;
                    return Err(missing);
                }
            }
        }
        self.json.bump();
        if self.seek_field(true)? {
            return Ok(true);
        }
        let missing = self.no_string_field();
        self.json.end_of_line()?;
        Err(missing)
    }

    /// Reads object members up to the field's string (true: just inside it) or the object's
    /// end (false). `first`: no member was read yet.
    fn seek_field(&mut self, mut first: bool) -> Result<bool> {
        loop {
            self.json.skip_ws()?;
            match self.json.next()? {
                Some(b'}') => return Ok(false),
                Some(b',') if !first => {
                    self.json.skip_ws()?;
                    self.json.expect(b'"')?;
                }
                Some(b'"') if first => {}
                _ => return Err(self.json.invalid("expected a member or '}'")),
            }
            first = false;
            let is_field = self.json.string_is(&self.field)?;
            self.json.skip_ws()?;
            self.json.expect(b':')?;
            self.json.skip_ws()?;
            if is_field {
                return match self.json.next()? {
                    Some(b'"') => Ok(true),
                    _ => Err(self.no_string_field()),
                };
            }
            self.json.skip_value(1)?;
        }
    }

    fn no_string_field(&self) -> anyhow::Error {
        anyhow::anyhow!("{}: no string field '{}'", self.json.at_line(), self.field)
    }
}

impl JsonScanner {
    /// After the top-level value: only whitespace up to the end of the line.
    fn end_of_line(&mut self) -> Result<()> {
        self.skip_ws()?;
        match self.next()? {
            None => Ok(()),
            Some(b'\n') => {
                self.line += 1;
                Ok(())
            }
            Some(_) => Err(self.invalid("trailing characters")),
        }
    }

    /// Checks and skips one JSON value at nesting `depth`.
    fn skip_value(&mut self, depth: usize) -> Result<()> {
        ensure!(depth < MAX_JSON_DEPTH, self.invalid("nested too deeply"));
        match self.next()? {
            Some(b'"') => self.string_is("").map(drop),
            Some(open @ (b'{' | b'[')) => self.skip_container(open, depth),
            Some(b't') => self.expect_all(b"rue"),
            Some(b'f') => self.expect_all(b"alse"),
            Some(b'n') => self.expect_all(b"ull"),
            Some(b @ (b'-' | b'0'..=b'9')) => self.skip_number(b),
            _ => Err(self.invalid("expected a value")),
        }
    }

    /// The rest of an object or array after its opening bracket.
    fn skip_container(&mut self, open: u8, depth: usize) -> Result<()> {
        let close = if open == b'{' { b'}' } else { b']' };
        self.skip_ws()?;
        if self.peek()? == Some(close) {
            self.bump();
            return Ok(());
        }
        loop {
            if open == b'{' {
                self.expect(b'"')?;
                self.string_is("")?;
                self.skip_ws()?;
                self.expect(b':')?;
                self.skip_ws()?;
            }
            self.skip_value(depth + 1)?;
            self.skip_ws()?;
            match self.next()? {
                Some(b',') => self.skip_ws()?,
                Some(b) if b == close => return Ok(()),
                _ => return Err(self.invalid("expected ',' or a closing bracket")),
            }
        }
    }

    /// The rest of a number after its first byte:
    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
    fn skip_number(&mut self, first: u8) -> Result<()> {
        let lead = if first == b'-' {
            self.next()?
        } else {
            Some(first)
        };
        match lead {
            Some(b'0') => {}
            Some(b'1'..=b'9') => self.skip_digits(0)?,
            _ => return Err(self.invalid("bad number")),
        }
        if self.peek()? == Some(b'.') {
            self.bump();
            self.skip_digits(1)?;
        }
        if matches!(self.peek()?, Some(b'e' | b'E')) {
            self.bump();
            if matches!(self.peek()?, Some(b'+' | b'-')) {
                self.bump();
            }
            self.skip_digits(1)?;
        }
        Ok(())
    }

    /// Skips digits, at least `min` of them.
    fn skip_digits(&mut self, min: usize) -> Result<()> {
        let mut n = 0;
        while matches!(self.peek()?, Some(b'0'..=b'9')) {
            self.bump();
            n += 1;
        }
        ensure!(n >= min, self.invalid("bad number"));
        Ok(())
    }

    /// Reads a whole string after its opening quote, holding at most a block of it, and says
    /// whether it equals `expected`.
    fn string_is(&mut self, expected: &str) -> Result<bool> {
        let (mut pos, mut same) = (0, true);
        let mut part = String::new();
        loop {
            part.clear();
            let ended = self.string_part(&mut part, self.block)?;
            same = same
                && expected
                    .as_bytes()
                    .get(pos..)
                    .is_some_and(|rest| rest.starts_with(part.as_bytes()));
            pos += part.len();
            if ended {
                return Ok(same && pos == expected.len());
            }
        }
    }

    /// Decodes a string's text into `out` until `out` holds `limit` bytes (false) or the
    /// closing quote is read (true).
    fn string_part(&mut self, out: &mut String, limit: usize) -> Result<bool> {
        while out.len() < limit {
            let buf = self
                .src
                .fill_buf()
                .map_err(|e| read_error(&self.path, self.compression, e))?;
            let Some(&first) = buf.first() else {
                return Err(self.invalid("unterminated string"));
            };
            let run = buf
                .iter()
                .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
                .unwrap_or(buf.len())
                .min(limit - out.len());
            if run > 0 {
                if let Err(at) = self.utf8.push(&buf[..run], self.offset, out) {
                    return Err(self.bad_utf8(at));
                }
                self.src.consume(run);
                self.offset += run as u64;
                continue;
            }
            if let Err(at) = self.utf8.finish() {
                return Err(self.bad_utf8(at));
            }
            self.bump();
            match first {
                b'"' => return Ok(true),
                b'\\' => out.push(self.escape()?),
                _ => return Err(self.invalid("control character in a string")),
            }
        }
        Ok(false)
    }

    /// The character of an escape, after its backslash.
    fn escape(&mut self) -> Result<char> {
        Ok(match self.next()? {
            Some(b'"') => '"',
            Some(b'\\') => '\\',
            Some(b'/') => '/',
            Some(b'b') => '\x08',
            Some(b'f') => '\x0c',
            Some(b'n') => '\n',
            Some(b'r') => '\r',
            Some(b't') => '\t',
            Some(b'u') => {
                let unit = self.hex4()?;
                let code = match unit {
                    0xD800..=0xDBFF => {
                        self.expect_all(b"\\u")
                            .map_err(|_| self.invalid("lone leading surrogate"))?;
                        let low = self.hex4()?;
                        ensure!(
                            (0xDC00..=0xDFFF).contains(&low),
                            self.invalid("lone leading surrogate")
                        );
                        0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
                    }
                    _ => unit,
                };
                char::from_u32(code).ok_or_else(|| self.invalid("lone trailing surrogate"))?
            }
            _ => return Err(self.invalid("bad escape")),
        })
    }

    /// Four hex digits of a `\u` escape.
    fn hex4(&mut self) -> Result<u32> {
        let mut value = 0;
        for _ in 0..4 {
            let digit = self.next()?.and_then(|b| (b as char).to_digit(16));
            value = value * 16 + digit.ok_or_else(|| self.invalid("bad \\u escape"))?;
        }
        Ok(value)
    }

    /// Skips spaces, tabs and carriage returns (a newline ends the line).
    fn skip_ws(&mut self) -> Result<()> {
        while matches!(self.peek()?, Some(b' ' | b'\t' | b'\r')) {
            self.bump();
        }
        Ok(())
    }

    fn newline(&mut self) {
        self.bump();
        self.line += 1;
    }

    fn expect(&mut self, byte: u8) -> Result<()> {
        match self.next()? {
            Some(b) if b == byte => Ok(()),
            _ => Err(self.invalid(&format!("expected '{}'", byte as char))),
        }
    }

    fn expect_all(&mut self, bytes: &[u8]) -> Result<()> {
        bytes.iter().try_for_each(|&b| self.expect(b))
    }

    fn peek(&mut self) -> Result<Option<u8>> {
        let buf = self
            .src
            .fill_buf()
            .map_err(|e| read_error(&self.path, self.compression, e))?;
        Ok(buf.first().copied())
    }

    fn bump(&mut self) {
        self.src.consume(1);
        self.offset += 1;
    }

    fn next(&mut self) -> Result<Option<u8>> {
        let byte = self.peek()?;
        if byte.is_some() {
            self.bump();
        }
        Ok(byte)
    }

    fn at_line(&self) -> String {
        format!("{} line {}", self.path.display(), self.line)
    }

    /// The error for the bad UTF-8 byte at `at`.
    fn bad_utf8(&self, at: u64) -> anyhow::Error {
        self.utf8
            .error(&self.path, at, decompressed(self.compression))
    }

    /// Checks the encoding of the (decompressed) text's first bytes, before anything is read,
    /// and skips a UTF-8 byte-order mark.
    fn check_head(&mut self) -> Result<()> {
        let head = self
            .src
            .fill_buf()
            .map_err(|e| read_error(&self.path, self.compression, e))?;
        let skip = check_text_head(head, &self.path)?;
        self.src.consume(skip);
        self.offset += skip as u64;
        Ok(())
    }

    fn invalid(&self, what: &str) -> anyhow::Error {
        anyhow::anyhow!(
            "{}: invalid JSON ({what}, at byte offset {}{})",
            self.at_line(),
            self.offset,
            decompressed(self.compression)
        )
    }
}

/// What an offset counts in: the file's bytes, or those of its decompressed text.
fn decompressed(compression: Compression) -> &'static str {
    match compression {
        Compression::Plain => "",
        _ => " of the decompressed text",
    }
}

/// A failure to fetch a hub file's bytes, passed through a decompressor as an I/O error.
#[derive(Debug)]
pub(super) struct RemoteReadError(pub(super) String);

impl std::fmt::Display for RemoteReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RemoteReadError {}

/// An error reading `path`; for a compressed file, most likely a truncated or corrupt stream
/// (unless its bytes could not be fetched).
fn read_error(path: &Path, compression: Compression, err: std::io::Error) -> anyhow::Error {
    let fetching = err.get_ref().is_some_and(|e| e.is::<RemoteReadError>());
    let what = if fetching || compression == Compression::Plain {
        format!("cannot read {}", path.display())
    } else {
        format!(
            "cannot decompress {} (a truncated or corrupt {} stream?)",
            path.display(),
            compression.name()
        )
    };
    anyhow::Error::new(err).context(what)
}

#[cfg(test)]
mod tests {
    use crate::data::read_documents;
    use crate::data::tests::{read_with, tiny};

    /// The documents of JSONL text as the whole-line reader read them: each non-blank line
    /// parsed by serde_json, its string field taken.
    fn serde_jsonl(text: &str) -> Option<Vec<String>> {
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).ok()?;
                Some(v.get("text")?.as_str()?.to_string())
            })
            .collect()
    }

    #[test]
    fn jsonl_fields_stream_as_serde_json_reads_them() {
        let lines = [
            r#"{"text": "plain"}"#,
            r#"{"id": 1, "text": "after an id", "more": [1, -2.5e+3, 0.1E2, true, false, null]}"#,
            r#"{"meta": {"text": "not this", "deep": [[{"a": []}], {}]}, "text": "nested before"}"#,
            r#"  {  "text"  :  "spaces" , "b" : { } }  "#,
            r#"{"text": "esc \" \\ \/ \b \f \n \r \t end"}"#,
            r#"{"text": "\u00e9\u65e5 \ud83d\ude00 \uD83D\uDC4D\u0000 x"}"#,
            r#"{"t\u0065xt": "escaped key", "text2": "other"}"#,
            r#"{"te": 1, "textt": 2, "text": "near-miss keys"}"#,
            r#"{"text": "raw é日本語 👍🏽 and a long enough tail to be cut into pieces"}"#,
            r#"{"text": ""}"#,
        ];
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.jsonl");
        for ending in ["\n", "\r\n"] {
            let text = format!("{}{ending}\n   {ending}", lines.join(ending));
            std::fs::write(&path, &text).unwrap();
            let expected = serde_jsonl(&text).unwrap();
            for block in 1..=9 {
                assert_eq!(
                    read_with(&path, tiny(block)).unwrap(),
                    expected,
                    "block {block}"
                );
            }
            assert_eq!(read_documents(&path, "text").unwrap(), expected);
        }
    }

    #[test]
    fn bad_jsonl_lines_are_errors_naming_the_line() {
        let bad = [
            (r#"{"text": "x",}"#, "invalid JSON"),
            (r#"{"text": "x"} x"#, "invalid JSON"),
            (r#"{"text": "x""#, "invalid JSON"),
            (r#"{"text": "x", "n": 01}"#, "invalid JSON"),
            (r#"{"text": "x", "n": -}"#, "invalid JSON"),
            (r#"{"text": "x", "n": tru}"#, "invalid JSON"),
            (r#"{"n": [1 2], "text": "x"}"#, "invalid JSON"),
            (r#"{"text": "\ud83d x"}"#, "invalid JSON"),
            (r#"{"text": "\ude00"}"#, "invalid JSON"),
            (r#"{"text": "\x"}"#, "invalid JSON"),
            ("{\"text\": \"tab\there\"}", "invalid JSON"),
            ("{\"text\": \"new\nline\"}", "invalid JSON"),
            ("nonsense", "invalid JSON"),
            (r#"{"body": "x"}"#, "no string field 'text'"),
            (r#"{"text": 3}"#, "no string field 'text'"),
            (r#"["text", "x"]"#, "no string field 'text'"),
            (r#"{"text": "x", "text": "y"}"#, "appears twice"),
        ];
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.jsonl");
        for (line, why) in bad {
            let text = format!("{{\"text\": \"fine\"}}\n\n{line}\n");
            std::fs::write(&path, &text).unwrap();
            if why != "appears twice" {
                assert!(serde_jsonl(&text).is_none(), "serde_json reads {line}");
            }
            for block in [1, 3, 64] {
                let err = format!("{:#}", read_with(&path, tiny(block)).unwrap_err());
                assert!(err.contains("line 3") && err.contains(why), "{line}: {err}");
            }
        }
        let deep = format!("{{\"a\": {}{}}}\n", "[".repeat(200), "]".repeat(200));
        std::fs::write(&path, deep).unwrap();
        let err = format!("{:#}", read_with(&path, tiny(64)).unwrap_err());
        assert!(err.contains("nested too deeply"), "{err}");
    }

    /// JSON as serde_json writes it, with every non-ASCII character as a `\u` escape (as
    /// Python's `json.dumps` writes it).
    fn ascii_json(json: &str) -> String {
        let mut out = String::new();
        for c in json.chars() {
            match c.is_ascii() {
                true => out.push(c),
                false => c
                    .encode_utf16(&mut [0; 2])
                    .iter()
                    .for_each(|u| out.push_str(&format!("\\u{u:04x}"))),
            }
        }
        out
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]
        #[test]
        fn any_string_in_jsonl_reads_back(
            texts in proptest::collection::vec(proptest::prelude::any::<String>(), 1..5),
            ascii in proptest::prelude::any::<bool>(),
            block in 1usize..12,
        ) {
            let lines: Vec<String> = texts
                .iter()
                .map(|t| serde_json::json!({ "a": [1, { "text": t }], "text": t, "z": t }).to_string())
                .map(|l| if ascii { ascii_json(&l) } else { l })
                .collect();
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("t.jsonl");
            std::fs::write(&path, lines.join("\n")).unwrap();
            proptest::prop_assert_eq!(read_with(&path, tiny(block)).unwrap(), texts);
        }
    }
}

#[cfg(test)]
mod compressed_tests {
    use super::{Compression, JsonlReader};
    use crate::data::tests::{read_with, tiny};
    use crate::data::{read_documents, Documents, FileReader, PieceSizes};
    use crate::hub::{Hub, Location};
    use std::io::{Read, Write};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    /// `text` zstd-compressed, as two frames split at byte `split`.
    fn zst(text: &[u8], split: usize) -> Vec<u8> {
        let mut out = zstd::encode_all(&text[..split], 3).unwrap();
        out.extend(zstd::encode_all(&text[split..], 1).unwrap());
        out
    }

    /// `text` gzipped, as two members split at byte `split`.
    fn gz(text: &[u8], split: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for part in [&text[..split], &text[split..]] {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
            enc.write_all(part).unwrap();
            out.extend(enc.finish().unwrap());
        }
        out
    }

    /// Lines with escapes, multibyte text, a blank line, members around the field and a
    /// document long enough to be cut into many pieces.
    fn sample() -> String {
        let long: String = (0..3000)
            .map(|i| {
                [
                    "word ",
                    "日本語 ",
                    "\\u00e9 ",
                    "\\n",
                    "👍🏽 ",
                    "\\ud83d\\ude00 ",
                ][i % 6]
            })
            .collect();
        [
            r#"{"text": "plain"}"#.to_string(),
            r#"{"id": 1, "text": "esc \" \\ \/ \b \f \n \r \t end", "m": [1, {"text": "no"}]}"#
                .to_string(),
            r#"{"text": "\u00e9\u65e5 \ud83d\ude00 raw é日本語 👍🏽"}"#.to_string(),
            String::new(),
            format!(r#"{{"meta": {{"a": null}}, "text": "{long}"}}"#),
            r#"{"text": ""}"#.to_string(),
            r#"{"text": "last"}"#.to_string(),
        ]
        .join("\n")
            + "\n"
    }

    #[test]
    fn compressed_jsonl_yields_the_documents_of_the_plain_file() {
        let dir = tempfile::tempdir().unwrap();
        let text = sample();
        let plain = dir.path().join("t.jsonl");
        std::fs::write(&plain, &text).unwrap();
        let expected = read_documents(&plain, "text").unwrap();
        assert_eq!(expected.len(), 6);
        assert!(expected[3].len() > 10_000 && expected[3].contains("日本語 é \n👍🏽 😀"));
        let bytes = text.as_bytes();
        // Frames and members end inside a line, inside a character and at the end of a line.
        let mid_char = text.find("本").unwrap() + 1;
        for split in [
            mid_char,
            bytes.len() / 2,
            text.find("\n").unwrap() + 1,
            bytes.len(),
        ] {
            for (name, data) in [
                ("t.jsonl.zst", zst(bytes, split)),
                ("t.jsonl.gz", gz(bytes, split)),
            ] {
                let path = dir.path().join(name);
                std::fs::write(&path, data).unwrap();
                assert_eq!(read_documents(&path, "text").unwrap(), expected, "{name}");
                for block in [1, 2, 3, 7, 64, 4096] {
                    assert_eq!(
                        read_with(&path, tiny(block)).unwrap(),
                        expected,
                        "{name} split {split} block {block}"
                    );
                }
            }
        }
    }

    #[test]
    fn truncated_or_corrupt_compressed_files_are_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let text = sample();
        let bytes = text.as_bytes();
        let whole = [
            ("t.jsonl.zst", zstd::encode_all(bytes, 3).unwrap()),
            ("t.jsonl.gz", gz(bytes, bytes.len())),
        ];
        for (name, data) in &whole {
            let path = dir.path().join(name);
            for cut in [1, 4, 8, data.len() / 2, data.len() - 4, data.len() - 1] {
                std::fs::write(&path, &data[..cut]).unwrap();
                let err = format!("{:#}", read_with(&path, PieceSizes::default()).unwrap_err());
                assert!(
                    err.contains(&path.display().to_string()) && err.contains("decompress"),
                    "{name} cut at {cut}: {err}"
                );
            }
            // Not compressed at all.
            std::fs::write(&path, bytes).unwrap();
            let err = format!("{:#}", read_with(&path, PieceSizes::default()).unwrap_err());
            assert!(err.contains(&path.display().to_string()), "{name}: {err}");
        }
        // gzip checks a CRC-32: a flipped byte in the deflate data is an error.
        let path = dir.path().join("t.jsonl.gz");
        let mut data = whole[1].1.clone();
        let at = data.len() / 2;
        data[at] ^= 0x55;
        std::fs::write(&path, &data).unwrap();
        let err = format!("{:#}", read_with(&path, PieceSizes::default()).unwrap_err());
        assert!(err.contains(&path.display().to_string()), "{err}");
    }

    #[test]
    fn json_errors_in_compressed_files_name_the_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let text = "{\"text\": \"fine\"}\n\n{\"text\": \"x\",}\n";
        let bad_utf8 = b"{\"text\": \"ok\"}\n{\"text\": \"\xff\"}\n";
        for (name, data, utf8) in [
            ("a.jsonl.zst", zst(text.as_bytes(), 5), zst(bad_utf8, 5)),
            ("a.jsonl.gz", gz(text.as_bytes(), 5), gz(bad_utf8, 5)),
        ] {
            let path = dir.path().join(name);
            std::fs::write(&path, data).unwrap();
            let err = format!("{:#}", read_with(&path, tiny(3)).unwrap_err());
            let at = format!("{} line 3: invalid JSON", path.display());
            assert!(
                err.contains(&at) && err.contains("of the decompressed text"),
                "{err}"
            );
            std::fs::write(&path, utf8).unwrap();
            let err = format!("{:#}", read_with(&path, tiny(3)).unwrap_err());
            assert!(
                err.contains(&path.display().to_string())
                    && err.contains("not valid UTF-8")
                    && err.contains("offset 25 of the decompressed text"),
                "{err}"
            );
        }
    }

    /// Counts the bytes read through it.
    struct Counting<R> {
        inner: R,
        read: Arc<AtomicU64>,
    }

    impl<R: Read> Read for Counting<R> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.inner.read(buf)?;
            self.read.fetch_add(n as u64, Ordering::Relaxed);
            Ok(n)
        }
    }

    /// About `mb` MB of JSONL lines of pseudo-random words (compressing to roughly a third).
    fn big_jsonl(mb: usize) -> Vec<u8> {
        let words = [
            "the",
            "of",
            "and",
            "sparse",
            "autoencoder",
            "latent",
            "co-occurrence",
            "graph",
            "token",
            "window",
            "résumé",
            "日本",
            "subspace",
            "feature",
            "pile",
            "compressed",
        ];
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut out = Vec::with_capacity(mb << 20);
        while out.len() < mb << 20 {
            out.extend_from_slice(b"{\"meta\": {\"pile_set_name\": \"Pile-CC\"}, \"text\": \"");
            for _ in 0..400 {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                out.extend_from_slice(words[(state >> 60) as usize].as_bytes());
                out.extend_from_slice(format!(" {} ", (state >> 40) % 1000).as_bytes());
            }
            out.extend_from_slice(b"\"}\n");
        }
        out
    }

    /// The first `n` documents of a large compressed file need only the start of the file.
    #[test]
    fn the_first_documents_of_a_large_compressed_file_read_only_its_start() {
        let dir = tempfile::tempdir().unwrap();
        let text = big_jsonl(50);
        let mut gz_enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz_enc.write_all(&text).unwrap();
        let files = [
            (
                "big.jsonl.zst",
                Compression::Zstd,
                zstd::encode_all(&text[..], 1).unwrap(),
            ),
            ("big.jsonl.gz", Compression::Gzip, gz_enc.finish().unwrap()),
        ];
        drop(text);
        for (name, compression, data) in files {
            assert!(data.len() > 8 << 20, "{name}: {} bytes", data.len());
            let path = dir.path().join(name);
            std::fs::write(&path, &data).unwrap();
            let read = Arc::new(AtomicU64::new(0));
            let raw = Counting {
                inner: std::fs::File::open(&path).unwrap(),
                read: read.clone(),
            };
            let jsonl =
                JsonlReader::from_raw(&path, raw, compression, "text", PieceSizes::default())
                    .unwrap();
            let mut reader = FileReader::Jsonl(jsonl);
            let mut docs = 0;
            while docs < 5 {
                let piece = reader.next_piece().unwrap().expect("a piece");
                docs += usize::from(piece.start == crate::data::PieceStart::Document);
            }
            let consumed = read.load(Ordering::Relaxed);
            assert!(
                consumed < 1 << 20,
                "{name}: {consumed} of {} bytes read for 5 documents",
                data.len()
            );
        }
    }

    /// A folder laid out as the pile's is read in path order, one file at a time: a run that
    /// stops in the first file never opens the others.
    #[test]
    fn a_folder_of_compressed_files_is_read_in_path_order_and_lazily() {
        let dir = tempfile::tempdir().unwrap();
        let train = dir.path().join("train");
        std::fs::create_dir(&train).unwrap();
        let line = |t: &str| format!("{{\"text\": \"{t}\"}}\n");
        std::fs::write(train.join("01.jsonl.gz"), gz(line("b").as_bytes(), 3)).unwrap();
        std::fs::write(train.join("00.jsonl.zst"), zst(line("a").as_bytes(), 3)).unwrap();
        std::fs::write(train.join("02.jsonl"), line("c")).unwrap();
        let corrupt = dir.path().join("val.jsonl.zst");
        std::fs::write(&corrupt, &zst(line("d").as_bytes(), 3)[..9]).unwrap();
        let hub = Hub::from_env(false).unwrap();
        let location = Location::Local(dir.path().to_path_buf());
        let mut docs = Documents::open(&location, &hub, "text", None).unwrap();
        let mut texts = Vec::new();
        for _ in 0..3 {
            texts.push(docs.next_piece().unwrap().expect("a piece").text);
        }
        assert_eq!(texts, ["a", "b", "c"]);
        assert_eq!(docs.local_files(), std::slice::from_ref(&corrupt));
        let err = format!("{:#}", docs.next_piece().unwrap_err());
        assert!(err.contains(&corrupt.display().to_string()), "{err}");
    }
}
