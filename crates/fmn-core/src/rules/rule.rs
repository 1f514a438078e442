//! The rules themselves: kinds, arguments, validation.

use serde::{Deserialize, Serialize};

use super::error::{bad, RuleError, MAX_LIST, MAX_PATTERN, MAX_REGEX_PROGRAM};
use super::glob::Glob;
use super::services::service_catalogue;
use crate::meta::Severity;

/// The namespaces of dist-git artifacts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ArtifactKind {
    /// RPM source packages (`rpms/`).
    Rpms,
    /// Container images (`container/`).
    Containers,
    /// Modules (`modules/`).
    Modules,
    /// Flatpaks (`flatpaks/`).
    Flatpaks,
}

impl ArtifactKind {
    /// All kinds.
    pub const ALL: [ArtifactKind; 4] = [
        ArtifactKind::Rpms,
        ArtifactKind::Containers,
        ArtifactKind::Modules,
        ArtifactKind::Flatpaks,
    ];

    /// `rpms`, `containers`, `modules`, `flatpaks`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rpms => "rpms",
            Self::Containers => "containers",
            Self::Modules => "modules",
            Self::Flatpaks => "flatpaks",
        }
    }

    /// The kind for a dist-git namespace (`rpms`, `container` or `containers`, …).
    pub fn from_namespace(ns: &str) -> Option<Self> {
        match ns {
            "rpms" | "rpm" | "packages" => Some(Self::Rpms),
            "container" | "containers" => Some(Self::Containers),
            "modules" | "module" => Some(Self::Modules),
            "flatpaks" | "flatpak" => Some(Self::Flatpaks),
            _ => None,
        }
    }
}

/// A dist-git artifact: a kind and a name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Artifact {
    #[serde(rename = "type")]
    pub kind: ArtifactKind,
    pub name: String,
}

impl Artifact {
    pub fn new(kind: ArtifactKind, name: impl Into<String>) -> Self {
        Self {
            kind,
            name: name.into(),
        }
    }
}

/// What a rule tests. Serialised with its arguments inline: `{"kind": "package", "packages":
/// ["rpm"]}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum RuleKind {
    /// One of these users is among the message's users.
    User { users: Vec<String> },
    /// None of these users is among the message's users.
    NotUser { users: Vec<String> },
    /// One of these packages is among the message's packages.
    Package { packages: Vec<String> },
    /// One of the message's packages matches this regex (anchored nowhere: `search`).
    PackageRegex { pattern: String },
    /// One of the message's artifacts is owned by this user, directly or through one of the
    /// user's groups (the old `user_package_filter`). Empty `user`: the filter's owner.
    UserPackages {
        #[serde(default, skip_serializing_if = "String::is_empty")]
        user: String,
    },
    /// The regex matches somewhere in the message's body (its JSON).
    Regex { pattern: String },
    /// A member of this group is among the message's users.
    GroupMembers { group: String },
    /// One of the message's artifacts is owned by one of these users (no groups). Empty:
    /// the filter's owner.
    ArtifactsOwned {
        #[serde(default)]
        users: Vec<String>,
    },
    /// One of the message's artifacts is owned by one of these groups.
    ArtifactsGroupOwned { groups: Vec<String> },
    /// The message concerns one of these artifacts.
    ArtifactsFollowed { artifacts: Vec<Artifact> },
    /// The filter's owner is among the message's users.
    RelatedEvents,
    /// The message was caused by one of these users (its agent).
    UsersFollowed { users: Vec<String> },
    /// The message comes from one of these applications (case-insensitive).
    Applications { applications: Vec<String> },
    /// The message has one of these severities.
    Severities { severities: Vec<Severity> },
    /// The full topic matches this glob (`*` any run, `?` one character, `[...]` a class).
    Topic { glob: String },
    /// The message was not caused by the filter's owner.
    NotMyActions,
    /// An event of the service catalogue (`rules/catalogue.json`), by entry id; `values` fill
    /// the entry's parameter when it takes one (koji instances, Koschei groups, …).
    Catalogue {
        entry: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        values: Vec<String>,
    },
}

