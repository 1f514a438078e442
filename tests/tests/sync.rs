//! The sync function against the FASJSON and Pagure stand-ins (`tests/stand-ins/`) and
//! DynamoDB Local: a full refresh copies ownership, groups and accounts; a second one writes
//! nothing; a change writes only what changed; the match function resolves e-mails and nicks
//! with the synced aliases and matches on the synced ownership; FASJSON behind Kerberos, with a
//! real MIT KDC.

use base64::Engine;
use fmn_aws::ownership_store::OwnershipStore;
use fmn_aws::prefs_store::PrefsStore;
use fmn_aws::retry::{Classify, ErrorClass};
use fmn_aws::secrets::Secret;
use fmn_aws::vars::Vars;
use fmn_core::prefs::{Destination, DestinationKind, Filter, UserPrefs};
use fmn_core::rules::{Artifact, ArtifactKind, Rule, RuleKind};
use fmn_integration_tests::kdc::Kdc;
use fmn_integration_tests::standins::{user, FedoraServices};
use fmn_integration_tests::{corpus_envelope, edited_corpus_message, free_port, TestEnv};
use fmn_match::MatchHandler;
use fmn_sources::{KerberosSettings, SourceSettings};
use fmn_sync::SyncHandler;
use serde_json::{json, Value};

/// redhat-bugzilla@linuxnetz.de changed a flag on adplug's bug (the message names no account).
const BUGZILLA_BY_EMAIL: &str = "bz.TestLegacy018492a2BugzillaUpdate";

/// Names held shared (`Arc<str>`), as text to compare.
fn names(list: &[std::sync::Arc<str>]) -> Vec<&str> {
    list.iter().map(|n| &**n).collect()
}

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

    // carol has an fmn account; her FAS account is locked.
    let prefs = PrefsStore::from_clients(&env.clients);
    prefs
        .put(&watcher("carol", vec![Rule::new(RuleKind::RelatedEvents)]))
        .await
        .unwrap();
    let first = sync.run().await.expect("the first sync");
    assert_eq!(first.accounts_disabled, 1, "{first:?}");
    let carol = prefs.get("carol").await.unwrap().unwrap();
    assert!(!carol.enabled, "disabled, not deleted");
    assert_eq!(carol.filters.len(), 1);
    assert_eq!(first.artifacts, 4, "{first:?}");
    assert_eq!(first.accounts, 4);
    assert_eq!(first.locked_accounts, 1);
    assert_eq!(first.groups, 3, "two FAS groups and one Pagure-only");
    assert_eq!(first.pagure_only_groups, 1);
    assert_eq!(first.store.artifacts_written, 4);
    assert_eq!(first.store.groups_written, 3);
    assert!(first.store.account_buckets_written >= 1);
    assert!(first.store.write_units >= 8);
    let v1 = first.store.version.expect("the version moved");

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
    assert_eq!(
        names(loaded.ownership.members("old-pagure-group")),
        ["alice", "carol"]
    );
    assert_eq!(
        names(loaded.ownership.groups_of("bob")),
        ["packager", "python-sig"]
    );
    let aliases = loaded.directory.aliases();
    assert_eq!(aliases.nick("ali"), "alice");
    assert_eq!(aliases.nick("@alice:fedora.im"), "alice");
    assert_eq!(aliases.email("redhat-bugzilla@linuxnetz.de"), "robert");
    assert!(loaded.directory.get("carol").unwrap().locked);
    // Paging: 4 users at 2 a page is 2 pages (+1 for the failed first try).
    assert_eq!(services.requests().await["/v1/users/"], 3);

    let second = sync.run().await.expect("the second sync");
    assert_eq!(second.store.items_written(), 0, "{second:?}");
    assert_eq!(second.store.write_units, 0);
    assert_eq!(
        second.store.version, None,
        "nothing changed: the version stays"
    );
    assert_eq!(second.accounts_disabled, 0, "carol is disabled already");
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
    assert_eq!(
        third.store.artifacts_written, 2,
        "adplug and python-foo: {third:?}"
    );
    assert_eq!(third.store.groups_removed, 1);
    assert_eq!(third.store.groups_written, 0);
    assert_eq!(third.store.account_buckets_written, 1, "bob's bucket only");
    assert_eq!(third.store.version, Some(v1 + 1));
    let loaded = store.load_everything().await.unwrap();
    assert_eq!(
        loaded.ownership.owners(&adplug).unwrap().users,
        ["alice", "bob"]
    );
    assert_eq!(loaded.directory.aliases().email("bob@new.example"), "bob");
    assert_eq!(names(loaded.ownership.groups_of("bob")), ["packager"]);
    // One account is one bucket's read, the same as the full load.
    let bob = store.account("bob").await.unwrap().expect("bob's account");
    assert_eq!(bob, *loaded.directory.get("bob").unwrap());
    assert_eq!(bob.emails, ["bob@example.com", "bob@new.example"]);
    assert_eq!(store.account("nobody-at-all").await.unwrap(), None);
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
    assert_eq!(
        outcome.groups, 2,
        "python-sig and old-pagure-group: {outcome:?}"
    );
    let loaded = store.load_everything().await.unwrap();
    assert!(loaded.ownership.members("packager").is_empty());
}

