//! `fmn bench e2e --profile mass-rebuild`: a Koji mass rebuild against the whole local system.
//!
//! `fmn bench match`'s generated world (N users with the default filters and a mix of their
//! own, Fedora-sized ownership: 25,000 packages with 1–3 owners, a tenth also owned by one of
//! 2,000 groups of 2–200 members, so a few packages reach hundreds of owners) is stored through
//! the real stores; the system runs in-process as for the steady profile; then one
//! `buildsys.build.state.change` (build complete, by `releng`) per package is published at the
//! given rate, package after package. The owners' default filter ("Events on packages I
//! maintain") mails each owner. Latency runs from the moment a message goes to the PUB socket
//! to the `finished_at` of each owner's e-mail delivery record; the backlog is the ingest and
//! e-mail queues' depth (visible + in flight), sampled every 2 s. IRC destinations are left
//! out of the stored users (no IRC server runs for the bench); digest users' items wait for
//! their digest and are not counted.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_sqs::types::QueueAttributeName;
use fmn_aws::provision::ProvisionOptions;
use fmn_aws::{QueueName, TableName};
use fmn_core::jobs::job_id;
use fmn_core::prefs::{DestinationKind, UserPrefs};
use fmn_ingest_bridge::publisher::Publisher;
use fmn_local::system::{self, RunOptions};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::bench::{default_corpus, generate_world, load_corpus, World, WorldSize};
use crate::bench_e2e::{cleanup, fresh_prefix, function_memory, quantile, secs, sorted, E2eArgs};

/// The goal of issue 18: p99 under 5 s during a mass rebuild, and no backlog growth.
const TARGET_P99: Duration = Duration::from_secs(5);
const TOPIC: &str = "org.fedoraproject.prod.buildsys.build.state.change";
const SEED: u64 = 18;
const SAMPLE_EVERY: Duration = Duration::from_secs(2);

/// One backlog sample: seconds since the load started, ingest and e-mail queue depths.
#[derive(Debug, Clone, Copy)]
struct Backlog {
    at: f64,
    ingest: u64,
    email: u64,
}

/// The user's preferences as stored for the bench: without IRC destinations.
fn bench_user(world: &World, i: usize) -> UserPrefs {
    let mut p = world.user(i);
    let irc: Vec<String> = p
        .destinations
        .iter()
        .filter(|d| d.kind != DestinationKind::Email)
        .map(|d| d.id.clone())
        .collect();
    p.destinations.retain(|d| d.kind == DestinationKind::Email);
    for f in &mut p.filters {
        f.destinations.retain(|d| !irc.contains(d));
    }
    p
}

