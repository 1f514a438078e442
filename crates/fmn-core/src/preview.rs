//! Previewing a filter (old FMN's "hints"): which stored messages an unsaved filter would
//! match and at what rate. Pure: which partitions of the stored messages to read
//! ([`plan`]), whether a message matches ([`holds`], the real compiled rules), and the rate
//! from what was read ([`estimate`]). Reading is the adapter's (`fmn_aws::preview`).
//!
//! Stored messages are partitioned by topic and UTC day, and by day alone. A filter whose
//! positive rules pin its topics (a `topic` glob, `catalogue` entries) reads only the
//! partitions of the topics seen on each day that those rules allow; any other filter ("my
//! packages") reads the newest messages of each day, a sample.

use std::collections::BTreeSet;

use crate::matching::{CompiledRule, MessageFacts};
use crate::message::Topic;
use crate::ownership::Ownership;
use crate::rules::{service_catalogue, Glob, Rule, RuleKind};

/// Seconds in a day.
pub const DAY_SECS: u64 = 86_400;
/// How far back a preview looks (the recent messages' retention).
pub const WINDOW_DAYS: u64 = 14;

/// What to read for a preview.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    /// The filter can match nothing (no rules, or topic rules that exclude every topic seen).
    Nothing,
    /// These (topic, day) partitions, newest day first, which cover `days` (every partition
    /// of those days the filter can match); `days_left_out` days of the window were not read
    /// to keep within the query budget (the rate of the days read stands for them).
    Topics {
        partitions: Vec<(String, u64)>,
        days: Vec<u64>,
        days_left_out: usize,
    },
    /// The filter does not pin its topics: the newest messages of each of these days.
    Sample { days: Vec<u64> },
}

/// Whether the filter's rules pin the topics it can match (a positive `topic` or `catalogue`
/// rule).
pub fn pins_topics(rules: &[Rule]) -> bool {
    rules.iter().any(|r| {
        !r.negated && matches!(r.kind, RuleKind::Topic { .. } | RuleKind::Catalogue { .. })
    })
}

/// Whether a message with this topic can satisfy every rule, judging the topic alone: a
/// positive `topic` glob or `catalogue` entry must allow it, a negated `topic` glob must not
/// match it. Other rules depend on the body, so they are assumed to hold.
pub fn may_match_topic(rules: &[Rule], topic: &str) -> bool {
    let parsed = Topic::parse(topic).ok();
    rules.iter().all(|rule| match (&rule.kind, rule.negated) {
        (RuleKind::Topic { glob }, negated) => match Glob::new(glob) {
            Ok(g) => g.matches(topic) != negated,
            Err(_) => false,
        },
        (RuleKind::Catalogue { entry, .. }, false) => {
            match (service_catalogue().entry(entry), &parsed) {
                (Some(e), Some(t)) => e.topics.iter().any(|p| p.matches(t.title())),
                (Some(_), None) => false,
                // An unknown entry matches nothing.
                (None, _) => false,
            }
        }
        _ => true,
    })
}

/// The partitions to read. `days` are the days (days since the epoch) with stored messages,
/// each with the topics seen that day; `max_queries` bounds the queries of a topic plan (the
/// newest days are kept).
pub fn plan(rules: &[Rule], days: &[(u64, BTreeSet<String>)], max_queries: usize) -> Plan {
    if rules.is_empty() {
        return Plan::Nothing;
    }
    let mut days: Vec<&(u64, BTreeSet<String>)> = days.iter().collect();
    days.sort_by_key(|d| std::cmp::Reverse(d.0));
    if !pins_topics(rules) {
        return Plan::Sample {
            days: days.iter().map(|(d, _)| *d).collect(),
        };
    }
    let mut partitions = Vec::new();
    let mut days_read = Vec::new();
    for (i, (day, topics)) in days.iter().enumerate() {
        let wanted: Vec<(String, u64)> = topics
            .iter()
            .filter(|t| may_match_topic(rules, t))
            .map(|t| (t.clone(), *day))
            .collect();
        // Always the newest day, however many topics; then whole days while they fit.
        if i > 0 && partitions.len() + wanted.len() > max_queries {
            break;
        }
        partitions.extend(wanted);
        days_read.push(*day);
    }
    let days_left_out = days.len() - days_read.len();
    if partitions.is_empty() && days_left_out == 0 {
        return Plan::Nothing;
    }
    Plan::Topics {
        partitions,
        days: days_read,
        days_left_out,
    }
}

