//! Python-compatible text formatting.
//!
//! The original pipeline names files after `str(float(t))` and writes CSV floats with Python's
//! `repr`, so users' notebooks depend on those exact strings. These helpers reproduce them,
//! with the original's names of SAE folders ([`neat_sae_id`]) and the check of the names that
//! become folders ([`check_name`]).

use anyhow::{bail, Result};

/// Formats `x` exactly as Python's `repr(float(x))` does (`1.5`, `10.0`, `1e-05`, `1.5e+16`).
pub fn float_repr(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.into();
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    // Rust's `{:e}` prints the shortest digits that round-trip, like Python's repr.
    let sci = format!("{x:e}");
    let (mantissa, exp) = sci
        .split_once('e')
        .expect("LowerExp always has an exponent");
    let exp: i32 = exp.parse().expect("LowerExp exponent is an integer");
    let sign = if mantissa.starts_with('-') { "-" } else { "" };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let body = if (-4..16).contains(&exp) {
        let point = exp + 1;
        if point <= 0 {
            format!("0.{}{}", "0".repeat((-point) as usize), digits)
        } else if point as usize >= digits.len() {
            format!("{}{}.0", digits, "0".repeat(point as usize - digits.len()))
        } else {
            format!(
                "{}.{}",
                &digits[..point as usize],
                &digits[point as usize..]
            )
        }
    } else {
        let mantissa = if digits.len() > 1 {
            format!("{}.{}", &digits[..1], &digits[1..])
        } else {
            digits
        };
        format!(
            "{mantissa}e{}{:02}",
            if exp < 0 { '-' } else { '+' },
            exp.abs()
        )
    };
    format!("{sign}{body}")
}

/// The threshold tag used in the original's file names: `str(float(t)).replace(".", "_")`.
pub fn threshold_tag(t: f64) -> String {
    float_repr(t).replace('.', "_")
}

/// The original's "neat" SAE id: every `.` and `/` replaced by `_`.
pub fn neat_sae_id(sae_id: &str) -> String {
    sae_id.replace(['.', '/'], "_")
}

/// Checks a name that becomes part of a path (a model or release name, an SAE id): not empty,
/// no control characters and no `\`; a hub-style name may have `/` between its parts
/// (`google/gemma-2-2b`, `layer_12/width_16k/canonical`), none of them empty, `.` or `..`, so
/// that the name can neither be absolute nor leave its folder. The error names `key` and the
/// value. How a checked name becomes a folder name is in docs/formats.md ("Results folder
/// layout").
pub fn check_name(key: &str, value: &str) -> Result<()> {
    let problem = if value.is_empty() {
        "a name may not be empty"
    } else if value.chars().any(char::is_control) {
        "a name may not contain control characters"
    } else if value.contains('\\') {
        "a name may not contain `\\` (a hub-style name puts `/` between its parts)"
    } else if value.starts_with('/') {
        "a name may not be an absolute path"
    } else if value
        .split('/')
        .any(|part| part.is_empty() || part == "." || part == "..")
    {
        "the parts of a hub-style name (between `/`) may not be empty, `.` or `..`"
    } else {
        return Ok(());
    };
    bail!("{key} is {value:?}: {problem}")
}

/// True for characters Python's `str.isprintable()` rejects, for the ranges that occur in
/// tokenizer vocabularies: controls (Cc), format characters (Cf), separators other than the
/// ASCII space (Zs, Zl, Zp) and private use (Co). Unassigned code points (Cn) are treated as
/// printable. The ranges are those of CPython 3.11.
fn is_non_printable(c: char) -> bool {
    let u = c as u32;
    matches!(u,
        0x00..=0x1f | 0x7f..=0xa0 | 0xad | 0x600..=0x605 | 0x61c | 0x6dd | 0x70f | 0x890..=0x891
        | 0x8e2 | 0x1680 | 0x180e | 0x2000..=0x200f | 0x2028..=0x202f | 0x205f..=0x2064
        | 0x2066..=0x206f | 0x3000 | 0xe000..=0xf8ff | 0xfeff | 0xfff9..=0xfffb | 0x110bd | 0x110cd
        | 0x13430..=0x13438 | 0x1bca0..=0x1bca3 | 0x1d173..=0x1d17a | 0xe0001 | 0xe0020..=0xe007f
        | 0xf0000..=0xffffd | 0x100000..=0x10fffd)
}

