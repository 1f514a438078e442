//! The AMQP test peers work: a real RabbitMQ set up like Fedora's public broker
//! (`tests/support/rabbitmq.rs`) and the real fedora-messaging publisher
//! (`tests/fedora-messaging-publisher/publish.py`).
//!
//! Needs `make deps` (rabbitmq-server, openssl; the publisher's venv is made on first use).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use fmn_integration_tests::rabbitmq::{Identity, Login, PublishOptions, RabbitMq};
use fmn_integration_tests::repo_root;

fn corpus() -> PathBuf {
    repo_root().join("tests/data/fedora-messaging-examples.jsonl")
}

fn corpus_ids(n: usize) -> Vec<String> {
    std::fs::read_to_string(corpus())
        .expect("reading tests/data/fedora-messaging-examples.jsonl")
        .lines()
        .take(n)
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("a JSON line");
            v["id"].as_str().expect("an id").to_string()
        })
        .collect()
}

/// Processes whose command line names `needle` (read from /proc).
fn processes_naming(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(needle) {
            found.push(format!(
                "{}: {cmdline}",
                entry.file_name().to_string_lossy()
            ));
        }
    }
    found
}

#[test]
fn broker_like_fedoras_with_the_real_publisher() {
    let t = Instant::now();
    let mut rmq = RabbitMq::start();
    eprintln!(
        "broker {} up in {:?} (amqps {}, amqp {})",
        rmq.node,
        rmq.last_start,
        rmq.amqps_url(),
        rmq.amqp_url()
    );
    assert!(rmq.amqps_url().ends_with("/%2Fpublic_pubsub"));
    assert_eq!(
        std::fs::read_to_string(&rmq.tls().ca_file)
            .unwrap()
            .matches("BEGIN CERTIFICATE")
            .count(),
        2,
        "the CA file is a bundle of two CAs"
    );

    // The first 20 corpus lines, through the library's own publish (TLS, EXTERNAL as
    // `fedora`), into a durable queue bound with `#` on amq.topic.
    let queue = "fmn-harness-test";
    let ids = rmq
        .publish_with(
            Some(&corpus()),
            &PublishOptions {
                limit: Some(20),
                declare_queue: Some(queue.to_string()),
                ..PublishOptions::default()
            },
        )
        .expect("publishing with fedora-messaging");
    assert_eq!(ids, corpus_ids(20), "the publisher keeps each message's id");
    let stats = rmq.queue_stats(queue).expect("the queue exists");
    assert!(stats.durable);
    assert_eq!(rmq.queue_depth(queue), Some(20));
    assert_eq!(rmq.queue_depth("no-such-queue"), None);

    // Malformed messages the library would refuse to send go out raw.
    let raw = rmq.dir().join("raw.jsonl");
    std::fs::write(
        &raw,
        "{\"topic\": \"org.fedoraproject.prod.bodhi.update.comment\", \"body\": \"not json {\", \"id\": \"raw-1\"}\n\
         {\"topic\": \"org.fedoraproject.prod.x\", \"body\": {\"no\": \"headers\"}}\n",
    )
    .unwrap();
    let raw_ids = rmq
        .publish_with(
            Some(&raw),
            &PublishOptions {
                raw: true,
                ..PublishOptions::default()
            },
        )
        .expect("publishing raw messages");
    assert_eq!(raw_ids.len(), 2);
    assert_eq!(raw_ids[0], "raw-1");
    assert_eq!(rmq.queue_depth(queue), Some(22));

    // A graceful restart keeps the durable queue and its persistent messages, on the same
    // ports (the URLs stay valid).
    let url = rmq.amqps_url();
    rmq.restart();
    eprintln!("restarted in {:?}", rmq.last_start);
    assert_eq!(rmq.amqps_url(), url);
    assert_eq!(rmq.queue_depth(queue), Some(22));

    // So does a crash: every publish was confirmed, so it is on disk.
    rmq.kill();
    assert!(!rmq.is_running());
    rmq.start_again();
    eprintln!("started again after SIGKILL in {:?}", rmq.last_start);
    assert_eq!(rmq.queue_depth(queue), Some(22));

    // Who gets in: the `fedora` certificate (EXTERNAL) and the plain password user.
    assert_eq!(rmq.check_login(Identity::Fedora), Login::Accepted);
    assert_eq!(rmq.check_login(Identity::Plain), Login::Accepted);
    // A trusted certificate whose CN is no user: TLS passes, the EXTERNAL login is refused.
    match rmq.check_login(Identity::Intruder) {
        Login::Refused(why) => assert!(why.contains("EXTERNAL"), "{why}"),
        Login::Accepted => panic!("a certificate of an unknown CN logged in"),
    }
    // CN=fedora from a CA of the same name that the broker does not trust: TLS refuses it.
    match rmq.check_login(Identity::Rogue) {
        Login::Refused(why) => assert!(why.to_lowercase().contains("unknown ca"), "{why}"),
        Login::Accepted => panic!("a certificate of an untrusted CA logged in"),
    }
    // No client certificate at all: refused (fail_if_no_peer_cert).
    assert!(matches!(
        rmq.check_login(Identity::NoCertificate),
        Login::Refused(_)
    ));
    assert!(rmq.log().contains("user 'fedora' authenticated"));

    // Dropping the broker leaves nothing running.
    let node = rmq.node.clone();
    let (port, epmd_port) = (rmq.tls_port, rmq.epmd_port);
    let dir = rmq.dir().to_path_buf();
    drop(rmq);
    std::thread::sleep(Duration::from_millis(200));
    let left = processes_naming(node.split('@').next().unwrap());
    assert!(left.is_empty(), "left running: {left:?}");
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    assert!(std::net::TcpStream::connect(("127.0.0.1", epmd_port)).is_err());
    assert!(!dir.exists());
    eprintln!("whole test: {:?}", t.elapsed());
}

