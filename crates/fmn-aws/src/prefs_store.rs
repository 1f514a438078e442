//! Users' preferences in the preferences table.
//!
//! Items (`pk`, `sk`):
//! - `user#<name>`, `prefs`: the whole [`UserPrefs`] as JSON in `doc`, its `version`.
//! - `meta`, `version`: the table's change counter; every write takes the next number.
//! - `changes`, `<number, 20 digits>`: which user that write changed (kept a week), so a warm
//!   match function reloads only the users that changed since it last looked.
//! - `confirm#…` and `confirm-dest#…`: pending confirmations of destinations (see
//!   [`crate::confirmations`]).
//! - `snapshot`, `current` and `snapshot#…`: the snapshot a cold match function loads from
//!   (see [`crate::prefs_snapshot`]).
//! - `settings`, `account-defaults`: the admin's per-group settings for auto-created accounts
//!   ([`fmn_core::accounts::AccountDefaults`] as JSON in `doc`).
//!
//! A change is one transaction (the document with a condition on its previous version, plus
//! its change-log entry): never half-written, and two concurrent edits cannot both win.

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{AttributeValue, Put, PutRequest, TransactWriteItem, WriteRequest};

use fmn_core::accounts::{AccountDefaults, GroupDefaults};
use fmn_core::prefs::{PrefsError, UserPrefs};

use crate::dynamo::{self, get_n, get_s, n, s, DynamoError, Item, LoadTiming};
use crate::retry::{Classify, ErrorClass, RetryPolicy};

/// How long change-log entries are kept.
pub const CHANGE_LOG_TTL_SECS: u64 = 7 * 24 * 3600;

#[derive(Debug, thiserror::Error)]
pub enum PrefsStoreError {
    #[error(transparent)]
    Dynamo(#[from] DynamoError),
    #[error("preferences are invalid: {0}")]
    Invalid(#[from] PrefsError),
    #[error("user `{0}` already exists")]
    Exists(String),
    #[error("no user `{0}`")]
    NotFound(String),
    #[error("user `{0}` was changed by someone else; reload and try again")]
    Conflict(String),
    /// The preferences do not fit in one DynamoDB item ([`dynamo::MAX_ITEM_BYTES`]): they will
    /// never be stored as they are (an API answers 413 or 422, naming `limit_bytes`).
    #[error("the preferences of `{user}` are {bytes} bytes, over the {limit_bytes}-byte limit of a stored item")]
    TooLarge {
        user: String,
        /// The size of the stored document (a lower bound when DynamoDB refused the item).
        bytes: usize,
        limit_bytes: usize,
    },
    #[error("stored preferences of `{user}` are unreadable: {reason}")]
    Corrupt { user: String, reason: String },
}

impl Classify for PrefsStoreError {
    fn class(&self) -> ErrorClass {
        match self {
            Self::Dynamo(e) => e.class(),
            // Someone else's write came first: reading again and retrying succeeds.
            Self::Conflict(_) => ErrorClass::Retryable,
            Self::Invalid(_)
            | Self::Exists(_)
            | Self::NotFound(_)
            | Self::TooLarge { .. }
            | Self::Corrupt { .. } => ErrorClass::Permanent,
        }
    }
}

/// One change-log entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub version: u64,
    pub user: String,
}

/// The item of the admin's settings.
const SETTINGS_PK: &str = "settings";
const ACCOUNT_DEFAULTS_SK: &str = "account-defaults";

fn user_pk(name: &str) -> String {
    format!("user#{name}")
}

fn change_sk(version: u64) -> String {
    format!("{version:020}")
}

/// The item holding `stored` (whose `version` is its change number), `doc` its JSON.
fn user_item(stored: &UserPrefs, doc: String) -> Item {
    Item::from([
        ("pk".to_string(), s(user_pk(&stored.name))),
        ("sk".to_string(), s("prefs")),
        ("doc".to_string(), s(doc)),
        ("version".to_string(), n(stored.version)),
        ("enabled".to_string(), AttributeValue::Bool(stored.enabled)),
        ("updated_at".to_string(), n(dynamo::now_secs())),
    ])
}

/// The change-log entry of change `version`, which changed `user`.
fn change_item(version: u64, user: &str) -> Item {
    Item::from([
        ("pk".to_string(), s("changes")),
        ("sk".to_string(), s(change_sk(version))),
        ("user".to_string(), s(user)),
        (
            "expires_at".to_string(),
            n(dynamo::now_secs() + CHANGE_LOG_TTL_SECS),
        ),
    ])
}

/// The preferences table.
#[derive(Clone, Debug)]
pub struct PrefsStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl PrefsStore {
    pub fn from_clients(clients: &crate::AwsClients) -> Self {
        let table = clients.table(crate::TableName::Preferences);
        Self {
            table,
            client: clients.dynamodb.clone(),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// The snapshot of this table (and the ownership) kept in it for cold starts.
    pub fn snapshots(&self) -> crate::prefs_snapshot::SnapshotStore {
        crate::prefs_snapshot::SnapshotStore::new(self.client.clone(), &self.table)
    }

    fn decode(&self, item: &Item) -> Result<UserPrefs, PrefsStoreError> {
        let user = get_s(item, "pk")
            .and_then(|pk| pk.strip_prefix("user#"))
            .unwrap_or("?")
            .to_string();
        let doc = get_s(item, "doc").ok_or_else(|| PrefsStoreError::Corrupt {
            user: user.clone(),
            reason: "no `doc`".into(),
        })?;
        let mut prefs: UserPrefs =
            serde_json::from_str(doc).map_err(|e| PrefsStoreError::Corrupt {
                user: user.clone(),
                reason: e.to_string(),
            })?;
        prefs.version = get_n(item, "version").unwrap_or(0);
        Ok(prefs)
    }

    /// One user's preferences.
    pub async fn get(&self, name: &str) -> Result<Option<UserPrefs>, PrefsStoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(user_pk(name)))
            .key("sk", s("prefs"))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| DynamoError::call("GetItem", &self.table, e))?;
        out.item.as_ref().map(|i| self.decode(i)).transpose()
    }

