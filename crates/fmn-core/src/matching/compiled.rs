//! Rules compiled for evaluation: lists turned into sets, patterns compiled once.

use std::collections::HashSet;

use crate::meta::Severity;
use crate::ownership::Ownership;
use crate::rules::{
    compile_regex, service_catalogue, Artifact, Entry, Glob, Rule, RuleError, RuleKind,
};

use super::facts::MessageFacts;

#[derive(Debug)]
enum Test {
    AnyUser(HashSet<String>),
    NoUser(HashSet<String>),
    AnyPackage(HashSet<String>),
    PackageRegex(regex::Regex),
    UserPackages(Option<String>),
    Regex(regex::Regex),
    GroupMembers(String),
    ArtifactsOwned(HashSet<String>),
    ArtifactsGroupOwned(HashSet<String>),
    ArtifactsFollowed(HashSet<Artifact>),
    RelatedEvents,
    UsersFollowed(HashSet<String>),
    Applications(HashSet<String>),
    Severities(Vec<Severity>),
    /// The glob, and the same glob without allocation when it is only text and stars.
    Topic(Glob, Option<StarGlob>),
    NotMyActions,
    /// A service catalogue entry and the rule's values for its parameter.
    Catalogue(&'static Entry, Vec<String>),
}

/// A glob of plain text and `*` only (the common topic exclusions, `*.anitya.*`), matched
/// without allocating. Same result as [`Glob::matches`] for such a pattern.
#[derive(Debug)]
struct StarGlob {
    /// The text between stars: first the prefix, last the suffix; one part means no star.
    parts: Vec<String>,
}

impl StarGlob {
    fn new(pattern: &str) -> Option<Self> {
        if pattern.contains(['?', '[']) {
            return None;
        }
        Some(Self {
            parts: pattern.split('*').map(str::to_string).collect(),
        })
    }

    fn matches(&self, text: &str) -> bool {
        let [first, middle @ .., last] = self.parts.as_slice() else {
            return self.parts.first().is_some_and(|p| p == text);
        };
        if text.len() < first.len() + last.len()
            || !text.starts_with(first.as_str())
            || !text.ends_with(last.as_str())
        {
            return false;
        }
        // Leftmost matching of each middle part is right when stars are the only wildcard.
        let mut rest = &text[first.len()..text.len() - last.len()];
        for part in middle {
            match rest.find(part.as_str()) {
                Some(i) => rest = &rest[i + part.len()..],
                None => return false,
            }
        }
        true
    }
}

/// A rule ready to evaluate. "Me" (the filter's owner) is passed at evaluation time, so one
/// compiled rule serves every user whose filters contain it.
#[derive(Debug)]
pub struct CompiledRule {
    pub source: Rule,
    test: Test,
}

fn set(values: &[String]) -> HashSet<String> {
    values.iter().cloned().collect()
}

impl CompiledRule {
    pub fn compile(rule: &Rule) -> Result<Self, RuleError> {
        rule.validate()?;
        let test = match &rule.kind {
            RuleKind::User { users } => Test::AnyUser(set(users)),
            RuleKind::NotUser { users } => Test::NoUser(set(users)),
            RuleKind::Package { packages } => Test::AnyPackage(set(packages)),
            RuleKind::PackageRegex { pattern } => Test::PackageRegex(compile_regex(pattern)?),
            RuleKind::UserPackages { user } => {
                Test::UserPackages((!user.is_empty()).then(|| user.clone()))
            }
            RuleKind::Regex { pattern } => Test::Regex(compile_regex(pattern)?),
            RuleKind::GroupMembers { group } => Test::GroupMembers(group.clone()),
            RuleKind::ArtifactsOwned { users } => Test::ArtifactsOwned(set(users)),
            RuleKind::ArtifactsGroupOwned { groups } => Test::ArtifactsGroupOwned(set(groups)),
            RuleKind::ArtifactsFollowed { artifacts } => {
                Test::ArtifactsFollowed(artifacts.iter().cloned().collect())
            }
            RuleKind::RelatedEvents => Test::RelatedEvents,
            RuleKind::UsersFollowed { users } => Test::UsersFollowed(set(users)),
            RuleKind::Applications { applications } => {
                Test::Applications(applications.iter().map(|a| a.to_lowercase()).collect())
            }
            RuleKind::Severities { severities } => Test::Severities(severities.clone()),
            RuleKind::Topic { glob } => Test::Topic(Glob::new(glob)?, StarGlob::new(glob)),
            RuleKind::NotMyActions => Test::NotMyActions,
            RuleKind::Catalogue { entry, values } => match service_catalogue().entry(entry) {
                Some(found) => Test::Catalogue(found, values.clone()),
                // `validate` above refuses an unknown entry.
                None => {
                    return Err(crate::rules::RuleError::BadArgument {
                        arg: "entry",
                        reason: format!("`{entry}` is not in the service catalogue"),
                    })
                }
            },
        };
        Ok(Self {
            source: rule.clone(),
            test,
        })
    }

