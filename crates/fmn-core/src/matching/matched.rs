//! What the matchers produce: a [`Match`] per destination reached, and the steps both
//! matchers share to get there (fan-out, order, which filters can send at all).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::prefs::{Destination, UserPrefs};
use crate::rules::{Rule, RuleKind};

/// One notification to make: a user's destination, and the filter that asked for it.
///
/// The text is shared with the matcher (a message can make hundreds of matches), and is
/// serialized as plain strings and a plain destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Match {
    #[serde(with = "shared_str")]
    pub user: Arc<str>,
    #[serde(with = "shared_str")]
    pub filter_id: Arc<str>,
    #[serde(with = "shared_str")]
    pub filter_name: Arc<str>,
    /// Fires once, then the filter is to be disabled.
    pub oneshot: bool,
    #[serde(with = "shared_destination")]
    pub destination: Arc<Destination>,
    /// Why, in words (the filter's first positive rule).
    #[serde(with = "shared_str")]
    pub reason: Arc<str>,
    /// Why, as a stable code for mail filters (`X-Fmn-Reason`): see [`reason_code`].
    #[serde(default = "empty_str", with = "shared_str")]
    pub reason_code: Arc<str>,
    /// The filter goes through quiet hours.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub urgent: bool,
    /// The filter's hourly allowance of immediate notifications.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_per_hour: Option<u32>,
    /// The user's time zone (none: UTC), for quiet hours and schedules.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "shared_opt_str"
    )]
    pub time_zone: Option<Arc<str>>,
}

fn empty_str() -> Arc<str> {
    Arc::from("")
}

/// A filter's reason as a stable code, like GitHub's `X-GitHub-Reason`: the first of its
/// positive rules by this order decides: `own-package` (artifacts I maintain), `group-package`
/// (maintained by a group), `followed` (artifacts or packages followed, or maintained by
/// someone named), `followed-user` (caused by a user I follow), `mentioned` (a message about me
/// or named users), `catalogue:<entry>` (a service catalogue event); else `filter`.
pub fn reason_code(rules: &[Rule]) -> String {
    let rank = |k: &RuleKind| -> Option<(u8, String)> {
        Some(match k {
            RuleKind::ArtifactsOwned { users } if users.is_empty() => (0, "own-package".into()),
            RuleKind::UserPackages { user } if user.is_empty() => (0, "own-package".into()),
            RuleKind::ArtifactsGroupOwned { .. } => (1, "group-package".into()),
            RuleKind::ArtifactsFollowed { .. }
            | RuleKind::Package { .. }
            | RuleKind::PackageRegex { .. }
            | RuleKind::ArtifactsOwned { .. }
            | RuleKind::UserPackages { .. } => (2, "followed".into()),
            RuleKind::UsersFollowed { .. } => (3, "followed-user".into()),
            RuleKind::RelatedEvents | RuleKind::User { .. } | RuleKind::GroupMembers { .. } => {
                (4, "mentioned".into())
            }
            RuleKind::Catalogue { entry, .. } => (5, format!("catalogue:{entry}")),
            _ => return None,
        })
    };
    rules
        .iter()
        .filter(|r| !r.negated)
        .filter_map(|r| rank(&r.kind))
        .min_by_key(|(rank, _)| *rank)
        .map_or_else(|| "filter".to_string(), |(_, code)| code)
}

/// `Arc<str>` as a string.
mod shared_str {
    use std::sync::Arc;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Arc<str>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Arc<str>, D::Error> {
        String::deserialize(d).map(Arc::from)
    }
}

/// `Option<Arc<str>>` as an optional string.
mod shared_opt_str {
    use std::sync::Arc;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Arc<str>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.serialize_str(v),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Arc<str>>, D::Error> {
        Ok(Option::<String>::deserialize(d)?.map(Arc::from))
    }
}

/// `Arc<Destination>` as a destination.
mod shared_destination {
    use std::sync::Arc;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use crate::prefs::Destination;

    pub fn serialize<S: Serializer>(v: &Arc<Destination>, s: S) -> Result<S::Ok, S::Error> {
        Destination::serialize(v, s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Arc<Destination>, D::Error> {
        Destination::deserialize(d).map(Arc::new)
    }
}

/// A filter that matched, as the two matchers report it before fan-out.
pub(crate) struct MatchedFilter<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub oneshot: bool,
    pub destinations: &'a [String],
    pub reason: String,
    pub reason_code: String,
    pub urgent: bool,
    pub max_per_hour: Option<u32>,
}

/// Turns one user's matching filters (in filter order) into matches: one per confirmed
/// destination, first filter wins.
pub(crate) fn fan_out<'a>(
    user: &str,
    time_zone: Option<&str>,
    destinations: &[Destination],
    matched: impl IntoIterator<Item = MatchedFilter<'a>>,
    out: &mut Vec<Match>,
) {
    let start = out.len();
    let user: Arc<str> = Arc::from(user);
    let time_zone: Option<Arc<str>> = time_zone.map(Arc::from);
    for filter in matched {
        for dest_id in filter.destinations {
            let Some(dest) = destinations.iter().find(|d| &d.id == dest_id) else {
                continue;
            };
            if !dest.is_active() || out[start..].iter().any(|m| m.destination.id == dest.id) {
                continue;
            }
            out.push(Match {
                user: user.clone(),
                filter_id: Arc::from(filter.id),
                filter_name: Arc::from(filter.name),
                oneshot: filter.oneshot,
                destination: Arc::new(dest.clone()),
                reason: Arc::from(filter.reason.as_str()),
                reason_code: Arc::from(filter.reason_code.as_str()),
                urgent: filter.urgent,
                max_per_hour: filter.max_per_hour,
                time_zone: time_zone.clone(),
            });
        }
    }
}

/// Orders matches by user, then destination: both matchers report in this order.
pub(crate) fn sort_matches(matches: &mut [Match]) {
    matches.sort_by(|a, b| {
        (&*a.user, a.destination.id.as_str()).cmp(&(&*b.user, b.destination.id.as_str()))
    });
}

/// Whether a user's filter can ever send anything (enabled, has rules, feeds a confirmed
/// destination); the index leaves the others out.
pub(crate) fn filter_can_send(user: &UserPrefs, filter: &crate::prefs::Filter) -> bool {
    user.enabled
        && filter.enabled
        && !filter.rules.is_empty()
        && filter
            .destinations
            .iter()
            .any(|d| user.destination(d).is_some_and(Destination::is_active))
}
