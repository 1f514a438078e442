//! What every integration test shares: the emulators (started once, reused when running),
//! clients pointed at them, and a fresh, isolated set of resources per test.
//!
//! Isolation: each `TestEnv` gets its own resource-name prefix, so tests run in parallel
//! against one LocalStack without seeing each other's queues or tables.

use std::path::PathBuf;
use std::sync::Once;
use std::time::Duration;

use fmn_aws::ownership_store::OwnershipStore;
use fmn_aws::provision::{ProvisionOptions, Provisioned};
use fmn_aws::template::Template;
use fmn_aws::{AwsClients, ResourceNames};

pub mod bridge;
pub mod cli;
pub mod dlq;
pub mod faults;
pub mod fedmsg;
pub mod irc;
pub mod kdc;
pub mod lambda;
pub mod mail;
pub mod matrix;
pub mod rabbitmq;
pub mod sqs;
pub mod standins;
pub mod system;
pub mod web;

/// The repository's top directory.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

static INIT: Once = Once::new();

/// The log filter when `RUST_LOG` is unset.
const DEFAULT_LOG_FILTER: &str = "warn,fmn=info";

/// Endpoint defaults, logging, and the emulators: started by `localstack/start.sh` (under a
/// lock, so parallel test processes start them once) unless they already answer.
pub fn init() {
    init_logging(DEFAULT_LOG_FILTER);
}

/// [`init`] with another default log filter: for a test whose own report is what matters and
/// whose thousands of requests would bury it in the captured output (`RUST_LOG` still wins).
/// The first call in a test binary decides.
pub fn init_logging(default_filter: &str) {
    INIT.call_once(|| {
        fmn_aws::config::apply_local_defaults();
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| default_filter.into()),
            )
            .with_test_writer()
            .try_init();
        if !emulators_answer() {
            start_emulators();
        }
    });
}

fn answers(addr: &str) -> bool {
    addr.parse()
        .ok()
        .and_then(|a| std::net::TcpStream::connect_timeout(&a, Duration::from_millis(500)).ok())
        .is_some()
}

fn emulators_answer() -> bool {
    ["127.0.0.1:4566", "127.0.0.1:8000", "127.0.0.1:5055"]
        .iter()
        .all(|a| answers(a))
}

fn start_emulators() {
    let root = repo_root();
    let lock_dir = root.join(".local/run");
    std::fs::create_dir_all(&lock_dir).expect("creating .local/run");
    let status = std::process::Command::new("flock")
        .arg(lock_dir.join("start.lock"))
        .arg(root.join("localstack/start.sh"))
        .current_dir(&root)
        .status()
        .expect("running localstack/start.sh (is util-linux's flock installed?)");
    assert!(
        status.success(),
        "localstack/start.sh failed ({status}); run `make localstack-up` to see why"
    );
}

/// A unique resource-name prefix for one test.
pub fn unique_prefix(test: &str) -> String {
    let short: String = test
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(12)
        .collect();
    format!(
        "t{}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8],
        short.to_lowercase()
    )
}

/// One test's view of the system: clients, the template and the resources made from it.
pub struct TestEnv {
    pub clients: AwsClients,
    pub template: Template,
    pub provisioned: Provisioned,
}

impl TestEnv {
    /// Fresh resources from `infra/template.yaml`, visibility timeout 1 s so failed records
    /// come back quickly.
    pub async fn new(test: &str) -> TestEnv {
        Self::with_options(
            test,
            ProvisionOptions {
                visibility_timeout_secs: Some(1),
            },
        )
        .await
    }

    pub async fn with_options(test: &str, options: ProvisionOptions) -> TestEnv {
        init();
        let names = ResourceNames::new(unique_prefix(test));
        let clients = AwsClients::with_names(names).await;
        let (template, provisioned) = fmn_local::system::provision_all(&clients, &options)
            .await
            .expect("creating the resources of infra/template.yaml");
        TestEnv {
            clients,
            template,
            provisioned,
        }
    }

