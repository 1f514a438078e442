//! What a processor sees of a message, with small helpers to read the body.

use serde_json::Value;

use crate::message::{Envelope, Topic};
use crate::meta::aliases::Aliases;
use crate::meta::py;

/// A message as seen by a [`super::Processor`].
#[derive(Debug, Clone, Copy)]
pub struct Ctx<'a> {
    /// The whole envelope.
    pub envelope: &'a Envelope,
    /// The body (`msg`).
    pub body: &'a Value,
    /// The alias map for nicknames and e-mail addresses.
    pub aliases: &'a Aliases,
}

static NULL: Value = Value::Null;

impl<'a> Ctx<'a> {
    /// The view of `envelope` with `aliases`.
    pub fn new(envelope: &'a Envelope, aliases: &'a Aliases) -> Self {
        Self {
            envelope,
            body: envelope.body(),
            aliases,
        }
    }

    /// The parsed topic.
    pub fn topic(&self) -> &'a Topic {
        self.envelope.topic()
    }

    /// The whole topic string.
    pub fn topic_str(&self) -> &'a str {
        self.envelope.topic().as_str()
    }

    /// The event part of the topic (after the service).
    pub fn event(&self) -> &'a str {
        self.envelope.topic().event()
    }

    /// Whether the topic contains `needle` (the Python library's `needle in msg['topic']`).
    pub fn has(&self, needle: &str) -> bool {
        self.topic_str().contains(needle)
    }

    /// Whether the topic ends with `suffix`.
    pub fn ends(&self, suffix: &str) -> bool {
        self.topic_str().ends_with(suffix)
    }

    /// The last label of the topic.
    pub fn last(&self) -> &'a str {
        self.envelope.topic().last_label()
    }

    /// The body value at a dotted path (`"update.title"`; array indices as numbers).
    pub fn get(&self, path: &str) -> Option<&'a Value> {
        get(self.body, path)
    }

    /// The value at `path`, or JSON `null` when absent.
    pub fn val(&self, path: &str) -> &'a Value {
        self.get(path).unwrap_or(&NULL)
    }

    /// The string at `path`, if it is one.
    pub fn str(&self, path: &str) -> Option<&'a str> {
        self.get(path).and_then(Value::as_str)
    }

    /// The value at `path` rendered as Python's `str()` would; `None` when absent.
    pub fn fmt(&self, path: &str) -> Option<String> {
        self.get(path).map(py::str)
    }

    /// The value at `path` rendered as Python's `str()`, `"None"` when absent (what
    /// `msg.get(key)` formats to).
    pub fn fmt_or_none(&self, path: &str) -> String {
        self.get(path).map_or_else(|| "None".to_owned(), py::str)
    }

    /// The array at `path` (empty when absent or not an array).
    pub fn arr(&self, path: &str) -> &'a [Value] {
        self.get(path)
            .and_then(Value::as_array)
            .map_or(&[], Vec::as_slice)
    }

    /// The strings of the array at `path`.
    pub fn strs(&self, path: &str) -> impl Iterator<Item = &'a str> + 'a {
        self.arr(path).iter().filter_map(Value::as_str)
    }

    /// Whether the body has `path`.
    pub fn contains(&self, path: &str) -> bool {
        self.get(path).is_some()
    }

    /// Python truthiness of the value at `path` (absent is false).
    pub fn truthy(&self, path: &str) -> bool {
        self.get(path).is_some_and(py::truthy)
    }

    /// The account name for an IRC nickname or other alias.
    pub fn nick(&self, nick: &'a str) -> &'a str {
        self.aliases.nick(nick)
    }

    /// The account name for an e-mail address.
    pub fn email(&self, email: &'a str) -> &'a str {
        self.aliases.email(email)
    }
}

/// The value at a dotted path below `root`.
pub fn get<'v>(root: &'v Value, path: &str) -> Option<&'v Value> {
    let mut cur = root;
    if path.is_empty() {
        return Some(cur);
    }
    for key in path.split('.') {
        cur = match cur {
            Value::Object(map) => map.get(key)?,
            Value::Array(items) => items.get(key.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}
