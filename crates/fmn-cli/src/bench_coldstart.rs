//! `fmn bench coldstart`: what a cold match function pays before it matches anything.
//!
//! Stores N users' preferences (the synthetic users of `fmn bench match`, same generator and
//! seed) and Fedora-sized ownership in the emulators' tables under a fresh resource prefix,
//! through the real stores (`PrefsStore::import`, `OwnershipStore::import`). Then, `--runs`
//! times, a fresh process (`fmn bench coldstart-probe`, as a cold Lambda starts one) builds its
//! clients from the environment and a `MatchHandler` as the function's `main` does, loads the
//! preferences (`MatchHandler::refresh_preferences`: the first run scans the tables, builds the
//! index and writes the snapshot; the later runs load that snapshot and catch up) and
//! matches the corpus's messages in order until one matches somebody (a dry run: nothing is
//! sent). The probe reports the split the cache measures (`FullLoadTiming`) and its peak
//! resident memory (VmHWM); this process prints min/median/max over the runs. The tables are
//! deleted at the end unless `--keep`.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use fmn_aws::ownership_store::{OwnershipStore, SyncTarget};
use fmn_aws::prefs_store::PrefsStore;
use fmn_aws::provision::ProvisionOptions;
use fmn_aws::{AwsClients, ResourceNames};
use fmn_core::prefs::UserPrefs;
use fmn_local::system;
use serde_json::{json, Value};

use crate::bench::{default_corpus, generate_world, load_corpus, peak_memory_kib, WorldSize};

/// The goal: the first match of a cold function at 100,000 users in under 1 s.
const TARGET: Duration = Duration::from_secs(1);
/// The goal for memory: a cold function at 100,000 users peaks under 128 MiB (half
/// of the 256 MB it once had).
const TARGET_PEAK_MIB: f64 = 128.0;
/// Users per `PrefsStore::import` call.
const IMPORT_CHUNK: usize = 500;

/// Options of `fmn bench coldstart`.
#[derive(Debug, Clone, Args)]
pub struct ColdstartArgs {
    /// Number of synthetic users stored.
    #[arg(long, default_value_t = 10_000)]
    users: usize,
    /// Packages with owners (at least the corpus's).
    #[arg(long, default_value_t = 25_000)]
    packages: usize,
    /// Groups with members.
    #[arg(long, default_value_t = 2_000)]
    groups: usize,
    /// Cold starts measured, each in a fresh process.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Seed of the generator (same seed, same users as `fmn bench match`).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Store no FAS accounts (by default each user has one, as the sync copies them: the
    /// match function holds the alias map made from them).
    #[arg(long)]
    no_accounts: bool,
    /// Concurrent import calls while loading.
    #[arg(long, default_value_t = 4)]
    writers: usize,
    /// Resource-name prefix [default: bench-cold-<random>; never the `make run` one].
    #[arg(long)]
    prefix: Option<String>,
    /// Keep the queues and tables afterwards (default: delete them).
    #[arg(long)]
    keep: bool,
    /// Measure the tables a `--keep` run left under `--prefix` again, without loading (nor
    /// deleting) anything.
    #[arg(long, requires = "prefix")]
    reuse: bool,
    /// The message corpus, JSON Lines [default: tests/data/fedmsg-examples.jsonl]
    #[arg(long)]
    corpus: Option<PathBuf>,
}

/// Options of the hidden `fmn bench coldstart-probe`: the resources are named by the usual
/// settings (`FMN_RESOURCE_PREFIX`, …), as for the function.
#[derive(Debug, Clone, Args)]
pub struct ProbeArgs {
    /// The message corpus, JSON Lines.
    #[arg(long)]
    corpus: PathBuf,
}

