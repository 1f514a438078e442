//! Checks one multipart ZeroMQ message from the bus: two frames, `[topic, JSON envelope]`, an
//! envelope with `topic` (equal to the first frame) and `msg_id`, within the size limit. The
//! body is kept exactly as received: what goes to SQS is byte-for-byte the second frame.

use serde::Deserialize;

/// Why a message off the bus was skipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InvalidReason {
    FrameCount,
    TooLarge,
    NotUtf8,
    NotJson,
    NoTopic,
    NoMsgId,
    TopicMismatch,
    BadSignature,
}

impl InvalidReason {
    pub const ALL: [InvalidReason; 8] = [
        InvalidReason::FrameCount,
        InvalidReason::TooLarge,
        InvalidReason::NotUtf8,
        InvalidReason::NotJson,
        InvalidReason::NoTopic,
        InvalidReason::NoMsgId,
        InvalidReason::TopicMismatch,
        InvalidReason::BadSignature,
    ];

    pub fn label(self) -> &'static str {
        match self {
            InvalidReason::FrameCount => "frame_count",
            InvalidReason::TooLarge => "too_large",
            InvalidReason::NotUtf8 => "not_utf8",
            InvalidReason::NotJson => "not_json",
            InvalidReason::NoTopic => "no_topic",
            InvalidReason::NoMsgId => "no_msg_id",
            InvalidReason::TopicMismatch => "topic_mismatch",
            InvalidReason::BadSignature => "bad_signature",
        }
    }
}

/// A skipped message: the reason, a human detail, and the id when it could be read.
#[derive(Debug, PartialEq, Eq)]
pub struct Invalid {
    pub reason: InvalidReason,
    pub detail: String,
    pub msg_id: Option<String>,
}

impl Invalid {
    fn new(reason: InvalidReason, detail: impl Into<String>) -> Self {
        Self {
            reason,
            detail: detail.into(),
            msg_id: None,
        }
    }
}

/// A well-formed bus message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Valid {
    pub topic: String,
    pub msg_id: String,
    /// The publisher's sequence counter, when present.
    pub i: Option<u64>,
    /// The publishing process's Unix user, when present.
    pub username: Option<String>,
    /// True when the envelope carries `signature` and `certificate`.
    pub signed: bool,
    /// The envelope exactly as received.
    pub body: String,
}

/// Only the fields we check; everything else is skipped without being built.
#[derive(Deserialize)]
struct Fields<'a> {
    #[serde(borrow, default)]
    topic: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    msg_id: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    i: Option<serde_json::Value>,
    #[serde(borrow, default)]
    username: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    signature: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    certificate: Option<serde::de::IgnoredAny>,
}

