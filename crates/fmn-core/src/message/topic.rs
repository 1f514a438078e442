//! fedmsg topics: `<prefix>.<environment>.<service>.<event>`.
//!
//! The prefix is usually two labels (`org.fedoraproject`, `org.centos`, `io.pagure`,
//! `org.release-monitoring`); the environment is the first label, after at least one prefix
//! label, that names a deployment (`prod`, `stg`/`stage`/`staging`, `dev`); the service is the
//! label after it and the event is everything after the service (possibly empty).

use std::fmt;
use std::ops::Range;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The deployment a message was published from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    /// Production (`prod`).
    Prod,
    /// Staging (`stg`; CentOS says `stage`).
    Stg,
    /// Development (`dev`).
    Dev,
}

impl Environment {
    /// The environment a topic label names, if any.
    pub fn from_label(label: &str) -> Option<Self> {
        match label {
            "prod" | "production" => Some(Self::Prod),
            "stg" | "stage" | "staging" => Some(Self::Stg),
            "dev" | "devel" => Some(Self::Dev),
            _ => None,
        }
    }

    /// The canonical short name: `prod`, `stg` or `dev`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Prod => "prod",
            Self::Stg => "stg",
            Self::Dev => "dev",
        }
    }
}

impl fmt::Display for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a string is not a fedmsg topic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    /// The topic is empty.
    #[error("empty topic")]
    Empty,
    /// A label between dots is empty, or the topic has whitespace or control characters.
    #[error("malformed topic {0:?}: empty label or whitespace")]
    Malformed(String),
    /// No label names an environment (`prod`, `stg`, `dev`) after the prefix.
    #[error("topic {0:?} names no environment (prod, stg or dev) after its prefix")]
    NoEnvironment(String),
    /// Nothing follows the environment.
    #[error("topic {0:?} names no service after its environment")]
    NoService(String),
}

/// A parsed fedmsg topic. Cheap accessors into the original string.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Topic {
    raw: String,
    env: Environment,
    env_range: Range<usize>,
    service: Range<usize>,
    /// Start of the event (after the service's dot); `raw.len()` when there is no event.
    event_start: usize,
}

impl Topic {
    /// Parses a topic such as `org.fedoraproject.prod.bodhi.update.comment`.
    pub fn parse(topic: &str) -> Result<Self, TopicError> {
        if topic.is_empty() {
            return Err(TopicError::Empty);
        }
        if topic.chars().any(|c| c.is_whitespace() || c.is_control())
            || topic.split('.').any(str::is_empty)
        {
            return Err(TopicError::Malformed(topic.to_owned()));
        }
        let mut offset = 0;
        let mut found = None;
        for (index, label) in topic.split('.').enumerate() {
            // At least one prefix label, and the environment is among the first few labels.
            if (1..=3).contains(&index) {
                if let Some(env) = Environment::from_label(label) {
                    found = Some((env, offset..offset + label.len()));
                    break;
                }
            }
            offset += label.len() + 1;
        }
        let (env, env_range) = found.ok_or_else(|| TopicError::NoEnvironment(topic.to_owned()))?;
        let service_start = env_range.end + 1;
        if service_start >= topic.len() {
            return Err(TopicError::NoService(topic.to_owned()));
        }
        let service_end = topic[service_start..]
            .find('.')
            .map_or(topic.len(), |i| service_start + i);
        let event_start = (service_end + 1).min(topic.len());
        Ok(Self {
            raw: topic.to_owned(),
            env,
            env_range,
            service: service_start..service_end,
            event_start,
        })
    }

    /// Parses a fedora-messaging routing key: what [`Topic::parse`] accepts, and also a bare
    /// `<prefix>.<environment>.` (a message class without a topic of its own, published with
    /// the topic prefix: the service and event are then empty).
    pub fn parse_routing_key(topic: &str) -> Result<Self, TopicError> {
        let Some(stripped) = topic.strip_suffix('.') else {
            return Self::parse(topic);
        };
        match Self::parse(stripped) {
            Err(TopicError::NoService(_)) => {
                let bare = Self::parse(&format!("{stripped}.x"))?;
                Ok(Self {
                    raw: topic.to_owned(),
                    service: topic.len()..topic.len(),
                    event_start: topic.len(),
                    ..bare
                })
            }
            Ok(_) | Err(TopicError::Malformed(_)) => Err(TopicError::Malformed(topic.to_owned())),
            Err(other) => Err(other),
        }
    }

