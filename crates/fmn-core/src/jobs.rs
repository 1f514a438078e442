//! What the match function hands to delivery: one job per (message, user, destination), with
//! everything needed to render it, so delivery never re-reads the message.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::matching::Match;
use crate::message::{Envelope, Origin};
use crate::meta::{Metadata, Severity};
use crate::prefs::Destination;

/// The message as a notification shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    pub msg_id: String,
    pub topic: String,
    pub app: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subtitle: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    #[serde(default)]
    pub usernames: Vec<String>,
    #[serde(default)]
    pub packages: Vec<String>,
    /// How many usernames the message named, when `usernames` holds only the first
    /// [`MAX_JOB_LIST`] of them (`None`: the list is whole).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usernames_total: Option<usize>,
    /// Likewise for `packages`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packages_total: Option<usize>,
    /// When the message was published, epoch seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<f64>,
    #[serde(default)]
    pub severity: Severity,
    /// The bus the message came from (absent in stored jobs: fedmsg).
    #[serde(default, skip_serializing_if = "Origin::is_fedmsg")]
    pub origin: Origin,
    /// The message's long text (a fedora-messaging schema's `__str__`), the mail body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub long_text: Option<String>,
}

impl Notification {
    pub fn new(envelope: &Envelope, meta: &Metadata) -> Self {
        Self {
            msg_id: envelope.msg_id().to_string(),
            topic: envelope.topic().as_str().to_string(),
            app: meta.app.clone(),
            agent: meta.agent.clone(),
            title: meta.title.clone(),
            subtitle: meta.subtitle.clone(),
            link: meta.link.clone(),
            usernames: capped(meta.usernames.iter()).0,
            usernames_total: capped(meta.usernames.iter()).1,
            packages: capped(meta.packages.iter()).0,
            packages_total: capped(meta.packages.iter()).1,
            timestamp: envelope.timestamp_secs(),
            severity: meta.severity,
            origin: envelope.origin(),
            long_text: meta.long_text.as_deref().map(truncated_text),
        }
    }
}

/// The most usernames or packages a job carries: a message naming thousands (a mass rebuild)
/// would otherwise make every job of it too large for SQS (256 KiB), and the mail lists them
/// no further anyway. The total travels with the list.
pub const MAX_JOB_LIST: usize = 100;
/// The most bytes of a message's long text a job carries, for the same reason.
pub const MAX_JOB_TEXT: usize = 64 * 1024;

/// The first [`MAX_JOB_LIST`] items, and their total when there were more.
fn capped<'a>(items: impl ExactSizeIterator<Item = &'a String>) -> (Vec<String>, Option<usize>) {
    let total = items.len();
    let kept = items.take(MAX_JOB_LIST).cloned().collect();
    (kept, (total > MAX_JOB_LIST).then_some(total))
}

/// `text` cut to at most [`MAX_JOB_TEXT`] bytes, on a character boundary, marked when cut.
fn truncated_text(text: &str) -> String {
    if text.len() <= MAX_JOB_TEXT {
        return text.to_string();
    }
    let mut end = MAX_JOB_TEXT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}\n[… truncated]", &text[..end])
}

/// One delivery to make.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryJob {
    /// Deterministic: the same message for the same destination always has the same id, so a
    /// redelivered ingest message produces the same job and delivery can drop the repeat.
    pub job_id: String,
    pub user: String,
    pub filter_id: String,
    pub filter_name: String,
    pub reason: String,
    /// The reason's stable code (`own-package`, `catalogue:<entry>`…; see
    /// [`crate::matching::reason_code`]), mailed as `X-Fmn-Reason`. Empty in jobs made before
    /// it existed and in notices that no filter caused.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason_code: String,
    pub destination: Destination,
    pub notification: Notification,
}

impl DeliveryJob {
    pub fn new(m: &Match, notification: &Notification) -> Self {
        Self {
            job_id: job_id(&notification.msg_id, &m.user, &m.destination),
            user: m.user.to_string(),
            filter_id: m.filter_id.to_string(),
            filter_name: m.filter_name.to_string(),
            reason: m.reason.to_string(),
            reason_code: m.reason_code.to_string(),
            destination: Destination::clone(&m.destination),
            notification: notification.clone(),
        }
    }

    /// The digest queue this job waits in: one per user and destination.
    pub fn digest_key(&self) -> String {
        digest_key(&self.user, &self.destination.id)
    }
}

/// The id of the job delivering `msg_id` to one of `user`'s destinations. The address is part
/// of it, so changing a destination's address is a different delivery.
pub fn job_id(msg_id: &str, user: &str, destination: &Destination) -> String {
    let mut h = Sha256::new();
    for part in [
        msg_id,
        user,
        &destination.id,
        destination.kind.as_str(),
        &destination.address,
    ] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    hex::encode(&h.finalize()[..16])
}

/// The key of a user's destination's digest.
pub fn digest_key(user: &str, destination_id: &str) -> String {
    format!("{user}/{destination_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dest(address: &str) -> Destination {
        Destination::email("email-1", address).confirmed(true)
    }

    #[test]
    fn job_ids_are_deterministic_and_distinct() {
        let a = job_id("m1", "alice", &dest("a@example.org"));
        assert_eq!(a, job_id("m1", "alice", &dest("a@example.org")));
        assert_eq!(a.len(), 32);
        assert_ne!(a, job_id("m2", "alice", &dest("a@example.org")));
        assert_ne!(a, job_id("m1", "alice", &dest("b@example.org")));
        // No ambiguity from concatenation.
        assert_ne!(
            job_id("m1a", "lice", &dest("a@example.org")),
            job_id("m1", "alice", &dest("a@example.org"))
        );
    }

    #[test]
    fn a_job_carries_at_most_the_first_hundred_names_and_their_total() {
        let envelope = Envelope::from_value(serde_json::json!({
            "msg_id": "2024-mass-rebuild",
            "topic": "org.fedoraproject.prod.koji.build.state.change",
            "timestamp": 1.7e9,
            "msg": {},
        }))
        .unwrap();
        let meta = Metadata {
            packages: (0..5000).map(|i| format!("package-{i:05}")).collect(),
            usernames: ["alice".to_string()].into(),
            long_text: Some("é".repeat(MAX_JOB_TEXT)),
            ..Metadata::default()
        };
        let n = Notification::new(&envelope, &meta);
        assert_eq!(n.packages.len(), MAX_JOB_LIST);
        assert_eq!(n.packages[0], "package-00000");
        assert_eq!(n.packages_total, Some(5000));
        assert_eq!((n.usernames.len(), n.usernames_total), (1, None));
        let text = n.long_text.as_deref().unwrap();
        assert!(text.len() < MAX_JOB_TEXT + 32 && text.ends_with("[… truncated]"));
        // The whole job stays far below SQS's 256 KiB.
        let body = serde_json::to_string(&n).unwrap();
        assert!(body.len() < 100 * 1024, "{} bytes", body.len());
    }
}
