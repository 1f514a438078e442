//! The message envelope. On the old fedmsg bus it is the JSON object carried in the second
//! frame of every ZeroMQ message; a fedora-messaging (AMQP) message is mapped onto the same
//! type (see [`Envelope::from_fedora_messaging`]) so the rest of the router sees one shape.

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
    /// `msg_id` is longer than an AMQP `message_id` may be.
    #[error("bad msg_id: {0} bytes, at most {MAX_MSG_ID_LEN} allowed")]
    MsgIdTooLong(usize),
    /// A fedora-messaging message without its `message_id`.
    #[error("bad fedora-messaging message: no message id")]
    MissingMsgId,
    /// A fedora-messaging record lacks a field or has it with the wrong type.
    #[error("not a fedora-messaging message: {0}")]
    FedoraMessaging(&'static str),
}

/// The longest message id accepted, in bytes: an AMQP `message_id` is a short string.
pub const MAX_MSG_ID_LEN: usize = 255;

/// Which bus a message came from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Origin {
    /// The ZeroMQ fedmsg bus.
    #[default]
    #[serde(rename = "fedmsg")]
    Fedmsg,
    /// The AMQP bus of the `fedora-messaging` library.
    #[serde(rename = "fedora-messaging")]
    FedoraMessaging,
}

