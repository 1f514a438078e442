//! The rule catalogue: every rule kind with a title, a description and its arguments. The
//! web-api serves it as it is, and the page builds its rule editor from it.

use serde::Serialize;

use super::rule::{Artifact, ArtifactKind, RuleKind};
use crate::meta::Severity;

/// How an argument is entered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ArgKind {
    /// A list of account names.
    Usernames,
    /// One account name.
    Username,
    /// A list of package names.
    Packages,
    /// One group name.
    Group,
    /// A list of group names.
    Groups,
    /// A list of `{type, name}` artifacts.
    Artifacts,
    /// A list of application names.
    Applications,
    /// A list of severities.
    Severities,
    /// A regular expression (Rust `regex` syntax, linear time).
    Regex,
    /// A glob over the full topic.
    TopicGlob,
    /// The id of a service catalogue entry.
    CatalogueEntry,
    /// A list of values for a catalogue entry that takes them.
    Values,
}

/// One argument of a rule kind.
#[derive(Debug, Clone, Serialize)]
pub struct RuleArg {
    pub name: &'static str,
    pub kind: ArgKind,
    pub required: bool,
    pub description: &'static str,
}

/// One rule kind.
#[derive(Debug, Clone, Serialize)]
pub struct RuleInfo {
    /// The `kind` value in a rule.
    pub kind: &'static str,
    /// `generic` (old FMN), `tracking` or `narrowing` (FMN 3.x).
    pub family: &'static str,
    pub title: &'static str,
    pub description: &'static str,
    pub args: Vec<RuleArg>,
}

fn arg(name: &'static str, kind: ArgKind, required: bool, description: &'static str) -> RuleArg {
    RuleArg {
        name,
        kind,
        required,
        description,
    }
}

/// Every rule kind, in the order the page shows them.
pub fn catalog() -> Vec<RuleInfo> {
    use ArgKind as A;
    let info = |kind, family, title, description, args| RuleInfo {
        kind,
        family,
        title,
        description,
        args,
    };
    vec![
        info("related-events", "tracking", "Events related to me",
            "Messages about me: I am among the users the message concerns (including my own actions unless another rule excludes them).",
            vec![]),
        info("artifacts-owned", "tracking", "Artifacts owned by users",
            "Messages about a package, container, module or flatpak that one of these users maintains in dist-git. Leave the list empty for my own.",
            vec![arg("users", A::Usernames, false, "Maintainers; empty means me.")]),
        info("artifacts-group-owned", "tracking", "Artifacts owned by groups",
            "Messages about an artifact that one of these groups maintains in dist-git.",
            vec![arg("groups", A::Groups, true, "Group names, e.g. python-packagers-sig.")]),
        info("artifacts-followed", "tracking", "Artifacts I follow",
            "Messages about one of these artifacts, whoever maintains it.",
            vec![arg("artifacts", A::Artifacts, true, "Each a type (rpms, containers, modules, flatpaks) and a name.")]),
        info("users-followed", "tracking", "Started by users I follow",
            "Messages caused by one of these users (the message's agent).",
            vec![arg("users", A::Usernames, true, "Account names.")]),
        info("user", "generic", "A particular user",
            "Messages that concern one of these users, in any role.",
            vec![arg("users", A::Usernames, true, "Account names.")]),
        info("not-user", "generic", "Everything except these users",
            "Messages that concern none of these users.",
            vec![arg("users", A::Usernames, true, "Account names.")]),
        info("package", "generic", "A particular package",
            "Messages about one of these packages.",
            vec![arg("packages", A::Packages, true, "Source package names.")]),
        info("package-regex", "generic", "Packages matching a pattern",
            "Messages about a package whose name matches this regular expression.",
            vec![arg("pattern", A::Regex, true, "A regular expression, e.g. ^python-.")]),
        info("user-packages", "generic", "A user's packages",
            "Messages about an artifact that this user maintains in dist-git, directly or through one of their groups.",
            vec![arg("user", A::Username, false, "An account name; empty means me.")]),
        info("group-members", "generic", "Members of a group",
            "Messages that concern a member of this group.",
            vec![arg("group", A::Group, true, "A group name.")]),
        info("regex", "generic", "Anything matching a pattern",
            "Messages whose body (as JSON) matches this regular expression anywhere. The slowest rule: combine it with another.",
            vec![arg("pattern", A::Regex, true, "A regular expression.")]),
        info("applications", "narrowing", "Applications",
            "Messages from one of these applications (bodhi, koji, pagure…); negate it to exclude them.",
            vec![arg("applications", A::Applications, true, "Application names, case-insensitive.")]),
        info("severities", "narrowing", "Severities",
            "Messages of one of these severities (debug, info, warning, error).",
            vec![arg("severities", A::Severities, true, "Severities.")]),
        info("topic", "narrowing", "Topic",
            "Messages whose full topic matches this glob, e.g. *.bodhi.update.comment (* any run, ? one character).",
            vec![arg("glob", A::TopicGlob, true, "A glob over the topic.")]),
        info("not-my-actions", "narrowing", "Not my own actions",
            "Leaves out messages I caused myself.",
            vec![]),
        info("catalogue", "service", "An event of a service",
            "Messages of one event of the service catalogue (Koji builds failing, Bodhi comments, Copr builds…): the entries follow this list, family `service-entry`.",
            vec![arg("entry", A::CatalogueEntry, true, "The entry's id, e.g. koji_build_failed."),
                 arg("values", A::Values, false, "For an entry that takes values (its `param`): the values, e.g. Koschei groups.")]),
    ]
}

