//! Preferences: users, their destinations and their filters.
//!
//! A user's preferences are one document ([`UserPrefs`]): stored whole, validated whole and
//! changed whole, so a change is never half-written. Filters are ORed (the first one that
//! matches a destination wins); the rules inside a filter are ANDed.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::rules::{Rule, RuleError};
use crate::schedule::{QuietHours, Schedule};

/// Limits that keep one user's preferences cheap to store, load and evaluate.
pub mod limits {
    /// Filters per user.
    pub const MAX_FILTERS: usize = 50;
    /// Rules per filter.
    pub const MAX_RULES: usize = 60;
    /// Regular-expression rules (`regex`, `package-regex`) a user may have in all: each may
    /// compile to 256 KiB, and every match instance holds every user's, so the budget is per
    /// user (10 x 256 KiB at most), not per filter.
    pub const MAX_REGEX_RULES: usize = 10;
    /// Destinations per user.
    pub const MAX_DESTINATIONS: usize = 10;
    /// Characters in a user, filter or destination name.
    pub const MAX_NAME: usize = 64;
    /// Characters in an e-mail address (RFC 5321 path limit).
    pub const MAX_EMAIL: usize = 254;
    /// Characters in an IRC nick (Libera allows 16; leave room).
    pub const MAX_NICK: usize = 32;
    /// The shortest digest window, in seconds.
    pub const MIN_BATCH_DELTA: u64 = 60;
    /// The longest digest window: a week.
    pub const MAX_BATCH_DELTA: u64 = 7 * 24 * 3600;
    /// The largest digest count.
    pub const MAX_BATCH_COUNT: u32 = 1000;
    /// The largest hourly allowance of a filter.
    pub const MAX_PER_HOUR: u32 = 1000;
}

/// Why a preferences document is not acceptable. Each names the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrefsError {
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    /// A limit reached: more destinations, filters or rules than allowed.
    #[error("{field}: at most {limit} {}", noun(.field))]
    TooMany { field: String, limit: usize },
    /// The user already has this address (of this kind).
    #[error("`{address}` is already one of your destinations")]
    DuplicateAddress { address: String },
    #[error("no destination `{0}`")]
    NoDestination(String),
    #[error("no filter `{0}`")]
    NoFilter(String),
    /// Digests are mails; an IRC destination is delivered line by line as messages match.
    #[error(
        "{field}: IRC destinations are delivered immediately; digests are for e-mail and Matrix destinations"
    )]
    IrcDigest { field: String },
    #[error("filters[{filter}].rules[{rule}]: {source}")]
    Rule {
        filter: usize,
        rule: usize,
        #[source]
        source: RuleError,
    },
}

impl PrefsError {
    fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// The JSON path of the offending field (empty when no field is at fault).
    pub fn field(&self) -> String {
        match self {
            Self::Invalid { field, .. }
            | Self::TooMany { field, .. }
            | Self::IrcDigest { field } => field.clone(),
            Self::DuplicateAddress { .. } | Self::NoDestination(_) | Self::NoFilter(_) => {
                String::new()
            }
            Self::Rule { filter, rule, .. } => format!("filters[{filter}].rules[{rule}]"),
        }
    }
}

/// What a limit counts: the last part of its field (`filters[0].rules` counts rules).
fn noun(field: &str) -> &str {
    field.rsplit('.').next().unwrap_or(field)
}

/// The kind of a destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DestinationKind {
    /// An e-mail address.
    Email,
    /// An IRC nick.
    Irc,
    /// A Matrix user id (`@name:server`), messaged in a direct-message room.
    Matrix,
}

impl DestinationKind {
    /// `email`, `irc` or `matrix`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Irc => "irc",
            Self::Matrix => "matrix",
        }
    }
}

/// When a destination receives its notifications.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "mode", rename_all = "lowercase")]
pub enum Delivery {
    /// One notification per message, as soon as it matches.
    #[default]
    Immediate,
    /// Batched into one mail when the oldest pending item is older than `batch_delta` seconds
    /// or `batch_count` items are pending (the old FMN's semantics), or when `schedule` comes
    /// round in the user's time zone, whichever comes first.
    Digest {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        batch_delta: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        batch_count: Option<u32>,
        /// Daily or weekly at a local time (absent in documents stored before schedules).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        schedule: Option<Schedule>,
    },
}

