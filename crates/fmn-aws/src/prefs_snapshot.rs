//! A compact snapshot of every user's preferences, the ownership and the accounts synced from
//! FAS (everything a cold match function reads), so it reads a few large items instead of
//! scanning both tables (242 s at 100,000 users on
//! DynamoDB Local, ~250 MB of items).
//!
//! Kept in the preferences table (the match function already reads and writes it; no new
//! resource, and ~10 MB at 100,000 users is far from needing S3):
//! - `snapshot`, `current`: the manifest: format, the preferences and ownership version
//!   counters the snapshot was taken at, when, its chunks' partition, their number, size and
//!   SHA-256.
//! - `snapshot#<prefs version>-<ownership version>-<random>`, `<chunk number, 6 digits>`: the
//!   body in chunks of [`CHUNK_BYTES`] (`data`, binary), expiring with the change log.
//!
//! The body is gzip'd JSON (see [`SnapshotBuilder`]): each distinct rule list once (a hundred
//! thousand users' default filters share a handful), the ownership, the alias map made from
//! the accounts (what the function keeps of them) and the last sync's time, then the users,
//! their filters pointing at the rule lists, decoded one at a time straight into the index (each chunk let go once inflated, each rule list moved to its
//! last filter: a cold start holds neither beside the index it builds).
//!
//! A snapshot is never trusted blindly: it is used only when its format is known, its
//! checksum holds, it is younger than [`MAX_AGE`] (so every change after it is still in the
//! change log, kept a week) and at most [`MAX_LAG`] changes behind; the cache then catches up
//! through the change log exactly as after a scan, and reloads the ownership table (with the
//! accounts) when its counter moved past the snapshot's (see [`crate::prefs_cache`]).
//!
//! Written by the match function after each full load (a cold start that found no usable
//! snapshot, or a warm one too far behind), chunks first and the manifest last, and only over
//! an older manifest: a reader never sees a manifest whose chunks are missing.

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::time::Duration;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use fmn_core::meta::Aliases;
use fmn_core::ownership::Ownership;
use fmn_core::prefs::{Destination, Filter, UserPrefs};
use fmn_core::rules::Rule;

use crate::dynamo::{self, get_n, get_s, n, s, DynamoError, Item};
use crate::prefs_store::CHANGE_LOG_TTL_SECS;

/// The body's format; a snapshot in any other is not read (a full load replaces it). 2: the
/// head holds the FAS accounts and the last sync's time (1 did not). 3: the alias map made
/// from the accounts and their number instead of the accounts (decoding 100,000 accounts and
/// making their map took a cold start ~0.15 s).
pub const SNAPSHOT_FORMAT: u64 = 3;
/// Bytes of body per chunk item (under DynamoDB's 400 KB item limit with the key).
pub const CHUNK_BYTES: usize = 350 * 1024;
/// A snapshot older than this is not used: the change log since it must still be complete
/// (entries live [`CHANGE_LOG_TTL_SECS`]), and a full load a day refreshes it.
pub const MAX_AGE: Duration = Duration::from_secs(24 * 3600);
/// A snapshot more changes behind than this is not used: catching up reads each changed user.
pub const MAX_LAG: u64 = 2_000;

const _: () = assert!(MAX_AGE.as_secs() * 2 < CHANGE_LOG_TTL_SECS);

const MANIFEST_PK: &str = "snapshot";
const MANIFEST_SK: &str = "current";
const CHUNK_PK_PREFIX: &str = "snapshot#";

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error(transparent)]
    Dynamo(#[from] DynamoError),
    #[error("snapshot format {0} is unknown (this build reads {SNAPSHOT_FORMAT})")]
    UnknownFormat(u64),
    #[error("snapshot is corrupt: {0}")]
    Corrupt(String),
}