impl RuleKind {
    /// The catalogue name (`user`, `package-regex`, …).
    pub fn name(&self) -> &'static str {
        match self {
            Self::User { .. } => "user",
            Self::NotUser { .. } => "not-user",
            Self::Package { .. } => "package",
            Self::PackageRegex { .. } => "package-regex",
            Self::UserPackages { .. } => "user-packages",
            Self::Regex { .. } => "regex",
            Self::GroupMembers { .. } => "group-members",
            Self::ArtifactsOwned { .. } => "artifacts-owned",
            Self::ArtifactsGroupOwned { .. } => "artifacts-group-owned",
            Self::ArtifactsFollowed { .. } => "artifacts-followed",
            Self::RelatedEvents => "related-events",
            Self::UsersFollowed { .. } => "users-followed",
            Self::Applications { .. } => "applications",
            Self::Severities { .. } => "severities",
            Self::Topic { .. } => "topic",
            Self::NotMyActions => "not-my-actions",
            Self::Catalogue { .. } => "catalogue",
        }
    }
}

/// A rule in a filter: what it tests and whether the result is inverted.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Rule {
    #[serde(flatten)]
    pub kind: RuleKind,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub negated: bool,
}

impl Rule {
    /// A rule that must hold.
    pub fn new(kind: RuleKind) -> Self {
        Self {
            kind,
            negated: false,
        }
    }

    /// A rule that must not hold.
    pub fn not(kind: RuleKind) -> Self {
        Self {
            kind,
            negated: true,
        }
    }

    /// Checks the arguments: list sizes, names, and that patterns compile within limits.
    pub fn validate(&self) -> Result<(), RuleError> {
        match &self.kind {
            RuleKind::User { users }
            | RuleKind::NotUser { users }
            | RuleKind::UsersFollowed { users } => names("users", users, false),
            RuleKind::ArtifactsOwned { users } => names("users", users, true),
            RuleKind::Package { packages } => names("packages", packages, false),
            RuleKind::ArtifactsGroupOwned { groups } => names("groups", groups, false),
            RuleKind::Applications { applications } => names("applications", applications, false),
            RuleKind::GroupMembers { group } => name("group", group),
            RuleKind::UserPackages { user } if user.is_empty() => Ok(()),
            RuleKind::UserPackages { user } => name("user", user),
            RuleKind::ArtifactsFollowed { artifacts } => {
                list_size("artifacts", artifacts.len(), false)?;
                artifacts
                    .iter()
                    .try_for_each(|a| name("artifacts", &a.name))
            }
            RuleKind::Severities { severities } => list_size("severities", severities.len(), false),
            RuleKind::PackageRegex { pattern } | RuleKind::Regex { pattern } => {
                compile_regex(pattern).map(drop)
            }
            RuleKind::Topic { glob } => Glob::new(glob).map(drop),
            RuleKind::RelatedEvents | RuleKind::NotMyActions => Ok(()),
            RuleKind::Catalogue { entry, values } => {
                let Some(found) = service_catalogue().entry(entry) else {
                    return Err(bad(
                        "entry",
                        format!("`{entry}` is not in the service catalogue (see `fmn rules`)"),
                    ));
                };
                if found.takes_values() {
                    names("values", values, false)
                } else if values.is_empty() {
                    Ok(())
                } else {
                    Err(bad("values", format!("`{entry}` takes no values")))
                }
            }
        }
    }
}

fn list_size(arg: &'static str, len: usize, empty_ok: bool) -> Result<(), RuleError> {
    if len == 0 && !empty_ok {
        return Err(bad(arg, "needs at least one value"));
    }
    if len > MAX_LIST {
        return Err(bad(arg, format!("at most {MAX_LIST} values")));
    }
    Ok(())
}

fn names(arg: &'static str, values: &[String], empty_ok: bool) -> Result<(), RuleError> {
    list_size(arg, values.len(), empty_ok)?;
    values.iter().try_for_each(|v| name(arg, v))
}

fn name(arg: &'static str, value: &str) -> Result<(), RuleError> {
    if value.is_empty() {
        return Err(bad(arg, "empty name"));
    }
    if value.len() > 128 {
        return Err(bad(arg, "names are at most 128 characters"));
    }
    if value
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == ',')
    {
        return Err(bad(
            arg,
            format!("`{value}` has spaces, commas or control characters; give one name per value"),
        ));
    }
    Ok(())
}

