//! The match function's warm copy of every preference, kept current cheaply: once per batch it
//! reads the two version counters (preferences, ownership); when preferences changed it reads
//! the change log since its last version and reloads only those users; when ownership changed
//! it reloads ownership, with the accounts the sync copied from FAS (the alias map the metadata
//! extraction resolves e-mails and nicks with). A cold start loads the snapshot
//! ([`crate::prefs_snapshot`]) when it is usable and catches up from there through the same
//! change log, else scans both tables (and then writes a fresh snapshot).
//!
//! Version numbers are taken before a change commits, so a change numbered 7 can commit after
//! one numbered 8. The cursor therefore remembers the numbers it has not seen yet (gaps) and
//! keeps asking for them for a while, so a late commit is never skipped.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fmn_core::directory::Directory;
use fmn_core::fact_changes::FactChange;
use fmn_core::matching::{IndexStats, Matcher};
use fmn_core::meta::{Aliases, Registry};

use crate::dynamo::{self, DynamoError, LoadTiming};
use crate::ownership_store::OwnershipStore;
use crate::prefs_snapshot::{self, Decoded, SnapshotBuilder};
use crate::prefs_store::{Change, PrefsStore, PrefsStoreError};

/// How long a missing change number is waited for (a write that took its number and then
/// failed never commits).
pub const GAP_TIMEOUT: Duration = Duration::from_secs(120);
/// After a full load, the last numbers are re-checked, in case their writes were in flight
/// during the scan.
pub const RECHECK_AFTER_LOAD: u64 = 16;
/// More gaps than this and a full reload is cheaper.
const MAX_GAPS: u64 = 10_000;

/// Which change numbers have been applied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangeCursor {
    high: u64,
    gaps: BTreeMap<u64, Instant>,
}

/// What to do after looking at the change log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CursorVerdict {
    /// Reload these users (possibly none).
    Reload(Vec<String>),
    /// Too far behind: load everything.
    FullReload,
}

impl ChangeCursor {
    /// A cursor after a full load made when the table's counter was `version`.
    pub fn after_full_load(version: u64, now: Instant) -> Self {
        let from = version.saturating_sub(RECHECK_AFTER_LOAD) + 1;
        Self {
            high: version,
            gaps: (from..=version).map(|v| (v, now)).collect(),
        }
    }

    pub fn high(&self) -> u64 {
        self.high
    }

    pub fn gaps(&self) -> usize {
        self.gaps.len()
    }

    /// Nothing to do when the counter is where we are and no change is outstanding.
    pub fn is_current(&self, table_version: u64) -> bool {
        self.gaps.is_empty() && table_version <= self.high
    }

    /// The change-log query starts after this number.
    pub fn query_after(&self) -> u64 {
        self.gaps.keys().next().map_or(self.high, |first| first - 1)
    }

