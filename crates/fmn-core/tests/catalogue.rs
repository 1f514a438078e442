//! The service catalogue against real messages: every entry matches at least one message of
//! the corpora (fedmsg and fedora-messaging), no two entries are the same predicate, and the
//! indexed matcher agrees with the naive one on every catalogue rule and every message.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use fmn_core::matching::{explain, match_naive, Matcher, MessageFacts};
use fmn_core::message::Envelope;
use fmn_core::meta::{Metadata, Registry};
use fmn_core::ownership::Ownership;
use fmn_core::prefs::{Destination, Filter, UserPrefs};
use fmn_core::rules::{full_catalogue, service_catalogue, Rule, RuleKind};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data");

/// Every corpus message: (file:id, envelope, metadata).
fn messages() -> Vec<(String, Envelope, Metadata)> {
    let registry = Registry::default();
    let mut out = Vec::new();
    let read = |f: &str| std::fs::read_to_string(format!("{DATA}/{f}")).unwrap();
    for line in read("fedmsg-examples.jsonl").lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let id = format!("fedmsg:{}", v["id"].as_str().unwrap());
        let env = Envelope::from_record_value(v).unwrap();
        let meta = registry.extract(&env);
        out.push((id, env, meta));
    }
    for file in [
        "fedora-messaging-examples.jsonl",
        "fedora-messaging-extra.jsonl",
        "catalogue-examples.jsonl",
    ] {
        for line in read(file).lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let id = format!("{file}:{}", v["id"].as_str().unwrap());
            let env = Envelope::from_fedora_messaging_value(&v).unwrap();
            let meta = registry.extract(&env);
            out.push((id, env, meta));
        }
    }
    out
}

/// Values for the entries that take them, each seen in the corpora.
fn values_for(entry: &str) -> Vec<String> {
    let v: &[&str] = match entry {
        "koji_instance" => &["primary"],
        "koschei_group" => &["rust-sig"],
        "anitya_by_upstream_project" => &["2ping", "flatpak"],
        "taskotron_task_outcome" => &["PASSED"],
        "pagure_issues_of_projects" => &["design"],
        "pagure_pull_requests_of_projects" => &["test"],
        "pagure_commits_to_projects" => &["pagure"],
        "meetbot_irc_channel" => &["#fedora-meeting"],
        "meetbot_matrix_room" => &["#fedora-meeting:fedoraproject.org"],
        _ => &[],
    };
    v.iter().map(|s| s.to_string()).collect()
}

fn rule(entry: &str) -> Rule {
    Rule::new(RuleKind::Catalogue {
        entry: entry.into(),
        values: values_for(entry),
    })
}

/// One user per entry, named after it, with one filter holding the entry's rule.
fn users() -> Vec<UserPrefs> {
    service_catalogue()
        .entries()
        .map(|(_, e)| {
            let mut p = UserPrefs::new(&e.id);
            p.destinations
                .push(Destination::email("email-1", "x@example.org").confirmed(true));
            p.filters.push(Filter::new(
                "f".into(),
                e.title.clone(),
                vec!["email-1".into()],
                vec![rule(&e.id)],
            ));
            p
        })
        .collect()
}

#[test]
fn every_entry_matches_a_corpus_message_and_both_matchers_agree() {
    let messages = messages();
    let users = users();
    let ownership = Arc::new(Ownership::default());
    let (matcher, skipped) = Matcher::build(users.clone(), ownership.clone());
    assert!(skipped.is_empty(), "{skipped:?}");
    let mut witnesses: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut origins: HashMap<String, BTreeSet<&'static str>> = HashMap::new();
    for (id, env, meta) in &messages {
        let facts = MessageFacts::new(env, meta, &ownership);
        let indexed = matcher.matches(&facts);
        let naive = match_naive(&users, &facts, &ownership);
        assert_eq!(indexed, naive, "the matchers disagree on {id}");
        for m in indexed {
            assert!(
                m.reason.starts_with(&format!("catalogue:{} (", m.user)),
                "{}",
                m.reason
            );
            witnesses
                .entry(m.user.to_string())
                .or_default()
                .push(id.clone());
            origins
                .entry(m.user.to_string())
                .or_default()
                .insert(if id.starts_with("fedmsg:") {
                    "fedmsg"
                } else {
                    "fedora-messaging"
                });
        }
    }
    let missing: Vec<&str> = service_catalogue()
        .entries()
        .map(|(_, e)| e.id.as_str())
        .filter(|id| !witnesses.contains_key(*id))
        .collect();
    assert!(
        missing.is_empty(),
        "entries no corpus message matches: {missing:?}"
    );
    // Both buses' forms of the same events are one entry.
    let both = origins.values().filter(|o| o.len() == 2).count();
    assert!(
        both >= 60,
        "only {both} entries match messages of both buses"
    );
    println!(
        "{} entries, {} match messages of both buses",
        witnesses.len(),
        both
    );
}

