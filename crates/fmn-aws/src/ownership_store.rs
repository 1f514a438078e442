//! Ownership in the ownership table.
//!
//! Items (`pk`, `sk`): `artifact#<kind>/<name>`, `owners` with `users` and `groups` lists;
//! `group#<name>`, `members` with `members`; `accounts#<bucket>`, `fas` with `accounts`, the
//! JSON of the FAS accounts of one bucket (`fmn_core::directory`); `meta`, `version`: bumped by
//! every import and by every sync or bus update that changed something, so a warm match
//! function knows to reload; `meta`, `synced`: when the last sync finished (`at`, seconds) and
//! `pending` while a sync's writes are not all done (the next run bumps the version even if it
//! has nothing left to write).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Instant;

use aws_sdk_dynamodb::types::{DeleteRequest, PutRequest, WriteRequest};

use fmn_core::directory::{account_bucket, Account, Directory};
use fmn_core::fact_changes::FactChange;
use fmn_core::ownership::{Owners, Ownership};
use fmn_core::rules::{Artifact, ArtifactKind};

use aws_sdk_dynamodb::types::AttributeValue;

use crate::dynamo::{self, get_list, get_n, get_s, list, n, s, DynamoError, Item, LoadTiming};

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

const ACCOUNTS_PREFIX: &str = "accounts#";
/// The bus log: every change the bus announced (`change`: a [`FactChange`] as JSON), under
/// `sk` = the milliseconds it was applied at (16 digits) and a sequence number. A full sync
/// reads its sources over minutes and writes what they said then, which would undo a change
/// the bus announced meanwhile until the next sync; so a sync replays the changes logged since
/// it started reading, and removes the older ones (its sources have them).
const BUS_LOG_PK: &str = "buslog";
const SYNCED_SK: &str = "synced";

fn accounts_pk(bucket: u16) -> String {
    format!("{ACCOUNTS_PREFIX}{bucket:04}")
}

/// What the table holds, read at one version.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    pub ownership: Ownership,
    pub directory: Directory,
    /// When the last full sync finished (seconds since the epoch).
    pub synced_at: Option<u64>,
    pub version: u64,
}

/// What a sync should make the table hold; a part left None is not touched.
#[derive(Debug, Clone, Copy, Default)]
pub struct SyncTarget<'a> {
    pub artifacts: Option<&'a BTreeMap<Artifact, Owners>>,
    pub groups: Option<&'a BTreeMap<String, Vec<String>>>,
    pub directory: Option<&'a Directory>,
    /// When the sources were first read (milliseconds since the epoch): bus changes logged
    /// since are applied again over this data. None: the data is not from the sources (an
    /// import), the log is left alone.
    pub read_since_ms: Option<u64>,
}

/// What a sync wrote (only what differed from the table).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SyncReport {
    pub artifacts_written: usize,
    pub artifacts_removed: usize,
    pub groups_written: usize,
    pub groups_removed: usize,
    pub account_buckets_written: usize,
    pub account_buckets_removed: usize,
    /// Items already as wanted: not written.
    pub unchanged: usize,
    /// Bus changes logged while the sources were read, applied again after the writes, and
    /// the ones of them that changed the table (the sync had undone them).
    pub bus_changes_replayed: usize,
    pub bus_changes_restored: usize,
    /// Accounts the table held that the target's directory no longer has (deleted from FAS).
    pub accounts_gone: Vec<String>,
    /// Write units the data writes consumed (a put: one per started KiB; a delete: one).
    pub write_units: u64,
    /// The new version, when something changed (or a crashed run's writes were pending).
    pub version: Option<u64>,
}

impl SyncReport {
    pub fn items_written(&self) -> usize {
        self.artifacts_written
            + self.artifacts_removed
            + self.groups_written
            + self.groups_removed
            + self.account_buckets_written
            + self.account_buckets_removed
    }
}

