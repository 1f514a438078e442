//! Property tests on the parsers of what the fedmsg bus sends: a topic and an envelope from any
//! text are either refused with an error or parsed consistently, never a panic; a corpus
//! envelope with any part replaced still gets metadata or an error.

use fmn_core::message::{Envelope, Topic};
use fmn_core::meta::Registry;
use proptest::prelude::*;

mod common;
use common::graft;
use serde_json::Value;

const CORPUS: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/data/fedmsg-examples.jsonl"
));

/// The corpus envelopes (the `message` of each line), parsed once.
fn corpus() -> &'static [Value] {
    static ENVELOPES: std::sync::OnceLock<Vec<Value>> = std::sync::OnceLock::new();
    ENVELOPES.get_or_init(|| {
        CORPUS
            .lines()
            .map(|l| {
                serde_json::from_str::<Value>(l).expect("corpus lines are JSON")["message"].clone()
            })
            .collect()
    })
}

/// Topic-like text: labels from a small alphabet that includes the environments, dots, and
/// now and then something that is no topic at all.
fn topic_text() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::collection::vec(
            prop_oneof![
                Just("org".to_string()),
                Just("fedoraproject".to_string()),
                Just("prod".to_string()),
                Just("stg".to_string()),
                Just("dev".to_string()),
                Just(String::new()),
                "[a-z0-9_-]{1,8}",
                "\\PC{1,4}",
            ],
            0..7
        )
        .prop_map(|labels| labels.join(".")),
        "\\PC{0,40}",
    ]
}

fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::vec(
                (
                    prop_oneof![
                        Just("topic".to_string()),
                        Just("msg".to_string()),
                        Just("msg_id".to_string()),
                        Just("timestamp".to_string()),
                        Just("username".to_string()),
                        Just("agent".to_string()),
                        "[a-z_]{1,8}",
                    ],
                    inner
                ),
                0..5
            )
            .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// A parsed topic keeps its text, and its parts are pieces of it in order.
    #[test]
    fn topics_parse_consistently_or_are_refused(text in topic_text()) {
        if let Ok(topic) = Topic::parse(&text) {
            prop_assert_eq!(topic.as_str(), text.as_str());
            prop_assert!(!topic.service().is_empty());
            prop_assert!(!topic.service().contains('.'));
            let env = format!(".{}.{}", topic.environment_label(), topic.service());
            prop_assert!(text.contains(&env), "{} lacks {}", text, env);
            prop_assert!(text.ends_with(topic.event()));
        }
        if let Ok(key) = Topic::parse_routing_key(&text) {
            prop_assert_eq!(key.as_str(), text.as_str());
        }
    }

    /// Any text offered as an envelope: an error or an envelope that survives its own encoding.
    #[test]
    fn any_text_is_an_envelope_or_an_error(text in "\\PC{0,200}") {
        if let Ok(envelope) = Envelope::from_json(&text) {
            let back = Envelope::from_json(&envelope.to_json()).unwrap();
            prop_assert_eq!(back.msg_id(), envelope.msg_id());
        }
        let _ = Envelope::from_json_record(&text);
    }

    /// Any JSON value offered as an envelope.
    #[test]
    fn any_json_is_an_envelope_or_an_error(value in json()) {
        if let Ok(envelope) = Envelope::from_json(&value.to_string()) {
            Registry::default().extract(&envelope);
            let back = Envelope::from_json(&envelope.to_json()).unwrap();
            prop_assert_eq!(back.topic(), envelope.topic());
            prop_assert_eq!(back.msg_id(), envelope.msg_id());
        }
    }

    /// Corpus envelopes with one part replaced by something unexpected.
    #[test]
    fn damaged_corpus_envelopes_never_panic(line in 0..449usize, choice in any::<usize>(), new in json()) {
        let mut envelope = corpus()[line % corpus().len()].clone();
        graft(&mut envelope, choice, new);
        if let Ok(envelope) = Envelope::from_json(&envelope.to_string()) {
            let meta = Registry::default().extract(&envelope);
            // Whatever the body holds, the service is named and the agent is among the users.
            prop_assert!(!meta.app.is_empty());
            if let Some(agent) = &meta.agent {
                prop_assert!(meta.usernames.contains(agent), "{} not in {:?}", agent, meta.usernames);
            }
        }
    }
}
