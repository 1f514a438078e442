//! The service catalogue: every event a contributor can pick, grouped by service, each a typed
//! predicate over the topic and the message's fields.
//!
//! The data is `catalogue.json` beside this file, compiled in. It started from the old FMN's
//! rule catalogue (fmn 2.4.3, `fmn/rules/*.py` at `develop-old`, LGPL-2.1-or-later: the entry
//! ids are the old rule names and most titles and descriptions their docstrings), kept where a
//! message of the corpora (`tests/data/`) shows the event still exists, with the
//! fedora-messaging topics of the same events merged in and the events only fedora-messaging
//! has added. A topic pattern is the topic after its environment (`bodhi.update.comment`), so
//! one entry covers every prefix and environment, as the old rules' `endswith` did; a pattern
//! ending in `.*` covers that topic and every topic below it (`bodhi.*`: the whole service).

use std::collections::HashMap;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::message::Topic;

const DATA: &str = include_str!("catalogue.json");

/// A topic pattern: an exact topic after the environment, or a prefix of whole labels.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TopicPattern {
    /// `bodhi.update.comment`.
    Exact(String),
    /// `bodhi.*`: `bodhi` itself or anything below it.
    Below(String),
}

impl TopicPattern {
    fn parse(s: &str) -> Result<Self, String> {
        let (below, text) = match s.strip_suffix(".*") {
            Some(p) => (true, p),
            None => (false, s),
        };
        if text.is_empty()
            || text
                .split('.')
                .any(|l| l.is_empty() || l.contains(['*', '?', '[', ' ']))
        {
            return Err(format!("bad topic pattern `{s}`"));
        }
        Ok(if below {
            Self::Below(text.to_string())
        } else {
            Self::Exact(text.to_string())
        })
    }

    /// Whether a topic's service and event (`Topic::title`) fit.
    pub fn matches(&self, title: &str) -> bool {
        match self {
            Self::Exact(t) => title == t,
            Self::Below(p) => {
                title.starts_with(p.as_str())
                    && (title.len() == p.len() || title.as_bytes()[p.len()] == b'.')
            }
        }
    }

    /// The pattern's text without the `.*`.
    pub fn text(&self) -> &str {
        match self {
            Self::Exact(t) | Self::Below(t) => t,
        }
    }
}

impl std::fmt::Display for TopicPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Exact(t) => f.write_str(t),
            Self::Below(p) => write!(f, "{p}.*"),
        }
    }
}

impl Serialize for TopicPattern {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for TopicPattern {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A test on one field of the message body, found by a dotted path (`update.critpath`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase", deny_unknown_fields)]
pub enum FieldTest {
    /// The field equals the value (numbers by value: `1` equals `1.0`).
    Eq { path: String, value: Value },
    /// The field, or one element of it when it is an array, is one of the values; with
    /// `param`, the values are the rule's own (`values` in a `catalogue` rule).
    In {
        path: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        values: Vec<Value>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        param: bool,
    },
    /// The field is a number below the value.
    Lt { path: String, value: f64 },
    /// At most the value.
    Le { path: String, value: f64 },
    /// Above the value.
    Gt { path: String, value: f64 },
    /// At least the value.
    Ge { path: String, value: f64 },
    /// The field is present (`true`) or absent (`false`); `null` counts as present.
    Exists { path: String, value: bool },
}

impl FieldTest {
    fn path(&self) -> &str {
        match self {
            Self::Eq { path, .. }
            | Self::In { path, .. }
            | Self::Lt { path, .. }
            | Self::Le { path, .. }
            | Self::Gt { path, .. }
            | Self::Ge { path, .. }
            | Self::Exists { path, .. } => path,
        }
    }

    /// The test on this body; `params` are the rule's values for a `param` test.
    pub fn holds(&self, body: &Value, params: &[String]) -> bool {
        let field = lookup(body, self.path());
        let number = || field.and_then(Value::as_f64);
        match self {
            Self::Exists { value, .. } => field.is_some() == *value,
            Self::Eq { value, .. } => field.is_some_and(|f| same(f, value)),
            Self::In { values, param, .. } => {
                let Some(f) = field else { return false };
                let one = |item: &Value| {
                    if *param {
                        item.as_str().is_some_and(|s| params.iter().any(|p| p == s))
                    } else {
                        values.iter().any(|v| same(item, v))
                    }
                };
                match f {
                    Value::Array(items) => items.iter().any(one),
                    other => one(other),
                }
            }
            Self::Lt { value, .. } => number().is_some_and(|n| n < *value),
            Self::Le { value, .. } => number().is_some_and(|n| n <= *value),
            Self::Gt { value, .. } => number().is_some_and(|n| n > *value),
            Self::Ge { value, .. } => number().is_some_and(|n| n >= *value),
        }
    }

    /// A canonical text, to compare predicates.
    fn canonical(&self) -> String {
        let mut t = self.clone();
        if let Self::In { values, .. } = &mut t {
            values.sort_by_key(|v| v.to_string());
            values.dedup();
        }
        serde_json::to_string(&t).unwrap_or_default()
    }

    /// In a few words: `new = 3`, `status in [0, 5]`.
    pub fn summary(&self) -> String {
        let list = |v: &[Value]| {
            v.iter()
                .map(Value::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        match self {
            Self::Eq { path, value } => format!("{path} = {value}"),
            Self::In {
                path, param: true, ..
            } => format!("{path} in the given values"),
            Self::In { path, values, .. } => format!("{path} in [{}]", list(values)),
            Self::Lt { path, value } => format!("{path} < {value}"),
            Self::Le { path, value } => format!("{path} ≤ {value}"),
            Self::Gt { path, value } => format!("{path} > {value}"),
            Self::Ge { path, value } => format!("{path} ≥ {value}"),
            Self::Exists { path, value: true } => format!("{path} is present"),
            Self::Exists { path, value: false } => format!("{path} is absent"),
        }
    }
}

/// Equality with numbers compared by value; a boolean is not a number.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// The value at a dotted path of objects.
fn lookup<'v>(body: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.').try_fold(body, |v, key| v.get(key))
}

/// One event a contributor can pick.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Stable id, used in rules (`{"kind": "catalogue", "entry": "koji_build_failed"}`) and in
    /// `X-Fmn-Reason: catalogue:koji_build_failed`.
    pub id: String,
    pub title: String,
    /// One line.
    pub description: String,
    /// The topics the event is published on (fedmsg and fedora-messaging alike).
    pub topics: Vec<TopicPattern>,
    /// Field tests, all of which must hold.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub r#where: Vec<FieldTest>,
    /// When the entry takes values (its `param` test), what they are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub param: Option<String>,
}

impl Entry {
    /// Whether the entry's test takes the rule's values.
    pub fn takes_values(&self) -> bool {
        self.r#where
            .iter()
            .any(|t| matches!(t, FieldTest::In { param: true, .. }))
    }

