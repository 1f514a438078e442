//! Who is who: the accounts of Fedora's account system (FAS) as the sync keeps them, and the
//! alias map made from them (every FAS e-mail address and IRC/Matrix nick → account name).
//!
//! Accounts are stored in buckets (a stable hash of the name), so a full refresh writes and a
//! warm match function reads about a thousand items, not one per account, and a change to one
//! account rewrites one bucket.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::meta::Aliases;

/// Buckets accounts are spread over: ~80 accounts (~8 KB) each at Fedora's size (80,000).
pub const ACCOUNT_BUCKETS: u16 = 1024;

/// One account as the account system describes it (the fields fmn uses).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub emails: Vec<String>,
    /// Chat nicks as FAS keeps them: `irc:/nick`, `matrix:/user` or `matrix://server/user` URIs
    /// (older entries are bare nicks, taken as IRC).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ircnicks: Vec<String>,
    /// Locked (or otherwise disabled) in FAS.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub locked: bool,
}

impl Account {
    /// Sorted and without repeats, so two reads of the same account compare equal; the first
    /// e-mail stays first (FAS lists the one it mails first: an auto-created account's).
    pub fn normalised(mut self) -> Self {
        if self.emails.len() > 1 {
            let primary = self.emails.remove(0);
            self.emails.retain(|e| *e != primary);
            self.emails.sort();
            self.emails.dedup();
            self.emails.insert(0, primary);
        }
        self.ircnicks.sort();
        self.ircnicks.dedup();
        self
    }
}

/// The address a new destination of each kind starts from when its owner gives none: what
/// FAS says about the account (the page pre-fills them, the API takes an empty address as
/// them).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SuggestedAddresses {
    /// The first FAS address.
    pub email: Option<String>,
    /// The first IRC nick in FAS.
    pub irc: Option<String>,
    /// The first Matrix id in FAS, else the account's own name on Fedora's homeserver
    /// (`@name:fedora.im`: chat.fedoraproject.org signs Fedora accounts in under their name).
    pub matrix: String,
}

impl SuggestedAddresses {
    /// For the account `name`, as FAS describes it (`None`: FAS does not know it, or it was
    /// never synced).
    pub fn of(name: &str, account: Option<&Account>) -> Self {
        let nicks = || {
            account
                .into_iter()
                .flat_map(|a| a.ircnicks.iter())
                .filter_map(|n| ChatNick::parse(n))
        };
        Self {
            email: account.and_then(|a| a.emails.first().cloned()),
            irc: nicks().find_map(|n| match n {
                ChatNick::Irc(nick) => Some(nick),
                ChatNick::Matrix(_) => None,
            }),
            matrix: nicks()
                .find_map(|n| match n {
                    // As a destination stores it; one that is no valid id is passed over.
                    ChatNick::Matrix(id) => crate::matrix::normalize_user_id(&id).ok(),
                    ChatNick::Irc(_) => None,
                })
                .unwrap_or_else(|| {
                    format!("@{}:{}", name.to_lowercase(), crate::matrix::DEFAULT_SERVER)
                }),
        }
    }
}

/// A chat nick taken from a FAS `ircnicks` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatNick {
    Irc(String),
    /// A Matrix user id, `@user:server` (`fedora.im` when the URI names no server).
    Matrix(String),
}

impl ChatNick {
    /// Reads `irc:/nick`, `irc://server/nick`, `matrix:/user`, `matrix://server/user` or a bare
    /// nick (IRC). None for an empty or unreadable entry.
    pub fn parse(entry: &str) -> Option<Self> {
        let entry = entry.trim();
        let (scheme, rest) = match entry.split_once(':') {
            Some((scheme, rest)) if scheme == "irc" || scheme == "matrix" => (scheme, rest),
            _ => return non_empty(entry).map(|n| Self::Irc(n.to_string())),
        };
        let (server, user) = if let Some(rest) = rest.strip_prefix("//") {
            let (server, user) = rest.split_once('/')?;
            (Some(server), user)
        } else {
            (None, rest.trim_start_matches('/'))
        };
        let user = non_empty(user.trim_start_matches('@'))?;
        Some(match scheme {
            "irc" => Self::Irc(user.to_string()),
            _ => {
                let (user, server) = match user.split_once(':') {
                    Some((u, s)) => (u, s),
                    None => (user, server.unwrap_or("fedora.im")),
                };
                Self::Matrix(format!("@{user}:{server}"))
            }
        })
    }

    /// The form the alias map knows it by.
    pub fn as_alias(&self) -> &str {
        match self {
            Self::Irc(n) | Self::Matrix(n) => n,
        }
    }
}

fn non_empty(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

/// What an alias is, for explanations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AliasKind {
    Email,
    IrcNick,
    MatrixId,
}