    /// Whether the rule depends on nothing but the message (so its result can be shared by
    /// every filter that has it, within one message).
    pub fn is_owner_independent(&self) -> bool {
        !matches!(
            self.test,
            Test::UserPackages(None)
                | Test::ArtifactsOwned(_)
                | Test::RelatedEvents
                | Test::NotMyActions
        )
    }

    /// Whether the rule is costly enough to be worth caching per message.
    pub fn is_costly(&self) -> bool {
        matches!(self.test, Test::Regex(_) | Test::PackageRegex(_))
    }

    /// The rule's result for this message and owner, negation applied.
    pub fn holds(&self, owner: &str, facts: &MessageFacts<'_>, ownership: &Ownership) -> bool {
        self.test(owner, facts, ownership) != self.source.negated
    }

    /// The test before negation.
    fn test(&self, owner: &str, facts: &MessageFacts<'_>, ownership: &Ownership) -> bool {
        let meta = facts.meta;
        match &self.test {
            Test::AnyUser(users) => meta.usernames.iter().any(|u| users.contains(u)),
            Test::NoUser(users) => !meta.usernames.iter().any(|u| users.contains(u)),
            Test::AnyPackage(packages) => meta.packages.iter().any(|p| packages.contains(p)),
            Test::PackageRegex(re) => meta.packages.iter().any(|p| re.is_match(p)),
            Test::UserPackages(user) => {
                let user = user.as_deref().unwrap_or(owner);
                facts.owners.users.contains(user)
                    || ownership
                        .groups_of(user)
                        .iter()
                        .any(|g| facts.owners.groups.contains(&**g))
            }
            Test::Regex(re) => re.is_match(facts.regex_haystack()),
            Test::GroupMembers(group) => facts.user_groups.contains(group),
            Test::ArtifactsOwned(users) if users.is_empty() => facts.owners.users.contains(owner),
            Test::ArtifactsOwned(users) => facts.owners.users.iter().any(|u| users.contains(u)),
            Test::ArtifactsGroupOwned(groups) => {
                facts.owners.groups.iter().any(|g| groups.contains(g))
            }
            Test::ArtifactsFollowed(artifacts) => {
                facts.artifacts.iter().any(|a| artifacts.contains(a))
            }
            Test::RelatedEvents => meta.usernames.contains(owner),
            Test::UsersFollowed(users) => meta.agent.as_ref().is_some_and(|a| users.contains(a)),
            Test::Applications(apps) => apps.contains(&facts.app),
            Test::Severities(severities) => severities.contains(&meta.severity),
            Test::Topic(_, Some(fast)) => fast.matches(facts.topic()),
            Test::Topic(glob, None) => glob.matches(facts.topic()),
            Test::NotMyActions => meta.agent.as_deref() != Some(owner),
            Test::Catalogue(entry, values) => {
                entry.matches(facts.envelope.topic(), facts.envelope.body(), values)
            }
        }
    }

