//! `fmn bench e2e` at a tiny size on the emulators, through the real `fmn` binary: both
//! profiles deliver, the request counter sees each stage's calls, the bill is printed, and the
//! mass rebuild writes its chart. No assertion on time.

use fmn_integration_tests::cli::ok;
use fmn_integration_tests::{repo_root, unique_prefix};

/// The per-unit figure of the counter's row for `stage` and `operation` (and `resource`).
fn per_unit(text: &str, stage: &str, operation: &str, resource: &str) -> f64 {
    let line = text
        .lines()
        .find(|l| {
            let mut w = l.split_whitespace();
            // Stages may have spaces ("fmn-match event source"): match the row's start.
            l.starts_with(&format!("{stage} "))
                && l[stage.len()..].trim_start().starts_with(operation)
                && (resource.is_empty() || w.any(|x| x == resource))
        })
        .unwrap_or_else(|| panic!("no row {stage} {operation} {resource} in:\n{text}"));
    let after = &line[line.find(operation).unwrap() + operation.len()..];
    after
        .split_whitespace()
        .find_map(|w| w.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no figure in {line:?}"))
}

fn run(args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_fmn"))
        .args(args)
        .current_dir(repo_root())
        .output()
        .expect("running fmn");
    let stdout = ok(&out);
    println!("{stdout}");
    stdout
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tiny_steady_bench_counts_each_stage_and_prints_the_bill() {
    fmn_integration_tests::init();
    let prefix = unique_prefix("bench-e2e");
    let stdout = run(&[
        "bench",
        "e2e",
        "--rate",
        "5",
        "--seconds",
        "3",
        "--drain",
        "90",
        "--prefix",
        &prefix,
    ]);
    assert!(stdout.contains("delivered        15 of 15"), "{stdout}");
    // One mail a message, one SES call a mail, two delivery-record writes (claim, sent).
    let ses = per_unit(&stdout, "fmn-deliver-email", "sesv2:SendEmail", "");
    assert!((ses - 1.0).abs() < 1e-9, "{ses}");
    let records = per_unit(
        &stdout,
        "fmn-deliver-email",
        "dynamodb:UpdateItem",
        "delivery-records",
    );
    assert!((1.9..=2.5).contains(&records), "{records}");
    // Each message stored once for `fmn explain`/`fmn replay`, with its capacity.
    let recent = per_unit(&stdout, "fmn-match", "dynamodb:PutItem", "recent-messages");
    assert!((recent - 1.0).abs() < 1e-9, "{recent}");
    let recent_line = stdout
        .lines()
        .find(|l| l.starts_with("fmn-match ") && l.contains("recent-messages"))
        .unwrap();
    let wcu: f64 = recent_line
        .split_whitespace()
        .nth(5)
        .unwrap()
        .parse()
        .unwrap();
    assert!(wcu >= 1.0, "consumed capacity is reported: {recent_line}");
    assert!(
        per_unit(
            &stdout,
            "fmn-ingest-bridge",
            "sqs:SendMessageBatch",
            "ingest"
        ) > 0.0
    );
    assert!(
        per_unit(
            &stdout,
            "fmn-match event source",
            "sqs:ReceiveMessage",
            "ingest"
        ) > 0.0
    );
    for line in ["  SES ", "  DynamoDB ", "  SQS ", "  Lambda ", "  total "] {
        assert!(stdout.contains(line), "no bill line {line:?} in:\n{stdout}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tiny_mass_rebuild_mails_the_owners_and_charts_the_backlog() {
    fmn_integration_tests::init();
    let prefix = unique_prefix("bench-burst");
    let stdout = run(&[
        "bench",
        "e2e",
        "--profile",
        "mass-rebuild",
        "--users",
        "200",
        "--rate",
        "10",
        "--seconds",
        "2",
        "--drain",
        "120",
        "--ses-rate",
        "200",
        "--prefix",
        &prefix,
    ]);
    assert!(
        stdout.contains("stored ownership: 25000 packages"),
        "{stdout}"
    );
    let mails = stdout
        .lines()
        .find_map(|l| l.strip_prefix("owner mails"))
        .unwrap_or_else(|| panic!("no owner mails line in:\n{stdout}"));
    let sent: usize = mails.split_whitespace().next().unwrap().parse().unwrap();
    assert!(sent > 0, "{mails}");
    assert!(stdout.contains("backlog at end   0 after"), "{stdout}");
    assert!(stdout.contains("latency p99"), "{stdout}");
    let svg = std::fs::read_to_string(repo_root().join("target/bench/mass-rebuild.svg")).unwrap();
    assert!(
        svg.starts_with("<svg") && svg.contains("<polyline"),
        "{svg}"
    );
    assert!(per_unit(&stdout, "fmn-match", "sqs:SendMessageBatch", "email") > 0.0);
}