impl AliasKind {
    pub fn describe(self) -> &'static str {
        match self {
            Self::Email => "FAS email",
            Self::IrcNick => "IRC nick in FAS",
            Self::MatrixId => "Matrix id in FAS",
        }
    }
}

/// Every account, by name. Serialised as a map of name to account (the preferences snapshot
/// holds it); read back normalised.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Directory {
    accounts: BTreeMap<String, Account>,
}

impl<'de> Deserialize<'de> for Directory {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let accounts = BTreeMap::<String, Account>::deserialize(deserializer)?;
        Ok(Self {
            accounts: accounts
                .into_iter()
                .map(|(name, account)| (name, account.normalised()))
                .collect(),
        })
    }
}

impl Directory {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn insert(&mut self, name: impl Into<String>, account: Account) {
        self.accounts.insert(name.into(), account.normalised());
    }

    pub fn remove(&mut self, name: &str) -> Option<Account> {
        self.accounts.remove(name)
    }

    pub fn get(&self, name: &str) -> Option<&Account> {
        self.accounts.get(name)
    }

    pub fn len(&self) -> usize {
        self.accounts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &Account)> {
        self.accounts.iter()
    }

    /// Every alias with its kind and account. When two accounts claim one alias (FAS keeps
    /// e-mails unique, nicks not) the first name in order keeps it.
    pub fn alias_entries(&self) -> BTreeMap<String, (String, AliasKind)> {
        let mut out = BTreeMap::new();
        for (name, account) in &self.accounts {
            for (alias, kind) in account_aliases(account) {
                out.entry(alias).or_insert((name.clone(), kind));
            }
        }
        out
    }

    /// The alias map the metadata extraction resolves names with: [`Directory::alias_entries`]
    /// without the aliases that are account names themselves (they already resolve to that
    /// account), made without that map's copies (a cold match function makes it at once).
    pub fn aliases(&self) -> Aliases {
        let pairs = self
            .accounts
            .iter()
            .flat_map(|(name, account)| {
                account_aliases(account).map(move |(alias, _)| (alias, name.as_str()))
            })
            .filter(|(alias, _)| !self.accounts.contains_key(alias));
        Aliases::first_claim_wins(pairs)
    }

    /// What `alias` is, if it is one: its account and kind.
    pub fn explain_alias(&self, alias: &str) -> Option<(String, AliasKind)> {
        let alias_lower = alias.to_lowercase();
        self.alias_entries()
            .into_iter()
            .find(|(a, _)| *a == alias || *a == alias_lower)
            .map(|(_, v)| v)
    }

    /// The accounts split into their storage buckets, each serialised deterministically.
    pub fn buckets(&self) -> BTreeMap<u16, String> {
        let mut grouped: BTreeMap<u16, BTreeMap<&str, &Account>> = BTreeMap::new();
        for (name, account) in &self.accounts {
            grouped
                .entry(account_bucket(name))
                .or_default()
                .insert(name, account);
        }
        grouped
            .into_iter()
            .map(|(b, accounts)| {
                (
                    b,
                    serde_json::to_string(&accounts).expect("accounts serialise"),
                )
            })
            .collect()
    }

    /// Adds the accounts of one stored bucket.
    pub fn extend_from_bucket(&mut self, json: &str) -> Result<(), serde_json::Error> {
        let accounts: BTreeMap<String, Account> = serde_json::from_str(json)?;
        for (name, account) in accounts {
            self.insert(name, account);
        }
        Ok(())
    }
}

/// The aliases one account claims, in the order it claims them: its addresses (lower-cased,
/// as FAS compares them), then its chat nicks.
fn account_aliases(account: &Account) -> impl Iterator<Item = (String, AliasKind)> + '_ {
    let emails = account
        .emails
        .iter()
        .map(|e| (e.to_lowercase(), AliasKind::Email));
    let nicks = account
        .ircnicks
        .iter()
        .filter_map(|n| ChatNick::parse(n))
        .map(|nick| match nick {
            ChatNick::Irc(n) => (n, AliasKind::IrcNick),
            ChatNick::Matrix(n) => (n, AliasKind::MatrixId),
        });
    emails.chain(nicks)
}

