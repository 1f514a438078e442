//! Every corpus message (fedmsg and fedora-messaging), matched by a real filter and rendered
//! as mail: valid MIME with a plain-text and an HTML part, no header line over RFC 5322's 998
//! characters, the old FMN's filtering headers and ours pinned, and the long form in the body
//! wherever the message has one.

use std::sync::Arc;

use fmn_core::jobs::{DeliveryJob, Notification};
use fmn_core::matching::{Matcher, MessageFacts};
use fmn_core::message::Envelope;
use fmn_core::meta::{Metadata, Registry};
use fmn_core::ownership::Ownership;
use fmn_core::prefs::{Destination, Filter, UserPrefs};
use fmn_core::render::email::render;
use fmn_core::render::MailContext;
use fmn_core::rules::{Rule, RuleKind};
use mail_parser::{MessageParser, MimeHeaders};
use serde_json::Value;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data");

struct Case {
    id: String,
    envelope: Envelope,
    meta: Metadata,
    /// The fedora-messaging schema's `__str__`, when the corpus states it.
    schema_text: Option<String>,
}

fn cases() -> Vec<Case> {
    let registry = Registry::default();
    let read = |f: &str| std::fs::read_to_string(format!("{DATA}/{f}")).unwrap();
    let mut out = Vec::new();
    for line in read("fedmsg-examples.jsonl").lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        let id = format!("fedmsg:{}", v["id"].as_str().unwrap());
        let envelope = Envelope::from_record_value(v).unwrap();
        let meta = registry.extract(&envelope);
        out.push(Case {
            id,
            envelope,
            meta,
            schema_text: None,
        });
    }
    for file in [
        "fedora-messaging-examples.jsonl",
        "fedora-messaging-extra.jsonl",
    ] {
        for line in read(file).lines() {
            let v: Value = serde_json::from_str(line).unwrap();
            let id = format!("{file}:{}", v["id"].as_str().unwrap());
            let envelope = Envelope::from_fedora_messaging_value(&v).unwrap();
            let meta = registry.extract(&envelope);
            let schema_text = v["expected"]["__str__"].as_str().map(str::to_string);
            out.push(Case {
                id,
                envelope,
                meta,
                schema_text,
            });
        }
    }
    out
}

fn ctx() -> MailContext {
    MailContext {
        from_address: "notifications@fedoraproject.org".into(),
        from_name: "Fedora Notifications".into(),
        public_url: "https://notifications.example.org".into(),
        unsubscribe_secret: b"secret".to_vec(),
    }
}

/// A user whose one filter takes everything (a `topic *` rule after a catalogue-free tracking
/// rule would need ownership): the reason code comes from the real matcher.
fn everyone(rules: Vec<Rule>) -> UserPrefs {
    let mut p = UserPrefs::new("alice");
    p.destinations
        .push(Destination::email("email-1", "alice@example.org").confirmed(true));
    p.filters.push(Filter::new(
        "f-7".into(),
        "Everything I asked for".into(),
        vec!["email-1".into()],
        rules,
    ));
    p
}

