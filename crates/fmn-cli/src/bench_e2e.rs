//! `fmn bench e2e`: bus-to-delivery latency of the whole local system.
//!
//! Starts the system in-process (`fmn_local::system::run`: the ingest bridge, match,
//! deliver-email, deliver-irc, digest, web-api) against the running emulators, under a fresh
//! resource prefix, with one user whose filter (`topic` `*`) matches every message and sends
//! it by e-mail at once. A fedmsg publisher (the Rust `Publisher`, fedmsg's wire format) on a
//! local endpoint publishes the bundled corpus messages at a steady rate; for each message the
//! latency is from the moment it is handed to the PUB socket to the moment its delivery record
//! was marked `sent` (`finished_at`, written right after SES v2 accepted the mail). The
//! resources are deleted at the end unless `--keep`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use clap::Args;
use fmn_aws::prefs_store::PrefsStore;
use fmn_aws::provision::ProvisionOptions;
use fmn_aws::{AwsClients, ResourceNames, TableName};
use fmn_core::jobs::job_id;
use fmn_core::prefs::{Destination, Filter, UserPrefs};
use fmn_core::rules::{Rule, RuleKind};
use fmn_ingest_bridge::publisher::Publisher;
use fmn_local::system::{self, RunOptions};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

/// The target of the delivery issue: p99 under 2 s at 20 messages/s.
const TARGET_P99: Duration = Duration::from_secs(2);
const USER: &str = "bench";

/// Options of `fmn bench e2e`.
#[derive(Debug, Clone, Args)]
pub struct E2eArgs {
    /// `steady`: one user mailed every corpus message; `mass-rebuild`: Koji builds of every
    /// package for a generated world of `--users`, mailed to each package's owners.
    #[arg(long, value_enum, default_value_t = Profile::Steady)]
    pub profile: Profile,
    /// Messages published per second [default: 20; mass-rebuild 50].
    #[arg(long)]
    pub rate: Option<f64>,
    /// How long to publish for, in seconds [default: 30; mass-rebuild 180].
    #[arg(long)]
    pub seconds: Option<f64>,
    /// How long to wait, after the last message, for the deliveries still outstanding.
    #[arg(long, default_value_t = 60.0)]
    pub drain: f64,
    /// Seconds between progress lines.
    #[arg(long, default_value_t = 5.0)]
    pub progress: f64,
    /// Users of the mass-rebuild world (`fmn bench match`'s generator).
    #[arg(long, default_value_t = 80_000)]
    pub users: usize,
    /// The SES account's send rate, mails a second [default: `FMN_SES_SEND_RATE`].
    #[arg(long)]
    pub ses_rate: Option<f64>,
    /// deliver-email instances [default: `FMN_EMAIL_CONCURRENCY`].
    #[arg(long)]
    pub email_concurrency: Option<u32>,
    /// Resource-name prefix [default: bench-<random>; never the `make run` one].
    #[arg(long)]
    pub prefix: Option<String>,
    /// Keep the queues and tables afterwards (default: delete them).
    #[arg(long)]
    pub keep: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Profile {
    Steady,
    MassRebuild,
}

/// The run options both profiles share: the bench's publisher as the only bus, no metrics
/// endpoint, a private spool, every message kept, the mail settings asked.
pub(crate) fn bench_options(
    options: &mut RunOptions,
    args: &E2eArgs,
    publisher: &Publisher,
    spool: &std::path::Path,
) -> anyhow::Result<()> {
    options.web_addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    // As many batches at once as Lambda would run: what the bench measures.
    options.lambda_concurrency = true;
    options.bridge.endpoints = vec![publisher.endpoint().to_string()];
    options.bridge.topics.clear();
    options.bridge.metrics_addr = None;
    options.bridge.idle_reconnect = None;
    options.bridge.spool_dir = spool.to_path_buf();
    // Every corpus message is to be delivered (the corpus has staging and junk topics, which
    // the noise policy would drop before matching).
    options.noise.enabled = false;
    if let Some(rate) = args.ses_rate {
        if rate.is_nan() || rate <= 0.0 {
            bail!("--ses-rate must be positive");
        }
        options.mail.account_send_rate = rate;
    }
    if let Some(n) = args.email_concurrency {
        if n == 0 {
            bail!("--email-concurrency must be at least 1");
        }
        options.mail.email_concurrency = n;
    }
    Ok(())
}

pub fn run(args: E2eArgs) -> anyhow::Result<()> {
    if !(args.rate.is_none_or(|r| r > 0.0) && args.seconds.is_none_or(|s| s > 0.0)) {
        bail!("--rate and --seconds must be positive");
    }
    if args.users == 0 {
        bail!("--users must be at least 1");
    }
    // The system logs only warnings and errors here, so the bench's own lines stay readable.
    if std::env::var_os("RUST_LOG").is_none() {
        std::env::set_var("RUST_LOG", "warn");
    }
    fmn_aws::config::apply_local_defaults();
    fmn_aws::telemetry::init();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(async move {
            match args.profile {
                Profile::Steady => bench(args).await,
                Profile::MassRebuild => crate::bench_burst::bench(args).await,
            }
        })
}

/// One published message: when it went to the socket (ms since the epoch), and its delivery
/// record's key.
struct Published {
    at_ms: u64,
    key: String,
}

/// `<kind>-<8 hex digits>` from the clock and the process id: a resource prefix no other run
/// uses.
pub(crate) fn fresh_prefix(kind: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    format!(
        "{kind}-{:08x}",
        (nanos as u64 ^ u64::from(std::process::id())) as u32
    )
}

/// Stops the running system (`running`, told by `shutdown`) and says how it ended, giving it
/// 60 s.
pub(crate) async fn stop_system<E: std::fmt::Display>(
    shutdown: &tokio_util::sync::CancellationToken,
    running: tokio::task::JoinHandle<Result<(), E>>,
) {
    shutdown.cancel();
    match tokio::time::timeout(Duration::from_secs(60), running).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => eprintln!("the system stopped with an error: {e}"),
        Ok(Err(e)) => eprintln!("the system panicked: {e}"),
        Err(_) => eprintln!("the system did not stop within 60 s"),
    }
}