    /// Whether a message is this event; `values` fill the `param` test.
    pub fn matches(&self, topic: &Topic, body: &Value, values: &[String]) -> bool {
        let title = topic.title();
        self.topics.iter().any(|p| p.matches(title))
            && self.r#where.iter().all(|t| t.holds(body, values))
    }

    /// The predicate in canonical form: two entries with the same form test the same thing.
    pub fn canonical_predicate(&self) -> String {
        let mut topics: Vec<String> = self.topics.iter().map(|t| t.to_string()).collect();
        topics.sort();
        topics.dedup();
        let mut tests: Vec<String> = self.r#where.iter().map(FieldTest::canonical).collect();
        tests.sort();
        tests.dedup();
        format!("{topics:?} where {tests:?}")
    }
}

/// A service and its events.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    pub id: String,
    pub title: String,
    pub description: String,
    pub entries: Vec<Entry>,
}

/// The whole catalogue.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceCatalogue {
    pub services: Vec<Service>,
    #[serde(skip)]
    by_id: HashMap<String, (usize, usize)>,
}

impl ServiceCatalogue {
    /// Parses and checks a catalogue: unique ids, at least one topic per entry, and a `param`
    /// description exactly on the entries that take values.
    pub fn parse(json: &str) -> Result<Self, String> {
        let mut c: Self = serde_json::from_str(json).map_err(|e| e.to_string())?;
        for (s, service) in c.services.iter().enumerate() {
            for (e, entry) in service.entries.iter().enumerate() {
                if entry.topics.is_empty() {
                    return Err(format!("entry `{}` has no topic", entry.id));
                }
                if entry.takes_values() != entry.param.is_some() {
                    return Err(format!(
                        "entry `{}`: `param` must describe exactly a `param` test",
                        entry.id
                    ));
                }
                if c.by_id.insert(entry.id.clone(), (s, e)).is_some() {
                    return Err(format!("entry `{}` appears twice", entry.id));
                }
            }
        }
        Ok(c)
    }

    /// An entry by id.
    pub fn entry(&self, id: &str) -> Option<&Entry> {
        let &(s, e) = self.by_id.get(id)?;
        Some(&self.services[s].entries[e])
    }

    /// The service an entry belongs to.
    pub fn service_of(&self, id: &str) -> Option<&Service> {
        let &(s, _) = self.by_id.get(id)?;
        Some(&self.services[s])
    }

    /// Every entry with its service.
    pub fn entries(&self) -> impl Iterator<Item = (&Service, &Entry)> {
        self.services
            .iter()
            .flat_map(|s| s.entries.iter().map(move |e| (s, e)))
    }
}