fn watcher(name: &str, rules: Vec<Rule>) -> UserPrefs {
    let mut u = UserPrefs::new(name);
    u.destinations = vec![Destination::new(
        "email-1",
        DestinationKind::Email,
        format!("{name}@example.com"),
    )
    .confirmed(true)];
    u.filters.push(Filter::new(
        "filter-1".into(),
        "mine".into(),
        vec!["email-1".into()],
        rules,
    ));
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

    // `fmn explain` and the page say where those facts came from.
    let recent = fmn_aws::recent::RecentMessages::from_clients(&env.clients);
    let msg_id = corpus_envelope(BUGZILLA_BY_EMAIL)["msg_id"]
        .as_str()
        .unwrap()
        .to_string();
    recent
        .put(
            &msg_id,
            "org.fedoraproject.prod.bugzilla.bug.update",
            &envelope,
        )
        .await
        .unwrap();
    let known = fmn_aws::explain::KnownFacts::new(
        OwnershipStore::from_clients(&env.clients)
            .load_everything()
            .await
            .unwrap(),
    );
    let explain = |name: &'static str| {
        let prefs = &prefs;
        let recent = &recent;
        let known = &known;
        let msg_id = msg_id.clone();
        async move {
            let user = prefs.get(name).await.unwrap().unwrap();
            fmn_aws::explain::explain_recent(recent, known, &user, &msg_id)
                .await
                .unwrap()
                .unwrap()
        }
    };
    let alice = explain("alice").await;
    assert!(alice.notified, "{alice:?}");
    assert!(
        alice.provenance[0].starts_with("you own rpms/adplug (dist-git, synced "),
        "{:?}",
        alice.provenance
    );
    let robert = explain("robert").await;
    assert!(robert.notified, "{robert:?}");
    assert_eq!(
        robert.provenance,
        ["redhat-bugzilla@linuxnetz.de is robert's FAS email"]
    );
}

/// A Bugzilla change on `package` by `actor` (an e-mail address): who it is about depends on
/// the aliases and the ownership.
fn probe(package: &str, actor: &str) -> Value {
    edited_corpus_message(BUGZILLA_BY_EMAIL, |b| {
        b["bug"]["component"] = json!(package);
        b["bug"]["creator"] = json!(actor);
        b["event"]["who"] = json!(actor);
    })
}

fn project(owner: &[&str], commit: &[&str], groups: &[&str]) -> Value {
    json!({"access_users": {"owner": owner, "admin": [], "commit": commit, "collaborator": [], "ticket": []},
           "access_groups": {"admin": [], "commit": groups, "collaborator": [], "ticket": []},
           "name": "adplug", "namespace": "rpms", "fullname": "rpms/adplug"})
}