/// Writes the snapshot a running system would have (the match function writes one after each
/// full load), made from the world just stored: the match function then starts from it in
/// about a second, as in production, instead of scanning the table first (minutes at 80,000
/// users on DynamoDB Local; the bench measures the burst, `fmn bench coldstart` the start).
async fn write_snapshot(
    clients: &fmn_aws::config::AwsClients,
    world: &World,
    users: usize,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let taken_at = fmn_aws::dynamo::now_secs();
    let ownership_version = fmn_aws::ownership_store::OwnershipStore::from_clients(clients)
        .current_version()
        .await?;
    let prefs = fmn_aws::prefs_store::PrefsStore::from_clients(clients);
    let prefs_version = prefs.current_version().await?;
    let mut builder = fmn_aws::prefs_snapshot::SnapshotBuilder::new();
    for i in 0..users {
        builder.add(&bench_user(world, i));
    }
    // No FAS accounts are stored for the bench, and no sync ran.
    let body = builder.finish(&world.ownership, &Default::default(), 0, None);
    prefs
        .snapshots()
        .write(
            &body,
            users as u64,
            prefs_version,
            ownership_version,
            taken_at,
        )
        .await
        .context("writing the snapshot")?;
    println!(
        "wrote the preferences snapshot ({:.1} MB) in {:.1} s",
        body.len() as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

pub async fn bench(args: E2eArgs) -> anyhow::Result<()> {
    let rate = args.rate.unwrap_or(50.0);
    let seconds = args.seconds.unwrap_or(180.0);
    let prefix = args.prefix.clone().unwrap_or_else(|| fresh_prefix("bench"));
    let clients = crate::bench_e2e::counted_clients(&prefix).await?;
    println!(
        "fmn bench e2e --profile mass-rebuild: {} users, Koji builds at {rate} msg/s for {seconds} s, resources under `{prefix}`",
        args.users
    );
    let (_, provisioned) = system::provision_all(&clients, &ProvisionOptions::default()).await?;

    // The world, stored through the real stores.
    let corpus = load_corpus(&default_corpus())?;
    let mut world = generate_world(&corpus, args.users, SEED, WorldSize::default(), false);
    drop(corpus);
    crate::bench_coldstart::store_world(&clients, &world, args.users, 8, |i| bench_user(&world, i))
        .await?;
    write_snapshot(&clients, &world, args.users).await?;
    let ownership = std::mem::take(&mut world.ownership);
    let index: HashMap<&str, usize> = world
        .names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i))
        .collect();

    // The system, as for the steady profile.
    let publisher = Publisher::bind("tcp://127.0.0.1:*").context("binding the publisher")?;
    let spool = std::env::temp_dir().join(format!("fmn-{prefix}-spool"));
    let mut options = RunOptions::from_env()?;
    crate::bench_e2e::bench_options(&mut options, &args, &publisher, &spool)?;
    let publisher = Arc::new(Mutex::new(publisher));
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(system::run(clients.clone(), options, shutdown.clone()));
    let ingest_url = clients.queue_url(QueueName::Ingest).await?;
    let email_url = clients.queue_url(QueueName::Email).await?;
    let records_table = clients.table(TableName::DeliveryRecords);

    // Koji build messages; the first few warm the system up (not measured).
    let build = |n: usize| -> Value {
        let package = &world.packages[n % world.packages.len()];
        json!({
            "attribute": "state", "build_id": 3_000_000 + n, "instance": "primary",
            "name": package.name, "new": 1, "old": 0, "owner": "releng",
            "release": "2.fc44", "task_id": 9_000_000 + n, "version": "1.0",
        })
    };
    let publish = |n: usize| -> anyhow::Result<(String, u64)> {
        let at = fmn_aws::delivery_records::now_ms();
        let (msg_id, _) = publisher
            .lock()
            .unwrap()
            .publish(TOPIC, build(n))
            .context("publishing")?;
        Ok((msg_id, at))
    };
    let depth = |url: String| {
        let sqs = clients.sqs.clone();
        async move {
            let out = sqs
                .get_queue_attributes()
                .queue_url(url)
                .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
                .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
                .send()
                .await
                .map_err(|e| {
                    anyhow::anyhow!(aws_sdk_sqs::error::DisplayErrorContext(&e).to_string())
                })?;
            Ok::<u64, anyhow::Error>(
                out.attributes
                    .unwrap_or_default()
                    .values()
                    .filter_map(|v| v.parse::<u64>().ok())
                    .sum(),
            )
        }
    };
    let warm_started = Instant::now();
    let total = (rate * seconds).round().max(1.0) as usize;
    let mut warm_up = total;
    let mut delivered = false;
    loop {
        if running.is_finished() {
            running.await??;
            bail!("the system stopped during the warm-up");
        }
        if warm_started.elapsed() > Duration::from_secs(180) {
            shutdown.cancel();
            bail!("the warm-up messages were not all handled within 180 s");
        }
        // Packages after the measured ones; again every 10 s until one is delivered (PUB/SUB
        // drops what is published before the subscription arrives).
        if warm_up == total || !delivered && warm_up % 10 == 0 {
            publish(warm_up)?;
        }
        warm_up += 1;
        tokio::time::sleep(Duration::from_secs(1)).await;
        delivered = delivered
            || !scan_sent(&clients.dynamodb, &records_table)
                .await?
                .is_empty();
        if delivered
            && depth(ingest_url.clone()).await? == 0
            && depth(email_url.clone()).await? == 0
        {
            break;
        }
    }
    println!(
        "warm-up: first deliveries after {:.1} s; publishing",
        warm_started.elapsed().as_secs_f64()
    );
    let warm_keys: std::collections::HashSet<String> = scan_sent(&clients.dynamodb, &records_table)
        .await?
        .into_keys()
        .collect();
    fmn_aws::request_count::take();

    // The burst.
    let mut expected: HashMap<String, u64> = HashMap::new();
    let mut backlog: Vec<Backlog> = Vec::new();
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let load_started = Instant::now();
    let mut next_sample = load_started;
    let mut published = 0usize;
    let sample = || {
        let (ingest_url, email_url) = (ingest_url.clone(), email_url.clone());
        let at = load_started.elapsed().as_secs_f64();
        let depth = &depth;
        async move {
            Ok::<Backlog, anyhow::Error>(Backlog {
                at,
                ingest: depth(ingest_url).await?,
                email: depth(email_url).await?,
            })
        }
    };
    while published < total {
        ticker.tick().await;
        let (msg_id, at) = publish(published)?;
        let package = &world.packages[published % world.packages.len()];
        if let Some(owners) = ownership.owners(package) {
            let mut users: Vec<&str> = owners.users.iter().map(String::as_str).collect();
            for g in &owners.groups {
                users.extend(ownership.members(g).iter().map(|m| &**m));
            }
            users.sort_unstable();
            users.dedup();
            for user in users {
                let Some(&i) = index.get(user) else { continue };
                for d in bench_user(&world, i).destinations {
                    let key =
                        fmn_aws::delivery_records::Channel::Email.key(&job_id(&msg_id, user, &d));
                    expected.insert(key, at);
                }
            }
        }
        published += 1;
        if Instant::now() >= next_sample {
            let b = sample().await?;
            backlog.push(b);
            if (b.at as u64) % 10 < 2 {
                println!(
                    "[{:>5.1} s] published {published}, backlog: ingest {}, e-mail {}",
                    b.at, b.ingest, b.email
                );
            }
            next_sample += SAMPLE_EVERY;
        }
    }
    let publish_secs = load_started.elapsed().as_secs_f64();
    // Drain: until both queues stay empty for three samples, or --drain.
    let drain_until = Instant::now() + Duration::from_secs_f64(args.drain.max(1.0));
    let mut empty = 0;
    while empty < 3 && Instant::now() < drain_until && !running.is_finished() {
        tokio::time::sleep(SAMPLE_EVERY).await;
        let b = sample().await?;
        backlog.push(b);
        empty = if b.ingest + b.email == 0 {
            empty + 1
        } else {
            0
        };
        if (b.at as u64) % 10 < 2 {
            println!(
                "[{:>5.1} s] draining, backlog: ingest {}, e-mail {}",
                b.at, b.ingest, b.email
            );
        }
    }
    let counts = fmn_aws::request_count::take();
    let counted = load_started.elapsed();
    crate::bench_e2e::stop_system(&shutdown, running).await;

    // Latencies: every owner's mail sent, from the delivery records.
    let sent = scan_sent(&clients.dynamodb, &records_table).await?;
    let mut latencies = Vec::new();
    let mut by_second: Vec<(f64, f64)> = Vec::new();
    let t0 = now_ms_at(load_started);
    let mut other = 0usize;
    // A burst's notifications share one SES message id: the mails actually sent.
    let ses_sends: std::collections::HashSet<&str> = sent
        .iter()
        .filter(|(key, _)| !warm_keys.contains(*key))
        .filter_map(|(_, (_, id))| id.as_deref())
        .collect();
    for (key, (finished, _)) in &sent {
        match expected.get(key) {
            Some(at) => {
                let l = finished.saturating_sub(*at) as f64 / 1000.0;
                latencies.push(l);
                by_second.push((finished.saturating_sub(t0) as f64 / 1000.0, l));
            }
            None if !warm_keys.contains(key) => other += 1,
            None => {}
        }
    }
    if !args.keep {
        cleanup(&clients, &provisioned).await;
    }
    let _ = std::fs::remove_dir_all(&spool);

    let s = sorted(&latencies);
    let p99 = quantile(&s, 0.99);
    let last = backlog.last().copied();
    let peak = backlog
        .iter()
        .map(|b| b.ingest + b.email)
        .max()
        .unwrap_or(0);
    let verdict = match (p99, last) {
        (Some(p), Some(l)) if p < TARGET_P99.as_secs_f64() && l.ingest + l.email == 0 => "met",
        _ => "NOT met",
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nmass rebuild: bus → mail accepted by SES, each package's owners (default filter)"
    );
    let _ = writeln!(out, "users            {}", args.users);
    let _ = writeln!(
        out,
        "published        {published} in {publish_secs:.1} s ({:.1} msg/s, asked {rate})",
        published as f64 / publish_secs.max(1e-9)
    );
    let _ = writeln!(out, "owner mails      {} sent of {} owner destinations (the rest: digest users, disabled or unconfirmed addresses, or not sent within --drain); {other} other mails", latencies.len(), expected.len());
    let _ = writeln!(
        out,
        "SES sends        {} mails carried those {} notifications (a burst for one address in one match batch is one mail: FMN_EMAIL_BURST)",
        ses_sends.len(),
        latencies.len() + other
    );
    let _ = writeln!(out, "latency p50      {}", secs(quantile(&s, 0.50)));
    let _ = writeln!(out, "latency p90      {}", secs(quantile(&s, 0.90)));
    let _ = writeln!(out, "latency p99      {}", secs(p99));
    let _ = writeln!(out, "latency max      {}", secs(s.last().copied()));
    let _ = writeln!(
        out,
        "backlog peak     {peak} (ingest + e-mail queue, visible + in flight)"
    );
    let _ = writeln!(
        out,
        "backlog at end   {}",
        last.map_or("-".into(), |l| format!(
            "{} after {:.0} s",
            l.ingest + l.email,
            l.at
        ))
    );
    let _ = writeln!(
        out,
        "target           p99 < {} s, backlog back to 0: {verdict}",
        TARGET_P99.as_secs()
    );
    let _ = writeln!(
        out,
        "\n   time   ingest   e-mail   mails sent   p99 of those"
    );
    let step = 10.0;
    let end = backlog.last().map_or(0.0, |b| b.at);
    let mut t = 0.0;
    while t <= end {
        let b = backlog.iter().rev().find(|b| b.at <= t + step).copied();
        let window: Vec<f64> = by_second
            .iter()
            .filter(|(at, _)| *at >= t && *at < t + step)
            .map(|(_, l)| *l)
            .collect();
        let ws = sorted(&window);
        let _ = writeln!(
            out,
            "{:>6.0} s {:>8} {:>8} {:>12}   {}",
            t + step,
            b.map_or(0, |b| b.ingest),
            b.map_or(0, |b| b.email),
            window.len(),
            secs(quantile(&ws, 0.99))
        );
        t += step;
    }
    let svg = chart(&backlog, &by_second);
    let dir = std::path::Path::new("target/bench");
    std::fs::create_dir_all(dir)?;
    let path = dir.join("mass-rebuild.svg");
    std::fs::write(&path, svg)?;
    let _ = writeln!(out, "chart            {}", path.display());
    print!("{out}");

    let memory_mb = function_memory(&prefix)?;
    let measured = crate::bench_cost::Measured {
        counts: &counts,
        prefix: &prefix,
        messages: published,
        mails: latencies.len() + other,
        elapsed: counted,
        memory_mb: &memory_mb,
    };
    print!("{}", crate::bench_cost::per_message_table(&measured));
    Ok(())
}