pub fn run(args: ColdstartArgs) -> anyhow::Result<()> {
    if args.users == 0 || args.runs == 0 || args.writers == 0 {
        bail!("--users, --runs and --writers must be at least 1");
    }
    if std::env::var_os("RUST_LOG").is_none() {
        std::env::set_var("RUST_LOG", "warn");
    }
    fmn_aws::config::apply_local_defaults();
    fmn_aws::telemetry::init();
    let corpus_path = args.corpus.clone().unwrap_or_else(default_corpus);
    let prefix = args
        .prefix
        .clone()
        .unwrap_or_else(|| crate::bench_e2e::fresh_prefix("bench-cold"));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let clients = runtime.block_on(AwsClients::with_names(ResourceNames::new(prefix.clone())));
    runtime.block_on(system::preflight(&clients)).map_err(|e| {
        anyhow::anyhow!(
            "{e}\n  (`source localstack/env.sh` points the AWS_ENDPOINT_URL* variables at them)"
        )
    })?;
    println!(
        "fmn bench coldstart: {} users (seed {}), {} packages, {} groups, {} runs, resources under `{prefix}`",
        args.users, args.seed, args.packages, args.groups, args.runs
    );

    let mut provisioned = None;
    let result = (|| {
        if args.reuse {
            println!("reusing the stored tables (nothing loaded)");
        } else {
            let (_, p) = runtime.block_on(system::provision_all(
                &clients,
                &ProvisionOptions::default(),
            ))?;
            provisioned = Some(p);
            runtime.block_on(load(&clients, &args, &corpus_path))?;
        }
        let mut runs = Vec::new();
        for i in 1..=args.runs {
            let probe = run_probe(&prefix, &corpus_path)?;
            println!("run {i}: {}", probe.summary());
            runs.push(probe);
        }
        // The first run on fresh tables scans them (and writes the snapshot); the next ones
        // load the snapshot: each kind gets its own table.
        for source in ["scan", "snapshot"] {
            let of: Vec<Probe> = runs
                .iter()
                .filter(|p| p.source() == source)
                .cloned()
                .collect();
            if !of.is_empty() {
                print!("{}", report(&of));
            }
        }
        anyhow::Ok(())
    })();
    if let (Some(p), false) = (&provisioned, args.keep) {
        runtime.block_on(crate::bench_e2e::cleanup(&clients, p));
    } else if provisioned.is_some() || args.reuse {
        println!("tables kept under `{prefix}` (measure again with --reuse --prefix {prefix})");
    }
    result
}

/// Generates the world and stores it: ownership, then the users in chunks, several at once.
async fn load(
    clients: &AwsClients,
    args: &ColdstartArgs,
    corpus_path: &std::path::Path,
) -> anyhow::Result<()> {
    let corpus = load_corpus(corpus_path)?;
    let size = WorldSize {
        packages: args.packages,
        groups: args.groups,
    };
    let world = generate_world(&corpus, args.users, args.seed, size, args.users >= 100_000);
    drop(corpus);

    store_world(clients, &world, args.users, args.writers, |i| world.user(i)).await?;
    if !args.no_accounts {
        store_accounts(clients, &world, args.users).await?;
    }
    // The process exits soon: the generated world need not be freed item by item.
    std::mem::forget(world);
    Ok(())
}