    /// Several users' preferences (unknown names are left out).
    pub async fn get_many(&self, names: &[String]) -> Result<Vec<UserPrefs>, PrefsStoreError> {
        let mut out = Vec::new();
        // BatchGetItem would save round trips; per-item consistent reads keep this simple and
        // a warm function only reloads the handful of users that changed.
        for name in names {
            if let Some(p) = self.get(name).await? {
                out.push(p);
            }
        }
        Ok(out)
    }

    /// Every user's preferences (a full scan: for a cold start, never per message).
    pub async fn load_all(&self) -> Result<Vec<UserPrefs>, PrefsStoreError> {
        Ok(self.load_all_timed().await?.0)
    }

    /// [`PrefsStore::load_all`], with how long the scan and the decoding took.
    pub async fn load_all_timed(&self) -> Result<(Vec<UserPrefs>, LoadTiming), PrefsStoreError> {
        let mut users = Vec::new();
        let timing = self.for_each_user(|p| users.push(p)).await?;
        Ok((users, timing))
    }

    /// Every user's preferences, handed to `each` as the scan's pages arrive: each page is
    /// decoded and dropped before the next is asked for, so a cold start holds one page of
    /// raw items, not the table (908 MiB at 100,000 users when it held them all). The timing's
    /// `read` is the time spent waiting for pages, `decode` the items to preferences (what
    /// `each` does is the caller's).
    pub async fn for_each_user(
        &self,
        mut each: impl FnMut(UserPrefs),
    ) -> Result<LoadTiming, PrefsStoreError> {
        let mut items = 0;
        let mut decode = Duration::ZERO;
        let read = dynamo::scan_prefix_pages(&self.client, &self.table, "user#", |page| {
            items += page.len();
            for item in page.iter().filter(|i| get_s(i, "sk") == Some("prefs")) {
                let started = Instant::now();
                let prefs = self.decode(item)?;
                decode += started.elapsed();
                each(prefs);
            }
            Ok::<_, PrefsStoreError>(())
        })
        .await?;
        Ok(LoadTiming {
            read,
            decode,
            items,
        })
    }

    /// The table's change counter (0 when nothing was ever written).
    pub async fn current_version(&self) -> Result<u64, PrefsStoreError> {
        Ok(dynamo::read_version_counter(&self.client, &self.table).await?)
    }

    /// Change-log entries after `version`, in order.
    pub async fn changes_since(&self, version: u64) -> Result<Vec<Change>, PrefsStoreError> {
        let items = dynamo::query_after(
            &self.client,
            &self.table,
            "changes",
            Some(&change_sk(version)),
        )
        .await?;
        Ok(items
            .iter()
            .filter_map(|i| {
                Some(Change {
                    version: get_s(i, "sk")?.parse().ok()?,
                    user: get_s(i, "user")?.to_string(),
                })
            })
            .collect())
    }

