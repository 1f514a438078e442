//! What the costliest user the preferences allow costs a match instance, measured as resident
//! memory (the process's peak, reset first): ten regex rules (the per-user budget), each the largest program a
//! 256-byte pattern may compile to, built into the index and run over a body cut at the scan
//! cap. The figure sizes the match function's memory (README, "Memory of the match
//! function"); the assertion keeps a change to the limits from quietly multiplying it.
//!
//! One test in its own binary: the figures are the process's.

use std::sync::Arc;

use fmn_core::matching::{Matcher, MessageFacts};
use fmn_core::message::Envelope;
use fmn_core::meta::Registry;
use fmn_core::ownership::Ownership;
use fmn_core::prefs::{limits, Destination, Filter, UserPrefs};
use fmn_core::rules::{
    compile_regex, Rule, RuleKind, MAX_PATTERN, MAX_REGEX_PROGRAM, MAX_REGEX_SCAN,
};

/// A `/proc/self/status` figure, in bytes (`VmRSS`: resident now; `VmHWM`: the peak since the
/// last reset).
fn status_bytes(field: &str) -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("Linux's /proc");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"))
        * 1024
}

/// The largest `<tag>\w{n}` the rule checks accept: Unicode word classes repeated compile to
/// the biggest programs a short pattern can ask for.
fn costliest_pattern(tag: &str) -> String {
    let pattern = |n: usize| format!("{tag}\\w{{{n}}}");
    let (mut ok, mut too_big) = (1, 100_000);
    while too_big - ok > 1 {
        let mid = (ok + too_big) / 2;
        if compile_regex(&pattern(mid)).is_ok() {
            ok = mid;
        } else {
            too_big = mid;
        }
    }
    let p = pattern(ok);
    assert!(p.len() <= MAX_PATTERN);
    p
}

#[test]
fn the_costliest_allowed_user_costs_a_match_instance_a_few_mib() {
    let patterns: Vec<String> = (0..limits::MAX_REGEX_RULES)
        .map(|i| costliest_pattern(&format!("t{i}")))
        .collect();
    let mut user = UserPrefs::new("regexfan");
    let dest = Destination::email("email-1", "regexfan@example.org").confirmed(true);
    user.destinations = vec![dest.clone()];
    user.filters = vec![Filter::new(
        "filter-1".into(),
        "everything, by regex".into(),
        vec![dest.id],
        patterns
            .iter()
            .map(|p| Rule::new(RuleKind::Regex { pattern: p.clone() }))
            .collect(),
    )];
    user.validate().expect("the budget allows this user");
    // One rule more is refused: this is the costliest user there can be.
    let mut over = user.clone();
    over.filters[0].rules.push(Rule::new(RuleKind::Regex {
        pattern: "x".into(),
    }));
    assert!(over.validate().is_err());

    // A body past the scan cap made of near misses for every rule (its tag, then word
    // characters from several scripts, cut short): no prefilter skips them, each regex's lazy
    // DFA runs over the whole cap and none matches.
    let near_misses: String = (0..limits::MAX_REGEX_RULES)
        .map(|i| format!("t{i}éж€ "))
        .collect();
    let words = near_misses.repeat(MAX_REGEX_SCAN / near_misses.len() + 1);
    let envelope = Envelope::from_json(
        &serde_json::json!({
            "topic": "org.fedoraproject.prod.wiki.article.edit",
            "msg_id": "2026-regex-budget",
            "timestamp": 1.7e9,
            "msg": {"user": "someone", "title": "t0", "diff": words},
        })
        .to_string(),
    )
    .unwrap();
    let meta = Registry::default().extract(&envelope);
    let ownership = Arc::new(Ownership::new());

    // Linux: writing 5 resets the peak (VmHWM) to the current resident size.
    std::fs::write("/proc/self/clear_refs", "5").expect("resetting the peak RSS");
    let before = status_bytes("VmRSS");
    let (matcher, skipped) = Matcher::build([user], Arc::clone(&ownership));
    assert!(skipped.is_empty(), "{skipped:?}");
    let built = status_bytes("VmRSS").saturating_sub(before);
    let facts = MessageFacts::new(&envelope, &meta, &ownership);
    let matched = matcher.matches(&facts);
    assert!(matched.is_empty(), "near misses only");
    let peak = status_bytes("VmHWM").saturating_sub(before);
    let mib = |b: usize| b as f64 / (1024.0 * 1024.0);
    println!(
        "costliest allowed user: {} regex rules (like {}), index {:.2} MiB, peak while matching a {} KiB body {:.2} MiB",
        limits::MAX_REGEX_RULES,
        patterns[0],
        mib(built),
        MAX_REGEX_SCAN / 1024,
        mib(peak),
    );
    // The limits bound it at ten programs and ten lazy-DFA caches of MAX_REGEX_PROGRAM each
    // (5 MiB); measured 2.7 MiB (2026-12-01, README). Twice the bound fails only when the
    // limits change, not the regex crate's bookkeeping.
    let bound = 2 * limits::MAX_REGEX_RULES * MAX_REGEX_PROGRAM;
    assert!(
        peak < 2 * bound,
        "the costliest user now costs {:.1} MiB",
        mib(peak)
    );
}