    /// The whole topic.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The labels before the environment, e.g. `org.fedoraproject`.
    pub fn prefix(&self) -> &str {
        &self.raw[..self.env_range.start - 1]
    }

    /// The environment.
    pub fn environment(&self) -> Environment {
        self.env
    }

    /// The environment label exactly as written (e.g. `stage` for CentOS).
    pub fn environment_label(&self) -> &str {
        &self.raw[self.env_range.clone()]
    }

    /// The service ("category", "modname"): `bodhi`, `buildsys`, `git`…
    pub fn service(&self) -> &str {
        &self.raw[self.service.clone()]
    }

    /// The event after the service, e.g. `update.comment`; empty when the topic ends there.
    pub fn event(&self) -> &str {
        &self.raw[self.event_start..]
    }

    /// Service and event, e.g. `bodhi.update.comment`: the message's title.
    pub fn title(&self) -> &str {
        &self.raw[self.service.start..]
    }

    /// The last label of the topic.
    pub fn last_label(&self) -> &str {
        self.raw.rsplit('.').next().unwrap_or_default()
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl fmt::Debug for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Topic({:?})", self.raw)
    }
}

impl std::str::FromStr for Topic {
    type Err = TopicError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for Topic {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.raw)
    }
}

impl<'de> Deserialize<'de> for Topic {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = std::borrow::Cow::<str>::deserialize(deserializer)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_usual_shapes() {
        let t = Topic::parse("org.fedoraproject.prod.bodhi.update.comment").unwrap();
        assert_eq!(t.prefix(), "org.fedoraproject");
        assert_eq!(t.environment(), Environment::Prod);
        assert_eq!(t.service(), "bodhi");
        assert_eq!(t.event(), "update.comment");
        assert_eq!(t.title(), "bodhi.update.comment");
        assert_eq!(t.last_label(), "comment");

        let t = Topic::parse("org.centos.stage.ci.pipeline.complete").unwrap();
        assert_eq!(t.environment(), Environment::Stg);
        assert_eq!(t.environment_label(), "stage");
        assert_eq!(t.service(), "ci");

        let t = Topic::parse("org.release-monitoring.dev.anitya.project.add").unwrap();
        assert_eq!(t.prefix(), "org.release-monitoring");
        assert_eq!(t.service(), "anitya");

        let t = Topic::parse("io.pagure.stg.pagure").unwrap();
        assert_eq!(t.service(), "pagure");
        assert_eq!(t.event(), "");
        assert_eq!(t.title(), "pagure");
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(Topic::parse(""), Err(TopicError::Empty));
        assert!(matches!(
            Topic::parse("a..b"),
            Err(TopicError::Malformed(_))
        ));
        assert!(matches!(
            Topic::parse("a b.prod.c"),
            Err(TopicError::Malformed(_))
        ));
        assert!(matches!(
            Topic::parse("org.fedoraproject.bodhi.update"),
            Err(TopicError::NoEnvironment(_))
        ));
        assert!(matches!(
            Topic::parse("prod.bodhi"),
            Err(TopicError::NoEnvironment(_))
        ));
        assert!(matches!(
            Topic::parse("org.fedoraproject.prod"),
            Err(TopicError::NoService(_))
        ));
    }

    #[test]
    fn routing_keys_may_be_a_bare_prefix() {
        let t = Topic::parse_routing_key("org.fedoraproject.prod.").unwrap();
        assert_eq!(t.as_str(), "org.fedoraproject.prod.");
        assert_eq!(t.environment(), Environment::Prod);
        assert_eq!((t.service(), t.event(), t.title()), ("", "", ""));
        let t = Topic::parse_routing_key("org.fedoraproject.prod.bodhi.update").unwrap();
        assert_eq!(t.service(), "bodhi");
        for bad in [
            "org.fedoraproject.prod.bodhi.",
            "org..prod.",
            "org.bodhi.",
            ".",
            "",
        ] {
            assert!(Topic::parse_routing_key(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn serde_round_trip() {
        let t: Topic = serde_json::from_str("\"org.fedoraproject.stg.git.receive\"").unwrap();
        assert_eq!(
            serde_json::to_string(&t).unwrap(),
            "\"org.fedoraproject.stg.git.receive\""
        );
        assert!(serde_json::from_str::<Topic>("\"nope\"").is_err());
    }
}
