//! `fmn bench sync`: a full sync at Fedora's size against the FASJSON/Pagure stand-ins
//! (`tests/stand-ins/fedora_services.py --synthetic`) and the emulators' DynamoDB, under a
//! fresh resource prefix: the first run (everything written), then a second (nothing changed:
//! it must write nothing; checked, not timed). Prints times, items and write units. Then the
//! bus path at that size: a warm match function (cold-loaded first) handles a dist-git ACL
//! change (a corpus message made to name a synced package and a new maintainer): the time to
//! write it and reload, after which a dry-run match of a message about the package must reach
//! the new maintainer.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{bail, Context};
use clap::Args;
use fmn_aws::provision::ProvisionOptions;
use fmn_aws::{AwsClients, ResourceNames};
use fmn_local::system;
use fmn_sources::SourceSettings;
use fmn_sync::{SyncHandler, SyncOutcome};

#[derive(Debug, Clone, Args)]
pub struct SyncBenchArgs {
    #[arg(long, default_value_t = 80_000)]
    users: usize,
    #[arg(long, default_value_t = 25_000)]
    packages: usize,
    #[arg(long, default_value_t = 2_000)]
    groups: usize,
    /// Users or members per FASJSON page.
    #[arg(long, default_value_t = 1000)]
    page_size: u32,
    /// Keep the tables afterwards.
    #[arg(long)]
    keep: bool,
}

fn stand_in_script() -> PathBuf {
    let relative = PathBuf::from("tests/stand-ins/fedora_services.py");
    if relative.exists() {
        return relative;
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/stand-ins/fedora_services.py")
}

pub fn run(args: SyncBenchArgs) -> anyhow::Result<()> {
    if std::env::var_os("RUST_LOG").is_none() {
        std::env::set_var("RUST_LOG", "warn");
    }
    fmn_aws::config::apply_local_defaults();
    fmn_aws::telemetry::init();
    let spec = format!(
        "users={},packages={},groups={}",
        args.users, args.packages, args.groups
    );
    let mut child = Command::new("python3")
        .arg(stand_in_script())
        .args(["--synthetic", &spec])
        .stdout(Stdio::piped())
        .spawn()
        .context("starting the stand-ins (python3)")?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("piped")).read_line(&mut line)?;
    let result = (|| {
        let Some(url) = line.trim().strip_prefix("listening on ") else {
            bail!("the stand-in said {line:?}");
        };
        bench(&args, url)
    })();
    let _ = child.kill();
    let _ = child.wait();
    result
}

fn bench(args: &SyncBenchArgs, url: &str) -> anyhow::Result<()> {
    let prefix = crate::bench_e2e::fresh_prefix("bench-sync");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let clients = runtime.block_on(AwsClients::with_names(ResourceNames::new(prefix.clone())));
    runtime
        .block_on(system::preflight(&clients))
        .map_err(|e| anyhow::anyhow!("{e}\n  (`source localstack/env.sh` first)"))?;
    let (_, provisioned) = runtime.block_on(system::provision_all(
        &clients,
        &ProvisionOptions::default(),
    ))?;
    println!(
        "fmn bench sync: {} accounts, {} packages, {} groups (stand-ins at {url}; DynamoDB under `{prefix}`)",
        args.users, args.packages, args.groups
    );
    let settings = SourceSettings {
        page_size: args.page_size,
        ..SourceSettings::local(url)
    };
    let result = runtime.block_on(async {
        let handler = SyncHandler::new(&clients, &settings);
        let first = handler.run().await?;
        print_run("first (empty table)", &first);
        let second = handler.run().await?;
        print_run("second (nothing changed)", &second);
        if second.store.items_written() != 0 || second.store.version.is_some() {
            bail!(
                "the second run wrote {} items",
                second.store.items_written()
            );
        }
        acl_change(&clients).await
    });
    if !args.keep {
        runtime.block_on(crate::bench_e2e::cleanup(&clients, &provisioned));
    }
    result
}

/// A dist-git ACL change at this size: write plus reload, then a match that reflects it.
async fn acl_change(clients: &AwsClients) -> anyhow::Result<()> {
    use fmn_aws::prefs_store::PrefsStore;
    use fmn_core::message::Envelope;
    use fmn_core::prefs::{Destination, DestinationKind, Filter, UserPrefs};
    use fmn_core::rules::{Rule, RuleKind};
    use serde_json::json;
    use std::time::Instant;

    let newcomer = "acl-bench-newcomer";
    let mut prefs = UserPrefs::new(newcomer);
    prefs.destinations = vec![Destination::new(
        "email-1",
        DestinationKind::Email,
        format!("{newcomer}@example.com"),
    )
    .confirmed(true)];
    prefs.filters.push(Filter::new(
        "filter-1".into(),
        "my packages".into(),
        vec!["email-1".into()],
        vec![Rule::new(RuleKind::UserPackages {
            user: String::new(),
        })],
    ));
    PrefsStore::from_clients(clients).put(&prefs).await?;
    let handler = fmn_match::MatchHandler::new(clients).await?;
    let started = Instant::now();
    handler.refresh_preferences().await?;
    println!(
        "match function cold load with the synced table: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let corpus = std::fs::read_to_string(corpus_path("fedora-messaging-examples.jsonl"))?;
    let line: serde_json::Value = corpus
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["topic"] == "org.fedoraproject.prod.pagure.project.user.access.updated")
        .context("the corpus's ACL change")?;
    let mut body = line["body"].clone();
    body["project"]["namespace"] = json!("rpms");
    body["project"]["name"] = json!("pkg00001");
    body["project"]["access_users"]["commit"] = json!([newcomer]);
    body["new_user"] = json!(newcomer);
    let change =
        Envelope::from_value(json!({"topic": line["topic"], "msg": body, "msg_id": "acl-bench"}))?;
    let started = Instant::now();
    handler
        .apply_fact_changes(&change)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let reflected = started.elapsed();
    let probe_line: serde_json::Value =
        std::fs::read_to_string(corpus_path("fedmsg-examples.jsonl"))?
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|v| v["id"] == "bz.TestLegacy018492a2BugzillaUpdate")
            .context("the corpus's Bugzilla message")?;
    let mut probe = probe_line["message"].clone();
    probe["msg"]["bug"]["component"] = json!("pkg00001");
    let routed = handler
        .replay(&probe.to_string(), Some(newcomer), true)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    if routed.jobs.is_empty() {
        bail!("after the ACL change, a message about pkg00001 did not reach {newcomer}");
    }
    println!(
        "ACL-change message to matching reflecting it (write, then the warm copy updated in place): {:.3} s",
        reflected.as_secs_f64()
    );
    Ok(())
}

fn corpus_path(file: &str) -> PathBuf {
    let relative = PathBuf::from("tests/data").join(file);
    if relative.exists() {
        return relative;
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data")
        .join(file)
}

fn print_run(label: &str, o: &SyncOutcome) {
    println!(
        "{label}: {:.1} s (sources {:.1} s, table {:.1} s); read {} artifacts, {} groups, {} accounts, {} aliases; wrote {} items ({} artifacts, {} groups, {} account buckets), {} unchanged, {} write units",
        (o.fetch_ms + o.write_ms) as f64 / 1000.0,
        o.fetch_ms as f64 / 1000.0,
        o.write_ms as f64 / 1000.0,
        o.artifacts,
        o.groups,
        o.accounts,
        o.aliases,
        o.store.items_written(),
        o.store.artifacts_written,
        o.store.groups_written,
        o.store.account_buckets_written,
        o.store.unchanged,
        o.store.write_units
    );
}
