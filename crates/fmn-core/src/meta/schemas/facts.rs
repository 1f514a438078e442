//! What a schema module computes for one message ([`Facts`]), and the helpers every schema
//! module reads the message with (Python's formatting of paths, lists and `None`).

use serde_json::{Map, Value};

use crate::meta::ctx::Ctx;
use crate::meta::model::Severity;
use crate::meta::py;

/// What a schema class says about a message (its Python properties).
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Facts {
    /// `app_name`.
    pub app: Option<String>,
    /// `agent_name`.
    pub agent: Option<String>,
    /// `summary`.
    pub summary: String,
    /// `__str__`.
    pub long: String,
    /// `url`.
    pub url: Option<String>,
    /// `usernames`.
    pub users: Vec<String>,
    /// `groups`.
    pub groups: Vec<String>,
    /// `packages`.
    pub packages: Vec<String>,
    /// `containers`.
    pub containers: Vec<String>,
    /// `modules`.
    pub modules: Vec<String>,
    /// `flatpaks`.
    pub flatpaks: Vec<String>,
    /// The class's `severity`, for a message without the severity header.
    pub severity: Severity,
}

impl Facts {
    /// Facts of a class whose `__str__` is its summary (the common case).
    pub fn short(app: &str, summary: String) -> Self {
        Self {
            app: Some(app.to_owned()),
            long: summary.clone(),
            summary,
            ..Self::default()
        }
    }

    /// Facts of a class without `app_name` (the base class's `None`) whose `__str__` is its
    /// summary.
    pub fn without_app(summary: String) -> Self {
        Self {
            app: None,
            ..Self::short("", summary)
        }
    }

    /// Sets `agent_name`.
    pub fn agent(mut self, agent: Option<impl Into<String>>) -> Self {
        self.agent = agent.map(Into::into);
        self
    }

    /// Sets `url`.
    pub fn url(mut self, url: Option<impl Into<String>>) -> Self {
        self.url = url.map(Into::into);
        self
    }

    /// Sets `usernames`.
    pub fn users<S: Into<String>>(mut self, users: impl IntoIterator<Item = S>) -> Self {
        self.users = users.into_iter().map(Into::into).collect();
        self
    }

    /// Sets `packages`.
    pub fn packages<S: Into<String>>(mut self, packages: impl IntoIterator<Item = S>) -> Self {
        self.packages = packages.into_iter().map(Into::into).collect();
        self
    }

    /// Sets `groups`.
    pub fn groups<S: Into<String>>(mut self, groups: impl IntoIterator<Item = S>) -> Self {
        self.groups = groups.into_iter().map(Into::into).collect();
        self
    }

    /// Lists a git repository as the artifact of its dist-git namespace (`rpms`, `modules`,
    /// `flatpaks`, and the containers' namespace, which the schemas spell differently).
    pub fn repository(
        mut self,
        namespace: Option<&str>,
        containers: &str,
        name: Option<String>,
    ) -> Self {
        let list = match namespace {
            Some("rpms") => &mut self.packages,
            Some("modules") => &mut self.modules,
            Some("flatpaks") => &mut self.flatpaks,
            Some(ns) if ns == containers => &mut self.containers,
            _ => return self,
        };
        list.extend(name);
        self
    }

    /// Marks a class whose messages are debugging chatter (`severity = DEBUG`).
    pub fn debug(mut self) -> Self {
        self.severity = Severity::Debug;
        self
    }

    /// Sets `__str__`.
    pub fn long(mut self, long: String) -> Self {
        self.long = long;
        self
    }
}

/// The base `Message` class (`base.message`): the summary is the topic and `__str__` dumps id, topic,
/// headers and body.
pub(crate) fn base(m: &Ctx<'_>) -> Facts {
    Facts {
        summary: m.topic_str().to_owned(),
        long: base_str(m),
        ..Facts::default()
    }
}

/// The base class's `__str__`.
pub(crate) fn base_str(m: &Ctx<'_>) -> String {
    let headers = headers(m).cloned().map_or(Value::Null, Value::Object);
    format!(
        "Id: {}\nTopic: {}\nHeaders: {}\nBody: {}",
        m.envelope.msg_id(),
        m.topic_str(),
        py::json_dumps(&headers, Some(4), true),
        py::json_dumps(m.body, Some(4), true),
    )
}

/// The value at a dotted path below `root`; a negative index counts from the end of a list
/// (Python's `items[-1]`).
pub(crate) fn lookup<'v>(root: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.').try_fold(root, |cur, key| match cur {
        Value::Object(map) => map.get(key),
        Value::Array(items) => {
            let index: i64 = key.parse().ok()?;
            let index = if index < 0 {
                items.len().checked_sub(index.unsigned_abs() as usize)?
            } else {
                index as usize
            };
            items.get(index)
        }
        _ => None,
    })
}

/// Python `str()` of the body value at `path`; `None` when absent (Python would have raised,
/// the text still reads sensibly).
pub(crate) fn text(m: &Ctx<'_>, path: &str) -> String {
    lookup(m.body, path).map_or_else(|| "None".to_owned(), py::str)
}

/// Python `sep.join(str(x) for x in items)` over the list at `path`.
pub(crate) fn join(m: &Ctx<'_>, path: &str, sep: &str) -> String {
    lookup(m.body, path)
        .and_then(Value::as_array)
        .map(|items| items.iter().map(py::str).collect::<Vec<_>>().join(sep))
        .unwrap_or_default()
}

/// Fills a template the way the schemas' `str.format` calls do: `{path.to.value}` is the
/// Python `str()` of that body value, `{path|sep}` joins the list at `path` with `sep`;
/// `{{` and `}}` are literal braces.
pub(crate) fn fill(m: &Ctx<'_>, template: &str) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(open) = rest.find(['{', '}']) {
        out.push_str(&rest[..open]);
        let brace = &rest[open..];
        if brace.starts_with("{{") || brace.starts_with("}}") {
            out.push_str(&brace[..1]);
            rest = &brace[2..];
            continue;
        }
        let Some(close) = brace.find('}').filter(|_| brace.starts_with('{')) else {
            out.push_str(&brace[..1]);
            rest = &brace[1..];
            continue;
        };
        let field = &brace[1..close];
        match field.split_once('|') {
            Some((path, sep)) => out.push_str(&join(m, path, sep)),
            None => out.push_str(&text(m, field)),
        }
        rest = &brace[close + 1..];
    }
    out.push_str(rest);
    out
}

/// Python's `str()` of the body value at `path` when it is a string (an `Optional[str]`
/// property such as an agent or URL).
pub(crate) fn opt(m: &Ctx<'_>, path: &str) -> Option<String> {
    lookup(m.body, path)
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// The strings at the given paths, skipping absent and `null` ones (lists built from
/// optional fields).
pub(crate) fn strings(m: &Ctx<'_>, paths: &[&str]) -> Vec<String> {
    paths.iter().filter_map(|path| opt(m, path)).collect()
}

pub(crate) fn headers<'a>(m: &Ctx<'a>) -> Option<&'a Map<String, Value>> {
    m.envelope.headers.as_ref()
}
