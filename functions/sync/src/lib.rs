//! The sync function: copies from Fedora's own services what "me" means (who maintains which
//! artifact, who is in which group, every account's e-mails and chat nicks, and whether it is
//! locked) into the ownership table, where the match function's warm cache reads it. Hourly on
//! a schedule, and on demand from `fmn sync`.
//!
//! Sources: dist-git's published owner map (Pagure), FASJSON's groups and members (and
//! Pagure's for a group dist-git names that FAS does not have), FASJSON's users. The write
//! compares with what the table holds and writes only what differs, in pages; the version
//! counter is bumped once, only if something changed, so an unchanged hour costs one scan and
//! no write (see `fmn_aws::ownership_store::OwnershipStore::sync` for resuming a run that
//! stopped part-way). An fmn account whose FAS account is locked, or was deleted since the last
//! sync, is disabled.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt, TryStreamExt};
use serde::Serialize;

use fmn_aws::dynamo::DynamoError;
use fmn_aws::ownership_store::{OwnershipStore, SyncReport, SyncTarget};
use fmn_aws::prefs_store::{PrefsStore, PrefsStoreError};
use fmn_aws::retry::{Classify, ErrorClass};
use fmn_aws::{AwsClients, FunctionName};
use fmn_sources::{FasJson, Pagure, SourceError, SourceSettings};

pub const FUNCTION: FunctionName = FunctionName::Sync;

/// Accounts gone from FAS in one run that are disabled without question; more than this
/// (or 5% of the accounts, if that is more) looks like a broken source, not deletions.
pub const MAX_GONE_ACCOUNTS: usize = 50;