/// The bucket an account is stored in.
pub fn account_bucket(name: &str) -> u16 {
    let digest = Sha256::digest(name.as_bytes());
    u16::from_be_bytes([digest[0], digest[1]]) % ACCOUNT_BUCKETS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_come_from_fas_and_matrix_defaults_to_fedora_im() {
        let account = Account {
            emails: vec!["alice@example.com".into(), "a@b.org".into()],
            ircnicks: vec![
                "matrix://matrix.org/Alice".into(),
                "irc:/ali".into(),
                "matrix:/alice2".into(),
            ],
            locked: false,
        };
        let s = SuggestedAddresses::of("alice", Some(&account));
        assert_eq!(s.email.as_deref(), Some("alice@example.com"));
        assert_eq!(s.irc.as_deref(), Some("ali"));
        assert_eq!(
            s.matrix, "@alice:matrix.org",
            "the first Matrix id FAS lists"
        );
        let bare = SuggestedAddresses::of("Bob", None);
        assert_eq!(
            bare,
            SuggestedAddresses {
                email: None,
                irc: None,
                matrix: "@bob:fedora.im".into()
            }
        );
        let irc_only = Account {
            ircnicks: vec!["carol".into()],
            ..Account::default()
        };
        let s = SuggestedAddresses::of("carol", Some(&irc_only));
        assert_eq!(
            (s.irc.as_deref(), s.matrix.as_str()),
            (Some("carol"), "@carol:fedora.im")
        );
    }

    #[test]
    fn chat_nicks_read_every_fas_form() {
        assert_eq!(
            ChatNick::parse("irc:/bob"),
            Some(ChatNick::Irc("bob".into()))
        );
        assert_eq!(
            ChatNick::parse("irc://irc.libera.chat/bob"),
            Some(ChatNick::Irc("bob".into()))
        );
        assert_eq!(
            ChatNick::parse("matrix:/bob"),
            Some(ChatNick::Matrix("@bob:fedora.im".into()))
        );
        assert_eq!(
            ChatNick::parse("matrix://matrix.org/bob"),
            Some(ChatNick::Matrix("@bob:matrix.org".into()))
        );
        assert_eq!(
            ChatNick::parse("matrix:/@bob:example.org"),
            Some(ChatNick::Matrix("@bob:example.org".into()))
        );
        assert_eq!(
            ChatNick::parse("oldnick"),
            Some(ChatNick::Irc("oldnick".into()))
        );
        assert_eq!(ChatNick::parse("irc:/"), None);
        assert_eq!(ChatNick::parse(""), None);
    }

    fn alice() -> Account {
        Account {
            emails: vec!["alice@example.com".into(), "Alice@Work.example".into()],
            ircnicks: vec!["irc:/ali".into(), "matrix:/alice".into()],
            locked: false,
        }
    }

    #[test]
    fn aliases_map_emails_and_nicks_to_the_account() {
        let mut d = Directory::new();
        d.insert("alice", alice());
        d.insert(
            "bob",
            Account {
                // "ali" is alice's already; bob's own name as a nick adds nothing.
                ircnicks: vec!["irc:/ali".into(), "irc:/bob".into()],
                ..Account::default()
            },
        );
        let a = d.aliases();
        assert_eq!(a.email("alice@example.com"), "alice");
        assert_eq!(a.email("alice@work.example"), "alice");
        assert_eq!(a.nick("ali"), "alice");
        assert_eq!(a.nick("@alice:fedora.im"), "alice");
        assert_eq!(a.len(), 4);
        assert_eq!(
            d.explain_alias("alice@example.com"),
            Some(("alice".into(), AliasKind::Email))
        );
    }

    #[test]
    fn buckets_round_trip_and_are_stable() {
        let mut d = Directory::new();
        for i in 0..500 {
            d.insert(format!("user{i}"), alice());
        }
        let buckets = d.buckets();
        assert!(buckets.len() > 300, "spread: {}", buckets.len());
        assert_eq!(buckets, d.clone().buckets(), "deterministic");
        let mut back = Directory::new();
        for json in buckets.values() {
            back.extend_from_bucket(json).unwrap();
        }
        assert_eq!(back, d);
        // Normalised: the order FAS lists things in does not matter (but for the first e-mail).
        let mut shuffled = alice();
        shuffled.emails.push("alice@example.com".into());
        shuffled.emails[1..].reverse();
        let mut d2 = Directory::new();
        d2.insert("user1", shuffled);
        let mut d1 = Directory::new();
        d1.insert("user1", alice());
        assert_eq!(d1.buckets(), d2.buckets());
    }

    #[test]
    fn a_directory_round_trips_through_serde_normalised() {
        let mut d = Directory::new();
        d.insert("alice", alice());
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(serde_json::from_str::<Directory>(&json).unwrap(), d);
        let unsorted = r#"{"bob":{"emails":["z@x","a@x","a@x"],"locked":true}}"#;
        let back: Directory = serde_json::from_str(unsorted).unwrap();
        // FAS's first address stays first (the one auto-created accounts use); the rest
        // sorted, without repeats.
        assert_eq!(back.get("bob").unwrap().emails, ["z@x", "a@x"]);
        assert!(back.get("bob").unwrap().locked);
    }
}
