//! The indexed matcher.
//!
//! Each filter is filed under the keys of one of its positive rules (its *anchor*): a filter
//! that needs "alice is among the users" is filed under user `alice`, one that needs "an
//! artifact maintained by bob" under owner `bob` (and bob's groups), and so on. A message
//! looks up its own keys (its users, artifacts, their maintainers, the groups of its users,
//! its agent, application and topic) and evaluates only the filters found there, plus the few
//! that have no indexable rule (a regex alone, say). A filter whose anchor key is absent from
//! the message cannot match, because its anchor rule cannot hold; and a filter found through
//! one of its anchor keys needs no test of its anchor rule, which holds by construction.
//!
//! Rules and whole rule lists are interned: the default filters of a hundred thousand users
//! share one compiled copy. A rule list is split into the rules that depend on the filter's
//! owner ("me") and those that do not; the latter are evaluated once per message per rule
//! list, however many filters share it (the default filters' dozen topic exclusions, say), and
//! a costly rule (a regex) once per message however many rule lists hold it. Filters without
//! an indexable rule are kept grouped by rule list, so a message costs one evaluation per
//! distinct list of them, not one per filter, and those lists with a body regex are skipped
//! when the body holds none of its required literals (one Aho-Corasick pass for all of them,
//! see `prefilter`).
//!
//! What a match needs is kept close at hand: each filter knows the positions of the confirmed
//! destinations it feeds, and filter ids and names are interned. A match shares its text with
//! the index (the user's name and each destination are made once, on the user's first match),
//! so making one allocates nothing but, for a reason that names the owner, the reason.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, OnceLock};

use crate::ownership::Ownership;
use crate::prefs::{Delivery, Destination, DestinationKind, UserPrefs};
use crate::rules::{Rule, RuleError, RuleKind};
use crate::schedule::QuietHours;

use super::compiled::{summary, CompiledRule};
use super::facts::MessageFacts;
use super::matched::{filter_can_send, reason_code, Match};
use super::prefilter::Prefilter;

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
    /// A topic's service and event (`Topic::title`): catalogue entries' exact topics.
    Event,
    /// A label prefix of the service and event: catalogue entries' `x.*` topics.
    EventBelow,
}

const KINDS: usize = 13;

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

/// A filter's rules, compiled and shared, split by what they depend on.
#[derive(Debug)]
struct RuleSet {
    rules: Vec<Arc<CompiledRule>>,
    /// The rules that depend on the filter's owner (all cheap), evaluated per filter.
    personal: Vec<usize>,
    /// The rules that depend on the message only, cheap first: one result per message.
    shared: Vec<usize>,
    /// Whether the shared part is worth caching per message (more than one cheap rule, or a
    /// costly one); otherwise it is cheaper to evaluate it again.
    cache_shared: bool,
    /// The match reason, made on first match.
    reason: OnceLock<Reason>,
    /// The reason's stable code (see [`reason_code`]).
    reason_code: Arc<str>,
}

/// A match's reason (the first positive rule's summary), with a hole for the owner's name.
#[derive(Debug)]
enum Reason {
    /// No rules.
    Empty,
    Fixed(Arc<str>),
    AroundOwner(String, String),
    /// Could not be split safely: made at each match from this rule.
    Dynamic(usize),
}

impl RuleSet {
    /// The reason given to `owner` for a match: what [`summary`] says of the first positive
    /// rule (else the first rule).
    fn reason(&self, owner: &str) -> Arc<str> {
        let reason = self.reason.get_or_init(|| {
            let Some(i) = self
                .rules
                .iter()
                .position(|r| !r.source.negated)
                .or((!self.rules.is_empty()).then_some(0))
            else {
                return Reason::Empty;
            };
            // Two owners that no rule's text can hold tell whether and where the name goes.
            let rule = &self.rules[i].source;
            let a = summary(rule, "\u{1}");
            let b = summary(rule, "\u{2}");
            if a == b {
                return Reason::Fixed(Arc::from(a));
            }
            match a.split_once('\u{1}') {
                Some((pre, post))
                    if !post.contains('\u{1}') && b == format!("{pre}\u{2}{post}") =>
                {
                    Reason::AroundOwner(pre.to_string(), post.to_string())
                }
                _ => Reason::Dynamic(i),
            }
        });
        match reason {
            Reason::Empty => Arc::from(""),
            Reason::Fixed(s) => s.clone(),
            Reason::AroundOwner(pre, post) => {
                let mut s = String::with_capacity(pre.len() + owner.len() + post.len());
                s.push_str(pre);
                s.push_str(owner);
                s.push_str(post);
                Arc::from(s)
            }
            Reason::Dynamic(i) => Arc::from(summary(&self.rules[*i].source, owner)),
        }
    }
}

