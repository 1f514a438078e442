//! "Why did (or didn't) I get this message?": every filter and rule of one user, evaluated
//! in full (no short-circuit), with what each destination got.

use serde::Serialize;

use crate::ownership::Ownership;
use crate::prefs::UserPrefs;
use crate::rules::Rule;

use super::compiled::CompiledRule;
use super::facts::MessageFacts;
use super::naive::match_naive;

/// One rule's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleExplanation {
    pub rule: Rule,
    /// The result with negation applied.
    pub held: bool,
    pub why: String,
}

/// What one destination of a filter got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DestinationOutcome {
    pub id: String,
    pub kind: String,
    pub address: String,
    /// `sent`, `digest`, or why not.
    pub outcome: String,
}

/// One filter's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FilterExplanation {
    pub id: String,
    pub name: String,
    pub enabled: bool,
    /// All its rules held (and it has some).
    pub matched: bool,
    pub rules: Vec<RuleExplanation>,
    pub destinations: Vec<DestinationOutcome>,
}

/// The whole answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Explanation {
    pub user: String,
    pub msg_id: String,
    pub topic: String,
    pub user_enabled: bool,
    /// True when at least one destination was notified.
    pub notified: bool,
    /// One sentence.
    pub summary: String,
    pub filters: Vec<FilterExplanation>,
}

/// Explains how `user`'s preferences treat the message.
pub fn explain(user: &UserPrefs, facts: &MessageFacts<'_>, ownership: &Ownership) -> Explanation {
    let delivered = match_naive(std::slice::from_ref(user), facts, ownership);
    let mut filters = Vec::new();
    for filter in &user.filters {
        let rules: Vec<RuleExplanation> = filter
            .rules
            .iter()
            .map(|rule| match CompiledRule::compile(rule) {
                Ok(c) => RuleExplanation {
                    rule: rule.clone(),
                    held: c.holds(&user.name, facts, ownership),
                    why: c.describe(&user.name, facts, ownership),
                },
                Err(e) => RuleExplanation {
                    rule: rule.clone(),
                    held: false,
                    why: format!("the rule is invalid and never holds: {e}"),
                },
            })
            .collect();
        let matched = !rules.is_empty() && rules.iter().all(|r| r.held);
        let destinations = filter
            .destinations
            .iter()
            .map(|id| {
                let dest = user.destination(id);
                let outcome = if !user.enabled {
                    "not sent: the account is disabled".to_string()
                } else if !filter.enabled {
                    "not sent: the filter is disabled".to_string()
                } else if filter.rules.is_empty() {
                    "not sent: the filter has no rules".to_string()
                } else if !matched {
                    "not sent: the filter did not match".to_string()
                } else {
                    match dest {
                        None => "not sent: no such destination".to_string(),
                        Some(d) if !d.confirmed => {
                            "not sent: the destination is not confirmed".to_string()
                        }
                        Some(d) if !d.is_active() => format!(
                            "not sent: delivery to the destination is stopped ({})",
                            d.health.stopped.as_ref().map_or("", |s| s.reason.as_str())
                        ),
                        Some(d) => match delivered.iter().find(|m| m.destination.id == d.id) {
                            Some(m) if *m.filter_id == *filter.id && d.is_digest() => {
                                "digest".to_string()
                            }
                            Some(m) if *m.filter_id == *filter.id => "sent".to_string(),
                            Some(m) => format!(
                                "not sent again: filter `{}` already notified it",
                                m.filter_name
                            ),
                            None => "not sent".to_string(),
                        },
                    }
                };
                DestinationOutcome {
                    id: id.clone(),
                    kind: dest.map_or("unknown", |d| d.kind.as_str()).to_string(),
                    address: dest.map_or(String::new(), |d| d.address.clone()),
                    outcome,
                }
            })
            .collect();
        filters.push(FilterExplanation {
            id: filter.id.clone(),
            name: filter.name.clone(),
            enabled: filter.enabled,
            matched,
            rules,
            destinations,
        });
    }
    let summary = if !user.enabled {
        format!("{} gets nothing: the account is disabled.", user.name)
    } else if !delivered.is_empty() {
        let names: Vec<String> = delivered
            .iter()
            .map(|m| format!("{} via `{}`", m.destination.address, m.filter_name))
            .collect();
        format!("Notified: {}.", names.join("; "))
    } else if filters.iter().any(|f| f.matched && f.enabled) {
        "A filter matched, but none of its destinations is confirmed.".to_string()
    } else if user.filters.is_empty() {
        "Not notified: no filters.".to_string()
    } else {
        "Not notified: no filter matched.".to_string()
    };
    Explanation {
        user: user.name.clone(),
        msg_id: facts.envelope.msg_id().to_string(),
        topic: facts.topic().to_string(),
        user_enabled: user.enabled,
        notified: !delivered.is_empty(),
        summary,
        filters,
    }
}
