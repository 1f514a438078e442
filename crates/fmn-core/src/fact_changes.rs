//! What a bus message changes in the facts the sync copies (ownership, group membership,
//! accounts), so matching reflects it within a minute instead of at the next hourly sync.
//!
//! - dist-git ACL changes (`pagure.project.user.access.updated`, `…group.access.updated`,
//!   `…user.added`, `…user.removed`, `…group.added`, `…group.removed`, `…owner.updated`):
//!   the message carries the project with its ACLs after the change: its maintainers are set.
//! - a dist-git project deleted (`pagure.project.deleted`) or retired on rawhide
//!   (`pkgdb.package.retire`, branch `master`/`rawhide`; since pkgdb, a push adding
//!   `dead.package` to the rawhide branch, `git.receive`): it has no maintainers any more.
//! - FAS/Noggin membership (`fas.group.member.sponsor`, `….add`, `….remove`, `….removed`):
//!   one member added or removed (an application, `….apply`, is not membership).
//! - an account created or updated (`fas.user.create`, `fas.user.update`): it is read again
//!   from FAS (the message names the fields, not their values).
//!
//! Only dist-git namespaces fmn tracks count (rpms, container, modules, flatpaks): a project on
//! pagure.io has none of them.

use serde_json::Value;

use crate::directory::Account;
use crate::message::Envelope;
use crate::ownership::Owners;
use crate::rules::{Artifact, ArtifactKind};

/// One change to the synced facts. Stored as JSON while a full sync may still be writing
/// older data over it (`fmn_aws::ownership_store`'s bus log).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum FactChange {
    SetOwners {
        artifact: Artifact,
        owners: Owners,
    },
    RemoveArtifact {
        artifact: Artifact,
    },
    AddMember {
        group: String,
        user: String,
    },
    RemoveMember {
        group: String,
        user: String,
    },
    /// Read this account again from FAS (then [`FactChange::SetAccount`]).
    RefreshAccount {
        user: String,
    },
    /// An account as FAS has it now; None: FAS no longer has it.
    SetAccount {
        user: String,
        account: Option<Account>,
    },
}

impl FactChange {
    /// A short description for logs and explanations.
    pub fn describe(&self) -> String {
        match self {
            Self::SetOwners { artifact, owners } => format!(
                "{}/{} maintainers now users [{}] groups [{}]",
                artifact.kind.as_str(),
                artifact.name,
                owners.users.join(", "),
                owners.groups.join(", ")
            ),
            Self::RemoveArtifact { artifact } => {
                format!("{}/{} gone", artifact.kind.as_str(), artifact.name)
            }
            Self::AddMember { group, user } => format!("{user} joined {group}"),
            Self::RemoveMember { group, user } => format!("{user} left {group}"),
            Self::RefreshAccount { user } | Self::SetAccount { user, .. } => {
                format!("account {user} changed")
            }
        }
    }
}

const ACL_EVENTS: [&str; 7] = [
    "pagure.project.user.access.updated",
    "pagure.project.group.access.updated",
    "pagure.project.user.added",
    "pagure.project.user.removed",
    "pagure.project.group.added",
    "pagure.project.group.removed",
    "pagure.project.owner.updated",
];

/// The ACL levels that make a maintainer (as the owner map lists them).
const MAINTAINER_LEVELS: [&str; 4] = ["owner", "admin", "commit", "collaborator"];

/// The changes `envelope` makes (none for most messages).
pub fn fact_changes(envelope: &Envelope) -> Vec<FactChange> {
    let title = envelope.topic().title();
    let body = envelope.body();
    // Noggin's fedora-messaging bodies wrap the fields in `msg`.
    let body = body.get("msg").filter(|v| v.is_object()).unwrap_or(body);
    if ACL_EVENTS.contains(&title) {
        return project_owners(body).into_iter().collect();
    }
    match title {
        "pagure.project.deleted" => project_artifact(body.get("project"))
            .map(|artifact| FactChange::RemoveArtifact { artifact })
            .into_iter()
            .collect(),
        "pkgdb.package.retire" => {
            let listing = body.get("package_listing");
            let branch = listing
                .and_then(|l| l.pointer("/collection/branchname"))
                .and_then(Value::as_str);
            let name = listing
                .and_then(|l| l.pointer("/package/name"))
                .and_then(Value::as_str);
            match (branch, name) {
                (Some("master" | "rawhide"), Some(name)) => vec![FactChange::RemoveArtifact {
                    artifact: Artifact::new(ArtifactKind::Rpms, name),
                }],
                _ => Vec::new(),
            }
        }
        "git.receive" => dead_package(body).into_iter().collect(),
        "fas.group.member.sponsor" | "fas.group.member.add" | "fas.group.member.added" => {
            membership(body, true)
        }
        "fas.group.member.remove" | "fas.group.member.removed" => membership(body, false),
        "fas.user.create" | "fas.user.update" => name_of(body.get("user"))
            .map(|user| FactChange::RefreshAccount { user })
            .into_iter()
            .collect(),
        _ => Vec::new(),
    }
}