/// A user, laid out so that a match reads little memory.
#[derive(Debug)]
struct UserEntry {
    /// The name, then the address of each destination, back to back.
    text: Box<str>,
    name_len: u32,
    /// The name, shared with the matches, made on the first match.
    shared_name: OnceLock<Arc<str>>,
    /// The user's time zone, shared with the matches (none: UTC).
    time_zone: Option<Arc<str>>,
    /// The confirmed destinations (the first of each id), sorted by id.
    destinations: Box<[DestEntry]>,
    filters: Vec<FilterEntry>,
}

/// A confirmed destination; its address is in the user's `text`.
#[derive(Debug)]
struct DestEntry {
    id: Arc<str>,
    address: (u32, u32),
    kind: DestinationKind,
    delivery: Delivery,
    irc_colour: bool,
    verbose: bool,
    quiet_hours: Option<QuietHours>,
    /// The destination, shared with the matches, made on the first match.
    shared: OnceLock<Arc<Destination>>,
}

impl UserEntry {
    fn name(&self) -> &str {
        &self.text[..self.name_len as usize]
    }

    /// The name, shared.
    fn shared_name(&self) -> Arc<str> {
        self.shared_name
            .get_or_init(|| Arc::from(self.name()))
            .clone()
    }

    /// The destination as the user's preferences have it, shared.
    fn shared_destination(&self, d: &DestEntry) -> Arc<Destination> {
        d.shared
            .get_or_init(|| Arc::new(self.destination(d)))
            .clone()
    }

    /// The destination as the user's preferences have it.
    fn destination(&self, d: &DestEntry) -> Destination {
        Destination {
            id: d.id.to_string(),
            kind: d.kind,
            address: self.text[d.address.0 as usize..d.address.1 as usize].to_string(),
            confirmed: true,
            delivery: d.delivery,
            irc_colour: d.irc_colour,
            verbose: d.verbose,
            // Only active destinations are indexed: none is stopped.
            health: Default::default(),
            quiet_hours: d.quiet_hours,
            // Only active destinations are indexed: none is paused.
            paused: false,
            // Provenance is for pages, not for delivery.
            verified_by: None,
        }
    }
}

/// The destinations a filter feeds: positions in the user's list, as a bit set of those
/// under 64 and a list of any others.
#[derive(Debug, Default)]
struct Feeds {
    low: u64,
    high: Box<[u16]>,
}

impl Feeds {
    fn new(mut positions: Vec<usize>) -> Self {
        positions.sort_unstable();
        positions.dedup();
        let mut feeds = Self::default();
        let mut high = Vec::new();
        for p in positions {
            if p < 64 {
                feeds.low |= 1 << p;
            } else {
                high.push(p as u16);
            }
        }
        feeds.high = high.into();
        feeds
    }
}

/// No anchor rule: the filter is scanned.
const NO_ANCHOR: u32 = u32::MAX;

#[derive(Debug)]
struct FilterEntry {
    id: Arc<str>,
    name: Arc<str>,
    oneshot: bool,
    urgent: bool,
    max_per_hour: Option<u32>,
    /// What it feeds.
    feeds: Feeds,
    rules: Arc<RuleSet>,
    /// The rule whose keys the filter is filed under, or [`NO_ANCHOR`].
    anchor_rule: u32,
    /// Whether it has rules besides the anchor rule.
    more: bool,
}

impl FilterEntry {
    fn set_anchor(&mut self, anchor_rule: Option<usize>) {
        // A catalogue entry's keys are its topics: its field tests still need testing.
        let anchor_rule =
            anchor_rule.filter(|&i| anchor_is_implied(&self.rules.rules[i].source.kind));
        self.anchor_rule = anchor_rule.map_or(NO_ANCHOR, |i| i as u32);
        self.more = self.rules.rules.len() > usize::from(anchor_rule.is_some());
    }
}