    /// Why the rule holds or not, in words, for "explain".
    pub fn describe(&self, owner: &str, facts: &MessageFacts<'_>, ownership: &Ownership) -> String {
        let raw = self.test(owner, facts, ownership);
        let meta = facts.meta;
        let list = |items: &mut dyn Iterator<Item = &String>| {
            let v: Vec<&str> = items.map(String::as_str).collect();
            if v.is_empty() {
                "none".to_string()
            } else {
                v.join(", ")
            }
        };
        let what = match &self.test {
            Test::AnyUser(_) | Test::NoUser(_) | Test::RelatedEvents => {
                format!("the message's users: {}", list(&mut meta.usernames.iter()))
            }
            Test::AnyPackage(_) | Test::PackageRegex(_) => {
                format!(
                    "the message's packages: {}",
                    list(&mut meta.packages.iter())
                )
            }
            Test::UserPackages(_) | Test::ArtifactsOwned(_) | Test::ArtifactsGroupOwned(_) => {
                format!(
                    "maintainers of the message's artifacts: users {}; groups {}",
                    list(&mut facts.owners.users.iter()),
                    list(&mut facts.owners.groups.iter())
                )
            }
            Test::Regex(_) => "the message body".to_string(),
            Test::GroupMembers(_) => format!(
                "groups of the message's users: {}",
                list(&mut facts.user_groups.iter())
            ),
            Test::ArtifactsFollowed(_) => {
                let names: Vec<String> = facts
                    .artifacts
                    .iter()
                    .map(|a| format!("{}/{}", a.kind.as_str(), a.name))
                    .collect();
                format!("the message's artifacts: {}", list(&mut names.iter()))
            }
            Test::UsersFollowed(_) | Test::NotMyActions => format!(
                "the message's agent: {}",
                meta.agent.as_deref().unwrap_or("unknown")
            ),
            Test::Applications(_) => format!("the message's application: {}", meta.app),
            Test::Severities(_) => format!("the message's severity: {}", meta.severity),
            Test::Topic(..) => format!("the topic: {}", facts.topic()),
            Test::Catalogue(entry, _) => {
                let tests: Vec<String> = entry.r#where.iter().map(|t| t.summary()).collect();
                if tests.is_empty() {
                    format!("the topic: {}", facts.topic())
                } else {
                    format!("the topic: {}; tests: {}", facts.topic(), tests.join(", "))
                }
            }
        };
        let verdict = if raw { "true" } else { "false" };
        let negation = if self.source.negated {
            format!(", negated: {}", !raw)
        } else {
            String::new()
        };
        format!(
            "{} is {verdict} ({what}){negation}",
            summary(&self.source, owner)
        )
    }
}

/// A rule in a few words, with "me" spelled out.
pub fn summary(rule: &Rule, owner: &str) -> String {
    let join = |v: &[String]| v.join(", ");
    match &rule.kind {
        RuleKind::User { users } => format!("user is one of [{}]", join(users)),
        RuleKind::NotUser { users } => format!("no user is one of [{}]", join(users)),
        RuleKind::Package { packages } => format!("package is one of [{}]", join(packages)),
        RuleKind::PackageRegex { pattern } => format!("a package matches /{pattern}/"),
        RuleKind::UserPackages { user } if user.is_empty() => {
            format!("an artifact is maintained by {owner} or their groups")
        }
        RuleKind::UserPackages { user } => {
            format!("an artifact is maintained by {user} or their groups")
        }
        RuleKind::Regex { pattern } => format!("the body matches /{pattern}/"),
        RuleKind::GroupMembers { group } => format!("a user is a member of {group}"),
        RuleKind::ArtifactsOwned { users } if users.is_empty() => {
            format!("an artifact is maintained by {owner}")
        }
        RuleKind::ArtifactsOwned { users } => {
            format!("an artifact is maintained by one of [{}]", join(users))
        }
        RuleKind::ArtifactsGroupOwned { groups } => {
            format!(
                "an artifact is maintained by one of the groups [{}]",
                join(groups)
            )
        }
        RuleKind::ArtifactsFollowed { artifacts } => {
            let names: Vec<String> = artifacts
                .iter()
                .map(|a| format!("{}/{}", a.kind.as_str(), a.name))
                .collect();
            format!("the message concerns one of [{}]", names.join(", "))
        }
        RuleKind::RelatedEvents => format!("{owner} is among the message's users"),
        RuleKind::UsersFollowed { users } => format!("the agent is one of [{}]", join(users)),
        RuleKind::Applications { applications } => {
            format!("the application is one of [{}]", join(applications))
        }
        RuleKind::Severities { severities } => {
            let v: Vec<&str> = severities.iter().map(|s| s.as_str()).collect();
            format!("the severity is one of [{}]", v.join(", "))
        }
        RuleKind::Topic { glob } => format!("the topic matches {glob}"),
        RuleKind::NotMyActions => format!("the agent is not {owner}"),
        RuleKind::Catalogue { entry, values } => {
            let title = service_catalogue()
                .entry(entry)
                .map_or(entry.as_str(), |e| e.title.as_str());
            if values.is_empty() {
                format!("catalogue:{entry} ({title})")
            } else {
                format!("catalogue:{entry} ({title}: {})", join(values))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn star_globs_agree_with_globs() {
        let patterns = [
            "*", "**", "a", "ab", "*a", "a*", "*a*", "a*b", "*a*b*", "a**b", "ab*ba", "*.x.*",
            "*.é.*", "é*", "*aa", "aa*aa", "*b*a*", "", "x.*.y",
        ];
        let texts = [
            "", "a", "b", "ab", "ba", "aa", "aba", "abba", "aab", "baa", "aaaa", "abab", "q.x.r",
            ".x.", "x..y", "x.q.y", "é", "aé", "é.é.é", "aabaa",
        ];
        for p in patterns {
            let Ok(glob) = Glob::new(p) else { continue };
            let fast = StarGlob::new(p).unwrap();
            for t in texts {
                assert_eq!(fast.matches(t), glob.matches(t), "{p:?} on {t:?}");
            }
        }
        assert!(StarGlob::new("a?c").is_none());
        assert!(StarGlob::new("[ab]*").is_none());
    }
}
