//! Python-compatible rendering of JSON values, so subtitles read exactly as Fedora's
//! Python library writes them (`True`, `None`, `['a', 'b']`…).

use serde_json::Value;

/// `str(value)` in Python.
pub fn str(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => repr(other),
    }
}

/// `repr(value)` in Python.
pub fn repr(value: &Value) -> String {
    let mut out = String::new();
    write_repr(value, &mut out);
    out
}

fn write_repr(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("None"),
        Value::Bool(true) => out.push_str("True"),
        Value::Bool(false) => out.push_str("False"),
        Value::Number(n) => {
            if n.is_f64() {
                let f = n.as_f64().unwrap_or_default();
                if f.fract() == 0.0 && f.abs() < 1e16 {
                    out.push_str(&format!("{f:.1}"));
                } else {
                    out.push_str(&f.to_string());
                }
            } else {
                out.push_str(&n.to_string());
            }
        }
        Value::String(s) => {
            let quote = if s.contains('\'') && !s.contains('"') {
                '"'
            } else {
                '\''
            };
            out.push(quote);
            for c in s.chars() {
                match c {
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    '\t' => out.push_str("\\t"),
                    '\r' => out.push_str("\\r"),
                    c if c == quote => {
                        out.push('\\');
                        out.push(c);
                    }
                    c => out.push(c),
                }
            }
            out.push(quote);
        }
        Value::Array(items) => {
            out.push('[');
            for (n, item) in items.iter().enumerate() {
                if n > 0 {
                    out.push_str(", ");
                }
                write_repr(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (n, (k, v)) in map.iter().enumerate() {
                if n > 0 {
                    out.push_str(", ");
                }
                write_repr(&Value::String(k.clone()), out);
                out.push_str(": ");
                write_repr(v, out);
            }
            out.push('}');
        }
    }
}

/// `json.dumps(value, indent=indent, sort_keys=sort_keys)` with the default `ensure_ascii`:
/// non-ASCII characters escaped as `\uXXXX`; with an indent, items end in `,` and lines
/// (Python 3's default separators), without one they are separated by `, `.
pub fn json_dumps(value: &Value, indent: Option<usize>, sort_keys: bool) -> String {
    let mut out = String::new();
    write_json(value, indent, sort_keys, 0, &mut out);
    out
}

fn write_json(value: &Value, indent: Option<usize>, sort: bool, depth: usize, out: &mut String) {
    let newline = |out: &mut String, depth: usize| {
        if let Some(width) = indent {
            out.push('\n');
            out.push_str(&" ".repeat(width * depth));
        }
    };
    let separator = if indent.is_some() { "," } else { ", " };
    match value {
        Value::String(s) => write_json_str(s, out),
        Value::Number(_) | Value::Null | Value::Bool(_) => match value {
            Value::Null => out.push_str("null"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            other => write_repr(other, out),
        },
        Value::Array(items) if items.is_empty() => out.push_str("[]"),
        Value::Object(map) if map.is_empty() => out.push_str("{}"),
        Value::Array(items) => {
            out.push('[');
            for (n, item) in items.iter().enumerate() {
                if n > 0 {
                    out.push_str(separator);
                }
                newline(out, depth + 1);
                write_json(item, indent, sort, depth + 1, out);
            }
            newline(out, depth);
            out.push(']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            if sort {
                entries.sort_by(|a, b| a.0.cmp(b.0));
            }
            out.push('{');
            for (n, (key, item)) in entries.into_iter().enumerate() {
                if n > 0 {
                    out.push_str(separator);
                }
                newline(out, depth + 1);
                write_json_str(key, out);
                out.push_str(": ");
                write_json(item, indent, sort, depth + 1, out);
            }
            newline(out, depth);
            out.push('}');
        }
    }
}

/// A JSON string as Python's `json` writes it with `ensure_ascii`.
fn write_json_str(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Python truthiness.
pub fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// The first `n` characters of `s` (Python `s[:n]`).
pub fn head(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Number of characters (Python `len(s)`).
pub fn len(s: &str) -> usize {
    s.chars().count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_like_python() {
        assert_eq!(str(&json!("a")), "a");
        assert_eq!(str(&json!(null)), "None");
        assert_eq!(str(&json!(true)), "True");
        assert_eq!(str(&json!(3)), "3");
        assert_eq!(str(&json!(1.0)), "1.0");
        assert_eq!(str(&json!(1.5)), "1.5");
        assert_eq!(str(&json!(["a", 1])), "['a', 1]");
        assert_eq!(str(&json!({"k": "it's"})), "{'k': \"it's\"}");
        assert_eq!(head("héllo", 2), "hé");
        assert!(!truthy(&json!("")));
        let value = json!({"b": [1, 2.5, null], "a": {"é": "x\"y"}, "c": {}, "d": true});
        assert_eq!(
            json_dumps(&value, Some(4), true),
            "{\n    \"a\": {\n        \"\\u00e9\": \"x\\\"y\"\n    },\n    \"b\": [\n        1,\n        2.5,\n        null\n    ],\n    \"c\": {},\n    \"d\": true\n}"
        );
        assert_eq!(
            json_dumps(&json!(["a", {"k": 1}]), None, false),
            r#"["a", {"k": 1}]"#
        );
    }
}

/// fedmsg's `list_to_series`: sorted unique items, `a`, `a and b`, `a, b, and c`,
/// `a, b, and 2 others`; `(nothing)` when empty.
pub fn list_to_series<S: AsRef<str>>(items: &[S]) -> String {
    let mut items: Vec<&str> = items.iter().map(AsRef::as_ref).collect();
    items.sort_unstable();
    items.dedup();
    const N: usize = 3;
    match items.len() {
        0 => "(nothing)".to_owned(),
        1 => items[0].to_owned(),
        2 => format!("{} and {}", items[0], items[1]),
        n => {
            let others;
            let last = if n > N {
                others = format!("{} others", n - N + 1);
                items.truncate(N - 1);
                others.as_str()
            } else {
                items.pop().unwrap_or_default()
            };
            format!("{}, and {}", items.join(", "), last)
        }
    }
}

/// Bodhi's "truncate": titles of 40 characters or more are cut to 40 and get `...`.
pub fn truncate40(title: &str) -> String {
    if len(title) >= 40 {
        format!("{}...", head(title, 40))
    } else {
        title.to_owned()
    }
}

/// Python `s.rsplit('-', 2)[0]`: the name part of an `name-version-release` string.
pub fn nvr_name(nvr: &str) -> &str {
    let mut end = nvr.len();
    for _ in 0..2 {
        match nvr[..end].rfind('-') {
            Some(i) => end = i,
            None => break,
        }
    }
    &nvr[..end]
}

#[cfg(test)]
mod series_tests {
    use super::*;

    #[test]
    fn series() {
        assert_eq!(list_to_series::<&str>(&[]), "(nothing)");
        assert_eq!(list_to_series(&["a"]), "a");
        assert_eq!(list_to_series(&["b", "a"]), "a and b");
        assert_eq!(list_to_series(&["c", "a", "b"]), "a, b, and c");
        assert_eq!(list_to_series(&["d", "c", "a", "b"]), "a, b, and 2 others");
        assert_eq!(nvr_name("fedmsg-0.2.7-2.el6"), "fedmsg");
        assert_eq!(nvr_name("a-b"), "a");
        assert_eq!(nvr_name("foo"), "foo");
        assert_eq!(
            truncate40(&"x".repeat(40)),
            format!("{}...", "x".repeat(40))
        );
    }
}

/// Python `str.format` with named fields: replaces each `{name}` in `template` with its value
/// (unknown names are left as they are; `{{`/`}}` are not special).
pub fn format(template: &str, fields: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) => {
                let name = &after[..close];
                match fields.iter().find(|(k, _)| *k == name) {
                    Some((_, v)) => out.push_str(v),
                    None => {
                        out.push('{');
                        out.push_str(name);
                        out.push('}');
                    }
                }
                rest = &after[close + 1..];
            }
            None => {
                out.push_str(&rest[open..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}
