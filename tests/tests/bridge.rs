//! The ingest-bridge against real peers: the Python `fedmsg` package publishing on a local
//! endpoint (and a Rust publisher speaking the same wire format for the fault cases), the
//! bridge forwarding into LocalStack SQS, the test reading the queue back.
//!
//! SQS outages are simulated with a TCP proxy in front of LocalStack that the test switches
//! off and on (the shared LocalStack is never stopped).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use fmn_aws::ingest_wire::{decode, gunzip, Decoded, ENCODING_ATTRIBUTE, MSG_ID_ATTRIBUTE};
use fmn_aws::QueueName;
use fmn_ingest_bridge::publisher::Publisher;
use fmn_ingest_bridge::validate::InvalidReason;
use fmn_ingest_bridge::Metrics;
use fmn_integration_tests::bridge::{
    attr, bridge_binary, config, ledger, outputs, start, temp_dir, wait_for, Proxy, Running, WAIT,
};
use fmn_integration_tests::fedmsg::PyPublisher;
use fmn_integration_tests::{sqs, TestEnv};
use serde_json::{json, Value};

const TOPIC: &str = "org.fedoraproject.dev.fmntest.bridge.test";

/// PUB/SUB drops what is published before the subscription reaches the publisher (the
/// "slow joiner"): publish warm-up messages until the bridge has received one.
async fn warm_up(publisher: &mut Publisher, metrics: &Metrics) -> Vec<(String, String)> {
    let mut sent = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while metrics.received_total() == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the bridge never received a warm-up"
        );
        sent.push(publisher.publish(TOPIC, json!({"warmup": true})).unwrap());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    sent
}

/// A bridge following a fresh Rust publisher, with its own spool.
fn bridge_on_publisher(env: &TestEnv, name: &str) -> (Publisher, Running) {
    let dir = temp_dir(name);
    let publisher = Publisher::bind("tcp://127.0.0.1:*").unwrap();
    let bridge = start(
        config(vec![publisher.endpoint().to_string()], &dir.join("spool")),
        outputs(env),
    );
    (publisher, bridge)
}

/// Reads the ingest queue until `ids` all arrived; fails on any id received twice.
async fn collect(env: &TestEnv, ids: &HashSet<String>) -> HashMap<String, String> {
    let ledger = ledger(env, ids, WAIT).await;
    assert!(
        ledger.repeated().is_empty(),
        "arrived twice: {:?}",
        ledger.repeated()
    );
    ledger.bodies
}

// ------------------------------------------------------------------------------- tests

