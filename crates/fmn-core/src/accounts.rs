//! Accounts fmn makes without being asked: when a contributor first signs in, when they join
//! the packager group, and when they first log in to Fedora Badges (as the old FMN's
//! `fmn.autocreate` did).
//!
//! Such an account gets its FAS e-mail as a destination, confirmed because FAS vouches for it
//! (no confirmation mail), and the default filters feeding it, switched off: users complained
//! most about mail they never asked for (old FMN #266), so an auto-created account sends nothing
//! until its owner turns a filter on, unless an admin said otherwise for a group the user is in
//! ([`AccountDefaults`]: e.g. packagers start with "Events on packages I maintain" on). Only the
//! filters' `enabled` flags differ: the user opts in by switching a filter on, as for any filter.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::defaults::default_filters;
use crate::directory::Account;
use crate::message::Envelope;
use crate::prefs::{validate_email, Destination, UserPrefs, Verifier};

/// The FAS group whose new members get an account.
pub const PACKAGER_GROUP: &str = "packager";

/// Why an account was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoCreateReason {
    /// First sign-in to the web page or API.
    SignIn,
    /// Sponsored into (added to) the packager group.
    JoinedPackager,
    /// First login to Fedora Badges.
    FirstBadgesLogin,
}

impl AutoCreateReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SignIn => "first sign-in",
            Self::JoinedPackager => "joined the packager group",
            Self::FirstBadgesLogin => "first Fedora Badges login",
        }
    }
}

/// The account a bus message says to create, if any: a member sponsored into or added to the
/// packager group (fedmsg `fas.group.member.sponsor`/`.add` with `group.name` and
/// `user.username`; Noggin's fedora-messaging bodies with plain `group` and `user` under `msg`),
/// or a first Fedora Badges login (`fedbadges.person.login.first` from fedmsg,
/// `badges.person.login.first` from fedora-messaging, both with `user.username`).
pub fn account_to_create(envelope: &Envelope) -> Option<(String, AutoCreateReason)> {
    let body = envelope.body();
    let body = body.get("msg").filter(|v| v.is_object()).unwrap_or(body);
    match envelope.topic().title() {
        "fas.group.member.sponsor" | "fas.group.member.add" | "fas.group.member.added" => {
            (name_of(body.get("group"))? == PACKAGER_GROUP)
                .then(|| name_of(body.get("user")))
                .flatten()
                .map(|user| (user, AutoCreateReason::JoinedPackager))
        }
        "fedbadges.person.login.first" | "badges.person.login.first" => {
            name_of(body.get("user")).map(|user| (user, AutoCreateReason::FirstBadgesLogin))
        }
        _ => None,
    }
}

/// A name given as a string or as an object with `username` or `name`.
fn name_of(v: Option<&Value>) -> Option<String> {
    let name = match v? {
        Value::String(s) => s.as_str(),
        Value::Object(o) => o
            .get("username")
            .or_else(|| o.get("name"))
            .and_then(Value::as_str)?,
        _ => return None,
    };
    (!name.is_empty()).then(|| name.to_string())
}

/// One of the default filters ([`crate::defaults::default_filters`], in this order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DefaultFilter {
    /// "Events on packages I maintain".
    Packages,
    /// "Events referring to me".
    AboutMe,
}

impl DefaultFilter {
    /// In the order `default_filters` makes them.
    pub const ALL: [DefaultFilter; 2] = [DefaultFilter::Packages, DefaultFilter::AboutMe];

    /// `packages` or `about-me`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Packages => "packages",
            Self::AboutMe => "about-me",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == s)
    }
}

/// What an admin says the auto-created accounts of a group's members start with.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupDefaults {
    /// The default filters switched on (the others stay off until the user turns them on).
    #[serde(default)]
    pub on: BTreeSet<DefaultFilter>,
}

/// The admin's per-group settings for auto-created accounts, by FAS group. A group not listed
/// (the default for every group) starts with everything off.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AccountDefaults {
    pub groups: BTreeMap<String, GroupDefaults>,
}

impl AccountDefaults {
    /// The filters switched on for someone in the groups `member_of` says yes to: every
    /// listed group's, together.
    pub fn switched_on(&self, member_of: impl Fn(&str) -> bool) -> BTreeSet<DefaultFilter> {
        self.groups
            .iter()
            .filter(|(group, _)| member_of(group))
            .flat_map(|(_, d)| d.on.iter().copied())
            .collect()
    }

    /// Sets (an empty `on` removes) the settings of `group`.
    pub fn set(&mut self, group: &str, defaults: GroupDefaults) {
        if defaults.on.is_empty() {
            self.groups.remove(group);
        } else {
            self.groups.insert(group.to_string(), defaults);
        }
    }
}

