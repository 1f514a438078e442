//! The sync function against the FASJSON and Pagure stand-ins (`tests/stand-ins/`) and
//! DynamoDB Local: a full refresh copies ownership, groups and accounts; a second one writes
//! nothing; a change writes only what changed; the match function resolves e-mails and nicks
//! with the synced aliases and matches on the synced ownership.

use fmn_aws::ownership_store::OwnershipStore;
use fmn_aws::prefs_store::PrefsStore;
use fmn_aws::retry::{Classify, ErrorClass};
use fmn_core::prefs::{Destination, DestinationKind, Filter, UserPrefs};
use fmn_core::rules::{Artifact, ArtifactKind, Rule, RuleKind};
use fmn_integration_tests::standins::{user, FedoraServices};
use fmn_integration_tests::{corpus_envelope, TestEnv};
use fmn_match::MatchHandler;
use fmn_sync::SyncHandler;
use serde_json::{json, Value};

/// redhat-bugzilla@linuxnetz.de changed a flag on adplug's bug (the message names no account).
const BUGZILLA_BY_EMAIL: &str = "bz.TestLegacy018492a2BugzillaUpdate";

fn world() -> Value {
    json!({
        "users": {
            "alice": user(&["alice@example.com"], &["irc:/ali", "matrix:/alice"], false),
            "bob": user(&["bob@example.com"], &[], false),
            "robert": user(&["robert@example.com", "redhat-bugzilla@linuxnetz.de"], &["irc:/rsc"], false),
            "carol": user(&["carol@example.com"], &[], true),
        },
        "fas_groups": {"packager": ["alice", "bob", "robert"], "python-sig": ["bob"]},
        "projects": {
            "rpms/adplug": {"users": {"owner": ["alice"]}},
            "rpms/python-foo": {"users": {"owner": ["bob"]}, "groups": {"commit": ["python-sig"]}},
            "rpms/qux": {"users": {"owner": ["bob"]}, "groups": {"admin": ["old-pagure-group"]}},
            "container/toolbox": {"users": {"owner": ["alice"], "commit": ["robert"]}},
        },
        "pagure_groups": {"old-pagure-group": ["carol", "alice"]},
        // The first page of users fails once: the client tries again.
        "faults": [{"path": "/v1/users/", "status": 503, "times": 1}],
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_sync_copies_everything_then_writes_only_what_changed() {
    let env = TestEnv::new("sync-full").await;
    let services = FedoraServices::start(&world());
    // Pages of 2: every list is paged.
    let sync = SyncHandler::new(&env.clients, &services.settings(2));
    let store = OwnershipStore::from_clients(&env.clients);

    let first = sync.run().await.expect("the first sync");
    assert_eq!(first.artifacts, 4, "{first:?}");
    assert_eq!(first.accounts, 4);
    assert_eq!(first.locked_accounts, 1);
    assert_eq!(first.groups, 3, "two FAS groups and one Pagure-only");
    assert_eq!(first.pagure_only_groups, 1);
    assert_eq!(first.artifacts_written, 4);
    assert_eq!(first.groups_written, 3);
    assert!(first.account_buckets_written >= 1);
    assert!(first.write_units >= 8);
    let v1 = first.version.expect("the version moved");

    let loaded = store.load_everything().await.unwrap();
    assert_eq!(loaded.version, v1);
    assert!(loaded.synced_at.is_some());
    let adplug = Artifact::new(ArtifactKind::Rpms, "adplug");
    assert_eq!(loaded.ownership.owners(&adplug).unwrap().users, ["alice"]);
    let qux = loaded
        .ownership
        .owners(&Artifact::new(ArtifactKind::Rpms, "qux"))
        .unwrap();
    assert_eq!(qux.groups, ["old-pagure-group"]);
    assert_eq!(loaded.ownership.members("old-pagure-group"), ["alice", "carol"]);
    assert_eq!(loaded.ownership.groups_of("bob"), ["packager", "python-sig"]);
    let aliases = loaded.directory.aliases();
    assert_eq!(aliases.nick("ali"), "alice");
    assert_eq!(aliases.nick("@alice:fedora.im"), "alice");
    assert_eq!(aliases.email("redhat-bugzilla@linuxnetz.de"), "robert");
    assert!(loaded.directory.get("carol").unwrap().locked);
    // Paging: 4 users at 2 a page is 2 pages (+1 for the failed first try).
    assert_eq!(services.requests().await["/v1/users/"], 3);

    let second = sync.run().await.expect("the second sync");
    assert_eq!(second.items_written(), 0, "{second:?}");
    assert_eq!(second.write_units, 0);
    assert_eq!(second.version, None, "nothing changed: the version stays");
    assert_eq!(store.current_version().await.unwrap(), v1);

    // One ACL change, one new address, one group gone.
    let mut changed = world();
    changed["faults"] = json!([]);
    changed["projects"]["rpms/adplug"]["users"]["commit"] = json!(["bob"]);
    changed["users"]["bob"]["emails"] = json!(["bob@example.com", "bob@new.example"]);
    changed["fas_groups"]
        .as_object_mut()
        .unwrap()
        .remove("python-sig");
    changed["projects"]["rpms/python-foo"]["groups"] = json!({});
    services.set_data(&changed);
    let third = sync.run().await.expect("the third sync");
    assert_eq!(third.artifacts_written, 2, "adplug and python-foo: {third:?}");
    assert_eq!(third.groups_removed, 1);
    assert_eq!(third.groups_written, 0);
    assert_eq!(third.account_buckets_written, 1, "bob's bucket only");
    assert_eq!(third.version, Some(v1 + 1));
    let loaded = store.load_everything().await.unwrap();
    assert_eq!(
        loaded.ownership.owners(&adplug).unwrap().users,
        ["alice", "bob"]
    );
    assert_eq!(loaded.directory.aliases().email("bob@new.example"), "bob");
    assert!(loaded.ownership.groups_of("bob") == ["packager"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_credentials_stop_the_sync_before_any_write() {
    let env = TestEnv::new("sync-refused").await;
    let mut data = world();
    data["faults"] = json!([{"path": "/v1/", "status": 401, "times": 1000}]);
    let services = FedoraServices::start(&data);
    let sync = SyncHandler::new(&env.clients, &services.settings(100));
    let err = sync.run().await.expect_err("FASJSON refuses us");
    assert_eq!(err.class(), ErrorClass::ServiceWide, "{err}");
    assert!(err.to_string().contains("HTTP 401"), "{err}");
    let store = OwnershipStore::from_clients(&env.clients);
    assert_eq!(store.current_version().await.unwrap(), 0, "nothing written");

    // A group that vanishes between the listing and its members is left out, not an error.
    let mut data = world();
    data["faults"] = json!([{"path": "/v1/groups/packager/", "status": 404, "times": 1}]);
    services.set_data(&data);
    let outcome = sync.run().await.expect("a sync");
    assert_eq!(outcome.groups, 2, "python-sig and old-pagure-group: {outcome:?}");
    let loaded = store.load_everything().await.unwrap();
    assert!(loaded.ownership.members("packager").is_empty());
}

fn watcher(name: &str, rules: Vec<Rule>) -> UserPrefs {
    let mut u = UserPrefs::new(name);
    u.destinations = vec![
        Destination::new("email-1", DestinationKind::Email, format!("{name}@example.com"))
            .confirmed(true),
    ];
    u.filters.push(Filter {
        id: "filter-1".into(),
        name: "mine".into(),
        enabled: true,
        oneshot: false,
        destinations: vec!["email-1".into()],
        rules,
        max_per_hour: None,
        urgent: false,
    });
    u
}

/// A Bugzilla change by a contributor's personal address reaches them once the sync has their
/// FAS e-mails; the package's synced owner gets it through their packages.
#[tokio::test(flavor = "multi_thread")]
async fn matching_uses_synced_aliases_and_ownership() {
    let env = TestEnv::new("sync-match").await;
    let prefs = PrefsStore::from_clients(&env.clients);
    prefs
        .put(&watcher("robert", vec![Rule::new(RuleKind::RelatedEvents)]))
        .await
        .unwrap();
    prefs
        .put(&watcher(
            "alice",
            vec![Rule::new(RuleKind::UserPackages {
                user: String::new(),
            })],
        ))
        .await
        .unwrap();
    let handler = MatchHandler::new(&env.clients).await.unwrap();
    let envelope = corpus_envelope(BUGZILLA_BY_EMAIL).to_string();
    let users_of = |routed: fmn_match::Routed| -> Vec<String> {
        let mut u: Vec<String> = routed.jobs.iter().map(|j| j.user.to_string()).collect();
        u.sort();
        u
    };
    handler.refresh_preferences().await.unwrap();
    let before = handler.replay(&envelope, None, true).await.unwrap();
    assert!(users_of(before).is_empty(), "no aliases, no ownership yet");

    let services = FedoraServices::start(&world());
    SyncHandler::new(&env.clients, &services.settings(100))
        .run()
        .await
        .unwrap();
    // The warm function sees the new version at its next batch.
    let report = handler.refresh_preferences().await.unwrap();
    assert!(report.ownership_reloaded);
    let after = handler.replay(&envelope, None, true).await.unwrap();
    assert_eq!(users_of(after), ["alice", "robert"]);
}
