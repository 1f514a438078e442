//! Agreement with the fedora-messaging schema classes over the real-message corpus
//! (`tests/data/fedora-messaging-examples.jsonl`, see `tests/data/README.md`).
//!
//! Every example is parsed as it comes off the bus and its metadata extracted; each field is
//! compared exactly with what the Python class computes (lists as sets of names). The per-field and per-package tables
//! are printed (`--nocapture`) and the test fails below the targets. Examples whose Python
//! property raises (`{"__raises__": ...}` in the corpus) cannot be matched and are counted
//! apart. `FMN_CORPUS_VERBOSE=1` prints every miss.

use std::collections::BTreeMap;

use fmn_core::message::Envelope;
use fmn_core::meta::{Metadata, Registry};
use serde_json::{json, Value};

const CORPUS: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/data/fedora-messaging-examples.jsonl"
));

/// The compared fields and their targets (share of exact agreement).
const FIELDS: [(&str, f64); 12] = [
    ("usernames", 1.0),
    ("groups", 1.0),
    ("packages", 1.0),
    ("containers", 1.0),
    ("modules", 1.0),
    ("flatpaks", 1.0),
    ("severity", 1.0),
    ("app_name", 0.98),
    ("agent_name", 0.98),
    ("url", 0.95),
    ("summary", 0.95),
    ("__str__", 0.90),
];

/// The corpus's `expected` shape for our metadata (what `fmn meta` prints too).
fn actual(meta: &Metadata, field: &str) -> Value {
    match field {
        "usernames" => json!(meta.usernames),
        "groups" => json!(meta.groups),
        "packages" => json!(meta.packages),
        "containers" => json!(meta.containers),
        "modules" => json!(meta.modules),
        "flatpaks" => json!(meta.flatpaks),
        "severity" => json!(meta.severity.level()),
        "app_name" => json!((!meta.app.is_empty()).then_some(&meta.app)),
        "agent_name" => json!(meta.agent),
        "url" => json!(meta.link),
        "summary" => json!(meta.subtitle),
        "__str__" => json!(meta.long_text),
        _ => unreachable!("unknown field {field}"),
    }
}

#[derive(Default, Clone, Copy)]
struct Tally {
    examples: usize,
    compared: [usize; FIELDS.len()],
    agree: [usize; FIELDS.len()],
    raises: [usize; FIELDS.len()],
}

impl Tally {
    fn add(&mut self, field: usize, expected: &Value, got: &Value) -> bool {
        if expected.get("__raises__").is_some() {
            self.raises[field] += 1;
            return true;
        }
        self.compared[field] += 1;
        let same = normalised(expected) == *got;
        self.agree[field] += usize::from(same);
        same
    }

    fn share(&self, field: usize) -> f64 {
        self.agree[field] as f64 / self.compared[field].max(1) as f64
    }
}

/// What comparing a corpus gave: per schema package and in total, the lines that are no
/// message, and the number of lines.
struct Comparison {
    by_package: BTreeMap<String, Tally>,
    total: Tally,
    unparsed: Vec<String>,
    lines: usize,
}

/// Extracts every line's metadata and compares it with the line's `expected`.
fn compare(corpus: &str, registry: &Registry) -> Comparison {
    let verbose = std::env::var_os("FMN_CORPUS_VERBOSE").is_some();
    let mut by_package: BTreeMap<String, Tally> = BTreeMap::new();
    let mut total = Tally::default();
    let mut unparsed = Vec::new();
    let mut lines = 0;
    for line in corpus.lines().filter(|l| !l.trim().is_empty()) {
        lines += 1;
        let record: Value = serde_json::from_str(line).expect("corpus line is JSON");
        let package = record["schema_package"].as_str().unwrap_or("?").to_owned();
        let schema = record["headers"]["fedora_messaging_schema"]
            .as_str()
            .unwrap_or("?");
        let id = record["id"].as_str().unwrap_or_default().to_owned();
        let expected = &record["expected"];
        let tally = by_package.entry(package.clone()).or_default();
        tally.examples += 1;
        total.examples += 1;
        let envelope = match Envelope::from_fedora_messaging_value(&record) {
            Ok(envelope) => envelope,
            Err(error) => {
                // Counted as a miss on every field.
                for (n, _) in FIELDS.iter().enumerate() {
                    tally.compared[n] += 1;
                    total.compared[n] += 1;
                }
                unparsed.push(format!("{id} ({schema}): {error}"));
                continue;
            }
        };
        let meta = registry.extract(&envelope);
        for (n, (field, _)) in FIELDS.iter().enumerate() {
            let got = actual(&meta, field);
            let want = &expected[*field];
            total.add(n, want, &got);
            if !tally.add(n, want, &got) && verbose {
                println!("MISS {schema} {id} {field}\n  want {want}\n  got  {got}");
            }
        }
    }
    Comparison {
        by_package,
        total,
        unparsed,
        lines,
    }
}