/// Each kind of bus message that changes ownership, membership or an account changes matching
/// on the very next message: the function writes the change and reloads its warm copy.
#[tokio::test(flavor = "multi_thread")]
async fn bus_messages_change_matching_within_a_minute() {
    use fmn_aws::sqs::{send_all, OutgoingMessage};
    use fmn_aws::{FunctionName, QueueName};
    use fmn_integration_tests::{start_function, wait_for_records};
    use std::sync::Arc;
    use std::time::Instant;

    let env = TestEnv::new("sync-bus").await;
    let mut data = world();
    data["faults"] = json!([]);
    data["users"]["dave"] = user(&["dave@example.com"], &[], false);
    let services = FedoraServices::start(&data);
    let settings = services.settings(100);
    SyncHandler::new(&env.clients, &settings)
        .run()
        .await
        .unwrap();
    let prefs = PrefsStore::from_clients(&env.clients);
    let mine = || {
        vec![Rule::new(RuleKind::UserPackages {
            user: String::new(),
        })]
    };
    for name in ["alice", "bob", "dave"] {
        prefs.put(&watcher(name, mine())).await.unwrap();
    }
    prefs
        .put(&watcher("robert", vec![Rule::new(RuleKind::RelatedEvents)]))
        .await
        .unwrap();
    let handler = MatchHandler::new(&env.clients)
        .await
        .unwrap()
        .with_fasjson(&settings);
    let (stop, stats) = start_function(&env, FunctionName::Match, Arc::new(handler));
    let mut sent = 0u64;
    let mut step = |label: &'static str, change: Option<Value>, probe: Value, expect: &[&str]| {
        let env = &env;
        let stats = Arc::clone(&stats);
        let expect: Vec<String> = expect.iter().map(|s| s.to_string()).collect();
        sent += 1 + u64::from(change.is_some());
        let sent = sent;
        async move {
            let started = Instant::now();
            let mut batch = Vec::new();
            if let Some(change) = change {
                batch.push(OutgoingMessage::new("change", change.to_string()));
            }
            let probe_id = probe["msg_id"].as_str().unwrap().to_string();
            // Two sends: the change is handled before the probe is received.
            for message in batch {
                send_all(
                    &env.clients.sqs,
                    env.queue_url(QueueName::Ingest),
                    &[message],
                )
                .await
                .unwrap();
                wait_for_records(&stats, sent - 1).await;
            }
            send_all(
                &env.clients.sqs,
                env.queue_url(QueueName::Ingest),
                &[OutgoingMessage::new("probe", probe.to_string())],
            )
            .await
            .unwrap();
            wait_for_records(&stats, sent).await;
            let reflected = started.elapsed();
            let mut users: Vec<String> = env
                .drain(
                    QueueName::Email,
                    expect.len().max(1),
                    if expect.is_empty() { 2 } else { 60 },
                )
                .await
                .iter()
                .map(|m| serde_json::from_str::<Value>(m.body.as_deref().unwrap()).unwrap())
                .filter(|j| j["notification"]["msg_id"] == probe_id.as_str())
                .map(|j| j["user"].as_str().unwrap().to_string())
                .collect();
            users.sort();
            users.dedup();
            assert_eq!(users, expect, "{label}");
            println!(
                "{label}: matching reflected it {} ms after the change was sent",
                reflected.as_millis()
            );
        }
    };
    let old_email = "redhat-bugzilla@linuxnetz.de";
    step(
        "synced",
        None,
        probe("adplug", old_email),
        &["alice", "robert"],
    )
    .await;
    step(
        "pagure.project.user.access.updated",
        Some(edited_corpus_message(
            "3e9987cd-9d61-5877-bb2d-85a0bf1c913a",
            |b| {
                b["project"] = project(&["alice"], &["dave"], &[]);
                b["new_user"] = json!("dave");
            },
        )),
        probe("adplug", old_email),
        &["alice", "dave", "robert"],
    )
    .await;
    step(
        "pagure.project.user.removed",
        Some(edited_corpus_message(
            "053efc8c-c07a-5795-8b4c-9eae28965f63",
            |b| {
                b["project"] = project(&["alice"], &[], &[]);
                b["removed_user"] = json!("dave");
            },
        )),
        probe("adplug", old_email),
        &["alice", "robert"],
    )
    .await;
    step(
        "pagure.project.group.access.updated",
        Some(edited_corpus_message(
            "fb2b564c-9ad1-5f65-b8c8-2deead0c4ee9",
            |b| {
                b["project"] = project(&["alice"], &[], &["python-sig"]);
                b["new_group"] = json!("python-sig");
            },
        )),
        probe("adplug", old_email),
        &["alice", "bob", "robert"],
    )
    .await;
    step(
        "fas.group.member.sponsor",
        Some(edited_corpus_message(
            "c060fded-3827-584d-a52d-b4b9b06ebcdf",
            |b| {
                b["msg"]["group"] = json!("python-sig");
                b["msg"]["user"] = json!("dave");
            },
        )),
        probe("adplug", old_email),
        &["alice", "bob", "dave", "robert"],
    )
    .await;
    step(
        "fas.group.member.removed",
        Some(edited_corpus_message(
            "c4b99063-84a1-5e0a-a90f-02984b4182a4",
            |b| {
                b["msg"]["group"] = json!("python-sig");
                b["msg"]["user"] = json!("dave");
            },
        )),
        probe("adplug", old_email),
        &["alice", "bob", "robert"],
    )
    .await;
    // robert changes his addresses in FAS; the bus says his account changed.
    data["users"]["robert"]["emails"] = json!(["robert@example.com", "rob@new.example"]);
    services.set_data(&data);
    step(
        "fas.user.update",
        Some(edited_corpus_message(
            "fb488488-20a0-502a-878f-f4bd49596ec6",
            |b| {
                b["msg"]["user"] = json!("robert");
                b["msg"]["fields"] = json!(["emails"]);
            },
        )),
        probe("adplug", "rob@new.example"),
        &["alice", "bob", "robert"],
    )
    .await;
    step(
        "the old address no longer resolves",
        None,
        probe("adplug", old_email),
        &["alice", "bob"],
    )
    .await;
    // dave's FAS account is locked; the bus says his account changed: he stops receiving.
    data["users"]["dave"]["locked"] = json!(true);
    services.set_data(&data);
    step(
        "fas.user.update (locked)",
        Some(edited_corpus_message(
            "fb488488-20a0-502a-878f-f4bd49596ec6",
            |b| {
                b["msg"]["user"] = json!("dave");
                b["msg"]["fields"] = json!(["locked"]);
            },
        )),
        probe("adplug", "rob@new.example"),
        &["alice", "bob", "robert"],
    )
    .await;
    assert!(!prefs.get("dave").await.unwrap().unwrap().enabled);
    step(
        "pkgdb.package.retire (rawhide)",
        Some(edited_corpus_message(
            "pkgdb.TestLegacyPkgdbPackageRetire",
            |b| {
                b["package_listing"]["collection"]["branchname"] = json!("master");
                b["package_listing"]["package"]["name"] = json!("adplug");
            },
        )),
        probe("adplug", "rob@new.example"),
        &["robert"],
    )
    .await;
    stop.cancel();
}

