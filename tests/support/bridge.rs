//! The ingest-bridge under test: settings for a test run, the bridge in-process or as its real
//! binary, the ingest queue read back as a ledger, and a switchable TCP proxy in front of
//! LocalStack to take SQS away (the shared LocalStack itself is never stopped).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fmn_aws::QueueName;
use fmn_ingest_bridge::encode::MSG_ID_ATTRIBUTE;
use fmn_ingest_bridge::{BridgeConfig, Metrics, Outputs, Summary};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{sqs, TestEnv};

/// How long any one wait in a bridge test may take.
pub const WAIT: Duration = Duration::from_secs(120);

/// Polls `done` every 50 ms until it holds; fails the test after `timeout`.
pub async fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + timeout;
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A fresh directory under the system temp dir.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "fmn-bridge-{name}-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Test settings: the given fedmsg endpoints, a spool in `spool`, no metrics server, fast
/// batches, a short grace period.
pub fn config(endpoints: Vec<String>, spool: &Path) -> BridgeConfig {
    let mut c = BridgeConfig::from_lookup(|_| None).unwrap();
    c.endpoints = endpoints;
    c.spool_dir = spool.to_path_buf();
    c.metrics_addr = None;
    c.idle_reconnect = None;
    c.shutdown_grace = Duration::from_secs(5);
    c.batch_linger = Duration::from_millis(10);
    c
}

/// A bridge running in-process.
pub struct Running {
    pub metrics: Arc<Metrics>,
    stop: CancellationToken,
    task: JoinHandle<Result<Summary, fmn_ingest_bridge::BridgeError>>,
}

impl Running {
    pub async fn stop(self) -> Summary {
        self.stop.cancel();
        tokio::time::timeout(WAIT, self.task)
            .await
            .expect("the bridge stops")
            .expect("bridge task")
            .expect("bridge run")
    }
}

pub fn start(config: BridgeConfig, outputs: Outputs) -> Running {
    let metrics = Arc::new(Metrics::new(&config.source_names()));
    let stop = CancellationToken::new();
    let task = tokio::spawn(fmn_ingest_bridge::run_with(
        config,
        outputs,
        Arc::clone(&metrics),
        stop.clone(),
    ));
    Running {
        metrics,
        stop,
        task,
    }
}

/// The test's own ingest queue and recent-messages table.
pub fn outputs(env: &TestEnv) -> Outputs {
    Outputs {
        sqs: env.clients.sqs.clone(),
        queue_url: env.queue_url(QueueName::Ingest).to_string(),
        dynamodb: env.clients.dynamodb.clone(),
        recent_table: env.clients.table(fmn_aws::TableName::RecentMessages),
    }
}

/// A string message attribute.
pub fn attr(m: &aws_sdk_sqs::types::Message, name: &str) -> Option<String> {
    m.message_attributes
        .as_ref()?
        .get(name)?
        .string_value
        .clone()
}

/// What arrived on the ingest queue: every body by msg_id, and how often each id came.
#[derive(Debug, Default)]
pub struct Ledger {
    pub bodies: HashMap<String, String>,
    pub counts: HashMap<String, usize>,
}

impl Ledger {
    /// Ids that arrived more than once.
    pub fn repeated(&self) -> Vec<&str> {
        let mut ids: Vec<&str> = self
            .counts
            .iter()
            .filter(|(_, n)| **n > 1)
            .map(|(id, _)| id.as_str())
            .collect();
        ids.sort_unstable();
        ids
    }
}

/// Reads the ingest queue until every id of `ids` arrived, then for a few more seconds (so a
/// late repeat is seen too).
pub async fn ledger<'a>(
    env: &TestEnv,
    ids: impl IntoIterator<Item = &'a String>,
    timeout: Duration,
) -> Ledger {
    let ids: Vec<&String> = ids.into_iter().collect();
    let url = env.queue_url(QueueName::Ingest);
    let mut ledger = Ledger::default();
    let deadline = tokio::time::Instant::now() + timeout;
    let read = |ledger: &mut Ledger, batch: Vec<aws_sdk_sqs::types::Message>| {
        for m in batch {
            let id = attr(&m, MSG_ID_ATTRIBUTE).expect("every message carries its msg_id");
            *ledger.counts.entry(id.clone()).or_default() += 1;
            ledger.bodies.insert(id, m.body.unwrap_or_default());
        }
    };
    while !ids.iter().all(|id| ledger.bodies.contains_key(*id)) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out: {} of {} messages arrived",
            ids.iter()
                .filter(|id| ledger.bodies.contains_key(**id))
                .count(),
            ids.len()
        );
        let batch = sqs::drain(&env.clients.sqs, url, 1, Duration::from_secs(2)).await;
        read(&mut ledger, batch);
    }
    let late = sqs::drain(&env.clients.sqs, url, usize::MAX, Duration::from_secs(3)).await;
    read(&mut ledger, late);
    ledger
}

/// Forwards TCP to a target while up; while down, refuses service (closes connections).
pub struct Proxy {
    pub url: String,
    up: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Proxy {
    pub async fn start(target: &str, up: bool) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let flag = Arc::new(AtomicBool::new(up));
        let conns: Arc<Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let (f, c, target) = (Arc::clone(&flag), Arc::clone(&conns), target.to_string());
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                if !f.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let target = target.clone();
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                c.lock().unwrap().push(task.abort_handle());
            }
        });
        Proxy {
            url,
            up: flag,
            conns,
        }
    }

    /// A proxy in front of LocalStack.
    pub async fn localstack(up: bool) -> Proxy {
        let target = std::env::var("AWS_ENDPOINT_URL")
            .ok()
            .and_then(|u| {
                u.strip_prefix("http://")
                    .map(|s| s.trim_end_matches('/').to_string())
            })
            .unwrap_or_else(|| "127.0.0.1:4566".into());
        Self::start(&target, up).await
    }

    pub fn set_up(&self, up: bool) {
        self.up.store(up, Ordering::SeqCst);
        if !up {
            for c in self.conns.lock().unwrap().drain(..) {
                c.abort();
            }
        }
    }

    /// The test's outputs with SQS reached through this proxy.
    pub fn outputs(&self, env: &TestEnv) -> Outputs {
        let conf = env
            .clients
            .sqs
            .config()
            .to_builder()
            .endpoint_url(&self.url)
            .build();
        Outputs {
            sqs: aws_sdk_sqs::Client::from_conf(conf),
            ..outputs(env)
        }
    }
}

/// The real `fmn-ingest-bridge` binary, built by `cargo build --workspace --bins` (which
/// `make test` runs first) next to the test executables.
pub fn bridge_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps");
    let bin = dir.join("fmn-ingest-bridge");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p fmn-ingest-bridge --bins` first (make test does)",
        bin.display()
    );
    bin
}