/// The compiled-in catalogue.
pub fn service_catalogue() -> &'static ServiceCatalogue {
    static CATALOGUE: OnceLock<ServiceCatalogue> = OnceLock::new();
    // The data is compiled in and checked by the tests: failing here is a build defect.
    CATALOGUE.get_or_init(|| {
        ServiceCatalogue::parse(DATA)
            .unwrap_or_else(|e| panic!("rules/catalogue.json is invalid: {e}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_catalogue_parses_and_is_large() {
        let c = service_catalogue();
        assert!(c.services.len() >= 30, "{}", c.services.len());
        assert!(c.entries().count() >= 250, "{}", c.entries().count());
        for service in [
            "koji", "bodhi", "dist-git", "copr", "anitya", "pagure", "koschei",
        ] {
            assert!(c.services.iter().any(|s| s.id == service), "{service}");
        }
        for (_, e) in c.entries() {
            assert!(!e.title.is_empty() && !e.description.is_empty(), "{}", e.id);
            assert!(!e.description.contains('\n'), "{}", e.id);
        }
    }

    #[test]
    fn patterns_match_whole_labels() {
        let below = TopicPattern::parse("git.receive.*").unwrap();
        assert!(below.matches("git.receive"));
        assert!(below.matches("git.receive.valgrind.master"));
        assert!(!below.matches("git.receiver"));
        assert!(!below.matches("git"));
        let exact = TopicPattern::parse("git.receive").unwrap();
        assert!(exact.matches("git.receive") && !exact.matches("git.receive.x"));
        for bad in ["", "a..b", "*", "a.*.b", "a b"] {
            assert!(TopicPattern::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn field_tests_are_typed() {
        let body = json!({"new": 3, "update": {"critpath": true, "karma": -1},
            "groups": ["rust-sig", "c"], "status": "success", "n": null});
        let t = |v: Value| serde_json::from_value::<FieldTest>(v).unwrap();
        assert!(t(json!({"op": "eq", "path": "new", "value": 3})).holds(&body, &[]));
        assert!(t(json!({"op": "eq", "path": "new", "value": 3.0})).holds(&body, &[]));
        assert!(!t(json!({"op": "eq", "path": "new", "value": "3"})).holds(&body, &[]));
        assert!(t(json!({"op": "eq", "path": "update.critpath", "value": true})).holds(&body, &[]));
        assert!(!t(json!({"op": "eq", "path": "update.critpath", "value": 1})).holds(&body, &[]));
        assert!(t(json!({"op": "lt", "path": "update.karma", "value": 0})).holds(&body, &[]));
        assert!(!t(json!({"op": "ge", "path": "update.karma", "value": 0})).holds(&body, &[]));
        assert!(!t(json!({"op": "gt", "path": "status", "value": 0})).holds(&body, &[]));
        assert!(t(json!({"op": "le", "path": "new", "value": 3})).holds(&body, &[]));
        assert!(
            t(json!({"op": "in", "path": "status", "values": ["x", "success"]})).holds(&body, &[])
        );
        assert!(t(json!({"op": "in", "path": "groups", "values": ["c"]})).holds(&body, &[]));
        let param = t(json!({"op": "in", "path": "groups", "param": true}));
        assert!(param.holds(&body, &["rust-sig".into()]));
        assert!(!param.holds(&body, &["python-sig".into()]));
        assert!(!param.holds(&body, &[]));
        assert!(t(json!({"op": "exists", "path": "n", "value": true})).holds(&body, &[]));
        assert!(t(json!({"op": "exists", "path": "m", "value": false})).holds(&body, &[]));
        assert!(!t(json!({"op": "eq", "path": "missing.deep", "value": null})).holds(&body, &[]));
        assert!(serde_json::from_value::<FieldTest>(json!({"op": "regex", "path": "a"})).is_err());
    }

    #[test]
    fn broken_catalogues_are_refused() {
        let one = |e: &str| {
            format!(
                r#"{{"services": [{{"id": "s", "title": "S", "description": "d", "entries": [{e}]}}]}}"#
            )
        };
        let ok = r#"{"id": "a", "title": "A", "description": "d", "topics": ["x.y"]}"#;
        ServiceCatalogue::parse(&one(ok)).unwrap();
        assert!(ServiceCatalogue::parse(&one(&format!("{ok},{ok}"))).is_err());
        assert!(ServiceCatalogue::parse(&one(
            r#"{"id": "a", "title": "A", "description": "d", "topics": []}"#
        ))
        .is_err());
        assert!(ServiceCatalogue::parse(&one(
            r#"{"id": "a", "title": "A", "description": "d", "topics": ["x"], "where": [{"op": "in", "path": "p", "param": true}]}"#
        ))
        .is_err());
    }
}
