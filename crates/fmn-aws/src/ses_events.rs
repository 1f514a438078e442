//! SES's event publishing, read: what a configuration set's event destination sends (through
//! SNS with raw message delivery, or wrapped in an SNS notification) about each mail. The
//! format is AWS's ("Contents of event data that Amazon SES publishes to Amazon SNS"):
//! `eventType`, a `mail` object (`messageId`, `destination`, `tags` as name → values) and one
//! object named after the event (`bounce`, `complaint`, ...).

use serde_json::Value;

use crate::delivery_records::{is_record_tag, record_key_of_tag, RECORD_TAG};

/// What happened to a mail, as SES names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MailEventKind {
    /// SES accepted the send request.
    Send,
    /// The receiving server accepted the mail.
    Delivery,
    /// The receiving server refused it (`Permanent`: for good; else `Transient`).
    Bounce { permanent: bool },
    /// The recipient marked it as spam.
    Complaint,
    /// SES refused to send it (a virus).
    Reject,
    /// Delivery is taking longer than usual.
    DeliveryDelay,
    /// Anything else SES publishes (opens, clicks, subscriptions...).
    Other(String),
}

impl MailEventKind {
    /// Whether the event proves SES accepted the mail.
    pub fn proves_sent(&self) -> bool {
        matches!(
            self,
            MailEventKind::Send
                | MailEventKind::Delivery
                | MailEventKind::Bounce { .. }
                | MailEventKind::Complaint
                | MailEventKind::DeliveryDelay
        )
    }
}