/// Two brokers side by side (as parallel tests run them), and a load publisher of 1,000
/// messages on one of them over the plain listener.
#[test]
fn two_brokers_side_by_side_and_a_thousand_messages() {
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(RabbitMq::start);
        let b = s.spawn(RabbitMq::start);
        (a.join().unwrap(), b.join().unwrap())
    });
    eprintln!(
        "two brokers up in {:?} and {:?} (started together)",
        a.last_start, b.last_start
    );
    assert_ne!(a.node, b.node);
    assert_ne!(a.tls_port, b.tls_port);

    let queue = "load";
    let t = Instant::now();
    let ids = a
        .publish_with(
            Some(&corpus()),
            &PublishOptions {
                identity: Identity::Plain,
                count: Some(1000),
                declare_queue: Some(queue.to_string()),
                ..PublishOptions::default()
            },
        )
        .expect("publishing 1,000 messages");
    eprintln!("1,000 messages published in {:?}", t.elapsed());
    assert_eq!(ids.len(), 1000);
    let unique: std::collections::HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), 1000, "repeated lines get fresh ids");
    assert_eq!(a.queue_depth(queue), Some(1000));
    assert_eq!(b.queue_depth(queue), None, "the brokers share nothing");

    b.declare_queue("only-bodhi", &["org.fedoraproject.*.bodhi.#"])
        .expect("declaring a queue");
    let ids = b
        .publish_with_fedora_messaging(&corpus())
        .expect("publishing the corpus");
    assert_eq!(ids.len(), corpus_ids(usize::MAX).len());
    let bodhi = std::fs::read_to_string(corpus())
        .unwrap()
        .lines()
        .filter(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let topic = v["topic"].as_str().unwrap();
            topic.starts_with("org.fedoraproject.") && topic.split('.').nth(3) == Some("bodhi")
        })
        .count() as u64;
    assert!(bodhi > 0);
    assert_eq!(b.queue_depth("only-bodhi"), Some(bodhi));
}