    /// Applies the changes read after [`Self::query_after`], with the counter's value read
    /// before them.
    pub fn apply(&mut self, table_version: u64, changes: &[Change], now: Instant) -> CursorVerdict {
        let top = changes
            .iter()
            .map(|c| c.version)
            .max()
            .unwrap_or(0)
            .max(table_version);
        if top.saturating_sub(self.high) > MAX_GAPS {
            return CursorVerdict::FullReload;
        }
        for v in self.high + 1..=top {
            self.gaps.insert(v, now);
        }
        self.high = self.high.max(top);
        let mut users = Vec::new();
        for c in changes {
            if self.gaps.remove(&c.version).is_some() && !users.contains(&c.user) {
                users.push(c.user.clone());
            }
        }
        self.gaps
            .retain(|_, since| now.duration_since(*since) < GAP_TIMEOUT);
        CursorVerdict::Reload(users)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    #[error(transparent)]
    Prefs(#[from] PrefsStoreError),
    #[error(transparent)]
    Dynamo(#[from] DynamoError),
}

/// What a refresh did, for the logs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RefreshReport {
    /// Everything was (re)loaded: from a scan, or from the snapshot and then caught up.
    pub full_load: bool,
    pub ownership_reloaded: bool,
    pub users_reloaded: usize,
    /// Where a full load's time went (None for an incremental refresh).
    pub full_load_timing: Option<FullLoadTiming>,
    /// Loaded from the snapshot taken at this preferences version.
    pub from_snapshot: Option<u64>,
    /// Users read again from the table because they changed after the snapshot (or after
    /// the last look, when warm).
    pub caught_up: usize,
    /// Why a cold start did not use the snapshot (none, too old, corrupt...).
    pub snapshot_refused: Option<String>,
    /// A snapshot written after this full load, at this preferences version.
    pub snapshot_written: Option<u64>,
}

/// Where a full load (a cold start's) spent its time, and what it built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FullLoadTiming {
    /// The ownership table: counter read and scans; items to [`fmn_core::ownership::Ownership`]
    /// (from the snapshot: decoding its head, which also holds the rule lists and the alias map
    /// made from the accounts).
    pub ownership: LoadTiming,
    /// The preferences table's counter read.
    pub prefs_version_read: Duration,
    /// The preferences: the scan (or the snapshot's manifest and chunks), and items (or the
    /// snapshot's body) to preferences. A scan is decoded page by page as it arrives.
    pub prefs: LoadTiming,
    /// [`Matcher::upsert`] of every user.
    pub index_build: Duration,
    /// After a scan: encoding and storing the new snapshot.
    pub snapshot_write: Duration,
    /// The snapshot's compressed size (read or written).
    pub snapshot_bytes: u64,
    /// The whole load (a snapshot's catch-up included).
    pub total: Duration,
    /// The index built.
    pub index: IndexStats,
    /// The FAS accounts held, and the aliases (addresses, nicks) made from them.
    pub accounts: usize,
    pub aliases: usize,
}

/// How a cold cache uses the snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotPolicy {
    /// Load from the snapshot when it is usable.
    pub read: bool,
    /// Write one after each full load from the tables.
    pub write: bool,
    /// Older than this: not used ([`prefs_snapshot::MAX_AGE`]).
    pub max_age: Duration,
    /// More changes behind than this: not used ([`prefs_snapshot::MAX_LAG`]).
    pub max_lag: u64,
}

impl Default for SnapshotPolicy {
    fn default() -> Self {
        Self {
            read: true,
            write: true,
            max_age: prefs_snapshot::MAX_AGE,
            max_lag: prefs_snapshot::MAX_LAG,
        }
    }
}

/// Why the snapshot was not used: expected (none yet, too old) or a fault worth a warning.
enum Refusal {
    Expected(String),
    Fault(String),
}

/// The warm matcher and how current it is.
#[derive(Debug, Default)]
pub struct PrefsCache {
    matcher: Option<Matcher>,
    cursor: ChangeCursor,
    ownership_version: u64,
    /// The processors, with the alias map made from the synced accounts. The accounts
    /// themselves are not kept (a third of a cold function's memory at Fedora's size): what
    /// reads one asks the table ([`OwnershipStore::account`]).
    registry: Registry,
    /// Accounts the alias map was made from.
    accounts: usize,
    /// When the last sync finished.
    synced_at: Option<u64>,
    snapshot: SnapshotPolicy,
    /// When a cold start began reading the snapshot (its total includes the catch-up).
    snapshot_started: Option<Instant>,
}

impl PrefsCache {
    pub fn new() -> Self {
        Self::default()
    }

    /// A cache that uses the snapshot this way.
    pub fn with_snapshot_policy(snapshot: SnapshotPolicy) -> Self {
        Self {
            snapshot,
            ..Self::default()
        }
    }

    /// The matcher (None before the first refresh).
    pub fn matcher(&self) -> Option<&Matcher> {
        self.matcher.as_ref()
    }

    /// The metadata extraction, resolving names with the synced aliases.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// How many accounts copied from FAS the alias map was made from.
    pub fn accounts(&self) -> usize {
        self.accounts
    }

    /// When the last full sync finished (seconds since the epoch).
    pub fn synced_at(&self) -> Option<u64> {
        self.synced_at
    }