/// What the manifest says of the current snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub format: u64,
    /// The preferences table's counter, read before the load it was made from.
    pub prefs_version: u64,
    /// The ownership table's counter, read before the load it was made from.
    pub ownership_version: u64,
    /// Seconds since the epoch, when the preferences counter was read.
    pub taken_at: u64,
    /// The chunks' partition key.
    pub key: String,
    pub chunks: u64,
    pub bytes: u64,
    pub sha256: String,
    pub users: u64,
}

impl Manifest {
    fn from_item(item: &Item) -> Result<Self, SnapshotError> {
        let field = |name: &str| {
            get_n(item, name)
                .ok_or_else(|| SnapshotError::Corrupt(format!("manifest has no `{name}`")))
        };
        let text = |name: &str| {
            get_s(item, name)
                .map(str::to_string)
                .ok_or_else(|| SnapshotError::Corrupt(format!("manifest has no `{name}`")))
        };
        Ok(Self {
            format: field("format")?,
            prefs_version: field("prefs_version")?,
            ownership_version: field("ownership_version")?,
            taken_at: field("taken_at")?,
            key: text("key")?,
            chunks: field("chunks")?,
            bytes: field("bytes")?,
            sha256: text("sha256")?,
            users: field("users")?,
        })
    }

    fn to_item(&self) -> Item {
        Item::from([
            ("pk".to_string(), s(MANIFEST_PK)),
            ("sk".to_string(), s(MANIFEST_SK)),
            ("format".to_string(), n(self.format)),
            ("prefs_version".to_string(), n(self.prefs_version)),
            ("ownership_version".to_string(), n(self.ownership_version)),
            ("taken_at".to_string(), n(self.taken_at)),
            ("key".to_string(), s(&self.key)),
            ("chunks".to_string(), n(self.chunks)),
            ("bytes".to_string(), n(self.bytes)),
            ("sha256".to_string(), s(&self.sha256)),
            ("users".to_string(), n(self.users)),
        ])
    }

    /// Seconds since it was taken.
    pub fn age(&self, now_secs: u64) -> Duration {
        Duration::from_secs(now_secs.saturating_sub(self.taken_at))
    }
}

/// A filter with its rules replaced by the index of its rule list.
#[derive(Serialize, Deserialize)]
struct SnapFilter {
    id: String,
    name: String,
    enabled: bool,
    oneshot: bool,
    destinations: Vec<String>,
    rules: u32,
    urgent: bool,
    max_per_hour: Option<u32>,
}

#[derive(Serialize, Deserialize)]
struct SnapUser {
    name: String,
    enabled: bool,
    bot: bool,
    destinations: Vec<Destination>,
    filters: Vec<SnapFilter>,
    destination_seq: u64,
    version: u64,
    time_zone: Option<String>,
}

/// What comes before the users: what they point at, and the ownership table's content.
#[derive(Deserialize)]
struct Head {
    rule_lists: Vec<Vec<Rule>>,
    /// How many filters point at each rule list: the reader hands a list's last use its rules
    /// instead of a copy, so no list outlives its users (absent from older snapshots: every
    /// use is then a copy).
    #[serde(default)]
    rule_list_uses: Vec<u32>,
    ownership: Ownership,
    aliases: Aliases,
    accounts: usize,
    synced_at: Option<u64>,
}

#[derive(Serialize)]
struct HeadRef<'a> {
    rule_lists: &'a [Vec<Rule>],
    rule_list_uses: &'a [u32],
    ownership: &'a Ownership,
    aliases: &'a Aliases,
    accounts: usize,
    synced_at: Option<u64>,
}

/// What the ownership table held when the snapshot was taken (at the manifest's
/// `ownership_version`).
#[derive(Debug, Clone, Default)]
pub struct OwnershipFacts {
    pub ownership: Ownership,
    /// The alias map made from the accounts synced from FAS
    /// ([`fmn_core::directory::Directory::aliases`]).
    pub aliases: Aliases,
    /// How many accounts it was made from.
    pub accounts: usize,
    /// When the last sync finished (seconds since the epoch).
    pub synced_at: Option<u64>,
}