/// Compiles a user's regex with the size limits; the error says what is wrong.
impl RuleKind {
    /// A regular-expression rule (the costly kind: see `limits::MAX_REGEX_RULES`).
    pub fn is_regex(&self) -> bool {
        matches!(self, RuleKind::PackageRegex { .. } | RuleKind::Regex { .. })
    }
}

/// How much of a message body a `regex` rule reads: a pattern's cost grows with the text it
/// scans, and bodies can be up to a megabyte.
pub const MAX_REGEX_SCAN: usize = 64 * 1024;

pub fn compile_regex(pattern: &str) -> Result<regex::Regex, RuleError> {
    if pattern.is_empty() {
        return Err(bad("pattern", "empty pattern"));
    }
    if pattern.len() > MAX_PATTERN {
        return Err(bad("pattern", format!("at most {MAX_PATTERN} bytes")));
    }
    regex::RegexBuilder::new(pattern)
        .size_limit(MAX_REGEX_PROGRAM)
        .dfa_size_limit(MAX_REGEX_PROGRAM)
        .build()
        .map_err(|e| match e {
            regex::Error::CompiledTooBig(_) => bad("pattern", "the pattern is too large"),
            other => bad("pattern", other.to_string()),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::catalog;

    #[test]
    fn rules_serialise_flat_with_their_kind() {
        let rule = Rule::not(RuleKind::Package {
            packages: vec!["rpm".into()],
        });
        let json = serde_json::to_value(&rule).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"kind": "package", "packages": ["rpm"], "negated": true})
        );
        let back: Rule = serde_json::from_value(json).unwrap();
        assert_eq!(back, rule);
        let plain: Rule = serde_json::from_str(r#"{"kind": "related-events"}"#).unwrap();
        assert_eq!(plain, Rule::new(RuleKind::RelatedEvents));
    }

    #[test]
    fn catalogue_rules_name_an_entry_and_its_values() {
        let rule = |entry: &str, values: &[&str]| {
            Rule::new(RuleKind::Catalogue {
                entry: entry.into(),
                values: values.iter().map(|v| v.to_string()).collect(),
            })
        };
        rule("koji_build_failed", &[]).validate().unwrap();
        rule("koschei_group", &["python-sig"]).validate().unwrap();
        assert!(rule("koschei_group", &[]).validate().is_err());
        assert!(rule("koji_build_failed", &["x"]).validate().is_err());
        let unknown = rule("telepathy", &[]).validate().unwrap_err().to_string();
        assert!(
            unknown.contains("not in the service catalogue"),
            "{unknown}"
        );
        let json = serde_json::to_value(rule("koji_build_failed", &[])).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"kind": "catalogue", "entry": "koji_build_failed"})
        );
    }

    #[test]
    fn unknown_kinds_are_refused() {
        assert!(serde_json::from_str::<Rule>(r#"{"kind": "telepathy"}"#).is_err());
    }

    #[test]
    fn bad_patterns_are_refused_with_a_reason() {
        let r = Rule::new(RuleKind::Regex {
            pattern: "(unclosed".into(),
        });
        assert!(r.validate().unwrap_err().to_string().contains("pattern"));
        let huge = Rule::new(RuleKind::Regex {
            pattern: "(a{1000}){1000}".into(),
        });
        assert!(huge
            .validate()
            .unwrap_err()
            .to_string()
            .contains("too large"));
        let long = Rule::new(RuleKind::Regex {
            pattern: "a".repeat(MAX_PATTERN + 1),
        });
        assert!(long.validate().is_err());
    }

    #[test]
    fn lists_need_values_and_clean_names() {
        assert!(Rule::new(RuleKind::User { users: vec![] })
            .validate()
            .is_err());
        assert!(Rule::new(RuleKind::User {
            users: vec!["a,b".into()]
        })
        .validate()
        .is_err());
        Rule::new(RuleKind::ArtifactsOwned { users: vec![] })
            .validate()
            .unwrap();
    }

    #[test]
    fn every_kind_is_in_the_catalogue() {
        let names: Vec<&str> = catalog().iter().map(|r| r.kind).collect();
        for kind in catalog::examples() {
            assert!(names.contains(&kind.name()), "{}", kind.name());
        }
        assert_eq!(names.len(), catalog::examples().len());
    }
}