    fn set_directory(&mut self, directory: &Directory, synced_at: Option<u64>) {
        // The old map goes first: two are never held at once.
        self.registry = std::mem::take(&mut self.registry).with_aliases(Aliases::new());
        self.set_aliases(directory.aliases(), directory.len(), synced_at);
    }

    fn set_aliases(&mut self, aliases: Aliases, accounts: usize, synced_at: Option<u64>) {
        self.registry = std::mem::take(&mut self.registry).with_aliases(aliases);
        self.accounts = accounts;
        self.synced_at = synced_at;
    }

    /// Replaces one user in the warm copy (after this function changed them itself).
    pub fn upsert(&mut self, prefs: &fmn_core::prefs::UserPrefs) {
        if let Some(m) = &mut self.matcher {
            m.upsert(prefs);
        }
    }

    /// After this function wrote `changes` itself, moving the ownership counter to `version`:
    /// applies them to the warm copy in place (no scan of the table) when nobody else wrote in
    /// between (the counter moved by exactly one from the copy's), else brings the copy up to
    /// date as [`PrefsCache::refresh`] does.
    pub async fn apply_own_changes(
        &mut self,
        changes: &[FactChange],
        version: u64,
        prefs: &PrefsStore,
        ownership: &OwnershipStore,
    ) -> Result<RefreshReport, RefreshError> {
        let Some(matcher) = self.matcher.as_mut() else {
            return self.refresh(prefs, ownership).await;
        };
        // An account change remakes the alias map from every account, which are not kept
        // here: they are read again with the ownership (rare: FAS changes come by the sync).
        let account_changed = changes
            .iter()
            .any(|c| matches!(c, FactChange::SetAccount { .. }));
        if version != self.ownership_version + 1 || account_changed {
            return self.refresh(prefs, ownership).await;
        }
        let mut updated = fmn_core::ownership::Ownership::clone(matcher.ownership());
        for change in changes {
            match change {
                FactChange::SetOwners { artifact, owners } => {
                    updated.set_owners(artifact.clone(), owners.clone())
                }
                FactChange::RemoveArtifact { artifact } => updated.remove_owners(artifact),
                FactChange::AddMember { group, user }
                | FactChange::RemoveMember { group, user } => {
                    let mut members = updated.members(group).to_vec();
                    members.retain(|m| **m != **user);
                    if matches!(change, FactChange::AddMember { .. }) {
                        members.push(Arc::from(user.as_str()));
                        members.sort();
                    }
                    updated.set_members(group.clone(), members);
                }
                FactChange::SetAccount { .. } | FactChange::RefreshAccount { .. } => {}
            }
        }
        matcher.set_ownership(Arc::new(updated));
        self.ownership_version = version;
        Ok(RefreshReport {
            ownership_reloaded: true,
            ..RefreshReport::default()
        })
    }

    /// Brings the copy up to date.
    pub async fn refresh(
        &mut self,
        prefs: &PrefsStore,
        ownership: &OwnershipStore,
    ) -> Result<RefreshReport, RefreshError> {
        let mut report = RefreshReport::default();
        if self.matcher.is_none() {
            match self.load_snapshot(prefs).await {
                // Caught up below like any warm copy.
                Ok(loaded) => report = loaded,
                Err(refusal) => {
                    let reason = match refusal {
                        Refusal::Expected(reason) => {
                            tracing::info!(%reason, "snapshot not used; loading from the tables");
                            reason
                        }
                        Refusal::Fault(reason) => {
                            tracing::warn!(%reason, "snapshot unusable; loading from the tables");
                            reason
                        }
                    };
                    let mut report = self.full_load(prefs, ownership).await?;
                    report.snapshot_refused = Some(reason);
                    return Ok(report);
                }
            }
        }
        let from_snapshot = report.from_snapshot.is_some();
        let caught_up = self.catch_up(prefs, ownership, report).await;
        if caught_up.is_err() && from_snapshot {
            // A snapshot not caught up may hide changes: never route with it.
            self.matcher = None;
        }
        caught_up
    }