/// Formats `s` as Python's `repr(str)` does: single quotes unless the text has `'` and no `"`,
/// backslash escapes for the quote, `\\`, `\n`, `\r`, `\t`, and `\xNN`/`\uNNNN`/`\UNNNNNNNN` for
/// non-printable characters.
pub fn str_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if c != ' ' && is_non_printable(c) => {
                let u = c as u32;
                if u < 0x100 {
                    out.push_str(&format!("\\x{u:02x}"));
                } else if u < 0x10000 {
                    out.push_str(&format!("\\u{u:04x}"));
                } else {
                    out.push_str(&format!("\\U{u:08x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// Formats strings as Python's `repr(list_of_str)`: `['a', "b'c"]`.
pub fn list_repr<S: AsRef<str>>(items: &[S]) -> String {
    let parts: Vec<String> = items.iter().map(|s| str_repr(s.as_ref())).collect();
    format!("[{}]", parts.join(", "))
}

/// Parses a Python list-of-strings repr (`['a', "b's"]`), the inverse of [`list_repr`]
/// (escapes `\n \t \r \\ \' \" \xHH \uHHHH \UHHHHHHHH`).
pub fn parse_list_repr(s: &str) -> Vec<String> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let q = chars[i];
        i += 1;
        if q != '\'' && q != '"' {
            continue;
        }
        let mut item = String::new();
        while i < chars.len() && chars[i] != q {
            if chars[i] == '\\' && i + 1 < chars.len() {
                i += 1;
                let width = match chars[i] {
                    'x' => 2,
                    'u' => 4,
                    'U' => 8,
                    _ => 0,
                };
                match chars[i] {
                    'n' => item.push('\n'),
                    't' => item.push('\t'),
                    'r' => item.push('\r'),
                    _ if width > 0 && i + width < chars.len() => {
                        let hex: String = chars[i + 1..=i + width].iter().collect();
                        if let Some(c) = u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32)
                        {
                            item.push(c);
                        }
                        i += width;
                    }
                    c => item.push(c),
                }
            } else {
                item.push(chars[i]);
            }
            i += 1;
        }
        out.push(item);
        i += 1;
    }
    out
}

/// Percent-encodes as Python's `urllib.parse.quote(s)` (safe: letters, digits, `_.-~/`).
pub fn url_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"_.-~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_repr_matches_python() {
        // Expected strings are what CPython 3 prints for repr(float(x)).
        let cases: &[(f64, &str)] = &[
            (1.5, "1.5"),
            (0.0, "0.0"),
            (10.0, "10.0"),
            (0.1, "0.1"),
            (27667.0, "27667.0"),
            (2.0 / 3.0, "0.6666666666666666"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (1.5e16, "1.5e+16"),
            (1e16, "1e+16"),
            (123456789012345.0, "123456789012345.0"),
            (-2.5, "-2.5"),
            (0.0009765625, "0.0009765625"),
            (0.8104276870951117, "0.8104276870951117"),
            (f64::INFINITY, "inf"),
        ];
        for (x, want) in cases {
            assert_eq!(float_repr(*x), *want, "repr of {x}");
        }
    }

    #[test]
    fn str_and_list_repr_match_python() {
        // Expected strings are CPython's repr() of the same values.
        assert_eq!(str_repr(" regard"), "' regard'");
        assert_eq!(str_repr("'"), "\"'\"");
        assert_eq!(str_repr("it's \"x\""), "'it\\'s \"x\"'");
        assert_eq!(str_repr("a\\b\n\t"), "'a\\\\b\\n\\t'");
        assert_eq!(str_repr("\u{a0}x\u{200b}\u{7f}"), "'\\xa0x\\u200b\\x7f'");
        assert_eq!(str_repr("’ café 日本"), "'’ café 日本'");
        assert_eq!(str_repr("\u{f0000}"), "'\\U000f0000'");
        assert_eq!(
            list_repr(&["’", " Jr", "'", ","]),
            "['’', ' Jr', \"'\", ',']"
        );
        assert_eq!(list_repr::<&str>(&[]), "[]");
    }

    #[test]
    fn list_reprs_parse_back() {
        assert_eq!(
            parse_list_repr(r#"[' regard', "'s", 'a\'b', '\n', '\x1a']"#),
            [" regard", "'s", "a'b", "\n", "\u{1a}"]
        );
        assert!(parse_list_repr("[]").is_empty());
        let odd = [" café", "\u{200b}x", "\u{f0000}", "it's \"q\"", "a\\b"];
        assert_eq!(parse_list_repr(&list_repr(&odd)), odd);
    }

    #[test]
    fn url_quote_matches_python() {
        let q =
            url_quote(r#"[{"modelId": "gpt2-small", "layer": "8-res_fs768-jb", "index": "0"}]"#);
        assert_eq!(
            q,
            "%5B%7B%22modelId%22%3A%20%22gpt2-small%22%2C%20%22layer%22%3A%20%228-res_fs768-jb%22%2C%20%22index%22%3A%20%220%22%7D%5D"
        );
        assert_eq!(url_quote("a/b é"), "a/b%20%C3%A9");
    }

    #[test]
    fn threshold_tags_and_neat_ids() {
        assert_eq!(threshold_tag(1.5), "1_5");
        assert_eq!(threshold_tag(0.0), "0_0");
        assert_eq!(threshold_tag(10.0), "10_0");
        assert_eq!(threshold_tag(0.1), "0_1");
        assert_eq!(
            neat_sae_id("blocks.8.hook_resid_pre_24576"),
            "blocks_8_hook_resid_pre_24576"
        );
        assert_eq!(
            neat_sae_id("layer_12/width_16k/canonical"),
            "layer_12_width_16k_canonical"
        );
    }
}
