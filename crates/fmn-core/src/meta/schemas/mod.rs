//! The fedora-messaging schema layer: metadata of messages that name their schema class in the
//! `fedora_messaging_schema` header, computed as that Python class computes it.
//!
//! Each schema package is one module with a `describe` function that knows the package's
//! schema names (the `get_name` of each class, e.g. `anitya.distro.add`) and returns the
//! class's [`Facts`] for a message, or `None` for a name it does not know. Unknown schemas get
//! the base `fedora_messaging.message.Message` behaviour ([`base`]). Severity, and the user,
//! group and artifact lists, are completed from the headers the publisher derived from the
//! same properties.
//!
//! The text is Python's: `str()` of values (`None`, `True`, `['a', 'b']`), `str.format`
//! templates ([`fill`]), `json.dumps` ([`py::json_dumps`]). Where the Python property would
//! raise (a missing key), fmn writes `None` for the missing value instead.

mod anitya;
mod bodhi;
mod bugzilla;
mod copr;
mod discourse;
mod fedocal;
mod githook;
mod hotness;
mod infra;
mod journal;
mod koji;
mod koschei;
mod pagure;
mod small;
mod webhook;

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::{py, Ctx, Metadata, Severity};

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

/// A package's schemas: the facts for a schema name it knows.
type Describe = fn(&str, &Ctx<'_>) -> Option<Facts>;

/// Every supported schema package, tried in turn.
const PACKAGES: &[Describe] = &[
    anitya::describe,
    bodhi::describe,
    bugzilla::describe,
    copr::describe,
    discourse::describe,
    fedocal::describe,
    githook::describe,
    hotness::describe,
    infra::describe,
    journal::describe,
    koji::describe,
    koschei::describe,
    pagure::describe,
    small::describe,
    webhook::describe,
];

/// The `fedora_messaging_schema` header of a message, if it has one.
pub(crate) fn schema_name<'a>(m: &Ctx<'a>) -> Option<&'a str> {
    headers(m)?.get("fedora_messaging_schema")?.as_str()
}

fn headers<'a>(m: &Ctx<'a>) -> Option<&'a Map<String, Value>> {
    m.envelope.headers.as_ref()
}

/// The facts of the message's schema class; [`unknown`] ones for a schema no module knows.
pub(crate) fn describe(schema: &str, m: &Ctx<'_>) -> Facts {
    if schema == "base.message" {
        return base(m);
    }
    PACKAGES
        .iter()
        .find_map(|describe| describe(schema, m))
        .unwrap_or_else(|| unknown(schema, m))
}

/// A schema fmn does not know (a newer package, a new application). FMN 3 would see the base
/// class (summary = topic, no application); fmn says which schema it was, and keeps what
/// routing can use: the topic's service as the application and a body `agent`, when there
/// is one. Users and artifacts come from the headers.
fn unknown(schema: &str, m: &Ctx<'_>) -> Facts {
    let service = m.topic().service();
    Facts {
        app: (!service.is_empty()).then(|| service.to_owned()),
        agent: opt(m, "agent").filter(|a| !a.is_empty()),
        summary: format!("{schema}: {}", m.topic_str()),
        ..base(m)
    }
}

/// Fills `out` for a message carrying the schema header `schema`.
pub(crate) fn extract(schema: &str, m: &Ctx<'_>, out: &mut Metadata) {
    let facts = describe(schema, m);
    out.app = facts.app.unwrap_or_default();
    out.agent = facts.agent;
    out.subtitle = Some(facts.summary);
    out.long_text = Some(facts.long);
    out.link = facts.url;
    out.severity = header_severity(m).unwrap_or(facts.severity);
    let lists: [(&str, &mut BTreeSet<String>, Vec<String>); 6] = [
        ("user", &mut out.usernames, facts.users),
        ("group", &mut out.groups, facts.groups),
        ("rpm", &mut out.packages, facts.packages),
        ("container", &mut out.containers, facts.containers),
        ("module", &mut out.modules, facts.modules),
        ("flatpak", &mut out.flatpaks, facts.flatpaks),
    ];
    for (kind, set, from_schema) in lists {
        set.extend(from_schema.into_iter().filter(|s| !s.is_empty()));
        set.extend(header_items(m, kind));
    }
}