/// Clients for resources under `prefix`, once the emulators answer; every request of the
/// system's components is counted from now on (the bench's own are not).
pub(crate) async fn counted_clients(prefix: &str) -> anyhow::Result<AwsClients> {
    fmn_aws::request_count::enable();
    let clients = AwsClients::with_names(ResourceNames::new(prefix.to_string())).await;
    system::preflight(&clients).await.map_err(|e| {
        anyhow::anyhow!(
            "{e}\n  (`source localstack/env.sh` points the AWS_ENDPOINT_URL* variables at them)"
        )
    })?;
    Ok(clients)
}

async fn bench(args: E2eArgs) -> anyhow::Result<()> {
    let (rate, seconds) = (args.rate.unwrap_or(20.0), args.seconds.unwrap_or(30.0));
    let prefix = args.prefix.clone().unwrap_or_else(|| fresh_prefix("bench"));
    let clients = counted_clients(&prefix).await?;
    let corpus = corpus()?;
    println!(
        "fmn bench e2e: {} msg/s for {} s, {} corpus messages, resources under `{prefix}`",
        rate,
        seconds,
        corpus.len()
    );
    let (_, provisioned) = system::provision_all(&clients, &ProvisionOptions::default()).await?;

    // One user, every message, by e-mail at once.
    let destination =
        Destination::email("email-1", format!("{prefix}@example.org")).confirmed(true);
    let mut user = UserPrefs::new(USER);
    user.destinations = vec![destination.clone()];
    user.filters = vec![Filter::new(
        user.next_id("filter"),
        "everything".into(),
        vec![destination.id.clone()],
        vec![Rule::new(RuleKind::Topic { glob: "*".into() })],
    )];
    PrefsStore::from_clients(&clients)
        .create(&user)
        .await
        .context("creating the bench user")?;

    let publisher = Publisher::bind("tcp://127.0.0.1:*").context("binding the publisher")?;
    let spool = std::env::temp_dir().join(format!("fmn-{prefix}-spool"));
    let mut options = RunOptions::from_env()?;
    bench_options(&mut options, &args, &publisher, &spool)?;
    // One user gets every message: bundled, a batch's would be one mail. The profile measures
    // a mail's own path, so each message is its own (the mass-rebuild profile bundles).
    options.email_burst = 0;
    let publisher = Arc::new(Mutex::new(publisher));
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(system::run(clients.clone(), options, shutdown.clone()));

    let records = Records {
        dynamodb: clients.dynamodb.clone(),
        table: clients.table(TableName::DeliveryRecords),
    };
    let publish = |n: usize| -> anyhow::Result<(String, Published)> {
        let (topic, msg) = &corpus[n % corpus.len()];
        let at_ms = now_ms();
        let (msg_id, _) = publisher
            .lock()
            .unwrap()
            .publish(topic, msg.clone())
            .context("publishing")?;
        let key =
            fmn_aws::delivery_records::Channel::Email.key(&job_id(&msg_id, USER, &destination));
        Ok((msg_id, Published { at_ms, key }))
    };

    // Warm-up: PUB/SUB drops what is published before the subscription arrives (the slow
    // joiner), and the first mail pays for connections and caches. Not measured.
    let started = Instant::now();
    let mut warmups = Vec::new();
    let mut warm = false;
    while !warm {
        if running.is_finished() {
            running.await??;
            bail!("the system stopped during the warm-up");
        }
        if started.elapsed() > Duration::from_secs(120) {
            shutdown.cancel();
            bail!("no warm-up message was delivered within 120 s");
        }
        warmups.push(publish(0)?.1);
        tokio::time::sleep(Duration::from_millis(500)).await;
        warm = !records.sent(&warmups).await?.is_empty();
    }
    // Let the warm-ups still in flight finish, so they do not queue ahead of the measured ones.
    tokio::time::sleep(Duration::from_secs(2)).await;
    println!(
        "warm-up: first delivery after {:.1} s; publishing",
        started.elapsed().as_secs_f64()
    );
    fmn_aws::request_count::take();

    // The steady load, and the latencies read back from the delivery records meanwhile.
    let total = (rate * seconds).round().max(1.0) as usize;
    let mut pending: HashMap<String, Published> = HashMap::new();
    let mut latencies: Vec<f64> = Vec::new();
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let progress_every = Duration::from_secs_f64(args.progress.max(0.5));
    let load_started = Instant::now();
    let mut next_progress = load_started + progress_every;
    let mut next_poll = Instant::now();
    let mut published = 0usize;
    while published < total {
        ticker.tick().await;
        let (msg_id, p) = publish(published)?;
        pending.insert(msg_id, p);
        published += 1;
        if Instant::now() >= next_poll {
            collect(&records, &mut pending, &mut latencies).await?;
            next_poll = Instant::now() + Duration::from_millis(500);
        }
        if Instant::now() >= next_progress {
            println!(
                "{}",
                progress_line(load_started, published, &latencies, pending.len())
            );
            next_progress += progress_every;
        }
    }
    let publish_secs = load_started.elapsed().as_secs_f64();
    let drain_until = Instant::now() + Duration::from_secs_f64(args.drain);
    while !pending.is_empty() && Instant::now() < drain_until {
        if running.is_finished() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        collect(&records, &mut pending, &mut latencies).await?;
        if Instant::now() >= next_progress {
            println!(
                "{}",
                progress_line(load_started, published, &latencies, pending.len())
            );
            next_progress += progress_every;
        }
    }

    let counts = fmn_aws::request_count::take();
    let counted_secs = load_started.elapsed();
    stop_system(&shutdown, running).await;
    if !args.keep {
        cleanup(&clients, &provisioned).await;
    }
    let _ = std::fs::remove_dir_all(&spool);

    print!(
        "{}",
        report(
            rate,
            &args,
            published,
            publish_secs,
            &latencies,
            pending.len()
        )
    );
    let memory_mb = function_memory(&prefix)?;
    let measured = crate::bench_cost::Measured {
        counts: &counts,
        prefix: &prefix,
        messages: published,
        mails: latencies.len(),
        elapsed: counted_secs,
        memory_mb: &memory_mb,
    };
    print!("{}", crate::bench_cost::per_message_table(&measured));
    print!("{}", crate::bench_cost::bill_table(&measured));
    Ok(())
}