/// Writes a body as users arrive, straight into the compressor (a full load holds the
/// compressed snapshot, not its users twice).
///
/// Body: the head's length (8 bytes, little-endian), the head (gzip'd JSON: the distinct rule
/// lists, the ownership, the accounts' alias map and number, the last sync's time), then the
/// users (gzip'd JSON, one per line), read one at a time.
pub struct SnapshotBuilder {
    users_out: flate2::write::GzEncoder<Vec<u8>>,
    /// One user's line before it is compressed: serde writes token by token, and each small
    /// write straight into the compressor cost ~100 µs a user (11 s at 100,000 users).
    line: Vec<u8>,
    list_ids: HashMap<Vec<Rule>, u32>,
    rule_lists: Vec<Vec<Rule>>,
    rule_list_uses: Vec<u32>,
    users: u64,
}

impl Default for SnapshotBuilder {
    fn default() -> Self {
        Self::new()
    }
}

fn gzip() -> flate2::write::GzEncoder<Vec<u8>> {
    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast())
}

impl SnapshotBuilder {
    pub fn new() -> Self {
        Self {
            users_out: gzip(),
            line: Vec::with_capacity(4096),
            list_ids: HashMap::new(),
            rule_lists: Vec::new(),
            rule_list_uses: Vec::new(),
            users: 0,
        }
    }

    /// Adds one user (every field: a field added to the preferences must be added here).
    pub fn add(&mut self, prefs: &UserPrefs) {
        let UserPrefs {
            name,
            enabled,
            bot,
            destinations,
            filters,
            destination_seq,
            version,
            time_zone,
        } = prefs;
        let filters = filters
            .iter()
            .map(|f| {
                let Filter {
                    id,
                    name,
                    enabled,
                    oneshot,
                    destinations,
                    rules,
                    urgent,
                    max_per_hour,
                } = f;
                let rules = match self.list_ids.get(rules) {
                    Some(&i) => i,
                    None => {
                        let i = self.rule_lists.len() as u32;
                        self.rule_lists.push(rules.clone());
                        self.rule_list_uses.push(0);
                        self.list_ids.insert(rules.clone(), i);
                        i
                    }
                };
                self.rule_list_uses[rules as usize] += 1;
                SnapFilter {
                    id: id.clone(),
                    name: name.clone(),
                    enabled: *enabled,
                    oneshot: *oneshot,
                    destinations: destinations.clone(),
                    rules,
                    urgent: *urgent,
                    max_per_hour: *max_per_hour,
                }
            })
            .collect();
        let user = SnapUser {
            name: name.clone(),
            enabled: *enabled,
            bot: *bot,
            destinations: destinations.clone(),
            filters,
            destination_seq: *destination_seq,
            version: *version,
            time_zone: time_zone.clone(),
        };
        self.line.clear();
        serde_json::to_writer(&mut self.line, &user).expect("preferences serialise");
        self.line.push(b'\n');
        self.users_out
            .write_all(&self.line)
            .expect("writing to memory");
        self.users += 1;
    }

    pub fn users(&self) -> u64 {
        self.users
    }

    /// The compressed body, with the ownership table's content: the ownership, the alias map
    /// made from the accounts ([`fmn_core::directory::Directory::aliases`]) and their number,
    /// the last sync's time.
    pub fn finish(
        self,
        ownership: &Ownership,
        aliases: &Aliases,
        accounts: usize,
        synced_at: Option<u64>,
    ) -> Vec<u8> {
        let mut head = gzip();
        serde_json::to_writer(
            &mut head,
            &HeadRef {
                rule_lists: &self.rule_lists,
                rule_list_uses: &self.rule_list_uses,
                ownership,
                aliases,
                accounts,
                synced_at,
            },
        )
        .expect("writing to memory");
        let head = head.finish().expect("writing to memory");
        let users = self.users_out.finish().expect("writing to memory");
        let mut body = Vec::with_capacity(8 + head.len() + users.len());
        body.extend_from_slice(&(head.len() as u64).to_le_bytes());
        body.extend_from_slice(&head);
        body.extend_from_slice(&users);
        body
    }
}