/// The race between a full sync and the bus: the sync reads its sources over minutes and then
/// writes what they said when read; a bus change announced meanwhile must not be undone by it
/// until the next sync. The store logs bus changes and the sync applies the ones newer than
/// its reading again; older entries (which the sources include) are dropped.
#[tokio::test(flavor = "multi_thread")]
async fn a_sync_never_undoes_a_bus_change_made_while_it_read_its_sources() {
    use fmn_aws::ownership_store::SyncTarget;
    use fmn_core::fact_changes::FactChange;
    use fmn_core::ownership::Owners;
    use std::collections::BTreeMap;

    let env = TestEnv::new("syncrace").await;
    let store = OwnershipStore::from_clients(&env.clients);
    let foo = Artifact::new(ArtifactKind::Rpms, "foo");
    let owners = |users: &[&str]| Owners {
        users: users.iter().map(|u| u.to_string()).collect(),
        groups: Vec::new(),
    };
    let sync = |artifacts: BTreeMap<Artifact, Owners>,
                groups: BTreeMap<String, Vec<String>>,
                read_since_ms: u64| {
        let store = store.clone();
        async move {
            store
                .sync(
                    SyncTarget {
                        artifacts: Some(&artifacts),
                        groups: Some(&groups),
                        directory: None,
                        read_since_ms: Some(read_since_ms),
                    },
                    100,
                    |_, _| {},
                )
                .await
                .unwrap()
        }
    };
    let packagers = |members: &[&str]| {
        BTreeMap::from([(
            "packager".to_string(),
            members.iter().map(|m| m.to_string()).collect::<Vec<_>>(),
        )])
    };

    // The sources are read (alice owns foo; packager is alice)...
    let read_at = fmn_aws::dynamo::now_millis();
    // ...while the bus says foo went to bob and carol joined packager.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    store
        .apply(&[
            FactChange::SetOwners {
                artifact: foo.clone(),
                owners: owners(&["bob"]),
            },
            FactChange::AddMember {
                group: "packager".into(),
                user: "carol".into(),
            },
        ])
        .await
        .unwrap();
    let report = sync(
        BTreeMap::from([(foo.clone(), owners(&["alice"]))]),
        packagers(&["alice"]),
        read_at,
    )
    .await;
    assert_eq!(report.bus_changes_replayed, 2, "{report:?}");
    assert_eq!(
        report.bus_changes_restored, 2,
        "both were undone: {report:?}"
    );
    let loaded = store.load_everything().await.unwrap();
    assert_eq!(loaded.ownership.owners(&foo).unwrap().users, ["bob"]);
    assert_eq!(names(loaded.ownership.groups_of("carol")), ["packager"]);
    assert_eq!(
        names(loaded.ownership.groups_of("alice")),
        ["packager"],
        "the sync's own data stays"
    );

    // The next sync read after the bus changes: its sources have them (and carol has left
    // since); the log entries are dropped, not replayed over it.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let report = sync(
        BTreeMap::from([(foo.clone(), owners(&["bob"]))]),
        packagers(&["alice"]),
        fmn_aws::dynamo::now_millis(),
    )
    .await;
    assert_eq!(report.bus_changes_replayed, 0, "{report:?}");
    assert_eq!(report.groups_written, 1, "carol removed: {report:?}");
    let loaded = store.load_everything().await.unwrap();
    assert!(loaded.ownership.groups_of("carol").is_empty());
    let third = sync(
        BTreeMap::from([(foo, owners(&["bob"]))]),
        packagers(&["alice"]),
        fmn_aws::dynamo::now_millis(),
    )
    .await;
    assert_eq!(
        (third.items_written(), third.version),
        (0, None),
        "{third:?}"
    );
}