/// One rule of each kind, for tests that must cover them all.
pub fn examples() -> Vec<RuleKind> {
    let s = |v: &str| vec![v.to_string()];
    vec![
        RuleKind::RelatedEvents,
        RuleKind::ArtifactsOwned { users: vec![] },
        RuleKind::ArtifactsGroupOwned {
            groups: s("python-sig"),
        },
        RuleKind::ArtifactsFollowed {
            artifacts: vec![Artifact::new(ArtifactKind::Rpms, "rpm")],
        },
        RuleKind::UsersFollowed { users: s("ralph") },
        RuleKind::User { users: s("ralph") },
        RuleKind::NotUser { users: s("ralph") },
        RuleKind::Package { packages: s("rpm") },
        RuleKind::PackageRegex {
            pattern: "^python-".into(),
        },
        RuleKind::UserPackages {
            user: String::new(),
        },
        RuleKind::GroupMembers {
            group: "packager".into(),
        },
        RuleKind::Regex {
            pattern: "kernel".into(),
        },
        RuleKind::Applications {
            applications: s("bodhi"),
        },
        RuleKind::Severities {
            severities: vec![Severity::Error],
        },
        RuleKind::Topic {
            glob: "*.bodhi.*".into(),
        },
        RuleKind::NotMyActions,
        RuleKind::Catalogue {
            entry: "koji_build_failed".into(),
            values: vec![],
        },
    ]
}

/// The whole catalogue as one list: every rule kind (as [`catalog`]), then every entry of the
/// service catalogue, each with `kind: "catalogue"`, `family: "service-entry"`, its `entry`
/// id, its service, title, description, predicate and, when it takes values, `param`.
pub fn full_catalogue() -> Vec<serde_json::Value> {
    let mut all: Vec<serde_json::Value> = catalog()
        .iter()
        .map(|k| serde_json::to_value(k).unwrap_or_default())
        .collect();
    for (service, entry) in super::services::service_catalogue().entries() {
        let mut v = serde_json::json!({
            "kind": "catalogue",
            "family": "service-entry",
            "entry": entry.id,
            "service": service.id,
            "service_title": service.title,
            "title": entry.title,
            "description": entry.description,
            "topics": entry.topics,
        });
        if !entry.r#where.is_empty() {
            v["where"] = serde_json::to_value(&entry.r#where).unwrap_or_default();
        }
        if let Some(param) = &entry.param {
            v["param"] = param.clone().into();
        }
        all.push(v);
    }
    all
}
