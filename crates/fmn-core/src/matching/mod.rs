//! Who gets a message: the indexed matcher, the naive reference matcher it must agree with,
//! and "explain".
//!
//! Semantics (the old FMN's): a disabled user gets nothing; a filter's rules are ANDed and a
//! filter with no rules never matches; a user's filters are tried in order and, for each
//! destination, the first matching filter that feeds it wins, so a message reaches a
//! destination at most once. Only confirmed destinations receive.

mod compiled;
mod explain;
mod facts;
mod index;
mod naive;

use serde::{Deserialize, Serialize};

use crate::prefs::{Destination, UserPrefs};

pub use compiled::{summary, CompiledRule};
pub use explain::{explain, DestinationOutcome, Explanation, FilterExplanation, RuleExplanation};
pub use facts::MessageFacts;
pub use index::{IndexStats, Matcher, SkippedFilter};
pub use naive::match_naive;

/// One notification to make: a user's destination, and the filter that asked for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Match {
    pub user: String,
    pub filter_id: String,
    pub filter_name: String,
    /// Fires once, then the filter is to be disabled.
    pub oneshot: bool,
    pub destination: Destination,
    /// Why, in words (the filter's first positive rule).
    pub reason: String,
}

/// A filter that matched, as the two matchers report it before fan-out.
pub(crate) struct MatchedFilter<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub oneshot: bool,
    pub destinations: &'a [String],
    pub reason: String,
}

/// Turns one user's matching filters (in filter order) into matches: one per confirmed
/// destination, first filter wins.
pub(crate) fn fan_out<'a>(
    user: &str,
    destinations: &[Destination],
    matched: impl IntoIterator<Item = MatchedFilter<'a>>,
    out: &mut Vec<Match>,
) {
    let start = out.len();
    for filter in matched {
        for dest_id in filter.destinations {
            let Some(dest) = destinations.iter().find(|d| &d.id == dest_id) else {
                continue;
            };
            if !dest.is_active() || out[start..].iter().any(|m| m.destination.id == dest.id) {
                continue;
            }
            out.push(Match {
                user: user.to_string(),
                filter_id: filter.id.to_string(),
                filter_name: filter.name.to_string(),
                oneshot: filter.oneshot,
                destination: dest.clone(),
                reason: filter.reason.clone(),
            });
        }
    }
}

/// Orders matches by user, then destination: both matchers report in this order.
pub(crate) fn sort_matches(matches: &mut [Match]) {
    matches.sort_by(|a, b| {
        (a.user.as_str(), a.destination.id.as_str())
            .cmp(&(b.user.as_str(), b.destination.id.as_str()))
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