#[test]
fn fedora_messaging_corpus_agreement() {
    let registry = Registry::default();
    let Comparison {
        by_package,
        total,
        unparsed,
        lines,
    } = compare(CORPUS, &registry);
    assert_eq!(lines, 277, "the corpus has 277 lines");
    let schema_only = schema_only_lists(&registry);

    let header: String = FIELDS
        .iter()
        .map(|(f, _)| format!(" {:>9}", short(f)))
        .collect();
    println!("\n{:<42} {:>4}{header}", "schema package", "n");
    for (package, tally) in by_package.iter().chain([(&"TOTAL".to_owned(), &total)]) {
        let cells: String = (0..FIELDS.len())
            .map(|n| format!(" {:>8.1}%", 100.0 * tally.share(n)))
            .collect();
        println!("{package:<42} {:>4}{cells}", tally.examples);
    }
    for (n, (field, target)) in FIELDS.iter().enumerate() {
        println!(
            "{field:<10} {:>3}/{:<3} = {:5.1}% (target {:.0}%; {} raise in Python, not compared)",
            total.agree[n],
            total.compared[n],
            100.0 * total.share(n),
            100.0 * target,
            total.raises[n]
        );
    }
    println!(
        "lists and severity from the schema code alone (headers removed): {schema_only}/{lines} messages agree"
    );
    for line in &unparsed {
        println!("not an envelope: {line}");
    }
    let failing: Vec<String> = FIELDS
        .iter()
        .enumerate()
        .filter(|(n, (_, target))| total.share(*n) < *target)
        .map(|(n, (field, target))| format!("{field} {:.3} < {target}", total.share(n)))
        .collect();
    assert!(failing.is_empty(), "below target: {failing:?}");
    assert!(unparsed.is_empty(), "every corpus line is a message");
    // The headers only complete the lists: the schema code must find the names itself.
    assert_eq!(schema_only, lines, "lists from the schema code alone");
}

/// How many messages get all six lists and the severity right without the
/// `fedora_messaging_<kind>_<name>` and `fedora_messaging_severity` headers (which the schema
/// layer otherwise uses): the schema code must find them itself.
fn schema_only_lists(registry: &Registry) -> usize {
    let kinds = ["user", "group", "rpm", "container", "module", "flatpak"];
    let fields = [
        "usernames",
        "groups",
        "packages",
        "containers",
        "modules",
        "flatpaks",
        "severity",
    ];
    let mut agree = 0;
    for line in CORPUS.lines().filter(|l| !l.trim().is_empty()) {
        let mut record: Value = serde_json::from_str(line).expect("corpus line is JSON");
        if let Some(headers) = record["headers"].as_object_mut() {
            headers.retain(|key, _| {
                key != "fedora_messaging_severity"
                    && !kinds
                        .iter()
                        .any(|k| key.starts_with(&format!("fedora_messaging_{k}_")))
            });
        }
        let Ok(envelope) = Envelope::from_fedora_messaging_value(&record) else {
            continue;
        };
        let meta = registry.extract(&envelope);
        let all = fields
            .iter()
            .all(|f| normalised(&record["expected"][*f]) == actual(&meta, f));
        if !all && std::env::var_os("FMN_CORPUS_VERBOSE").is_some() {
            println!("LIST MISS (schema only) {}", record["id"]);
        }
        agree += usize::from(all);
    }
    agree
}

/// Our lists are sets of names, sorted; Python's are lists in the schema's order and may hold
/// `None` (e.g. an absent agent), which names nobody.
fn normalised(expected: &Value) -> Value {
    match expected.as_array() {
        Some(items) => {
            let set: std::collections::BTreeSet<&str> =
                items.iter().filter_map(Value::as_str).collect();
            json!(set)
        }
        None => expected.clone(),
    }
}

/// Schemas the corpus has no example of, checked the same way (`fedora-messaging-extra.jsonl`,
/// see `tests/data/README.md`): all must agree.
#[test]
fn schemas_outside_the_corpus_agree_exactly() {
    let extra = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/data/fedora-messaging-extra.jsonl"
    ));
    let result = compare(extra, &Registry::default());
    assert_eq!(result.lines, 20);
    assert!(result.unparsed.is_empty(), "{:?}", result.unparsed);
    for (n, (field, _)) in FIELDS.iter().enumerate() {
        assert_eq!(result.total.compared[n], 20, "{field}");
        assert_eq!(result.total.agree[n], 20, "{field}");
    }
}

fn short(field: &str) -> &str {
    match field {
        "containers" => "contain.",
        "agent_name" => "agent",
        "app_name" => "app",
        "usernames" => "users",
        other => other,
    }
}