/// Stores `world`'s ownership, then its first `users` users (`user(i)`) in chunks, `writers`
/// chunks at once, through the real stores (each user with its change-log entry), printing
/// progress and rates.
pub(crate) async fn store_world(
    clients: &AwsClients,
    world: &crate::bench::World,
    users: usize,
    writers: usize,
    user: impl Fn(usize) -> UserPrefs,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let artifacts = world
        .ownership
        .artifacts()
        .map(|(a, o)| (a.clone(), o.clone()))
        .collect();
    let groups = world
        .ownership
        .groups()
        .map(|(g, m)| (g.to_string(), m.iter().map(|u| u.to_string()).collect()))
        .collect();
    let mut last = Instant::now();
    let report = OwnershipStore::from_clients(clients)
        .import(Some(&artifacts), Some(&groups), |done, total| {
            if last.elapsed() >= Duration::from_secs(5) || done == total {
                eprintln!("  ownership: {done}/{total} items");
                last = Instant::now();
            }
        })
        .await
        .context("storing the ownership")?;
    let ownership_secs = started.elapsed().as_secs_f64();
    println!(
        "stored ownership: {} packages, {} groups in {ownership_secs:.1} s ({:.0} items/s)",
        report.artifacts_written,
        report.groups_written,
        (report.artifacts_written + report.groups_written) as f64 / ownership_secs.max(1e-9)
    );

    let store = PrefsStore::from_clients(clients);
    let started = Instant::now();
    let mut next_progress = started + Duration::from_secs(5);
    let mut tasks = tokio::task::JoinSet::new();
    let mut stored = 0usize;
    let mut bytes = 0usize;
    let mut next = 0usize;
    while next < users || !tasks.is_empty() {
        while next < users && tasks.len() < writers {
            let end = (next + IMPORT_CHUNK).min(users);
            let users: Vec<UserPrefs> = (next..end).map(&user).collect();
            bytes += users
                .iter()
                .map(|u| serde_json::to_string(u).map_or(0, |s| s.len()))
                .sum::<usize>();
            next = end;
            let store = store.clone();
            tasks.spawn(async move {
                let n = users.len();
                store.import(&users).await.map(|_| n)
            });
        }
        if let Some(done) = tasks.join_next().await {
            stored += done?.context("storing preferences")?;
        }
        if Instant::now() >= next_progress {
            let secs = started.elapsed().as_secs_f64();
            eprintln!(
                "  preferences: {stored}/{} users in {secs:.0} s ({:.0} users/s)",
                users,
                stored as f64 / secs
            );
            next_progress += Duration::from_secs(5);
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "stored preferences: {stored} users ({:.1} MB of JSON, {:.0} bytes a user; each with its \
         change-log entry) in {secs:.1} s ({:.0} users/s)",
        bytes as f64 / 1e6,
        bytes as f64 / stored.max(1) as f64,
        stored as f64 / secs.max(1e-9)
    );
    Ok(())
}

/// Stores the first `users` users' FAS accounts as a sync would (in their buckets).
async fn store_accounts(
    clients: &AwsClients,
    world: &crate::bench::World,
    users: usize,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let directory = world.directory(users);
    let aliases = directory.aliases().len();
    let mut last = Instant::now();
    let report = OwnershipStore::from_clients(clients)
        .sync(
            SyncTarget {
                artifacts: None,
                groups: None,
                directory: Some(&directory),
                read_since_ms: None,
            },
            IMPORT_CHUNK,
            |done, total| {
                if last.elapsed() >= Duration::from_secs(5) || done == total {
                    eprintln!("  accounts: {done}/{total} buckets");
                    last = Instant::now();
                }
            },
        )
        .await
        .context("storing the accounts")?;
    println!(
        "stored accounts: {} ({aliases} aliases) in {} buckets in {:.1} s",
        directory.len(),
        report.account_buckets_written,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// One cold start's figures, as the probe printed them.
#[derive(Debug, Clone)]
struct Probe(Value);

impl Probe {
    fn secs(&self, key: &str) -> f64 {
        self.0[key].as_f64().unwrap_or(f64::NAN)
    }

    fn count(&self, key: &str) -> u64 {
        self.0[key].as_u64().unwrap_or(0)
    }

    fn source(&self) -> &str {
        self.0["source"].as_str().unwrap_or("?")
    }

    fn summary(&self) -> String {
        format!(
            "from the {}: first match after {:.3} s (load {:.3} s: ownership read {:.3} + decode {:.3}, \
             preferences read {:.3} + decode {:.3}, index {:.3}), {} users, {} accounts ({} aliases), peak {:.0} MiB",
            self.source(),
            self.secs("to_first_match"),
            self.secs("load"),
            self.secs("ownership_read"),
            self.secs("ownership_decode"),
            self.secs("prefs_read"),
            self.secs("prefs_decode"),
            self.secs("index_build"),
            self.count("users"),
            self.count("accounts"),
            self.count("aliases"),
            self.count("peak_kib") as f64 / 1024.0,
        )
    }
}

/// Runs `fmn bench coldstart-probe` in a fresh process against `prefix`.
fn run_probe(prefix: &str, corpus: &std::path::Path) -> anyhow::Result<Probe> {
    let exe = std::env::current_exe().context("finding the fmn binary")?;
    let mut command = Command::new(exe);
    command.args(["bench", "coldstart-probe", "--corpus"]);
    command.arg(corpus);
    // Named by the prefix alone, as the function is by its stack's: no table or queue
    // variable of this shell leaks in.
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("FMN_") {
            command.env_remove(k);
        }
    }
    command.env("FMN_RESOURCE_PREFIX", prefix);
    let out = command.output().context("running the probe")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "the probe failed ({}): {}{}",
            out.status,
            stdout,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let line = stdout.lines().last().unwrap_or_default();
    let value: Value =
        serde_json::from_str(line).with_context(|| format!("the probe's answer: {line:?}"))?;
    Ok(Probe(value))
}

/// Resident memory now, in KiB, from /proc/self/status.
fn resident_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// `fmn bench coldstart-probe`: one cold start, printed as one JSON line.
pub fn probe(args: ProbeArgs) -> anyhow::Result<()> {
    // The messages are read before the clock and the memory baseline: an invocation's event
    // is not part of the start.
    let corpus = load_corpus(&args.corpus)?;
    let messages: Vec<String> = corpus.messages.iter().map(|(e, _)| e.to_json()).collect();
    drop(corpus);
    fmn_aws::telemetry::init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let baseline_kib = resident_kib().unwrap_or(0);
    let figures = runtime.block_on(async {
        let started = Instant::now();
        let clients = AwsClients::from_env().await?;
        let handler = fmn_match::MatchHandler::new(&clients).await?;
        let construction = started.elapsed();
        let report = handler.refresh_preferences().await?;
        let load = started.elapsed() - construction;
        let timing = report
            .full_load_timing
            .context("the first refresh was not a full load")?;
        let t = Instant::now();
        let mut tried = 0usize;
        let mut matches = 0usize;
        for text in &messages {
            tried += 1;
            let routed = handler
                .replay(text, None, true)
                .await
                .map_err(|e| anyhow::anyhow!("matching a corpus message: {e}"))?;
            if !routed.jobs.is_empty() {
                matches = routed.jobs.len();
                break;
            }
        }
        let first_match = t.elapsed();
        let to_first_match = started.elapsed();
        if matches == 0 {
            bail!("no corpus message matched anybody");
        }
        let peak_kib = peak_memory_kib().unwrap_or(0);
        anyhow::Ok(json!({
            "users": report.users_reloaded,
            "indexed_users": timing.index.users,
            "filters": timing.index.filters,
            "postings": timing.index.postings,
            "prefs_items": timing.prefs.items,
            "accounts": timing.accounts,
            "aliases": timing.aliases,
            "ownership_items": timing.ownership.items,
            "construction": construction.as_secs_f64(),
            "ownership_read": timing.ownership.read.as_secs_f64(),
            "ownership_decode": timing.ownership.decode.as_secs_f64(),
            "prefs_version_read": timing.prefs_version_read.as_secs_f64(),
            "prefs_read": timing.prefs.read.as_secs_f64(),
            "prefs_decode": timing.prefs.decode.as_secs_f64(),
            "index_build": timing.index_build.as_secs_f64(),
            "load": load.as_secs_f64(),
            "first_match": first_match.as_secs_f64(),
            "messages_tried": tried,
            "matches": matches,
            "to_first_match": to_first_match.as_secs_f64(),
            "source": if report.from_snapshot.is_some() { "snapshot" } else { "scan" },
            "snapshot_bytes": timing.snapshot_bytes,
            "snapshot_write": timing.snapshot_write.as_secs_f64(),
            "snapshot_refused": report.snapshot_refused,
            "caught_up": report.caught_up,
            "baseline_kib": baseline_kib,
            "peak_kib": peak_kib,
        }))
    })?;
    println!("{figures}");
    // A Lambda's instance is frozen, not torn down: freeing the index is not part of it.
    std::process::exit(0)
}

/// min, median, max.
fn spread(mut values: Vec<f64>) -> (f64, f64, f64) {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    let median = if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    };
    (values[0], median, values[n - 1])
}

fn report(runs: &[Probe]) -> String {
    let first = &runs[0];
    let users = first.count("users");
    let postings = first.count("postings");
    let above = |p: &Probe| p.count("peak_kib").saturating_sub(p.count("baseline_kib")) as f64;
    let mut out = format!(
        "\nloaded from the {} ({}; snapshot {:.1} MB, {:.0} bytes a user)\n",
        first.source(),
        first.0["snapshot_refused"].as_str().map_or_else(
            || format!("{} users caught up", first.count("caught_up")),
            |r| format!("snapshot not used: {r}")
        ),
        first.count("snapshot_bytes") as f64 / 1e6,
        first.count("snapshot_bytes") as f64 / users.max(1) as f64,
    );
    out += &format!(
        "index: {} users ({} stored), {} filters, {} postings; items read: preferences {} \
         (users; the scan also passes over the change log), ownership {}; first match: message {} of the corpus, \
         {} jobs\n",
        first.count("indexed_users"),
        users,
        first.count("filters"),
        postings,
        first.count("prefs_items"),
        first.count("ownership_items"),
        first.count("messages_tried"),
        first.count("matches"),
    );
    out += &format!(
        "{:<44} {:>10} {:>10} {:>10}\n",
        format!("cold start over {} runs", runs.len()),
        "min",
        "median",
        "max"
    );
    let mut row = |label: &str, values: Vec<f64>, unit: &str| {
        let (lo, mid, hi) = spread(values);
        let f = |v: f64| match unit {
            "s" => format!("{v:.3} s"),
            "MiB" => format!("{v:.0} MiB"),
            _ => format!("{v:.0}"),
        };
        out += &format!("{label:<44} {:>10} {:>10} {:>10}\n", f(lo), f(mid), f(hi));
    };
    let secs = |key: &str| runs.iter().map(|p| p.secs(key)).collect::<Vec<_>>();
    row(
        "construction (clients, queue URLs)",
        secs("construction"),
        "s",
    );
    row(
        "ownership: read (counter, scans)",
        secs("ownership_read"),
        "s",
    );
    row("ownership: decode", secs("ownership_decode"), "s");
    row("preferences: counter read", secs("prefs_version_read"), "s");
    row(
        "preferences: read (scan, or snapshot)",
        secs("prefs_read"),
        "s",
    );
    row(
        "preferences: decode (JSON, or snapshot)",
        secs("prefs_decode"),
        "s",
    );
    row("index build", secs("index_build"), "s");
    row(
        "snapshot: encode and write (after a scan)",
        secs("snapshot_write"),
        "s",
    );
    row("load in all (refresh_preferences)", secs("load"), "s");
    row("first matched message (dry run)", secs("first_match"), "s");
    row("construction to first match", secs("to_first_match"), "s");
    row(
        "peak resident memory (VmHWM)",
        runs.iter()
            .map(|p| p.count("peak_kib") as f64 / 1024.0)
            .collect(),
        "MiB",
    );
    row(
        "  of which above the process at start",
        runs.iter().map(|p| above(p) / 1024.0).collect(),
        "MiB",
    );
    row(
        "bytes per user (above start)",
        runs.iter()
            .map(|p| above(p) * 1024.0 / p.count("users").max(1) as f64)
            .collect(),
        "B",
    );
    row(
        "bytes per posting (above start)",
        runs.iter()
            .map(|p| above(p) * 1024.0 / p.count("postings").max(1) as f64)
            .collect(),
        "B",
    );
    let (_, median, _) = spread(secs("to_first_match"));
    out += &format!(
        "target: first match under {} s at 100,000 users: {} at {users} users (median {median:.3} s)\n",
        TARGET.as_secs(),
        if median < TARGET.as_secs_f64() {
            "met"
        } else {
            "NOT met"
        }
    );
    let peaks: Vec<f64> = runs
        .iter()
        .map(|p| p.count("peak_kib") as f64 / 1024.0)
        .collect();
    let (_, _, highest) = spread(peaks);
    out += &format!(
        "target: peak under {TARGET_PEAK_MIB} MiB at 100,000 users: {} at {users} users (highest {highest:.0} MiB)\n",
        if highest < TARGET_PEAK_MIB {
            "met"
        } else {
            "NOT met"
        }
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_is_min_median_max() {
        assert_eq!(spread(vec![3.0, 1.0, 2.0]), (1.0, 2.0, 3.0));
        assert_eq!(spread(vec![4.0, 1.0]), (1.0, 2.5, 4.0));
        assert_eq!(spread(vec![5.0]), (5.0, 5.0, 5.0));
    }
}
