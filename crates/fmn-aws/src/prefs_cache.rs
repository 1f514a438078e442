//! The match function's warm copy of every preference, kept current cheaply: once per batch it
//! reads the two version counters (preferences, ownership); when preferences changed it reads
//! the change log since its last version and reloads only those users; when ownership changed
//! it reloads ownership, with the accounts the sync copied from FAS (the alias map the metadata
//! extraction resolves e-mails and nicks with). A full scan happens only on a cold start.
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
use fmn_core::meta::Registry;

use crate::dynamo::{DynamoError, LoadTiming};
use crate::ownership_store::OwnershipStore;
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
    pub full_load: bool,
    pub ownership_reloaded: bool,
    pub users_reloaded: usize,
    /// Where a full load's time went (None for an incremental refresh).
    pub full_load_timing: Option<FullLoadTiming>,
}

/// Where a full load (a cold start's) spent its time, and what it built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FullLoadTiming {
    /// The ownership table: counter read and scans; items to [`fmn_core::ownership::Ownership`].
    pub ownership: LoadTiming,
    /// The preferences table's counter read.
    pub prefs_version_read: Duration,
    /// The preferences table: the scan; items to preferences.
    pub prefs: LoadTiming,
    /// [`Matcher::build`].
    pub index_build: Duration,
    /// The whole load.
    pub total: Duration,
    /// The index built.
    pub index: IndexStats,
}

/// The warm matcher and how current it is.
#[derive(Debug, Default)]
pub struct PrefsCache {
    matcher: Option<Matcher>,
    cursor: ChangeCursor,
    ownership_version: u64,
    /// The processors, with the alias map made from the synced accounts.
    registry: Registry,
    /// The synced accounts (locked ones included).
    directory: Arc<Directory>,
    /// When the last sync finished.
    synced_at: Option<u64>,
}

impl PrefsCache {
    pub fn new() -> Self {
        Self::default()
    }

    /// The matcher (None before the first refresh).
    pub fn matcher(&self) -> Option<&Matcher> {
        self.matcher.as_ref()
    }

    /// The metadata extraction, resolving names with the synced aliases.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The accounts copied from FAS.
    pub fn directory(&self) -> &Arc<Directory> {
        &self.directory
    }

    /// When the last full sync finished (seconds since the epoch).
    pub fn synced_at(&self) -> Option<u64> {
        self.synced_at
    }

    fn set_directory(&mut self, directory: Directory, synced_at: Option<u64>) {
        let aliases = directory.aliases();
        self.registry = std::mem::take(&mut self.registry).with_aliases(aliases);
        self.directory = Arc::new(directory);
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
        if version != self.ownership_version + 1 {
            return self.refresh(prefs, ownership).await;
        }
        let mut updated = fmn_core::ownership::Ownership::clone(matcher.ownership());
        let mut directory: Option<Directory> = None;
        for change in changes {
            match change {
                FactChange::SetOwners { artifact, owners } => {
                    updated.set_owners(artifact.clone(), owners.clone())
                }
                FactChange::RemoveArtifact { artifact } => updated.remove_owners(artifact),
                FactChange::AddMember { group, user }
                | FactChange::RemoveMember { group, user } => {
                    let mut members = updated.members(group).to_vec();
                    members.retain(|m| m != user);
                    if matches!(change, FactChange::AddMember { .. }) {
                        members.push(user.clone());
                        members.sort();
                    }
                    updated.set_members(group.clone(), members);
                }
                FactChange::SetAccount { user, account } => {
                    let d = directory.get_or_insert_with(|| Directory::clone(&self.directory));
                    match account {
                        Some(a) => d.insert(user.clone(), a.clone()),
                        None => {
                            d.remove(user);
                        }
                    }
                }
                FactChange::RefreshAccount { .. } => {}
            }
        }
        matcher.set_ownership(Arc::new(updated));
        if let Some(d) = directory {
            self.set_directory(d, self.synced_at);
        }
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
        let ownership_version = ownership.current_version().await?;
        if self.matcher.is_none() {
            return self.full_load(prefs, ownership).await;
        }
        if ownership_version != self.ownership_version {
            let loaded = ownership.load_everything().await?;
            if let Some(m) = &mut self.matcher {
                m.set_ownership(Arc::new(loaded.ownership));
            }
            self.ownership_version = loaded.version;
            self.set_directory(loaded.directory, loaded.synced_at);
            report.ownership_reloaded = true;
        }
        let table_version = prefs.current_version().await?;
        if self.cursor.is_current(table_version) {
            return Ok(report);
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
                report.users_reloaded = users.len();
            }
        }
        Ok(report)
    }

    async fn full_load(
        &mut self,
        prefs: &PrefsStore,
        ownership: &OwnershipStore,
    ) -> Result<RefreshReport, RefreshError> {
        let started = Instant::now();
        let (loaded, ownership_timing) = ownership.load_everything_timed().await?;
        let (loaded_ownership, ownership_version) = (loaded.ownership, loaded.version);
        self.set_directory(loaded.directory, loaded.synced_at);
        let t = Instant::now();
        let version = prefs.current_version().await?;
        let prefs_version_read = t.elapsed();
        let (users, prefs_timing) = prefs.load_all_timed().await?;
        let count = users.len();
        let t = Instant::now();
        let (matcher, skipped) = Matcher::build(users, Arc::new(loaded_ownership));
        let index_build = t.elapsed();
        log_skipped(skipped);
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
        Ok(RefreshReport {
            full_load: true,
            ownership_reloaded: true,
            users_reloaded: count,
            full_load_timing: Some(FullLoadTiming {
                ownership: ownership_timing,
                prefs_version_read,
                prefs: prefs_timing,
                index_build,
                total: started.elapsed(),
                index: stats,
            }),
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
