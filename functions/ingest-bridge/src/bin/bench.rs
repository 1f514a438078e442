//! `fmn-bridge-bench`: how fast the bridge forwards into (LocalStack) SQS, and in how much
//! memory, for each bus in the same run. Runs the real `fmn-ingest-bridge` binary (built beside
//! this one) as a child process. Rate: a burst of N messages (fedmsg: published at once from a
//! local PUB socket while the bridge runs; fedora-messaging: N waiting in the durable queue when
//! the bridge starts, a backlog as after a restart, acknowledged only once SQS took each), from
//! the start to the last SQS `SentTimestamp`. Latency: a steady 500 messages/s for 4 s,
//! publish -> accepted by SQS, p50/p99. Also the bridge's RSS and CPU per 1,000 messages, and
//! how busy the machine was. Then it times LocalStack alone with the
//! bridge's call shape (batches of 10, 8 calls in flight): when the bridge comes close to that
//! ceiling, LocalStack is the limit, not the bridge.
//!
//!   cargo build --release -p fmn-ingest-bridge --bins
//!   target/release/fmn-bridge-bench [N] [--runs R] [--amqp-url URL --amqp-ca PEM --amqp-cert PEM --amqp-key PEM]
//!
//! (default N 20000; the emulators must be running; `make bench-bridge` starts a broker too.)

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use aws_sdk_sqs::types::{MessageSystemAttributeName, SendMessageBatchRequestEntry};
use fmn_aws::provision::{provision, ProvisionOptions};
use fmn_aws::template::Template;
use fmn_aws::{AwsClients, QueueName, ResourceNames};
use fmn_ingest_bridge::amqp_publisher::{AmqpPublisher, OutgoingMessage};
use fmn_ingest_bridge::config::AmqpConfig;
use fmn_ingest_bridge::publisher::Publisher;
use serde_json::json;
use tokio::sync::Mutex;

const TOPIC: &str = "org.fedoraproject.dev.fmnbench.load";

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

/// CPU seconds a process has used (user + system).
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at its closing parenthesis.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// The machine's (busy, total) CPU ticks so far, from `/proc/stat`.
fn machine_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let values: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let total: u64 = values.iter().take(8).sum();
    let idle = values.get(3).copied().unwrap_or(0) + values.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

fn proc_status(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// The bus the bench publishes on.
enum Bus {
    Fedmsg(Publisher),
    Amqp(Box<(AmqpPublisher, AmqpConfig)>),
}

impl Bus {
    fn name(&self) -> &'static str {
        match self {
            Bus::Fedmsg(_) => "fedmsg (ZeroMQ)",
            Bus::Amqp(_) => "fedora-messaging (AMQP)",
        }
    }

    /// The bridge's settings for this bus.
    fn env(&self) -> Vec<(&'static str, String)> {
        match self {
            Bus::Fedmsg(p) => vec![("FMN_FEDMSG_ENDPOINTS", p.endpoint().to_string())],
            Bus::Amqp(amqp) => {
                let c = &amqp.1;
                let mut env = vec![
                    ("FMN_AMQP_URL", c.url.clone()),
                    ("FMN_AMQP_QUEUE", c.queue.clone()),
                ];
                if let Some(ca) = &c.ca_file {
                    env.push(("FMN_AMQP_CA", ca.display().to_string()));
                }
                if let Some((cert, key)) = &c.client_cert {
                    env.push(("FMN_AMQP_CERT", cert.display().to_string()));
                    env.push(("FMN_AMQP_KEY", key.display().to_string()));
                }
                env
            }
        }
    }

    async fn publish(&mut self, bodies: Vec<serde_json::Value>) -> anyhow::Result<()> {
        match self {
            Bus::Fedmsg(p) => {
                for body in bodies {
                    p.publish(TOPIC, body)?;
                }
            }
            Bus::Amqp(amqp) => {
                let p = &amqp.0;
                let messages: Vec<OutgoingMessage> = bodies
                    .into_iter()
                    .map(|body| OutgoingMessage {
                        id: uuid::Uuid::new_v4().to_string(),
                        topic: TOPIC.into(),
                        headers: serde_json::Map::new(),
                        body,
                    })
                    .collect();
                p.publish_all(&messages, 1000).await?;
            }
        }
        Ok(())
    }
}

