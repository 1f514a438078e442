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
mod facts;
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

use crate::meta::ctx::Ctx;
use crate::meta::model::{Metadata, Severity};
pub(crate) use facts::Facts;
use facts::{base, headers, opt};

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

#[cfg(test)]
mod tests {
    use serde_json::{json, Map, Value};

    use super::facts::fill;
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
