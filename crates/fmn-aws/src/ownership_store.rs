//! Ownership in the ownership table.
//!
//! Items (`pk`, `sk`): `artifact#<kind>/<name>`, `owners` with `users` and `groups` lists;
//! `group#<name>`, `members` with `members`; `meta`, `version`: bumped by every import, so a
//! warm match function knows to reload.

use std::collections::{BTreeMap, HashSet};
use std::time::Instant;

use aws_sdk_dynamodb::types::{DeleteRequest, PutRequest, WriteRequest};

use fmn_core::ownership::{Owners, Ownership};
use fmn_core::rules::{Artifact, ArtifactKind};

use crate::dynamo::{self, get_list, get_s, list, s, DynamoError, Item, LoadTiming};

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub artifacts_written: usize,
    pub artifacts_removed: usize,
    pub groups_written: usize,
    pub groups_removed: usize,
    pub version: u64,
}

fn artifact_pk(a: &Artifact) -> String {
    format!("artifact#{}/{}", a.kind.as_str(), a.name)
}

fn parse_artifact_pk(pk: &str) -> Option<Artifact> {
    let rest = pk.strip_prefix("artifact#")?;
    let (kind, name) = rest.split_once('/')?;
    Some(Artifact::new(ArtifactKind::from_namespace(kind)?, name))
}

#[derive(Clone, Debug)]
pub struct OwnershipStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl OwnershipStore {
    pub fn from_clients(clients: &crate::AwsClients) -> Self {
        let table = clients.table(crate::TableName::Ownership);
        Self {
            table,
            client: clients.dynamodb.clone(),
        }
    }

    /// The import counter (0: never imported).
    pub async fn current_version(&self) -> Result<u64, DynamoError> {
        dynamo::read_version_counter(&self.client, &self.table).await
    }

    /// Everything, with the version it was read at.
    pub async fn load(&self) -> Result<(Ownership, u64), DynamoError> {
        let (ownership, version, _) = self.load_timed().await?;
        Ok((ownership, version))
    }

    /// [`OwnershipStore::load`], with how long the scans and the decoding took.
    pub async fn load_timed(&self) -> Result<(Ownership, u64, LoadTiming), DynamoError> {
        let started = Instant::now();
        let version = self.current_version().await?;
        let artifacts = dynamo::scan_prefix(&self.client, &self.table, "artifact#").await?;
        let groups = dynamo::scan_prefix(&self.client, &self.table, "group#").await?;
        let read = started.elapsed();
        let started = Instant::now();
        let mut ownership = Ownership::new();
        for item in &artifacts {
            if let Some(a) = get_s(item, "pk").and_then(parse_artifact_pk) {
                ownership.set_owners(
                    a,
                    Owners {
                        users: get_list(item, "users"),
                        groups: get_list(item, "groups"),
                    },
                );
            }
        }
        for item in &groups {
            if let Some(g) = get_s(item, "pk").and_then(|p| p.strip_prefix("group#")) {
                ownership.set_members(g, get_list(item, "members"));
            }
        }
        let timing = LoadTiming {
            read,
            decode: started.elapsed(),
            items: artifacts.len() + groups.len(),
        };
        Ok((ownership, version, timing))
    }

    /// Replaces the stored artifacts (when `artifacts` is given) and groups (when `groups` is
    /// given) with these, removing the ones no longer listed, then bumps the version.
    /// `progress` is told how many writes are done out of how many.
    pub async fn import(
        &self,
        artifacts: Option<&BTreeMap<Artifact, Owners>>,
        groups: Option<&BTreeMap<String, Vec<String>>>,
        mut progress: impl FnMut(usize, usize),
    ) -> Result<ImportReport, DynamoError> {
        let mut report = ImportReport::default();
        let mut writes: Vec<WriteRequest> = Vec::new();
        let key_of = |item: &Item| -> Option<(String, String)> {
            Some((
                get_s(item, "pk")?.to_string(),
                get_s(item, "sk")?.to_string(),
            ))
        };
        let delete = |pk: String, sk: String| {
            WriteRequest::builder()
                .delete_request(
                    DeleteRequest::builder()
                        .key("pk", s(pk))
                        .key("sk", s(sk))
                        .build()
                        .expect("key set"),
                )
                .build()
        };
        if let Some(artifacts) = artifacts {
            let wanted: HashSet<String> = artifacts.keys().map(artifact_pk).collect();
            for item in dynamo::scan_prefix(&self.client, &self.table, "artifact#").await? {
                if let Some((pk, sk)) = key_of(&item) {
                    if !wanted.contains(&pk) {
                        writes.push(delete(pk, sk));
                        report.artifacts_removed += 1;
                    }
                }
            }
            for (artifact, owners) in artifacts {
                let put = PutRequest::builder()
                    .item("pk", s(artifact_pk(artifact)))
                    .item("sk", s("owners"))
                    .item("users", list(&owners.users))
                    .item("groups", list(&owners.groups))
                    .build()
                    .expect("item set");
                writes.push(WriteRequest::builder().put_request(put).build());
                report.artifacts_written += 1;
            }
        }
        if let Some(groups) = groups {
            for item in dynamo::scan_prefix(&self.client, &self.table, "group#").await? {
                if let Some((pk, sk)) = key_of(&item) {
                    let name = pk.trim_start_matches("group#");
                    if !groups.contains_key(name) {
                        writes.push(delete(pk, sk));
                        report.groups_removed += 1;
                    }
                }
            }
            for (group, members) in groups {
                let put = PutRequest::builder()
                    .item("pk", s(format!("group#{group}")))
                    .item("sk", s("members"))
                    .item("members", list(members))
                    .build()
                    .expect("item set");
                writes.push(WriteRequest::builder().put_request(put).build());
                report.groups_written += 1;
            }
        }
        let total = writes.len();
        let mut done = 0;
        // Chunks of 500 so progress shows on big imports (25,000 packages is 1,000 calls).
        while !writes.is_empty() {
            let rest = writes.split_off(writes.len().min(500));
            let chunk = std::mem::replace(&mut writes, rest);
            done += chunk.len();
            dynamo::batch_write(&self.client, &self.table, chunk).await?;
            progress(done, total);
        }
        report.version = dynamo::bump_version_counter(&self.client, &self.table).await?;
        Ok(report)
    }
}
