//! Property tests: a fedora-messaging message with any headers and body (within what AMQP and
//! JSON allow) is either refused by `Envelope::from_fedora_messaging` with an error or gets
//! metadata, never a panic, whichever schema it names.

use fmn_core::message::Envelope;
use fmn_core::meta::Registry;
use proptest::prelude::*;

mod common;
use common::graft;
use serde_json::{Map, Value};

const CORPUS: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/data/fedora-messaging-examples.jsonl"
));

/// The corpus lines, parsed once.
fn corpus() -> &'static [Value] {
    static LINES: std::sync::OnceLock<Vec<Value>> = std::sync::OnceLock::new();
    LINES.get_or_init(|| {
        CORPUS
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).expect("corpus line is JSON"))
            .collect()
    })
}

/// Keys the schemas read, so arbitrary bodies hit the interesting paths.
const KEYS: &[&str] = &[
    "agent",
    "user",
    "name",
    "msg",
    "body",
    "headers",
    "comment",
    "update",
    "builds",
    "project",
    "repo",
    "issue",
    "pullrequest",
    "commits",
    "new",
    "old",
    "task",
    "info",
    "children",
    "result",
    "meeting",
    "calendar",
    "webhook_body",
    "webhook_headers",
    "trigger",
    "bug",
    "event",
    "changes",
    "IPA_API_PARAMS",
    "regions",
    "packages",
    "versions",
    "x-github-event",
    "x-forgejo-event",
    "x-gitlab-event",
    "repository",
    "commit",
    "namespace",
    "status",
    "meeting_date",
    "meeting_time_start",
    "completion_time",
    "creation_time",
    "-1",
    "0",
];

fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::from),
        prop::sample::select(KEYS).prop_map(Value::from),
        Just(Value::from("2026-11-30 17:35:56")),
        Just(Value::from("2024-01-01T07:37:44.691478+00:00")),
    ];
    leaf.prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::from),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..6).prop_map(|kv| {
                Value::Object(kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
            }),
        ]
    })
}

fn object() -> impl Strategy<Value = Map<String, Value>> {
    json().prop_map(|v| match v {
        Value::Object(map) => map,
        other => [("msg".to_owned(), other)].into_iter().collect(),
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Any schema name from the corpus with an arbitrary body and extra headers.
    #[test]
    fn arbitrary_bodies_never_panic(
        line in 0..277usize,
        body in json(),
        extra in object(),
        id in "\\PC{0,300}",
    ) {
        let record = &corpus()[line % corpus().len()];
        let mut headers = record["headers"].as_object().cloned().unwrap_or_default();
        headers.extend(extra);
        let topic = record["topic"].as_str().unwrap_or_default();
        if let Ok(envelope) = Envelope::from_fedora_messaging(&id, topic, headers, body) {
            let meta = Registry::default().extract(&envelope);
            prop_assert!(meta.subtitle.is_some());
            // Field by field: serde_json (without its `float_roundtrip` feature) may read a
            // float back one ulp off, so whole bodies are not compared.
            let back = Envelope::from_json(&envelope.to_json()).unwrap();
            prop_assert_eq!(back.origin(), envelope.origin());
            prop_assert_eq!(back.msg_id(), envelope.msg_id());
            prop_assert_eq!(back.topic(), envelope.topic());
            prop_assert_eq!(back.timestamp, envelope.timestamp);
        }
    }

    /// Corpus messages with one part of the body replaced by something unexpected.
    #[test]
    fn damaged_corpus_bodies_never_panic(line in 0..277usize, choice in any::<usize>(), new in json()) {
        let record = &corpus()[line % corpus().len()];
        let mut body = record["body"].clone();
        graft(&mut body, choice, new);
        let headers = record["headers"].as_object().cloned().unwrap_or_default();
        let topic = record["topic"].as_str().unwrap_or_default();
        let envelope = Envelope::from_fedora_messaging("id", topic, headers, body);
        if let Ok(envelope) = envelope {
            let meta = Registry::default().extract(&envelope);
            prop_assert!(meta.long_text.is_some());
        }
    }

    /// Arbitrary headers and body, topic and id: only errors, no panics.
    #[test]
    fn arbitrary_messages_never_panic(
        headers in object(),
        body in json(),
        topic in "[a-z.]{0,30}",
        id in "\\PC{0,10}",
    ) {
        if let Ok(envelope) = Envelope::from_fedora_messaging(&id, &topic, headers, body) {
            Registry::default().extract(&envelope);
        }
    }
}