/// Where a user's notifications go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Destination {
    /// Stable id inside the user's preferences (`email-1`, `irc-2`…), referenced by filters.
    pub id: String,
    /// E-mail, IRC or Matrix.
    pub kind: DestinationKind,
    /// The address or nick.
    pub address: String,
    /// Only confirmed destinations receive anything.
    #[serde(default)]
    pub confirmed: bool,
    /// Immediate or digest.
    #[serde(default)]
    pub delivery: Delivery,
    /// mIRC colours in IRC lines.
    #[serde(default)]
    pub irc_colour: bool,
    /// Long form (subtitle and link) rather than the one-line summary.
    #[serde(default = "yes")]
    pub verbose: bool,
    /// Bounces and failures seen delivering to it; a stopped destination receives nothing.
    /// Written by the delivery side, never taken from a user's input.
    #[serde(
        default,
        skip_serializing_if = "crate::health::DeliveryHealth::is_clear"
    )]
    pub health: crate::health::DeliveryHealth,
    /// Local hours during which immediate notifications are held and sent together when they
    /// end (errors and urgent filters excepted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quiet_hours: Option<QuietHours>,
    /// Paused by its owner: receives nothing until resumed, and stays subscribed (filters
    /// keep feeding it). Unlike [`Self::health`]'s stop, which delivery decides, only the
    /// owner sets or clears this.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub paused: bool,
    /// Who vouched for the address when it was taken as confirmed without a confirmation
    /// message (FAS for an auto-created account's FAS e-mail). Set by fmn only, never taken
    /// from a user's input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified_by: Option<Verifier>,
}

/// Who vouched for a destination's address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verifier {
    /// Fedora's account system: the address is the account's FAS e-mail.
    Fas,
}

impl Verifier {
    /// For pages and explanations.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Fas => "verified by FAS",
        }
    }
}

fn yes() -> bool {
    true
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Destination {
    /// An unconfirmed destination with the defaults: immediate, no colours, verbose.
    pub fn new(id: impl Into<String>, kind: DestinationKind, address: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            kind,
            address: address.into(),
            confirmed: false,
            delivery: Delivery::Immediate,
            irc_colour: false,
            verbose: true,
            health: Default::default(),
            quiet_hours: None,
            paused: false,
            verified_by: None,
        }
    }

    /// An unconfirmed e-mail destination with the defaults.
    pub fn email(id: impl Into<String>, address: impl Into<String>) -> Self {
        Self::new(id, DestinationKind::Email, address)
    }

    /// An unconfirmed IRC destination with the defaults.
    pub fn irc(id: impl Into<String>, nick: impl Into<String>) -> Self {
        Self::new(id, DestinationKind::Irc, nick)
    }

    /// An unconfirmed Matrix destination (a full user id) with the defaults.
    pub fn matrix(id: impl Into<String>, user_id: impl Into<String>) -> Self {
        Self::new(id, DestinationKind::Matrix, user_id)
    }

    /// The same, confirmed (or not).
    pub fn confirmed(mut self, confirmed: bool) -> Self {
        self.confirmed = confirmed;
        self
    }

    /// The same, delivered this way.
    pub fn with_delivery(mut self, delivery: Delivery) -> Self {
        self.delivery = delivery;
        self
    }

    /// The same, with these quiet hours.
    pub fn with_quiet_hours(mut self, quiet_hours: Option<QuietHours>) -> Self {
        self.quiet_hours = quiet_hours;
        self
    }

    /// A destination that receives: confirmed, and not stopped by bounces or failures.
    pub fn is_active(&self) -> bool {
        self.confirmed && !self.paused && !self.health.is_stopped()
    }

    /// Whether items for it go to the digest store. E-mail and Matrix are digested (one mail,
    /// one message): an IRC destination stored with digest delivery before that was refused is
    /// delivered immediately rather than having its items rendered as mail and dropped.
    pub fn is_digest(&self) -> bool {
        self.kind != DestinationKind::Irc && matches!(self.delivery, Delivery::Digest { .. })
    }
}

/// A named set of rules feeding some destinations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filter {
    /// Stable id inside the user's preferences.
    pub id: String,
    /// What the user calls it.
    pub name: String,
    /// Disabled filters match nothing.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Disables itself after its first match.
    #[serde(default)]
    pub oneshot: bool,
    /// The ids of the destinations it feeds.
    #[serde(default)]
    pub destinations: Vec<String>,
    /// All must hold. A filter with no rules never matches.
    #[serde(default)]
    pub rules: Vec<Rule>,
    /// Goes through quiet hours (like a message of severity error).
    #[serde(default, skip_serializing_if = "is_false")]
    pub urgent: bool,
    /// At most this many immediate notifications an hour; the rest of the hour's matches wait
    /// for the next digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_per_hour: Option<u32>,
}