/// Each function's `MemorySize` (MB) by binary, from the template.
pub(crate) fn function_memory(
    prefix: &str,
) -> anyhow::Result<std::collections::BTreeMap<String, u32>> {
    Ok(fmn_aws::template::Template::bundled(prefix)?
        .functions
        .iter()
        .map(|f| (f.binary.clone(), f.memory_mb))
        .collect())
}

/// The corpus as `(topic, msg)` pairs.
fn corpus() -> anyhow::Result<Vec<(String, Value)>> {
    let mut out = Vec::new();
    for (n, line) in fmn_ingest_bridge::replay::SAMPLE.lines().enumerate() {
        let v: Value =
            serde_json::from_str(line).with_context(|| format!("corpus line {}", n + 1))?;
        let m = &v["message"];
        if let (Some(topic), Some(msg)) = (m["topic"].as_str(), m.get("msg")) {
            out.push((topic.to_string(), msg.clone()));
        }
    }
    if out.is_empty() {
        bail!("the bundled corpus is empty");
    }
    Ok(out)
}

fn now_ms() -> u64 {
    fmn_aws::delivery_records::now_ms()
}

struct Records {
    dynamodb: aws_sdk_dynamodb::Client,
    table: String,
}

impl Records {
    /// `finished_at` (ms) of every record of `keys` marked `sent`.
    async fn finished(&self, keys: &[&str]) -> anyhow::Result<HashMap<String, u64>> {
        let mut out = HashMap::new();
        for chunk in keys.chunks(100) {
            let mut request: Vec<HashMap<String, AttributeValue>> = chunk
                .iter()
                .map(|k| HashMap::from([("pk".to_string(), AttributeValue::S(k.to_string()))]))
                .collect();
            while !request.is_empty() {
                let got = self
                    .dynamodb
                    .batch_get_item()
                    .request_items(
                        &self.table,
                        KeysAndAttributes::builder()
                            .set_keys(Some(std::mem::take(&mut request)))
                            .projection_expression("pk, #state, finished_at")
                            .expression_attribute_names("#state", "state")
                            .build()?,
                    )
                    .send()
                    .await
                    .map_err(|e| {
                        anyhow::anyhow!(
                            "reading {}: {}",
                            self.table,
                            aws_sdk_dynamodb::error::DisplayErrorContext(&e)
                        )
                    })?;
                for item in got
                    .responses
                    .unwrap_or_default()
                    .remove(&self.table)
                    .into_iter()
                    .flatten()
                {
                    if let Some((pk, finished)) = sent_record(&item) {
                        out.insert(pk, finished);
                    }
                }
                if let Some(rest) = got.unprocessed_keys.and_then(|mut u| u.remove(&self.table)) {
                    request = rest.keys;
                }
            }
        }
        Ok(out)
    }

