//! `fmn meta` end to end: the built binary over the corpus and over bad input.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;

const CORPUS: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/data/fedmsg-examples.jsonl"
));

fn run_meta(input: &str, args: &[&str]) -> (Vec<Value>, bool) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fmn"))
        .arg("meta")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("fmn runs");
    let mut stdin = child.stdin.take().expect("stdin");
    let owned = input.to_owned();
    let writer = std::thread::spawn(move || stdin.write_all(owned.as_bytes()));
    let output = child.wait_with_output().expect("fmn finishes");
    writer.join().expect("writer").expect("stdin written");
    let lines = String::from_utf8(output.stdout)
        .expect("utf-8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("each output line is JSON"))
        .collect();
    (lines, output.status.success())
}

#[test]
fn corpus_records_give_one_object_each() {
    let (lines, ok) = run_meta(CORPUS, &["--alias", "threebean=ralph"]);
    assert!(ok);
    assert_eq!(
        lines.len(),
        CORPUS.lines().filter(|l| !l.trim().is_empty()).count()
    );
    for line in &lines {
        for key in [
            "usernames",
            "packages",
            "title",
            "subtitle",
            "link",
            "agent",
            "app",
        ] {
            assert!(line.get(key).is_some(), "missing {key} in {line}");
        }
        let users: Vec<&str> = line["usernames"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u.as_str().unwrap())
            .collect();
        let mut sorted = users.clone();
        sorted.sort_unstable();
        assert_eq!(users, sorted);
        assert!(!users.contains(&"threebean"));
    }
}

#[test]
fn bad_lines_are_reported_and_skipped() {
    let input = "{\"topic\": \"org.fedoraproject.prod.bodhi.update.comment\", \"msg\": {\"comment\": {\"author\": \"ralph\", \"karma\": 1, \"text\": \"\", \"update_title\": \"fedmsg-1.0-1\"}}}\n[1, 2]\n{\"topic\": \"nope\", \"msg\": {}}\n";
    let (lines, ok) = run_meta(input, &[]);
    assert!(ok);
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["packages"], serde_json::json!(["fedmsg"]));
    assert_eq!(lines[0]["app"], "bodhi");
    assert_eq!(lines[1]["line"], 2);
    assert!(lines[1]["error"].is_string());
    assert_eq!(lines[2]["line"], 3);
    assert!(lines[2]["error"].as_str().unwrap().contains("topic"));
}

const FEDORA_MESSAGING: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/data/fedora-messaging-examples.jsonl"
));

/// The corpus's own keys, in the order `fmn meta` writes them.
const FM_KEYS: [&str; 12] = [
    "app_name",
    "agent_name",
    "usernames",
    "groups",
    "packages",
    "containers",
    "modules",
    "flatpaks",
    "severity",
    "summary",
    "__str__",
    "url",
];

#[test]
fn fedora_messaging_lines_give_the_corpus_keys() {
    let (lines, ok) = run_meta(FEDORA_MESSAGING, &[]);
    assert!(ok);
    let records: Vec<Value> = FEDORA_MESSAGING
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), records.len());
    let mut same_summary = 0;
    for (line, record) in lines.iter().zip(&records) {
        let keys: Vec<&str> = line
            .as_object()
            .unwrap_or_else(|| panic!("object: {line}"))
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, FM_KEYS, "{line}");
        let expected = &record["expected"];
        assert_eq!(line["severity"], expected["severity"]);
        assert_eq!(line["app_name"], expected["app_name"], "{}", record["id"]);
        // Lists are sets of names, sorted; Python's may hold None, which names nobody.
        for key in [
            "usernames",
            "groups",
            "packages",
            "containers",
            "modules",
            "flatpaks",
        ] {
            let mut want: Vec<&str> = expected[key]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(Value::as_str)
                .collect();
            want.sort_unstable();
            want.dedup();
            assert_eq!(
                line[key],
                serde_json::json!(want),
                "{key} of {}",
                record["id"]
            );
        }
        same_summary += usize::from(line["summary"] == expected["summary"]);
    }
    // One summary raises in Python (see tests/data/README.md).
    assert_eq!(same_summary, records.len() - 1);
}
