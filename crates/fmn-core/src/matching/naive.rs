//! The reference matcher: every filter of every user, every rule, no index. Slow and obviously
//! right; the indexed matcher is tested against it.

use crate::ownership::Ownership;
use crate::prefs::UserPrefs;

use super::compiled::{summary, CompiledRule};
use super::facts::MessageFacts;
use super::matched::{fan_out, filter_can_send, reason_code, sort_matches, Match, MatchedFilter};

/// Matches one message against every user by evaluating every filter.
pub fn match_naive(
    users: &[UserPrefs],
    facts: &MessageFacts<'_>,
    ownership: &Ownership,
) -> Vec<Match> {
    let mut out = Vec::new();
    for user in users {
        let matched = user.filters.iter().filter_map(|filter| {
            if !filter_can_send(user, filter) {
                return None;
            }
            let all = filter.rules.iter().all(|rule| {
                CompiledRule::compile(rule).is_ok_and(|c| c.holds(&user.name, facts, ownership))
            });
            all.then(|| MatchedFilter {
                id: &filter.id,
                name: &filter.name,
                oneshot: filter.oneshot,
                destinations: &filter.destinations,
                reason: reason(&filter.rules, &user.name),
                reason_code: reason_code(&filter.rules),
                urgent: filter.urgent,
                max_per_hour: filter.max_per_hour,
            })
        });
        fan_out(
            &user.name,
            user.time_zone.as_deref(),
            &user.destinations,
            matched,
            &mut out,
        );
    }
    sort_matches(&mut out);
    out
}

/// The reason given for a match: the filter's first positive rule, else its first rule.
pub(crate) fn reason(rules: &[crate::rules::Rule], owner: &str) -> String {
    rules
        .iter()
        .find(|r| !r.negated)
        .or(rules.first())
        .map(|r| summary(r, owner))
        .unwrap_or_default()
}
