//! `fmn-bridge-bench`: how fast the bridge forwards into (LocalStack) SQS, and in how much
//! memory, for each bus in the same run. Runs the real `fmn-ingest-bridge` binary (built beside
//! this one) as a child process, publishes N messages to it as fast as possible (fedmsg: from a
//! local PUB socket; fedora-messaging: through a RabbitMQ broker, with publisher confirms, the
//! bridge acknowledging each only once SQS took it), reads them back from a fresh ingest queue,
//! and reports forwarded messages/s, latency (publish -> accepted by SQS, from SQS's
//! `SentTimestamp`) p50/p99, and the bridge's RSS. Then it times LocalStack alone with the
//! bridge's call shape (batches of 10, 8 calls in flight): when the bridge comes close to that
//! ceiling, LocalStack is the limit, not the bridge.
//!
//!   cargo build --release -p fmn-ingest-bridge --bins
//!   target/release/fmn-bridge-bench [N] [--amqp-url URL --amqp-ca PEM --amqp-cert PEM --amqp-key PEM]
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
struct Figures {
    bus: &'static str,
    forwarded: usize,
    rate: f64,
    p50: u64,
    p99: u64,
    max: u64,
    rss_idle_kib: u64,
    rss_peak_kib: u64,
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
            prefetch: 500,
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
    let mut figures = Vec::new();
    for bus in &mut buses {
        figures.push(run(bus, n).await?);
    }
    let ceiling = localstack_ceiling(n).await?;

    println!("\nfmn-bridge-bench: {n} messages per bus, into LocalStack SQS");
    println!(
        "{:<26} {:>10} {:>12} {:>9} {:>9} {:>9} {:>10} {:>10}",
        "bus", "forwarded", "messages/s", "p50 ms", "p99 ms", "max ms", "RSS idle", "RSS peak"
    );
    for f in &figures {
        println!(
            "{:<26} {:>10} {:>12.0} {:>9} {:>9} {:>9} {:>7.1} MiB {:>7.1} MiB",
            f.bus,
            f.forwarded,
            f.rate,
            f.p50,
            f.p99,
            f.max,
            f.rss_idle_kib as f64 / 1024.0,
            f.rss_peak_kib as f64 / 1024.0
        );
    }
    if let [fedmsg, amqp] = figures.as_slice() {
        println!(
            "AMQP / fedmsg rate: {:.0}%",
            100.0 * amqp.rate / fedmsg.rate.max(0.001)
        );
    }
    println!(
        "LocalStack alone (SendMessageBatch of 10, 8 in flight, no bridge): {ceiling:.0} messages/s"
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
    for f in &figures {
        if f.forwarded < n {
            bail!("{}: only {} of {n} messages arrived", f.bus, f.forwarded);
        }
    }
    Ok(())
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

async fn run(bus: &mut Bus, n: usize) -> anyhow::Result<Figures> {
    let (clients, template, url, prefix) = fresh_resources().await?;
    let spool = std::env::temp_dir().join(format!("fmn-bridge-bench-{prefix}"));
    let exe = std::env::current_exe()?.with_file_name("fmn-ingest-bridge");
    if !exe.exists() {
        bail!("{} not found: build it with --bins", exe.display());
    }
    let mut bridge = tokio::process::Command::new(&exe)
        .env("FMN_RESOURCE_PREFIX", &prefix)
        .envs(bus.env())
        .env("FMN_SPOOL_DIR", &spool)
        .env("FMN_BRIDGE_METRICS_ADDR", "off")
        .env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", exe.display()))?;
    let pid = bridge.id().context("bridge pid")?;
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
    let rss_before = proc_status(pid, "VmRSS:").unwrap_or(0);

    let seen: Arc<Mutex<HashSet<String>>> = Arc::default();
    let latencies: Arc<Mutex<Vec<u64>>> = Arc::default();
    let last_sent: Arc<Mutex<u64>> = Arc::default();
    let started_ms = now_ms();
    let started = Instant::now();
    // Sample the bridge's memory while publishing.
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
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        let bodies = chunk
            .iter()
            .map(|k| json!({"k": k, "published_ms": now_ms()}))
            .collect();
        bus.publish(bodies).await?;
    }
    let publish_secs = started.elapsed().as_secs_f64();
    eprintln!("{}: {n} published in {publish_secs:.2} s", bus.name());
    // Wait until SQS holds them all (reading meanwhile would load LocalStack and slow the
    // bridge down); SentTimestamp tells when each was accepted.
    let stop_at = Instant::now() + Duration::from_secs(300);
    loop {
        let depth = clients
            .sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await
            .ok()
            .and_then(|o| o.attributes)
            .and_then(|a| {
                a.get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
                    .and_then(|v| v.parse::<usize>().ok())
            })
            .unwrap_or(0);
        if depth >= n || Instant::now() > stop_at {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    sampling.store(false, std::sync::atomic::Ordering::Relaxed);
    let _ = sampler.await;
    let mut readers = Vec::new();
    for _ in 0..8 {
        let (sqs, url) = (clients.sqs.clone(), url.clone());
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
    let hwm = proc_status(pid, "VmHWM:").unwrap_or(0);
    let got = seen.lock().await.len();
    let last = *last_sent.lock().await;
    let mut lat = latencies.lock().await.clone();
    lat.sort_unstable();
    let pct = |p: f64| lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)));

    // Stop the bridge (SIGTERM: it flushes) and remove the bench's resources.
    let _ = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status();
    let _ = tokio::time::timeout(Duration::from_secs(20), bridge.wait()).await;
    remove_resources(&clients, &template).await;
    let _ = std::fs::remove_dir_all(&spool);

    let secs = last.saturating_sub(started_ms) as f64 / 1000.0;
    let _ = hwm;
    Ok(Figures {
        bus: bus.name(),
        forwarded: got,
        rate: got as f64 / secs.max(0.001),
        p50: pct(0.50).copied().unwrap_or(0),
        p99: pct(0.99).copied().unwrap_or(0),
        max: lat.last().copied().unwrap_or(0),
        rss_idle_kib: rss_before,
        rss_peak_kib: peak
            .load(std::sync::atomic::Ordering::Relaxed)
            .max(hwm.min(peak.load(std::sync::atomic::Ordering::Relaxed).max(1)))
            .max(rss_before),
    })
}