/// The sync's FASJSON client principal and the service it asks, in a test realm.
const SYNC_PRINCIPAL: &str = "fmn/sync.test@FMN.TEST";

/// A real MIT KDC with the sync's principal and FASJSON's `HTTP/127.0.0.1`, and the stand-in
/// requiring Negotiate tokens that the service keytab verifies.
fn kerberos_world() -> (Kdc, FedoraServices) {
    let kdc = Kdc::start("FMN.TEST");
    kdc.add_principal(SYNC_PRINCIPAL);
    kdc.add_principal("HTTP/127.0.0.1@FMN.TEST");
    let (service_keytab, _) = kdc.keytab("HTTP/127.0.0.1@FMN.TEST", "http.keytab");
    let services = FedoraServices::start_kerberos(&world(), &service_keytab, &kdc.krb5_conf());
    (kdc, services)
}

fn kerberos_settings(kdc: &Kdc, services: &FedoraServices, keytab: Vec<u8>) -> SourceSettings {
    SourceSettings {
        kerberos: Some(KerberosSettings {
            principal: SYNC_PRINCIPAL.into(),
            keytab,
            kdc: kdc.address.clone(),
            service: "HTTP/127.0.0.1".into(),
        }),
        ..services.settings(2)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sync_authenticates_to_fasjson_with_kerberos() {
    let env = TestEnv::new("sync-krb").await;
    let (kdc, services) = kerberos_world();
    let (_, keytab) = kdc.keytab(SYNC_PRINCIPAL, "sync.keytab");

    // Without a Negotiate token FASJSON refuses, as mod_auth_gssapi does.
    let anonymous = reqwest::get(format!("{}/v1/users/alice/", services.url))
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    assert_eq!(anonymous.headers()["www-authenticate"], "Negotiate");
    let plain = SyncHandler::new(&env.clients, &services.settings(2));
    let err = plain.run().await.expect_err("no credentials");
    assert!(err.to_string().contains("HTTP 401"), "{err}");

    // The keytab as deployed: base64 in a Parameter Store SecureString (LocalStack's SSM),
    // read as the function reads its secrets, then the settings from the variables.
    let ssm = aws_sdk_ssm::Client::new(&aws_config::load_from_env().await);
    let parameter = format!("/{}/fasjson-keytab", env.clients.names.prefix());
    ssm.put_parameter()
        .name(&parameter)
        .value(base64::engine::general_purpose::STANDARD.encode(&keytab))
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await
        .expect("PutParameter on LocalStack");
    let secrets = fmn_aws::secrets::fetch(&ssm, |k| {
        (k == Secret::FasjsonKeytab.parameter_variable()).then(|| parameter.clone())
    })
    .await
    .expect("the keytab from SSM");
    let variables = [
        ("FMN_FASJSON_URL", services.url.clone()),
        ("FMN_PAGURE_URL", services.url.clone()),
        ("FMN_FASJSON_PAGE_SIZE", "2".to_string()),
        ("FMN_FASJSON_PRINCIPAL", SYNC_PRINCIPAL.to_string()),
        ("FMN_FASJSON_KDC", kdc.address.clone()),
        ("FMN_FASJSON_KEYTAB", secrets["FMN_FASJSON_KEYTAB"].clone()),
    ];
    let settings = SourceSettings::from_vars(&Vars::from_lookup(|k| {
        variables
            .iter()
            .find(|(name, _)| *name == k)
            .map(|(_, v)| v.clone())
    }))
    .expect("the settings");
    let kerberos = settings.kerberos.as_ref().expect("Kerberos is on");
    assert_eq!(kerberos.service, "HTTP/127.0.0.1", "from FASJSON's URL");
    assert_eq!(kerberos.keytab, keytab);

    let sync = SyncHandler::new(&env.clients, &settings);
    let outcome = sync
        .run()
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", kdc.log()));
    assert_eq!(outcome.accounts, 4, "{outcome:?}");
    assert_eq!(outcome.groups, 3, "{outcome:?}");
    let requests = services.requests().await;
    let authenticated = requests["principals"][SYNC_PRINCIPAL].as_u64().unwrap();
    // Every FASJSON page (users in pages of 2, groups, members), each with its own token.
    assert!(authenticated >= 5, "{requests}");
    // One AS and one TGS exchange for the whole sync: the service ticket is reused.
    let log = kdc.log();
    assert_eq!(log.matches("AS_REQ").count(), 1, "{log}");
    assert_eq!(log.matches("TGS_REQ").count(), 1, "{log}");
}

/// A KDC that is not open to the internet (Fedora's) is reached through the KDC proxy FreeIPA
/// serves (MS-KKDCP): the same sync with `FMN_FASJSON_KDC` a URL, through FreeIPA's own
/// `kdcproxy` in front of the real KDC.
#[tokio::test(flavor = "multi_thread")]
async fn a_sync_reaches_the_kdc_through_a_kdc_proxy() {
    let env = TestEnv::new("sync-kkdcp").await;
    let (kdc, services) = kerberos_world();
    let proxy = kdc.proxy();
    let (_, keytab) = kdc.keytab(SYNC_PRINCIPAL, "sync.keytab");
    let mut settings = kerberos_settings(&kdc, &services, keytab);
    settings.kerberos.as_mut().unwrap().kdc = proxy.url.clone();
    let outcome = SyncHandler::new(&env.clients, &settings)
        .run()
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", kdc.log()));
    assert_eq!(outcome.accounts, 4, "{outcome:?}");
    let requests = services.requests().await;
    assert!(
        requests["principals"][SYNC_PRINCIPAL].as_u64().unwrap() >= 5,
        "{requests}"
    );
    // Both exchanges went through the proxy to the KDC.
    let log = kdc.log();
    assert_eq!(log.matches("AS_REQ").count(), 1, "{log}");
    assert_eq!(log.matches("TGS_REQ").count(), 1, "{log}");
    // A proxy that does not answer is unreachable, worth trying again.
    drop(proxy);
    settings.kerberos.as_mut().unwrap().kdc = format!("http://127.0.0.1:{}/KdcProxy", free_port());
    let err = SyncHandler::new(&env.clients, &settings)
        .run()
        .await
        .expect_err("no proxy");
    assert_eq!(err.class(), ErrorClass::Retryable, "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stale_keytab_stops_the_sync_with_a_permanent_error_naming_the_cause() {
    let env = TestEnv::new("sync-krb-stale").await;
    let (kdc, services) = kerberos_world();
    let (_, stale) = kdc.keytab(SYNC_PRINCIPAL, "old.keytab");
    // A new key (what `ipa-getkeytab` does on another host) makes the first keytab stale.
    let _ = kdc.keytab(SYNC_PRINCIPAL, "new.keytab");
    let sync = SyncHandler::new(&env.clients, &kerberos_settings(&kdc, &services, stale));
    let err = sync.run().await.expect_err("the KDC refuses the old key");
    assert_eq!(err.class(), ErrorClass::Permanent, "{err}");
    let text = err.to_string();
    assert!(text.contains("KDC_ERR_PREAUTH_FAILED"), "{text}");
    assert!(text.contains(SYNC_PRINCIPAL), "{text}");
    assert!(text.contains("keytab"), "{text}");
    let store = OwnershipStore::from_clients(&env.clients);
    assert_eq!(store.current_version().await.unwrap(), 0, "nothing written");

    // A keytab of another principal: said before asking the KDC.
    let (_, other) = kdc.keytab("HTTP/127.0.0.1@FMN.TEST", "other.keytab");
    let sync = SyncHandler::new(&env.clients, &kerberos_settings(&kdc, &services, other));
    let err = sync.run().await.expect_err("no key of the principal");
    assert_eq!(err.class(), ErrorClass::Permanent, "{err}");
    assert!(
        err.to_string().contains("no key of this principal"),
        "{err}"
    );

    // An unreachable KDC may answer later.
    let (_, keytab) = kdc.keytab(SYNC_PRINCIPAL, "sync.keytab");
    let mut settings = kerberos_settings(&kdc, &services, keytab);
    settings.kerberos.as_mut().unwrap().kdc = format!("127.0.0.1:{}", free_port());
    let err = SyncHandler::new(&env.clients, &settings)
        .run()
        .await
        .expect_err("no KDC");
    assert_eq!(err.class(), ErrorClass::Retryable, "{err}");
    assert!(err.to_string().contains("unreachable"), "{err}");
}
