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

use std::collections::HashMap;
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

/// An index key. A user's own name is shared with the user's entry (`UserEntry::name`).
type Key = (KeyKind, Arc<str>);

/// A filter id's or name's (or a destination id's) place in [`Strings`].
type Sym = u32;

/// Filter ids and names and destination ids, interned: the default filters of a hundred
/// thousand users share one copy of each, and a filter holds 4-byte handles to them.
#[derive(Debug, Default)]
struct Strings {
    syms: FastMap<Arc<str>, Sym>,
    /// Each text and how many hold it; a text nobody holds is the empty one, its place free.
    texts: Vec<(Arc<str>, u32)>,
    free: Vec<Sym>,
}

impl Strings {
    fn intern(&mut self, s: &str) -> Sym {
        if let Some(&sym) = self.syms.get(s) {
            self.texts[sym as usize].1 += 1;
            return sym;
        }
        let text: Arc<str> = Arc::from(s);
        let sym = match self.free.pop() {
            Some(sym) => {
                self.texts[sym as usize] = (text.clone(), 1);
                sym
            }
            None => {
                self.texts.push((text.clone(), 1));
                (self.texts.len() - 1) as Sym
            }
        };
        self.syms.insert(text, sym);
        sym
    }

    fn text(&self, sym: Sym) -> &Arc<str> {
        &self.texts[sym as usize].0
    }

    fn release(&mut self, sym: Sym) {
        let (text, holders) = &mut self.texts[sym as usize];
        *holders -= 1;
        if *holders == 0 {
            self.syms.remove(&**text);
            *text = Arc::from("");
            self.free.push(sym);
        }
    }
}

/// The filters filed under one key: most keys (a user's own name, a package) have one.
#[derive(Debug)]
enum Postings {
    One(FilterRef),
    Many(Vec<FilterRef>),
}

impl Postings {
    fn as_slice(&self) -> &[FilterRef] {
        match self {
            Self::One(at) => std::slice::from_ref(at),
            Self::Many(list) => list,
        }
    }

    fn push(&mut self, at: FilterRef) {
        match self {
            Self::One(first) => *self = Self::Many(vec![*first, at]),
            Self::Many(list) => list.push(at),
        }
    }

    /// Takes `at` out; whether none is left.
    fn remove(&mut self, at: FilterRef) -> bool {
        match self {
            Self::One(only) => *only == at,
            Self::Many(list) => {
                if let Some(i) = list.iter().position(|&x| x == at) {
                    list.swap_remove(i);
                }
                match list[..] {
                    [] => return true,
                    [only] => *self = Self::One(only),
                    _ => {}
                }
                false
            }
        }
    }
}

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

/// A user, laid out so that a match reads little memory and a hundred thousand of them fit in
/// a small function.
#[derive(Debug)]
struct UserEntry {
    /// The name, shared with `Matcher::slots`, the keys that name the user and the matches.
    name: Arc<str>,
    /// The address of each destination, back to back.
    addresses: Box<str>,
    /// The user's time zone, shared with the matches (none: UTC).
    time_zone: Option<Arc<str>>,
    /// The confirmed destinations (the first of each id), sorted by id.
    destinations: Box<[DestEntry]>,
    filters: Box<[FilterEntry]>,
}

/// A confirmed destination; its address is in the user's `addresses`.
#[derive(Debug)]
struct DestEntry {
    id: Sym,
    address: (u32, u32),
    kind: DestinationKind,
    irc_colour: bool,
    verbose: bool,
    /// A delivery other than immediate, or quiet hours: apart, as most destinations have
    /// neither (a destination in 40 bytes, not 80).
    unusual: Option<Box<(Delivery, Option<QuietHours>)>>,
    /// The destination, shared with the matches, made on the first match.
    shared: OnceLock<Arc<Destination>>,
}

// A hundred thousand users hold one of each (and two of these) each: keep them small.
#[cfg(target_pointer_width = "64")]
const _: () =
    assert!(std::mem::size_of::<DestEntry>() <= 40 && std::mem::size_of::<FilterEntry>() <= 40);

impl UserEntry {
    /// The destination as the user's preferences have it, shared.
    fn shared_destination(&self, d: &DestEntry, strings: &Strings) -> Arc<Destination> {
        d.shared
            .get_or_init(|| Arc::new(self.destination(d, strings)))
            .clone()
    }