#[tokio::test(flavor = "multi_thread")]
async fn bridge_forwards_real_fedmsg_messages_byte_for_byte() {
    let env = TestEnv::new("bridgefedmsg").await;
    let dir = temp_dir("fedmsg");
    let mut publisher = PyPublisher::start(&dir).await;
    let bridge = start(
        config(vec![publisher.endpoint.clone()], &dir.join("spool")),
        outputs(&env),
    );
    // Slow joiner: warm up until the bridge hears the publisher.
    let deadline = tokio::time::Instant::now() + WAIT;
    while bridge.metrics.received_total() == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no warm-up message arrived"
        );
        publisher
            .cmd(json!({"cmd": "publish", "count": 1, "tag": "warmup"}))
            .await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let warmups = publisher.published().len();
    let answer = publisher
        .cmd(json!({"cmd": "publish", "count": 50, "tag": "real"}))
        .await;
    assert_eq!(answer["published"], 50);
    let published: Vec<(String, String)> = publisher.published().split_off(warmups);
    assert_eq!(published.len(), 50);
    let ids: HashSet<String> = published.iter().map(|(id, _)| id.clone()).collect();

    let got = collect(&env, &ids).await;
    for (id, body) in &published {
        assert_eq!(&got[id], body, "{id} is forwarded byte-for-byte");
    }
    let m = &bridge.metrics;
    assert_eq!(m.invalid_total(), 0);
    assert_eq!(m.missed_total(), 0, "no gap in the publisher's counter");
    assert_eq!(m.dropped_total(), 0);
    let summary = bridge.stop().await;
    assert_eq!(summary.spooled_at_exit, 0);
    publisher.quit().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_sqs_outage_loses_nothing_and_repeats_nothing() {
    let env = TestEnv::new("bridgeoutage").await;
    let dir = temp_dir("outage");
    let proxy = Proxy::localstack(false).await;
    let mut publisher = Publisher::bind("tcp://127.0.0.1:*").unwrap();
    let mut c = config(vec![publisher.endpoint().to_string()], &dir.join("spool"));
    c.buffer_messages = 100; // most of the outage goes to the disk spool
    let bridge = start(c, proxy.outputs(&env));
    let mut sent = warm_up(&mut publisher, &bridge.metrics).await;
    for n in 0..1000 {
        sent.push(publisher.publish(TOPIC, json!({"n": n})).unwrap());
    }
    let m = Arc::clone(&bridge.metrics);
    // Everything received while SQS is away; most of it spooled.
    wait_for("the 1,000 messages to be received", WAIT, || {
        m.received_total() >= 1001
    })
    .await;
    wait_for("the spool to be used", WAIT, || {
        m.spooled.load(Ordering::Relaxed) >= 800
    })
    .await;
    wait_for("the bridge to notice SQS is away", WAIT, || {
        m.sqs_failing.load(Ordering::Relaxed)
    })
    .await;
    assert_eq!(m.forwarded.load(Ordering::Relaxed), 0);

    proxy.set_up(true);
    let received = m.received_total() as usize;
    // Warm-ups published before the subscription took are lost (PUB/SUB); the rest arrive.
    let expected: Vec<(String, String)> = sent[sent.len() - received..].to_vec();
    let ids: HashSet<String> = expected.iter().map(|(id, _)| id.clone()).collect();
    let got = collect(&env, &ids).await;
    assert_eq!(
        got.len(),
        ids.len(),
        "exactly the received messages, once each"
    );
    for (id, body) in &expected {
        assert_eq!(&got[id], body);
    }
    assert_eq!(m.dropped_total(), 0);
    assert_eq!(m.missed_total(), 0);
    let summary = bridge.stop().await;
    assert_eq!(summary.spooled_at_exit, 0, "the spool was replayed");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_bridge_replays_its_spool() {
    let env = TestEnv::new("bridgerestart").await;
    let dir = temp_dir("restart");
    let spool = dir.join("spool");
    let proxy = Proxy::localstack(false).await;
    let mut publisher = Publisher::bind("tcp://127.0.0.1:*").unwrap();
    let mut c = config(vec![publisher.endpoint().to_string()], &spool);
    c.buffer_messages = 50;

    // First run: SQS is away; the bridge is stopped mid-stream.
    let first = start(c.clone(), proxy.outputs(&env));
    let mut sent = warm_up(&mut publisher, &first.metrics).await;
    for n in 0..300 {
        sent.push(publisher.publish(TOPIC, json!({"n": n, "run": 1})).unwrap());
    }
    let m = Arc::clone(&first.metrics);
    wait_for("the first 300 to be received", WAIT, || {
        m.received_total() >= 301
    })
    .await;
    let received_first = m.received_total() as usize;
    let summary = first.stop().await;
    assert_eq!(summary.forwarded, 0);
    assert_eq!(
        summary.spooled_at_exit as usize, received_first,
        "all kept on disk"
    );
    let mut expected: Vec<(String, String)> = sent[sent.len() - received_first..].to_vec();

    // Second run: SQS is back; the spool goes first, then the new messages.
    proxy.set_up(true);
    let second = start(c, proxy.outputs(&env));
    let mut warm = warm_up(&mut publisher, &second.metrics).await;
    let lost_warmups = warm.len() - 1;
    warm.drain(..lost_warmups);
    expected.extend(warm);
    for n in 0..200 {
        expected.push(publisher.publish(TOPIC, json!({"n": n, "run": 2})).unwrap());
    }
    let ids: HashSet<String> = expected.iter().map(|(id, _)| id.clone()).collect();
    let got = collect(&env, &ids).await;
    assert_eq!(got.len(), ids.len(), "nothing lost, nothing repeated");
    for (id, body) in &expected {
        assert_eq!(&got[id], body);
    }
    let summary = second.stop().await;
    assert_eq!(summary.spooled_at_exit, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_frames_are_counted_and_skipped() {
    let env = TestEnv::new("bridgemalformed").await;
    let (mut publisher, bridge) = bridge_on_publisher(&env, "malformed");
    let sent = warm_up(&mut publisher, &bridge.metrics).await;
    let (_, good_body) = publisher.envelope(TOPIC, json!({"ok": 1}));
    let huge = format!(
        r#"{{"topic":"{TOPIC}","msg_id":"2026-huge","msg":{{"x":"{}"}}}}"#,
        "a".repeat(10 * 1024 * 1024)
    );
    let no_id = format!(r#"{{"topic":"{TOPIC}","msg":{{}}}}"#);
    let bad: Vec<Vec<&[u8]>> = vec![
        vec![TOPIC.as_bytes(), b"this is not json"],
        vec![TOPIC.as_bytes()],
        vec![TOPIC.as_bytes(), good_body.as_bytes(), b"extra"],
        vec![TOPIC.as_bytes(), huge.as_bytes()],
        vec![b"org.fedoraproject.dev.other.topic", good_body.as_bytes()],
        vec![TOPIC.as_bytes(), no_id.as_bytes()],
        vec![TOPIC.as_bytes(), &[0xff, 0xfe, 0x00]],
    ];
    for frames in &bad {
        publisher.send_raw(frames).unwrap();
    }
    // A good message after the bad ones: when it is forwarded, the bad ones were handled.
    let (last_id, _) = publisher
        .publish(TOPIC, json!({"after": "the bad ones"}))
        .unwrap();
    let got = collect(&env, &HashSet::from([last_id.clone()])).await;
    let valid: HashSet<&String> = sent.iter().map(|(id, _)| id).collect();
    assert!(
        got.keys().all(|id| *id == last_id || valid.contains(id)),
        "only valid messages are forwarded: {:?}",
        got.keys()
    );
    let m = &bridge.metrics;
    for (reason, count) in [
        (InvalidReason::NotJson, 1),
        (InvalidReason::FrameCount, 2),
        (InvalidReason::TooLarge, 1),
        (InvalidReason::TopicMismatch, 1),
        (InvalidReason::NoMsgId, 1),
        (InvalidReason::NotUtf8, 1),
    ] {
        assert_eq!(m.invalid_count(reason), count, "{reason:?}");
    }
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_endpoints_send_once_and_gaps_are_counted() {
    let env = TestEnv::new("bridgededupe").await;
    let dir = temp_dir("dedupe");
    let mut a = Publisher::bind("tcp://127.0.0.1:*").unwrap();
    let b = Publisher::bind("tcp://127.0.0.1:*").unwrap();
    let bridge = start(
        config(
            vec![a.endpoint().to_string(), b.endpoint().to_string()],
            &dir.join("spool"),
        ),
        outputs(&env),
    );
    let m = Arc::clone(&bridge.metrics);
    // Warm both paths up with the same messages on both endpoints.
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut warm = Vec::new();
    while m.endpoint(0).received.load(Ordering::Relaxed) == 0
        || m.endpoint(1).received.load(Ordering::Relaxed) == 0
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "both endpoints heard"
        );
        let (id, body) = a.envelope(TOPIC, json!({"warmup": true}));
        a.send_raw(&[TOPIC.as_bytes(), body.as_bytes()]).unwrap();
        b.send_raw(&[TOPIC.as_bytes(), body.as_bytes()]).unwrap();
        warm.push(id);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut expected = Vec::new();
    for n in 0..20 {
        if n == 10 {
            a.skip(5); // five messages "lost" before this one
        }
        let (id, body) = a.envelope(TOPIC, json!({"n": n}));
        a.send_raw(&[TOPIC.as_bytes(), body.as_bytes()]).unwrap();
        b.send_raw(&[TOPIC.as_bytes(), body.as_bytes()]).unwrap();
        expected.push((id, body));
    }
    let ids: HashSet<String> = expected.iter().map(|(id, _)| id.clone()).collect();
    wait_for("both copies of every message", WAIT, || {
        m.endpoint(0).received.load(Ordering::Relaxed) >= 20
            && m.endpoint(1).received.load(Ordering::Relaxed) >= 20
            && m.forwarded.load(Ordering::Relaxed) >= 20
    })
    .await;
    let got = collect(&env, &ids).await;
    for (id, body) in &expected {
        assert_eq!(&got[id], body);
    }
    let warm: HashSet<String> = warm.into_iter().collect();
    assert!(
        got.keys().all(|id| ids.contains(id) || warm.contains(id)),
        "nothing unexpected"
    );
    assert!(m.duplicates.load(Ordering::Relaxed) >= 20);
    // Each endpoint carries the same publisher stream: both see the jump of five.
    assert_eq!(m.endpoint(0).missed.load(Ordering::Relaxed), 5);
    assert_eq!(m.endpoint(1).missed.load(Ordering::Relaxed), 5);
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_bodies_are_compressed_or_stored() {
    let env = TestEnv::new("bridgeoversize").await;
    let (mut publisher, bridge) = bridge_on_publisher(&env, "oversize");
    warm_up(&mut publisher, &bridge.metrics).await;
    // 400 KB that compresses well, and 600 KB of noise that does not.
    let files: Vec<String> = (0..40_000).map(|n| format!("file-{n}.txt")).collect();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let noise: String = (0..600_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from_digit((x % 16) as u32, 16).unwrap()
        })
        .collect();
    let (big_id, big) = publisher.publish(TOPIC, json!({"files": files})).unwrap();
    let (noise_id, noisy) = publisher.publish(TOPIC, json!({"noise": noise})).unwrap();
    assert!(big.len() > 300_000 && noisy.len() > 600_000);
    let ids: HashSet<String> = [big_id.clone(), noise_id.clone()].into();
    let url = env.queue_url(QueueName::Ingest);
    let mut seen = HashMap::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while !ids.iter().all(|id| seen.contains_key(id)) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "oversized messages arrived"
        );
        for m in sqs::drain(&env.clients.sqs, url, 1, Duration::from_secs(2)).await {
            let id = attr(&m, MSG_ID_ATTRIBUTE).unwrap();
            seen.insert(id, (m.body.clone().unwrap(), attr(&m, ENCODING_ATTRIBUTE)));
        }
    }
    let (body, enc) = &seen[&big_id];
    assert_eq!(enc.as_deref(), Some("gzip+base64"));
    assert_eq!(
        decode(body, enc.as_deref()).unwrap(),
        Decoded::Envelope(big.clone())
    );
    let (body, enc) = &seen[&noise_id];
    assert_eq!(enc.as_deref(), Some("dynamodb"));
    let Decoded::Stored(reference) = decode(body, enc.as_deref()).unwrap() else {
        panic!("expected a reference")
    };
    let item = env
        .clients
        .dynamodb
        .get_item()
        .table_name(&reference.fmn_stored_body.table)
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S(reference.fmn_stored_body.pk.clone()),
        )
        .send()
        .await
        .unwrap()
        .item
        .expect("the stored body");
    let gz = item["body_gzip"].as_b().unwrap().as_ref().to_vec();
    assert_eq!(gunzip(&gz).unwrap(), noisy);
    assert_eq!(bridge.metrics.compressed.load(Ordering::Relaxed), 1);
    assert_eq!(bridge.metrics.stored.load(Ordering::Relaxed), 1);
    bridge.stop().await;
}

/// A CA and a publisher certificate made with the `openssl` command.
fn make_certs(dir: &std::path::Path) {
    let run = |args: &[&str]| {
        let status = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .expect("running openssl");
        assert!(status.success(), "openssl {args:?}");
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=fmn test CA",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "publisher.key",
        "-out",
        "publisher.csr",
        "-subj",
        "/CN=publisher.fmn.test",
    ]);
    run(&[
        "x509",
        "-req",
        "-in",
        "publisher.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "publisher.crt",
        "-days",
        "2",
    ]);
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "other.key",
        "-out",
        "other.crt",
        "-days",
        "2",
        "-subj",
        "/CN=not the CA",
    ]);
}

