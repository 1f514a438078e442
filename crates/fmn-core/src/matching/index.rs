//! The indexed matcher.
//!
//! Each filter is filed under the keys of one of its positive rules (its *anchor*): a filter
//! that needs "alice is among the users" is filed under user `alice`, one that needs "an
//! artifact maintained by bob" under owner `bob` (and bob's groups), and so on. A message
//! looks up its own keys (its users, artifacts, their maintainers, the groups of its users,
//! its agent, application and topic) and evaluates only the filters found there, plus the few
//! that have no indexable rule (a regex alone, say). A filter whose anchor key is absent from
//! the message cannot match, because its anchor rule cannot hold.
//!
//! Rules and whole rule lists are interned: the default filters of a hundred thousand users
//! share one compiled copy, and a costly rule (a regex) is evaluated once per message however
//! many filters hold it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::ownership::Ownership;
use crate::prefs::{Destination, UserPrefs};
use crate::rules::{Rule, RuleError, RuleKind};

use super::compiled::{summary, CompiledRule};
use super::{fan_out, filter_can_send, sort_matches, Match, MatchedFilter, MessageFacts};

/// Where a filter is filed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum KeyKind {
    User = 0,
    Rpm,
    Container,
    Module,
    Flatpak,
    OwnerUser,
    OwnerGroup,
    Group,
    Agent,
    App,
    Topic,
}

const KINDS: usize = 11;

fn artifact_key(kind: crate::rules::ArtifactKind) -> KeyKind {
    use crate::rules::ArtifactKind as A;
    match kind {
        A::Rpms => KeyKind::Rpm,
        A::Containers => KeyKind::Container,
        A::Modules => KeyKind::Module,
        A::Flatpaks => KeyKind::Flatpak,
    }
}

type Key = (KeyKind, Box<str>);

/// A filter's rules, compiled and shared, with the order to evaluate them in (cheap first).
#[derive(Debug)]
struct RuleSet {
    rules: Vec<Arc<CompiledRule>>,
    eval_order: Vec<usize>,
}

#[derive(Debug)]
struct UserEntry {
    name: String,
    destinations: Vec<Destination>,
    filters: Vec<FilterEntry>,
}

#[derive(Debug)]
struct FilterEntry {
    id: String,
    name: String,
    oneshot: bool,
    destinations: Vec<String>,
    rules: Arc<RuleSet>,
    /// Keys it is filed under; empty: evaluated for every message.
    anchor: Vec<Key>,
}

/// A filter left out of the index because a rule no longer compiles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedFilter {
    pub user: String,
    pub filter_id: String,
    pub error: RuleError,
}

/// Sizes, for logs and the benchmark.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IndexStats {
    pub users: usize,
    pub filters: usize,
    /// Filters evaluated for every message (no indexable rule).
    pub scanned_filters: usize,
    pub keys: usize,
    pub postings: usize,
    pub distinct_rules: usize,
    pub distinct_rule_sets: usize,
}

/// A (user slot, filter position) reference.
type FilterRef = (u32, u16);

/// The matcher: preferences of every user, indexed.
#[derive(Debug, Default)]
pub struct Matcher {
    users: Vec<Option<UserEntry>>,
    slots: HashMap<String, u32>,
    free: Vec<u32>,
    postings: [HashMap<Box<str>, Vec<FilterRef>>; KINDS],
    scan: Vec<FilterRef>,
    rules: HashMap<Rule, Arc<CompiledRule>>,
    rule_sets: HashMap<Vec<Rule>, Arc<RuleSet>>,
    ownership: Arc<Ownership>,
}

impl Matcher {
    /// An empty matcher using `ownership`.
    pub fn new(ownership: Arc<Ownership>) -> Self {
        Self {
            ownership,
            ..Self::default()
        }
    }

    /// Builds a matcher from every user's preferences.
    pub fn build(
        users: impl IntoIterator<Item = UserPrefs>,
        ownership: Arc<Ownership>,
    ) -> (Self, Vec<SkippedFilter>) {
        let mut m = Self::new(ownership);
        let mut skipped = Vec::new();
        for user in users {
            skipped.extend(m.upsert(&user));
        }
        (m, skipped)
    }

    /// The ownership data in use.
    pub fn ownership(&self) -> &Arc<Ownership> {
        &self.ownership
    }

