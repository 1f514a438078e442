//! A literal prefilter for the filters evaluated on every message (those with no indexable
//! rule: in practice a body regex alone).
//!
//! Each such rule list that has a positive body regex is gated by that pattern's required
//! literals: every match of the pattern begins with one of them (`regex-syntax`'s prefix
//! extraction), so a body holding none of them cannot match and the list is not evaluated.
//! One Aho-Corasick pass over the body finds which literals occur, for all lists at once,
//! instead of one regex search per distinct pattern. A pattern without a usable literal set
//! (one that can match the empty string, or whose set the extraction gave up on) leaves its
//! list always evaluated. (A `RegexSet` over the patterns was measured 21x slower: its lazy
//! DFA thrashes.)

use std::collections::HashMap;

use aho_corasick::{AhoCorasick, MatchKind};
use regex_syntax::hir::literal::{ExtractKind, Extractor};

use crate::rules::{Rule, RuleKind};

/// The literals one of which begins every match of `pattern` (as `regex` compiles it, with
/// its default flags), or None when there is no usable set: the pattern does not parse, can
/// match the empty string, or the set is infinite or empty.
pub fn required_literals(pattern: &str) -> Option<Vec<Vec<u8>>> {
    // `regex::RegexBuilder`'s defaults are `regex-syntax`'s (Unicode on, no flags set).
    let hir = regex_syntax::Parser::new().parse(pattern).ok()?;
    let mut extractor = Extractor::new();
    extractor.kind(ExtractKind::Prefix);
    let mut seq = extractor.extract(&hir);
    // Fewer, shorter literals search faster and stay correct (each is then a prefix of one
    // it replaces).
    seq.optimize_for_prefix_by_preference();
    let literals = seq.literals()?;
    if literals.is_empty() || literals.iter().any(|l| l.as_bytes().is_empty()) {
        return None;
    }
    Some(literals.iter().map(|l| l.as_bytes().to_vec()).collect())
}

/// The pattern of a rule list's first positive body regex that has a usable literal set.
fn gate_of<'a>(rules: impl IntoIterator<Item = &'a Rule>) -> Option<Vec<Vec<u8>>> {
    rules.into_iter().find_map(|rule| match &rule.kind {
        RuleKind::Regex { pattern } if !rule.negated => required_literals(pattern),
        _ => None,
    })
}

/// The gates of a matcher's always-evaluated rule lists (see the module's comment), built
/// when the first message after a change to those lists is matched.
#[derive(Debug, Default)]
pub(super) struct Prefilter {
    /// Every distinct literal; None when no list has a gate.
    automaton: Option<AhoCorasick>,
    /// Per list (in the matcher's order): the ids of its literals, one of which must occur;
    /// None: always evaluated.
    gates: Vec<Option<Box<[u32]>>>,
    literals: usize,
}

/// Which literals a body holds.
pub(super) struct Present {
    bits: Vec<u64>,
    /// No automaton: every list is evaluated.
    all: bool,
}

impl Prefilter {
    /// Gates for these rule lists, in this order.
    pub(super) fn build<'a, L>(lists: impl Iterator<Item = L>) -> Self
    where
        L: IntoIterator<Item = &'a Rule>,
    {
        let mut ids: HashMap<Vec<u8>, u32> = HashMap::new();
        let mut patterns: Vec<Vec<u8>> = Vec::new();
        let gates: Vec<Option<Box<[u32]>>> = lists
            .map(|rules| {
                let literals = gate_of(rules)?;
                let mut gate: Vec<u32> = literals
                    .into_iter()
                    .map(|l| {
                        *ids.entry(l.clone()).or_insert_with(|| {
                            patterns.push(l);
                            (patterns.len() - 1) as u32
                        })
                    })
                    .collect();
                gate.sort_unstable();
                gate.dedup();
                Some(gate.into_boxed_slice())
            })
            .collect();
        let automaton = if patterns.is_empty() {
            None
        } else {
            // Standard semantics: overlapping search reports every literal that occurs.
            AhoCorasick::builder()
                .match_kind(MatchKind::Standard)
                .build(&patterns)
                .ok()
        };
        let gates = if automaton.is_some() {
            gates
        } else {
            // (Building cannot fail at these sizes; if it did, nothing is gated.)
            gates.into_iter().map(|_| None).collect()
        };
        Self {
            automaton,
            gates,
            literals: patterns.len(),
        }
    }