/// The epoch milliseconds of `instant`.
fn now_ms_at(instant: Instant) -> u64 {
    fmn_aws::delivery_records::now_ms().saturating_sub(instant.elapsed().as_millis() as u64)
}

/// `finished_at` and SES message id of every delivery record marked `sent`, by key (one scan).
async fn scan_sent(
    dynamodb: &aws_sdk_dynamodb::Client,
    table: &str,
) -> anyhow::Result<HashMap<String, (u64, Option<String>)>> {
    let mut out = HashMap::new();
    let mut start: Option<HashMap<String, AttributeValue>> = None;
    loop {
        let page = dynamodb
            .scan()
            .table_name(table)
            .projection_expression("pk, #state, finished_at, message_id")
            .expression_attribute_names("#state", "state")
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "scanning {table}: {}",
                    aws_sdk_dynamodb::error::DisplayErrorContext(&e)
                )
            })?;
        for item in page.items.unwrap_or_default() {
            if let Some((pk, finished)) = crate::bench_e2e::sent_record(&item) {
                let id = item.get("message_id").and_then(|v| v.as_s().ok()).cloned();
                out.insert(pk, (finished, id));
            }
        }
        match page.last_evaluated_key {
            Some(k) if !k.is_empty() => start = Some(k),
            _ => return Ok(out),
        }
    }
}