    /// The keys among `published` whose mail went out.
    async fn sent(&self, published: &[Published]) -> anyhow::Result<Vec<String>> {
        let keys: Vec<&str> = published.iter().map(|p| p.key.as_str()).collect();
        Ok(self.finished(&keys).await?.into_keys().collect())
    }
}

/// Moves the delivered messages of `pending` into `latencies` (seconds).
async fn collect(
    records: &Records,
    pending: &mut HashMap<String, Published>,
    latencies: &mut Vec<f64>,
) -> anyhow::Result<()> {
    if pending.is_empty() {
        return Ok(());
    }
    let keys: Vec<&str> = pending.values().map(|p| p.key.as_str()).collect();
    let finished = records.finished(&keys).await?;
    pending.retain(|_, p| match finished.get(&p.key) {
        Some(at) => {
            latencies.push(at.saturating_sub(p.at_ms) as f64 / 1000.0);
            false
        }
        None => true,
    });
    Ok(())
}

/// The `q` quantile (0..=1) of sorted `values`, nearest rank.
pub(crate) fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

pub(crate) fn sorted(values: &[f64]) -> Vec<f64> {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v
}

pub(crate) fn secs(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.3} s"))
}

fn progress_line(started: Instant, published: usize, latencies: &[f64], pending: usize) -> String {
    let s = sorted(latencies);
    format!(
        "[{:>5.1} s] published {published}, delivered {}, in flight {pending}, p50 {}, p99 {}",
        started.elapsed().as_secs_f64(),
        latencies.len(),
        secs(quantile(&s, 0.50)),
        secs(quantile(&s, 0.99)),
    )
}