impl Filter {
    /// An enabled filter with no limit and no urgency: what every new filter starts as.
    pub fn new(id: String, name: String, destinations: Vec<String>, rules: Vec<Rule>) -> Self {
        Self {
            id,
            name,
            enabled: true,
            oneshot: false,
            destinations,
            rules,
            urgent: false,
            max_per_hour: None,
        }
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Everything one user has asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserPrefs {
    /// The account name (FAS username, or the bot's name).
    pub name: String,
    /// A disabled account gets nothing.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// An admin-managed bot account (a mailing list, say), not a person.
    #[serde(default)]
    pub bot: bool,
    #[serde(default)]
    pub destinations: Vec<Destination>,
    #[serde(default)]
    pub filters: Vec<Filter>,
    /// The highest destination number handed out (`irc-7`: 7). Destination ids are never
    /// reused: pending digest items and unsubscribe links name a destination by id, and a new
    /// destination under an old id would receive (or answer for) the old one's.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub destination_seq: u64,
    /// Bumped by the store on every change; used for optimistic concurrency.
    #[serde(default)]
    pub version: u64,
    /// The IANA time zone schedules and quiet hours are read in; none: UTC. Only the user
    /// sets it for now (FAS's `timezone` attribute is the intended default once FAS is
    /// read: fill it where this is `None`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
}

impl UserPrefs {
    /// An enabled user with nothing configured.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            enabled: true,
            bot: false,
            destinations: Vec::new(),
            filters: Vec::new(),
            destination_seq: 0,
            version: 0,
            time_zone: None,
        }
    }

    /// The destination with this id.
    pub fn destination(&self, id: &str) -> Option<&Destination> {
        self.destinations.iter().find(|d| d.id == id)
    }

    /// The filter with this id.
    pub fn filter(&self, id: &str) -> Option<&Filter> {
        self.filters.iter().find(|f| f.id == id)
    }

    /// A fresh id with this prefix, unused by destinations and filters.
    pub fn next_id(&self, prefix: &str) -> String {
        let used: BTreeSet<&str> = self
            .destinations
            .iter()
            .map(|d| d.id.as_str())
            .chain(self.filters.iter().map(|f| f.id.as_str()))
            .collect();
        (1..)
            .map(|n| format!("{prefix}-{n}"))
            .find(|id| !used.contains(id.as_str()))
            .expect("an unused id exists")
    }

    /// The destination with this id, to change.
    pub fn destination_mut(&mut self, id: &str) -> Result<&mut Destination, PrefsError> {
        self.destinations
            .iter_mut()
            .find(|d| d.id == id)
            .ok_or_else(|| PrefsError::NoDestination(id.to_string()))
    }

    /// A destination id never handed out before (`<kind>-<n>`, `n` above every number used),
    /// and records it as used.
    fn fresh_destination_id(&mut self, kind: DestinationKind) -> String {
        let highest = self
            .destinations
            .iter()
            .filter_map(|d| d.id.rsplit_once('-')?.1.parse::<u64>().ok())
            .fold(self.destination_seq, u64::max);
        let mut n = highest.saturating_add(1);
        loop {
            let id = format!("{}-{n}", kind.as_str());
            if self.destination(&id).is_none() && self.filter(&id).is_none() {
                self.destination_seq = n;
                return id;
            }
            n = n.saturating_add(1);
        }
    }

    /// Adds `d` (unconfirmed) under a fresh id, never used by an earlier destination, which is
    /// returned; an address the user already has (same kind, any case) is refused.
    pub fn add_destination(&mut self, mut d: Destination) -> Result<String, PrefsError> {
        if self
            .destinations
            .iter()
            .any(|o| o.kind == d.kind && o.address.eq_ignore_ascii_case(&d.address))
        {
            return Err(PrefsError::DuplicateAddress { address: d.address });
        }
        d.id = self.fresh_destination_id(d.kind);
        d.confirmed = false;
        d.verified_by = None;
        let id = d.id.clone();
        self.destinations.push(d);
        Ok(id)
    }

    /// Removes the destination `id`, and it from every filter.
    pub fn remove_destination(&mut self, id: &str) -> Result<(), PrefsError> {
        self.destination_mut(id)?;
        self.destinations.retain(|d| d.id != id);
        for f in &mut self.filters {
            f.destinations.retain(|d| d != id);
        }
        Ok(())
    }

    /// Adds `f` under a fresh id, which is returned.
    pub fn add_filter(&mut self, f: Filter) -> String {
        let id = self.next_id("filter");
        self.filters.push(Filter {
            id: id.clone(),
            ..f
        });
        id
    }

    /// Puts `f` in the place of the filter with its id; returns that place.
    pub fn replace_filter(&mut self, f: Filter) -> Result<usize, PrefsError> {
        let index = self
            .filters
            .iter()
            .position(|o| o.id == f.id)
            .ok_or_else(|| PrefsError::NoFilter(f.id.clone()))?;
        self.filters[index] = f;
        Ok(index)
    }

    /// Removes the filter `id`.
    pub fn remove_filter(&mut self, id: &str) -> Result<(), PrefsError> {
        if self.filter(id).is_none() {
            return Err(PrefsError::NoFilter(id.to_string()));
        }
        self.filters.retain(|f| f.id != id);
        Ok(())
    }