    /// The literals present in the text the body regexes search (made only when some list
    /// is gated: the body's JSON is made on first use).
    pub(super) fn scan<'h>(&self, haystack: impl FnOnce() -> &'h str) -> Present {
        let Some(automaton) = &self.automaton else {
            return Present {
                bits: Vec::new(),
                all: true,
            };
        };
        let mut bits = vec![0u64; self.literals.div_ceil(64)];
        for m in automaton.find_overlapping_iter(haystack()) {
            let id = m.pattern().as_usize();
            bits[id / 64] |= 1 << (id % 64);
        }
        Present { bits, all: false }
    }

    /// Whether list `i` may hold for a body with these literals (false: it cannot).
    pub(super) fn may_hold(&self, i: usize, present: &Present) -> bool {
        if present.all {
            return true;
        }
        match self.gates.get(i) {
            Some(Some(gate)) => gate
                .iter()
                .any(|&id| present.bits[id as usize / 64] & (1 << (id % 64)) != 0),
            _ => true,
        }
    }

    /// How many lists are gated.
    #[cfg(test)]
    fn gated(&self) -> usize {
        self.gates.iter().filter(|g| g.is_some()).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn regex_rule(pattern: &str, negated: bool) -> Rule {
        let mut r = Rule::new(RuleKind::Regex {
            pattern: pattern.into(),
        });
        r.negated = negated;
        r
    }

    #[test]
    fn literals_are_extracted_or_refused() {
        let lits = |p: &str| {
            required_literals(p).map(|v| {
                v.into_iter()
                    .map(|l| String::from_utf8(l).unwrap())
                    .collect::<Vec<_>>()
            })
        };
        assert_eq!(lits(r"\bglibc\b"), Some(vec!["glibc".into()]));
        assert_eq!(
            lits("kernel|python"),
            Some(vec!["kernel".into(), "python".into()])
        );
        let case_blind = lits("(?i)ab").unwrap();
        assert!(case_blind.contains(&"AB".to_string()) && case_blind.contains(&"ab".to_string()));
        // Can match the empty string, or anything: always evaluated.
        assert_eq!(lits("a*"), None);
        assert_eq!(lits(r"\w+"), None);
        assert_eq!(lits("(unclosed"), None);
    }

    #[test]
    fn only_positive_body_regexes_gate() {
        let lists: Vec<Vec<Rule>> = vec![
            vec![regex_rule("glibc", false)],
            vec![regex_rule("glibc", true)],
            vec![regex_rule(r"\w+", false)],
            vec![Rule::new(RuleKind::PackageRegex {
                pattern: "glibc".into(),
            })],
            vec![regex_rule(r"\d+", false), regex_rule("kernel", false)],
        ];
        let p = Prefilter::build(lists.iter());
        assert_eq!(p.gated(), 2);
        let present = p.scan(|| "a kernel update");
        let held: Vec<bool> = (0..lists.len()).map(|i| p.may_hold(i, &present)).collect();
        assert_eq!(held, [false, true, true, true, true]);
        let present = p.scan(|| "glibc-2.38");
        assert!(p.may_hold(0, &present) && !p.may_hold(4, &present));
    }

    #[test]
    fn nothing_gated_means_everything_evaluated() {
        let lists = [vec![regex_rule(".*", false)]];
        let p = Prefilter::build(lists.iter());
        assert_eq!(p.gated(), 0);
        assert!(p.may_hold(0, &p.scan(|| unreachable!("nothing gated: no body needed"))));
    }
}
