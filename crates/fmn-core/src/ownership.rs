//! Who maintains what: dist-git artifacts → owner users and groups, and groups → members.
//!
//! Imported from the JSON that Fedora's dist-git publishes at
//! `https://src.fedoraproject.org/extras/pagure_owner_alias.json`: an object per namespace
//! (`rpms`, `container`, `modules`, `flatpaks`; others are skipped) mapping each artifact name
//! to its maintainers; a maintainer written `@name` is a group. Group members come from a
//! simple `{"group": ["member", …]}` object.

use std::collections::{BTreeMap, BTreeSet, HashMap};

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
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Ownership {
    #[serde(with = "artifact_pairs")]
    artifacts: HashMap<Artifact, Owners>,
    members: HashMap<String, Vec<String>>,
    user_groups: HashMap<String, Vec<String>>,
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
    pub fn set_members(&mut self, group: impl Into<String>, members: Vec<String>) {
        let group = group.into();
        if let Some(old) = self.members.get(&group) {
            for user in old {
                if let Some(groups) = self.user_groups.get_mut(user) {
                    groups.retain(|g| *g != group);
                }
            }
        }
        for user in &members {
            let groups = self.user_groups.entry(user.clone()).or_default();
            if !groups.contains(&group) {
                groups.push(group.clone());
            }
        }
        self.members.insert(group, members);
    }

    /// An artifact's maintainers.
    pub fn owners(&self, artifact: &Artifact) -> Option<&Owners> {
        self.artifacts.get(artifact)
    }

    /// The groups a user belongs to.
    pub fn groups_of(&self, user: &str) -> &[String] {
        self.user_groups.get(user).map_or(&[], Vec::as_slice)
    }

    /// A group's members.
    pub fn members(&self, group: &str) -> &[String] {
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
    pub fn groups(&self) -> impl Iterator<Item = (&String, &Vec<String>)> {
        self.members.iter()
    }
}

/// The artifact map as a list of pairs (a JSON object's keys must be strings).
mod artifact_pairs {
    use std::collections::HashMap;

    use serde::{Deserialize, Deserializer, Serializer};

    use super::Owners;
    use crate::rules::Artifact;

    pub fn serialize<S: Serializer>(
        map: &HashMap<Artifact, Owners>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_seq(map.iter())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<HashMap<Artifact, Owners>, D::Error> {
        let pairs = Vec::<(Artifact, Owners)>::deserialize(d)?;
        Ok(pairs.into_iter().collect())
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
        o.set_members("sig", vec!["a".into(), "b".into()]);
        assert_eq!(o.groups_of("a"), ["sig"]);
        o.set_members("sig", vec!["b".into()]);
        assert!(o.groups_of("a").is_empty());
        assert_eq!(o.members("sig"), ["b"]);
    }
}