fn report(
    rate: f64,
    args: &E2eArgs,
    published: usize,
    publish_secs: f64,
    latencies: &[f64],
    undelivered: usize,
) -> String {
    let s = sorted(latencies);
    let p99 = quantile(&s, 0.99);
    let verdict = match p99 {
        Some(p) if undelivered == 0 && p < TARGET_P99.as_secs_f64() => "met",
        _ => "NOT met",
    };
    format!(
        "\nbus → mail accepted by SES (delivery record `sent`), one immediate e-mail per message\n\
         published        {published} in {publish_secs:.1} s ({:.1} msg/s, asked {})\n\
         delivered        {} of {published}{}\n\
         latency p50      {}\n\
         latency p90      {}\n\
         latency p99      {}\n\
         latency max      {}\n\
         target           p99 < {} s at 20 msg/s: {verdict}\n",
        published as f64 / publish_secs.max(1e-9),
        rate,
        latencies.len(),
        if undelivered > 0 {
            format!(
                " ({undelivered} not delivered within --drain {} s)",
                args.drain
            )
        } else {
            String::new()
        },
        secs(quantile(&s, 0.50)),
        secs(quantile(&s, 0.90)),
        secs(p99),
        secs(s.last().copied()),
        TARGET_P99.as_secs(),
    )
}

/// Deletes the run's queues and tables (best effort).
pub(crate) async fn cleanup(clients: &AwsClients, provisioned: &fmn_aws::provision::Provisioned) {
    for url in provisioned.queue_urls.values() {
        if let Err(e) = clients.sqs.delete_queue().queue_url(url).send().await {
            eprintln!(
                "could not delete {url}: {}",
                aws_sdk_sqs::error::DisplayErrorContext(&e)
            );
        }
    }
    for table in &provisioned.tables {
        if let Err(e) = clients
            .dynamodb
            .delete_table()
            .table_name(table)
            .send()
            .await
        {
            eprintln!(
                "could not delete {table}: {}",
                aws_sdk_dynamodb::error::DisplayErrorContext(&e)
            );
        }
    }
}

/// A delivery record's key and when it was sent (ms, `finished_at`), if it is `sent`.
pub(crate) fn sent_record(
    item: &std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>,
) -> Option<(String, u64)> {
    if item
        .get("state")
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
        != Some("sent")
    {
        return None;
    }
    let finished = item
        .get("finished_at")
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse::<u64>().ok())?;
    Some((item.get("pk")?.as_s().ok()?.clone(), finished))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.5), Some(50.0));
        assert_eq!(quantile(&v, 0.99), Some(99.0));
        assert_eq!(quantile(&v, 1.0), Some(100.0));
        assert_eq!(quantile(&[3.0], 0.99), Some(3.0));
        assert_eq!(quantile(&[], 0.5), None);
    }

    #[test]
    fn the_bundled_corpus_has_topics_and_bodies() {
        let c = corpus().unwrap();
        assert!(c.len() > 400);
        assert!(c.iter().all(|(t, m)| !t.is_empty() && m.is_object()));
    }
}