    pub fn queue_url(&self, queue: fmn_aws::QueueName) -> &str {
        &self.provisioned.queue_urls[queue.logical_id()]
    }

    /// Receives (and deletes) messages of `queue` until `count` arrived or `secs` passed.
    pub async fn drain(
        &self,
        queue: fmn_aws::QueueName,
        count: usize,
        secs: u64,
    ) -> Vec<aws_sdk_sqs::types::Message> {
        let url = self.queue_url(queue);
        sqs::drain(&self.clients.sqs, url, count, Duration::from_secs(secs)).await
    }
}

/// Runs `handler` on `function`'s queue the way Lambda's event source mapping would, until the
/// returned token is cancelled.
pub fn start_function<H: fmn_aws::lambda::SqsBatchHandler>(
    env: &TestEnv,
    function: fmn_aws::FunctionName,
    handler: std::sync::Arc<H>,
) -> (
    tokio_util::sync::CancellationToken,
    std::sync::Arc<fmn_local::stats::FunctionStats>,
) {
    let config = fmn_local::system::mapping_config(&env.template, &env.provisioned, function)
        .expect("the template describes the function's queue");
    let stop = tokio_util::sync::CancellationToken::new();
    let stats = std::sync::Arc::new(fmn_local::stats::FunctionStats::default());
    tokio::spawn(fmn_local::esm::run(
        env.clients.sqs.clone(),
        config,
        handler,
        std::sync::Arc::clone(&stats),
        stop.clone(),
    ));
    (stop, stats)
}

/// The envelope of one message of `tests/data/fedmsg-examples.jsonl`, by its `id`.
pub fn corpus_envelope(id: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(repo_root().join("tests/data/fedmsg-examples.jsonl"))
        .expect("the corpus is in the repository");
    text.lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("corpus lines are JSON"))
        .find(|v| v["id"] == id)
        .map(|v| v["message"].clone())
        .unwrap_or_else(|| panic!("no corpus message {id}"))
}

/// A message of either corpus (`tests/data/fedmsg-examples.jsonl` or
/// `fedora-messaging-examples.jsonl`, by its `id`) as the ingest queue carries it, its body
/// edited by `edit`, under a fresh id; a staging topic is made production's (the match
/// function drops non-production messages before anything else).
pub fn edited_corpus_message(
    id: &str,
    edit: impl FnOnce(&mut serde_json::Value),
) -> serde_json::Value {
    let root = repo_root().join("tests/data");
    for file in ["fedmsg-examples.jsonl", "fedora-messaging-examples.jsonl"] {
        let text =
            std::fs::read_to_string(root.join(file)).expect("the corpus is in the repository");
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).expect("corpus lines are JSON");
            if v["id"] != id {
                continue;
            }
            let (topic, mut body) = match v.get("message") {
                Some(m) => (m["topic"].clone(), m["msg"].clone()),
                None => (v["topic"].clone(), v["body"].clone()),
            };
            edit(&mut body);
            let topic = topic
                .as_str()
                .unwrap_or_default()
                .replace(".stg.", ".prod.");
            return serde_json::json!({
                "topic": topic,
                "msg": body,
                "msg_id": uuid::Uuid::new_v4().to_string(),
                "timestamp": fmn_aws::dynamo::now_secs(),
            });
        }
    }
    panic!("no corpus message {id}")
}

/// A TCP port on 127.0.0.1 that nobody listens on now (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Polls `check` every 100 ms until it returns `Some`; fails naming `what` after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls `done` every 100 ms until it holds; fails naming `what` after `timeout`.
pub async fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    eventually(what, timeout, || std::future::ready(done().then_some(()))).await
}

/// Waits (up to a minute) until a function running under [`start_function`] has handled
/// `count` records.
pub async fn wait_for_records(stats: &fmn_local::stats::FunctionStats, count: u64) {
    let what = format!("{count} handled records");
    wait_until(&what, Duration::from_secs(60), || {
        stats.records.load(std::sync::atomic::Ordering::Relaxed) >= count
    })
    .await
}