/// An SVG chart: the backlog (messages, left axis) and each mail's latency (s, right axis,
/// dots) against the time since the burst started.
fn chart(backlog: &[Backlog], latencies: &[(f64, f64)]) -> String {
    const W: f64 = 800.0;
    const H: f64 = 360.0;
    const PAD: f64 = 50.0;
    let t_max = backlog
        .iter()
        .map(|b| b.at)
        .chain(latencies.iter().map(|l| l.0))
        .fold(1.0_f64, f64::max);
    let b_max = backlog
        .iter()
        .map(|b| (b.ingest + b.email) as f64)
        .fold(1.0_f64, f64::max);
    let l_max = latencies
        .iter()
        .map(|l| l.1)
        .fold(TARGET_P99.as_secs_f64(), f64::max);
    let x = |t: f64| PAD + t / t_max * (W - 2.0 * PAD);
    let yb = |v: f64| H - PAD - v / b_max * (H - 2.0 * PAD);
    let yl = |v: f64| H - PAD - v / l_max * (H - 2.0 * PAD);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{PAD}\" y=\"20\">fmn bench e2e --profile mass-rebuild: backlog (blue, left, max {b_max:.0} messages) and mail latency (orange dots, right, max {l_max:.1} s)</text>\n\
         <line x1=\"{PAD}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"black\"/>\n\
         <line x1=\"{PAD}\" y1=\"{PAD}\" x2=\"{PAD}\" y2=\"{}\" stroke=\"black\"/>\n\
         <text x=\"{}\" y=\"{}\">{t_max:.0} s</text>\n",
        H - PAD,
        W - PAD,
        H - PAD,
        H - PAD,
        W - PAD - 30.0,
        H - PAD + 20.0,
    );
    let target = yl(TARGET_P99.as_secs_f64());
    let _ = writeln!(
        svg,
        "<line x1=\"{PAD}\" y1=\"{target:.1}\" x2=\"{}\" y2=\"{target:.1}\" stroke=\"red\" stroke-dasharray=\"4\"/><text x=\"{}\" y=\"{:.1}\" fill=\"red\">5 s</text>",
        W - PAD,
        W - PAD + 4.0,
        target + 4.0
    );
    // At most ~4,000 dots: a sample of the mails, evenly.
    let every = (latencies.len() / 4000).max(1);
    for (t, l) in latencies.iter().step_by(every) {
        let _ = writeln!(
            svg,
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"1.2\" fill=\"#f08c00\" fill-opacity=\"0.5\"/>",
            x(*t),
            yl(*l)
        );
    }
    let points: Vec<String> = backlog
        .iter()
        .map(|b| format!("{:.1},{:.1}", x(b.at), yb((b.ingest + b.email) as f64)))
        .collect();
    let _ = writeln!(
        svg,
        "<polyline fill=\"none\" stroke=\"#1c7ed6\" stroke-width=\"2\" points=\"{}\"/>",
        points.join(" ")
    );
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chart_is_an_svg_with_both_series() {
        let backlog = [
            Backlog {
                at: 0.0,
                ingest: 0,
                email: 0,
            },
            Backlog {
                at: 2.0,
                ingest: 5,
                email: 20,
            },
        ];
        let svg = chart(&backlog, &[(1.0, 0.5), (2.5, 1.5)]);
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("<polyline"));
        assert_eq!(svg.matches("<circle").count(), 2);
        assert!(svg.trim_end().ends_with("</svg>"));
    }
}