/// Validates the frames of one message; `max_body` bounds the envelope's size in bytes.
pub fn validate(frames: Vec<Vec<u8>>, max_body: usize) -> Result<Valid, Invalid> {
    if frames.len() != 2 {
        return Err(Invalid::new(
            InvalidReason::FrameCount,
            format!("{} frame(s), expected 2 (topic, body)", frames.len()),
        ));
    }
    let mut frames = frames.into_iter();
    let (topic_frame, body) = (
        frames.next().unwrap_or_default(),
        frames.next().unwrap_or_default(),
    );
    if body.len() > max_body {
        return Err(Invalid::new(
            InvalidReason::TooLarge,
            format!("body of {} bytes, limit {max_body}", body.len()),
        ));
    }
    let topic_frame = String::from_utf8(topic_frame)
        .map_err(|_| Invalid::new(InvalidReason::NotUtf8, "topic frame is not UTF-8"))?;
    let body = String::from_utf8(body)
        .map_err(|_| Invalid::new(InvalidReason::NotUtf8, "body frame is not UTF-8"))?;
    let fields: Fields<'_> = serde_json::from_str(&body).map_err(|e| {
        Invalid::new(
            InvalidReason::NotJson,
            format!("body is not a JSON object: {e}"),
        )
    })?;
    let msg_id = fields
        .msg_id
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    let with_id = |mut inv: Invalid| {
        inv.msg_id.clone_from(&msg_id);
        inv
    };
    let topic = fields
        .topic
        .as_deref()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            with_id(Invalid::new(
                InvalidReason::NoTopic,
                "envelope has no `topic`",
            ))
        })?;
    if topic != topic_frame {
        return Err(with_id(Invalid::new(
            InvalidReason::TopicMismatch,
            format!("topic frame `{topic_frame}` but envelope topic `{topic}`"),
        )));
    }
    let topic = topic.to_string();
    let msg_id = msg_id.ok_or_else(|| {
        Invalid::new(
            InvalidReason::NoMsgId,
            format!("envelope on `{topic}` has no `msg_id`"),
        )
    })?;
    // Ids are keys downstream (DynamoDB, dedupe memory): a bounded length is part of valid.
    if msg_id.len() > fmn_core::message::MAX_MSG_ID_LEN {
        return Err(Invalid {
            reason: InvalidReason::NoMsgId,
            detail: format!(
                "`msg_id` of {} bytes, over {}",
                msg_id.len(),
                fmn_core::message::MAX_MSG_ID_LEN
            ),
            msg_id: Some(msg_id.chars().take(64).collect()),
        });
    }
    let i = fields.i.as_ref().and_then(serde_json::Value::as_u64);
    let signed = fields.signature.is_some() && fields.certificate.is_some();
    let username = fields.username.as_deref().map(str::to_string);
    drop(fields);
    Ok(Valid {
        topic,
        msg_id,
        i,
        username,
        signed,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_overlong_msg_id_is_invalid() {
        let long = "x".repeat(300);
        let body = format!(r#"{{"topic":"{TOPIC}","msg":{{}},"msg_id":"{long}"}}"#);
        let err = validate(vec![TOPIC.into(), body.into_bytes()], 1 << 20).unwrap_err();
        assert_eq!(err.reason, InvalidReason::NoMsgId);
        assert!(err.detail.contains("300 bytes"), "{}", err.detail);
        assert_eq!(err.msg_id.unwrap().len(), 64);
    }

    const TOPIC: &str = "org.fedoraproject.prod.buildsys.build.state.change";

    fn frames(topic: &str, body: &str) -> Vec<Vec<u8>> {
        vec![topic.as_bytes().to_vec(), body.as_bytes().to_vec()]
    }

    fn body(topic: &str) -> String {
        format!(
            r#"{{"i":7,"msg":{{"owner":"ralph"}},"msg_id":"2014-abc","timestamp":1359604772,"topic":"{topic}","username":"apache"}}"#
        )
    }

    #[test]
    fn a_real_envelope_is_kept_byte_for_byte() {
        let b = body(TOPIC);
        let v = validate(frames(TOPIC, &b), 1 << 20).unwrap();
        assert_eq!(v.body, b);
        assert_eq!(v.msg_id, "2014-abc");
        assert_eq!(v.i, Some(7));
        assert!(!v.signed);
    }

    #[test]
    fn every_malformation_has_its_reason() {
        let cases: Vec<(Vec<Vec<u8>>, InvalidReason)> = vec![
            (vec![TOPIC.as_bytes().to_vec()], InvalidReason::FrameCount),
            (
                vec![b"a".to_vec(), b"{}".to_vec(), b"c".to_vec()],
                InvalidReason::FrameCount,
            ),
            (frames(TOPIC, "not json"), InvalidReason::NotJson),
            (frames(TOPIC, "[1,2]"), InvalidReason::NotJson),
            (frames(TOPIC, r#"{"msg_id":"x"}"#), InvalidReason::NoTopic),
            (
                frames(TOPIC, &format!(r#"{{"topic":"{TOPIC}"}}"#)),
                InvalidReason::NoMsgId,
            ),
            (
                frames("org.fedoraproject.prod.other", &body(TOPIC)),
                InvalidReason::TopicMismatch,
            ),
            (
                vec![TOPIC.as_bytes().to_vec(), vec![0xff, 0xfe]],
                InvalidReason::NotUtf8,
            ),
            (
                frames(TOPIC, &format!("{{\"x\":\"{}\"}}", "a".repeat(2000))),
                InvalidReason::TooLarge,
            ),
        ];
        for (f, reason) in cases {
            let err = validate(f, 1000).unwrap_err();
            assert_eq!(err.reason, reason, "{}", err.detail);
        }
    }

    #[test]
    fn a_mismatch_still_names_the_id() {
        let err = validate(frames("x", &body(TOPIC)), 1 << 20).unwrap_err();
        assert_eq!(err.msg_id.as_deref(), Some("2014-abc"));
    }

    #[test]
    fn the_corpus_envelopes_with_ids_are_valid() {
        let mut n = 0;
        for line in crate::replay::SAMPLE
            .lines()
            .filter(|l| !l.trim().is_empty())
        {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let env = v.get("message").cloned().unwrap_or(v);
            if env.get("msg_id").is_none() {
                continue;
            }
            let topic = env["topic"].as_str().unwrap().to_string();
            let text = env.to_string();
            validate(frames(&topic, &text), 1 << 20).unwrap();
            n += 1;
        }
        assert!(n > 100, "{n}");
    }
}