/// What one run measured.
#[derive(Clone, Copy)]
struct Figures {
    bus: &'static str,
    forwarded: usize,
    rate: f64,
    /// Steady-phase latency, ms.
    p50: u64,
    p99: u64,
    max: u64,
    rss_idle_kib: u64,
    rss_peak_kib: u64,
    /// The bridge's CPU time per 1,000 messages, milliseconds.
    bridge_cpu_ms_per_1k: f64,
    /// How busy the whole machine was during the run (all cores), percent.
    machine_busy: f64,
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    fmn_aws::config::apply_local_defaults();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: usize = args
        .first()
        .filter(|a| !a.starts_with("--"))
        .map(|a| a.parse())
        .transpose()
        .context("N must be a number")?
        .unwrap_or(20_000);
    let mut buses = vec![Bus::Fedmsg(Publisher::bind("tcp://127.0.0.1:*")?)];
    if let Some(url) = arg(&args, "--amqp-url") {
        let config = AmqpConfig {
            url,
            queue: format!("fmn-bench-{}", uuid::Uuid::new_v4()),
            exchange: "amq.topic".into(),
            bindings: vec!["#".into()],
            prefetch: 1000,
            passive: false,
            ca_file: arg(&args, "--amqp-ca").map(Into::into),
            client_cert: arg(&args, "--amqp-cert")
                .zip(arg(&args, "--amqp-key"))
                .map(|(c, k)| (c.into(), k.into())),
        };
        let publisher = AmqpPublisher::connect(&config)
            .await
            .context("connecting the AMQP publisher")?;
        buses.push(Bus::Amqp(Box::new((publisher, config))));
    }
    let runs: usize = arg(&args, "--runs")
        .map(|r| r.parse())
        .transpose()
        .context("--runs must be a number")?
        .unwrap_or(3)
        .max(1);
    // Alternate the buses, several runs each: on a small machine shared with the emulators
    // (and the broker) one run is noisy; the median is the figure.
    let mut all: Vec<Figures> = Vec::new();
    let mut ceilings = Vec::new();
    for r in 0..runs {
        for bus in &mut buses {
            eprintln!("run {}/{runs}", r + 1);
            all.push(run(bus, n).await?);
        }
        ceilings.push(localstack_ceiling(n).await?);
    }
    ceilings.sort_by(f64::total_cmp);
    let ceiling = ceilings[ceilings.len() / 2];
    println!("\nfmn-bridge-bench: {n} messages per bus and run, {runs} runs, into LocalStack SQS");
    println!("every run:");
    print_table(&all);
    let mut figures = Vec::new();
    for bus in &buses {
        let mut of_bus: Vec<&Figures> = all.iter().filter(|f| f.bus == bus.name()).collect();
        of_bus.sort_by(|a, b| a.rate.total_cmp(&b.rate));
        let median = of_bus[of_bus.len() / 2];
        figures.push(Figures {
            rss_peak_kib: of_bus.iter().map(|f| f.rss_peak_kib).max().unwrap_or(0),
            ..*median
        });
    }
    println!("median run of each bus (RSS peak: the highest of all runs):");
    print_table(&figures);
    if let [fedmsg, amqp] = figures.as_slice() {
        println!(
            "AMQP / fedmsg rate: {:.0}%",
            100.0 * amqp.rate / fedmsg.rate.max(0.001)
        );
    }
    println!(
        "LocalStack alone (SendMessageBatch of 10, 8 in flight, no bridge; median of {runs}): {ceiling:.0} messages/s"
    );
    for f in &figures {
        println!(
            "{}: {:.0}% of LocalStack's own rate -> {}",
            f.bus,
            100.0 * f.rate / ceiling.max(0.001),
            if f.rate >= 0.8 * ceiling {
                "LocalStack is the limit"
            } else {
                "the bridge (or the bus) is the limit"
            }
        );
    }
    for f in &all {
        if f.forwarded < n {
            bail!("{}: only {} of {n} messages arrived", f.bus, f.forwarded);
        }
    }
    Ok(())
}

