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
            usernames: meta.usernames.iter().cloned().collect(),
            packages: meta.packages.iter().cloned().collect(),
            timestamp: envelope.timestamp_secs(),
            severity: meta.severity,
            origin: envelope.origin(),
            long_text: meta.long_text.clone(),
        }
    }
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
}