/// The items of the `fedora_messaging_<kind>_<item>: true` headers.
fn header_items<'a>(m: &Ctx<'a>, kind: &str) -> impl Iterator<Item = String> + 'a {
    let prefix = format!("fedora_messaging_{kind}_");
    headers(m)
        .into_iter()
        .flatten()
        .filter(|(_, value)| value.as_bool() == Some(true))
        .filter_map(move |(key, _)| key.strip_prefix(&prefix).map(str::to_owned))
        // `None` is what the publisher wrote for a Python `None` in the list: nobody.
        .filter(|item| !item.is_empty() && item != "None")
}

/// The `fedora_messaging_severity` header: 10 debug, 20 info, 30 warning, 40 error.
fn header_severity(m: &Ctx<'_>) -> Option<Severity> {
    Severity::from_level(headers(m)?.get("fedora_messaging_severity")?.as_f64()?)
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::message::Envelope;
    use crate::meta::{Aliases, Registry};

    fn message(schema: &str, topic: &str, extra: Value, body: Value) -> Envelope {
        let mut headers: Map<String, Value> = serde_json::from_value(extra).unwrap();
        headers.insert("fedora_messaging_schema".into(), schema.into());
        Envelope::from_fedora_messaging("id-1", topic, headers, body).unwrap()
    }

    #[test]
    fn unknown_schemas_name_themselves_and_keep_the_headers_lists() {
        let env = message(
            "elections.vote.v3",
            "org.fedoraproject.prod.elections.vote",
            json!({"fedora_messaging_user_alice": true, "fedora_messaging_rpm_foo": true,
                   "fedora_messaging_group_None": true, "fedora_messaging_severity": 40}),
            json!({"agent": "alice"}),
        );
        let meta = Registry::default().extract(&env);
        assert_eq!(meta.app, "elections");
        assert_eq!(meta.agent.as_deref(), Some("alice"));
        assert_eq!(
            meta.subtitle.as_deref(),
            Some("elections.vote.v3: org.fedoraproject.prod.elections.vote")
        );
        assert!(meta.long_text.unwrap().starts_with("Id: id-1\nTopic: org.fedoraproject.prod.elections.vote\nHeaders: {\n    \"fedora_messaging_group_None\": true,"));
        assert_eq!(meta.usernames.iter().collect::<Vec<_>>(), ["alice"]);
        assert_eq!(meta.packages.iter().collect::<Vec<_>>(), ["foo"]);
        assert!(meta.groups.is_empty(), "a Python None is nobody");
        assert_eq!(meta.severity, Severity::Error);
        assert_eq!(meta.title, "elections.vote");
    }

    #[test]
    fn the_schema_header_wins_over_the_bus_and_the_fedmsg_processors() {
        // A fedmsg envelope bridged from AMQP keeps the headers: the schema describes it.
        let env = Envelope::from_json(
            r#"{"topic":"org.fedoraproject.prod.fedocal.calendar.new","msg_id":"2020-x",
                "msg":{"agent":"bob","calendar":{"calendar_name":"infra"}},
                "headers":{"fedora_messaging_schema":"fedocal.calendar.new"}}"#,
        )
        .unwrap();
        let meta = Registry::default().extract(&env);
        assert_eq!(
            meta.subtitle.as_deref(),
            Some("bob has created a new calendar infra")
        );
        assert_eq!(meta.long_text, meta.subtitle);
        assert_eq!(
            meta.severity,
            Severity::Info,
            "no severity header: the default"
        );
        // Without the header the fedmsg processor speaks, and there is no long text.
        let plain = Envelope::from_json(
            r#"{"topic":"org.fedoraproject.prod.fedocal.calendar.new",
                "msg":{"agent":"bob","calendar":{"calendar_name":"infra"}}}"#,
        )
        .unwrap();
        assert_eq!(Registry::default().extract(&plain).long_text, None);
    }

    #[test]
    fn fill_reads_like_str_format() {
        let env = message(
            "x",
            "org.fedoraproject.prod.x",
            json!({}),
            json!({"a": {"b": [1, 2, {"c": null}]}, "t": ["x", "y"], "n": 1.0}),
        );
        let aliases = Aliases::default();
        let m = Ctx::new(&env, &aliases);
        assert_eq!(
            fill(&m, "{a.b.0}-{a.b.-1.c}-{t|, }-{missing}-{{lit}}-{n}-{t}"),
            "1-None-x, y-None-{lit}-1.0-['x', 'y']"
        );
    }

    /// Every schema name (`fedora.messages` entry point) of the 25 supported packages, as
    /// their releases register them.
    const ALL_SCHEMAS: [&str; 147] = [
        "anitya.distro.add",
        "anitya.distro.edit",
        "anitya.distro.remove",
        "anitya.project.add",
        "anitya.project.edit",
        "anitya.project.flag",
        "anitya.project.flag.set",
        "anitya.project.map.new",
        "anitya.project.map.remove",
        "anitya.project.map.update",
        "anitya.project.remove",
        "anitya.project.version.remove",
        "anitya.project.version.remove.v2",
        "anitya.project.version.update",
        "anitya.project.version.update.v2",
        "ansible.playbook.complete",
        "ansible.playbook.start",
        "badges.badge.award.v1",
        "badges.person.login.first.v1",
        "badges.person.rank.advance.v1",
        "bodhi.buildroot_override.tag.v1",
        "bodhi.buildroot_override.untag.v1",
        "bodhi.compose.complete.v1",
        "bodhi.compose.composing.v1",
        "bodhi.compose.start.v1",
        "bodhi.compose.sync.done.v1",
        "bodhi.compose.sync.wait.v1",
        "bodhi.errata.publish.v1",
        "bodhi.repo.done.v1",
        "bodhi.update.comment.v1",
        "bodhi.update.complete.stable.v1",
        "bodhi.update.complete.testing.v1",
        "bodhi.update.edit.v1",
        "bodhi.update.edit.v2",
        "bodhi.update.eject.v1",
        "bodhi.update.karma.threshold.v1",
        "bodhi.update.request.obsolete.v1",
        "bodhi.update.request.revoke.v1",
        "bodhi.update.request.stable.v1",
        "bodhi.update.request.testing.v1",
        "bodhi.update.request.unpush.v1",
        "bodhi.update.requirements_met.stable.v1",
        "bodhi.update.status.testing.v1",
        "bodhi.update.status.testing.v2",
        "bodhi.update.status.testing.v3",
        "bugzilla2fedmsg.messageV1",
        "bugzilla2fedmsg.messageV1bz4",
        "copr.build.end",
        "copr.build.start",
        "copr.chroot.start",
        "copr.unused.build.end",
        "copr.unused.build.start",
        "copr.unused.chroot.start",
        "discourse.event.v1",
        "fedocal.calendar.clear",
        "fedocal.calendar.delete",
        "fedocal.calendar.new",
        "fedocal.calendar.update",
        "fedocal.calendar.upload",
        "fedocal.meeting.delete",
        "fedocal.meeting.new",
        "fedocal.meeting.reminder",
        "fedocal.meeting.update",
        "fedora_image_uploader.published.v1.aws",
        "fedora_image_uploader.published.v1.azure",
        "fedora_image_uploader.published.v1.container",
        "fedora_image_uploader.published.v1.gcp",
        "fedora_messaging_git_hook.commit.v1",
        "git.receive",
        "hotness.update.bug.file",
        "hotness.update.drop",
        "journal.ipa.group_add_member.v1",
        "journal.ipa.group_remove_member.v1",
        "journal.ipa.user_add.v1",
        "kerneltest.release.edit.v1",
        "kerneltest.release.new.v1",
        "kerneltest.upload.new.v1",
        "koji_fedoramessaging.build.BuildStateChangeV1",
        "koji_fedoramessaging.package.ListChangeV1",
        "koji_fedoramessaging.repo.DoneV1",
        "koji_fedoramessaging.repo.InitV1",
        "koji_fedoramessaging.rpm.SignV1",
        "koji_fedoramessaging.tag.TagV1",
        "koji_fedoramessaging.tag.UntagV1",
        "koji_fedoramessaging.task.TaskStateChangeV1",
        "koschei.collection.state.change",
        "koschei.package.state.change",
        "maubot.cookie.give.v1",
        "mdapi.repo.update",
        "meetbot.meeting.complete",
        "meetbot.meeting.start",
        "noggin.group.member.removed.v1",
        "noggin.group.member.sponsor.v1",
        "noggin.user.create.v1",
        "noggin.user.update.v1",
        "pagure.Test.notification",
        "pagure.commit.flag.added",
        "pagure.commit.flag.updated",
        "pagure.git.branch.creation",
        "pagure.git.branch.deletion",
        "pagure.git.receive",
        "pagure.git.tag.creation",
        "pagure.git.tag.deletion",
        "pagure.group.edit",
        "pagure.issue.assigned.added",
        "pagure.issue.assigned.reset",
        "pagure.issue.comment.added",
        "pagure.issue.dependency.added",
        "pagure.issue.dependency.removed",
        "pagure.issue.drop",
        "pagure.issue.edit",
        "pagure.issue.new",
        "pagure.issue.tag.added",
        "pagure.issue.tag.removed",
        "pagure.project.deleted",
        "pagure.project.edit",
        "pagure.project.forked",
        "pagure.project.group.access.updated",
        "pagure.project.group.added",
        "pagure.project.group.removed",
        "pagure.project.new",
        "pagure.project.tag.edited",
        "pagure.project.tag.removed",
        "pagure.project.user.access.updated",
        "pagure.project.user.added",
        "pagure.project.user.removed",
        "pagure.pull-request.assigned.added",
        "pagure.pull-request.assigned.reset",
        "pagure.pull-request.closed",
        "pagure.pull-request.comment.added",
        "pagure.pull-request.comment.edited",
        "pagure.pull-request.flag.added",
        "pagure.pull-request.flag.updated",
        "pagure.pull-request.initial_comment.edited",
        "pagure.pull-request.new",
        "pagure.pull-request.rebased",
        "pagure.pull-request.reopened",
        "pagure.pull-request.tag.added",
        "pagure.pull-request.tag.removed",
        "pagure.pull-request.updated",
        "planet.build",
        "planet.post.new",
        "webhook_to_fedora_messaging.forgejo.message_v1",
        "webhook_to_fedora_messaging.github.message_v1",
        "webhook_to_fedora_messaging.gitlab.message_v1",
        "webhook_to_fedora_messaging.pretix.message_v1",
        "wiki.article.edit.v1",
    ];

    #[test]
    fn every_schema_of_the_supported_packages_has_a_module() {
        let env = message("x", "org.fedoraproject.prod.x", json!({}), json!({}));
        let aliases = Aliases::default();
        let m = Ctx::new(&env, &aliases);
        let unknown: Vec<&str> = ALL_SCHEMAS
            .into_iter()
            .filter(|schema| {
                PACKAGES
                    .iter()
                    .all(|describe| describe(schema, &m).is_none())
            })
            .collect();
        assert!(unknown.is_empty(), "{unknown:?}");
        assert!(PACKAGES
            .iter()
            .all(|describe| describe("nope.v1", &m).is_none()));
    }

    #[test]
    fn without_the_severity_header_the_class_default_applies() {
        let severity = |schema: &str, headers: Value| {
            let env = message(
                schema,
                "org.fedoraproject.prod.buildsys.tag",
                headers,
                json!({}),
            );
            Registry::default().extract(&env).severity
        };
        assert_eq!(
            severity("koji_fedoramessaging.tag.TagV1", json!({})),
            Severity::Debug
        );
        assert_eq!(
            severity("bodhi.update.status.testing.v3", json!({})),
            Severity::Debug
        );
        assert_eq!(
            severity("koji_fedoramessaging.task.TaskStateChangeV1", json!({})),
            Severity::Info
        );
        let warning = json!({"fedora_messaging_severity": 30});
        assert_eq!(
            severity("koji_fedoramessaging.tag.TagV1", warning),
            Severity::Warning
        );
        let odd = json!({"fedora_messaging_severity": 25});
        assert_eq!(
            severity("koji_fedoramessaging.tag.TagV1", odd),
            Severity::Debug
        );
    }
}