    /// Writes `prefs`, which must still be at `prefs.version` in the table (0: must not exist
    /// yet). Returns the stored document with its new version.
    pub async fn put(&self, prefs: &UserPrefs) -> Result<UserPrefs, PrefsStoreError> {
        prefs.validate()?;
        let version = dynamo::bump_version_counter(&self.client, &self.table).await?;
        let mut stored = prefs.clone();
        stored.version = version;
        let doc = serde_json::to_string(&stored).expect("preferences serialise");
        let too_large = |bytes| PrefsStoreError::TooLarge {
            user: prefs.name.clone(),
            bytes,
            limit_bytes: dynamo::MAX_ITEM_BYTES,
        };
        // Refused before the call when the document alone is over the limit; DynamoDB's own
        // refusal (the item with its other attributes) is mapped below.
        if doc.len() > dynamo::MAX_ITEM_BYTES {
            return Err(too_large(doc.len()));
        }
        let doc_bytes = doc.len();
        let mut put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(user_item(&stored, doc)));
        put = if prefs.version == 0 {
            put.condition_expression("attribute_not_exists(pk)")
        } else {
            put.condition_expression("version = :expected")
                .expression_attribute_values(":expected", n(prefs.version))
        };
        let change = Put::builder()
            .table_name(&self.table)
            .set_item(Some(change_item(version, &prefs.name)));
        let result = self
            .client
            .transact_write_items()
            .transact_items(
                TransactWriteItem::builder()
                    .put(put.build().expect("table, item set"))
                    .build(),
            )
            .transact_items(
                TransactWriteItem::builder()
                    .put(change.build().expect("table, item set"))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| DynamoError::transaction(&self.table, e));
        match result {
            Ok(_) => Ok(stored),
            Err(DynamoError::ItemTooLarge { .. }) => Err(too_large(doc_bytes)),
            // Only the user item (the first) has a condition.
            Err(e) if e.condition_failed_at(0) => Err(if prefs.version == 0 {
                PrefsStoreError::Exists(prefs.name.clone())
            } else {
                PrefsStoreError::Conflict(prefs.name.clone())
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// Writes many users at once, for bulk loads (benchmarks, a migration): each document gets
    /// its own change number and change-log entry exactly as [`PrefsStore::put`] writes them
    /// (so warm match functions reload them), but in batches of 25 items instead of one
    /// transaction per user, and unconditionally: a user already stored is replaced, whatever
    /// its version. Everything is validated before anything is written. Returns the stored
    /// documents' last change number.
    pub async fn import(&self, users: &[UserPrefs]) -> Result<u64, PrefsStoreError> {
        for prefs in users {
            prefs.validate()?;
        }
        if users.is_empty() {
            return self.current_version().await;
        }
        let last =
            dynamo::bump_version_counter_by(&self.client, &self.table, users.len() as u64).await?;
        let first = last + 1 - users.len() as u64;
        let mut writes = Vec::with_capacity(2 * users.len());
        for (i, prefs) in users.iter().enumerate() {
            let version = first + i as u64;
            let mut stored = prefs.clone();
            stored.version = version;
            let doc = serde_json::to_string(&stored).expect("preferences serialise");
            // Checked before anything is written (numbers taken and never used are gaps a
            // warm function stops waiting for).
            if doc.len() > dynamo::MAX_ITEM_BYTES {
                return Err(PrefsStoreError::TooLarge {
                    user: prefs.name.clone(),
                    bytes: doc.len(),
                    limit_bytes: dynamo::MAX_ITEM_BYTES,
                });
            }
            for item in [user_item(&stored, doc), change_item(version, &prefs.name)] {
                writes.push(
                    WriteRequest::builder()
                        .put_request(
                            PutRequest::builder()
                                .set_item(Some(item))
                                .build()
                                .expect("item set"),
                        )
                        .build(),
                );
            }
        }
        dynamo::batch_write(&self.client, &self.table, writes).await?;
        Ok(last)
    }

    /// Creates a user; fails if it exists.
    pub async fn create(&self, prefs: &UserPrefs) -> Result<UserPrefs, PrefsStoreError> {
        let mut fresh = prefs.clone();
        fresh.version = 0;
        self.put(&fresh).await
    }

    /// [`PrefsStore::update`] that writes only when `change` says it changed something
    /// (`Ok(true)`): a delivery event that changes nothing costs a read, not a write and a
    /// change-log entry every warm match function would reload. `None`: nothing written.
    pub async fn update_if<F, E>(&self, name: &str, mut change: F) -> Result<Option<UserPrefs>, E>
    where
        F: FnMut(&mut UserPrefs) -> Result<bool, E>,
        E: From<PrefsStoreError>,
    {
        let mut attempts = RetryPolicy::attempts(5).start();
        loop {
            attempts.begin();
            let Some(mut prefs) = self.get(name).await? else {
                return Ok(None);
            };
            if !change(&mut prefs)? {
                return Ok(None);
            }
            match self.put(&prefs).await {
                Err(PrefsStoreError::Conflict(_)) if attempts.left() => {
                    attempts.wait().await;
                }
                other => return Ok(Some(other?)),
            }
        }
    }

    /// The admin's per-group settings for auto-created accounts (none set: every group starts
    /// with everything off).
    pub async fn account_defaults(&self) -> Result<AccountDefaults, PrefsStoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(SETTINGS_PK))
            .key("sk", s(ACCOUNT_DEFAULTS_SK))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| DynamoError::call("GetItem", &self.table, e))?;
        let Some(doc) = out.item.as_ref().and_then(|i| get_s(i, "doc")) else {
            return Ok(AccountDefaults::default());
        };
        serde_json::from_str(doc).map_err(|e| {
            PrefsStoreError::Dynamo(DynamoError::Malformed {
                table: self.table.clone(),
                key: format!("{SETTINGS_PK}/{ACCOUNT_DEFAULTS_SK}"),
                reason: e.to_string(),
            })
        })
    }

