//! Typed reads of the keys of a JSON config file (an SAE's `cfg.json`, a model's
//! `config.json`): an absent key, or one set to `null`, gives `None` so the caller's default
//! holds; a key present with the wrong type or out of range is an error naming the file, the
//! key and the value found. Keys nobody asks for are ignored (config files carry many).

use anyhow::{bail, Result};
use serde_json::Value;

/// The keys of one JSON object in `file` (under `path`, for nested objects).
#[derive(Clone, Copy)]
pub struct JsonKeys<'a> {
    object: &'a serde_json::Map<String, Value>,
    file: &'a str,
    path: Option<&'a str>,
}

/// How a found value is shown in an error: JSON, cut short when long.
pub fn shown(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(60) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

impl<'a> JsonKeys<'a> {
    /// The keys of `value`, which must be a JSON object; `file` names it in errors.
    pub fn new(value: &'a Value, file: &'a str) -> Result<Self> {
        match value.as_object() {
            Some(object) => Ok(Self {
                object,
                file,
                path: None,
            }),
            None => bail!("{file} must hold a JSON object, found {}", shown(value)),
        }
    }

    /// The file these keys come from.
    pub fn file(&self) -> &'a str {
        self.file
    }

    /// Whether `key` is present and not null.
    pub fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Whether `key` is present and set to `null` (where that differs from absent).
    pub fn is_null(&self, key: &str) -> bool {
        self.object.get(key).is_some_and(Value::is_null)
    }

    /// The value of `key`, None when absent or null.
    pub fn get(&self, key: &str) -> Option<&'a Value> {
        self.object.get(key).filter(|v| !v.is_null())
    }

    /// The key's name as errors show it (`metadata.context_size` for nested keys).
    fn name(&self, key: &str) -> String {
        match self.path {
            Some(p) => format!("{p}.{key}"),
            None => key.to_string(),
        }
    }

    /// The error for `key` holding `found` where `want` was expected.
    pub fn wrong(&self, key: &str, want: &str, found: &Value) -> anyhow::Error {
        anyhow::anyhow!(
            "{}: {} must be {want}, found {}",
            self.file,
            self.name(key),
            shown(found)
        )
    }

    /// `value`, read from `key`, which must be present: else an error naming key and file.
    pub fn require<T>(&self, key: &str, value: Option<T>) -> Result<T> {
        value.ok_or_else(|| anyhow::anyhow!("{} has no '{}'", self.file, self.name(key)))
    }

    /// Reads `key` with `parse`, which gives None for a value of the wrong kind.
    fn typed<T>(
        &self,
        key: &str,
        want: &str,
        parse: impl Fn(&'a Value) -> Option<T>,
    ) -> Result<Option<T>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => parse(v).map(Some).ok_or_else(|| self.wrong(key, want, v)),
        }
    }

    /// A nested object (`metadata`, `activation_fn_kwargs`, ...).
    pub fn object(&self, key: &'a str) -> Result<Option<JsonKeys<'a>>> {
        self.typed(key, "an object", |v| v.as_object()).map(|o| {
            o.map(|object| JsonKeys {
                object,
                file: self.file,
                path: Some(key),
            })
        })
    }

    pub fn bool(&self, key: &str) -> Result<Option<bool>> {
        self.typed(key, "true or false", Value::as_bool)
    }

    pub fn str(&self, key: &str) -> Result<Option<&'a str>> {
        self.typed(key, "a string", Value::as_str)
    }

    /// A whole number ≥ 0.
    pub fn count(&self, key: &str) -> Result<Option<usize>> {
        self.typed(key, "a whole number ≥ 0", |v| {
            v.as_u64().and_then(|n| usize::try_from(n).ok())
        })
    }

    /// A whole number ≥ 1.
    pub fn positive(&self, key: &str) -> Result<Option<usize>> {
        self.typed(key, "a positive integer", |v| {
            v.as_u64()
                .filter(|&n| n > 0)
                .and_then(|n| usize::try_from(n).ok())
        })
    }

    /// A finite number.
    pub fn number(&self, key: &str) -> Result<Option<f64>> {
        self.typed(key, "a number", |v| v.as_f64().filter(|x| x.is_finite()))
    }

    /// A finite number > 0.
    pub fn positive_number(&self, key: &str) -> Result<Option<f64>> {
        self.typed(key, "a finite number > 0", |v| {
            v.as_f64().filter(|x| x.is_finite() && *x > 0.0)
        })
    }

    /// A token id: a whole number that fits in u32, or a list of them (as `eos_token_id` may
    /// be); the ids in order.
    pub fn token_ids(&self, key: &str) -> Result<Option<Vec<u32>>> {
        let id = |v: &Value| v.as_u64().and_then(|n| u32::try_from(n).ok());
        self.typed(
            key,
            "a token id (a whole number ≥ 0) or a list of them",
            |v| match v {
                Value::Array(items) if !items.is_empty() => items.iter().map(id).collect(),
                other => id(other).map(|i| vec![i]),
            },
        )
    }

    /// A list of whole numbers ≥ 0 (possibly empty).
    pub fn counts(&self, key: &str) -> Result<Option<Vec<usize>>> {
        self.typed(key, "a list of whole numbers ≥ 0", |v| {
            v.as_array()?
                .iter()
                .map(|n| n.as_u64().and_then(|n| usize::try_from(n).ok()))
                .collect()
        })
    }

    /// A list of strings.
    pub fn strings(&self, key: &str) -> Result<Option<Vec<&'a str>>> {
        self.typed(key, "a list of strings", |v| {
            v.as_array()?.iter().map(Value::as_str).collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn present_keys_of_the_wrong_type_are_errors_naming_file_key_and_value() {
        let v = json!({"a": "512", "b": -3, "c": 2.5, "d": 0, "e": null, "f": {"k": "x"}, "g": [1, "2"]});
        let k = JsonKeys::new(&v, "cfg.json").unwrap();
        let err = |r: Result<Option<usize>>| r.unwrap_err().to_string();
        assert_eq!(
            err(k.positive("a")),
            "cfg.json: a must be a positive integer, found \"512\""
        );
        assert!(err(k.positive("b")).contains("b must be a positive integer, found -3"));
        assert!(err(k.count("c")).contains("found 2.5"));
        assert!(err(k.positive("d")).contains("found 0"));
        assert_eq!(k.count("d").unwrap(), Some(0));
        assert_eq!(k.positive("e").unwrap(), None);
        assert_eq!(k.positive("absent").unwrap(), None);
        let nested = k.object("f").unwrap().unwrap();
        assert_eq!(
            nested.positive("k").unwrap_err().to_string(),
            "cfg.json: f.k must be a positive integer, found \"x\""
        );
        assert!(k
            .token_ids("g")
            .unwrap_err()
            .to_string()
            .contains("g must be a token id"));
        assert!(k
            .bool("d")
            .unwrap_err()
            .to_string()
            .contains("d must be true or false, found 0"));
        assert!(JsonKeys::new(&json!([1]), "x.json").is_err());
    }
}