    /// The warm path: ownership reloaded if it changed, changed users reloaded.
    async fn catch_up(
        &mut self,
        prefs: &PrefsStore,
        ownership: &OwnershipStore,
        mut report: RefreshReport,
    ) -> Result<RefreshReport, RefreshError> {
        let ownership_version = ownership.current_version().await?;
        if ownership_version != self.ownership_version {
            let loaded = ownership.load_everything().await?;
            if let Some(m) = &mut self.matcher {
                m.set_ownership(Arc::new(loaded.ownership));
            }
            self.ownership_version = loaded.version;
            self.set_directory(&loaded.directory, loaded.synced_at);
            report.ownership_reloaded = true;
        }
        let table_version = prefs.current_version().await?;
        if self.cursor.is_current(table_version) {
            return Ok(self.finish_snapshot_load(report));
        }
        let changes = prefs.changes_since(self.cursor.query_after()).await?;
        match self.cursor.apply(table_version, &changes, Instant::now()) {
            CursorVerdict::FullReload => return self.full_load(prefs, ownership).await,
            CursorVerdict::Reload(users) => {
                let loaded = prefs.get_many(&users).await?;
                let matcher = self.matcher.as_mut().expect("loaded above");
                for name in &users {
                    match loaded.iter().find(|p| &p.name == name) {
                        Some(p) => log_skipped(matcher.upsert(p)),
                        None => matcher.remove(name),
                    }
                }
                // After a snapshot, `users_reloaded` stays the users it held.
                if report.from_snapshot.is_none() {
                    report.users_reloaded = users.len();
                }
                report.caught_up = users.len();
            }
        }
        Ok(self.finish_snapshot_load(report))
    }

    /// A snapshot load's total includes its catch-up.
    fn finish_snapshot_load(&self, mut report: RefreshReport) -> RefreshReport {
        if let (Some(version), Some(timing)) = (report.from_snapshot, &mut report.full_load_timing)
        {
            timing.total = self.snapshot_started.map_or(timing.total, |t| t.elapsed());
            tracing::info!(
                snapshot_version = version,
                caught_up = report.caught_up,
                ownership_reloaded = report.ownership_reloaded,
                elapsed_ms = timing.total.as_millis() as u64,
                "preferences loaded from the snapshot"
            );
        }
        report
    }