/// A name given as a string or as an object with `username` or `name`.
fn name_of(v: Option<&Value>) -> Option<String> {
    let v = v?;
    let name = match v {
        Value::String(s) => s.as_str(),
        Value::Object(o) => o
            .get("username")
            .or_else(|| o.get("name"))
            .and_then(Value::as_str)?,
        _ => return None,
    };
    (!name.is_empty()).then(|| name.to_string())
}

/// A push to a dist-git repo's rawhide branch that adds `dead.package` retires the package
/// (a push that deletes it, an unretirement, waits for the sync).
fn dead_package(body: &Value) -> Option<FactChange> {
    let commit = body.get("commit")?;
    let branch = commit.get("branch").and_then(Value::as_str)?;
    if !matches!(branch, "master" | "rawhide" | "main") {
        return None;
    }
    let added = commit
        .pointer("/stats/files/dead.package")
        .is_some_and(|f| {
            let n = |k: &str| f.get(k).and_then(Value::as_u64).unwrap_or(0);
            n("insertions") + n("additions") > 0 || n("lines") > 0 && n("deletions") == 0
        });
    if !added {
        return None;
    }
    // Older messages name no namespace: they were all rpms.
    let kind = match commit.get("namespace").and_then(Value::as_str) {
        None => ArtifactKind::Rpms,
        Some(ns) => ArtifactKind::from_namespace(ns)?,
    };
    let name = commit.get("repo").and_then(Value::as_str)?;
    (!name.is_empty()).then(|| FactChange::RemoveArtifact {
        artifact: Artifact::new(kind, name),
    })
}

fn membership(body: &Value, added: bool) -> Vec<FactChange> {
    match (name_of(body.get("group")), name_of(body.get("user"))) {
        (Some(group), Some(user)) if added => vec![FactChange::AddMember { group, user }],
        (Some(group), Some(user)) => vec![FactChange::RemoveMember { group, user }],
        _ => Vec::new(),
    }
}

fn project_artifact(project: Option<&Value>) -> Option<Artifact> {
    let project = project?;
    let kind = ArtifactKind::from_namespace(project.get("namespace")?.as_str()?)?;
    Some(Artifact::new(kind, project.get("name")?.as_str()?))
}