    /// Turns the filter `id` off, if there is one (a one-shot filter that fired).
    pub fn disable_filter(&mut self, id: &str) {
        if let Some(f) = self.filters.iter_mut().find(|f| f.id == id) {
            f.enabled = false;
        }
    }

    /// Replaces the destinations and filters with imported ones. A destination stays
    /// confirmed only if it was confirmed before with the same kind and address. An imported
    /// destination keeps its id only when the current one with that id has the same kind and
    /// address; otherwise it gets a fresh one (the filters follow), as ids are never reused.
    /// Returns the destinations that need a confirmation sent (new or changed, and
    /// unconfirmed).
    pub fn import(&mut self, destinations: &[Destination], filters: &[Filter]) -> Vec<Destination> {
        let before = std::mem::take(&mut self.destinations);
        self.filters = filters.to_vec();
        // Numbers of the destinations replaced count as used.
        self.destination_seq = before
            .iter()
            .filter_map(|d| d.id.rsplit_once('-')?.1.parse::<u64>().ok())
            .fold(self.destination_seq, u64::max);
        let mut renamed: Vec<(String, String)> = Vec::new();
        for d in destinations {
            let mut d = d.clone();
            d.address = d.address.trim().to_string();
            let confirmed_before = before.iter().find(|b| {
                b.confirmed && b.kind == d.kind && b.address.eq_ignore_ascii_case(&d.address)
            });
            d.confirmed = confirmed_before.is_some();
            // Provenance is fmn's to say: kept from the same address, never imported.
            d.verified_by = confirmed_before.and_then(|b| b.verified_by);
            // A stop stays with its address: an export edited and imported again lifts none.
            d.health = before
                .iter()
                .find(|b| b.kind == d.kind && b.address.eq_ignore_ascii_case(&d.address))
                .map(|b| b.health.clone())
                .unwrap_or_default();
            let same = before
                .iter()
                .any(|b| b.id == d.id && b.kind == d.kind && b.address == d.address);
            if !same {
                let fresh = self.fresh_destination_id(d.kind);
                renamed.push((std::mem::replace(&mut d.id, fresh.clone()), fresh));
            }
            self.destinations.push(d);
        }
        for f in &mut self.filters {
            for id in &mut f.destinations {
                if let Some((_, fresh)) = renamed.iter().find(|(old, _)| old == id) {
                    *id = fresh.clone();
                }
            }
        }
        self.destinations
            .iter()
            .filter(|d| {
                !d.confirmed
                    && !before
                        .iter()
                        .any(|b| b.id == d.id && b.kind == d.kind && b.address == d.address)
            })
            .cloned()
            .collect()
    }

    /// Checks every field; the first problem found is returned with its path.
    pub fn validate(&self) -> Result<(), PrefsError> {
        validate_account_name("name", &self.name)?;
        if let Some(tz) = &self.time_zone {
            validate_time_zone("time_zone", tz)?;
        }
        if self.destinations.len() > limits::MAX_DESTINATIONS {
            return Err(PrefsError::TooMany {
                field: "destinations".into(),
                limit: limits::MAX_DESTINATIONS,
            });
        }
        if self.filters.len() > limits::MAX_FILTERS {
            return Err(PrefsError::TooMany {
                field: "filters".into(),
                limit: limits::MAX_FILTERS,
            });
        }
        let mut ids = BTreeSet::new();
        let mut addresses = BTreeSet::new();
        for (i, d) in self.destinations.iter().enumerate() {
            let at = |f: &str| format!("destinations[{i}].{f}");
            validate_id(&at("id"), &d.id)?;
            if !ids.insert(d.id.as_str()) {
                return Err(PrefsError::invalid(at("id"), "duplicate id"));
            }
            match d.kind {
                DestinationKind::Email => validate_email(&at("address"), &d.address)?,
                DestinationKind::Irc => validate_nick(&at("address"), &d.address)?,
                DestinationKind::Matrix => validate_matrix_id(&at("address"), &d.address)?,
            }
            if !addresses.insert((d.kind, d.address.to_lowercase())) {
                return Err(PrefsError::invalid(at("address"), "listed twice"));
            }
            validate_timing(&at, d)?;
            if let Delivery::Digest {
                batch_delta,
                batch_count,
                schedule,
            } = d.delivery
            {
                if d.kind == DestinationKind::Irc {
                    return Err(PrefsError::IrcDigest {
                        field: at("delivery"),
                    });
                }
                if batch_delta.is_none() && batch_count.is_none() && schedule.is_none() {
                    return Err(PrefsError::invalid(
                        at("delivery"),
                        "a digest needs batch_delta, batch_count or a schedule",
                    ));
                }
                if let Some(delta) = batch_delta {
                    if !(limits::MIN_BATCH_DELTA..=limits::MAX_BATCH_DELTA).contains(&delta) {
                        return Err(PrefsError::invalid(
                            at("delivery.batch_delta"),
                            format!(
                                "between {} and {} seconds",
                                limits::MIN_BATCH_DELTA,
                                limits::MAX_BATCH_DELTA
                            ),
                        ));
                    }
                }
                if let Some(count) = batch_count {
                    if !(1..=limits::MAX_BATCH_COUNT).contains(&count) {
                        return Err(PrefsError::invalid(
                            at("delivery.batch_count"),
                            format!("between 1 and {}", limits::MAX_BATCH_COUNT),
                        ));
                    }
                }
            }
        }
        for (i, f) in self.filters.iter().enumerate() {
            let at = |x: &str| format!("filters[{i}].{x}");
            validate_id(&at("id"), &f.id)?;
            if !ids.insert(f.id.as_str()) {
                return Err(PrefsError::invalid(at("id"), "duplicate id"));
            }
            validate_name(&at("name"), &f.name)?;
            validate_throttle(&at, f)?;
            if f.rules.len() > limits::MAX_RULES {
                return Err(PrefsError::TooMany {
                    field: at("rules"),
                    limit: limits::MAX_RULES,
                });
            }
            for (j, dest) in f.destinations.iter().enumerate() {
                if self.destination(dest).is_none() {
                    return Err(PrefsError::invalid(
                        format!("filters[{i}].destinations[{j}]"),
                        format!("no destination `{dest}`"),
                    ));
                }
            }
            for (j, rule) in f.rules.iter().enumerate() {
                rule.validate().map_err(|source| PrefsError::Rule {
                    filter: i,
                    rule: j,
                    source,
                })?;
            }
        }
        let regex_rules = self
            .filters
            .iter()
            .flat_map(|f| &f.rules)
            .filter(|r| r.kind.is_regex())
            .count();
        if regex_rules > limits::MAX_REGEX_RULES {
            return Err(PrefsError::TooMany {
                field: "filters[].rules (regex, package-regex)".into(),
                limit: limits::MAX_REGEX_RULES,
            });
        }
        Ok(())
    }
}

