//! What the rules look at: a message's metadata plus what follows from it (artifact owners,
//! the groups of the users it concerns), computed once per message for every filter.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use crate::message::Envelope;
use crate::meta::Metadata;
use crate::ownership::{message_artifacts, MessageOwners, Ownership};
use crate::rules::Artifact;
use crate::rules::MAX_REGEX_SCAN;

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
            .flat_map(|u| ownership.groups_of(u).iter().map(|g| g.to_string()))
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
    /// What a `regex` rule reads: the body's JSON, at most [`MAX_REGEX_SCAN`] bytes of it.
    pub fn regex_haystack(&self) -> &str {
        let text = self.body_json();
        let mut cut = text.len().min(MAX_REGEX_SCAN);
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        &text[..cut]
    }

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::Registry;

    #[test]
    fn a_regex_reads_at_most_the_scan_limit_cut_on_a_character() {
        // A body of multi-byte characters well past the limit.
        let body = serde_json::json!({"text": "é".repeat(MAX_REGEX_SCAN)});
        let env = Envelope::from_value(serde_json::json!({
            "topic": "org.fedoraproject.prod.bodhi.update.comment",
            "msg": body,
        }))
        .unwrap();
        let meta = Registry::default().extract(&env);
        let facts = MessageFacts::new(&env, &meta, &Ownership::default());
        let haystack = facts.regex_haystack();
        assert!(facts.body_json().len() > MAX_REGEX_SCAN);
        assert!(haystack.len() <= MAX_REGEX_SCAN && haystack.len() > MAX_REGEX_SCAN - 4);
        assert!(facts.body_json().starts_with(haystack));
    }
}