#[test]
fn field_tests_decide_and_values_narrow() {
    let messages = messages();
    let ownership = Ownership::default();
    let find = |id: &str| messages.iter().find(|(i, _, _)| i == id).unwrap();
    let holds = |r: &Rule, id: &str| {
        let (_, env, meta) = find(id);
        let facts = MessageFacts::new(env, meta, &ownership);
        fmn_core::matching::CompiledRule::compile(r)
            .unwrap()
            .holds("someone", &facts, &ownership)
    };
    let failed = "catalogue-examples.jsonl:catalogue-1";
    assert!(holds(&rule("koji_build_failed"), failed));
    assert!(!holds(&rule("koji_build_completed"), failed));
    assert!(holds(&rule("koji_build_state_change"), failed));
    assert!(holds(&rule("koji_instance"), failed));
    let other_instance = Rule::new(RuleKind::Catalogue {
        entry: "koji_instance".into(),
        values: vec!["s390".into()],
    });
    assert!(!holds(&other_instance, failed));
    let karma = "catalogue-examples.jsonl:catalogue-3";
    assert!(holds(&rule("bodhi_update_critpath_karma"), karma));
    assert!(holds(&rule("bodhi_update_comment"), karma));
    // The same comment on an update off the critical path.
    let plain = messages
        .iter()
        .find(|(i, env, _)| {
            i.starts_with("fedora-messaging-examples")
                && env.topic().as_str().ends_with("bodhi.update.comment")
        })
        .unwrap();
    assert!(!holds(&rule("bodhi_update_critpath_karma"), &plain.0));
}

#[test]
fn no_two_entries_are_the_same_predicate() {
    let mut seen: HashMap<String, &str> = HashMap::new();
    for (_, e) in service_catalogue().entries() {
        if let Some(other) = seen.insert(e.canonical_predicate(), &e.id) {
            panic!("`{}` and `{other}` are the same predicate", e.id);
        }
    }
}

#[test]
fn explain_names_the_entry_and_its_tests() {
    let messages = messages();
    let (_, env, meta) = messages
        .iter()
        .find(|(i, _, _)| i == "catalogue-examples.jsonl:catalogue-1")
        .unwrap();
    let ownership = Ownership::default();
    let facts = MessageFacts::new(env, meta, &ownership);
    let user = users()
        .into_iter()
        .find(|u| u.name == "koji_build_failed")
        .unwrap();
    let text = serde_json::to_string(&explain(&user, &facts, &ownership)).unwrap();
    assert!(text.contains("catalogue:koji_build_failed"), "{text}");
    assert!(text.contains("new = 3"), "{text}");
}

#[test]
fn the_full_catalogue_lists_kinds_then_every_entry() {
    let all = full_catalogue();
    let entries = service_catalogue().entries().count();
    assert_eq!(all.len(), fmn_core::rules::catalog().len() + entries);
    let last = all.last().unwrap();
    assert_eq!(last["kind"], "catalogue");
    assert_eq!(last["family"], "service-entry");
    assert!(last["entry"].is_string() && last["service"].is_string());
    let koji = all
        .iter()
        .find(|v| v["entry"] == "koji_build_failed")
        .unwrap();
    assert_eq!(koji["service"], "koji");
    assert_eq!(koji["topics"][0], "buildsys.build.state.change");
    assert_eq!(
        koji["where"][0],
        serde_json::json!({"op": "eq", "path": "new", "value": 3})
    );
}
