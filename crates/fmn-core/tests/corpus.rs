//! Agreement with Fedora's own library over the real-message corpus
//! (`tests/data/fedmsg-examples.jsonl`, see `tests/data/README.md`).
//!
//! Every example is parsed and its metadata extracted; each stated key (`usernames`,
//! `packages`, `link`, `subtitle`) is compared exactly. The per-service table is printed
//! (run with `--nocapture` to see it on success) and the test fails below the targets.

use std::collections::{BTreeMap, BTreeSet};

use fmn_core::message::Envelope;
use fmn_core::meta::{Aliases, Metadata, Registry};
use serde_json::Value;

const CORPUS: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/data/fedmsg-examples.jsonl"
));

const FIELDS: [&str; 4] = ["usernames", "packages", "link", "subtitle"];
const TARGETS: [f64; 4] = [0.95, 0.95, 0.90, 0.80];

/// The account-system stand-in the upstream tests install (see the data README).
fn upstream_test_aliases() -> Aliases {
    [
        ("threebean", "ralph"),
        ("rbean@redhat.com", "ralph"),
        ("puiterwijk@gmail.com", "puiterwijk"),
        ("nicolas.mailhot@laposte.net", "nim"),
    ]
    .into_iter()
    .collect()
}

#[derive(Default, Clone, Copy)]
struct Tally {
    examples: usize,
    stated: [usize; 4],
    agree: [usize; 4],
}

fn actual(meta: &Metadata, field: &str) -> Value {
    let list = |s: &BTreeSet<String>| Value::from(s.iter().cloned().collect::<Vec<_>>());
    match field {
        "usernames" => list(&meta.usernames),
        "packages" => list(&meta.packages),
        "link" => meta.link.clone().map_or(Value::Null, Value::from),
        "subtitle" => meta.subtitle.clone().map_or(Value::Null, Value::from),
        _ => unreachable!(),
    }
}

/// `null` and `""` are the same "nothing" for links and subtitles.
fn same(field: &str, expected: &Value, got: &Value) -> bool {
    if field == "link" || field == "subtitle" {
        let norm = |v: &Value| v.as_str().unwrap_or_default().to_owned();
        return norm(expected) == norm(got);
    }
    expected == got
}

#[test]
fn corpus_agreement() {
    let registry = Registry::default().with_aliases(upstream_test_aliases());
    let mut by_service: BTreeMap<String, Tally> = BTreeMap::new();
    let mut total = Tally::default();
    let mut misses = Vec::new();
    let verbose = std::env::var_os("FMN_CORPUS_VERBOSE").is_some();

    for (n, line) in CORPUS.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let record: Value = serde_json::from_str(line).expect("corpus line is JSON");
        let id = record["id"].as_str().unwrap_or_default().to_owned();
        let expected = &record["expected"];
        let envelope = Envelope::from_record_value(record.clone())
            .unwrap_or_else(|e| panic!("line {}: {id}: {e}", n + 1));
        let meta = registry.extract(&envelope);
        assert_eq!(meta.title, expected["title"].as_str().unwrap_or_default());

        let service = envelope.topic().service().to_owned();
        let tally = by_service.entry(service).or_default();
        tally.examples += 1;
        total.examples += 1;
        for (i, field) in FIELDS.iter().enumerate() {
            let Some(want) = expected.get(*field) else {
                continue;
            };
            tally.stated[i] += 1;
            total.stated[i] += 1;
            let got = actual(&meta, field);
            if same(field, want, &got) {
                tally.agree[i] += 1;
                total.agree[i] += 1;
            } else {
                misses.push(format!("{id} {field}\n    want {want}\n    got  {got}"));
            }
        }
    }

    let pct = |t: &Tally, i: usize| {
        if t.stated[i] == 0 {
            "     -".to_owned()
        } else {
            format!("{:5.1}%", 100.0 * t.agree[i] as f64 / t.stated[i] as f64)
        }
    };
    println!(
        "{:<18} {:>5} {:>9} {:>9} {:>9} {:>9}",
        "service", "n", "usernames", "packages", "link", "subtitle"
    );
    for (service, t) in &by_service {
        println!(
            "{:<18} {:>5} {:>9} {:>9} {:>9} {:>9}",
            service,
            t.examples,
            pct(t, 0),
            pct(t, 1),
            pct(t, 2),
            pct(t, 3)
        );
    }
    println!(
        "{:<18} {:>5} {:>9} {:>9} {:>9} {:>9}",
        "OVERALL",
        total.examples,
        pct(&total, 0),
        pct(&total, 1),
        pct(&total, 2),
        pct(&total, 3)
    );
    for (i, field) in FIELDS.iter().enumerate() {
        println!("{field}: {}/{} agree", total.agree[i], total.stated[i]);
    }
    if verbose {
        for miss in &misses {
            println!("MISS {miss}");
        }
    }

    let mut failed = Vec::new();
    for (i, field) in FIELDS.iter().enumerate() {
        let rate = total.agree[i] as f64 / total.stated[i].max(1) as f64;
        if rate < TARGETS[i] {
            failed.push(format!(
                "{field} {:.1}% < {:.0}%",
                rate * 100.0,
                TARGETS[i] * 100.0
            ));
        }
    }
    assert!(
        failed.is_empty(),
        "corpus agreement below target: {} (set FMN_CORPUS_VERBOSE=1 to list mismatches)",
        failed.join(", ")
    );
}