    /// The destination as the user's preferences have it.
    fn destination(&self, d: &DestEntry, strings: &Strings) -> Destination {
        Destination {
            id: strings.text(d.id).to_string(),
            kind: d.kind,
            address: self.addresses[d.address.0 as usize..d.address.1 as usize].to_string(),
            confirmed: true,
            delivery: d.unusual.as_ref().map_or(Delivery::Immediate, |u| u.0),
            irc_colour: d.irc_colour,
            verbose: d.verbose,
            // Only active destinations are indexed: none is stopped.
            health: Default::default(),
            quiet_hours: d.unusual.as_ref().and_then(|u| u.1),
            // Only active destinations are indexed: none is paused.
            paused: false,
            // Provenance is for pages, not for delivery.
            verified_by: None,
        }
    }
}

/// The destinations a filter feeds: positions in the user's list as a bit set, those under 64
/// (the API allows 10, `limits::MAX_DESTINATIONS`); any others are in `Matcher::wide_feeds`.
fn feeds(mut positions: Vec<usize>) -> (u64, Box<[u16]>) {
    positions.sort_unstable();
    positions.dedup();
    let mut low = 0u64;
    let mut high = Vec::new();
    for p in positions {
        if p < 64 {
            low |= 1 << p;
        } else {
            high.push(p as u16);
        }
    }
    (low, high.into())
}

/// No anchor rule: the filter is scanned.
const NO_ANCHOR: u32 = u32::MAX;

/// A filter, in 40 bytes.
#[derive(Debug)]
struct FilterEntry {
    rules: Arc<RuleSet>,
    /// What it feeds (see [`feeds`]).
    feeds: u64,
    id: Sym,
    name: Sym,
    max_per_hour: Option<u32>,
    oneshot: bool,
    urgent: bool,
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

/// The matcher: preferences of every user, indexed.
#[derive(Debug, Default)]
pub struct Matcher {
    users: Vec<Option<UserEntry>>,
    slots: FastMap<Arc<str>, u32>,
    free: Vec<u32>,
    postings: [FastMap<Arc<str>, Postings>; KINDS],
    /// The destinations past the 64th that a filter feeds (see [`feeds`]).
    wide_feeds: FastMap<FilterRef, Box<[u16]>>,
    /// Filters without an indexable rule, grouped by rule list.
    scan: Vec<ScanGroup>,
    /// Where each rule list's group is in `scan`, by the list's address.
    scan_at: FastMap<usize, usize>,
    scanned: usize,
    /// The literal gates of `scan`'s groups, in its order; made again after it changes.
    prefilter: OnceLock<Prefilter>,
    /// The prefilter switched off (only to measure what it saves).
    no_prefilter: bool,
    rules: ByContent<CompiledRule>,
    rule_sets: ByContent<RuleSet>,
    /// Filter ids and names and destination ids.
    strings: Strings,
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