/// A snapshot body as read from its chunks: each chunk is let go once it has been decoded, so
/// the compressed body is not held beside the index it becomes.
#[derive(Debug, Default)]
pub struct Body {
    chunks: std::collections::VecDeque<Vec<u8>>,
    /// Read so far of the first chunk.
    at: usize,
}

impl Body {
    pub fn new(chunks: impl IntoIterator<Item = Vec<u8>>) -> Self {
        Self {
            chunks: chunks.into_iter().collect(),
            at: 0,
        }
    }
}

impl std::io::Read for Body {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while let Some(chunk) = self.chunks.front() {
            if self.at < chunk.len() {
                let n = buf.len().min(chunk.len() - self.at);
                buf[..n].copy_from_slice(&chunk[self.at..self.at + n]);
                self.at += n;
                return Ok(n);
            }
            self.chunks.pop_front();
            self.at = 0;
        }
        Ok(0)
    }
}

/// A snapshot body being read: the head decoded, the users decoded one at a time.
pub struct Decoded<R> {
    head: Head,
    users: R,
}

impl<R: std::io::Read> Decoded<R> {
    /// Reads the head of a body (a [`Body`], or bytes in memory).
    pub fn decode(mut body: R) -> Result<Self, SnapshotError> {
        let corrupt = SnapshotError::Corrupt;
        let mut len = [0u8; 8];
        body.read_exact(&mut len)
            .map_err(|_| corrupt("shorter than its header".into()))?;
        let len = u64::from_le_bytes(len);
        let mut head = std::io::Read::take(&mut body, len);
        // Inflated whole, then parsed from the slice: parsing through the decompressor took a
        // byte at a time (0.29 s of a 100,000-user start, for 25,000 packages' ownership).
        let mut text = Vec::with_capacity((len as usize).min(8 << 20) * 8);
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&mut head), &mut text)
            .map_err(|e| corrupt(format!("head: {e}")))?;
        // The users begin where the head's length says, whatever follows its gzip stream.
        std::io::copy(&mut head, &mut std::io::sink())
            .map_err(|e| corrupt(format!("head: {e}")))?;
        if head.limit() > 0 {
            return Err(corrupt(format!("head of {len} bytes cut short")));
        }
        let head: Head =
            serde_json::from_slice(&text).map_err(|e| corrupt(format!("head: {e}")))?;
        if !head.rule_list_uses.is_empty() && head.rule_list_uses.len() != head.rule_lists.len() {
            return Err(corrupt(format!(
                "{} rule list use counts for {} rule lists",
                head.rule_list_uses.len(),
                head.rule_lists.len()
            )));
        }
        Ok(Self { head, users: body })
    }

    /// The ownership table's content, and each user's preferences, decoded as the iterator is
    /// consumed (an error ends it: the snapshot is then not to be used).
    pub fn into_parts(
        self,
    ) -> (
        OwnershipFacts,
        impl Iterator<Item = Result<UserPrefs, SnapshotError>>,
    ) {
        let Head {
            rule_lists,
            rule_list_uses,
            ownership,
            aliases,
            accounts,
            synced_at,
        } = self.head;
        let facts = OwnershipFacts {
            ownership,
            aliases,
            accounts,
            synced_at,
        };
        let mut rule_lists = RuleLists {
            uses: rule_list_uses,
            lists: rule_lists.into_iter().map(Some).collect(),
        };
        let mut reader =
            std::io::BufReader::with_capacity(256 * 1024, flate2::read::GzDecoder::new(self.users));
        // A line at a time into one buffer, parsed from the slice: serde_json's reader-based
        // parser takes a byte at a time and was most of a snapshot start's decoding.
        let mut line = Vec::with_capacity(4096);
        let users = std::iter::from_fn(move || loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) => return None,
                Ok(_) if line.trim_ascii().is_empty() => continue,
                Ok(_) => {
                    return Some(
                        serde_json::from_slice::<SnapUser>(&line)
                            .map_err(|e| SnapshotError::Corrupt(format!("users: {e}"))),
                    )
                }
                Err(e) => return Some(Err(SnapshotError::Corrupt(format!("users: {e}")))),
            }
        })
        .map(move |u| {
            let u = u?;
            let filters = u
                .filters
                .into_iter()
                .map(|f| {
                    Ok(Filter {
                        rules: rule_lists.take(f.rules)?,
                        id: f.id,
                        name: f.name,
                        enabled: f.enabled,
                        oneshot: f.oneshot,
                        destinations: f.destinations,
                        urgent: f.urgent,
                        max_per_hour: f.max_per_hour,
                    })
                })
                .collect::<Result<_, SnapshotError>>()?;
            Ok(UserPrefs {
                name: u.name,
                enabled: u.enabled,
                bot: u.bot,
                destinations: u.destinations,
                filters,
                destination_seq: u.destination_seq,
                version: u.version,
                time_zone: u.time_zone,
            })
        });
        (facts, users)
    }
}