    /// Replaces the ownership data and re-files every filter (anchors depend on group
    /// membership).
    pub fn set_ownership(&mut self, ownership: Arc<Ownership>) {
        self.ownership = ownership;
        self.postings = Default::default();
        self.scan.clear();
        let mut filings = Vec::new();
        for (slot, user) in self.users.iter_mut().enumerate() {
            let Some(user) = user else { continue };
            for (pos, filter) in user.filters.iter_mut().enumerate() {
                filter.anchor = anchor(&filter.rules, &user.name, &self.ownership);
                filings.push(((slot as u32, pos as u16), filter.anchor.clone()));
            }
        }
        for (at, keys) in filings {
            self.file(at, &keys);
        }
    }

    /// Adds or replaces a user's preferences. Returns the filters left out because a rule does
    /// not compile (the rest of the user's filters still work).
    pub fn upsert(&mut self, prefs: &UserPrefs) -> Vec<SkippedFilter> {
        self.remove(&prefs.name);
        let mut skipped = Vec::new();
        let mut filters = Vec::new();
        for filter in &prefs.filters {
            if !filter_can_send(prefs, filter) {
                continue;
            }
            match self.intern_set(&filter.rules) {
                Ok(rules) => filters.push(FilterEntry {
                    id: filter.id.clone(),
                    name: filter.name.clone(),
                    oneshot: filter.oneshot,
                    destinations: filter.destinations.clone(),
                    anchor: anchor(&rules, &prefs.name, &self.ownership),
                    rules,
                }),
                Err(error) => skipped.push(SkippedFilter {
                    user: prefs.name.clone(),
                    filter_id: filter.id.clone(),
                    error,
                }),
            }
        }
        if filters.is_empty() {
            return skipped;
        }
        let slot = self.free.pop().unwrap_or_else(|| {
            self.users.push(None);
            (self.users.len() - 1) as u32
        });
        for (pos, f) in filters.iter().enumerate() {
            let keys = f.anchor.clone();
            self.file((slot, pos as u16), &keys);
        }
        self.users[slot as usize] = Some(UserEntry {
            name: prefs.name.clone(),
            destinations: prefs.destinations.clone(),
            filters,
        });
        self.slots.insert(prefs.name.clone(), slot);
        skipped
    }

    /// Removes a user (nothing if unknown).
    pub fn remove(&mut self, name: &str) {
        let Some(slot) = self.slots.remove(name) else {
            return;
        };
        let Some(user) = self.users[slot as usize].take() else {
            return;
        };
        for (pos, filter) in user.filters.into_iter().enumerate() {
            self.unfile((slot, pos as u16), &filter.anchor);
            self.release_set(filter.rules);
        }
        self.free.push(slot);
    }

    /// Whether the user is in the index (has at least one filter that can send).
    pub fn contains(&self, name: &str) -> bool {
        self.slots.contains_key(name)
    }

    /// Sizes.
    pub fn stats(&self) -> IndexStats {
        let mut s = IndexStats {
            users: self.slots.len(),
            scanned_filters: self.scan.len(),
            distinct_rules: self.rules.len(),
            distinct_rule_sets: self.rule_sets.len(),
            ..IndexStats::default()
        };
        for user in self.users.iter().flatten() {
            s.filters += user.filters.len();
        }
        for map in &self.postings {
            s.keys += map.len();
            s.postings += map.values().map(Vec::len).sum::<usize>();
        }
        s
    }