/// The text of what the body should hold for a fedmsg message with a long form.
fn fedmsg_long_source(body: &Value, topic: &str) -> Option<String> {
    let s = |p: &str| {
        p.split('.')
            .try_fold(body, |v, k| v.get(k))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    if topic.contains("bodhi.update.comment") {
        return s("comment.text");
    }
    if topic.contains(".git.receive") || topic.contains("infragit.receive") {
        return s("commit.message").map(|m| m.lines().next().unwrap_or_default().to_string());
    }
    if topic.contains("pagure.issue.new") {
        return s("issue.content");
    }
    if topic.contains("github.") {
        return s("comment.body");
    }
    if topic.contains("anitya.project.version.update") {
        return s("upstream_version");
    }
    None
}

#[test]
fn every_corpus_message_renders_as_sound_mail_with_the_filtering_headers() {
    let cases = cases();
    let ownership = Arc::new(Ownership::default());
    let user = everyone(vec![Rule::new(RuleKind::Topic { glob: "*".into() })]);
    let (matcher, _) = Matcher::build([user], ownership.clone());
    let (mut long_expected, mut long_found) = (0, 0);
    for case in &cases {
        let facts = MessageFacts::new(&case.envelope, &case.meta, &ownership);
        let matches = matcher.matches(&facts);
        assert_eq!(matches.len(), 1, "{}", case.id);
        let job = DeliveryJob::new(&matches[0], &Notification::new(&case.envelope, &case.meta));
        let mail = render(&job, &ctx(), 1_800_000_000).unwrap();
        let raw = String::from_utf8(mail.raw.clone()).unwrap();
        let (head, _) = raw.split_once("\r\n\r\n").unwrap();
        for line in raw.split("\r\n") {
            assert!(line.len() <= 998, "{}: a line of {}", case.id, line.len());
        }
        let msg = MessageParser::default()
            .parse(&mail.raw)
            .unwrap_or_else(|| panic!("{}: not MIME", case.id));
        assert_eq!(
            msg.content_type().map(|c| (c.ctype(), c.subtype())),
            Some(("multipart", Some("alternative"))),
            "{}",
            case.id
        );
        assert_eq!(msg.text_body_count(), 1, "{}", case.id);
        assert_eq!(msg.html_body_count(), 1, "{}", case.id);
        let text = msg.body_text(0).unwrap().to_string();
        let html = msg.body_html(0).unwrap().to_string();
        assert!(html.contains("</html>"), "{}", case.id);

        let values = |name: &str| -> Vec<String> {
            msg.header_values(name)
                .filter_map(|v| v.as_text().map(str::to_string))
                .collect()
        };
        let topic = case.envelope.topic().as_str();
        assert_eq!(values("X-Fedmsg-Topic"), [topic], "{}", case.id);
        // The fourth field (none for a bare `org.fedoraproject.prod.` routing key).
        let category: Vec<&str> = topic
            .split('.')
            .nth(3)
            .filter(|c| !c.is_empty())
            .into_iter()
            .collect();
        assert_eq!(values("X-Fedmsg-Category"), category, "{}", case.id);
        let users: Vec<String> = case.meta.usernames.iter().cloned().collect();
        assert_eq!(values("X-Fedmsg-Username"), users, "{}", case.id);
        let packages: Vec<String> = case.meta.packages.iter().take(10).cloned().collect();
        assert_eq!(values("X-Fedmsg-Package"), packages, "{}", case.id);
        assert_eq!(
            msg.header_raw("X-Fedmsg-Num-Packages").map(str::trim),
            Some(case.meta.packages.len().to_string().as_str()),
            "{}",
            case.id
        );
        assert_eq!(msg.header_raw("Precedence").map(str::trim), Some("bulk"));
        assert_eq!(
            msg.header_raw("Auto-Submitted").map(str::trim),
            Some("auto-generated")
        );
        assert_eq!(values("X-Fmn-Reason"), ["filter"], "{}", case.id);
        assert_eq!(values("X-Fmn-Filter"), ["Everything I asked for"]);
        assert_eq!(
            values("X-Fmn-Filter-Url"),
            ["https://notifications.example.org/#filter-f-7"]
        );
        assert!(text.contains("Edit this filter: https://notifications.example.org/#filter-f-7"));
        if case.envelope.origin() == fmn_core::message::Origin::FedoraMessaging {
            assert!(head.contains("\r\nX-Fedora-Messaging-Id: "), "{}", case.id);
        }

        // The long form.
        // (The schema's text is compared with ours by `fedora_messaging_corpus.rs`; a few
        // say "in 10 months", so here the body must hold ours.)
        let source = match &case.schema_text {
            Some(_) => {
                let ours = case.meta.long_text.as_deref();
                assert!(ours.is_some(), "{}: no long text", case.id);
                ours.map(|s| s.trim_end().lines().next().unwrap_or_default().to_string())
            }
            None => fedmsg_long_source(case.envelope.body(), topic),
        };
        if let Some(source) = source.filter(|s| !s.trim().is_empty()) {
            long_expected += 1;
            assert!(
                text.contains(source.trim()),
                "{}: the body lacks {source:?}:\n{text}",
                case.id
            );
            long_found += 1;
        }
    }
    println!(
        "{} messages rendered; long form expected and found in {long_found} of {long_expected}",
        cases.len()
    );
    assert!(long_expected > 280, "{long_expected}");
}

#[test]
fn reason_codes_come_from_the_tracking_rule_or_the_catalogue_entry() {
    let cases = cases();
    let ownership = Arc::new(Ownership::default());
    let koji = cases
        .iter()
        .find(|c| c.id == "fedmsg:buildsys.TestKojiBuildStateChangeStart")
        .or_else(|| {
            cases
                .iter()
                .find(|c| c.envelope.topic().title() == "buildsys.build.state.change")
        })
        .unwrap();
    let code = |rules: Vec<Rule>| {
        let (matcher, _) = Matcher::build([everyone(rules)], ownership.clone());
        let facts = MessageFacts::new(&koji.envelope, &koji.meta, &ownership);
        let m = matcher.matches(&facts);
        let job = DeliveryJob::new(&m[0], &Notification::new(&koji.envelope, &koji.meta));
        let mail = render(&job, &ctx(), 0).unwrap();
        let msg = MessageParser::default().parse(&mail.raw).unwrap();
        msg.header_raw("X-Fmn-Reason").unwrap().trim().to_string()
    };
    let owner = koji.meta.usernames.iter().next().unwrap().clone();
    assert_eq!(
        code(vec![Rule::new(RuleKind::Catalogue {
            entry: "koji_build_state_change".into(),
            values: vec![]
        })]),
        "catalogue:koji_build_state_change"
    );
    assert_eq!(
        code(vec![Rule::new(RuleKind::User {
            users: vec![owner.clone()]
        })]),
        "mentioned"
    );
    assert_eq!(
        code(vec![
            Rule::new(RuleKind::Catalogue {
                entry: "koji_build_state_change".into(),
                values: vec![]
            }),
            Rule::new(RuleKind::UsersFollowed { users: vec![owner] }),
        ]),
        "followed-user"
    );
    let package = koji.meta.packages.iter().next().unwrap().clone();
    assert_eq!(
        code(vec![Rule::new(RuleKind::Package {
            packages: vec![package]
        })]),
        "followed"
    );
}
