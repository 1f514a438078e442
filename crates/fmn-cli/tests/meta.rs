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