    /// Makes room for `users` more users at once: a cold start knows how many its snapshot
    /// holds, and growing by doubling would leave up to half of the room unused.
    pub fn reserve(&mut self, users: usize) {
        self.users.reserve_exact(users);
        self.slots.reserve(users);
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
            for (pos, filter) in user.filters.iter_mut().enumerate() {
                let (rule, keys) = anchor(&filter.rules, &user.name, &self.ownership);
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
        let name: Arc<str> = Arc::from(prefs.name.as_str());
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
                    let (feeds, wide) = feeds(
                        filter
                            .destinations
                            .iter()
                            .filter_map(|id| destinations.iter().position(|d| d.id == *id))
                            .collect(),
                    );
                    let (rule, keys) = anchor(&rules, &name, &self.ownership);
                    let mut entry = FilterEntry {
                        id: self.strings.intern(&filter.id),
                        name: self.strings.intern(&filter.name),
                        oneshot: filter.oneshot,
                        urgent: filter.urgent,
                        max_per_hour: filter.max_per_hour,
                        feeds,
                        rules,
                        anchor_rule: NO_ANCHOR,
                        more: true,
                    };
                    entry.set_anchor(rule);
                    filings.push((keys, wide));
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
        for (pos, (f, (keys, wide))) in filters.iter().zip(filings).enumerate() {
            let at = (slot, pos as u16);
            self.file(at, &keys, &f.rules);
            if !wide.is_empty() {
                self.wide_feeds.insert(at, wide);
            }
        }
        let mut addresses =
            String::with_capacity(destinations.iter().map(|d| d.address.len()).sum());
        let mut dests = Vec::with_capacity(destinations.len());
        for d in destinations {
            let from = addresses.len() as u32;
            addresses.push_str(&d.address);
            dests.push(DestEntry {
                id: self.strings.intern(&d.id),
                address: (from, addresses.len() as u32),
                kind: d.kind,
                irc_colour: d.irc_colour,
                verbose: d.verbose,
                unusual: (d.delivery != Delivery::Immediate || d.quiet_hours.is_some())
                    .then(|| Box::new((d.delivery, d.quiet_hours))),
                shared: OnceLock::new(),
            });
        }
        self.users[slot as usize] = Some(UserEntry {
            name: name.clone(),
            addresses: addresses.into_boxed_str(),
            time_zone: prefs.time_zone.as_deref().map(Arc::from),
            destinations: dests.into(),
            filters: filters.into(),
        });
        self.slots.insert(name, slot);
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
        for (pos, filter) in user.filters.into_vec().into_iter().enumerate() {
            // The ownership has not changed since it was filed (`set_ownership` re-files), so
            // its keys are the same.
            let at = (slot, pos as u16);
            let (_, keys) = anchor(&filter.rules, &user.name, &self.ownership);
            self.unfile(at, &keys, &filter.rules);
            if !self.wide_feeds.is_empty() {
                self.wide_feeds.remove(&at);
            }
            self.strings.release(filter.id);
            self.strings.release(filter.name);
            self.release_set(filter.rules);
        }
        for d in user.destinations.iter() {
            self.strings.release(d.id);
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
            distinct_rules: self.rules.len,
            distinct_rule_sets: self.rule_sets.len,
            ..IndexStats::default()
        };
        for user in self.users.iter().flatten() {
            s.filters += user.filters.len();
        }
        for map in &self.postings {
            s.keys += map.len();
            s.postings += map.values().map(|p| p.as_slice().len()).sum::<usize>();
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
                        if eval.personal(&group.rules, &user.name, NO_ANCHOR) {
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
                candidates.extend_from_slice(list.as_slice());
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
            if eval.filed_holds(&user.filters[pos as usize], &user.name) {
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
        users.sort_unstable_by(|a, b| a.0.name.cmp(&b.0.name));
        let mut out: Vec<Match> = Vec::with_capacity(hits.len());
        // (destination position, filter position): who feeds each destination.
        let mut won: Vec<(u16, u16)> = Vec::new();
        for (user, from, to) in users {
            won.clear();
            let mut taken = 0u64;
            for &(slot, pos) in &hits[from..to] {
                let mut new = user.filters[pos as usize].feeds & !taken;
                taken |= new;
                while new != 0 {
                    won.push((new.trailing_zeros() as u16, pos));
                    new &= new - 1;
                }
                if self.wide_feeds.is_empty() {
                    continue;
                }
                for &dest in self.wide_feeds.get(&(slot, pos)).into_iter().flatten() {
                    if !won.iter().any(|&(d, _)| d == dest) {
                        won.push((dest, pos));
                    }
                }
            }
            won.sort_unstable();
            let name = &user.name;
            for &(dest, pos) in &won {
                let filter = &user.filters[pos as usize];
                out.push(Match {
                    user: name.clone(),
                    filter_id: self.strings.text(filter.id).clone(),
                    filter_name: self.strings.text(filter.name).clone(),
                    oneshot: filter.oneshot,
                    destination: user
                        .shared_destination(&user.destinations[dest as usize], &self.strings),
                    reason: filter.rules.reason(name),
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
            match self.postings[*kind as usize].entry(key.clone()) {
                std::collections::hash_map::Entry::Occupied(mut list) => list.get_mut().push(at),
                std::collections::hash_map::Entry::Vacant(slot) => {
                    slot.insert(Postings::One(at));
                }
            }
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
            if map.get_mut(key).is_some_and(|list| list.remove(at)) {
                map.remove(key);
            }
        }
    }

    fn intern_set(&mut self, rules: &[Rule]) -> Result<Arc<RuleSet>, RuleError> {
        let set_hash = self.rule_sets.hash_list(rules.iter());
        if let Some(set) = self.rule_sets.get(set_hash, |set| set.is_of(rules)) {
            return Ok(set.clone());
        }
        let mut compiled = Vec::with_capacity(rules.len());
        for rule in rules {
            let hash = self.rules.hash(rule);
            let c = match self.rules.get(hash, |c| c.source == *rule) {
                Some(c) => c.clone(),
                None => {
                    let c = Arc::new(CompiledRule::compile(rule)?);
                    self.rules.insert(hash, c.clone());
                    c
                }
            };
            compiled.push(c);
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
        self.rule_sets.insert(set_hash, set.clone());
        Ok(set)
    }

    fn release_set(&mut self, set: Arc<RuleSet>) {
        // Two holders left: the map and us. Then nobody else uses it.
        if Arc::strong_count(&set) > 2 {
            return;
        }
        let hash = self
            .rule_sets
            .hash_list(set.rules.iter().map(|r| &r.source));
        self.rule_sets.remove(hash, &set);
        let Some(set) = Arc::into_inner(set) else {
            return;
        };
        for rule in set.rules {
            // Only the map holds it now (a rule held twice in the list is released once).
            if Arc::strong_count(&rule) == 2 {
                let hash = self.rules.hash(&rule.source);
                self.rules.remove(hash, &rule);
            }
        }
    }
}

/// Compiled rules and rule lists, found by their source without a second copy of it: each
/// content hash leads to the few entries that have it.
#[derive(Debug)]
struct ByContent<T> {
    buckets: FastMap<u64, Vec<Arc<T>>>,
    len: usize,
}

impl<T> Default for ByContent<T> {
    fn default() -> Self {
        Self {
            buckets: FastMap::default(),
            len: 0,
        }
    }
}

impl<T> ByContent<T> {
    fn hash(&self, value: &impl std::hash::Hash) -> u64 {
        use std::hash::BuildHasher;
        self.buckets.hasher().hash_one(value)
    }

    /// The hash of a list, the same whether its items come from sources or compiled rules.
    fn hash_list<'r>(&self, items: impl ExactSizeIterator<Item = &'r Rule>) -> u64 {
        use std::hash::{BuildHasher, Hash};
        let mut h = self.buckets.hasher().build_hasher();
        h.write_usize(items.len());
        for item in items {
            item.hash(&mut h);
        }
        h.finish()
    }

    fn get(&self, hash: u64, is: impl Fn(&T) -> bool) -> Option<&Arc<T>> {
        self.buckets.get(&hash)?.iter().find(|e| is(e))
    }

    fn insert(&mut self, hash: u64, value: Arc<T>) {
        self.buckets.entry(hash).or_default().push(value);
        self.len += 1;
    }

    fn remove(&mut self, hash: u64, value: &Arc<T>) {
        let Some(bucket) = self.buckets.get_mut(&hash) else {
            return;
        };
        if let Some(i) = bucket.iter().position(|e| Arc::ptr_eq(e, value)) {
            bucket.swap_remove(i);
            self.len -= 1;
        }
        if bucket.is_empty() {
            self.buckets.remove(&hash);
        }
    }
}

impl RuleSet {
    /// Whether this is the list `rules` compiled.
    fn is_of(&self, rules: &[Rule]) -> bool {
        self.rules.len() == rules.len() && self.rules.iter().zip(rules).all(|(c, r)| c.source == *r)
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
fn anchor(set: &RuleSet, owner: &Arc<str>, ownership: &Ownership) -> (Option<usize>, Vec<Key>) {
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
fn keys_of(rule: &Rule, owner: &Arc<str>, ownership: &Ownership) -> Option<(u8, Vec<Key>)> {
    if rule.negated {
        return None;
    }
    let keys = |kind: KeyKind, names: &mut dyn Iterator<Item = &str>| -> Vec<Key> {
        let mut v: Vec<Key> = names.map(|n| (kind, Arc::from(n))).collect();
        v.sort();
        v.dedup();
        v
    };
    // The owner's own name: shared with the user's entry, not copied.
    let own = |kind: KeyKind| -> Vec<Key> { vec![(kind, owner.clone())] };
    Some(match &rule.kind {
        RuleKind::User { users } => (
            0,
            keys(KeyKind::User, &mut users.iter().map(|s| s.as_str())),
        ),
        RuleKind::RelatedEvents => (0, own(KeyKind::User)),
        RuleKind::Package { packages } => (
            0,
            keys(KeyKind::Rpm, &mut packages.iter().map(|s| s.as_str())),
        ),
        RuleKind::ArtifactsFollowed { artifacts } => {
            let mut v: Vec<Key> = artifacts
                .iter()
                .map(|a| (artifact_key(a.kind), Arc::from(a.name.as_str())))
                .collect();
            v.sort();
            v.dedup();
            (0, v)
        }
        RuleKind::UsersFollowed { users } => (
            0,
            keys(KeyKind::Agent, &mut users.iter().map(|s| s.as_str())),
        ),
        RuleKind::ArtifactsOwned { users } if users.is_empty() => (0, own(KeyKind::OwnerUser)),
        RuleKind::ArtifactsOwned { users } => (
            0,
            keys(KeyKind::OwnerUser, &mut users.iter().map(|s| s.as_str())),
        ),
        RuleKind::UserPackages { user } => {
            let (mut v, user) = if user.is_empty() {
                (own(KeyKind::OwnerUser), &**owner)
            } else {
                (
                    keys(KeyKind::OwnerUser, &mut std::iter::once(user.as_str())),
                    user.as_str(),
                )
            };
            v.extend(
                ownership
                    .groups_of(user)
                    .iter()
                    .map(|g| (KeyKind::OwnerGroup, g.clone())),
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
                    crate::rules::TopicPattern::Exact(e) => (KeyKind::Event, Arc::from(e.as_str())),
                    crate::rules::TopicPattern::Below(p) => {
                        (KeyKind::EventBelow, Arc::from(p.as_str()))
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
