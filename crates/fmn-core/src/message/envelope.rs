//! The fedmsg envelope: the JSON object carried in the second frame of every bus message.

use std::fmt;
use std::sync::OnceLock;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Number, Value};
use sha2::{Digest, Sha256};

use super::topic::{Topic, TopicError};

/// Why some JSON is not a fedmsg envelope.
#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    /// Not JSON, or a field has the wrong type, or `topic`/`msg` is missing.
    #[error("not a fedmsg envelope: {0}")]
    Json(#[from] serde_json::Error),
    /// The envelope is JSON but not an object.
    #[error("not a fedmsg envelope: expected a JSON object, found {0}")]
    NotAnObject(&'static str),
    /// The `topic` is not a fedmsg topic.
    #[error("bad topic: {0}")]
    Topic(#[from] TopicError),
    /// The `msg` body is not a JSON object.
    #[error("bad msg: expected a JSON object, found {0}")]
    BodyNotAnObject(&'static str),
    /// `msg_id` is present but empty.
    #[error("bad msg_id: empty string")]
    EmptyMsgId,
}

/// The wire shape, read field by field in one pass and then validated into [`Envelope`].
#[derive(Default)]
struct RawEnvelope {
    topic: Option<String>,
    msg: Option<Value>,
    msg_id: Option<String>,
    i: Option<u64>,
    timestamp: Option<Number>,
    username: Option<String>,
    crypto: Option<String>,
    certificate: Option<String>,
    signature: Option<String>,
    headers: Option<Map<String, Value>>,
    extra: Map<String, Value>,
}

struct RawVisitor;

impl<'de> Visitor<'de> for RawVisitor {
    type Value = RawEnvelope;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a fedmsg envelope (a JSON object with `topic` and `msg`)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawEnvelope, A::Error> {
        fn set<T, E: de::Error>(slot: &mut Option<T>, value: T, key: &str) -> Result<(), E> {
            if slot.replace(value).is_some() {
                return Err(E::custom(format_args!("duplicate field `{key}`")));
            }
            Ok(())
        }
        let mut raw = RawEnvelope::default();
        while let Some(key) = map.next_key::<String>()? {
            // `null` for an optional field means absent (stored copies say so).
            match key.as_str() {
                "topic" => set(&mut raw.topic, map.next_value()?, "topic")?,
                "msg" => set(&mut raw.msg, map.next_value()?, "msg")?,
                "msg_id" => raw.msg_id = map.next_value()?,
                "i" => raw.i = map.next_value()?,
                "timestamp" => raw.timestamp = map.next_value()?,
                "username" => raw.username = map.next_value()?,
                "crypto" => raw.crypto = map.next_value()?,
                "certificate" => raw.certificate = map.next_value()?,
                "signature" => raw.signature = map.next_value()?,
                "headers" => raw.headers = map.next_value()?,
                _ => {
                    let value: Value = map.next_value()?;
                    if raw.extra.insert(key.clone(), value).is_some() {
                        return Err(de::Error::custom(format_args!("duplicate field `{key}`")));
                    }
                }
            }
        }
        if raw.topic.is_none() {
            return Err(de::Error::missing_field("topic"));
        }
        if raw.msg.is_none() {
            return Err(de::Error::missing_field("msg"));
        }
        Ok(raw)
    }
}

impl<'de> Deserialize<'de> for RawEnvelope {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(RawVisitor)
    }
}

/// A fedmsg envelope.
///
/// Parsing is strict about what the router relies on (`topic` must be a fedmsg topic, `msg`
/// an object, the known fields must have their documented types) and lenient about the rest:
/// every field it does not know (`source_name`, `seq_id`…) is kept in [`Envelope::extra`] and
/// written back on serialisation.
///
/// ## Message ids
/// [`Envelope::msg_id`] is the publisher's `msg_id` when there is one. Otherwise it is
/// `sha256:` followed by the hex SHA-256 of `topic`, a newline, the timestamp as written (empty
/// when absent), a newline and the canonical JSON of `msg` (keys sorted, no spaces): the same
/// message always gets the same id, whatever its key order.
#[derive(Debug, Clone, Serialize)]
pub struct Envelope {
    /// The topic.
    pub topic: Topic,
    /// The application payload (always a JSON object).
    pub msg: Value,
    /// The publisher's id, `<year>-<uuid4>` or a bare UUID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub msg_id: Option<String>,
    /// Per-publisher-process counter.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub i: Option<u64>,
    /// Publication time, epoch seconds (integer or float as published).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<Number>,
    /// Unix user of the publishing process (not the actor).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Signature backend, `x509` or `gpg`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crypto: Option<String>,
    /// Base64 PEM certificate of the signer (x509).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate: Option<String>,
    /// Base64 signature.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    /// AMQP headers of messages bridged from fedora-messaging.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub headers: Option<Map<String, Value>>,
    /// Fields this type does not know, kept as they were.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
    #[serde(skip)]
    derived_id: OnceLock<String>,
}

impl PartialEq for Envelope {
    /// Envelopes are equal when their wire fields are (the derived id follows from them).
    fn eq(&self, other: &Self) -> bool {
        self.topic == other.topic
            && self.msg == other.msg
            && self.msg_id == other.msg_id
            && self.i == other.i
            && self.timestamp == other.timestamp
            && self.username == other.username
            && self.crypto == other.crypto
            && self.certificate == other.certificate
            && self.signature == other.signature
            && self.headers == other.headers
            && self.extra == other.extra
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl Envelope {
    /// Parses an envelope from JSON text.
    pub fn from_json(json: &str) -> Result<Self, EnvelopeError> {
        let mut de = serde_json::Deserializer::from_str(json);
        let raw = RawEnvelope::deserialize(&mut de).map_err(|e| match e.classify() {
            serde_json::error::Category::Data if json.trim_start().starts_with(['[', '"']) => {
                EnvelopeError::NotAnObject(kind_of_text(json))
            }
            _ => EnvelopeError::Json(e),
        })?;
        de.end()?;
        Self::validate(raw)
    }

    /// Parses one record of a message dump: either a bare envelope, or an object holding the
    /// envelope under `message` (datagrepper-style and corpus files), recognised by having a
    /// `message` object and no `topic`-and-`msg` pair of its own.
    pub fn from_json_record(json: &str) -> Result<Self, EnvelopeError> {
        let value: Value = serde_json::from_str(json)?;
        Self::from_record_value(value)
    }

    /// [`Envelope::from_json_record`] for an already parsed value.
    pub fn from_record_value(value: Value) -> Result<Self, EnvelopeError> {
        match value {
            Value::Object(mut map)
                if !(map.contains_key("topic") && map.contains_key("msg"))
                    && map.get("message").is_some_and(Value::is_object) =>
            {
                Self::from_value(map.remove("message").unwrap_or_default())
            }
            other => Self::from_value(other),
        }
    }

    /// Validates an already parsed JSON value.
    pub fn from_value(value: Value) -> Result<Self, EnvelopeError> {
        if !value.is_object() {
            return Err(EnvelopeError::NotAnObject(kind(&value)));
        }
        Self::validate(RawEnvelope::deserialize(value)?)
    }

    fn validate(raw: RawEnvelope) -> Result<Self, EnvelopeError> {
        let topic = Topic::parse(raw.topic.as_deref().unwrap_or_default())?;
        let msg = raw.msg.unwrap_or_default();
        if !msg.is_object() {
            return Err(EnvelopeError::BodyNotAnObject(kind(&msg)));
        }
        if raw.msg_id.as_deref() == Some("") {
            return Err(EnvelopeError::EmptyMsgId);
        }
        Ok(Self {
            topic,
            msg,
            msg_id: raw.msg_id,
            i: raw.i,
            timestamp: raw.timestamp,
            username: raw.username,
            crypto: raw.crypto,
            certificate: raw.certificate,
            signature: raw.signature,
            headers: raw.headers,
            extra: raw.extra,
            derived_id: OnceLock::new(),
        })
    }

    /// The message's id: the publisher's `msg_id`, or a deterministic `sha256:…` id derived
    /// from topic, timestamp and body (see the type's documentation).
    pub fn msg_id(&self) -> &str {
        match &self.msg_id {
            Some(id) => id,
            None => self.derived_id.get_or_init(|| self.derive_id()),
        }
    }

    /// The parsed topic.
    pub fn topic(&self) -> &Topic {
        &self.topic
    }

    /// The body, `msg`.
    pub fn body(&self) -> &Value {
        &self.msg
    }

    /// The timestamp as float seconds since the epoch.
    pub fn timestamp_secs(&self) -> Option<f64> {
        self.timestamp.as_ref().and_then(Number::as_f64)
    }

    /// Serialises the envelope back to JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    fn derive_id(&self) -> String {
        let mut canonical = String::with_capacity(256);
        canonical.push_str(self.topic.as_str());
        canonical.push('\n');
        if let Some(ts) = &self.timestamp {
            canonical.push_str(&ts.to_string());
        }
        canonical.push('\n');
        write_canonical(&self.msg, &mut canonical);
        format!(
            "sha256:{}",
            hex::encode(Sha256::digest(canonical.as_bytes()))
        )
    }
}

impl<'de> Deserialize<'de> for Envelope {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = RawEnvelope::deserialize(deserializer)?;
        Self::validate(raw).map_err(de::Error::custom)
    }
}

/// What kind of JSON value some (non-object) text starts with.
fn kind_of_text(json: &str) -> &'static str {
    match json.trim_start().chars().next() {
        Some('[') => "an array",
        Some('"') => "a string",
        _ => "something else",
    }
}

/// Compact JSON with object keys sorted, for hashing.
fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (n, key) in keys.into_iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (n, item) in items.iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_envelope_and_keeps_unknown_fields() {
        let json = r#"{"topic":"org.fedoraproject.prod.git.receive","msg":{"a":1},
            "msg_id":"2014-f1c49f0b-5caf-49e6-b79a-cc54bcfac602","i":3,"timestamp":1344350850.5,
            "username":"apache","crypto":"x509","certificate":"Q0VS","signature":"U0lH",
            "headers":{"h":"v"},"source_name":"datanommer","source_version":"0.6.4"}"#;
        let env = Envelope::from_json(json).unwrap();
        assert_eq!(env.msg_id(), "2014-f1c49f0b-5caf-49e6-b79a-cc54bcfac602");
        assert_eq!(env.i, Some(3));
        assert_eq!(env.timestamp_secs(), Some(1344350850.5));
        assert_eq!(env.username.as_deref(), Some("apache"));
        assert_eq!(env.extra["source_name"], "datanommer");
        let back: Value = serde_json::from_str(&env.to_json()).unwrap();
        let orig: Value = serde_json::from_str(json).unwrap();
        assert_eq!(back, orig);
    }

    #[test]
    fn derived_ids_are_deterministic_and_order_independent() {
        let a = Envelope::from_json(
            r#"{"topic":"org.fedoraproject.prod.git.receive","timestamp":1,"msg":{"a":1,"b":[1,{"y":2,"x":1}]}}"#,
        )
        .unwrap();
        let b = Envelope::from_json(
            r#"{"msg":{"b":[1,{"x":1,"y":2}],"a":1},"timestamp":1,"topic":"org.fedoraproject.prod.git.receive"}"#,
        )
        .unwrap();
        assert!(a.msg_id().starts_with("sha256:"));
        assert_eq!(a.msg_id(), b.msg_id());
        let c = Envelope::from_json(
            r#"{"topic":"org.fedoraproject.prod.git.receive","timestamp":2,"msg":{"a":1,"b":[1,{"y":2,"x":1}]}}"#,
        )
        .unwrap();
        assert_ne!(a.msg_id(), c.msg_id());
        assert!(a.msg_id.is_none());
        assert_eq!(a, a.clone());
        assert!(!a.to_json().contains("sha256"));
    }

    #[test]
    fn nulls_count_as_absent() {
        let env = Envelope::from_json(
            r#"{"topic":"org.fedoraproject.prod.git.receive","msg":{},"username":null,"crypto":null}"#,
        )
        .unwrap();
        assert_eq!(env.username, None);
    }

    #[test]
    fn rejects_garbage_clearly() {
        let err = |s: &str| Envelope::from_json(s).unwrap_err().to_string();
        assert!(err("nope").contains("not a fedmsg envelope"));
        assert!(err("[1]").contains("expected a JSON object, found an array"));
        assert!(err(r#"{"msg":{}}"#).contains("missing field `topic`"));
        assert!(err(r#"{"topic":"org.fedoraproject.prod.x"}"#).contains("missing field `msg`"));
        assert!(err(r#"{"topic":"hello","msg":{}}"#).contains("bad topic"));
        assert!(err(r#"{"topic":"org.fedoraproject.prod.x","msg":3}"#).contains("bad msg"));
        assert!(
            err(r#"{"topic":"org.fedoraproject.prod.x","msg":{},"i":"one"}"#)
                .contains("invalid type")
        );
        assert!(
            err(r#"{"topic":"org.fedoraproject.prod.x","msg":{},"msg_id":""}"#).contains("msg_id")
        );
    }

    #[test]
    fn records_may_wrap_the_envelope() {
        let env = Envelope::from_json_record(
            r#"{"id":"x","message":{"topic":"org.fedoraproject.prod.git.receive","msg":{}}}"#,
        )
        .unwrap();
        assert_eq!(env.topic.service(), "git");
        let env = Envelope::from_json_record(
            r#"{"topic":"org.fedoraproject.prod.git.receive","msg":{}}"#,
        )
        .unwrap();
        assert_eq!(env.topic.event(), "receive");
    }

    #[test]
    fn deserialize_validates() {
        let env: Envelope =
            serde_json::from_str(r#"{"topic":"org.fedoraproject.dev.fas.user.create","msg":{}}"#)
                .unwrap();
        assert!(env.msg_id().starts_with("sha256:"));
        assert!(serde_json::from_str::<Envelope>(r#"{"topic":"x","msg":{}}"#).is_err());
    }
}