impl Plan {
    /// The days whose matches the plan's reads cover (all of `stored` when nothing is read:
    /// nothing could match on any of them), and how many days it left out.
    pub fn coverage(&self, stored: &[u64]) -> (Vec<u64>, usize) {
        match self {
            Plan::Nothing => (stored.to_vec(), 0),
            Plan::Topics {
                days,
                days_left_out,
                ..
            } => (days.clone(), *days_left_out),
            Plan::Sample { days } => (days.clone(), 0),
        }
    }
}

/// Whether every rule holds for the message (the matcher's own compiled rules); a filter with
/// no rules, or a rule that does not compile, matches nothing.
pub fn holds(rules: &[Rule], owner: &str, facts: &MessageFacts<'_>, ownership: &Ownership) -> bool {
    !rules.is_empty()
        && rules
            .iter()
            .all(|r| CompiledRule::compile(r).is_ok_and(|c| c.holds(owner, facts, ownership)))
}

/// Whether the message is about one of the owner's packages (maintained by them or one of
/// their groups): the "N of them about your packages".
pub fn about_owner_packages(owner: &str, facts: &MessageFacts<'_>, ownership: &Ownership) -> bool {
    facts.owners.users.contains(owner)
        || ownership
            .groups_of(owner)
            .iter()
            .any(|g| facts.owners.groups.contains(&**g))
}

/// What one partition's read gave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionRead {
    /// The UTC day (days since the epoch).
    pub day: u64,
    /// Messages read.
    pub read: u64,
    /// Of those, matched by the filter.
    pub matched: u64,
    /// Of the matched, about the user's packages.
    pub about_owner: u64,
    /// Whether the partition was read to its end (else only its newest messages).
    pub complete: bool,
    /// Arrival time (epoch seconds) of the oldest message read.
    pub oldest: Option<u64>,
}

/// The expected rate.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Estimate {
    /// Matches found among the messages read.
    pub matched: u64,
    /// Messages read.
    pub read: u64,
    /// Expected matches a day (rounded to a tenth).
    pub per_day: f64,
    /// Of those, about the user's packages.
    pub about_your_packages_per_day: f64,
    /// Days the rate is over.
    pub days: f64,
    /// Whether the rate is extrapolated from part of the messages.
    pub sampled: bool,
}

/// The rate from the reads. A partition read only in part counts as its matches scaled by the
/// part of its day the read covered; the rate is over the `covered` days (today as the part of
/// it gone by; see [`Plan::coverage`]); days left out take the same rate (and make the
/// estimate sampled).
pub fn estimate(
    reads: &[PartitionRead],
    covered: &[u64],
    days_left_out: usize,
    now: u64,
) -> Estimate {
    let today = now / DAY_SECS;
    let day_span = |day: u64| -> f64 {
        if day >= today {
            ((now - today * DAY_SECS).max(1)) as f64
        } else {
            DAY_SECS as f64
        }
    };
    let mut matched = 0;
    let mut read = 0;
    let mut expected = 0.0;
    let mut expected_about = 0.0;
    let mut sampled = false;
    for r in reads {
        matched += r.matched;
        read += r.read;
        let scale = match (r.complete, r.oldest) {
            (true, _) | (false, None) => 1.0,
            (false, Some(oldest)) => {
                sampled = true;
                let end = if r.day >= today {
                    now
                } else {
                    (r.day + 1) * DAY_SECS
                };
                let covered = end.saturating_sub(oldest).max(1) as f64;
                (day_span(r.day) / covered).max(1.0)
            }
        };
        expected += r.matched as f64 * scale;
        expected_about += r.about_owner as f64 * scale;
    }
    if days_left_out > 0 {
        sampled = true;
    }
    let counted: BTreeSet<u64> = covered.iter().copied().collect();
    let days: f64 = counted.iter().map(|d| day_span(*d)).sum::<f64>() / DAY_SECS as f64;
    let per = |n: f64| {
        if days > 0.0 {
            (n / days * 10.0).round() / 10.0
        } else {
            0.0
        }
    };
    Estimate {
        matched,
        read,
        per_day: per(expected),
        about_your_packages_per_day: per(expected_about),
        days: (days * 10.0).round() / 10.0,
        sampled,
    }
}