fn artifact_item(artifact: &Artifact, owners: &Owners) -> Item {
    Item::from([
        ("pk".to_string(), s(artifact_pk(artifact))),
        ("sk".to_string(), s("owners")),
        ("users".to_string(), list(&owners.users)),
        ("groups".to_string(), list(&owners.groups)),
    ])
}

fn group_item(group: &str, members: &[String]) -> Item {
    Item::from([
        ("pk".to_string(), s(format!("group#{group}"))),
        ("sk".to_string(), s("members")),
        ("members".to_string(), list(members)),
    ])
}

fn accounts_item(bucket: u16, json: &str) -> Item {
    Item::from([
        ("pk".to_string(), s(accounts_pk(bucket))),
        ("sk".to_string(), s("fas")),
        ("accounts".to_string(), s(json)),
    ])
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
        let (loaded, timing) = self.load_everything_timed().await?;
        Ok((loaded.ownership, loaded.version, timing))
    }

    /// Ownership, the accounts and the last sync's time, with the version they were read at.
    pub async fn load_everything(&self) -> Result<Loaded, DynamoError> {
        Ok(self.load_everything_timed().await?.0)
    }

    /// [`OwnershipStore::load_everything`] with its timing (one scan of the table).
    pub async fn load_everything_timed(&self) -> Result<(Loaded, LoadTiming), DynamoError> {
        let started = Instant::now();
        let version = self.current_version().await?;
        let items = dynamo::scan_all(&self.client, &self.table).await?;
        let read = started.elapsed();
        let started = Instant::now();
        let mut loaded = Loaded {
            version,
            ..Loaded::default()
        };
        for item in &items {
            let Some(pk) = get_s(item, "pk") else {
                continue;
            };
            if let Some(a) = parse_artifact_pk(pk) {
                loaded.ownership.set_owners(
                    a,
                    Owners {
                        users: get_list(item, "users"),
                        groups: get_list(item, "groups"),
                    },
                );
            } else if let Some(g) = pk.strip_prefix("group#") {
                loaded.ownership.set_members(g, get_list(item, "members"));
            } else if pk.starts_with(ACCOUNTS_PREFIX) {
                let json = get_s(item, "accounts").unwrap_or("{}");
                if let Err(e) = loaded.directory.extend_from_bucket(json) {
                    return Err(DynamoError::Malformed {
                        table: self.table.clone(),
                        key: pk.to_string(),
                        reason: format!("accounts are not readable: {e}"),
                    });
                }
            } else if pk == "meta" && get_s(item, "sk") == Some(SYNCED_SK) {
                loaded.synced_at = get_n(item, "at");
            }
        }
        let timing = LoadTiming {
            read,
            decode: started.elapsed(),
            items: items.len(),
        };
        Ok((loaded, timing))
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

    /// Makes the table hold `target`, writing only the items that differ (compared with what
    /// one scan read) and removing those no longer wanted, `page` writes at a time
    /// (`progress(done, total)` after each). The version is bumped once at the end if anything
    /// changed. A run that stops part-way leaves `pending` set: the next run writes only what
    /// is still different and bumps the version even if that is nothing.
    pub async fn sync(
        &self,
        target: SyncTarget<'_>,
        page: usize,
        mut progress: impl FnMut(usize, usize),
    ) -> Result<SyncReport, DynamoError> {
        let mut report = SyncReport::default();
        let existing: HashMap<String, Item> = dynamo::scan_all(&self.client, &self.table)
            .await?
            .into_iter()
            .filter_map(|item| Some((key_string(&item)?, item)))
            .collect();
        let pending = existing
            .get("meta\u{0}synced")
            .is_some_and(|i| matches!(i.get("pending"), Some(AttributeValue::Bool(true))));

        #[derive(Clone, Copy)]
        enum Part {
            Artifact,
            Group,
            Accounts,
        }
        let mut wanted: Vec<(Part, Item)> = Vec::new();
        let mut prefixes: Vec<(Part, &str)> = Vec::new();
        if let Some(artifacts) = target.artifacts {
            prefixes.push((Part::Artifact, "artifact#"));
            wanted.extend(
                artifacts
                    .iter()
                    .map(|(a, o)| (Part::Artifact, artifact_item(a, o))),
            );
        }
        if let Some(groups) = target.groups {
            prefixes.push((Part::Group, "group#"));
            wanted.extend(groups.iter().map(|(g, m)| (Part::Group, group_item(g, m))));
        }
        if let Some(directory) = target.directory {
            for (key, item) in &existing {
                if !key.starts_with(ACCOUNTS_PREFIX) {
                    continue;
                }
                // An unreadable bucket is rewritten below; its names cannot be compared.
                let mut before = Directory::new();
                if before
                    .extend_from_bucket(get_s(item, "accounts").unwrap_or("{}"))
                    .is_ok()
                {
                    report.accounts_gone.extend(
                        before
                            .iter()
                            .filter(|(name, _)| directory.get(name).is_none())
                            .map(|(name, _)| name.clone()),
                    );
                }
            }
            report.accounts_gone.sort();
            prefixes.push((Part::Accounts, ACCOUNTS_PREFIX));
            wanted.extend(
                directory
                    .buckets()
                    .iter()
                    .map(|(b, json)| (Part::Accounts, accounts_item(*b, json))),
            );
        }
        let mut writes: Vec<WriteRequest> = Vec::new();
        let mut kept: HashSet<String> = HashSet::new();
        for (part, item) in wanted {
            let key = key_string(&item).expect("built with a key");
            let same = existing.get(&key) == Some(&item);
            kept.insert(key);
            if same {
                report.unchanged += 1;
                continue;
            }
            report.write_units += dynamo::write_units(&item);
            match part {
                Part::Artifact => report.artifacts_written += 1,
                Part::Group => report.groups_written += 1,
                Part::Accounts => report.account_buckets_written += 1,
            }
            let put = PutRequest::builder()
                .set_item(Some(item))
                .build()
                .expect("item set");
            writes.push(WriteRequest::builder().put_request(put).build());
        }
        for (key, item) in &existing {
            let Some(pk) = get_s(item, "pk") else {
                continue;
            };
            let Some((part, _)) = prefixes.iter().find(|(_, p)| pk.starts_with(p)) else {
                continue;
            };
            if kept.contains(key) {
                continue;
            }
            match part {
                Part::Artifact => report.artifacts_removed += 1,
                Part::Group => report.groups_removed += 1,
                Part::Accounts => report.account_buckets_removed += 1,
            }
            report.write_units += 1;
            let delete = DeleteRequest::builder()
                .key("pk", item["pk"].clone())
                .key("sk", item["sk"].clone())
                .build()
                .expect("key set");
            writes.push(WriteRequest::builder().delete_request(delete).build());
        }
        let total = writes.len();
        if total > 0 {
            self.mark_synced(true).await?;
        }
        let mut done = 0;
        while !writes.is_empty() {
            let rest = writes.split_off(writes.len().min(page.max(1)));
            let chunk = std::mem::replace(&mut writes, rest);
            done += chunk.len();
            dynamo::batch_write(&self.client, &self.table, chunk).await?;
            progress(done, total);
        }
        if let Some(since) = target.read_since_ms {
            self.replay_bus_log(since, &mut report).await?;
        }
        if total > 0 || pending || report.bus_changes_restored > 0 {
            report.version = Some(dynamo::bump_version_counter(&self.client, &self.table).await?);
        }
        self.mark_synced(false).await?;
        Ok(report)
    }

    /// Applies again the bus changes logged since `since_ms` (the sync's writes may have undone
    /// them) and deletes the older entries, which the sync's sources include.
    async fn replay_bus_log(
        &self,
        since_ms: u64,
        report: &mut SyncReport,
    ) -> Result<(), DynamoError> {
        let mut old = Vec::new();
        for item in dynamo::query_after(&self.client, &self.table, BUS_LOG_PK, None).await? {
            let Some(sk) = get_s(&item, "sk") else {
                continue;
            };
            let at: u64 = sk
                .split('#')
                .next()
                .and_then(|t| t.parse().ok())
                .unwrap_or(0);
            if at < since_ms {
                let delete = DeleteRequest::builder()
                    .key("pk", s(BUS_LOG_PK))
                    .key("sk", s(sk))
                    .build()
                    .expect("key set");
                old.push(WriteRequest::builder().delete_request(delete).build());
                continue;
            }
            let change: FactChange =
                match serde_json::from_str(get_s(&item, "change").unwrap_or("")) {
                    Ok(change) => change,
                    Err(e) => {
                        tracing::warn!(sk, error = %e, "an unreadable bus log entry; skipped");
                        continue;
                    }
                };
            report.bus_changes_replayed += 1;
            if self.apply_one(&change).await? {
                report.bus_changes_restored += 1;
                tracing::info!(change = %change.describe(), "a bus change newer than the sync's sources restored");
            }
        }
        if !old.is_empty() {
            dynamo::batch_write(&self.client, &self.table, old).await?;
        }
        Ok(())
    }

    /// Logs `changes` (see [`BUS_LOG_PK`]) before they are applied, so a sync reading its
    /// sources meanwhile applies them again after writing.
    async fn log_bus_changes(&self, changes: &[FactChange]) -> Result<(), DynamoError> {
        let at = dynamo::now_millis();
        // Distinct from another function instance's entries of the same millisecond.
        let run: u64 = rand::random();
        let writes = changes
            .iter()
            .enumerate()
            .map(|(i, change)| {
                let item = Item::from([
                    ("pk".to_string(), s(BUS_LOG_PK)),
                    ("sk".to_string(), s(format!("{at:016}#{run:016x}#{i:04}"))),
                    (
                        "change".to_string(),
                        s(serde_json::to_string(change).expect("a change serialises")),
                    ),
                ]);
                let put = PutRequest::builder()
                    .set_item(Some(item))
                    .build()
                    .expect("item set");
                WriteRequest::builder().put_request(put).build()
            })
            .collect();
        dynamo::batch_write(&self.client, &self.table, writes).await
    }

    /// Applies changes announced on the bus (a [`FactChange::RefreshAccount`] must have been
    /// resolved into a [`FactChange::SetAccount`] first; one left is skipped). Each item is read
    /// and written only if the change alters it; the version is bumped once if anything
    /// changed, and returned.
    pub async fn apply(&self, changes: &[FactChange]) -> Result<Option<u64>, DynamoError> {
        let resolved: Vec<FactChange> = changes
            .iter()
            .filter(|c| !matches!(c, FactChange::RefreshAccount { .. }))
            .cloned()
            .collect();
        if !resolved.is_empty() {
            self.log_bus_changes(&resolved).await?;
        }
        let mut changed = false;
        for change in changes {
            changed |= self.apply_one(change).await?;
        }
        if !changed {
            return Ok(None);
        }
        Ok(Some(
            dynamo::bump_version_counter(&self.client, &self.table).await?,
        ))
    }

    async fn apply_one(&self, change: &FactChange) -> Result<bool, DynamoError> {
        match change {
            FactChange::SetOwners { artifact, owners } => {
                self.put_if_changed(artifact_item(artifact, owners)).await
            }
            FactChange::RemoveArtifact { artifact } => {
                let out = self
                    .client
                    .delete_item()
                    .table_name(&self.table)
                    .key("pk", s(artifact_pk(artifact)))
                    .key("sk", s("owners"))
                    .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
                    .send()
                    .await
                    .map_err(|e| DynamoError::call("DeleteItem", &self.table, e))?;
                Ok(out.attributes.is_some_and(|a| !a.is_empty()))
            }
            FactChange::AddMember { group, user } | FactChange::RemoveMember { group, user } => {
                let pk = format!("group#{group}");
                let mut members = self
                    .get(&pk, "members")
                    .await?
                    .map(|i| get_list(&i, "members"))
                    .unwrap_or_default();
                if matches!(change, FactChange::AddMember { .. }) {
                    members.push(user.clone());
                } else {
                    members.retain(|m| m != user);
                }
                members.sort();
                members.dedup();
                self.put_if_changed(group_item(group, &members)).await
            }
            FactChange::SetAccount { user, account } => {
                let bucket = account_bucket(user);
                let mut directory = self.bucket_directory(bucket).await?;
                match account {
                    Some(a) => directory.insert(user.clone(), a.clone()),
                    None => {
                        directory.remove(user);
                    }
                }
                let json = directory.buckets().remove(&bucket).unwrap_or("{}".into());
                self.put_if_changed(accounts_item(bucket, &json)).await
            }
            FactChange::RefreshAccount { user } => {
                tracing::warn!(
                    user,
                    "an account refresh reached the store unresolved; skipped"
                );
                Ok(false)
            }
        }
    }

    /// `user`'s FAS account as the last sync or bus update stored it (one read of its bucket).
    pub async fn account(&self, user: &str) -> Result<Option<Account>, DynamoError> {
        let mut directory = self.bucket_directory(account_bucket(user)).await?;
        Ok(directory.remove(user))
    }

    /// The accounts of one bucket (none when the bucket was never written).
    async fn bucket_directory(&self, bucket: u16) -> Result<Directory, DynamoError> {
        let mut directory = Directory::new();
        if let Some(item) = self.get(&accounts_pk(bucket), "fas").await? {
            let json = get_s(&item, "accounts").unwrap_or("{}");
            directory
                .extend_from_bucket(json)
                .map_err(|e| DynamoError::Malformed {
                    table: self.table.clone(),
                    key: accounts_pk(bucket),
                    reason: format!("accounts are not readable: {e}"),
                })?;
        }
        Ok(directory)
    }

    /// The members of one group as stored (empty for a group not stored).
    pub async fn members(&self, group: &str) -> Result<Vec<String>, DynamoError> {
        Ok(self
            .get(&format!("group#{group}"), "members")
            .await?
            .map(|i| get_list(&i, "members"))
            .unwrap_or_default())
    }

    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, DynamoError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| DynamoError::call("GetItem", &self.table, e))?;
        Ok(out.item)
    }

    /// Puts `item` unless the table holds it already; whether it wrote.
    async fn put_if_changed(&self, item: Item) -> Result<bool, DynamoError> {
        let pk = get_s(&item, "pk").unwrap_or_default().to_string();
        let sk = get_s(&item, "sk").unwrap_or_default().to_string();
        if self.get(&pk, &sk).await?.as_ref() == Some(&item) {
            return Ok(false);
        }
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| DynamoError::call("PutItem", &self.table, e))?;
        Ok(true)
    }

    /// Records the sync's state: `pending` before its writes; done, with the time, after.
    async fn mark_synced(&self, pending: bool) -> Result<(), DynamoError> {
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s("meta"))
            .key("sk", s(SYNCED_SK))
            .expression_attribute_values(":p", AttributeValue::Bool(pending));
        update = if pending {
            update.update_expression("SET pending = :p")
        } else {
            update
                .update_expression("SET pending = :p, #at = :at")
                .expression_attribute_names("#at", "at")
                .expression_attribute_values(":at", n(dynamo::now_secs()))
        };
        update
            .send()
            .await
            .map_err(|e| DynamoError::call("UpdateItem", &self.table, e))?;
        Ok(())
    }
}

/// An item's key as one string (`pk`, NUL, `sk`).
fn key_string(item: &Item) -> Option<String> {
    Some(format!("{}\u{0}{}", get_s(item, "pk")?, get_s(item, "sk")?))
}