impl Origin {
    /// `fedmsg` or `fedora-messaging`, as on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fedmsg => "fedmsg",
            Self::FedoraMessaging => "fedora-messaging",
        }
    }

    /// Whether this is [`Origin::Fedmsg`] (serde skips the field then).
    pub fn is_fedmsg(&self) -> bool {
        *self == Self::Fedmsg
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
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
    origin: Option<Origin>,
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
                "origin" => raw.origin = map.next_value()?,
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
    /// AMQP headers: those of a fedora-messaging message, or of a message bridged from it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub headers: Option<Map<String, Value>>,
    /// The bus it came from; written only for fedora-messaging so fedmsg JSON stays as it was.
    #[serde(skip_serializing_if = "Origin::is_fedmsg")]
    origin: Origin,
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
            && self.origin == other.origin
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

    /// Parses one record of a message dump: a bare envelope; an object holding the envelope
    /// under `message` (datagrepper-style and corpus files), recognised by having a `message`
    /// object and no `topic`-and-`msg` pair of its own; or a fedora-messaging message in the
    /// form of [`Envelope::from_fedora_messaging_value`] (`topic` and `body`, no `msg`).
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
            other if Self::is_fedora_messaging_form(&other) => {
                Self::from_fedora_messaging_value(&other)
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
        let origin = raw.origin.unwrap_or_default();
        let topic = raw.topic.as_deref().unwrap_or_default();
        let topic = match origin {
            Origin::Fedmsg => Topic::parse(topic)?,
            Origin::FedoraMessaging => Topic::parse_routing_key(topic)?,
        };
        let msg = raw.msg.unwrap_or_default();
        if !msg.is_object() {
            return Err(EnvelopeError::BodyNotAnObject(kind(&msg)));
        }
        match raw.msg_id.as_deref() {
            Some("") => return Err(EnvelopeError::EmptyMsgId),
            Some(id) if id.len() > MAX_MSG_ID_LEN => {
                return Err(EnvelopeError::MsgIdTooLong(id.len()))
            }
            // A derived id would differ from the one the publisher gave the message.
            None if origin == Origin::FedoraMessaging => return Err(EnvelopeError::MissingMsgId),
            _ => {}
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
            origin,
            extra: raw.extra,
            derived_id: OnceLock::new(),
        })
    }

    /// A fedora-messaging message as it arrives over AMQP: the `message_id` property, the
    /// routing key, the headers table (as JSON) and the body (a JSON object).
    ///
    /// The id becomes [`Envelope::msg_id`] unchanged, so a message bridged between the two
    /// buses (the bridges keep the id) is the same message whichever bus it came from. The
    /// `sent-at` header, when it is an ISO 8601 time, becomes the timestamp.
    pub fn from_fedora_messaging(
        message_id: &str,
        topic: &str,
        headers: Map<String, Value>,
        body: Value,
    ) -> Result<Envelope, EnvelopeError> {
        if message_id.is_empty() {
            return Err(EnvelopeError::MissingMsgId);
        }
        let timestamp = headers
            .get("sent-at")
            .and_then(Value::as_str)
            .and_then(iso8601_to_epoch);
        Self::validate(RawEnvelope {
            topic: Some(topic.to_owned()),
            msg: Some(body),
            msg_id: Some(message_id.to_owned()),
            timestamp,
            headers: Some(headers),
            origin: Some(Origin::FedoraMessaging),
            ..RawEnvelope::default()
        })
    }

    /// Parses the JSON form fedora-messaging itself dumps and datagrepper's v2 raw view
    /// serves: an object with `id`, `topic`, `headers` and `body` (other fields, such as
    /// `priority` and `queue`, are ignored; absent or `null` headers count as none).
    pub fn from_fedora_messaging_value(value: &Value) -> Result<Envelope, EnvelopeError> {
        let Value::Object(map) = value else {
            return Err(EnvelopeError::NotAnObject(kind(value)));
        };
        let text = |key: &'static str| match map.get(key) {
            Some(Value::String(s)) => Ok(s.as_str()),
            Some(_) => Err(EnvelopeError::FedoraMessaging(key)),
            None => Err(EnvelopeError::FedoraMessaging(key)),
        };
        let headers = match map.get("headers") {
            Some(Value::Object(h)) => h.clone(),
            None | Some(Value::Null) => Map::new(),
            Some(_) => return Err(EnvelopeError::FedoraMessaging("headers")),
        };
        let body = map
            .get("body")
            .cloned()
            .ok_or(EnvelopeError::FedoraMessaging("body"))?;
        Self::from_fedora_messaging(text("id")?, text("topic")?, headers, body)
    }

    /// Whether a record is in the fedora-messaging form (`topic` and `body`, no `msg`).
    pub fn is_fedora_messaging_form(value: &Value) -> bool {
        value.as_object().is_some_and(|map| {
            map.contains_key("topic") && map.contains_key("body") && !map.contains_key("msg")
        })
    }

    /// Which bus the message came from.
    pub fn origin(&self) -> Origin {
        self.origin
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

/// Epoch seconds of an ISO 8601 time such as fedora-messaging's `sent-at`
/// (`2026-01-01T00:00:00+00:00`, maybe with a fraction; without an offset it is UTC):
/// an integer when there is no fraction, else a float.
fn iso8601_to_epoch(text: &str) -> Option<Number> {
    let when = parse_iso8601(text)?.assume_utc_if_naive();
    let nanos = when.unix_timestamp_nanos();
    if nanos % 1_000_000_000 == 0 {
        Some(Number::from(when.unix_timestamp()))
    } else {
        Number::from_f64(nanos as f64 / 1e9)
    }
}

/// An ISO 8601 time, with its offset when it has one.
pub(crate) enum IsoTime {
    /// With an offset (`+00:00`, `Z`…).
    Offset(time::OffsetDateTime),
    /// Without: a "naive" local time.
    Naive(time::PrimitiveDateTime),
}

impl IsoTime {
    /// The time, naive ones taken as UTC.
    pub(crate) fn assume_utc_if_naive(self) -> time::OffsetDateTime {
        match self {
            Self::Offset(t) => t,
            Self::Naive(t) => t.assume_utc(),
        }
    }
}

/// Parses an ISO 8601 date and time (Python's `isoformat()` output among others).
pub(crate) fn parse_iso8601(text: &str) -> Option<IsoTime> {
    use time::format_description::well_known::Iso8601;
    time::OffsetDateTime::parse(text, &Iso8601::DEFAULT)
        .map(IsoTime::Offset)
        .or_else(|_| time::PrimitiveDateTime::parse(text, &Iso8601::DEFAULT).map(IsoTime::Naive))
        .ok()
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

    fn fm_headers() -> Map<String, Value> {
        serde_json::from_str(
            r#"{"fedora_messaging_schema":"bodhi.update.comment","sent-at":"2026-01-01T00:00:01+00:00",
                "fedora_messaging_user_bob":true,"priority":0}"#,
        )
        .unwrap()
    }

    #[test]
    fn fedora_messaging_messages_round_trip_with_their_origin() {
        let env = Envelope::from_fedora_messaging(
            "0b8dc857-1f2c-51db-9634-297f369e2286",
            "org.fedoraproject.prod.bodhi.update.comment",
            fm_headers(),
            serde_json::json!({"comment": {"text": "hi"}}),
        )
        .unwrap();
        assert_eq!(env.origin(), Origin::FedoraMessaging);
        assert_eq!(env.msg_id(), "0b8dc857-1f2c-51db-9634-297f369e2286");
        assert_eq!(env.timestamp, Some(Number::from(1_767_225_601)));
        assert_eq!(
            env.headers.as_ref().unwrap()["fedora_messaging_user_bob"],
            true
        );
        let json = env.to_json();
        assert!(json.contains(r#""origin":"fedora-messaging""#), "{json}");
        let back = Envelope::from_json(&json).unwrap();
        assert_eq!(back, env);
        assert_eq!(back.origin(), Origin::FedoraMessaging);
        assert_eq!(back.msg_id(), env.msg_id());
    }

    #[test]
    fn fedmsg_json_has_no_origin_and_a_bridged_copy_keeps_the_id() {
        let json = r#"{"topic":"org.fedoraproject.prod.git.receive","msg":{},"msg_id":"2019-abc"}"#;
        let env = Envelope::from_json(json).unwrap();
        assert_eq!(env.origin(), Origin::Fedmsg);
        assert_eq!(env.to_json(), json);
        let amqp = Envelope::from_fedora_messaging(
            "2019-abc",
            "org.fedoraproject.prod.git.receive",
            Map::new(),
            serde_json::json!({}),
        )
        .unwrap();
        assert_eq!(amqp.msg_id(), env.msg_id());
        assert_ne!(amqp, env);
    }

    #[test]
    fn fedora_messaging_validation() {
        let topic = "org.fedoraproject.prod.git.receive";
        let make = |id: &str, topic: &str, body: Value| {
            Envelope::from_fedora_messaging(id, topic, Map::new(), body)
        };
        assert!(matches!(
            make("", topic, serde_json::json!({})),
            Err(EnvelopeError::MissingMsgId)
        ));
        assert!(matches!(
            make(&"x".repeat(256), topic, serde_json::json!({})),
            Err(EnvelopeError::MsgIdTooLong(256))
        ));
        assert!(make(&"x".repeat(255), topic, serde_json::json!({})).is_ok());
        // A class without a topic of its own is published on the bare prefix.
        let bare = make("a", "org.fedoraproject.prod.", serde_json::json!({})).unwrap();
        assert_eq!(Envelope::from_json(&bare.to_json()).unwrap(), bare);
        assert!(Envelope::from_json(
            r#"{"topic":"org.fedoraproject.prod.","msg":{},"msg_id":"a"}"#
        )
        .is_err());
        assert!(matches!(
            make("a", "nope", serde_json::json!({})),
            Err(EnvelopeError::Topic(_))
        ));
        assert!(matches!(
            make("a", topic, serde_json::json!([1])),
            Err(EnvelopeError::BodyNotAnObject("an array"))
        ));
        let long = format!(
            r#"{{"topic":"{topic}","msg":{{}},"msg_id":"{}"}}"#,
            "y".repeat(300)
        );
        assert!(matches!(
            Envelope::from_json(&long),
            Err(EnvelopeError::MsgIdTooLong(300))
        ));
        let no_id = format!(r#"{{"topic":"{topic}","msg":{{}},"origin":"fedora-messaging"}}"#);
        assert!(matches!(
            Envelope::from_json(&no_id),
            Err(EnvelopeError::MissingMsgId)
        ));
        let bad_origin = format!(r#"{{"topic":"{topic}","msg":{{}},"origin":"carrier-pigeon"}}"#);
        assert!(Envelope::from_json(&bad_origin).is_err());
    }

    #[test]
    fn sent_at_forms() {
        let epoch = |s: &str| iso8601_to_epoch(s).map(|n| n.to_string());
        assert_eq!(epoch("1970-01-01T00:00:10+00:00").as_deref(), Some("10"));
        assert_eq!(epoch("1970-01-01T01:00:10+01:00").as_deref(), Some("10"));
        assert_eq!(
            epoch("1970-01-01T00:00:10.5+00:00").as_deref(),
            Some("10.5")
        );
        assert_eq!(epoch("1970-01-01T00:00:10").as_deref(), Some("10"));
        assert_eq!(epoch("yesterday"), None);
        let mut headers = Map::new();
        headers.insert("sent-at".into(), "soon".into());
        let env = Envelope::from_fedora_messaging(
            "id",
            "org.fedoraproject.prod.git.receive",
            headers,
            serde_json::json!({}),
        )
        .unwrap();
        assert_eq!(env.timestamp, None);
    }

    #[test]
    fn records_in_the_fedora_messaging_form() {
        let record = r#"{"id":"u-1","topic":"org.fedoraproject.prod.git.receive","headers":{"a":1},
            "body":{"b":2},"priority":0,"queue":null}"#;
        let env = Envelope::from_json_record(record).unwrap();
        assert_eq!(env.origin(), Origin::FedoraMessaging);
        assert_eq!(env.msg_id(), "u-1");
        assert_eq!(env.body()["b"], 2);
        assert_eq!(env.headers.as_ref().unwrap()["a"], 1);
        let bare = Envelope::from_json_record(
            r#"{"id":"u-2","topic":"org.fedoraproject.prod.git.receive","body":{}}"#,
        )
        .unwrap();
        assert_eq!(bare.headers, Some(Map::new()));
        for bad in [
            r#"{"topic":"org.fedoraproject.prod.git.receive","body":{}}"#,
            r#"{"id":3,"topic":"org.fedoraproject.prod.git.receive","body":{}}"#,
            r#"{"id":"x","topic":"org.fedoraproject.prod.git.receive","body":{},"headers":[]}"#,
        ] {
            assert!(Envelope::from_json_record(bad).is_err(), "{bad}");
        }
    }
}
