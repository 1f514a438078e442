//! The admin subcommands against LocalStack: ownership import, user create / disable /
//! enable / show, and explain on a stored message.

use fmn_aws::prefs_store::PrefsStore;
use fmn_aws::recent::RecentMessages;
use fmn_core::message::Envelope;
use fmn_integration_tests::cli::{self, fails_with, ok};
use fmn_integration_tests::{corpus_envelope, TestEnv};

fn fmn(env: &TestEnv, args: &[&str]) -> std::process::Output {
    cli::fmn(env!("CARGO_BIN_EXE_fmn"), env, args)
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_commands_manage_accounts_and_explain() {
    let env = TestEnv::new("cli-admin").await;

    let out = fmn(
        &env,
        &[
            "ownership",
            "import",
            "tests/data/ownership/pagure_owner_alias.json",
            "--groups",
            "tests/data/ownership/groups.json",
        ],
    );
    let stdout = ok(&out);
    assert!(stdout.contains("24 artifacts written"), "{stdout}");
    assert!(stdout.contains("8 groups written"), "{stdout}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("progress:"));

    let stdout = ok(&fmn(
        &env,
        &[
            "user",
            "create",
            "kalev",
            "--email",
            "kalev@example.org",
            "--create-defaults",
        ],
    ));
    assert!(
        stdout.contains("created kalev (1 destinations, 2 filters)"),
        "{stdout}"
    );
    fails_with(
        &fmn(
            &env,
            &["user", "create", "kalev", "--email", "k@example.org"],
        ),
        "already exists",
    );
    fails_with(
        &fmn(&env, &["user", "create", "bad", "--email", "no-at-sign"]),
        "destinations[0].address",
    );
    fails_with(
        &fmn(&env, &["user", "create", "x", "--create-defaults"]),
        "needs at least one",
    );

    // The message the match function would have stored.
    let envelope = Envelope::from_value(corpus_envelope(
        "bodhi.TestBodhiRequestMultiplePackagesPerUpdate",
    ))
    .unwrap();
    RecentMessages::from_clients(&env.clients)
        .put(
            envelope.msg_id(),
            envelope.topic().as_str(),
            &envelope.to_json(),
        )
        .await
        .unwrap();

    let stdout = ok(&fmn(&env, &["explain", "kalev", envelope.msg_id()]));
    assert!(stdout.contains("Notified: kalev@example.org"), "{stdout}");
    assert!(stdout.contains("matched"), "{stdout}");

    ok(&fmn(&env, &["user", "disable", "kalev"]));
    let stored = PrefsStore::from_clients(&env.clients)
        .get("kalev")
        .await
        .unwrap()
        .unwrap();
    assert!(!stored.enabled);
    let stdout = ok(&fmn(
        &env,
        &["explain", "kalev", envelope.msg_id(), "--json"],
    ));
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["notified"], false);
    assert!(json["summary"].as_str().unwrap().contains("disabled"));

    ok(&fmn(&env, &["user", "enable", "kalev"]));
    let shown: serde_json::Value =
        serde_json::from_str(&ok(&fmn(&env, &["user", "show", "kalev"]))).unwrap();
    assert_eq!(shown["enabled"], true);

    fails_with(
        &fmn(&env, &["user", "disable", "nobody"]),
        "no user `nobody`",
    );
    fails_with(
        &fmn(&env, &["explain", "kalev", "2026-no-such-message"]),
        "not among the recent messages",
    );
}
