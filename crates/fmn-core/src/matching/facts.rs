//! What the rules look at: a message's metadata plus what follows from it (artifact owners,
//! the groups of the users it concerns), computed once per message for every filter.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use crate::message::Envelope;
use crate::meta::Metadata;
use crate::ownership::{message_artifacts, MessageOwners, Ownership};
use crate::rules::Artifact;

/// One message, ready for rule evaluation.
pub struct MessageFacts<'a> {
    pub envelope: &'a Envelope,
    pub meta: &'a Metadata,
    /// The artifacts (packages, containers, modules, flatpaks) it concerns.
    pub artifacts: BTreeSet<Artifact>,
    /// The maintainers of those artifacts.
    pub owners: MessageOwners,
    /// Every group one of the message's users belongs to.
    pub user_groups: BTreeSet<String>,
    /// The application name, lower-cased.
    pub app: String,
    body_json: OnceLock<String>,
}

impl<'a> MessageFacts<'a> {
    pub fn new(envelope: &'a Envelope, meta: &'a Metadata, ownership: &Ownership) -> Self {
        let user_groups = meta
            .usernames
            .iter()
            .flat_map(|u| ownership.groups_of(u).iter().cloned())
            .collect();
        let artifacts: BTreeSet<Artifact> = message_artifacts(meta).into_iter().collect();
        // As `MessageOwners::of`, without listing the artifacts again.
        let mut owners = MessageOwners::default();
        for artifact in &artifacts {
            if let Some(o) = ownership.owners(artifact) {
                owners.users.extend(o.users.iter().cloned());
                owners.groups.extend(o.groups.iter().cloned());
            }
        }
        Self {
            envelope,
            meta,
            artifacts,
            owners,
            user_groups,
            app: meta.app.to_lowercase(),
            body_json: OnceLock::new(),
        }
    }

    /// The body as JSON text, made on first use (only regex rules need it).
    pub fn body_json(&self) -> &str {
        self.body_json.get_or_init(|| {
            // Most bodies are a few KiB: start big enough to skip the first regrowths.
            let mut out = Vec::with_capacity(2048);
            match serde_json::to_writer(&mut out, self.envelope.body()) {
                Ok(()) => String::from_utf8(out).unwrap_or_default(),
                Err(_) => String::new(),
            }
        })
    }

    /// The full topic.
    pub fn topic(&self) -> &str {
        self.envelope.topic().as_str()
    }
}