    /// Everyone who gets this message, sorted by user then destination.
    pub fn matches(&self, facts: &MessageFacts<'_>) -> Vec<Match> {
        let mut candidates: Vec<FilterRef> = self.scan.clone();
        let meta = facts.meta;
        let mut look = |kind: KeyKind, key: &str| {
            if let Some(list) = self.postings[kind as usize].get(key) {
                candidates.extend_from_slice(list);
            }
        };
        for u in &meta.usernames {
            look(KeyKind::User, u);
        }
        for a in &facts.artifacts {
            look(artifact_key(a.kind), &a.name);
        }
        for u in &facts.owners.users {
            look(KeyKind::OwnerUser, u);
        }
        for g in &facts.owners.groups {
            look(KeyKind::OwnerGroup, g);
        }
        for g in &facts.user_groups {
            look(KeyKind::Group, g);
        }
        if let Some(agent) = &meta.agent {
            look(KeyKind::Agent, agent);
        }
        look(KeyKind::App, &facts.app);
        look(KeyKind::Topic, facts.topic());
        candidates.sort_unstable();
        candidates.dedup();

        let mut cache: HashMap<*const CompiledRule, bool> = HashMap::new();
        let mut out = Vec::new();
        let mut i = 0;
        while i < candidates.len() {
            let slot = candidates[i].0;
            let end = candidates[i..]
                .iter()
                .position(|c| c.0 != slot)
                .map_or(candidates.len(), |n| i + n);
            let Some(user) = &self.users[slot as usize] else {
                i = end;
                continue;
            };
            let matched = candidates[i..end].iter().filter_map(|&(_, pos)| {
                let filter = &user.filters[pos as usize];
                self.holds(filter, &user.name, facts, &mut cache)
                    .then(|| MatchedFilter {
                        id: &filter.id,
                        name: &filter.name,
                        oneshot: filter.oneshot,
                        destinations: &filter.destinations,
                        reason: reason_of(&filter.rules, &user.name),
                    })
            });
            fan_out(&user.name, &user.destinations, matched, &mut out);
            i = end;
        }
        sort_matches(&mut out);
        out
    }

    fn holds(
        &self,
        filter: &FilterEntry,
        owner: &str,
        facts: &MessageFacts<'_>,
        cache: &mut HashMap<*const CompiledRule, bool>,
    ) -> bool {
        filter.rules.eval_order.iter().all(|&i| {
            let rule = &filter.rules.rules[i];
            if rule.is_costly() && rule.is_owner_independent() {
                *cache
                    .entry(Arc::as_ptr(rule))
                    .or_insert_with(|| rule.holds(owner, facts, &self.ownership))
            } else {
                rule.holds(owner, facts, &self.ownership)
            }
        })
    }

    fn file(&mut self, at: FilterRef, keys: &[Key]) {
        if keys.is_empty() {
            self.scan.push(at);
        }
        for (kind, key) in keys {
            self.postings[*kind as usize]
                .entry(key.clone())
                .or_default()
                .push(at);
        }
    }

    fn unfile(&mut self, at: FilterRef, keys: &[Key]) {
        if keys.is_empty() {
            if let Some(i) = self.scan.iter().position(|&x| x == at) {
                self.scan.swap_remove(i);
            }
        }
        for (kind, key) in keys {
            let map = &mut self.postings[*kind as usize];
            if let Some(list) = map.get_mut(key) {
                if let Some(i) = list.iter().position(|&x| x == at) {
                    list.swap_remove(i);
                }
                if list.is_empty() {
                    map.remove(key);
                }
            }
        }
    }

    fn intern_set(&mut self, rules: &[Rule]) -> Result<Arc<RuleSet>, RuleError> {
        if let Some(set) = self.rule_sets.get(rules) {
            return Ok(set.clone());
        }
        let mut compiled = Vec::with_capacity(rules.len());
        for rule in rules {
            let c = match self.rules.get(rule) {
                Some(c) => c.clone(),
                None => Arc::new(CompiledRule::compile(rule)?),
            };
            compiled.push(c);
        }
        for c in &compiled {
            self.rules
                .entry(c.source.clone())
                .or_insert_with(|| c.clone());
        }
        let mut eval_order: Vec<usize> = (0..compiled.len()).collect();
        eval_order.sort_by_key(|&i| compiled[i].is_costly());
        let set = Arc::new(RuleSet {
            rules: compiled,
            eval_order,
        });
        self.rule_sets.insert(rules.to_vec(), set.clone());
        Ok(set)
    }

    fn release_set(&mut self, set: Arc<RuleSet>) {
        // Two holders left: the map and us. Then nobody else uses it.
        if Arc::strong_count(&set) > 2 {
            return;
        }
        let key: Vec<Rule> = set.rules.iter().map(|r| r.source.clone()).collect();
        self.rule_sets.remove(&key);
        let rules: Vec<Rule> = key;
        drop(set);
        let mut seen = HashSet::new();
        for rule in rules {
            if !seen.insert(rule.clone()) {
                continue;
            }
            if self
                .rules
                .get(&rule)
                .is_some_and(|c| Arc::strong_count(c) == 1)
            {
                self.rules.remove(&rule);
            }
        }
    }
}