/// An IANA time zone name the tz database knows.
pub fn validate_time_zone(field: &str, name: &str) -> Result<(), PrefsError> {
    crate::schedule::parse_time_zone(name)
        .map(drop)
        .map_err(|reason| PrefsError::invalid(field, reason))
}

/// A destination's quiet hours.
fn validate_timing(at: &dyn Fn(&str) -> String, d: &Destination) -> Result<(), PrefsError> {
    if let Some(q) = &d.quiet_hours {
        q.check()
            .map_err(|reason| PrefsError::invalid(at("quiet_hours"), reason))?;
    }
    Ok(())
}

/// A filter's hourly allowance.
fn validate_throttle(at: &dyn Fn(&str) -> String, f: &Filter) -> Result<(), PrefsError> {
    if let Some(n) = f.max_per_hour {
        if !(1..=limits::MAX_PER_HOUR).contains(&n) {
            return Err(PrefsError::invalid(
                at("max_per_hour"),
                format!("between 1 and {}", limits::MAX_PER_HOUR),
            ));
        }
    }
    Ok(())
}

fn validate_name(field: &str, name: &str) -> Result<(), PrefsError> {
    if name.trim().is_empty() {
        return Err(PrefsError::invalid(field, "must not be empty"));
    }
    if name.chars().count() > limits::MAX_NAME {
        return Err(PrefsError::invalid(
            field,
            format!("at most {} characters", limits::MAX_NAME),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(PrefsError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

fn validate_id(field: &str, id: &str) -> Result<(), PrefsError> {
    let ok = !id.is_empty()
        && id.len() <= limits::MAX_NAME
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(PrefsError::invalid(
            field,
            "1 to 64 characters of letters, digits, `-` and `_`",
        ))
    }
}

/// Account names as FAS allows them: lower-case letters, digits, `-`, `_`, `.`, starting with
/// a letter or digit.
pub fn validate_account_name(field: &str, name: &str) -> Result<(), PrefsError> {
    let ok = !name.is_empty()
        && name.len() <= limits::MAX_NAME
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name.chars().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_' || c == '.'
        });
    if ok {
        Ok(())
    } else {
        Err(PrefsError::invalid(
            field,
            "an account name: lower-case letters, digits, `-`, `_`, `.`, at most 64",
        ))
    }
}

/// A plain `local@domain` address; nothing that could smuggle a header or a second recipient.
pub fn validate_email(field: &str, address: &str) -> Result<(), PrefsError> {
    let fail = |reason: &str| Err(PrefsError::invalid(field, reason));
    if address.len() > limits::MAX_EMAIL {
        return fail("at most 254 characters");
    }
    let Some((local, domain)) = address.rsplit_once('@') else {
        return fail("an e-mail address needs an `@`");
    };
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c))
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..");
    if !local_ok {
        return fail("the part before `@` has characters an address cannot have");
    }
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if !domain_ok {
        return fail("the domain must be a host name such as example.org");
    }
    Ok(())
}