/// Writes per page (each page is 20 `BatchWriteItem` calls).
pub const WRITE_PAGE: usize = 500;

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("reading the sources failed: {0}")]
    Source(#[from] SourceError),
    #[error("writing the ownership table failed: {0}")]
    Store(#[from] DynamoError),
    #[error("disabling the accounts of locked or deleted FAS accounts failed: {0}")]
    Prefs(#[from] PrefsStoreError),
}

impl Classify for SyncError {
    fn class(&self) -> ErrorClass {
        match self {
            Self::Source(e) => e.class(),
            Self::Store(e) => e.class(),
            Self::Prefs(e) => e.class(),
        }
    }
}

/// What one run read and wrote, and how long it took.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SyncOutcome {
    pub artifacts: usize,
    pub groups: usize,
    pub accounts: usize,
    pub locked_accounts: usize,
    /// Accounts FAS listed at the last sync and no longer does.
    pub deleted_accounts: usize,
    pub aliases: usize,
    /// Groups dist-git names that FAS does not know, read from Pagure.
    pub pagure_only_groups: usize,
    /// What the store wrote (only what differed), flattened into the report's JSON.
    #[serde(flatten)]
    pub store: SyncReport,
    /// fmn accounts disabled because their FAS account is locked or deleted.
    pub accounts_disabled: usize,
    pub fetch_ms: u64,
    pub write_ms: u64,
}

pub struct SyncHandler {
    fasjson: FasJson,
    pagure: Pagure,
    store: OwnershipStore,
    prefs: PrefsStore,
    concurrency: usize,
}

impl SyncHandler {
    pub fn new(clients: &AwsClients, settings: &SourceSettings) -> Self {
        let clients = &clients.scoped(FUNCTION);
        Self {
            fasjson: FasJson::new(settings),
            pagure: Pagure::new(settings),
            store: OwnershipStore::from_clients(clients),
            prefs: PrefsStore::from_clients(clients),
            concurrency: settings.concurrency,
        }
    }

    /// One full refresh.
    pub async fn run(&self) -> Result<SyncOutcome, SyncError> {
        let started = Instant::now();
        // Bus changes from now on win over what the sources say (read over the next minutes).
        let read_since_ms = fmn_aws::dynamo::now_millis();
        let mut outcome = SyncOutcome::default();
        let (alias, fas_groups, directory) = tokio::try_join!(
            self.pagure.owner_alias(),
            self.fasjson.all_groups(),
            self.fasjson
                .directory(|n| tracing::debug!(users = n, "FAS users read")),
        )?;
        let mut groups: BTreeMap<String, Vec<String>> = fas_groups.into_iter().collect();
        // dist-git groups are FAS groups but for a few (old Pagure-only ones): ask Pagure.
        let mut missing: Vec<String> = alias
            .artifacts
            .values()
            .flat_map(|o| o.groups.iter())
            .filter(|g| !groups.contains_key(*g))
            .cloned()
            .collect();
        missing.sort();
        missing.dedup();
        let from_pagure: Vec<Option<(String, Vec<String>)>> = stream::iter(missing)
            .map(|name| async move {
                let group = self.pagure.group(&name, false).await?;
                Ok::<_, SourceError>(group.map(|g| {
                    let mut members = g.members;
                    members.sort();
                    members.dedup();
                    (name, members)
                }))
            })
            .buffer_unordered(self.concurrency)
            .try_collect()
            .await?;
        for (name, members) in from_pagure.into_iter().flatten() {
            outcome.pagure_only_groups += 1;
            groups.insert(name, members);
        }
        outcome.artifacts = alias.artifacts.len();
        outcome.groups = groups.len();
        outcome.accounts = directory.len();
        outcome.locked_accounts = directory.iter().filter(|(_, a)| a.locked).count();
        outcome.aliases = directory.aliases().len();
        outcome.fetch_ms = millis(started.elapsed());
        tracing::info!(
            artifacts = outcome.artifacts,
            groups = outcome.groups,
            accounts = outcome.accounts,
            fetch_ms = outcome.fetch_ms,
            "sources read"
        );
        let started = Instant::now();
        let report = self
            .store
            .sync(
                SyncTarget {
                    artifacts: Some(&alias.artifacts),
                    groups: Some(&groups),
                    directory: Some(&directory),
                    read_since_ms: Some(read_since_ms),
                },
                WRITE_PAGE,
                |done, total| tracing::info!(done, total, "sync writes"),
            )
            .await?;
        // A locked FAS account, or one deleted from FAS since the last sync, stops receiving
        // (disabled, not deleted); one with no fmn account costs a read. A source that suddenly
        // lists far fewer accounts is more likely broken than purged: those are left alone.
        let gone = &report.accounts_gone;
        let gone_limit = MAX_GONE_ACCOUNTS.max(directory.len() / 20);
        outcome.deleted_accounts = gone.len();
        let gone: &[String] = if gone.len() > gone_limit {
            tracing::warn!(
                gone = gone.len(),
                limit = gone_limit,
                "FAS no longer lists more accounts than a sync believes: none disabled"
            );
            &[]
        } else {
            gone
        };
        let to_disable: Vec<&String> = directory
            .iter()
            .filter(|(_, a)| a.locked)
            .map(|(name, _)| name)
            .chain(gone)
            .collect();
        let disabled: Vec<bool> = stream::iter(to_disable)
            .map(|name| async move {
                let disabled = self.prefs.disable_account(name).await?;
                if disabled {
                    tracing::info!(user = %name, "FAS account locked or deleted: fmn account disabled");
                }
                Ok::<_, PrefsStoreError>(disabled)
            })
            .buffer_unordered(self.concurrency)
            .try_collect()
            .await?;
        let outcome = SyncOutcome {
            write_ms: millis(started.elapsed()),
            accounts_disabled: disabled.into_iter().filter(|d| *d).count(),
            store: report,
            ..outcome
        };
        tracing::info!(
            written = outcome.store.items_written(),
            unchanged = outcome.store.unchanged,
            write_units = outcome.store.write_units,
            version = outcome.store.version,
            write_ms = outcome.write_ms,
            "sync done"
        );
        Ok(outcome)
    }
}

fn millis(d: Duration) -> u64 {
    d.as_millis() as u64
}
