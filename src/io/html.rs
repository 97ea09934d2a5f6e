//! Putting text and data into HTML pages so that it stays data: one escaper for element text
//! and attribute values ([`escape_markup`]), one encoder for JSON embedded in a page
//! ([`embeddable_json`]) and one check for links taken from data files ([`web_link`]).

use serde::Serialize;

/// Text for HTML and XML element content and quoted attribute values: `& < > " '` become
/// entities; control characters (which XML 1.0 cannot hold) are shown as `\xNN`.
pub fn escape_markup(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if (c as u32) < 0x20 || matches!(c, '\u{7f}' | '\u{fffe}' | '\u{ffff}') => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out
}

/// `value` as JSON that can be put anywhere in an HTML page, inside a `<script>` element
/// included: `<`, `>`, `&`, U+2028 and U+2029 are written as `\u003c`-style escapes. They can
/// only occur inside JSON strings, where the escape means the same character, so the text
/// still parses to the same value (as JSON and as JavaScript), and no `</script>`, `<!--` or
/// `]]>` can appear in it.
pub fn embeddable_json<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<String> {
    let json = serde_json::to_string(value)?;
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    Ok(out)
}

/// `link` when it is an absolute `http:` or `https:` URL without spaces or control
/// characters: the only kind of link from a data file that a page may use as a link or a frame
/// source. Anything else (`javascript:`, `data:`, relative paths, ...) is None and is shown as
/// text, if at all.
pub fn web_link(link: &str) -> Option<&str> {
    let has_scheme = |scheme: &str| {
        link.get(..scheme.len())
            .is_some_and(|s| s.eq_ignore_ascii_case(scheme))
            && link.len() > scheme.len()
    };
    let clean = link
        .chars()
        .all(|c| !c.is_whitespace() && !c.is_control() && c != '\\');
    ((has_scheme("http://") || has_scheme("https://")) && clean).then_some(link)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    #[test]
    fn markup_is_escaped() {
        assert_eq!(
            escape_markup("<a href=\"x\">'&'</a>\x1a"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;\\x1a"
        );
    }

    /// Texts that end or confuse a `<script>` element, or JavaScript string literals.
    const NASTY: [&str; 8] = [
        "</script><script>window.__pwned=1</script>",
        "<!--<script>",
        "</SCRIPT >",
        "]]>&amp;",
        "line\u{2028}separator\u{2029}paragraph",
        "\"quoted\" \\ back\\slash \u{0} nul \u{7f}",
        "<\\/ already escaped",
        "plain text",
    ];

    #[test]
    fn embedded_json_parses_back_to_the_same_value() {
        let value = json!({ "texts": NASTY, "<key>": [1.5, null, true], "nested": { "&": "<>" } });
        let text = embeddable_json(&value).unwrap();
        let back: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, value);
        for bad in ['<', '>', '&', '\u{2028}', '\u{2029}'] {
            assert!(!text.contains(bad), "{bad:?} left in {text}");
        }
    }

    #[test]
    fn embedded_json_of_any_text_parses_back() {
        use proptest::prelude::*;
        proptest!(|(texts in proptest::collection::vec(".*", 0..8))| {
            let text = embeddable_json(&texts).unwrap();
            let back: Vec<String> = serde_json::from_str(&text).unwrap();
            prop_assert_eq!(back, texts);
            prop_assert!(!text.contains('<') && !text.contains('>') && !text.contains('&'));
        });
    }

    #[test]
    fn only_web_links_are_links() {
        for good in [
            "https://www.neuronpedia.org/gpt2-small/0-res-jb/123",
            "HTTP://example.org",
        ] {
            assert_eq!(web_link(good), Some(good));
        }
        for bad in [
            "javascript:window.__pwned=1",
            "JavaScript:alert(1)",
            " https://x.org",
            "java\tscript:alert(1)",
            "https://x.org/\nx",
            "data:text/html,<script>alert(1)</script>",
            "vbscript:x",
            "//evil.example/x",
            "/local/path",
            "https:",
            "https://",
            "https:\\\\evil",
            "",
        ] {
            assert_eq!(web_link(bad), None, "{bad:?}");
        }
    }
}
