//! schemathesis (pinned in tests/schemathesis/requirements.txt, venv made by its install.sh)
//! generates requests from the web-api's own OpenAPI document, valid and invalid, with an
//! admin's development token, against the router on the emulators: no answer may be a 5xx.
//! Bounded: a few examples per operation, a time budget, no shrinking.

use std::time::Duration;

use fmn_integration_tests::web::WebApi;
use fmn_integration_tests::{repo_root, TestEnv};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_errors() {
    let env = TestEnv::new("schemathesis").await;
    let api = WebApi::start(&env).await;
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
    let run = tokio::process::Command::new(local.join("venv-schemathesis/bin/schemathesis"))
        .current_dir(report.path())
        .env("NO_COLOR", "1")
        .args([
            "run",
            &format!("{}/api/v1/openapi.json", api.base),
            "--checks",
            "not_a_server_error",
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            "25",
            "--max-time",
            "60",
            // Health checks judge the generator, not the API; on a busy 2-core CI they flake.
            "--suppress-health-check",
            "filter_too_much,too_slow,data_too_large",
            "--no-shrink",
            "--workers",
            "2",
            "--seed",
            "7",
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
        "schemathesis found problems ({}):\n{stdout}\n{stderr}",
        out.status
    );
    assert!(
        stdout.contains("passed") || stdout.contains("No issues found"),
        "schemathesis ran no operations?\n{stdout}"
    );
}