#[tokio::test(flavor = "multi_thread")]
async fn signed_messages_are_checked_against_the_ca() {
    let env = TestEnv::new("bridgesigned").await;
    let dir = temp_dir("signed");
    make_certs(&dir);
    let ssldir = dir.to_str().unwrap().to_string();
    let mut publisher = PyPublisher::start_with(
        &dir,
        &["--sign", "--ssldir", &ssldir, "--certname", "publisher"],
    )
    .await;
    let mut c = config(vec![publisher.endpoint.clone()], &dir.join("spool"));
    c.validate_signatures = true;
    c.ca_file = Some(dir.join("ca.crt"));
    let bridge = start(c, outputs(&env));
    let deadline = tokio::time::Instant::now() + WAIT;
    while bridge.metrics.received_total() == 0 {
        assert!(tokio::time::Instant::now() < deadline, "no warm-up arrived");
        publisher
            .cmd(json!({"cmd": "publish", "count": 1, "tag": "warmup"}))
            .await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let before = publisher.published().len();
    publisher
        .cmd(json!({"cmd": "publish", "count": 5, "tag": "signed"}))
        .await;
    let published = publisher.published().split_off(before);
    assert!(published.iter().all(|(_, b)| b.contains("\"signature\":")));
    // Tampered (payload changed after signing), unsigned, and signed by an unknown CA.
    let (_, body) = &published[0];
    let mut tampered: Value = serde_json::from_str(body).unwrap();
    tampered["msg"]["tag"] = json!("tampered");
    tampered["msg_id"] = json!("2026-tampered");
    let mut unsigned = tampered.clone();
    unsigned.as_object_mut().unwrap().remove("signature");
    unsigned.as_object_mut().unwrap().remove("certificate");
    unsigned["msg_id"] = json!("2026-unsigned");
    let mut foreign = serde_json::from_str::<Value>(body).unwrap();
    foreign["certificate"] = json!(base64_pem(&dir.join("other.crt")));
    foreign["msg_id"] = json!("2026-foreign");
    for bad in [tampered, unsigned, foreign] {
        publisher
            .cmd(json!({"cmd": "raw", "frames": [bad["topic"], bad.to_string()]}))
            .await;
    }
    let (last_id, _) = {
        let before = publisher.published().len();
        publisher
            .cmd(json!({"cmd": "publish", "count": 1, "tag": "last"}))
            .await;
        publisher.published()[before].clone()
    };
    let mut ids: HashSet<String> = published.iter().map(|(id, _)| id.clone()).collect();
    ids.insert(last_id);
    let got = collect(&env, &ids).await;
    for (id, body) in &published {
        assert_eq!(&got[id], body);
    }
    assert!(!got.keys().any(|id| id.starts_with("2026-tampered")
        || id.starts_with("2026-unsigned")
        || id.starts_with("2026-foreign")));
    assert_eq!(bridge.metrics.invalid_count(InvalidReason::BadSignature), 3);
    bridge.stop().await;
    publisher.quit().await;
}

/// base64 of a PEM file, as fedmsg puts a certificate in `certificate`.
fn base64_pem(path: &std::path::Path) -> String {
    let out = std::process::Command::new("openssl")
        .args(["base64", "-A", "-in"])
        .arg(path)
        .output()
        .expect("running openssl base64");
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A metric of the bridge's `/metrics`, summed over its labels.
async fn metric(metrics_addr: &str, name: &str) -> u64 {
    let Ok(response) = reqwest::get(format!("http://{metrics_addr}/metrics")).await else {
        return 0;
    };
    response
        .text()
        .await
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_loses_nothing_the_bridge_had_received() {
    let env = TestEnv::new("bridgekill9").await;
    let dir = temp_dir("kill9");
    // SQS reachable at start (the bridge looks its queue up), then away: everything received
    // stays in the bridge's memory (and its journal).
    let proxy = Proxy::localstack(true).await;
    let mut publisher = Publisher::bind("tcp://127.0.0.1:*").unwrap();
    let metrics_addr = format!("127.0.0.1:{}", fmn_integration_tests::free_port());
    let endpoint = publisher.endpoint().to_string();
    let spawn = |sqs_endpoint: Option<&str>| {
        let mut command = std::process::Command::new(bridge_binary());
        command
            .env("FMN_RESOURCE_PREFIX", env.clients.names.prefix())
            .env("FMN_FEDMSG_ENDPOINTS", &endpoint)
            .env("FMN_SPOOL_DIR", dir.join("spool"))
            .env("FMN_BRIDGE_METRICS_ADDR", &metrics_addr)
            .env("FMN_BUFFER_MESSAGES", "5000")
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null());
        if let Some(url) = sqs_endpoint {
            command.env("AWS_ENDPOINT_URL_SQS", url);
        }
        command.spawn().expect("starting the bridge binary")
    };
    let mut child = spawn(Some(&proxy.url));
    // Slow joiner: warm up until the bridge hears us.
    let mut sent = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while metric(&metrics_addr, "fmn_bridge_received_total").await == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the bridge never heard us"
        );
        sent.push(publisher.publish(TOPIC, json!({"warmup": true})).unwrap());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    proxy.set_up(false);
    for n in 0..500 {
        sent.push(publisher.publish(TOPIC, json!({"n": n})).unwrap());
    }
    // Accepted = journalled and synced (the gauge is updated after the burst's sync).
    let deadline = tokio::time::Instant::now() + WAIT;
    while metric(&metrics_addr, "fmn_bridge_journal_messages").await < 500 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} journalled",
            metric(&metrics_addr, "fmn_bridge_journal_messages").await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let received = metric(&metrics_addr, "fmn_bridge_received_total").await as usize;
    // kill -9 right away: nothing of those was forwarded.
    child.kill().expect("kill -9");
    let _ = child.wait();
    let mut child = spawn(None);
    let expected: Vec<String> = sent[sent.len() - received..]
        .iter()
        .map(|(id, _)| id.clone())
        .collect();
    // Warm-ups forwarded before SQS went away are in the queue once; the rest after the restart.
    let ledger = ledger(&env, &expected, WAIT).await;
    child.kill().ok();
    let _ = child.wait();
    let missing: Vec<&String> = expected
        .iter()
        .filter(|id| !ledger.bodies.contains_key(*id))
        .collect();
    assert!(missing.is_empty(), "lost: {missing:?}");
    println!(
        "{} repeated (forwarded before the kill, their release not yet written)",
        ledger.repeated().len()
    );
    println!(
        "kill -9 with {received} received, SQS away: all {received} arrived after the restart"
    );
}
