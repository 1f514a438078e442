//! Nickname and e-mail to account-name lookups.
//!
//! Fedora's library asks the account system (FAS) to turn an IRC nickname or an e-mail address
//! into an account name. Here the caller passes the map: the match function's is made from the
//! accounts the sync copied from FAS (`crate::directory`); tests pass the table the upstream
//! test-suite installs. Names not in the map stay as they are.

use std::collections::HashMap;

/// Nickname / e-mail → account name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Aliases {
    map: HashMap<String, String>,
}

impl Aliases {
    /// An empty map: every name stays as it is.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one alias.
    pub fn insert(&mut self, alias: impl Into<String>, account: impl Into<String>) {
        self.map.insert(alias.into(), account.into());
    }

    /// The account an IRC nickname (or any other alias) belongs to; the name itself if unknown.
    pub fn nick<'a>(&'a self, nick: &'a str) -> &'a str {
        self.map.get(nick).map_or(nick, String::as_str)
    }

    /// The account an e-mail address belongs to: the local part of `@fedoraproject.org`
    /// addresses, else the map's entry, else the address itself.
    pub fn email<'a>(&'a self, email: &'a str) -> &'a str {
        if let Some(local) = email.strip_suffix("@fedoraproject.org") {
            if !local.is_empty() && !local.contains('@') {
                return local;
            }
        }
        if let Some(account) = self.map.get(email) {
            return account;
        }
        // FAS compares addresses without case; the map keeps them lower-cased.
        if email.bytes().any(|b| b.is_ascii_uppercase()) {
            if let Some(account) = self.map.get(&email.to_ascii_lowercase()) {
                return account;
            }
        }
        email
    }

    /// Number of aliases.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

impl<A: Into<String>, B: Into<String>> FromIterator<(A, B)> for Aliases {
    fn from_iter<I: IntoIterator<Item = (A, B)>>(iter: I) -> Self {
        Self {
            map: iter
                .into_iter()
                .map(|(a, b)| (a.into(), b.into()))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups() {
        let aliases: Aliases = [("threebean", "ralph"), ("rbean@redhat.com", "ralph")]
            .into_iter()
            .collect();
        assert_eq!(aliases.nick("threebean"), "ralph");
        assert_eq!(aliases.nick("bob"), "bob");
        assert_eq!(aliases.email("rbean@redhat.com"), "ralph");
        assert_eq!(aliases.email("bob@fedoraproject.org"), "bob");
        assert_eq!(aliases.email("bob@example.com"), "bob@example.com");
    }
}
