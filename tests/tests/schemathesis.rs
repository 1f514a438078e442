//! schemathesis (pinned in tests/schemathesis/requirements.txt, venv made by its install.sh)
//! generates requests from the web-api's own OpenAPI document, valid and invalid, with an
//! admin's development token, against the router on the emulators: no answer may be a 5xx.
//! Bounded: a few examples per operation, a time budget, no shrinking. Its stateful phase follows
//! the document's links from the create operations to the operations on what they created.

use std::time::Duration;

use fmn_aws::confirmations::Limits;
use fmn_integration_tests::web::{dev_settings, WebApi};
use fmn_integration_tests::{init_logging, repo_root, TestEnv};

/// The generator's seed: fixed so a run can be repeated; `FMN_SCHEMATHESIS_SEED` picks another.
const DEFAULT_SEED: &str = "7";

/// The part of schemathesis's output that says what failed (its FAILURES/ERRORS sections and
/// the summary), at most `limit` bytes: the whole output of a run is mostly progress lines.
fn findings(stdout: &str, limit: usize) -> &str {
    let start = ["ERRORS", "FAILURES", "WARNINGS", "SUMMARY"]
        .iter()
        .filter_map(|h| stdout.find(&format!(" {h} ")))
        .min()
        .map(|i| stdout[..i].rfind('\n').map_or(0, |n| n + 1))
        .unwrap_or(0);
    let mut end = (start + limit).min(stdout.len());
    while !stdout.is_char_boundary(end) {
        end -= 1;
    }
    &stdout[start..end]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_errors() {
    // Thousands of requests: the web-api's info logs would bury schemathesis's own report.
    init_logging("warn");
    let env = TestEnv::new("schemathesis").await;
    // The confirmation allowances (20 an hour per user) would answer 429 to most of the
    // destinations the run creates; here they are tested by web_api.rs, not fuzzed.
    let mut settings = dev_settings();
    settings.confirmations = Limits {
        per_user_hour: 100_000,
        per_address_day: 100_000,
        global_hour: 100_000,
    };
    let api = WebApi::start_with(&env, settings).await;
    let root = repo_root();
    let installed = tokio::process::Command::new(root.join("tests/schemathesis/install.sh"))
        .status()
        .await
        .expect("running tests/schemathesis/install.sh");
    assert!(installed.success(), "installing schemathesis failed");
    let local = std::env::var_os("FMN_LOCAL_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root.join(".local"));
    let report = tempfile::tempdir().unwrap();
    let token = api.token("schema-tester", true);
    let seed = std::env::var("FMN_SCHEMATHESIS_SEED").unwrap_or_else(|_| DEFAULT_SEED.into());
    let run = tokio::process::Command::new(local.join("venv-schemathesis/bin/schemathesis"))
        .current_dir(report.path())
        .env("NO_COLOR", "1")
        .args([
            "run",
            &format!("{}/api/v1/openapi.json", api.base),
            "--checks",
            "not_a_server_error",
            // Stateful: the create operations' OpenAPI links feed real ids and names to the
            // operations on `{id}` and `{name}`, which random ones only ever reach as 404.
            "--phases",
            "examples,coverage,fuzzing,stateful",
            "--max-examples",
            "25",
            "--max-time",
            "60",
            // Health checks judge the generator, not the API; on a busy 2-core CI they flake.
            "--suppress-health-check",
            "filter_too_much,too_slow,data_too_large",
            "--no-shrink",
            // One worker: with two, Hypothesis's process-wide caches are shared by two threads and
            // on a loaded machine example generation fails inside schemathesis ("FlakyFailure" from
            // a KeyError in its lambda-source cache), which reads as a failed run.
            "--workers",
            "1",
            "--seed",
            &seed,
            "--request-timeout",
            "20",
            "--header",
            &format!("Authorization: Bearer {token}"),
        ])
        .output();
    let out = tokio::time::timeout(Duration::from_secs(300), run)
        .await
        .expect("schemathesis finishes within 5 minutes")
        .expect("running schemathesis");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "schemathesis (seed {seed}) found problems ({}):\n{}\n{stderr}",
        out.status,
        findings(&stdout, 20_000)
    );
    println!("{}", findings(&stdout, 8_000));
    assert!(
        stdout.contains("passed") || stdout.contains("No issues found"),
        "schemathesis ran no operations?\n{stdout}"
    );
}