/// "about 12 a day, 3 of them about your packages".
pub fn describe(e: &Estimate) -> String {
    let round = |x: f64| {
        if x >= 10.0 {
            format!("{}", x.round() as u64)
        } else {
            format!("{x}")
        }
    };
    let mut text = if e.per_day == 0.0 && e.days <= 1.0 {
        "nothing in the last day".to_string()
    } else if e.per_day == 0.0 {
        format!("nothing in the last {} days", e.days.ceil())
    } else {
        format!("about {} a day", round(e.per_day))
    };
    if e.about_your_packages_per_day > 0.0 {
        text.push_str(&format!(
            ", {} of them about your packages",
            round(e.about_your_packages_per_day)
        ));
    }
    if e.sampled {
        text.push_str(" (estimated from a sample)");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(kind: RuleKind, negated: bool) -> Rule {
        Rule { kind, negated }
    }

    fn topic(glob: &str) -> RuleKind {
        RuleKind::Topic { glob: glob.into() }
    }

    fn seen(day: u64, topics: &[&str]) -> (u64, BTreeSet<String>) {
        (day, topics.iter().map(|t| t.to_string()).collect())
    }

    const KOJI: &str = "org.fedoraproject.prod.buildsys.build.state.change";
    const TAG: &str = "org.fedoraproject.prod.buildsys.tag";
    const BODHI: &str = "org.fedoraproject.prod.bodhi.update.comment";

    #[test]
    fn topic_rules_pick_their_partitions_and_negations_drop_theirs() {
        let days = [
            seen(20_000, &[KOJI, TAG, BODHI]),
            seen(19_999, &[KOJI, BODHI]),
        ];
        let rules = [
            rule(topic("*.buildsys.*"), false),
            rule(topic("*.buildsys.tag"), true),
        ];
        assert_eq!(
            plan(&rules, &days, 100),
            Plan::Topics {
                partitions: vec![(KOJI.into(), 20_000), (KOJI.into(), 19_999)],
                days: vec![20_000, 19_999],
                days_left_out: 0
            }
        );
    }

    #[test]
    fn catalogue_entries_pick_their_topics_across_environments() {
        let rules = [rule(
            RuleKind::Catalogue {
                entry: "koji_build_failed".into(),
                values: vec![],
            },
            false,
        )];
        assert!(may_match_topic(&rules, KOJI));
        assert!(may_match_topic(
            &rules,
            "org.fedoraproject.stg.buildsys.build.state.change"
        ));
        assert!(!may_match_topic(&rules, BODHI));
    }

    #[test]
    fn filters_without_topic_rules_sample_every_day_and_the_budget_keeps_the_newest_days() {
        let days = [seen(20_000, &[KOJI, BODHI]), seen(19_999, &[KOJI, BODHI])];
        let mine = [rule(
            RuleKind::UserPackages {
                user: String::new(),
            },
            false,
        )];
        assert_eq!(
            plan(&mine, &days, 100),
            Plan::Sample {
                days: vec![20_000, 19_999]
            }
        );
        assert_eq!(plan(&[], &days, 100), Plan::Nothing);
        let all = [rule(topic("*"), false)];
        assert_eq!(
            plan(&all, &days, 3),
            Plan::Topics {
                partitions: vec![(BODHI.into(), 20_000), (KOJI.into(), 20_000)],
                days: vec![20_000],
                days_left_out: 1
            }
        );
    }

    #[test]
    fn the_rate_scales_partial_reads_by_the_time_they_cover() {
        let now = 20_000 * DAY_SECS + DAY_SECS / 2; // noon of day 20,000
        let full = PartitionRead {
            day: 19_999,
            read: 30,
            matched: 12,
            about_owner: 3,
            complete: true,
            oldest: Some(19_999 * DAY_SECS),
        };
        // Today: the newest 10 cover the last 3 hours of the 12 gone by, 4 matched.
        let partial = PartitionRead {
            day: 20_000,
            read: 10,
            matched: 4,
            about_owner: 0,
            complete: false,
            oldest: Some(now - 3 * 3600),
        };
        let e = estimate(std::slice::from_ref(&full), &[19_999], 0, now);
        assert_eq!(
            (e.per_day, e.about_your_packages_per_day, e.sampled),
            (12.0, 3.0, false)
        );
        assert_eq!(
            describe(&e),
            "about 12 a day, 3 of them about your packages"
        );
        let e = estimate(&[full.clone(), partial], &[20_000, 19_999], 0, now);
        // (12 + 4 × 4) over 1.5 days.
        assert_eq!((e.per_day, e.days, e.sampled), (18.7, 1.5, true));
        assert!(describe(&e).ends_with("(estimated from a sample)"));
        // A day whose partitions held nothing the filter can match still counts.
        let e = estimate(&[], &[19_998, 19_999, 20_000], 0, now);
        assert_eq!((e.per_day, e.days, e.sampled), (0.0, 2.5, false));
        assert_eq!(describe(&e), "nothing in the last 3 days");
        let e = estimate(&[full], &[19_999, 19_998], 5, now);
        assert_eq!((e.per_day, e.sampled), (6.0, true));
    }
}
