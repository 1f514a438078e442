//! Noise: messages nobody should be notified of, dropped before they are stored or matched.
//!
//! As the old FMN's consumer did: topics ending in a junk suffix (Koji's tag, repository and
//! signing chatter, FAF's lowest threshold, GitHub statuses), Copr messages of ignored owners
//! (`@rubygems` rebuilds every gem), and, because only production talks to people, topics from
//! other environments (`stg`, `dev`).

use std::fmt;

use crate::message::{Envelope, Environment};

/// The old FMN's production `junk_suffixes`.
pub const DEFAULT_JUNK_SUFFIXES: [&str; 8] = [
    ".buildsys.package.list.change",
    ".buildsys.tag",
    ".buildsys.untag",
    ".buildsys.repo.init",
    ".buildsys.repo.done",
    ".buildsys.rpm.sign",
    ".faf.report.threshold1",
    ".github.status",
];

/// The old FMN's ignored Copr owners.
pub const DEFAULT_IGNORED_COPR_OWNERS: [&str; 1] = ["@rubygems"];

/// What counts as noise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoisePolicy {
    /// Off: nothing is noise.
    pub enabled: bool,
    /// The environments kept (the others are dropped).
    pub environments: Vec<Environment>,
    /// Topic suffixes dropped.
    pub junk_suffixes: Vec<String>,
    /// Copr owners (`owner`, else `user`, of a `copr` message) whose messages are dropped.
    pub ignored_copr_owners: Vec<String>,
}

impl Default for NoisePolicy {
    fn default() -> Self {
        Self {
            enabled: true,
            environments: vec![Environment::Prod],
            junk_suffixes: DEFAULT_JUNK_SUFFIXES.map(String::from).to_vec(),
            ignored_copr_owners: DEFAULT_IGNORED_COPR_OWNERS.map(String::from).to_vec(),
        }
    }
}

/// Why a message is noise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Noise {
    /// Published from another environment than those kept.
    NonProduction(Environment),
    /// The topic ends with this junk suffix.
    JunkTopic(String),
    /// A Copr message of this ignored owner.
    IgnoredCoprOwner(String),
}

impl Noise {
    /// A stable label for metrics: `non-production`, `junk-topic`, `ignored-copr-owner`.
    pub fn label(&self) -> &'static str {
        match self {
            Self::NonProduction(_) => "non-production",
            Self::JunkTopic(_) => "junk-topic",
            Self::IgnoredCoprOwner(_) => "ignored-copr-owner",
        }
    }
}

impl fmt::Display for Noise {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NonProduction(env) => write!(f, "non-production topic ({env})"),
            Self::JunkTopic(suffix) => write!(f, "junk topic (ends with {suffix})"),
            Self::IgnoredCoprOwner(owner) => write!(f, "copr message of ignored owner {owner}"),
        }
    }
}

impl NoisePolicy {
    /// Nothing is noise.
    pub fn off() -> Self {
        Self {
            enabled: false,
            ..Self::default()
        }
    }

    /// Whether, and why, a message is noise.
    pub fn classify(&self, envelope: &Envelope) -> Option<Noise> {
        if !self.enabled {
            return None;
        }
        let topic = envelope.topic();
        if !self.environments.contains(&topic.environment()) {
            return Some(Noise::NonProduction(topic.environment()));
        }
        let text = topic.as_str();
        if let Some(suffix) = self
            .junk_suffixes
            .iter()
            .find(|s| text.ends_with(s.as_str()))
        {
            return Some(Noise::JunkTopic(suffix.clone()));
        }
        if topic.service() == "copr" && !self.ignored_copr_owners.is_empty() {
            let body = envelope.body();
            let owner = body
                .get("owner")
                .or_else(|| body.get("user"))
                .and_then(serde_json::Value::as_str);
            if let Some(owner) = owner.filter(|o| self.ignored_copr_owners.iter().any(|i| i == o)) {
                return Some(Noise::IgnoredCoprOwner(owner.to_string()));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn env(topic: &str, body: serde_json::Value) -> Envelope {
        Envelope::from_value(json!({"topic": topic, "msg": body, "msg_id": "m-1"})).unwrap()
    }

    #[test]
    fn the_defaults_drop_what_old_fmn_dropped_and_other_environments() {
        let p = NoisePolicy::default();
        let verdict = |t: &str, b| p.classify(&env(t, b)).map(|n| n.label());
        assert_eq!(
            verdict("org.fedoraproject.prod.buildsys.tag", json!({})),
            Some("junk-topic")
        );
        assert_eq!(
            verdict("org.fedoraproject.prod.buildsys.repo.done", json!({})),
            Some("junk-topic")
        );
        assert_eq!(
            verdict("org.fedoraproject.stg.bodhi.update.comment", json!({})),
            Some("non-production")
        );
        assert_eq!(
            verdict("org.centos.stage.ci.pipeline.complete", json!({})),
            Some("non-production")
        );
        assert_eq!(
            verdict(
                "org.fedoraproject.prod.copr.build.end",
                json!({"owner": "@rubygems"})
            ),
            Some("ignored-copr-owner")
        );
        assert_eq!(
            verdict(
                "org.fedoraproject.prod.copr.build.end",
                json!({"user": "@rubygems"})
            ),
            Some("ignored-copr-owner")
        );
        for kept in [
            "org.fedoraproject.prod.copr.build.end",
            "org.fedoraproject.prod.buildsys.build.state.change",
            "org.fedoraproject.prod.buildsys.tagged.thing",
            "org.fedoraproject.prod.faf.report.threshold10",
            "io.pagure.prod.pagure.issue.new",
        ] {
            assert_eq!(verdict(kept, json!({"owner": "ralph"})), None, "{kept}");
        }
        let n = p
            .classify(&env("org.fedoraproject.prod.github.status", json!({})))
            .unwrap();
        assert_eq!(n.to_string(), "junk topic (ends with .github.status)");
    }

    #[test]
    fn off_keeps_everything_and_environments_are_configurable() {
        let stg = env("org.fedoraproject.stg.buildsys.tag", json!({}));
        assert_eq!(NoisePolicy::off().classify(&stg), None);
        let p = NoisePolicy {
            environments: vec![Environment::Prod, Environment::Stg],
            junk_suffixes: vec![],
            ..NoisePolicy::default()
        };
        assert_eq!(p.classify(&stg), None);
    }
}
