//! `fmn bench coldstart` at a tiny size on the emulators, through the real `fmn` binary: it
//! stores the users and ownership, a fresh probe process loads them and matches, and the report
//! has its figures. No assertion on time.

use fmn_aws::{AwsClients, ResourceNames, TableName};
use fmn_integration_tests::cli::ok;
use fmn_integration_tests::{repo_root, unique_prefix};

/// The number after `label` in `text` (the first figure of its line).
fn figure_after(text: &str, label: &str) -> f64 {
    let line = text
        .lines()
        .find(|l| l.starts_with(label))
        .unwrap_or_else(|| panic!("no line `{label}` in:\n{text}"));
    line[label.len()..]
        .split_whitespace()
        .find_map(|w| w.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no figure in {line:?}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tiny_coldstart_bench_loads_matches_and_reports() {
    fmn_integration_tests::init();
    let prefix = unique_prefix("coldstart");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_fmn"))
        .args([
            "bench",
            "coldstart",
            "--users",
            "200",
            "--packages",
            "500",
            "--groups",
            "50",
            "--runs",
            "2",
            "--prefix",
            &prefix,
        ])
        .current_dir(repo_root())
        .output()
        .expect("running fmn");
    let stdout = ok(&out);
    println!("{stdout}");

    assert!(stdout.contains("stored preferences: 200 users"), "{stdout}");
    assert!(stdout.contains("stored accounts: 200 ("), "{stdout}");
    // Both starts hold the alias map made from every account (the second from the snapshot).
    assert_eq!(stdout.matches(" 200 accounts (").count(), 2, "{stdout}");
    // Fresh tables: the first run scans them and writes the snapshot the second one loads.
    assert!(
        stdout.contains("run 1: from the scan: first match after"),
        "{stdout}"
    );
    assert!(
        stdout.contains("run 2: from the snapshot: first match after"),
        "{stdout}"
    );
    assert!(stdout.contains("loaded from the snapshot ("), "{stdout}");
    // Every user was read back and indexed (a few may have no enabled filter).
    assert!(stdout.contains("(200 stored)"), "{stdout}");
    assert!(figure_after(&stdout, "index:") > 150.0, "{stdout}");
    let jobs = stdout
        .split("first match: message ")
        .nth(1)
        .and_then(|rest| rest.split(", ").nth(1))
        .and_then(|j| j.split_whitespace().next())
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no first match in:\n{stdout}"));
    assert!(jobs > 0, "{stdout}");
    for (label, positive) in [
        ("construction to first match", true),
        ("preferences: read (scan, or snapshot)", true),
        ("preferences: decode (JSON, or snapshot)", false),
        ("index build", false),
        ("peak resident memory (VmHWM)", true),
        ("bytes per user (above start)", false),
    ] {
        let v = figure_after(&stdout, label);
        assert!(v.is_finite() && v >= 0.0, "{label}: {v}\n{stdout}");
        if positive {
            assert!(v > 0.0, "{label}: {v}\n{stdout}");
        }
    }
    assert!(stdout.contains("target: first match under 1 s"), "{stdout}");
    assert!(stdout.contains("target: peak under 128 MiB"), "{stdout}");

    // Without --keep the tables are gone.
    let clients = AwsClients::with_names(ResourceNames::new(prefix)).await;
    let prefs = clients.table(TableName::Preferences);
    let gone = clients
        .dynamodb
        .describe_table()
        .table_name(&prefs)
        .send()
        .await;
    assert!(gone.is_err(), "{prefs} still exists");
}

/// The bench's bulk path: users imported in one batch get change numbers and change-log
/// entries as single writes do, so a warm function reloads just them (no full load).
#[tokio::test(flavor = "multi_thread")]
async fn imported_users_reach_a_warm_cache_through_the_change_log() {
    use fmn_aws::ownership_store::OwnershipStore;
    use fmn_aws::prefs_cache::PrefsCache;
    use fmn_aws::prefs_store::PrefsStore;
    use fmn_core::defaults::default_filters;
    use fmn_core::prefs::{Destination, UserPrefs};

    let env = fmn_integration_tests::TestEnv::new("cold-import").await;
    let prefs = PrefsStore::from_clients(&env.clients);
    let ownership = OwnershipStore::from_clients(&env.clients);
    let user = |name: &str| {
        let mut p = UserPrefs::new(name);
        p.destinations =
            vec![Destination::email("email-1", format!("{name}@example.org")).confirmed(true)];
        let dests = vec!["email-1".to_string()];
        p.filters = default_filters(&p, &dests);
        p
    };
    prefs.create(&user("first")).await.unwrap();
    let mut cache = PrefsCache::new();
    let cold = cache.refresh(&prefs, &ownership).await.unwrap();
    assert!(cold.full_load && cold.full_load_timing.is_some());
    assert_eq!(cache.matcher().unwrap().stats().users, 1);

    let last = prefs
        .import(&[user("second"), user("third")])
        .await
        .unwrap();
    assert_eq!(last, 3);
    assert_eq!(prefs.changes_since(1).await.unwrap().len(), 2);
    assert_eq!(prefs.get("third").await.unwrap().unwrap().version, 3);
    let warm = cache.refresh(&prefs, &ownership).await.unwrap();
    assert!(!warm.full_load, "{warm:?}");
    // The two imported, and `first` again: after a full load the last numbers are re-checked.
    assert_eq!(warm.users_reloaded, 3);
    assert_eq!(warm.full_load_timing, None);
    assert_eq!(cache.matcher().unwrap().stats().users, 3);

    // An import replaces a stored user whatever its version.
    let mut changed = user("first");
    changed.enabled = false;
    assert_eq!(prefs.import(&[changed]).await.unwrap(), 4);
    let stored = prefs.get("first").await.unwrap().unwrap();
    assert!(!stored.enabled);
    assert_eq!(stored.version, 4);
}

fn user_with_defaults(name: &str) -> fmn_core::prefs::UserPrefs {
    use fmn_core::defaults::default_filters;
    use fmn_core::prefs::{Destination, UserPrefs};
    let mut p = UserPrefs::new(name);
    p.destinations =
        vec![Destination::email("email-1", format!("{name}@example.org")).confirmed(true)];
    p.filters = default_filters(&p, &["email-1".to_string()]);
    p
}

/// A cold start from a snapshot taken before the latest changes sees those changes (caught up
/// through the change log), and ownership imported and accounts synced since; a snapshot with
/// nothing newer in the ownership table is used without reading that table; a damaged, unknown
/// or too old snapshot is refused (the cache scans instead, and says why).
#[tokio::test(flavor = "multi_thread")]
async fn a_snapshot_older_than_the_latest_change_never_hides_it() {
    use std::collections::BTreeMap;

    use aws_sdk_dynamodb::primitives::Blob;
    use aws_sdk_dynamodb::types::AttributeValue;
    use fmn_aws::ownership_store::{OwnershipStore, SyncTarget};
    use fmn_aws::prefs_cache::{PrefsCache, SnapshotPolicy};
    use fmn_aws::prefs_store::PrefsStore;
    use fmn_core::directory::{Account, Directory};
    use fmn_core::ownership::Owners;
    use fmn_core::rules::{Artifact, ArtifactKind};

    let env = fmn_integration_tests::TestEnv::new("cold-snapshot").await;
    let prefs = PrefsStore::from_clients(&env.clients);
    let ownership = OwnershipStore::from_clients(&env.clients);
    let table = env.clients.table(TableName::Preferences);
    for name in ["alice", "bob"] {
        prefs.create(&user_with_defaults(name)).await.unwrap();
    }
    // bob's account as the FAS sync stores it.
    let accounts = |email: &str| {
        let mut d = Directory::new();
        d.insert(
            "bob",
            Account {
                emails: vec![email.to_string()],
                ircnicks: vec!["irc:/bobby".into()],
                locked: false,
            },
        );
        d
    };
    let sync_accounts = |d: Directory| {
        let ownership = ownership.clone();
        async move {
            let target = SyncTarget {
                artifacts: None,
                groups: None,
                directory: Some(&d),
                read_since_ms: None,
            };
            ownership.sync(target, 25, |_, _| {}).await.unwrap()
        }
    };
    sync_accounts(accounts("bob@old.example")).await;
    let mut first = PrefsCache::new();
    let cold = first.refresh(&prefs, &ownership).await.unwrap();
    assert_eq!(cold.from_snapshot, None);
    assert_eq!(cold.snapshot_refused.as_deref(), Some("no snapshot yet"));
    assert_eq!(cold.snapshot_written, Some(2));

    // Nothing changed since: the snapshot alone, accounts included (no ownership reload).
    let mut cold = PrefsCache::new();
    let report = cold.refresh(&prefs, &ownership).await.unwrap();
    assert_eq!(report.from_snapshot, Some(2), "{report:?}");
    assert!(!report.ownership_reloaded, "{report:?}");
    assert_eq!(cold.registry().aliases().email("bob@old.example"), "bob");
    assert_eq!(cold.registry().aliases(), first.registry().aliases());
    assert_eq!((cold.accounts(), first.accounts()), (1, 1));
    assert_eq!(cold.synced_at(), first.synced_at());
    assert!(cold.synced_at().is_some());

    // After the snapshot: alice switches herself off, carol arrives, ownership is imported.
    let mut alice = prefs.get("alice").await.unwrap().unwrap();
    alice.enabled = false;
    prefs.put(&alice).await.unwrap();
    prefs.create(&user_with_defaults("carol")).await.unwrap();
    let glibc = Artifact::new(ArtifactKind::Rpms, "glibc");
    let owners = BTreeMap::from([(
        glibc.clone(),
        Owners {
            users: vec!["bob".into()],
            groups: vec![],
        },
    )]);
    ownership
        .import(Some(&owners), None, |_, _| {})
        .await
        .unwrap();
    // And bob's account changes in FAS (the next sync).
    sync_accounts(accounts("bob@new.example")).await;

    let mut cold = PrefsCache::new();
    let report = cold.refresh(&prefs, &ownership).await.unwrap();
    assert_eq!(report.from_snapshot, Some(2), "{report:?}");
    assert!(report.full_load && report.ownership_reloaded, "{report:?}");
    let aliases = cold.registry().aliases();
    assert_eq!(
        aliases.email("bob@new.example"),
        "bob",
        "the account update is seen"
    );
    assert_eq!(aliases.email("bob@old.example"), "bob@old.example");
    assert!(report.caught_up >= 2, "{report:?}");
    let m = cold.matcher().unwrap();
    assert!(
        !m.contains("alice"),
        "alice's change after the snapshot is seen"
    );
    assert!(m.contains("bob") && m.contains("carol"));
    assert!(m.ownership().owners(&glibc).is_some());
    // The same index as a scan builds.
    let mut scanned = PrefsCache::with_snapshot_policy(SnapshotPolicy {
        read: false,
        write: false,
        ..SnapshotPolicy::default()
    });
    let scan = scanned.refresh(&prefs, &ownership).await.unwrap();
    assert_eq!(scan.from_snapshot, None);
    assert_eq!(scan.snapshot_written, None);
    assert_eq!(scanned.matcher().unwrap().stats(), m.stats());

    // Damaged, unknown and too old snapshots are refused, each with its reason.
    let snapshots = prefs.snapshots();
    let manifest = snapshots.manifest().await.unwrap().unwrap();
    env.clients
        .dynamodb
        .put_item()
        .table_name(&table)
        .item("pk", AttributeValue::S(manifest.key.clone()))
        .item("sk", AttributeValue::S("000000".into()))
        .item("data", AttributeValue::B(Blob::new(b"garbage".to_vec())))
        .send()
        .await
        .unwrap();
    let refused = |field: &'static str, value: &'static str| {
        let client = env.clients.dynamodb.clone();
        let table = table.clone();
        async move {
            client
                .update_item()
                .table_name(&table)
                .key("pk", AttributeValue::S("snapshot".into()))
                .key("sk", AttributeValue::S("current".into()))
                .update_expression("SET #f = :v")
                .expression_attribute_names("#f", field)
                .expression_attribute_values(":v", AttributeValue::N(value.into()))
                .send()
                .await
                .unwrap();
        }
    };
    let mut cold = PrefsCache::with_snapshot_policy(SnapshotPolicy {
        write: false,
        ..SnapshotPolicy::default()
    });
    let report = cold.refresh(&prefs, &ownership).await.unwrap();
    assert_eq!(report.from_snapshot, None);
    let reason = report.snapshot_refused.unwrap();
    assert!(reason.contains("corrupt"), "{reason}");
    assert!(!cold.matcher().unwrap().contains("alice"));
    assert_eq!(cold.matcher().unwrap().stats(), m.stats());

    // A full load writes a good one again (at the latest version).
    let mut writer = PrefsCache::new();
    let report = writer.refresh(&prefs, &ownership).await.unwrap();
    assert_eq!(report.snapshot_written, Some(4), "{report:?}");
    let mut cold = PrefsCache::new();
    assert_eq!(
        cold.refresh(&prefs, &ownership)
            .await
            .unwrap()
            .from_snapshot,
        Some(4)
    );

    refused("format", "99").await;
    let report = PrefsCache::new().refresh(&prefs, &ownership).await.unwrap();
    let reason = report.snapshot_refused.unwrap();
    assert!(reason.contains("format 99"), "{reason}");

    // (The full load just wrote a known format again.)
    refused("taken_at", "1").await;
    let report = PrefsCache::new().refresh(&prefs, &ownership).await.unwrap();
    let reason = report.snapshot_refused.unwrap();
    assert!(reason.contains("old"), "{reason}");
}
