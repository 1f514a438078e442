//! Who maintains what: dist-git artifacts → owner users and groups, and groups → members.
//!
//! Imported from the JSON that Fedora's dist-git publishes at
//! `https://src.fedoraproject.org/extras/pagure_owner_alias.json`: an object per namespace
//! (`rpms`, `container`, `modules`, `flatpaks`; others are skipped) mapping each artifact name
//! to its maintainers; a maintainer written `@name` is a group. Group members come from a
//! simple `{"group": ["member", …]}` object.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::meta::Metadata;
use crate::rules::{Artifact, ArtifactKind};

/// Why an ownership file cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum OwnershipError {
    #[error("not JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("{0}")]
    Shape(String),
}

/// The maintainers of one artifact.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owners {
    #[serde(default)]
    pub users: Vec<String>,
    #[serde(default)]
    pub groups: Vec<String>,
}

/// What was read from an owner-alias file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OwnerAlias {
    pub artifacts: BTreeMap<Artifact, Owners>,
    /// Namespaces present in the file but not artifacts we track (e.g. `tests`).
    pub skipped_namespaces: Vec<String>,
}

/// Parses `pagure_owner_alias.json`.
pub fn parse_owner_alias(json: &str) -> Result<OwnerAlias, OwnershipError> {
    let root: BTreeMap<String, Value> = serde_json::from_str(json)?;
    let mut out = OwnerAlias::default();
    for (ns, entries) in root {
        let Some(kind) = ArtifactKind::from_namespace(&ns) else {
            out.skipped_namespaces.push(ns);
            continue;
        };
        let Value::Object(entries) = entries else {
            return Err(OwnershipError::Shape(format!(
                "`{ns}` should map names to maintainer lists"
            )));
        };
        for (name, maintainers) in entries {
            let Value::Array(list) = maintainers else {
                return Err(OwnershipError::Shape(format!(
                    "`{ns}.{name}` should be a list of maintainers"
                )));
            };
            let mut owners = Owners::default();
            for m in list {
                let Value::String(m) = m else {
                    return Err(OwnershipError::Shape(format!(
                        "`{ns}.{name}` has a maintainer that is not a string"
                    )));
                };
                match m.strip_prefix('@') {
                    Some(group) if !group.is_empty() => owners.groups.push(group.to_string()),
                    Some(_) => {}
                    None if !m.is_empty() => owners.users.push(m),
                    None => {}
                }
            }
            owners.users.sort();
            owners.users.dedup();
            owners.groups.sort();
            owners.groups.dedup();
            out.artifacts.insert(Artifact::new(kind, name), owners);
        }
    }
    Ok(out)
}

/// Parses a group-members file: `{"group": ["member", …]}`.
pub fn parse_group_members(json: &str) -> Result<BTreeMap<String, Vec<String>>, OwnershipError> {
    let mut groups: BTreeMap<String, Vec<String>> = serde_json::from_str(json)?;
    for members in groups.values_mut() {
        members.sort();
        members.dedup();
    }
    Ok(groups)
}

/// The ownership data the matcher consults. Serialisable whole (the match function's
/// preferences snapshot keeps it): a field added here is kept by the snapshot too.
///
/// Each user's and group's name is held once, shared by the member lists and the group lists
/// (a name is found again as a key of `user_groups` or `members`): Fedora's memberships made a
/// `String` each twice over, a fifth of a cold match function's memory at 100,000 users.
#[derive(Debug, Clone, Default)]
pub struct Ownership {
    artifacts: HashMap<Artifact, Owners>,
    members: HashMap<Arc<str>, Vec<Arc<str>>>,
    user_groups: HashMap<Arc<str>, Vec<Arc<str>>>,
}

impl Ownership {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets an artifact's maintainers.
    pub fn set_owners(&mut self, artifact: Artifact, owners: Owners) {
        self.artifacts.insert(artifact, owners);
    }

    /// Forgets an artifact (deleted or retired).
    pub fn remove_owners(&mut self, artifact: &Artifact) {
        self.artifacts.remove(artifact);
    }

    /// Sets a group's members.
    pub fn set_members<M: AsRef<str>>(
        &mut self,
        group: impl AsRef<str>,
        members: impl IntoIterator<Item = M>,
    ) {
        let group: Arc<str> = match self.members.get_key_value(group.as_ref()) {
            Some((shared, _)) => shared.clone(),
            None => Arc::from(group.as_ref()),
        };
        if let Some(old) = self.members.remove(&group) {
            for user in old {
                if let Some(groups) = self.user_groups.get_mut(&user) {
                    groups.retain(|g| *g != group);
                    if groups.is_empty() {
                        self.user_groups.remove(&user);
                    }
                }
            }
        }
        let mut list = Vec::new();
        for user in members {
            let user = user.as_ref();
            let user: Arc<str> = match self.user_groups.get_key_value(user) {
                Some((shared, _)) => shared.clone(),
                None => Arc::from(user),
            };
            let groups = self.user_groups.entry(user.clone()).or_default();
            if !groups.contains(&group) {
                groups.push(group.clone());
            }
            list.push(user);
        }
        list.shrink_to_fit();
        self.members.insert(group, list);
    }

    /// An artifact's maintainers.
    pub fn owners(&self, artifact: &Artifact) -> Option<&Owners> {
        self.artifacts.get(artifact)
    }

    /// The groups a user belongs to.
    pub fn groups_of(&self, user: &str) -> &[Arc<str>] {
        self.user_groups.get(user).map_or(&[], Vec::as_slice)
    }

    /// A group's members.
    pub fn members(&self, group: &str) -> &[Arc<str>] {
        self.members.get(group).map_or(&[], Vec::as_slice)
    }