    /// Sets what the auto-created accounts of `group`'s members start with (nothing switched
    /// on removes the group's setting); the settings after the change. Read and written with a
    /// condition on what was read, so two admins' changes do not undo each other.
    pub async fn set_group_defaults(
        &self,
        group: &str,
        defaults: GroupDefaults,
    ) -> Result<AccountDefaults, PrefsStoreError> {
        let mut attempts = RetryPolicy::attempts(5).start();
        loop {
            attempts.begin();
            let before = self.account_defaults().await?;
            let mut after = before.clone();
            after.set(group, defaults.clone());
            let doc = serde_json::to_string(&after).expect("settings serialise");
            let mut put = self
                .client
                .put_item()
                .table_name(&self.table)
                .item("pk", s(SETTINGS_PK))
                .item("sk", s(ACCOUNT_DEFAULTS_SK))
                .item("doc", s(&doc))
                .item("updated_at", n(dynamo::now_secs()));
            put = if before.groups.is_empty() {
                put.condition_expression("attribute_not_exists(doc) OR doc = :empty")
                    .expression_attribute_values(":empty", s("{}"))
            } else {
                put.condition_expression("doc = :before")
                    .expression_attribute_values(
                        ":before",
                        s(serde_json::to_string(&before).expect("settings serialise")),
                    )
            };
            match put.send().await {
                Ok(_) => return Ok(after),
                Err(e) => {
                    let e = DynamoError::call("PutItem", &self.table, e);
                    if e.is_condition_failure() && attempts.left() {
                        attempts.wait().await;
                        continue;
                    }
                    if e.is_condition_failure() {
                        return Err(PrefsStoreError::Conflict(format!(
                            "{SETTINGS_PK}/{ACCOUNT_DEFAULTS_SK}"
                        )));
                    }
                    return Err(e.into());
                }
            }
        }
    }

    /// Disables an account (its FAS account is locked or gone): it stops receiving, its
    /// preferences stay. Whether it was enabled (false also when there is no such account).
    pub async fn disable_account(&self, name: &str) -> Result<bool, PrefsStoreError> {
        let changed = self
            .update_if(name, |p| {
                // A bot is no FAS account: FAS saying nothing of its name changes nothing.
                if p.bot {
                    return Ok::<_, PrefsStoreError>(false);
                }
                let was = p.enabled;
                p.enabled = false;
                Ok::<_, PrefsStoreError>(was)
            })
            .await?;
        Ok(changed.is_some())
    }

    /// Reads, changes with `change` and writes back, retrying when someone else wrote in
    /// between. `change` may refuse with an error of its own.
    pub async fn update<F, E>(&self, name: &str, mut change: F) -> Result<UserPrefs, E>
    where
        F: FnMut(&mut UserPrefs) -> Result<(), E>,
        E: From<PrefsStoreError>,
    {
        // A conflict is someone else's write in between: read again after a backoff.
        let mut attempts = RetryPolicy::attempts(5).start();
        loop {
            attempts.begin();
            let mut prefs = self
                .get(name)
                .await?
                .ok_or_else(|| PrefsStoreError::NotFound(name.to_string()))?;
            change(&mut prefs)?;
            match self.put(&prefs).await {
                Err(PrefsStoreError::Conflict(_)) if attempts.left() => {
                    attempts.wait().await;
                }
                other => return Ok(other?),
            }
        }
    }
}
