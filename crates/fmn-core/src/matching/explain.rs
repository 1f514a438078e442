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
    /// Where the facts about the user came from ("you own rpms/foo (dist-git, synced …)",
    /// "alice@example.com is alice's FAS email"); see [`provenance`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub provenance: Vec<String>,
}

/// Where the facts that tie `user` to the message came from: the artifacts they maintain
/// (directly or through a group, from dist-git), and their FAS addresses and nicks the message
/// names. `synced_at`: when the last full sync finished (seconds since the epoch).
pub fn provenance(
    user: &str,
    facts: &MessageFacts<'_>,
    ownership: &Ownership,
    directory: &crate::directory::Directory,
    synced_at: Option<u64>,
) -> Vec<String> {
    let source =
        match synced_at.and_then(|t| time::OffsetDateTime::from_unix_timestamp(t as i64).ok()) {
            Some(t) => format!(
                "dist-git, synced {:04}-{:02}-{:02} {:02}:{:02} UTC",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute()
            ),
            None => "dist-git".to_string(),
        };
    let mut out = Vec::new();
    for artifact in &facts.artifacts {
        let Some(owners) = ownership.owners(artifact) else {
            continue;
        };
        let name = format!("{}/{}", artifact.kind.as_str(), artifact.name);
        if owners.users.iter().any(|u| u == user) {
            out.push(format!("you own {name} ({source})"));
        }
        for group in ownership.groups_of(user) {
            if owners.groups.iter().any(|g| **g == **group) {
                out.push(format!(
                    "you maintain {name} through group {group} ({source})"
                ));
            }
        }
    }
    if let Some(account) = directory.get(user) {
        let body = facts.envelope.body().to_string();
        let body_lower = body.to_lowercase();
        for email in &account.emails {
            if body_lower.contains(&email.to_lowercase()) {
                out.push(format!("{email} is {user}'s FAS email"));
            }
        }
        for nick in account
            .ircnicks
            .iter()
            .filter_map(|n| crate::directory::ChatNick::parse(n))
        {
            let alias = nick.as_alias();
            if alias != user && body.contains(&format!("\"{alias}\"")) {
                let what = match nick {
                    crate::directory::ChatNick::Irc(_) => "IRC nick",
                    crate::directory::ChatNick::Matrix(_) => "Matrix id",
                };
                out.push(format!("{alias} is {user}'s {what} in FAS"));
            }
        }
        if account.locked {
            out.push(format!("{user}'s FAS account is locked"));
        }
    }
    out
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
        provenance: Vec::new(),
    }
}