/// Network services (Atheme on Libera and OFTC-style ones): a line to them is a command, so
/// none may be a destination. Compared without case; any nick ending in `serv` is one too.
pub const SERVICE_NICKS: &[&str] = &[
    "NickServ",
    "ChanServ",
    "MemoServ",
    "OperServ",
    "HostServ",
    "BotServ",
    "InfoServ",
    "HelpServ",
    "StatServ",
    "SaslServ",
    "GroupServ",
    "Global",
    "Alis",
    "Services",
];

/// Whether `nick` is (or looks like) a network service's.
pub fn is_service_nick(nick: &str) -> bool {
    let lower = nick.to_ascii_lowercase();
    lower.ends_with("serv") || SERVICE_NICKS.iter().any(|s| s.eq_ignore_ascii_case(nick))
}

/// A full Matrix user id (`@name:server`, as [`crate::matrix::normalize_user_id`] makes it).
pub fn validate_matrix_id(field: &str, id: &str) -> Result<(), PrefsError> {
    crate::matrix::validate_user_id(id).map_err(|reason| PrefsError::invalid(field, reason))
}

/// An IRC nick (RFC 2812 characters), at most 32 characters, not a service's.
pub fn validate_nick(field: &str, nick: &str) -> Result<(), PrefsError> {
    let special = |c: char| "[]\\`_^{|}-".contains(c);
    let ok = !nick.is_empty()
        && nick.len() <= limits::MAX_NICK
        && nick
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || (special(c) && c != '-'))
        && nick
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || special(c));
    if !ok {
        return Err(PrefsError::invalid(
            field,
            "an IRC nick: letters, digits and []\\`_^{|}-, not starting with a digit or `-`, at most 32",
        ));
    }
    if is_service_nick(nick) {
        return Err(PrefsError::invalid(
            field,
            format!("`{nick}` is a network service, not a person"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_paused_destination_receives_nothing_and_keeps_its_filters() {
        use crate::matching::{Matcher, MessageFacts};
        use crate::message::Envelope;
        use crate::ownership::Ownership;
        let mut p = UserPrefs::new("alice");
        p.destinations
            .push(Destination::email("email-1", "a@example.org").confirmed(true));
        p.filters.push(Filter::new(
            "f".into(),
            "all".into(),
            vec!["email-1".into()],
            vec![Rule::new(RuleKind::Topic { glob: "*".into() })],
        ));
        let env = Envelope::from_value(serde_json::json!({
            "topic": "org.fedoraproject.prod.bodhi.update.comment", "msg": {}, "msg_id": "m"
        }))
        .unwrap();
        let meta = crate::meta::Registry::default().extract(&env);
        let ownership = std::sync::Arc::new(Ownership::default());
        let facts = MessageFacts::new(&env, &meta, &ownership);
        let gets = |p: &UserPrefs| {
            !Matcher::build([p.clone()], ownership.clone())
                .0
                .matches(&facts)
                .is_empty()
        };
        assert!(gets(&p));
        // Unpaused, the field is not written; paused, it is, and it round-trips.
        assert!(!serde_json::to_string(&p.destinations[0])
            .unwrap()
            .contains("paused"));
        p.destinations[0].paused = true;
        assert!(!p.destinations[0].is_active());
        assert!(!gets(&p));
        let back: Destination =
            serde_json::from_str(&serde_json::to_string(&p.destinations[0]).unwrap()).unwrap();
        assert!(back.paused);
        // Resuming after a stop by delivery leaves the user's pause alone.
        p.destinations[0].health.resume();
        assert!(!p.destinations[0].is_active());
        assert_eq!(p.filters[0].destinations, ["email-1"]);
        p.destinations[0].paused = false;
        assert!(gets(&p));
    }
    use super::*;
    use crate::rules::RuleKind;

    fn prefs() -> UserPrefs {
        let mut p = UserPrefs::new("alice");
        p.destinations
            .push(Destination::email("email-1", "alice@example.org").confirmed(true));
        p.filters.push(Filter::new(
            "filter-1".into(),
            "Mine".into(),
            vec!["email-1".into()],
            vec![Rule::new(RuleKind::RelatedEvents)],
        ));
        p
    }

    #[test]
    fn a_sound_document_validates_and_round_trips() {
        let p = prefs();
        p.validate().unwrap();
        let json = serde_json::to_string(&p).unwrap();
        let back: UserPrefs = serde_json::from_str(&json).unwrap();
        assert_eq!(back, p);
    }

    #[test]
    fn regex_rules_have_a_budget_per_user_not_per_filter() {
        let mut p = prefs();
        // Spread over filters, so no one filter is over its own rule limit.
        for i in 0..=limits::MAX_REGEX_RULES {
            let mut f = p.filters[0].clone();
            f.id = format!("filter-r{i}");
            f.rules = vec![Rule::new(RuleKind::Regex {
                pattern: format!("never-{i}-[a-z]+"),
            })];
            p.filters.push(f);
        }
        let e = p.validate().unwrap_err();
        assert!(
            matches!(e, PrefsError::TooMany { limit, .. } if limit == limits::MAX_REGEX_RULES),
            "{e:?}"
        );
        p.filters.pop();
        p.validate().unwrap();
    }

    #[test]
    fn unknown_destinations_are_refused_with_their_path() {
        let mut p = prefs();
        p.filters[0].destinations.push("irc-9".into());
        let e = p.validate().unwrap_err();
        assert_eq!(e.field(), "filters[0].destinations[1]");
    }

    #[test]
    fn addresses_that_could_inject_headers_are_refused() {
        for bad in [
            "a@b",
            "alice@example.org\r\nBcc: x@y.org",
            "a b@example.org",
            "@example.org",
            "alice@-x.org",
            "a,b@example.org",
        ] {
            assert!(validate_email("e", bad).is_err(), "{bad:?}");
        }
        validate_email("e", "first.last+fmn@mail.example.org").unwrap();
    }

    #[test]
    fn nicks_follow_irc_rules() {
        validate_nick("n", "ralph_").unwrap();
        validate_nick("n", "[m]ario").unwrap();
        for bad in ["1abc", "-x", "a b", "a\r\nQUIT", ""] {
            assert!(validate_nick("n", bad).is_err(), "{bad:?}");
        }
        for service in [
            "NickServ", "nickserv", "CHANSERV", "MemoServ", "OperServ", "Global", "alis", "FooServ",
        ] {
            let e = validate_nick("address", service).unwrap_err();
            assert_eq!(e.field(), "address", "{service}");
            assert!(e.to_string().contains("service"), "{e}");
        }
        validate_nick("n", "globalist").unwrap();
    }

    #[test]
    fn digests_need_a_window_in_range() {
        let mut p = prefs();
        p.destinations[0].delivery = Delivery::Digest {
            batch_delta: None,
            batch_count: None,
            schedule: None,
        };
        assert!(p.validate().is_err());
        p.destinations[0].delivery = Delivery::Digest {
            batch_delta: Some(10),
            batch_count: None,
            schedule: None,
        };
        assert_eq!(
            p.validate().unwrap_err().field(),
            "destinations[0].delivery.batch_delta"
        );
        p.destinations[0].delivery = Delivery::Digest {
            batch_delta: Some(3600),
            batch_count: Some(20),
            schedule: None,
        };
        p.validate().unwrap();
    }

    #[test]
    fn irc_destinations_cannot_be_digests_and_stored_ones_are_delivered_immediately() {
        let mut p = prefs();
        let digest = Delivery::Digest {
            batch_delta: Some(3600),
            batch_count: None,
            schedule: None,
        };
        p.destinations
            .push(Destination::irc("irc-1", "alice").with_delivery(digest));
        assert_eq!(
            p.validate(),
            Err(PrefsError::IrcDigest {
                field: "destinations[1].delivery".into()
            })
        );
        assert!(!p.destinations[1].is_digest());
        p.destinations[0].delivery = digest;
        assert!(p.destinations[0].is_digest());
    }

    #[test]
    fn documents_stored_before_time_settings_read_the_same() {
        let stored = r#"{"name":"alice","destinations":[{"id":"email-1","kind":"email",
            "address":"a@example.org","confirmed":true,"delivery":{"mode":"digest",
            "batch_delta":3600}}],"filters":[{"id":"filter-1","name":"f",
            "destinations":["email-1"],"rules":[]}],"version":3}"#;
        let p: UserPrefs = serde_json::from_str(stored).unwrap();
        assert_eq!(p.time_zone, None);
        assert_eq!(p.destinations[0].quiet_hours, None);
        assert_eq!(
            p.destinations[0].delivery,
            Delivery::Digest {
                batch_delta: Some(3600),
                batch_count: None,
                schedule: None
            }
        );
        assert!(!p.filters[0].urgent);
        assert_eq!(p.filters[0].max_per_hour, None);
        // And they are written back without the new fields.
        let back = serde_json::to_string(&p).unwrap();
        for absent in [
            "time_zone",
            "quiet_hours",
            "schedule",
            "urgent",
            "max_per_hour",
        ] {
            assert!(!back.contains(absent), "{absent} in {back}");
        }
    }

    #[test]
    fn time_settings_are_validated_with_their_paths() {
        use crate::schedule::{QuietHours, Schedule};
        let mut p = prefs();
        p.time_zone = Some("Europe/Prague".into());
        p.destinations[0].quiet_hours = Some(QuietHours {
            from: "22:00".parse().unwrap(),
            to: "07:00".parse().unwrap(),
        });
        p.destinations[0].delivery = Delivery::Digest {
            batch_delta: None,
            batch_count: None,
            schedule: Some(Schedule::Day {
                at: "08:00".parse().unwrap(),
            }),
        };
        p.filters[0].urgent = true;
        p.filters[0].max_per_hour = Some(10);
        p.validate().unwrap();
        let back: UserPrefs = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
        assert_eq!(back, p);

        let mut bad = p.clone();
        bad.time_zone = Some("Europe/Atlantis".into());
        assert_eq!(bad.validate().unwrap_err().field(), "time_zone");
        let mut bad = p.clone();
        bad.filters[0].max_per_hour = Some(0);
        assert_eq!(
            bad.validate().unwrap_err().field(),
            "filters[0].max_per_hour"
        );
        let mut bad = p.clone();
        bad.destinations[0].quiet_hours = Some(QuietHours {
            from: "07:00".parse().unwrap(),
            to: "07:00".parse().unwrap(),
        });
        assert_eq!(
            bad.validate().unwrap_err().field(),
            "destinations[0].quiet_hours"
        );
        // A schedule is JSON like {"every": "week", "on": "monday", "at": "08:00"}.
        let weekly: Delivery = serde_json::from_str(
            r#"{"mode":"digest","schedule":{"every":"week","on":"monday","at":"08:00"}}"#,
        )
        .unwrap();
        assert!(matches!(
            weekly,
            Delivery::Digest {
                schedule: Some(Schedule::Week { .. }),
                ..
            }
        ));
    }

    #[test]
    fn too_many_filters_are_refused() {
        let mut p = prefs();
        let f = p.filters[0].clone();
        for n in 0..limits::MAX_FILTERS {
            let mut g = f.clone();
            g.id = format!("g-{n}");
            p.filters.push(g);
        }
        assert_eq!(p.validate().unwrap_err().field(), "filters");
    }

    #[test]
    fn next_id_skips_used_ones() {
        let p = prefs();
        assert_eq!(p.next_id("email"), "email-2");
        assert_eq!(p.next_id("irc"), "irc-1");
    }

    #[test]
    fn import_keeps_confirmation_only_for_the_same_address() {
        let dest = |id: &str, address: &str, confirmed| {
            Destination::email(id, address).confirmed(confirmed)
        };
        let mut p = UserPrefs::new("alice");
        p.destinations = vec![
            dest("email-1", "a@example.org", true),
            dest("email-2", "b@example.org", false),
        ];
        let imported = [
            dest("email-1", "A@example.org", true),
            dest("email-2", "b@example.org", true),
            dest("email-3", "c@example.org", true),
        ];
        let sent = p.import(&imported, &[]);
        let confirmed: Vec<bool> = p.destinations.iter().map(|d| d.confirmed).collect();
        assert_eq!(confirmed, [true, false, false]);
        // b is still pending with its earlier link; only c needs a mail.
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].address, "c@example.org");
    }

    #[test]
    fn destination_ids_are_never_reused() {
        let mut p = UserPrefs::new("alice");
        let first = p
            .add_destination(Destination::email("", "a@example.org"))
            .unwrap();
        assert_eq!(first, "email-1");
        p.remove_destination(&first).unwrap();
        let second = p
            .add_destination(Destination::email("", "b@example.org"))
            .unwrap();
        assert_eq!(second, "email-2");
        assert_eq!(
            p.add_destination(Destination::irc("", "alice")).unwrap(),
            "irc-3"
        );
        // The sequence survives the store (JSON) round trip.
        let back: UserPrefs = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
        assert_eq!(back.destination_seq, 3);

        // An import naming an old id for another address gets a fresh id; filters follow.
        let filter = Filter::new(
            "filter-1".into(),
            "f".into(),
            vec!["email-1".into(), "email-2".into()],
            vec![Rule::new(RuleKind::RelatedEvents)],
        );
        p.import(
            &[
                Destination::email("email-1", "c@example.org"),
                Destination::email("email-2", "b@example.org"),
            ],
            &[filter],
        );
        let ids: Vec<&str> = p.destinations.iter().map(|d| d.id.as_str()).collect();
        assert_eq!(ids, ["email-4", "email-2"]);
        assert_eq!(p.filters[0].destinations, ["email-4", "email-2"]);
        p.validate().unwrap();
    }

    #[test]
    fn a_second_destination_with_the_same_address_is_refused() {
        let mut p = UserPrefs::new("alice");
        let id = p
            .add_destination(Destination::email("", "a@example.org"))
            .unwrap();
        assert_eq!(id, "email-1");
        assert_eq!(
            p.add_destination(Destination::email("", "A@example.org")),
            Err(PrefsError::DuplicateAddress {
                address: "A@example.org".into()
            })
        );
        p.remove_destination(&id).unwrap();
        assert_eq!(
            p.remove_destination(&id),
            Err(PrefsError::NoDestination(id))
        );
    }
}