/// The account to create for `name`, whose FAS account is `fas` (None: not known yet), with the
/// default filters in `on` switched on. None when the FAS account is locked: it would only be
/// disabled again. A FAS e-mail fmn cannot deliver to (not a valid address) is left out; the
/// user adds one.
pub fn auto_account(
    name: &str,
    fas: Option<&Account>,
    on: &BTreeSet<DefaultFilter>,
) -> Option<UserPrefs> {
    if fas.is_some_and(|a| a.locked) {
        return None;
    }
    let mut prefs = UserPrefs::new(name);
    // The first of FAS's e-mails is the one FAS itself mails.
    if let Some(email) = fas
        .and_then(|a| a.emails.first())
        .filter(|e| validate_email("address", e).is_ok())
    {
        let id = prefs.next_id("email");
        let mut d = Destination::email(id, email.as_str()).confirmed(true);
        d.verified_by = Some(Verifier::Fas);
        prefs.destinations.push(d);
        prefs.destination_seq = 1;
    }
    let ids: Vec<String> = prefs.destinations.iter().map(|d| d.id.clone()).collect();
    let mut filters = default_filters(&prefs, &ids);
    for (filter, kind) in filters.iter_mut().zip(DefaultFilter::ALL) {
        filter.enabled = on.contains(&kind);
    }
    prefs.filters = filters;
    prefs.validate().ok()?;
    Some(prefs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn envelope(topic: &str, msg: Value) -> Envelope {
        Envelope::from_value(json!({"topic": topic, "msg": msg, "msg_id": "x"})).unwrap()
    }

    #[test]
    fn packager_sponsorship_and_first_badges_login_create_accounts() {
        let legacy = json!({"agent": {"username": "toshio"}, "group": {"name": "packager"}, "user": {"username": "ralph"}});
        assert_eq!(
            account_to_create(&envelope(
                "org.fedoraproject.prod.fas.group.member.sponsor",
                legacy
            )),
            Some(("ralph".into(), AutoCreateReason::JoinedPackager))
        );
        let noggin =
            json!({"msg": {"agent": "dudemcpants", "group": "packager", "user": "testuser"}});
        assert_eq!(
            account_to_create(&envelope(
                "org.fedoraproject.prod.fas.group.member.sponsor",
                noggin
            )),
            Some(("testuser".into(), AutoCreateReason::JoinedPackager))
        );
        let other_group = json!({"msg": {"agent": "a", "group": "developers", "user": "u"}});
        assert_eq!(
            account_to_create(&envelope(
                "org.fedoraproject.prod.fas.group.member.sponsor",
                other_group
            )),
            None
        );
        let removed = json!({"msg": {"agent": "a", "group": "packager", "user": "u"}});
        assert_eq!(
            account_to_create(&envelope(
                "org.fedoraproject.prod.fas.group.member.remove",
                removed
            )),
            None
        );
        for topic in [
            "org.fedoraproject.prod.fedbadges.person.login.first",
            "org.fedoraproject.prod.badges.person.login.first",
        ] {
            let body = json!({"user": {"badges_user_id": 2, "username": "ralph"}});
            assert_eq!(
                account_to_create(&envelope(topic, body)),
                Some(("ralph".into(), AutoCreateReason::FirstBadgesLogin)),
                "{topic}"
            );
        }
    }

    fn fas(emails: &[&str], locked: bool) -> Account {
        Account {
            emails: emails.iter().map(|e| e.to_string()).collect(),
            ircnicks: vec![],
            locked,
        }
    }

    #[test]
    fn auto_accounts_have_the_fas_email_verified_and_filters_off() {
        let p = auto_account(
            "alice",
            Some(&fas(&["alice@example.com", "a@work.example"], false)),
            &BTreeSet::new(),
        )
        .unwrap();
        assert_eq!(p.destinations.len(), 1);
        let d = &p.destinations[0];
        assert_eq!(d.address, "alice@example.com", "FAS's first e-mail");
        assert!(d.confirmed && d.is_active());
        assert_eq!(d.verified_by, Some(Verifier::Fas));
        assert_eq!(p.filters.len(), 2);
        assert!(p.filters.iter().all(|f| !f.enabled), "opt-in");
        assert!(p.filters.iter().all(|f| f.destinations == [d.id.clone()]));
        // A later destination never reuses the FAS one's id.
        let mut later = p.clone();
        let id = later
            .add_destination(Destination::email("x", "b@example.com"))
            .unwrap();
        assert_eq!(id, "email-2");
        assert_eq!(later.destinations[1].verified_by, None);
    }

    #[test]
    fn group_defaults_switch_filters_on_for_members() {
        let mut defaults = AccountDefaults::default();
        defaults.set(
            "packager",
            GroupDefaults {
                on: [DefaultFilter::Packages].into(),
            },
        );
        let text = serde_json::to_string(&defaults).unwrap();
        assert_eq!(text, r#"{"packager":{"on":["packages"]}}"#);
        assert_eq!(
            serde_json::from_str::<AccountDefaults>(&text).unwrap(),
            defaults
        );
        let on = defaults.switched_on(|g| g == "packager");
        let p = auto_account("bob", Some(&fas(&["bob@example.com"], false)), &on).unwrap();
        assert!(p.filters[0].enabled, "packages");
        assert!(!p.filters[1].enabled, "about me");
        assert!(defaults.switched_on(|g| g == "docs").is_empty());
        defaults.set("packager", GroupDefaults::default());
        assert!(defaults.groups.is_empty(), "an empty setting is removed");
    }

    #[test]
    fn no_email_no_destination_and_locked_accounts_are_not_made() {
        let p = auto_account("carol", None, &BTreeSet::new()).unwrap();
        assert!(p.destinations.is_empty());
        assert_eq!(p.filters.len(), 2);
        let bad = auto_account(
            "dan",
            Some(&fas(&["not an address"], false)),
            &BTreeSet::new(),
        );
        assert!(bad.unwrap().destinations.is_empty());
        assert_eq!(
            auto_account(
                "eve",
                Some(&fas(&["e@example.com"], true)),
                &BTreeSet::new()
            ),
            None
        );
    }
}
