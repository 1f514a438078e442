//! The ingest-bridge on fedora-messaging against real peers: a RabbitMQ broker set up like
//! Fedora's public one (TLS with a client certificate, SASL EXTERNAL, a CA bundle holding two
//! CAs), the real Python `fedora-messaging` library publishing the corpus through its own
//! `publish`, a Rust publisher for load, the bridge forwarding into LocalStack SQS and the test
//! reading the queue back as a ledger: every message published accounted for, none lost.

use std::collections::HashSet;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use fmn_core::message::{Envelope, Origin};
use fmn_ingest_bridge::amqp_publisher::{load_messages, AmqpPublisher, OutgoingMessage};
use fmn_ingest_bridge::config::AmqpConfig;
use fmn_ingest_bridge::publisher::Publisher;
use fmn_ingest_bridge::validate::InvalidReason;
use fmn_ingest_bridge::BridgeConfig;
use fmn_integration_tests::bridge::{
    bridge_binary, config, ledger, outputs, start, temp_dir, wait_for, Proxy, WAIT,
};
use fmn_integration_tests::rabbitmq::RabbitMq;
use fmn_integration_tests::{repo_root, TestEnv};
use serde_json::{json, Value};

const TOPIC: &str = "org.fedoraproject.dev.fmntest.amqp.load";

/// The bridge's AMQP settings for `broker`: TLS with the client certificate (EXTERNAL).
fn amqp_config(broker: &RabbitMq, queue: &str) -> AmqpConfig {
    broker.bridge_config(queue, 100)
}

/// Bridge settings with only the AMQP source.
fn bridge_config(broker: &RabbitMq, queue: &str, spool: &std::path::Path) -> BridgeConfig {
    let mut c = config(Vec::new(), spool);
    c.amqp = Some(amqp_config(broker, queue));
    c
}

