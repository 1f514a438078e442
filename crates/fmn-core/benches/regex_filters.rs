//! The fixed cost of regex-only filters: 1,000 users, each with one filter whose only rule
//! is a body regex of its own (distinct patterns, as people write them: a package name, a
//! word, a version), matched against the whole corpus. None of them can be filed under an
//! index key, so every message tests every pattern: the fixed cost per message. Throughput in
//! messages per second. Measured with the literal prefilter (the default) and without it.
//!
//! `cargo bench -p fmn-core --bench regex_filters`

use std::collections::BTreeSet;
use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use fmn_core::matching::{Matcher, MessageFacts};
use fmn_core::message::Envelope;
use fmn_core::meta::Registry;
use fmn_core::ownership::Ownership;
use fmn_core::prefs::{Destination, Filter, UserPrefs};
use fmn_core::rules::{Rule, RuleKind};
use serde_json::Value;

const CORPUS: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/data/fedmsg-examples.jsonl"
));

const USERS: usize = 1_000;

fn envelopes() -> Vec<Envelope> {
    CORPUS
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let record: Value = serde_json::from_str(l).expect("corpus line is JSON");
            Envelope::from_json(&record["message"].to_string()).expect("valid envelope")
        })
        .collect()
}

/// Distinct patterns made from the corpus's package names and users.
fn patterns(messages: &[Envelope], registry: &Registry) -> Vec<String> {
    let mut words = BTreeSet::new();
    for e in messages {
        let meta = registry.extract(e);
        words.extend(meta.packages.iter().cloned());
        words.extend(meta.usernames.iter().cloned());
    }
    let words: Vec<String> = words.into_iter().collect();
    let mut out = Vec::new();
    for i in 0.. {
        let w = regex::escape(&words[i % words.len()]);
        let p = match (i / words.len()) % 4 {
            0 => format!(r"\b{w}\b"),
            1 => format!(r"(?i){w}-[0-9]"),
            2 => format!(r#""{w}""#),
            _ => format!(r"{w}.*{}", i % 97),
        };
        out.push(p);
        if out.len() == USERS {
            return out;
        }
    }
    unreachable!()
}

fn bench(c: &mut Criterion) {
    let messages = envelopes();
    let registry = Registry::default();
    let users = patterns(&messages, &registry)
        .into_iter()
        .enumerate()
        .map(|(i, pattern)| {
            let mut p = UserPrefs::new(format!("user{i}"));
            p.destinations =
                vec![Destination::email("email-1", format!("u{i}@example.org")).confirmed(true)];
            p.filters = vec![Filter::new(
                "filter-1".into(),
                "regex".into(),
                vec!["email-1".into()],
                vec![Rule::new(RuleKind::Regex { pattern })],
            )];
            p
        });
    let ownership = Arc::new(Ownership::new());
    let users: Vec<UserPrefs> = users.collect();
    let (matcher, skipped) = Matcher::build(users.clone(), ownership.clone());
    assert!(skipped.is_empty(), "{skipped:?}");
    let (mut unfiltered, _) = Matcher::build(users, ownership.clone());
    unfiltered.set_literal_prefilter(false);
    let metas: Vec<_> = messages.iter().map(|e| registry.extract(e)).collect();
    let mut group = c.benchmark_group("regex_filters");
    group.throughput(Throughput::Elements(messages.len() as u64));
    for (name, matcher) in [
        ("1000_distinct_body_regexes", &matcher),
        ("1000_distinct_body_regexes_without_prefilter", &unfiltered),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                for (envelope, meta) in messages.iter().zip(&metas) {
                    // Facts per message, as the function makes them (the body's JSON included).
                    let facts = MessageFacts::new(envelope, meta, &ownership);
                    black_box(matcher.matches(black_box(&facts)));
                }
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