fn project_owners(body: &Value) -> Option<FactChange> {
    let project = body.get("project")?;
    let artifact = project_artifact(Some(project))?;
    // Older Pagure messages carry no ACLs: nothing to set from them.
    let users = project.get("access_users")?;
    let gather = |acl: Option<&Value>| {
        let mut names: Vec<String> = MAINTAINER_LEVELS
            .iter()
            .filter_map(|level| acl.and_then(|a| a.get(*level)).and_then(Value::as_array))
            .flatten()
            .filter_map(|n| n.as_str().map(str::to_string))
            .collect();
        names.sort();
        names.dedup();
        names
    };
    Some(FactChange::SetOwners {
        artifact,
        owners: Owners {
            users: gather(Some(users)),
            groups: gather(project.get("access_groups")),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn envelope(topic: &str, msg: Value) -> Envelope {
        Envelope::from_value(json!({"topic": topic, "msg": msg, "msg_id": "x"})).unwrap()
    }

    #[test]
    fn dist_git_acl_changes_set_the_maintainers() {
        let msg = json!({"agent": "alice", "new_access": "commit", "new_user": "bob",
            "project": {"name": "foo", "namespace": "rpms",
              "access_users": {"owner": ["alice"], "admin": [], "commit": ["bob"], "collaborator": [], "ticket": ["t"]},
              "access_groups": {"admin": [], "commit": ["python-sig"], "collaborator": [], "ticket": []}}});
        let changes = fact_changes(&envelope(
            "org.fedoraproject.prod.pagure.project.user.access.updated",
            msg.clone(),
        ));
        assert_eq!(
            changes,
            [FactChange::SetOwners {
                artifact: Artifact::new(ArtifactKind::Rpms, "foo"),
                owners: Owners {
                    users: vec!["alice".into(), "bob".into()],
                    groups: vec!["python-sig".into()],
                },
            }]
        );
        // pagure.io projects (other namespaces) are not dist-git's.
        let mut other = msg;
        other["project"]["namespace"] = json!("fedora-infra");
        assert!(fact_changes(&envelope(
            "io.pagure.prod.pagure.project.user.access.updated",
            other
        ))
        .is_empty());
    }

    #[test]
    fn membership_in_both_fas_shapes() {
        let legacy = json!({"agent": {"username": "toshio"}, "group": {"name": "ambassadors"}, "user": {"username": "ralph"}});
        assert_eq!(
            fact_changes(&envelope(
                "org.fedoraproject.stg.fas.group.member.sponsor",
                legacy
            )),
            [FactChange::AddMember {
                group: "ambassadors".into(),
                user: "ralph".into()
            }]
        );
        let noggin =
            json!({"msg": {"agent": "dudemcpants", "group": "developers", "user": "testuser"}});
        assert_eq!(
            fact_changes(&envelope(
                "org.fedoraproject.prod.fas.group.member.removed",
                noggin
            )),
            [FactChange::RemoveMember {
                group: "developers".into(),
                user: "testuser".into()
            }]
        );
        let apply = json!({"agent": "a", "group": "g", "user": "u"});
        assert!(fact_changes(&envelope(
            "org.fedoraproject.prod.fas.group.member.apply",
            apply
        ))
        .is_empty());
        let update = json!({"msg": {"agent": "x", "fields": ["emails"], "user": "testuser"}});
        assert_eq!(
            fact_changes(&envelope("org.fedoraproject.prod.fas.user.update", update)),
            [FactChange::RefreshAccount {
                user: "testuser".into()
            }]
        );
    }

    #[test]
    fn a_dead_package_pushed_to_rawhide_removes_the_package() {
        let push = |branch: &str, file: &str, insertions: u64, deletions: u64| {
            json!({"commit": {"branch": branch, "repo": "php-zmq", "namespace": "rpms",
                "username": "ralph", "stats": {"files": {file: {"insertions": insertions, "deletions": deletions, "lines": insertions + deletions}},
                "total": {"files": 1}}}})
        };
        let topic = "org.fedoraproject.prod.git.receive";
        assert_eq!(
            fact_changes(&envelope(topic, push("rawhide", "dead.package", 1, 0))),
            [FactChange::RemoveArtifact {
                artifact: Artifact::new(ArtifactKind::Rpms, "php-zmq")
            }]
        );
        assert!(fact_changes(&envelope(topic, push("f40", "dead.package", 1, 0))).is_empty());
        assert!(
            fact_changes(&envelope(topic, push("rawhide", "dead.package", 0, 1))).is_empty(),
            "unretired"
        );
        assert!(fact_changes(&envelope(topic, push("rawhide", "php-zmq.spec", 4, 6))).is_empty());
        // pagure.io's infra repos are not dist-git's.
        let mut other = push("master", "dead.package", 1, 0);
        other["commit"]["namespace"] = json!("fedora-infra");
        assert!(fact_changes(&envelope(topic, other)).is_empty());
    }

    #[test]
    fn retirement_on_rawhide_removes_the_package() {
        let msg = |branch: &str| json!({"agent": "ralph", "package_listing": {"collection": {"branchname": branch}, "package": {"name": "php-zmq"}}, "retirement": "retired"});
        assert_eq!(
            fact_changes(&envelope(
                "org.fedoraproject.prod.pkgdb.package.retire",
                msg("master")
            )),
            [FactChange::RemoveArtifact {
                artifact: Artifact::new(ArtifactKind::Rpms, "php-zmq")
            }]
        );
        assert!(fact_changes(&envelope(
            "org.fedoraproject.prod.pkgdb.package.retire",
            msg("EL-6")
        ))
        .is_empty());
    }
}
