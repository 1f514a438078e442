//! Nickname and e-mail to account-name lookups.
//!
//! Fedora's library asks the account system (FAS) to turn an IRC nickname or an e-mail address
//! into an account name. Here the caller passes the map: the match function's is made from the
//! accounts the sync copied from FAS (`crate::directory`); tests pass the table the upstream
//! test-suite installs. Names not in the map stay as they are.

use serde::{Deserialize, Serialize};

/// Nickname / e-mail → account name.
///
/// Fedora's ~80,000 accounts give ~165,000 aliases, held by every warm match function: the
/// pairs are kept back to back in one string with a sorted table of 8-byte entries (about 7 MB
/// at that size, a third of a map of owned strings), found by binary search.
#[derive(Debug, Clone, Default)]
pub struct Aliases {
    /// Each entry's alias followed by its account name.
    text: String,
    /// Sorted by alias, one per alias.
    entries: Vec<Entry>,
}

/// Where one pair is in [`Aliases::text`].
#[derive(Debug, Clone, Copy)]
struct Entry {
    at: u32,
    alias_len: u16,
    name_len: u16,
}

impl Aliases {
    /// An empty map: every name stays as it is.
    pub fn new() -> Self {
        Self::default()
    }

    fn alias_of(&self, e: Entry) -> &str {
        let at = e.at as usize;
        &self.text[at..at + usize::from(e.alias_len)]
    }

    fn name_of(&self, e: Entry) -> &str {
        let at = e.at as usize + usize::from(e.alias_len);
        &self.text[at..at + usize::from(e.name_len)]
    }

    fn find(&self, alias: &str) -> Result<usize, usize> {
        self.entries
            .binary_search_by(|e| self.alias_of(*e).cmp(alias))
    }

    /// Appends the pair's text; None for a pair too long to be an alias (FAS keeps addresses
    /// under 255 bytes and names under 64), which is left out.
    fn push_text(&mut self, alias: &str, account: &str) -> Option<Entry> {
        let entry = Entry {
            at: u32::try_from(self.text.len()).ok()?,
            alias_len: u16::try_from(alias.len()).ok()?,
            name_len: u16::try_from(account.len()).ok()?,
        };
        self.text.push_str(alias);
        self.text.push_str(account);
        Some(entry)
    }

    /// Adds one alias (replacing the account it named before).
    pub fn insert(&mut self, alias: impl Into<String>, account: impl Into<String>) {
        let (alias, account) = (alias.into(), account.into());
        let Some(entry) = self.push_text(&alias, &account) else {
            return;
        };
        match self.find(&alias) {
            Ok(i) => self.entries[i] = entry,
            Err(i) => self.entries.insert(i, entry),
        }
    }

    fn get(&self, alias: &str) -> Option<&str> {
        self.find(alias).ok().map(|i| self.name_of(self.entries[i]))
    }

    /// The account an IRC nickname (or any other alias) belongs to; the name itself if unknown.
    pub fn nick<'a>(&'a self, nick: &'a str) -> &'a str {
        self.get(nick).unwrap_or(nick)
    }

    /// The account an e-mail address belongs to: the local part of `@fedoraproject.org`
    /// addresses, else the map's entry, else the address itself.
    pub fn email<'a>(&'a self, email: &'a str) -> &'a str {
        if let Some(local) = email.strip_suffix("@fedoraproject.org") {
            if !local.is_empty() && !local.contains('@') {
                return local;
            }
        }
        if let Some(account) = self.get(email) {
            return account;
        }
        // FAS compares addresses without case; the map keeps them lower-cased.
        if email.bytes().any(|b| b.is_ascii_uppercase()) {
            if let Some(account) = self.get(&email.to_ascii_lowercase()) {
                return account;
            }
        }
        email
    }

    /// Number of aliases.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Bytes the map holds on the heap.
    pub fn heap_bytes(&self) -> usize {
        self.text.capacity() + self.entries.capacity() * std::mem::size_of::<Entry>()
    }

    /// Every alias with its account, in alias order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries
            .iter()
            .map(|e| (self.alias_of(*e), self.name_of(*e)))
    }
}

impl PartialEq for Aliases {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for Aliases {}

/// Built in one sort; when an alias comes twice the later pair wins, as with [`Aliases::insert`].
impl<A: Into<String>, B: Into<String>> FromIterator<(A, B)> for Aliases {
    fn from_iter<I: IntoIterator<Item = (A, B)>>(iter: I) -> Self {
        let pairs = iter
            .into_iter()
            .map(|(a, b)| -> (String, String) { (a.into(), b.into()) });
        Self::from_pairs(pairs, Claim::LastWins)
    }
}

/// Which of two pairs for one alias is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Claim {
    FirstWins,
    LastWins,
}

impl Aliases {
    /// The map of `pairs` where, when an alias comes twice, the first pair keeps it (the
    /// account directory's rule: the first account name in order).
    pub fn first_claim_wins<A: AsRef<str>, B: AsRef<str>>(
        pairs: impl IntoIterator<Item = (A, B)>,
    ) -> Self {
        Self::from_pairs(pairs, Claim::FirstWins)
    }