fn reason_of(set: &RuleSet, owner: &str) -> String {
    set.rules
        .iter()
        .find(|r| !r.source.negated)
        .or(set.rules.first())
        .map(|r| summary(&r.source, owner))
        .unwrap_or_default()
}

/// The keys to file a filter under: those of its most selective indexable positive rule; none
/// when it has no such rule.
fn anchor(set: &RuleSet, owner: &str, ownership: &Ownership) -> Vec<Key> {
    let mut best: Option<(u8, Vec<Key>)> = None;
    for rule in &set.rules {
        let Some((rank, keys)) = keys_of(&rule.source, owner, ownership) else {
            continue;
        };
        let better = match &best {
            None => true,
            Some((r, k)) => (rank, keys.len()) < (*r, k.len()),
        };
        if better {
            best = Some((rank, keys));
        }
    }
    best.map(|(_, keys)| keys).unwrap_or_default()
}

/// A rule's index keys and rank (lower is more selective), if it can be indexed: the rule
/// holds only if the message has at least one of the keys.
fn keys_of(rule: &Rule, owner: &str, ownership: &Ownership) -> Option<(u8, Vec<Key>)> {
    if rule.negated {
        return None;
    }
    let keys = |kind: KeyKind, names: &mut dyn Iterator<Item = &str>| -> Vec<Key> {
        let mut v: Vec<Key> = names.map(|n| (kind, Box::from(n))).collect();
        v.sort();
        v.dedup();
        v
    };
    Some(match &rule.kind {
        RuleKind::User { users } => (
            0,
            keys(KeyKind::User, &mut users.iter().map(|s| s.as_str())),
        ),
        RuleKind::RelatedEvents => (0, keys(KeyKind::User, &mut std::iter::once(owner))),
        RuleKind::Package { packages } => (
            0,
            keys(KeyKind::Rpm, &mut packages.iter().map(|s| s.as_str())),
        ),
        RuleKind::ArtifactsFollowed { artifacts } => {
            let mut v: Vec<Key> = artifacts
                .iter()
                .map(|a| (artifact_key(a.kind), Box::from(a.name.as_str())))
                .collect();
            v.sort();
            v.dedup();
            (0, v)
        }
        RuleKind::UsersFollowed { users } => (
            0,
            keys(KeyKind::Agent, &mut users.iter().map(|s| s.as_str())),
        ),
        RuleKind::ArtifactsOwned { users } if users.is_empty() => {
            (0, keys(KeyKind::OwnerUser, &mut std::iter::once(owner)))
        }
        RuleKind::ArtifactsOwned { users } => (
            0,
            keys(KeyKind::OwnerUser, &mut users.iter().map(|s| s.as_str())),
        ),
        RuleKind::UserPackages { user } => {
            let user = if user.is_empty() { owner } else { user };
            let mut v = keys(KeyKind::OwnerUser, &mut std::iter::once(user));
            v.extend(
                ownership
                    .groups_of(user)
                    .iter()
                    .map(|g| (KeyKind::OwnerGroup, Box::from(g.as_str()))),
            );
            (0, v)
        }
        RuleKind::GroupMembers { group } => (
            1,
            keys(KeyKind::Group, &mut std::iter::once(group.as_str())),
        ),
        RuleKind::ArtifactsGroupOwned { groups } => (
            1,
            keys(KeyKind::OwnerGroup, &mut groups.iter().map(|s| s.as_str())),
        ),
        RuleKind::Topic { glob } => {
            let g = crate::rules::Glob::new(glob).ok()?;
            (2, keys(KeyKind::Topic, &mut g.literal().into_iter()))
        }
        RuleKind::Applications { applications } => {
            let lower: Vec<String> = applications.iter().map(|a| a.to_lowercase()).collect();
            (3, keys(KeyKind::App, &mut lower.iter().map(|s| s.as_str())))
        }
        RuleKind::NotUser { .. }
        | RuleKind::PackageRegex { .. }
        | RuleKind::Regex { .. }
        | RuleKind::Severities { .. }
        | RuleKind::NotMyActions => return None,
    })
    .filter(|(_, k)| !k.is_empty())
}