/// One event about one mail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MailEvent {
    pub kind: MailEventKind,
    /// SES's id of the mail.
    pub ses_message_id: String,
    /// The delivery records the mail was tagged with
    /// ([`crate::delivery_records::record_tags`]: one, or a burst's several, the first first);
    /// none for mail sent without one (confirmations).
    pub record_keys: Vec<String>,
    pub recipients: Vec<String>,
    /// What the receiving side said, for people: a bounce's type, subtype and the server's
    /// diagnostic; a complaint's feedback type. Empty for other events.
    pub detail: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MailEventError {
    #[error("not JSON: {0}")]
    NotJson(String),
    #[error("not an SES event: {0}")]
    NotAnEvent(&'static str),
}

/// Parses one queue record's body: the event itself (raw delivery) or an SNS notification
/// whose `Message` is the event.
pub fn parse(body: &str) -> Result<MailEvent, MailEventError> {
    let mut value: Value =
        serde_json::from_str(body).map_err(|e| MailEventError::NotJson(e.to_string()))?;
    if value["Type"] == "Notification" {
        let inner = value["Message"].as_str().ok_or(MailEventError::NotAnEvent(
            "an SNS notification without a Message",
        ))?;
        value = serde_json::from_str(inner).map_err(|e| MailEventError::NotJson(e.to_string()))?;
    }
    let kind = value["eventType"]
        .as_str()
        .ok_or(MailEventError::NotAnEvent("no eventType"))?;
    let kind = match kind {
        "Send" => MailEventKind::Send,
        "Delivery" => MailEventKind::Delivery,
        "Bounce" => MailEventKind::Bounce {
            permanent: value["bounce"]["bounceType"] == "Permanent",
        },
        "Complaint" => MailEventKind::Complaint,
        "Reject" => MailEventKind::Reject,
        "DeliveryDelay" => MailEventKind::DeliveryDelay,
        other => MailEventKind::Other(other.chars().take(64).collect()),
    };
    let mail = &value["mail"];
    let ses_message_id = mail["messageId"]
        .as_str()
        .filter(|id| !id.is_empty())
        .ok_or(MailEventError::NotAnEvent("no mail.messageId"))?
        .to_string();
    let record_keys = record_keys(&mail["tags"]);
    let recipients = mail["destination"]
        .as_array()
        .map(|d| {
            d.iter()
                .filter_map(|a| a.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let detail = match kind {
        MailEventKind::Bounce { .. } => bounce_detail(&value["bounce"]),
        MailEventKind::Complaint => value["complaint"]["complaintFeedbackType"]
            .as_str()
            .unwrap_or("complaint")
            .to_string(),
        _ => String::new(),
    };
    Ok(MailEvent {
        kind,
        ses_message_id,
        record_keys,
        recipients,
        detail,
    })
}

/// The record keys in a mail's `tags` (name → values), in the order
/// [`crate::delivery_records::record_tags`] gave them: `fmn-record` first, then by number.
fn record_keys(tags: &Value) -> Vec<String> {
    let mut found: Vec<(u32, String)> = tags
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(name, _)| is_record_tag(name))
        .filter_map(|(name, values)| {
            let position = match name.strip_prefix(RECORD_TAG)?.strip_prefix('-') {
                None => 1,
                Some(n) => n.parse().ok()?,
            };
            let key = values
                .as_array()?
                .iter()
                .find_map(|v| record_key_of_tag(v.as_str()?))?;
            Some((position, key))
        })
        .collect();
    found.sort();
    found.into_iter().map(|(_, key)| key).collect()
}

/// `Permanent/General: smtp; 550 5.1.1 user unknown` from a bounce object.
fn bounce_detail(bounce: &Value) -> String {
    let text = |v: &Value| v.as_str().unwrap_or("").to_string();
    let recipient = &bounce["bouncedRecipients"][0];
    let diagnostic = [&recipient["diagnosticCode"], &recipient["status"]]
        .into_iter()
        .map(text)
        .find(|t| !t.is_empty())
        .unwrap_or_default();
    let mut out = format!(
        "{}/{}",
        text(&bounce["bounceType"]),
        text(&bounce["bounceSubType"])
    );
    if !diagnostic.is_empty() {
        out.push_str(": ");
        out.extend(diagnostic.chars().take(300));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AWS's documented Send event, with our tag.
    const SEND: &str = r#"{
      "eventType": "Send",
      "mail": {
        "timestamp": "2016-10-14T05:02:16.645Z",
        "source": "sender@example.com",
        "sourceArn": "arn:aws:ses:us-east-1:123456789012:identity/sender@example.com",
        "sendingAccountId": "123456789012",
        "messageId": "01000157c44f053b-61b59c11-9236-11e6-8f96-7be8aexample-000000",
        "destination": ["recipient@example.com"],
        "headersTruncated": false,
        "headers": [{"name": "From", "value": "sender@example.com"}],
        "commonHeaders": {"from": ["sender@example.com"], "to": ["recipient@example.com"],
          "messageId": "01000157c44f053b-61b59c11-9236-11e6-8f96-7be8aexample-000000",
          "subject": "Message sent from Amazon SES"},
        "tags": {"ses:configuration-set": ["ConfigSet"], "ses:source-ip": ["192.0.2.0"],
          "fmn-record": ["email-0123456789abcdef0123456789abcdef"]}
      },
      "send": {}
    }"#;

    #[test]
    fn a_documented_send_event_names_its_record() {
        let e = parse(SEND).unwrap();
        assert_eq!(e.kind, MailEventKind::Send);
        assert!(e.kind.proves_sent());
        assert_eq!(e.record_keys, ["email#0123456789abcdef0123456789abcdef"]);
        assert_eq!(e.recipients, ["recipient@example.com"]);
    }

    #[test]
    fn a_burst_mail_names_all_its_records_in_order() {
        let tags = r#""fmn-record-10": ["email-j10"], "fmn-record-2": ["email-j2"],
          "fmn-record": ["email-0123456789abcdef0123456789abcdef"], "fmn-recordx": ["email-no"]"#;
        let burst = SEND.replace(
            r#""fmn-record": ["email-0123456789abcdef0123456789abcdef"]"#,
            tags,
        );
        let e = parse(&burst).unwrap();
        assert_eq!(
            e.record_keys,
            [
                "email#0123456789abcdef0123456789abcdef",
                "email#j2",
                "email#j10"
            ]
        );
    }

    #[test]
    fn an_sns_wrapped_bounce_is_read_through_its_envelope() {
        let bounce = SEND.replace("\"Send\"", "\"Bounce\"").replace(
            "\"send\": {}",
            "\"bounce\": {\"bounceType\": \"Permanent\"}",
        );
        let wrapped = serde_json::json!({"Type": "Notification", "Message": bounce}).to_string();
        let e = parse(&wrapped).unwrap();
        assert_eq!(e.kind, MailEventKind::Bounce { permanent: true });
    }

    #[test]
    fn strangers_are_errors_or_carry_no_record() {
        assert!(matches!(parse("nope"), Err(MailEventError::NotJson(_))));
        assert!(parse(r#"{"mail": {"messageId": "x"}}"#).is_err());
        assert!(parse(r#"{"eventType": "Send", "mail": {}}"#).is_err());
        let untagged = parse(r#"{"eventType": "Open", "mail": {"messageId": "x"}}"#).unwrap();
        assert!(untagged.record_keys.is_empty());
        assert!(!untagged.kind.proves_sent());
    }
}