fn queue_name() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Waits until the bridge consumes from `queue` (so what is published now is routed to it).
async fn wait_consuming(broker: &RabbitMq, queue: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if broker.queue_stats(queue).is_some_and(|s| s.consumers >= 1) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the bridge never consumed from {queue}; broker log: {}",
            broker.log_file().display()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn publish(broker: &RabbitMq, messages: &[OutgoingMessage]) {
    let config = AmqpConfig {
        prefetch: 1,
        ..amqp_config(broker, "unused")
    };
    let publisher = AmqpPublisher::connect(&config).await.expect("publisher");
    publisher
        .publish_all(messages, 200)
        .await
        .expect("the broker confirms every message");
    publisher.close().await;
}

fn corpus_lines() -> Vec<Value> {
    std::fs::read_to_string(repo_root().join("tests/data/fedora-messaging-examples.jsonl"))
        .expect("the fedora-messaging corpus")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_corpus_published_by_fedora_messaging_arrives_once_each() {
    let env = TestEnv::new("amqpcorpus").await;
    let broker = RabbitMq::start();
    let queue = queue_name();
    let dir = temp_dir("amqp-corpus");
    let bridge = start(
        bridge_config(&broker, &queue, &dir.join("spool")),
        outputs(&env),
    );
    wait_consuming(&broker, &queue).await;

    let corpus = dir.join("corpus.jsonl");
    std::fs::copy(
        repo_root().join("tests/data/fedora-messaging-examples.jsonl"),
        &corpus,
    )
    .unwrap();
    let published = broker
        .publish_with_fedora_messaging(&corpus)
        .expect("the fedora-messaging library publishes the corpus");
    let lines = corpus_lines();
    assert_eq!(published.len(), lines.len());
    let ids: Vec<String> = lines
        .iter()
        .map(|l| l["id"].as_str().unwrap().to_owned())
        .collect();

    let ledger = ledger(&env, &ids, WAIT).await;
    assert!(ledger.repeated().is_empty(), "{:?}", ledger.repeated());
    assert_eq!(ledger.bodies.len(), ids.len(), "nothing else arrived");
    for line in &lines {
        let id = line["id"].as_str().unwrap();
        let env = Envelope::from_json(&ledger.bodies[id]).expect("an envelope");
        assert_eq!(env.origin(), Origin::FedoraMessaging);
        assert_eq!(env.msg_id(), id);
        assert_eq!(env.topic().as_str(), line["topic"].as_str().unwrap());
        assert_eq!(env.body(), &line["body"], "{id}: the body as published");
        let headers = env.headers.as_ref().expect("headers kept");
        assert_eq!(
            headers["fedora_messaging_schema"], line["headers"]["fedora_messaging_schema"],
            "{id}"
        );
        // Every user/artifact flag the library set arrives.
        for (k, v) in line["headers"].as_object().unwrap() {
            if k.starts_with("fedora_messaging_user_") || k.starts_with("fedora_messaging_rpm_") {
                assert_eq!(&headers[k], v, "{id}: {k}");
            }
        }
    }
    let m = &bridge.metrics;
    assert_eq!(m.invalid_total(), 0);
    assert_eq!(m.dropped_total(), 0);
    let summary = bridge.stop().await;
    assert_eq!(summary.spooled_at_exit, 0);
    // Everything acknowledged: the queue is empty and durable.
    let stats = broker.queue_stats(&queue).expect("the queue stays");
    assert!(stats.durable);
    assert_eq!(stats.messages, 0, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn poison_is_refused_counted_and_the_stream_goes_on() {
    let env = TestEnv::new("amqppoison").await;
    let broker = RabbitMq::start();
    let queue = queue_name();
    let dir = temp_dir("amqp-poison");
    let mut c = bridge_config(&broker, &queue, &dir.join("spool"));
    c.max_body_bytes = 64 * 1024;
    let bridge = start(c, outputs(&env));
    wait_consuming(&broker, &queue).await;

    let good = load_messages(TOPIC, 20);
    let publisher = AmqpPublisher::connect(&amqp_config(&broker, "unused"))
        .await
        .expect("publisher");
    publisher.publish_all(&good[..10], 10).await.unwrap();
    publisher
        .publish_raw(TOPIC, "poison-not-json", b"{not json")
        .await
        .unwrap();
    let blob = serde_json::to_vec(&json!({"blob": "x".repeat(100 * 1024)})).unwrap();
    publisher
        .publish_raw(TOPIC, "poison-too-large", &blob)
        .await
        .unwrap();
    publisher.publish_all(&good[10..], 10).await.unwrap();
    publisher.close().await;
    let all = good;

    let ids: Vec<String> = all.iter().map(|m| m.id.clone()).collect();
    let ledger = ledger(&env, &ids, WAIT).await;
    assert_eq!(ledger.bodies.len(), 20, "the 20 good ones, and only them");
    let m = &bridge.metrics;
    wait_for("both refusals counted", WAIT, || m.invalid_total() == 2).await;
    assert_eq!(m.invalid_count(InvalidReason::NotJson), 1);
    assert_eq!(m.invalid_count(InvalidReason::TooLarge), 1);
    bridge.stop().await;
    // Refused means not requeued: nothing comes back.
    assert_eq!(broker.queue_depth(&queue), Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_minute_without_sqs_is_spooled_acknowledged_and_then_delivered() {
    let env = TestEnv::new("amqpsqsdown").await;
    let broker = RabbitMq::start();
    let queue = queue_name();
    let dir = temp_dir("amqp-sqsdown");
    let proxy = Proxy::localstack(false).await;
    let bridge = start(
        bridge_config(&broker, &queue, &dir.join("spool")),
        proxy.outputs(&env),
    );
    wait_consuming(&broker, &queue).await;
    let messages = load_messages(TOPIC, 500);
    publish(&broker, &messages).await;
    let m = std::sync::Arc::clone(&bridge.metrics);
    wait_for("SQS to be seen failing", WAIT, || {
        m.sqs_failing.load(Relaxed)
    })
    .await;
    // Spooled and synced, the broker is told: nothing waits there any more.
    let deadline = tokio::time::Instant::now() + WAIT;
    while broker.queue_depth(&queue) != Some(0) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the broker still holds {:?} (spooled: {})",
            broker.queue_stats(&queue),
            m.spooled.load(Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(m.spooled.load(Relaxed), 500);
    assert_eq!(m.forwarded.load(Relaxed), 0);
    tokio::time::sleep(Duration::from_secs(60)).await;
    proxy.set_up(true);
    let ids: Vec<String> = messages.iter().map(|m| m.id.clone()).collect();
    let ledger = ledger(&env, &ids, WAIT).await;
    assert!(ledger.repeated().is_empty(), "{:?}", ledger.repeated());
    assert_eq!(ledger.bodies.len(), 500);
    assert_eq!(m.dropped_total(), 0);
    let summary = bridge.stop().await;
    assert_eq!(summary.spooled_at_exit, 0, "the spool was replayed");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broker_restart_mid_stream_loses_nothing() {
    let env = TestEnv::new("amqprestart").await;
    let mut broker = RabbitMq::start();
    let queue = queue_name();
    let dir = temp_dir("amqp-restart");
    // Slow the bridge down (small prefetch, one SQS call at a time) so the restart lands
    // while the queue is still being read.
    let mut c = bridge_config(&broker, &queue, &dir.join("spool"));
    if let Some(a) = c.amqp.as_mut() {
        a.prefetch = 5;
    }
    c.send_concurrency = 1;
    let bridge = start(c, outputs(&env));
    wait_consuming(&broker, &queue).await;
    let first = load_messages(TOPIC, 1000);
    publish(&broker, &first).await;
    let m = std::sync::Arc::clone(&bridge.metrics);
    wait_for("the stream to be under way", WAIT, || {
        m.forwarded.load(Relaxed) >= 50
    })
    .await;
    let before = m.forwarded.load(Relaxed);
    broker.restart();
    assert!(
        before < 1000,
        "the restart came mid-stream ({before} forwarded)"
    );
    // After the restart: more messages, and the rest of the first ones (persistent, in a
    // durable queue) arrive.
    wait_consuming(&broker, &queue).await;
    let second = load_messages(TOPIC, 200);
    publish(&broker, &second).await;
    let ids: Vec<String> = first.iter().chain(&second).map(|m| m.id.clone()).collect();
    let ledger = ledger(&env, &ids, WAIT).await;
    let extra = ledger.bodies.len() - ids.len();
    assert_eq!(extra, 0, "only what was published arrived");
    // Deliveries in flight at the restart may arrive twice (acknowledgements lost with the
    // connection); never more than the unacknowledged window.
    let repeated = ledger.repeated().len();
    assert!(
        repeated <= 5,
        "{repeated} repeated, more than the prefetch window"
    );
    assert!(m.endpoint(0).reconnects.load(Relaxed) >= 1);
    println!("broker restart: {before} forwarded before it, {repeated} repeated after");
    bridge.stop().await;
    assert_eq!(broker.queue_depth(&queue), Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_of_the_bridge_mid_stream_loses_nothing() {
    let env = TestEnv::new("amqpkill9").await;
    let broker = RabbitMq::start();
    let queue = queue_name();
    let dir = temp_dir("amqp-kill9");
    let a = amqp_config(&broker, &queue);
    let bridge = AmqpConfig {
        prefetch: 50,
        ..a.clone()
    };
    let spawn = || {
        let mut c = std::process::Command::new(bridge_binary());
        RabbitMq::bridge_env(&mut c, &bridge, &dir.join("spool"));
        c.env("FMN_RESOURCE_PREFIX", env.clients.names.prefix())
            .env("FMN_SEND_CONCURRENCY", "1")
            .spawn()
            .expect("starting the bridge binary")
    };
    let mut child = spawn();
    wait_consuming(&broker, &queue).await;
    let messages = load_messages(TOPIC, 1000);
    let ids: Vec<String> = messages.iter().map(|m| m.id.clone()).collect();
    let publishing = {
        let config = a.clone();
        let messages = messages.clone();
        tokio::spawn(async move {
            let p = AmqpPublisher::connect(&config).await.expect("publisher");
            for chunk in messages.chunks(50) {
                p.publish_all(chunk, 50).await.expect("confirmed");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            p.close().await;
        })
    };
    // Kill it while the stream is under way: some in SQS, some not yet.
    let url = env.queue_url(fmn_aws::QueueName::Ingest).to_string();
    let deadline = tokio::time::Instant::now() + WAIT;
    while fmn_integration_tests::sqs::depth(&env.clients.sqs, &url).await < 100 {
        assert!(tokio::time::Instant::now() < deadline, "nothing forwarded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child.kill().expect("kill -9");
    let _ = child.wait();
    let in_sqs_at_kill = fmn_integration_tests::sqs::depth(&env.clients.sqs, &url).await;
    publishing.await.unwrap();
    let mut child = spawn();
    let ledger = ledger(&env, &ids, WAIT).await;
    child.kill().ok();
    let _ = child.wait();
    assert_eq!(ledger.bodies.len(), 1000, "all 1,000 arrived, nothing else");
    // Acknowledgements lost with the process mean redelivery: bounded by the window, and the
    // match stage is idempotent per message id (deterministic job ids, delivery records).
    let repeated = ledger.repeated().len();
    assert!(
        repeated <= 50,
        "{repeated} repeated, over the prefetch window"
    );
    println!(
        "kill -9 mid-stream: {in_sqs_at_kill} in SQS at the kill, 1000/1000 arrived, {repeated} repeated"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_on_both_buses_is_forwarded_once() {
    let env = TestEnv::new("amqpboth").await;
    let broker = RabbitMq::start();
    let queue = queue_name();
    let dir = temp_dir("amqp-both");
    let mut zmq = Publisher::bind("tcp://127.0.0.1:*").unwrap();
    let mut c = bridge_config(&broker, &queue, &dir.join("spool"));
    c.endpoints = vec![zmq.endpoint().to_string()];
    let bridge = start(c, outputs(&env));
    wait_consuming(&broker, &queue).await;
    // Slow joiner on the ZeroMQ side: warm up until it hears us.
    let m = std::sync::Arc::clone(&bridge.metrics);
    let mut warmups = Vec::new();
    while m.endpoint(0).received.load(Relaxed) == 0 {
        warmups.push(zmq.publish(TOPIC, json!({"warmup": true})).unwrap().0);
        assert!(
            warmups.len() < 1200,
            "the bridge never heard the ZeroMQ publisher"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Fedora's bridges kept the id across buses: the same message both ways.
    let messages = load_messages(TOPIC, 30);
    for msg in &messages {
        let envelope = json!({"topic": TOPIC, "msg": msg.body, "msg_id": msg.id, "timestamp": 1});
        zmq.send_raw(&[TOPIC.as_bytes(), envelope.to_string().as_bytes()])
            .unwrap();
    }
    publish(&broker, &messages).await;
    let ids: HashSet<String> = messages.iter().map(|m| m.id.clone()).collect();
    let ledger = ledger(&env, &ids, WAIT).await;
    assert!(ledger.repeated().is_empty(), "{:?}", ledger.repeated());
    let extra: Vec<_> = ledger
        .bodies
        .keys()
        .filter(|id| !ids.contains(*id) && !warmups.contains(id))
        .collect();
    assert!(extra.is_empty(), "{extra:?}");
    wait_for("both copies received", WAIT, || {
        m.duplicates.load(Relaxed) >= 30
    })
    .await;
    bridge.stop().await;
    assert_eq!(
        broker.queue_depth(&queue),
        Some(0),
        "duplicates acknowledged too"
    );
}

/// `make bench-bridge`: both buses side by side through the release binaries
/// (`target/release/fmn-bridge-bench`), with a broker set up like Fedora's. Prints figures;
/// asserts nothing about speed.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "a benchmark: make bench-bridge"]
async fn bench_bridge_fedmsg_and_amqp() {
    fmn_integration_tests::init();
    let broker = RabbitMq::start();
    let pki = broker.tls();
    let bench = repo_root().join("target/release/fmn-bridge-bench");
    assert!(
        bench.exists(),
        "build it first: cargo build --release -p fmn-ingest-bridge --bins"
    );
    let n = std::env::var("FMN_BENCH_MESSAGES").unwrap_or_else(|_| "20000".into());
    let status = std::process::Command::new(bench)
        .arg(n)
        .arg("--amqp-url")
        .arg(broker.amqps_url())
        .arg("--amqp-ca")
        .arg(&pki.ca_file)
        .arg("--amqp-cert")
        .arg(&pki.client_cert)
        .arg("--amqp-key")
        .arg(&pki.client_key)
        .status()
        .expect("running fmn-bridge-bench");
    assert!(status.success(), "fmn-bridge-bench failed: {status}");
}