/// Whether a message having one of a rule's keys means the rule holds.
fn anchor_is_implied(kind: &RuleKind) -> bool {
    match kind {
        RuleKind::Catalogue { entry, .. } => crate::rules::service_catalogue()
            .entry(entry)
            .is_some_and(|e| e.r#where.is_empty()),
        _ => true,
    }
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

/// Filters evaluated for every message, with the rule list they share.
#[derive(Debug)]
struct ScanGroup {
    rules: Arc<RuleSet>,
    filters: Vec<FilterRef>,
}

/// A quick hasher for the per-message caches, keyed by addresses.
#[derive(Default)]
struct AddrHasher(u64);

impl Hasher for AddrHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        let x = (self.0 ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.0 = x ^ (x >> 29);
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

type AddrMap<V> = HashMap<usize, V, BuildHasherDefault<AddrHasher>>;

/// The index's maps: std's SipHash was a third of building the index from 100,000 users
/// (every filter's rule list and every key hashed); foldhash is several times faster and
/// still seeded per process, so keys users choose cannot be made to collide.
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
type FastSet<K> = HashSet<K, foldhash::fast::RandomState>;

/// The matcher: preferences of every user, indexed.
#[derive(Debug, Default)]
pub struct Matcher {
    users: Vec<Option<UserEntry>>,
    slots: FastMap<String, u32>,
    free: Vec<u32>,
    postings: [FastMap<Box<str>, Vec<FilterRef>>; KINDS],
    /// Filters without an indexable rule, grouped by rule list.
    scan: Vec<ScanGroup>,
    /// Where each rule list's group is in `scan`, by the list's address.
    scan_at: FastMap<usize, usize>,
    scanned: usize,
    /// The literal gates of `scan`'s groups, in its order; made again after it changes.
    prefilter: OnceLock<Prefilter>,
    /// The prefilter switched off (only to measure what it saves).
    no_prefilter: bool,
    rules: FastMap<Rule, Arc<CompiledRule>>,
    rule_sets: FastMap<Vec<Rule>, Arc<RuleSet>>,
    /// Filter ids and names, shared.
    strings: FastSet<Arc<str>>,
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

    /// Switches the literal prefilter of the always-evaluated filters on (the default) or off;
    /// off only to measure what it saves (`cargo bench -p fmn-core --bench regex_filters`).
    pub fn set_literal_prefilter(&mut self, on: bool) {
        self.no_prefilter = !on;
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
        self.scan_at.clear();
        self.scanned = 0;
        self.prefilter = OnceLock::new();
        let mut filings = Vec::new();
        for (slot, user) in self.users.iter_mut().enumerate() {
            let Some(user) = user else { continue };
            let name = &user.text[..user.name_len as usize];
            for (pos, filter) in user.filters.iter_mut().enumerate() {
                let (rule, keys) = anchor(&filter.rules, name, &self.ownership);
                filter.set_anchor(rule);
                filings.push(((slot as u32, pos as u16), keys, filter.rules.clone()));
            }
        }
        for (at, keys, rules) in filings {
            self.file(at, &keys, &rules);
        }
    }

    /// Adds or replaces a user's preferences. Returns the filters left out because a rule does
    /// not compile (the rest of the user's filters still work).
    pub fn upsert(&mut self, prefs: &UserPrefs) -> Vec<SkippedFilter> {
        self.remove(&prefs.name);
        // Only the first destination with an id can be reached; only confirmed ones receive.
        let mut destinations: Vec<&Destination> = Vec::new();
        for (i, d) in prefs.destinations.iter().enumerate() {
            if d.is_active() && prefs.destinations[..i].iter().all(|e| e.id != d.id) {
                destinations.push(d);
            }
        }
        destinations.sort_by(|a, b| a.id.cmp(&b.id));
        let mut skipped = Vec::new();
        let mut filters = Vec::new();
        let mut filings = Vec::new();
        for filter in &prefs.filters {
            if !filter_can_send(prefs, filter) {
                continue;
            }
            match self.intern_set(&filter.rules) {
                Ok(rules) => {
                    let feeds = Feeds::new(
                        filter
                            .destinations
                            .iter()
                            .filter_map(|id| destinations.iter().position(|d| d.id == *id))
                            .collect(),
                    );
                    let (rule, keys) = anchor(&rules, &prefs.name, &self.ownership);
                    let mut entry = FilterEntry {
                        id: self.intern_str(&filter.id),
                        name: self.intern_str(&filter.name),
                        oneshot: filter.oneshot,
                        urgent: filter.urgent,
                        max_per_hour: filter.max_per_hour,
                        feeds,
                        rules,
                        anchor_rule: NO_ANCHOR,
                        more: true,
                    };
                    entry.set_anchor(rule);
                    filings.push(keys);
                    filters.push(entry);
                }
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
        for (pos, (f, keys)) in filters.iter().zip(&filings).enumerate() {
            self.file((slot, pos as u16), keys, &f.rules);
        }
        let mut text = prefs.name.clone();
        let mut dests = Vec::with_capacity(destinations.len());
        for d in destinations {
            let from = text.len() as u32;
            text.push_str(&d.address);
            dests.push(DestEntry {
                id: self.intern_str(&d.id),
                address: (from, text.len() as u32),
                kind: d.kind,
                delivery: d.delivery,
                irc_colour: d.irc_colour,
                verbose: d.verbose,
                quiet_hours: d.quiet_hours,
                shared: OnceLock::new(),
            });
        }
        self.users[slot as usize] = Some(UserEntry {
            text: text.into_boxed_str(),
            name_len: prefs.name.len() as u32,
            shared_name: OnceLock::new(),
            time_zone: prefs.time_zone.as_deref().map(Arc::from),
            destinations: dests.into(),
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
        let name = &user.text[..user.name_len as usize];
        for (pos, filter) in user.filters.into_iter().enumerate() {
            // The ownership has not changed since it was filed (`set_ownership` re-files), so
            // its keys are the same.
            let (_, keys) = anchor(&filter.rules, name, &self.ownership);
            self.unfile((slot, pos as u16), &keys, &filter.rules);
            self.release_str(filter.id);
            self.release_str(filter.name);
            self.release_set(filter.rules);
        }
        for d in user.destinations.into_vec() {
            self.release_str(d.id);
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
            scanned_filters: self.scanned,
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
        let mut eval = Eval {
            facts,
            ownership: &self.ownership,
            shared: AddrMap::with_capacity_and_hasher(64, Default::default()),
            costly: AddrMap::default(),
        };
        let mut hits: Vec<FilterRef> = Vec::with_capacity(64);

        // Filters without an index key: one test of the shared rules per rule list (unless the
        // body lacks every literal its regex needs), then the owner's rules of each filter
        // whose list passed.
        if !self.scan.is_empty() {
            let prefilter = self.prefilter.get_or_init(|| {
                if self.no_prefilter {
                    return Prefilter::default();
                }
                Prefilter::build(
                    self.scan
                        .iter()
                        .map(|g| g.rules.rules.iter().map(|r| &r.source)),
                )
            });
            let present = prefilter.scan(|| facts.regex_haystack());
            for (i, group) in self.scan.iter().enumerate() {
                if !prefilter.may_hold(i, &present) || !eval.shared(&group.rules) {
                    continue;
                }
                for &(slot, pos) in &group.filters {
                    if let Some(user) = &self.users[slot as usize] {
                        if eval.personal(&group.rules, user.name(), NO_ANCHOR) {
                            hits.push((slot, pos));
                        }
                    }
                }
            }
        }

        // Filters filed under one of the message's keys.
        let mut candidates: Vec<FilterRef> = Vec::with_capacity(64);
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
        let title = facts.envelope.topic().title();
        look(KeyKind::Event, title);
        if !self.postings[KeyKind::EventBelow as usize].is_empty() {
            for (i, _) in title.match_indices('.') {
                look(KeyKind::EventBelow, &title[..i]);
            }
            look(KeyKind::EventBelow, title);
        }
        candidates.sort_unstable();
        candidates.dedup();
        for &(slot, pos) in &candidates {
            let Some(user) = &self.users[slot as usize] else {
                continue;
            };
            if eval.filed_holds(&user.filters[pos as usize], user.name()) {
                hits.push((slot, pos));
            }
        }
        self.fan_out(hits)
    }

    /// Turns the filters that hold into matches: per user, one per destination, from the
    /// first filter (in the user's order) that feeds it; users in name order, each user's
    /// matches in destination order.
    fn fan_out(&self, mut hits: Vec<FilterRef>) -> Vec<Match> {
        // No filter is both scanned and filed under a key, so `hits` has no duplicates.
        hits.sort_unstable();
        let mut users: Vec<(&UserEntry, usize, usize)> = Vec::new();
        let mut i = 0;
        while i < hits.len() {
            let slot = hits[i].0;
            let mut end = i + 1;
            while end < hits.len() && hits[end].0 == slot {
                end += 1;
            }
            if let Some(user) = &self.users[slot as usize] {
                users.push((user, i, end));
            }
            i = end;
        }
        users.sort_unstable_by(|a, b| a.0.name().cmp(b.0.name()));
        let mut out: Vec<Match> = Vec::with_capacity(hits.len());
        // (destination position, filter position): who feeds each destination.
        let mut won: Vec<(u16, u16)> = Vec::new();
        for (user, from, to) in users {
            won.clear();
            let mut taken = 0u64;
            for &(_, pos) in &hits[from..to] {
                let feeds = &user.filters[pos as usize].feeds;
                let mut new = feeds.low & !taken;
                taken |= new;
                while new != 0 {
                    won.push((new.trailing_zeros() as u16, pos));
                    new &= new - 1;
                }
                for &dest in feeds.high.iter() {
                    if !won.iter().any(|&(d, _)| d == dest) {
                        won.push((dest, pos));
                    }
                }
            }
            won.sort_unstable();
            let name = user.shared_name();
            for &(dest, pos) in &won {
                let filter = &user.filters[pos as usize];
                out.push(Match {
                    user: name.clone(),
                    filter_id: filter.id.clone(),
                    filter_name: filter.name.clone(),
                    oneshot: filter.oneshot,
                    destination: user.shared_destination(&user.destinations[dest as usize]),
                    reason: filter.rules.reason(&name),
                    reason_code: filter.rules.reason_code.clone(),
                    urgent: filter.urgent,
                    max_per_hour: filter.max_per_hour,
                    time_zone: user.time_zone.clone(),
                });
            }
        }
        out
    }

    fn file(&mut self, at: FilterRef, keys: &[Key], rules: &Arc<RuleSet>) {
        if keys.is_empty() {
            let addr = Arc::as_ptr(rules) as usize;
            let i = *self.scan_at.entry(addr).or_insert_with(|| {
                self.prefilter = OnceLock::new();
                self.scan.push(ScanGroup {
                    rules: rules.clone(),
                    filters: Vec::new(),
                });
                self.scan.len() - 1
            });
            self.scan[i].filters.push(at);
            self.scanned += 1;
        }
        for (kind, key) in keys {
            self.postings[*kind as usize]
                .entry(key.clone())
                .or_default()
                .push(at);
        }
    }

    fn unfile(&mut self, at: FilterRef, keys: &[Key], rules: &Arc<RuleSet>) {
        if keys.is_empty() {
            let addr = Arc::as_ptr(rules) as usize;
            if let Some(&i) = self.scan_at.get(&addr) {
                let group = &mut self.scan[i];
                if let Some(j) = group.filters.iter().position(|&x| x == at) {
                    group.filters.swap_remove(j);
                    self.scanned -= 1;
                }
                if group.filters.is_empty() {
                    self.prefilter = OnceLock::new();
                    self.scan_at.remove(&addr);
                    self.scan.swap_remove(i);
                    if let Some(moved) = self.scan.get(i) {
                        self.scan_at.insert(Arc::as_ptr(&moved.rules) as usize, i);
                    }
                }
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

    fn intern_str(&mut self, s: &str) -> Arc<str> {
        if let Some(shared) = self.strings.get(s) {
            return shared.clone();
        }
        let shared: Arc<str> = Arc::from(s);
        self.strings.insert(shared.clone());
        shared
    }

    fn release_str(&mut self, s: Arc<str>) {
        // Two holders left: the set and us.
        if Arc::strong_count(&s) <= 2 {
            self.strings.remove(&*s);
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
        let (mut shared, mut personal): (Vec<usize>, Vec<usize>) =
            (0..compiled.len()).partition(|&i| compiled[i].is_owner_independent());
        shared.sort_by_key(|&i| compiled[i].is_costly());
        personal.sort_by_key(|&i| compiled[i].is_costly());
        let cache_shared = shared.len() > 1 || shared.iter().any(|&i| compiled[i].is_costly());
        let set = Arc::new(RuleSet {
            rules: compiled,
            personal,
            shared,
            cache_shared,
            reason: OnceLock::new(),
            reason_code: Arc::from(reason_code(rules)),
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

/// One message's evaluation: results shared between the filters that need them.
struct Eval<'a, 'f> {
    facts: &'a MessageFacts<'f>,
    ownership: &'a Ownership,
    /// The shared part's result, by rule list address.
    shared: AddrMap<bool>,
    /// A costly rule's result, by rule address.
    costly: AddrMap<bool>,
}

impl Eval<'_, '_> {
    /// Whether a filter found through one of its keys holds: its anchor rule does (the key
    /// is the message's), so only the others are tested.
    fn filed_holds(&mut self, filter: &FilterEntry, owner: &str) -> bool {
        if !filter.more {
            return true;
        }
        let rules = &filter.rules;
        if !self.personal(rules, owner, filter.anchor_rule) {
            return false;
        }
        if rules.cache_shared {
            return self.shared(rules);
        }
        let skip = filter.anchor_rule as usize;
        rules
            .shared
            .iter()
            .all(|&i| i == skip || self.shared_rule(&rules.rules[i]))
    }

    /// Whether the rules that depend on the owner hold, but `skip`.
    fn personal(&self, rules: &RuleSet, owner: &str, skip: u32) -> bool {
        let skip = skip as usize;
        rules
            .personal
            .iter()
            .all(|&i| i == skip || rules.rules[i].holds(owner, self.facts, self.ownership))
    }

    /// Whether the rules that depend on the message only hold.
    fn shared(&mut self, rules: &Arc<RuleSet>) -> bool {
        if !rules.cache_shared {
            return rules
                .shared
                .iter()
                .all(|&i| self.shared_rule(&rules.rules[i]));
        }
        let key = Arc::as_ptr(rules) as usize;
        if let Some(&held) = self.shared.get(&key) {
            return held;
        }
        let held = rules
            .shared
            .iter()
            .all(|&i| self.shared_rule(&rules.rules[i]));
        self.shared.insert(key, held);
        held
    }

    /// One rule that ignores the owner (see `CompiledRule::is_owner_independent`).
    fn shared_rule(&mut self, rule: &Arc<CompiledRule>) -> bool {
        if !rule.is_costly() {
            return rule.holds("", self.facts, self.ownership);
        }
        let key = Arc::as_ptr(rule) as usize;
        if let Some(&held) = self.costly.get(&key) {
            return held;
        }
        let held = rule.holds("", self.facts, self.ownership);
        self.costly.insert(key, held);
        held
    }
}

/// The keys to file a filter under: those of its most selective indexable positive rule, and
/// that rule's position; none when it has no such rule.
fn anchor(set: &RuleSet, owner: &str, ownership: &Ownership) -> (Option<usize>, Vec<Key>) {
    let mut best: Option<(u8, usize, Vec<Key>)> = None;
    for (i, rule) in set.rules.iter().enumerate() {
        let Some((rank, keys)) = keys_of(&rule.source, owner, ownership) else {
            continue;
        };
        let better = match &best {
            None => true,
            Some((r, _, k)) => (rank, keys.len()) < (*r, k.len()),
        };
        if better {
            best = Some((rank, i, keys));
        }
    }
    match best {
        Some((_, i, keys)) => (Some(i), keys),
        None => (None, Vec::new()),
    }
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
        RuleKind::Catalogue { entry, .. } => {
            let entry = crate::rules::service_catalogue().entry(entry)?;
            let mut v: Vec<Key> = entry
                .topics
                .iter()
                .map(|t| match t {
                    crate::rules::TopicPattern::Exact(e) => (KeyKind::Event, Box::from(e.as_str())),
                    crate::rules::TopicPattern::Below(p) => {
                        (KeyKind::EventBelow, Box::from(p.as_str()))
                    }
                })
                .collect();
            v.sort();
            v.dedup();
            (2, v)
        }
        RuleKind::NotUser { .. }
        | RuleKind::PackageRegex { .. }
        | RuleKind::Regex { .. }
        | RuleKind::Severities { .. }
        | RuleKind::NotMyActions => return None,
    })
    .filter(|(_, k)| !k.is_empty())
}