/// The head's rule lists as the users are read: a copy for each use, the list itself for the
/// last one (by the head's counts; without counts, always a copy).
struct RuleLists {
    uses: Vec<u32>,
    lists: Vec<Option<Vec<Rule>>>,
}

impl RuleLists {
    fn take(&mut self, i: u32) -> Result<Vec<Rule>, SnapshotError> {
        let at = i as usize;
        let count = self.lists.len();
        let gone = || {
            SnapshotError::Corrupt(format!(
                "a filter names rule list {i} of {count}, or uses it more often than the head says"
            ))
        };
        let Some(uses) = self.uses.get_mut(at) else {
            return self.lists.get(at).and_then(Option::clone).ok_or_else(gone);
        };
        if *uses <= 1 {
            *uses = 0;
            return self.lists[at].take().ok_or_else(gone);
        }
        *uses -= 1;
        self.lists[at].clone().ok_or_else(gone)
    }
}

fn chunk_sk(i: u64) -> String {
    format!("{i:06}")
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The snapshot's items in the preferences table.
#[derive(Clone, Debug)]
pub struct SnapshotStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl SnapshotStore {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// The current manifest (None: no snapshot yet).
    pub async fn manifest(&self) -> Result<Option<Manifest>, SnapshotError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(MANIFEST_PK))
            .key("sk", s(MANIFEST_SK))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| DynamoError::call("GetItem", &self.table, e))?;
        out.item.as_ref().map(Manifest::from_item).transpose()
    }

    /// The body the manifest describes, its chunks checked against it.
    pub async fn read(&self, manifest: &Manifest) -> Result<Body, SnapshotError> {
        if manifest.format != SNAPSHOT_FORMAT {
            return Err(SnapshotError::UnknownFormat(manifest.format));
        }
        let items = dynamo::query_after(&self.client, &self.table, &manifest.key, None).await?;
        if items.len() as u64 != manifest.chunks {
            return Err(SnapshotError::Corrupt(format!(
                "{} chunks found, the manifest says {}",
                items.len(),
                manifest.chunks
            )));
        }
        let mut chunks = Vec::with_capacity(items.len());
        let mut sha = Sha256::new();
        let mut bytes = 0u64;
        for (i, mut item) in items.into_iter().enumerate() {
            if get_s(&item, "sk") != Some(chunk_sk(i as u64).as_str()) {
                return Err(SnapshotError::Corrupt(format!("chunk {i} is missing")));
            }
            match item.remove("data") {
                Some(AttributeValue::B(blob)) => {
                    let data = blob.into_inner();
                    sha.update(&data);
                    bytes += data.len() as u64;
                    chunks.push(data);
                }
                _ => return Err(SnapshotError::Corrupt(format!("chunk {i} has no data"))),
            }
        }
        if bytes != manifest.bytes || hex::encode(sha.finalize()) != manifest.sha256 {
            return Err(SnapshotError::Corrupt(
                "the chunks do not add up to the manifest's size and checksum".into(),
            ));
        }
        Ok(Body::new(chunks))
    }

    /// Stores `body` as the current snapshot unless a newer one is there already (then
    /// `Ok(None)`; its chunks are left to expire).
    pub async fn write(
        &self,
        body: &[u8],
        users: u64,
        prefs_version: u64,
        ownership_version: u64,
        taken_at: u64,
    ) -> Result<Option<Manifest>, SnapshotError> {
        let key = format!(
            "{CHUNK_PK_PREFIX}{prefs_version}-{ownership_version}-{:016x}",
            rand::random::<u64>()
        );
        let expires_at = taken_at + CHANGE_LOG_TTL_SECS;
        let chunks: Vec<WriteRequest> = body
            .chunks(CHUNK_BYTES)
            .enumerate()
            .map(|(i, data)| {
                let put = PutRequest::builder()
                    .item("pk", s(&key))
                    .item("sk", s(chunk_sk(i as u64)))
                    .item("data", AttributeValue::B(Blob::new(data)))
                    .item("expires_at", n(expires_at))
                    .build()
                    .expect("item set");
                WriteRequest::builder().put_request(put).build()
            })
            .collect();
        let manifest = Manifest {
            format: SNAPSHOT_FORMAT,
            prefs_version,
            ownership_version,
            taken_at,
            key,
            chunks: chunks.len() as u64,
            bytes: body.len() as u64,
            sha256: sha256_hex(body),
            users,
        };
        // BatchWriteItem takes 16 MB a call: a few chunks at a time.
        let mut chunks = chunks;
        while !chunks.is_empty() {
            let rest = chunks.split_off(chunks.len().min(8));
            dynamo::batch_write(
                &self.client,
                &self.table,
                std::mem::replace(&mut chunks, rest),
            )
            .await?;
        }
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(manifest.to_item()))
            .condition_expression(
                "attribute_not_exists(pk) OR prefs_version < :p OR (prefs_version = :p AND ownership_version <= :o)",
            )
            .expression_attribute_values(":p", n(prefs_version))
            .expression_attribute_values(":o", n(ownership_version))
            .send()
            .await
            .map_err(|e| DynamoError::call("PutItem", &self.table, e));
        match put {
            Ok(_) => Ok(Some(manifest)),
            Err(e) if e.is_condition_failure() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fmn_core::defaults::default_filters;
    use fmn_core::directory::{Account, Directory};
    use fmn_core::ownership::Owners;
    use fmn_core::rules::{Artifact, ArtifactKind};

    fn user(name: &str) -> UserPrefs {
        let mut p = UserPrefs::new(name);
        p.destinations =
            vec![Destination::email("email-1", format!("{name}@example.org")).confirmed(true)];
        p.filters = default_filters(&p, &["email-1".to_string()]);
        p.version = 7;
        p.time_zone = Some("Europe/Paris".into());
        p
    }

    #[test]
    fn a_body_round_trips_with_rule_lists_shared() {
        let users: Vec<UserPrefs> = ["alice", "bob", "carol"].iter().map(|n| user(n)).collect();
        let mut ownership = Ownership::new();
        ownership.set_owners(
            Artifact::new(ArtifactKind::Rpms, "glibc"),
            Owners {
                users: vec!["alice".into()],
                groups: vec!["tools".into()],
            },
        );
        ownership.set_members("tools", ["bob"]);
        let mut directory = Directory::new();
        directory.insert(
            "alice",
            Account {
                emails: vec!["alice@work.example".into()],
                ircnicks: vec!["irc:/ali".into()],
                locked: false,
            },
        );
        let mut b = SnapshotBuilder::new();
        for u in &users {
            b.add(u);
        }
        assert_eq!(b.rule_lists.len(), users[0].filters.len());
        let bytes = b.finish(
            &ownership,
            &directory.aliases(),
            directory.len(),
            Some(1_700_000_000),
        );
        let (facts, back) = Decoded::decode(&bytes[..]).unwrap().into_parts();
        assert_eq!(back.collect::<Result<Vec<_>, _>>().unwrap(), users);
        // Read from chunks as stored, cut anywhere (inside the length, the head, the users).
        for cut in [3, 8, 50, bytes.len() / 2, bytes.len() - 1] {
            let body = Body::new([bytes[..cut].to_vec(), Vec::new(), bytes[cut..].to_vec()]);
            let (_, back) = Decoded::decode(body).unwrap().into_parts();
            assert_eq!(
                back.collect::<Result<Vec<_>, _>>().unwrap(),
                users,
                "cut at {cut}"
            );
        }
        assert_eq!((&facts.aliases, facts.accounts), (&directory.aliases(), 1));
        assert_eq!(facts.aliases.email("alice@work.example"), "alice");
        assert_eq!(facts.aliases.nick("ali"), "alice");
        assert_eq!(facts.synced_at, Some(1_700_000_000));
        let own = facts.ownership;
        assert_eq!(own.groups_of("bob"), [std::sync::Arc::from("tools")]);
        assert_eq!(
            own.owners(&Artifact::new(ArtifactKind::Rpms, "glibc"))
                .unwrap()
                .users,
            ["alice".to_string()]
        );
    }

    #[test]
    fn damage_is_an_error_not_a_panic() {
        let decode_all = |bytes: &[u8]| -> Result<usize, SnapshotError> {
            let (_, users) = Decoded::decode(bytes)?.into_parts();
            users.collect::<Result<Vec<_>, _>>().map(|v| v.len())
        };
        let mut b = SnapshotBuilder::new();
        b.add(&user("alice"));
        b.add(&user("bob"));
        let mut bytes = b.finish(&Ownership::new(), &Aliases::new(), 0, None);
        assert_eq!(decode_all(&bytes).unwrap(), 2);
        assert!(decode_all(&bytes[..bytes.len() - 10]).is_err());
        let last = bytes.len() - 20;
        bytes[last] ^= 0xff;
        assert!(decode_all(&bytes).is_err());
        assert!(matches!(
            decode_all(b"not a snapshot"),
            Err(SnapshotError::Corrupt(_))
        ));
    }

    /// Each rule list is handed over at its last use, so none outlives its users; a head that
    /// counts fewer uses than the users make is corrupt, not a reason to lose a filter's rules.
    #[test]
    fn rule_lists_go_with_their_last_use_and_a_short_count_is_corrupt() {
        let mut b = SnapshotBuilder::new();
        let users: Vec<UserPrefs> = ["alice", "bob"].iter().map(|n| user(n)).collect();
        for u in &users {
            b.add(u);
        }
        assert!(
            b.rule_list_uses.iter().all(|&n| n == 2),
            "{:?}",
            b.rule_list_uses
        );
        let bytes = b.finish(&Ownership::new(), &Aliases::new(), 0, None);
        let decoded = Decoded::decode(&bytes[..]).unwrap();
        let lists = decoded.head.rule_lists.len();
        let (_, back) = decoded.into_parts();
        assert_eq!(back.collect::<Result<Vec<_>, _>>().unwrap(), users);

        let lists_of = |uses: Vec<u32>| {
            let mut r = RuleLists {
                uses,
                lists: vec![Some(vec![]); lists],
            };
            (r.take(0), r.take(0), r.take(0))
        };
        // Two uses counted, three made: the third finds the list gone.
        let (a, b, c) = lists_of(vec![2; lists]);
        assert!(a.is_ok() && b.is_ok());
        assert!(matches!(c, Err(SnapshotError::Corrupt(_))));
        // No counts (an older snapshot): always a copy.
        let (a, b, c) = lists_of(Vec::new());
        assert!(a.is_ok() && b.is_ok() && c.is_ok());
        let mut r = RuleLists {
            uses: vec![],
            lists: vec![],
        };
        assert!(matches!(r.take(7), Err(SnapshotError::Corrupt(_))));
    }
}