fn print_table(figures: &[Figures]) {
    println!(
        "{:<26} {:>10} {:>12} {:>9} {:>9} {:>9} {:>10} {:>10} {:>14} {:>13}",
        "bus",
        "forwarded",
        "messages/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "RSS idle",
        "RSS peak",
        "bridge CPU/1k",
        "machine busy"
    );
    for f in figures {
        println!(
            "{:<26} {:>10} {:>12.0} {:>9} {:>9} {:>9} {:>7.1} MiB {:>7.1} MiB {:>11.0} ms {:>12.0}%",
            f.bus,
            f.forwarded,
            f.rate,
            f.p50,
            f.p99,
            f.max,
            f.rss_idle_kib as f64 / 1024.0,
            f.rss_peak_kib as f64 / 1024.0,
            f.bridge_cpu_ms_per_1k,
            f.machine_busy
        );
    }
}

/// Fresh queues and tables for one run.
async fn fresh_resources() -> anyhow::Result<(AwsClients, Template, String, String)> {
    let prefix = format!("bench-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let clients = AwsClients::with_names(ResourceNames::new(prefix.clone())).await;
    let template = Template::bundled(&prefix)?;
    provision(&clients, &template, &ProvisionOptions::default())
        .await
        .context("creating the bench's queues and tables (are the emulators running?)")?;
    let url = clients.queue_url(QueueName::Ingest).await?;
    Ok((clients, template, url, prefix))
}

async fn remove_resources(clients: &AwsClients, template: &Template) {
    for queue in QueueName::ALL {
        if let Ok(u) = clients.queue_url(queue).await {
            let _ = clients.sqs.delete_queue().queue_url(u).send().await;
        }
    }
    for table in &template.tables {
        let _ = clients
            .dynamodb
            .delete_table()
            .table_name(&table.name)
            .send()
            .await;
    }
}

/// LocalStack's own SendMessageBatch rate with the bridge's call shape.
async fn localstack_ceiling(n: usize) -> anyhow::Result<f64> {
    let (clients, template, url, _) = fresh_resources().await?;
    let body =
        json!({"topic": TOPIC, "msg": {"k": 0, "published_ms": 0}, "msg_id": "x"}).to_string();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (sqs, url, body, next) = (clients.sqs.clone(), url.clone(), body.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            while next.fetch_add(10, std::sync::atomic::Ordering::Relaxed) < n {
                let entries = (0..10)
                    .map(|i| {
                        SendMessageBatchRequestEntry::builder()
                            .id(i.to_string())
                            .message_body(&body)
                            .build()
                            .expect("id and body")
                    })
                    .collect();
                let _ = sqs
                    .send_message_batch()
                    .queue_url(&url)
                    .set_entries(Some(entries))
                    .send()
                    .await;
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let rate = n as f64 / started.elapsed().as_secs_f64();
    remove_resources(&clients, &template).await;
    Ok(rate)
}

/// Messages per second of the steady phase, and how many: the latency is measured at a
/// rate the bridge keeps up with, not while it works off a burst.
const STEADY_RATE: usize = 500;
const STEADY_MESSAGES: usize = 2_000;

/// The bridge as a child process.
struct Child {
    process: tokio::process::Child,
    pid: u32,
}

impl Child {
    fn spawn(bus: &Bus, prefix: &str, spool: &std::path::Path) -> anyhow::Result<Child> {
        let exe = std::env::current_exe()?.with_file_name("fmn-ingest-bridge");
        if !exe.exists() {
            bail!("{} not found: build it with --bins", exe.display());
        }
        let process = tokio::process::Command::new(&exe)
            .env("FMN_RESOURCE_PREFIX", prefix)
            .envs(bus.env())
            .env("FMN_SPOOL_DIR", spool)
            .env("FMN_BRIDGE_METRICS_ADDR", "off")
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", exe.display()))?;
        let pid = process.id().context("bridge pid")?;
        Ok(Child { process, pid })
    }

    /// SIGTERM (it flushes and acknowledges), then wait.
    async fn stop(&mut self) {
        let _ = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(self.pid.to_string())
            .status();
        let _ = tokio::time::timeout(Duration::from_secs(30), self.process.wait()).await;
    }
}

async fn queue_depth(clients: &AwsClients, url: &str) -> usize {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    clients
        .sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(A::ApproximateNumberOfMessages)
        .send()
        .await
        .ok()
        .and_then(|o| o.attributes)
        .and_then(|a| {
            a.get(&A::ApproximateNumberOfMessages)
                .and_then(|v| v.parse::<usize>().ok())
        })
        .unwrap_or(0)
}

/// What the queue held: (distinct messages, the last `SentTimestamp`, each message's
/// publish-to-SQS latency in ms).
async fn read_back(clients: &AwsClients, url: &str, n: usize) -> (usize, u64, Vec<u64>) {
    let stop_at = Instant::now() + Duration::from_secs(300);
    let seen: Arc<Mutex<HashSet<String>>> = Arc::default();
    let latencies: Arc<Mutex<Vec<u64>>> = Arc::default();
    let last_sent: Arc<Mutex<u64>> = Arc::default();
    let mut readers = Vec::new();
    for _ in 0..8 {
        let (sqs, url) = (clients.sqs.clone(), url.to_string());
        let (seen, latencies, last_sent) = (seen.clone(), latencies.clone(), last_sent.clone());
        readers.push(tokio::spawn(async move {
            while seen.lock().await.len() < n && Instant::now() < stop_at {
                let Ok(out) = sqs
                    .receive_message()
                    .queue_url(&url)
                    .max_number_of_messages(10)
                    .wait_time_seconds(1)
                    .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
                    .send()
                    .await
                else {
                    continue;
                };
                for m in out.messages.unwrap_or_default() {
                    let _ = sqs
                        .delete_message()
                        .queue_url(&url)
                        .receipt_handle(m.receipt_handle.clone().unwrap_or_default())
                        .send()
                        .await;
                    let body: serde_json::Value =
                        serde_json::from_str(m.body.as_deref().unwrap_or("{}")).unwrap_or_default();
                    let Some(published) = body["msg"]["published_ms"].as_u64() else {
                        continue;
                    };
                    let sent = m
                        .attributes
                        .as_ref()
                        .and_then(|a| a.get(&MessageSystemAttributeName::SentTimestamp))
                        .and_then(|v| v.parse::<u64>().ok())
                        .unwrap_or_else(now_ms);
                    let id = body["msg_id"].as_str().unwrap_or_default().to_string();
                    if seen.lock().await.insert(id) {
                        latencies.lock().await.push(sent.saturating_sub(published));
                        let mut l = last_sent.lock().await;
                        *l = (*l).max(sent);
                    }
                }
            }
        }));
    }
    for r in readers {
        let _ = r.await;
    }
    let got = seen.lock().await.len();
    let last = *last_sent.lock().await;
    let mut lat = latencies.lock().await.clone();
    lat.sort_unstable();
    (got, last, lat)
}

/// One bus: a burst of `n` (fedmsg: published at once while the bridge runs; AMQP: waiting in
/// the durable queue when the bridge starts, a backlog as after a restart) for the rate, then
/// a steady stream for the latency.
async fn run(bus: &mut Bus, n: usize) -> anyhow::Result<Figures> {
    let (clients, template, url, prefix) = fresh_resources().await?;
    let spool = std::env::temp_dir().join(format!("fmn-bridge-bench-{prefix}"));
    let mut bridge = Child::spawn(bus, &prefix, &spool)?;
    eprintln!("{}: bridge started, warming up", bus.name());

    // Slow joiner (fedmsg) or queue not declared yet (AMQP): publish warm-ups until one comes
    // out of the queue.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if Instant::now() > deadline {
            bail!("the bridge forwarded nothing within 60 s");
        }
        bus.publish(vec![json!({"warmup": true})]).await?;
        let out = clients
            .sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await?;
        if !out.messages.unwrap_or_default().is_empty() {
            break;
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    clients.sqs.purge_queue().queue_url(&url).send().await.ok();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_before = proc_status(bridge.pid, "VmRSS:").unwrap_or(0);

    let bodies = |count: usize| -> Vec<serde_json::Value> {
        (0..count)
            .map(|k| json!({"k": k, "published_ms": now_ms()}))
            .collect()
    };
    let backlog = matches!(bus, Bus::Amqp(_));
    if backlog {
        bridge.stop().await;
        bus.publish(bodies(n)).await?;
        eprintln!("{}: {n} waiting in the broker's queue", bus.name());
    }
    let started_ms = now_ms();
    if backlog {
        bridge = Child::spawn(bus, &prefix, &spool)?;
    }
    let pid = bridge.pid;
    let cpu_before = cpu_secs(pid);
    let machine_before = machine_ticks();
    // Sample the bridge's memory meanwhile.
    let sampling = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let peak = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let sampler = {
        let (sampling, peak) = (sampling.clone(), peak.clone());
        tokio::spawn(async move {
            while sampling.load(std::sync::atomic::Ordering::Relaxed) {
                peak.fetch_max(
                    proc_status(pid, "VmRSS:").unwrap_or(0),
                    std::sync::atomic::Ordering::Relaxed,
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    if !backlog {
        bus.publish(bodies(n)).await?;
    }
    // Wait until SQS holds them all (reading meanwhile would load LocalStack and slow the
    // bridge down); SentTimestamp tells when each was accepted.
    let stop_at = Instant::now() + Duration::from_secs(300);
    while queue_depth(&clients, &url).await < n && Instant::now() < stop_at {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let bridge_cpu = cpu_secs(pid) - cpu_before;
    let machine_after = machine_ticks();
    let (got, last, _) = read_back(&clients, &url, n).await;

    // Steady: STEADY_RATE a second, in tenths of a second.
    eprintln!("{}: steady phase, {STEADY_RATE}/s", bus.name());
    let tick = Duration::from_millis(100);
    let mut next = Instant::now();
    for _ in 0..STEADY_MESSAGES / (STEADY_RATE / 10) {
        bus.publish(bodies(STEADY_RATE / 10)).await?;
        next += tick;
        tokio::time::sleep_until(next.into()).await;
    }
    let (steady_got, _, lat) = read_back(&clients, &url, STEADY_MESSAGES).await;
    sampling.store(false, std::sync::atomic::Ordering::Relaxed);
    let _ = sampler.await;
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };

    bridge.stop().await;
    remove_resources(&clients, &template).await;
    let _ = std::fs::remove_dir_all(&spool);
    if steady_got < STEADY_MESSAGES {
        bail!(
            "{}: only {steady_got} of {STEADY_MESSAGES} steady messages arrived",
            bus.name()
        );
    }
    let secs = last.saturating_sub(started_ms) as f64 / 1000.0;
    Ok(Figures {
        bus: bus.name(),
        forwarded: got,
        rate: got as f64 / secs.max(0.001),
        p50: pct(0.50),
        p99: pct(0.99),
        max: lat.last().copied().unwrap_or(0),
        rss_idle_kib: rss_before,
        rss_peak_kib: peak
            .load(std::sync::atomic::Ordering::Relaxed)
            .max(rss_before),
        bridge_cpu_ms_per_1k: 1e6 * bridge_cpu / got.max(1) as f64,
        machine_busy: 100.0 * (machine_after.0 - machine_before.0) as f64
            / (machine_after.1 - machine_before.1).max(1) as f64,
    })
}