    /// Loads the snapshot when it is usable; the caller then catches up through the change
    /// log. Every way it can be unusable is a refusal (the caller scans instead), never an
    /// error.
    async fn load_snapshot(&mut self, prefs: &PrefsStore) -> Result<RefreshReport, Refusal> {
        if !self.snapshot.read {
            return Err(Refusal::Expected("snapshots are switched off".into()));
        }
        let started = Instant::now();
        self.snapshot_started = Some(started);
        let store = prefs.snapshots();
        let fault = |e: prefs_snapshot::SnapshotError| Refusal::Fault(e.to_string());
        let manifest = store
            .manifest()
            .await
            .map_err(fault)?
            .ok_or_else(|| Refusal::Expected("no snapshot yet".into()))?;
        if manifest.format != prefs_snapshot::SNAPSHOT_FORMAT {
            return Err(fault(prefs_snapshot::SnapshotError::UnknownFormat(
                manifest.format,
            )));
        }
        let age = manifest.age(dynamo::now_secs());
        if age > self.snapshot.max_age {
            return Err(Refusal::Expected(format!(
                "the snapshot is {} s old (at most {} s)",
                age.as_secs(),
                self.snapshot.max_age.as_secs()
            )));
        }
        let t = Instant::now();
        let table_version = prefs
            .current_version()
            .await
            .map_err(|e| Refusal::Fault(e.to_string()))?;
        let prefs_version_read = t.elapsed();
        let lag = table_version.saturating_sub(manifest.prefs_version);
        if lag > self.snapshot.max_lag {
            return Err(Refusal::Expected(format!(
                "the snapshot is {lag} changes behind (at most {})",
                self.snapshot.max_lag
            )));
        }
        let body = store.read(&manifest).await.map_err(fault)?;
        // The manifest and the chunks.
        let read = started.elapsed() - prefs_version_read;
        // The users are decoded one at a time, straight into the index.
        let t = Instant::now();
        let (facts, mut all) = Decoded::decode(body).map_err(fault)?.into_parts();
        // The ownership and the accounts, as the table was at the snapshot's counter: the
        // catch-up reloads the table if the counter has moved since.
        self.set_aliases(facts.aliases, facts.accounts, facts.synced_at);
        self.ownership_version = manifest.ownership_version;
        // The head: rule lists, ownership and the alias map made from the accounts.
        let head_decode = t.elapsed();
        let mut decode = Duration::ZERO;
        let mut matcher = Matcher::new(Arc::new(facts.ownership));
        // The count is checked against what the body holds below; room for at most ten
        // million up front whatever a damaged manifest says.
        matcher.reserve(manifest.users.min(10_000_000) as usize);
        let mut index_build = Duration::ZERO;
        let mut users = 0;
        loop {
            let t = Instant::now();
            let Some(p) = all.next() else { break };
            let p = p.map_err(fault)?;
            let t2 = Instant::now();
            decode += t2 - t;
            users += 1;
            log_skipped(matcher.upsert(&p));
            index_build += t2.elapsed();
        }
        drop(all);
        if users as u64 != manifest.users {
            return Err(Refusal::Fault(format!(
                "the snapshot holds {users} users, its manifest says {}",
                manifest.users
            )));
        }
        let index = matcher.stats();
        self.matcher = Some(matcher);
        // As after a scan taken at that version: the last numbers are checked again.
        self.cursor = ChangeCursor::after_full_load(manifest.prefs_version, Instant::now());
        Ok(RefreshReport {
            full_load: true,
            users_reloaded: users,
            from_snapshot: Some(manifest.prefs_version),
            full_load_timing: Some(FullLoadTiming {
                prefs_version_read,
                ownership: LoadTiming {
                    read: Duration::ZERO,
                    decode: head_decode,
                    items: 0,
                },
                prefs: LoadTiming {
                    read,
                    decode,
                    items: manifest.chunks as usize,
                },
                index_build,
                snapshot_bytes: manifest.bytes,
                total: started.elapsed(),
                index,
                accounts: self.accounts,
                aliases: self.registry.aliases().len(),
                ..FullLoadTiming::default()
            }),
            ..RefreshReport::default()
        })
    }

    async fn full_load(
        &mut self,
        prefs: &PrefsStore,
        ownership: &OwnershipStore,
    ) -> Result<RefreshReport, RefreshError> {
        let started = Instant::now();
        self.snapshot_started = None;
        // Before either counter is read: the change log after them outlives it.
        let taken_at = dynamo::now_secs();
        let (loaded, ownership_timing) = ownership.load_everything_timed().await?;
        let (loaded_ownership, ownership_version) = (loaded.ownership, loaded.version);
        self.set_directory(&loaded.directory, loaded.synced_at);
        drop(loaded.directory);
        let loaded_ownership = Arc::new(loaded_ownership);
        let t = Instant::now();
        let version = prefs.current_version().await?;
        let prefs_version_read = t.elapsed();
        // Users go into the index (and the snapshot) as the scan's pages are decoded.
        let mut matcher = Matcher::new(loaded_ownership.clone());
        let mut snapshot = self.snapshot.write.then(SnapshotBuilder::new);
        let mut count = 0;
        let mut index_build = Duration::ZERO;
        let mut snapshot_write = Duration::ZERO;
        let prefs_timing = prefs
            .for_each_user(|p| {
                count += 1;
                if let Some(b) = &mut snapshot {
                    let t = Instant::now();
                    b.add(&p);
                    snapshot_write += t.elapsed();
                }
                let t = Instant::now();
                log_skipped(matcher.upsert(&p));
                index_build += t.elapsed();
            })
            .await?;
        let stats = matcher.stats();
        tracing::info!(
            users = count,
            indexed_users = stats.users,
            filters = stats.filters,
            scanned_filters = stats.scanned_filters,
            version,
            ownership_version,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "preferences loaded"
        );
        self.matcher = Some(matcher);
        self.cursor = ChangeCursor::after_full_load(version, Instant::now());
        self.ownership_version = ownership_version;
        let mut snapshot_written = None;
        let mut snapshot_bytes = 0;
        if let Some(b) = snapshot {
            let t = Instant::now();
            let users = b.users();
            let body = b.finish(
                &loaded_ownership,
                self.registry.aliases(),
                self.accounts,
                self.synced_at,
            );
            snapshot_bytes = body.len() as u64;
            match prefs
                .snapshots()
                .write(&body, users, version, ownership_version, taken_at)
                .await
            {
                Ok(Some(m)) => {
                    tracing::info!(
                        version,
                        ownership_version,
                        bytes = m.bytes,
                        chunks = m.chunks,
                        "snapshot written"
                    );
                    snapshot_written = Some(version);
                }
                Ok(None) => tracing::info!(version, "a newer snapshot is stored; this one is not"),
                // The cold starts after this one scan too; the matching goes on.
                Err(e) => tracing::warn!(error = %e, "writing the snapshot failed"),
            }
            snapshot_write += t.elapsed();
        }
        Ok(RefreshReport {
            full_load: true,
            ownership_reloaded: true,
            users_reloaded: count,
            snapshot_written,
            full_load_timing: Some(FullLoadTiming {
                ownership: ownership_timing,
                prefs_version_read,
                prefs: prefs_timing,
                index_build,
                snapshot_write,
                snapshot_bytes,
                total: started.elapsed(),
                index: stats,
                accounts: self.accounts,
                aliases: self.registry.aliases().len(),
            }),
            ..RefreshReport::default()
        })
    }
}