    /// Number of artifacts and groups known.
    pub fn len(&self) -> (usize, usize) {
        (self.artifacts.len(), self.members.len())
    }

    pub fn is_empty(&self) -> bool {
        self.artifacts.is_empty() && self.members.is_empty()
    }

    /// Every artifact with its owners (unordered).
    pub fn artifacts(&self) -> impl Iterator<Item = (&Artifact, &Owners)> {
        self.artifacts.iter()
    }

    /// Every group with its members (unordered).
    pub fn groups(&self) -> impl Iterator<Item = (&str, &[Arc<str>])> {
        self.members.iter().map(|(g, m)| (&**g, m.as_slice()))
    }
}

/// The serialised form: the artifacts as a list of pairs (a JSON object's keys must be
/// strings), and the members of each group. Snapshots written before also carry each user's
/// groups; they are made again from the members when read, so those are ignored.
impl Serialize for Ownership {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        struct Pairs<'a>(&'a HashMap<Artifact, Owners>);
        impl Serialize for Pairs<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_seq(self.0.iter())
            }
        }
        struct Groups<'a>(&'a HashMap<Arc<str>, Vec<Arc<str>>>);
        impl Serialize for Groups<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_map(
                    self.0
                        .iter()
                        .map(|(g, m)| (&**g, m.iter().map(|u| &**u).collect::<Vec<_>>())),
                )
            }
        }
        let mut st = s.serialize_struct("Ownership", 2)?;
        st.serialize_field("artifacts", &Pairs(&self.artifacts))?;
        st.serialize_field("members", &Groups(&self.members))?;
        st.end()
    }
}

impl<'de> Deserialize<'de> for Ownership {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Wire {
            artifacts: Vec<(Artifact, Owners)>,
            members: HashMap<String, Vec<String>>,
        }
        let wire = Wire::deserialize(d)?;
        let mut out = Ownership {
            artifacts: wire.artifacts.into_iter().collect(),
            ..Ownership::default()
        };
        for (group, members) in wire.members {
            out.set_members(group, members);
        }
        Ok(out)
    }
}

/// The artifacts a message concerns.
pub fn message_artifacts(meta: &Metadata) -> Vec<Artifact> {
    let mut out = Vec::new();
    for (kind, names) in [
        (ArtifactKind::Rpms, &meta.packages),
        (ArtifactKind::Containers, &meta.containers),
        (ArtifactKind::Modules, &meta.modules),
        (ArtifactKind::Flatpaks, &meta.flatpaks),
    ] {
        out.extend(names.iter().map(|n| Artifact::new(kind, n.clone())));
    }
    out
}

/// The owners of a message's artifacts, gathered once per message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageOwners {
    pub users: BTreeSet<String>,
    pub groups: BTreeSet<String>,
}

impl MessageOwners {
    pub fn of(meta: &Metadata, ownership: &Ownership) -> Self {
        let mut out = Self::default();
        for artifact in message_artifacts(meta) {
            if let Some(owners) = ownership.owners(&artifact) {
                out.users.extend(owners.users.iter().cloned());
                out.groups.extend(owners.groups.iter().cloned());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_alias_files_parse_with_groups_and_namespaces() {
        let json = r#"{
            "rpms": {"rpm": ["ffesti", "@rpm-maint", "pmatilai"], "0ad": ["pcpa"]},
            "container": {"fedora-toolbox": ["debarshiray"]},
            "modules": {"nodejs": ["sgallagh"]},
            "tests": {"rpm": ["someone"]}
        }"#;
        let alias = parse_owner_alias(json).unwrap();
        let rpm = &alias.artifacts[&Artifact::new(ArtifactKind::Rpms, "rpm")];
        assert_eq!(rpm.users, ["ffesti", "pmatilai"]);
        assert_eq!(rpm.groups, ["rpm-maint"]);
        assert!(alias
            .artifacts
            .contains_key(&Artifact::new(ArtifactKind::Containers, "fedora-toolbox")));
        assert_eq!(alias.skipped_namespaces, ["tests"]);
        assert!(parse_owner_alias(r#"{"rpms": {"x": "y"}}"#).is_err());
    }

    #[test]
    fn group_membership_is_indexed_both_ways() {
        let mut o = Ownership::new();
        o.set_members("sig", ["a", "b"]);
        assert_eq!(o.groups_of("a"), [Arc::from("sig")]);
        o.set_members("sig", ["b"]);
        assert!(o.groups_of("a").is_empty());
        assert_eq!(o.members("sig"), [Arc::from("b")]);
    }

    #[test]
    fn each_name_is_held_once_and_survives_serialisation() {
        let mut o = Ownership::new();
        o.set_members("sig", ["a", "b"]);
        o.set_members("ops", ["b"]);
        let b_in_sig = &o.members("sig")[1];
        assert!(Arc::ptr_eq(b_in_sig, &o.members("ops")[0]));
        assert!(Arc::ptr_eq(&o.groups_of("b")[0], &o.groups_of("a")[0]));
        let text = serde_json::to_string(&o).unwrap();
        assert!(
            !text.contains("user_groups"),
            "derived, not written: {text}"
        );
        let back: Ownership = serde_json::from_str(&text).unwrap();
        let mut groups = back.groups_of("b").to_vec();
        groups.sort();
        assert_eq!(groups, [Arc::from("ops"), Arc::from("sig")]);
        // A snapshot written before carries each user's groups too: ignored, made again.
        let old =
            r#"{"artifacts": [], "members": {"sig": ["a"]}, "user_groups": {"a": ["stale"]}}"#;
        let back: Ownership = serde_json::from_str(old).unwrap();
        assert_eq!(back.groups_of("a"), [Arc::from("sig")]);
    }
}