    fn from_pairs<A, B, I>(pairs: I, claim: Claim) -> Self
    where
        I: IntoIterator<Item = (A, B)>,
        A: AsRef<str>,
        B: AsRef<str>,
    {
        let mut aliases = Self::default();
        let mut entries = Vec::new();
        for (alias, account) in pairs {
            if let Some(entry) = aliases.push_text(alias.as_ref(), account.as_ref()) {
                entries.push(entry);
            }
        }
        // Stable: equal aliases keep the order they came in.
        entries.sort_by(|a, b| aliases.alias_of(*a).cmp(aliases.alias_of(*b)));
        let mut kept: Vec<Entry> = Vec::with_capacity(entries.len());
        for e in entries {
            match kept.last_mut() {
                Some(last) if aliases.alias_of(*last) == aliases.alias_of(e) => {
                    if claim == Claim::LastWins {
                        *last = e;
                    }
                }
                _ => kept.push(e),
            }
        }
        aliases.entries = kept;
        aliases.text.shrink_to_fit();
        aliases
    }
}

/// As stored (the preferences snapshot's head holds the map made, so a cold start reads it
/// instead of making it again): the pairs' text and the table as a flat list of numbers.
#[derive(Serialize, Deserialize)]
struct Stored<T> {
    text: T,
    /// (start, alias length, name length) for each entry, in alias order.
    entries: Vec<u32>,
}

impl Serialize for Aliases {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let entries = self
            .entries
            .iter()
            .flat_map(|e| [e.at, u32::from(e.alias_len), u32::from(e.name_len)])
            .collect();
        Stored {
            text: self.text.as_str(),
            entries,
        }
        .serialize(serializer)
    }
}

/// Read back checked: every entry inside the text on character boundaries, the aliases in
/// strictly increasing order (a damaged map is refused, never half-used).
impl<'de> Deserialize<'de> for Aliases {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let stored = Stored::<String>::deserialize(deserializer)?;
        if stored.entries.len() % 3 != 0 {
            return Err(D::Error::custom("alias entries are not in threes"));
        }
        let mut aliases = Aliases {
            text: stored.text,
            entries: Vec::with_capacity(stored.entries.len() / 3),
        };
        for e in stored.entries.chunks_exact(3) {
            let (Ok(alias_len), Ok(name_len)) = (u16::try_from(e[1]), u16::try_from(e[2])) else {
                return Err(D::Error::custom("alias entry too long"));
            };
            let entry = Entry {
                at: e[0],
                alias_len,
                name_len,
            };
            let start = entry.at as usize;
            let middle = start + usize::from(alias_len);
            let end = middle + usize::from(name_len);
            let text = &aliases.text;
            if end > text.len()
                || ![start, middle, end]
                    .iter()
                    .all(|&i| text.is_char_boundary(i))
            {
                return Err(D::Error::custom("alias entry outside the text"));
            }
            if let Some(last) = aliases.entries.last() {
                if aliases.alias_of(*last) >= aliases.alias_of(entry) {
                    return Err(D::Error::custom("aliases out of order"));
                }
            }
            aliases.entries.push(entry);
        }
        Ok(aliases)
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
        assert_eq!(
            aliases.email("RBean@RedHat.com"),
            "ralph",
            "addresses without case"
        );
    }

    /// The sorted table answers as a map would: the later of two pairs for one alias wins,
    /// whether built at once or one insert at a time, and the two compare equal.
    #[test]
    fn later_pairs_win_and_both_ways_of_building_agree() {
        let pairs = [
            ("zed", "z1"),
            ("amy@example.com", "amy"),
            ("zed", "z2"),
            ("m", "mike"),
        ];
        let built: Aliases = pairs.into_iter().collect();
        let mut inserted = Aliases::new();
        for (a, n) in pairs {
            inserted.insert(a, n);
        }
        assert_eq!(built, inserted);
        let first = Aliases::first_claim_wins(pairs);
        assert_eq!((first.nick("zed"), first.len()), ("z1", 3));
        assert_eq!(built.len(), 3);
        assert_eq!(built.nick("zed"), "z2");
        assert_eq!(built.nick("m"), "mike");
        assert_eq!(built.nick("a"), "a");
        assert_eq!(
            built.iter().collect::<Vec<_>>(),
            [("amy@example.com", "amy"), ("m", "mike"), ("zed", "z2")]
        );
        let too_long = "x".repeat(70_000);
        inserted.insert(too_long.as_str(), "nobody");
        assert_eq!(inserted.nick(&too_long), too_long, "left out, not cut");
    }

    #[test]
    fn stored_maps_read_back_and_damaged_ones_are_refused() {
        let aliases: Aliases = [("ali", "alice"), ("bé@example.com", "bob")]
            .into_iter()
            .collect();
        let json = serde_json::to_string(&aliases).unwrap();
        let back: Aliases = serde_json::from_str(&json).unwrap();
        assert_eq!(back, aliases);
        assert_eq!(back.email("bé@example.com"), "bob");
        assert_eq!(back.heap_bytes(), "alialicebé@example.combob".len() + 2 * 8);
        let damaged = [
            r#"{"text":"alialice","entries":[0,3]}"#,
            r#"{"text":"alialice","entries":[0,3,9]}"#,
            r#"{"text":"alialice","entries":[1,70000,1]}"#,
            r#"{"text":"éa","entries":[0,1,1]}"#,
            r#"{"text":"bxay","entries":[0,1,1,2,1,1]}"#,
            r#"{"text":"axax","entries":[0,1,1,2,1,1]}"#,
        ];
        for json in damaged {
            assert!(serde_json::from_str::<Aliases>(json).is_err(), "{json}");
        }
    }
}