fn log_skipped(skipped: Vec<fmn_core::matching::SkippedFilter>) {
    for s in skipped {
        tracing::warn!(user = s.user, filter = s.filter_id, error = %s.error, "filter left out: a rule does not compile");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(version: u64, user: &str) -> Change {
        Change {
            version,
            user: user.into(),
        }
    }

    #[test]
    fn changes_in_order_are_applied_once() {
        let t = Instant::now();
        let mut c = ChangeCursor::default();
        assert!(c.is_current(0));
        assert!(!c.is_current(2));
        let v = c.apply(2, &[change(1, "a"), change(2, "b")], t);
        assert_eq!(v, CursorVerdict::Reload(vec!["a".into(), "b".into()]));
        assert!(c.is_current(2));
        assert_eq!(c.query_after(), 2);
    }

    #[test]
    fn a_late_commit_is_not_skipped() {
        let t = Instant::now();
        let mut c = ChangeCursor::default();
        // 1 took its number but commits after 2.
        let v = c.apply(2, &[change(2, "b")], t);
        assert_eq!(v, CursorVerdict::Reload(vec!["b".into()]));
        assert!(!c.is_current(2));
        assert_eq!(c.query_after(), 0, "asks again from the gap");
        let v = c.apply(2, &[change(1, "a"), change(2, "b")], t);
        assert_eq!(
            v,
            CursorVerdict::Reload(vec!["a".into()]),
            "b not reloaded twice"
        );
        assert!(c.is_current(2));
    }

    #[test]
    fn a_number_that_never_commits_is_given_up() {
        let t = Instant::now();
        let mut c = ChangeCursor::default();
        c.apply(1, &[], t);
        assert_eq!(c.gaps(), 1);
        c.apply(1, &[], t + GAP_TIMEOUT);
        assert!(c.is_current(1));
    }

    #[test]
    fn after_a_full_load_recent_numbers_are_rechecked() {
        let t = Instant::now();
        let mut c = ChangeCursor::after_full_load(100, t);
        assert_eq!(c.query_after(), 100 - RECHECK_AFTER_LOAD);
        let v = c.apply(100, &[change(99, "late")], t);
        assert_eq!(v, CursorVerdict::Reload(vec!["late".into()]));
        c.apply(100, &[], t + GAP_TIMEOUT);
        assert!(c.is_current(100));
    }

    #[test]
    fn far_behind_means_full_reload() {
        let mut c = ChangeCursor::default();
        assert_eq!(
            c.apply(MAX_GAPS + 5, &[], Instant::now()),
            CursorVerdict::FullReload
        );
    }
}
