//! `fmn-bridge-bench`: how fast the bridge forwards into (LocalStack) SQS, and in how much
//! memory. Runs the real `fmn-ingest-bridge` binary (built beside this one) as a child process,
//! publishes N fedmsg messages to it as fast as possible from a local PUB socket, reads them
//! back from a fresh ingest queue, and reports forwarded messages/s, end-to-end latency
//! (publish → accepted by SQS, from SQS's `SentTimestamp`) p50/p99, and the bridge's peak RSS.
//!
//!   cargo build --release -p fmn-ingest-bridge --bins
//!   target/release/fmn-bridge-bench [N]        (default 20000; the emulators must be running)

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use aws_sdk_sqs::types::MessageSystemAttributeName;
use fmn_aws::provision::{provision, ProvisionOptions};
use fmn_aws::template::Template;
use fmn_aws::{AwsClients, QueueName, ResourceNames};
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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    fmn_aws::config::apply_local_defaults();
    let n: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()
        .context("N must be a number")?
        .unwrap_or(20_000);
    let prefix = format!("bench-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let clients = AwsClients::with_names(ResourceNames::new(prefix.clone())).await;
    let template = Template::bundled(&prefix)?;
    provision(&clients, &template, &ProvisionOptions::default())
        .await
        .context("creating the bench's queues and tables (are the emulators running?)")?;
    let url = clients.queue_url(QueueName::Ingest).await?;

    let mut publisher = Publisher::bind("tcp://127.0.0.1:*")?;
    let spool = std::env::temp_dir().join(format!("fmn-bridge-bench-{prefix}"));
    let exe = std::env::current_exe()?.with_file_name("fmn-ingest-bridge");
    if !exe.exists() {
        bail!("{} not found: build it with --bins", exe.display());
    }
    let mut bridge = tokio::process::Command::new(&exe)
        .env("FMN_RESOURCE_PREFIX", &prefix)
        .env("FMN_FEDMSG_ENDPOINTS", publisher.endpoint())
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

    // Slow joiner: publish warm-ups until one comes out of the queue.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if Instant::now() > deadline {
            bail!("the bridge forwarded nothing within 60 s");
        }
        publisher.publish(TOPIC, json!({"warmup": true}))?;
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
    for k in 0..n {
        publisher.publish(TOPIC, json!({"k": k, "published_ms": now_ms()}))?;
    }
    let publish_secs = started.elapsed().as_secs_f64();
    // Wait until SQS holds them all (reading meanwhile would load LocalStack and slow the
    // bridge down); SentTimestamp tells when each was accepted.
    let stop_at = Instant::now() + Duration::from_secs(300);
    let mut peak_rss = 0;
    loop {
        peak_rss = peak_rss.max(proc_status(pid, "VmRSS:").unwrap_or(0));
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
    let _ = std::fs::remove_dir_all(&spool);

    let secs = last.saturating_sub(started_ms) as f64 / 1000.0;
    println!("fmn-bridge-bench: {n} messages published in {publish_secs:.2} s");
    println!(
        "forwarded: {got}/{n} in {secs:.2} s = {:.0} messages/s into SQS",
        got as f64 / secs.max(0.001)
    );
    println!(
        "end-to-end latency (publish -> accepted by SQS): p50 {} ms, p99 {} ms, max {} ms",
        pct(0.50).copied().unwrap_or(0),
        pct(0.99).copied().unwrap_or(0),
        lat.last().copied().unwrap_or(0)
    );
    println!(
        "bridge memory: RSS {} MiB idle, {:.1} MiB peak during the run (VmHWM {:.1} MiB)",
        rss_before / 1024,
        peak_rss as f64 / 1024.0,
        hwm as f64 / 1024.0
    );
    if got < n {
        bail!("only {got} of {n} messages arrived");
    }
    Ok(())
}
