//! Text encodings: [`describe_bytes`] tells what a file's bytes look like when they are not
//! UTF-8 text (every encoding error says it), and whole text files are read as UTF-8 with a
//! byte-order mark skipped.

use anyhow::{Context, Result};
use std::path::Path;

/// How many bytes of a file's start [`describe_bytes`] looks at.
pub const HEAD_BYTES: usize = 4096;

/// The UTF-8 byte-order mark, which text readers accept and skip (as Python's `utf-8-sig`).
pub const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// What `bytes` (a file's first bytes, or those from a bad byte on) look like when they are
/// not UTF-8 text: UTF-16 or UTF-32 (by byte-order mark or by their NUL bytes), gzip, zstd,
/// xz, bzip2 or zip data, other binary data, or Latin-1 / Windows-1252 text; None when nothing
/// is recognised.
pub fn describe_bytes(bytes: &[u8]) -> Option<String> {
    const MAGIC: [(&[u8], &str); 9] = [
        (
            b"\xFF\xFE\x00\x00",
            "UTF-32 LE text (byte-order mark FF FE 00 00)",
        ),
        (
            b"\x00\x00\xFE\xFF",
            "UTF-32 BE text (byte-order mark 00 00 FE FF)",
        ),
        (b"\xFF\xFE", "UTF-16 LE text (byte-order mark FF FE)"),
        (b"\xFE\xFF", "UTF-16 BE text (byte-order mark FE FF)"),
        (b"\x1F\x8B", "gzip-compressed data"),
        (b"\x28\xB5\x2F\xFD", "zstd-compressed data"),
        (b"\xFD7zXZ\x00", "xz-compressed data"),
        (b"BZh", "bzip2-compressed data"),
        (b"PK\x03\x04", "a zip archive"),
    ];
    if let Some((_, what)) = MAGIC.iter().find(|(magic, _)| bytes.starts_with(magic)) {
        return Some(what.to_string());
    }
    if bytes.contains(&0) {
        return Some(nul_pattern(bytes).to_string());
    }
    latin1_looking(bytes).then(|| "Latin-1 / Windows-1252 text".to_string())
}

/// What bytes holding NULs look like: UTF-16 or UTF-32 without a byte-order mark when the
/// NULs fall in their pattern (ASCII text), else binary data.
fn nul_pattern(bytes: &[u8]) -> &'static str {
    let share = |width: usize, lane: usize| {
        let lane_bytes: Vec<u8> = bytes.iter().skip(lane).step_by(width).copied().collect();
        lane_bytes.iter().filter(|&&b| b == 0).count() as f64 / lane_bytes.len().max(1) as f64
    };
    let (even, odd) = (share(2, 0), share(2, 1));
    let lanes: Vec<f64> = (0..4).map(|l| share(4, l)).collect();
    if bytes.len() >= 4 && lanes[0] < 0.2 && lanes[1..].iter().all(|&s| s > 0.8) {
        "UTF-32 LE text without a byte-order mark"
    } else if bytes.len() >= 4 && lanes[3] < 0.2 && lanes[..3].iter().all(|&s| s > 0.8) {
        "UTF-32 BE text without a byte-order mark"
    } else if odd > 0.5 && even < 0.2 {
        "UTF-16 LE text without a byte-order mark"
    } else if even > 0.5 && odd < 0.2 {
        "UTF-16 BE text without a byte-order mark"
    } else {
        "binary data (it holds NUL bytes)"
    }
}

/// Whether `bytes` are not UTF-8 but their bytes ≥ 0x80 stand alone between ASCII ones, as
/// accented letters of Latin-1 / Windows-1252 text do.
fn latin1_looking(bytes: &[u8]) -> bool {
    let Err(e) = std::str::from_utf8(bytes) else {
        return false;
    };
    let bad = &bytes[e.valid_up_to()..];
    let lone = |w: &[u8]| w[0] >= 0x80 && !(0x80..0xC0).contains(&w[1]);
    match bad {
        [b] => *b >= 0xA0,
        [first, second, ..] => lone(&[*first, *second]),
        [] => false,
    }
}

/// ", its bytes look like …" for messages, or nothing when `bytes` look like nothing known.
pub fn looks_like(bytes: &[u8]) -> String {
    match describe_bytes(bytes) {
        Some(what) => format!(": its bytes look like {what}; saecooc reads UTF-8 text"),
        None => String::new(),
    }
}

/// [`looks_like`] for the first bytes of the file at `path` (nothing when it cannot be read),
/// for errors of libraries that read the file themselves (tokenizer files).
pub fn file_looks_like(path: &Path) -> String {
    use std::io::Read;
    let mut head = Vec::with_capacity(HEAD_BYTES);
    let read =
        std::fs::File::open(path).and_then(|f| f.take(HEAD_BYTES as u64).read_to_end(&mut head));
    match read {
        Ok(_) => looks_like(&head),
        Err(_) => String::new(),
    }
}

/// Checks the first bytes of a text file (or of its decompressed text): UTF-16, UTF-32,
/// compressed or binary data is an error naming `path` and what the bytes look like. Returns
/// how many bytes to skip: a UTF-8 byte-order mark's 3, else 0.
pub fn check_text_head(head: &[u8], path: &Path) -> Result<usize> {
    if head.starts_with(UTF8_BOM) {
        return Ok(UTF8_BOM.len());
    }
    let head = &head[..head.len().min(HEAD_BYTES)];
    let valid = match std::str::from_utf8(head) {
        Ok(_) => true,
        // A character cut off by the end of the head is no sign of another encoding.
        Err(e) => e.error_len().is_none(),
    };
    let foreign = head.contains(&0)
        || !valid && describe_bytes(head).is_some_and(|d| !d.starts_with("Latin-1"));
    anyhow::ensure!(
        !foreign,
        "{} is not UTF-8 text{}",
        path.display(),
        looks_like(head)
    );
    Ok(0)
}

/// The text of a whole file read into memory (a config, a `cfg.json`): a UTF-8 byte-order mark
/// is skipped, and text that is not UTF-8 is an error naming `path`, the first bad byte and
/// what the bytes look like.
pub fn text_of<'a>(bytes: &'a [u8], path: &Path) -> Result<&'a str> {
    let skip = check_text_head(bytes, path)?;
    std::str::from_utf8(&bytes[skip..]).map_err(|e| {
        let at = skip + e.valid_up_to();
        not_utf8(
            path,
            at as u64,
            &bytes[..bytes.len().min(HEAD_BYTES)],
            &bytes[at..],
        )
    })
}

/// Reads the UTF-8 text file `path` ([`text_of`]).
pub fn read_text_file(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(text_of(&bytes, path)?.to_string())
}

/// The error for a bad UTF-8 byte at `offset` in `path`, saying what the file's `head` (or,
/// failing that, the bytes from the bad one on, `at_bad`) look like.
pub fn not_utf8(path: &Path, offset: u64, head: &[u8], at_bad: &[u8]) -> anyhow::Error {
    not_utf8_in(path, offset, "", head, at_bad)
}

/// [`not_utf8`] with a `note` after the offset (" of the decompressed text").
pub fn not_utf8_in(
    path: &Path,
    offset: u64,
    note: &str,
    head: &[u8],
    at_bad: &[u8],
) -> anyhow::Error {
    let described = describe_bytes(head)
        .filter(|d| !d.starts_with("Latin-1"))
        .map(|_| looks_like(head))
        .unwrap_or_else(|| looks_like(&at_bad[..at_bad.len().min(16)]));
    anyhow::anyhow!(
        "{} is not valid UTF-8 (first bad byte at offset {offset}{note}){described}",
        path.display()
    )
}