/// Imports `tests/data/ownership` (package owners and group members) into the ownership table.
pub async fn import_sample_ownership(clients: &AwsClients) {
    use fmn_core::ownership::{parse_group_members, parse_owner_alias};
    let dir = repo_root().join("tests/data/ownership");
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).expect("sample ownership data");
    let alias = parse_owner_alias(&read("pagure_owner_alias.json")).unwrap();
    let groups = parse_group_members(&read("groups.json")).unwrap();
    OwnershipStore::from_clients(clients)
        .import(Some(&alias.artifacts), Some(&groups), |_, _| {})
        .await
        .unwrap();
}

/// Local-system options whose bridge follows `endpoint` alone: every topic, no metrics
/// server, no idle reconnects, its spool in `dir`; the web-api on a free port.
pub fn options_following(endpoint: String, dir: &std::path::Path) -> fmn_local::system::RunOptions {
    let mut options = fmn_local::system::RunOptions::from_env().expect("local options");
    options.web_addr = ([127, 0, 0, 1], free_port()).into();
    options.bridge.endpoints = vec![endpoint];
    options.bridge.topics.clear();
    options.bridge.metrics_addr = None;
    options.bridge.idle_reconnect = None;
    options.bridge.spool_dir = dir.join("spool");
    // The tests publish the corpus's staging and development messages too.
    options.noise = fmn_core::noise::NoisePolicy::off();
    options
}

/// The preferences the digest function reads back before sending: each job's user, with the
/// job's destination.
pub async fn store_job_owners(env: &TestEnv, jobs: &[fmn_core::jobs::DeliveryJob]) {
    let prefs = fmn_aws::prefs_store::PrefsStore::from_clients(&env.clients);
    let mut users: Vec<fmn_core::prefs::UserPrefs> = Vec::new();
    for j in jobs {
        if !users.iter().any(|u| u.name == j.user) {
            let mut p = fmn_core::prefs::UserPrefs::new(j.user.as_str());
            p.destinations.push(j.destination.clone());
            users.push(p);
        }
    }
    for p in &users {
        prefs.create(p).await.unwrap();
    }
}

/// `user`'s job for `notification` to `destination`, from the filter "My packages" (`filter-1`).
pub fn job_for(
    user: &str,
    destination: fmn_core::prefs::Destination,
    notification: fmn_core::jobs::Notification,
) -> fmn_core::jobs::DeliveryJob {
    fmn_core::jobs::DeliveryJob {
        job_id: fmn_core::jobs::job_id(&notification.msg_id, user, &destination),
        user: user.into(),
        filter_id: "filter-1".into(),
        filter_name: "My packages".into(),
        reason: "package owned".into(),
        reason_code: "own-package".into(),
        destination,
        notification,
    }
}

/// An immediate e-mail job for `user` at `address` about a bodhi comment with id `msg_id`.
pub fn email_job(user: &str, address: &str, msg_id: &str) -> fmn_core::jobs::DeliveryJob {
    let destination = fmn_core::prefs::Destination::email("email-1", address).confirmed(true);
    job_for(user, destination, sample_notification(msg_id))
}

/// A notification of a bodhi comment, with id `msg_id`.
pub fn sample_notification(msg_id: &str) -> fmn_core::jobs::Notification {
    fmn_core::jobs::Notification {
        msg_id: msg_id.into(),
        topic: "org.fedoraproject.prod.bodhi.update.comment".into(),
        app: "bodhi".into(),
        agent: Some("alice".into()),
        title: "bodhi.update.comment".into(),
        subtitle: Some(format!("alice commented on update {msg_id}")),
        link: Some(format!("https://bodhi.fedoraproject.org/updates/{msg_id}")),
        usernames: vec!["alice".into()],
        packages: vec!["foo".into()],
        usernames_total: None,
        packages_total: None,
        timestamp: Some(1.7e9),
        severity: Default::default(),
        origin: Default::default(),
        long_text: None,
    }
}
