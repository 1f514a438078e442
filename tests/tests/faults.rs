//! The fault suite: the whole local system (bridge, match, deliver-email on LocalStack,
//! DynamoDB Local and moto) following a real bus while something breaks, each scenario ending
//! with the ledger: every published message, for each of its followers, mailed exactly once or
//! in a dead-letter queue with its reason; nothing lost, nothing repeated.
//!
//! The faults are made in front of the services, never to the shared emulators themselves
//! (other tests run against them at the same time): a TCP proxy that goes away (DynamoDB
//! "stopped"), an HTTP stand-in that answers as SES or SQS do when they throttle or pause, and
//! `kill -9` of the real binaries. Each test prints its row of the table reported in the
//! README (`cargo test --test faults -- --nocapture`).

use std::process::{Child, Command};
use std::time::Duration;

use fmn_aws::provision::ProvisionOptions;
use fmn_aws::{AwsClients, ResourceNames};
use fmn_ingest_bridge::amqp_publisher::{AmqpPublisher, OutgoingMessage};
use fmn_ingest_bridge::config::AmqpConfig;
use fmn_ingest_bridge::publisher::Publisher;
use fmn_integration_tests::bridge::{bridge_binary, temp_dir, Proxy};
use fmn_integration_tests::faults::{
    self, create_audience, endpoint, probe, Audience, SesWithEvents, StandIn, LOAD_TOPIC,
    PROBE_TOPIC, SES_PAUSED, SES_THROTTLED, SQS_THROTTLED,
};
use fmn_integration_tests::rabbitmq::RabbitMq;
use fmn_integration_tests::system::RunningSystem;
use fmn_integration_tests::{free_port, init, options_following, unique_prefix};
use fmn_local::system;
use serde_json::json;

/// Messages published per scenario.
const LOAD: usize = 40;
/// How long a scenario may take to settle after its fault.
const SETTLE: Duration = Duration::from_secs(300);

/// A scenario's resources (provisioned from the template) and its followers.
async fn stage(test: &str) -> (AwsClients, Audience) {
    init();
    let clients = AwsClients::with_names(ResourceNames::new(unique_prefix(test))).await;
    system::provision_all(&clients, &ProvisionOptions::default())
        .await
        .expect("creating the resources of infra/template.yaml");
    let audience = create_audience(&clients).await;
    (clients, audience)
}

/// A fedmsg publisher on a free port.
fn fedmsg_publisher() -> Publisher {
    Publisher::bind(&format!("tcp://127.0.0.1:{}", free_port())).expect("binding a PUB socket")
}

/// The in-process system's options following `endpoint`, its queues' visibility `secs`: the
/// runner sets it as it creates them, so no record is received under the template's 6 minutes
/// before a test could shorten it (a record received then stays away past the test's window).
fn options_with_visibility(
    endpoint: &str,
    dir: &std::path::Path,
    secs: u32,
) -> fmn_local::system::RunOptions {
    let mut options = options_following(endpoint.to_string(), dir);
    options.queue_visibility = Some(Duration::from_secs(secs.into()));
    options
}

/// Starts the system in-process following `publisher` with the queues' visibility
/// `visibility` seconds, waits for its web-api and proves the pipeline with probes.
async fn start_following(
    clients: &AwsClients,
    audience: &Audience,
    publisher: &mut Publisher,
    visibility: u32,
) -> RunningSystem {
    let dir = temp_dir("faults");
    let mut running = RunningSystem::start(
        clients,
        options_with_visibility(publisher.endpoint(), &dir, visibility),
    );
    running.healthz().await;
    probe(audience, Duration::from_secs(120), || {
        publisher
            .publish(PROBE_TOPIC, json!({"probe": true}))
            .expect("publishing a probe");
    })
    .await;
    running
}

/// Publishes [`LOAD`] messages, one every `every`, calling `at(i)` before the i-th.
async fn publish_load(
    publisher: &mut Publisher,
    every: Duration,
    mut at: impl FnMut(usize),
) -> Vec<String> {
    let mut ids = Vec::with_capacity(LOAD);
    for i in 0..LOAD {
        at(i);
        let (id, _) = publisher
            .publish(LOAD_TOPIC, json!({"n": i, "agent": "faultsuite"}))
            .expect("publishing");
        ids.push(id);
        tokio::time::sleep(every).await;
    }
    ids
}

#[tokio::test(flavor = "multi_thread")]
async fn dynamodb_gone_for_60_s_while_matching_loses_and_repeats_nothing() {
    let (clients, audience) = stage("faultdynamo").await;
    let target = endpoint("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:8000");
    let proxy = Proxy::start(target.trim_start_matches("http://"), true).await;
    let mut through = clients.clone();
    through.dynamodb = aws_sdk_dynamodb::Client::from_conf(
        clients
            .dynamodb
            .config()
            .to_builder()
            .endpoint_url(&proxy.url)
            .build(),
    );
    let mut publisher = fedmsg_publisher();
    // 5 receives × 20 s: longer than the outage, so nothing needs a dead-letter queue.
    let running = start_following(&through, &audience, &mut publisher, 20).await;

    let mut gone_at = None;
    let ids = publish_load(&mut publisher, Duration::from_millis(100), |i| {
        if i == 10 {
            proxy.set_up(false);
            gone_at = Some(tokio::time::Instant::now());
        }
    })
    .await;
    tokio::time::sleep_until(gone_at.unwrap() + Duration::from_secs(60)).await;
    proxy.set_up(true);

    let ledger = faults::ledger(&clients, &audience, &ids, SETTLE).await;
    ledger.assert_clean("DynamoDB gone for 60 s during matching");
    assert_eq!(ledger.in_dlq(), 0, "an outage shorter than the retries");
    running.stop(Duration::from_secs(60)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ses_throttling_then_a_paused_account_then_success_loses_and_repeats_nothing() {
    let (clients, audience) = stage("faultses").await;
    let moto = endpoint(
        "AWS_ENDPOINT_URL_SESV2",
        fmn_aws::config::LOCAL_SESV2_ENDPOINT,
    );
    let ses = StandIn::start(moto, |uri| uri.path() == "/v2/email/outbound-emails").await;
    let mut through = clients.clone();
    through.sesv2 = aws_sdk_sesv2::Client::from_conf(
        clients
            .sesv2
            .config()
            .to_builder()
            .endpoint_url(&ses.url)
            .build(),
    );
    let mut publisher = fedmsg_publisher();
    let running = start_following(&through, &audience, &mut publisher, 10).await;

    let ids = publish_load(&mut publisher, Duration::from_millis(100), |i| {
        if i == 5 {
            ses.answer(Some(SES_THROTTLED));
        }
    })
    .await;
    // Throttled for ~8 s in all, then the account is paused for 8 s, then SES is back.
    tokio::time::sleep(Duration::from_secs(4)).await;
    ses.answer(Some(SES_PAUSED));
    tokio::time::sleep(Duration::from_secs(8)).await;
    ses.answer(None);
    let refused = ses.refused.load(std::sync::atomic::Ordering::SeqCst);

    let ledger = faults::ledger(&clients, &audience, &ids, SETTLE).await;
    println!("SES refused {refused} sends (throttled, then paused)");
    assert!(
        refused > 0,
        "the fault was never seen: the test proves nothing"
    );
    ledger.assert_clean("SES throttling 8 s, then account paused 8 s, then success");
    assert_eq!(ledger.in_dlq(), 0, "nothing is a mail's own fault here");
    running.stop(Duration::from_secs(60)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sqs_throttling_for_20_s_loses_and_repeats_nothing() {
    let (clients, audience) = stage("faultsqs").await;
    let localstack = endpoint("AWS_ENDPOINT_URL_SQS", "http://127.0.0.1:4566");
    let sqs = StandIn::start(localstack, |_| true).await;
    let mut through = clients.clone();
    through.sqs = aws_sdk_sqs::Client::from_conf(
        clients
            .sqs
            .config()
            .to_builder()
            .endpoint_url(&sqs.url)
            .build(),
    );
    let mut publisher = fedmsg_publisher();
    let running = start_following(&through, &audience, &mut publisher, 10).await;

    let mut from = None;
    let ids = publish_load(&mut publisher, Duration::from_millis(100), |i| {
        if i == 10 {
            sqs.answer(Some(SQS_THROTTLED));
            from = Some(tokio::time::Instant::now());
        }
    })
    .await;
    tokio::time::sleep_until(from.unwrap() + Duration::from_secs(20)).await;
    sqs.answer(None);
    let refused = sqs.refused.load(std::sync::atomic::Ordering::SeqCst);

    let ledger = faults::ledger(&clients, &audience, &ids, SETTLE).await;
    println!("SQS throttled {refused} calls");
    assert!(
        refused > 0,
        "the fault was never seen: the test proves nothing"
    );
    ledger.assert_clean("SQS throttling every call for 20 s");
    assert_eq!(ledger.in_dlq(), 0);
    running.stop(Duration::from_secs(60)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_runners_on_one_prefix_send_each_mail_once() {
    let (clients, audience) = stage("faulttwo").await;
    let mut publisher = fedmsg_publisher();
    let first = start_following(&clients, &audience, &mut publisher, 10).await;
    // The second one's bridge follows the same bus: every message enters the ingest queue
    // twice, and both runners' functions take records from the same queues.
    let mut second = RunningSystem::start(
        &clients,
        options_with_visibility(publisher.endpoint(), &temp_dir("faults-second"), 10),
    );
    second.healthz().await;
    // Time for the second bridge to subscribe (a message it misses enters the queue once,
    // which still leaves two runners competing for every queue).
    tokio::time::sleep(Duration::from_secs(3)).await;

    let ids = publish_load(&mut publisher, Duration::from_millis(50), |_| {}).await;
    let ledger = faults::ledger(&clients, &audience, &ids, SETTLE).await;
    ledger.assert_clean("2 local runners on one prefix, both bridges on the bus");
    assert_eq!(ledger.in_dlq(), 0);
    first.stop(Duration::from_secs(60)).await;
    second.stop(Duration::from_secs(60)).await;
}

fn amqp_message(topic: &str, n: usize) -> OutgoingMessage {
    let mut headers = serde_json::Map::new();
    headers.insert("fedora_messaging_schema".into(), "base.message".into());
    headers.insert("fedora_messaging_severity".into(), 20.into());
    OutgoingMessage {
        id: uuid::Uuid::new_v4().to_string(),
        topic: topic.to_owned(),
        headers,
        body: json!({"n": n, "agent": "faultsuite"}),
    }
}

/// Publishes probes on AMQP until the prober has mail.
async fn amqp_probe(config: &AmqpConfig, audience: &Audience) {
    let publisher = AmqpPublisher::connect(config).await.expect("a publisher");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    let prober = [audience.prober.clone()].into();
    loop {
        publisher
            .publish_all(&[amqp_message(PROBE_TOPIC, 0)], 1)
            .await
            .expect("the broker confirms the probe");
        if !faults::mail_counts(&prober).await.is_empty() {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no probe arrived");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    publisher.close().await;
}

/// Publishes the load on AMQP (5 every 250 ms) in the background; returns the ids.
fn amqp_load(config: &AmqpConfig) -> (Vec<String>, tokio::task::JoinHandle<()>) {
    let messages: Vec<OutgoingMessage> = (0..LOAD).map(|n| amqp_message(LOAD_TOPIC, n)).collect();
    let ids = messages.iter().map(|m| m.id.clone()).collect();
    let config = AmqpConfig {
        prefetch: 1,
        ..config.clone()
    };
    let task = tokio::spawn(async move {
        let publisher = AmqpPublisher::connect(&config).await.expect("a publisher");
        for chunk in messages.chunks(5) {
            publisher.publish_all(chunk, 5).await.expect("confirmed");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        publisher.close().await;
    });
    (ids, task)
}

/// Waits until the followers have at least `n` of the load's mails in all.
async fn wait_mails(audience: &Audience, n: usize) {
    let followers = audience.followers.iter().cloned().collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    loop {
        let got = faults::mail_counts(&followers).await.len();
        if got >= n {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {got} mails arrived"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn kill_9(child: &mut Child) {
    child.kill().expect("kill -9");
    let _ = child.wait();
}

/// The `fmn-local` binary, built by `cargo build --workspace --bins` (as `make test` does).
fn local_binary() -> std::path::PathBuf {
    let bin = bridge_binary().with_file_name("fmn-local");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build --workspace --bins`",
        bin.display()
    );
    bin
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_of_the_local_runner_mid_stream_loses_nothing() {
    let (clients, audience) = stage("faultkillrun").await;
    let broker = RabbitMq::start();
    let config = broker.bridge_config(&uuid::Uuid::new_v4().to_string(), 50);
    let dir = temp_dir("faults-kill-runner");
    // SES as on AWS: mail sent through a configuration set whose events reach the mail-events
    // queue (moto has no event publishing: the stand-in adds it).
    let events_queue = clients
        .queue_url(fmn_aws::QueueName::MailEvents)
        .await
        .unwrap();
    let ses = SesWithEvents::start(clients.sqs.clone(), events_queue).await;
    let spawn = || {
        let mut c = Command::new(local_binary());
        RabbitMq::bridge_env(&mut c, &config, &dir.join("spool"));
        c.env("FMN_RESOURCE_PREFIX", clients.names.prefix())
            .env("FMN_WEB_ADDR", format!("127.0.0.1:{}", free_port()))
            .env("FMN_DEMO", "false")
            .env("AWS_ENDPOINT_URL_SESV2", &ses.url)
            .env("FMN_SES_CONFIGURATION_SET", "fmn-mail")
            // A claim left `sending` by the killed process is taken again after this, unless
            // SES's Send event has settled it first: longer than the restart takes (a loaded
            // 2-core CI machine took over 20 s), as the default 300 s is.
            .env("FMN_SEND_LEASE", "60")
            // A job that finds its claim still leased comes back on this schedule, whatever
            // visibility timeout the queue had when it was received (the restart puts the
            // template's 360 s back, longer than SETTLE).
            .env("FMN_RETRY_SCHEDULE", "5s,10s,20s,30s,1m,2m")
            // Batches in flight as Lambda runs them: several per queue.
            .env("FMN_LAMBDA_CONCURRENCY", "true")
            // What the killed process held comes back after 10 s. Set by the runner as it
            // creates the queues, not by the test afterwards: a record received before a
            // test's change (a long poll open at the kill, or one just after the restart put
            // the template's 360 s back) stayed away past SETTLE.
            .env("FMN_QUEUE_VISIBILITY", "10")
            // Both runners' logs, for a failure to be explained.
            .env("RUST_LOG", "info")
            .stdout(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(dir.join("runner.log"))
                    .expect("the runners' log"),
            )
            .spawn()
            .expect("starting fmn-local")
    };
    let mut runner = spawn();
    amqp_probe(&config, &audience).await;

    let (ids, publishing) = amqp_load(&config);
    wait_mails(&audience, LOAD / 2).await;
    kill_9(&mut runner);
    publishing.await.unwrap();
    let mut runner = spawn();

    let ledger = faults::ledger(&clients, &audience, &ids, SETTLE).await;
    kill_9(&mut runner);
    // A kill between SES accepting a mail and its record being marked `sent` leaves the record
    // `sending`; SES's Send event (tagged with the record) settles it before the lease runs
    // out, so the redelivered job finds `sent` instead of mailing again.
    let settled_by_event = clients
        .dynamodb
        .scan()
        .table_name(clients.table(fmn_aws::TableName::DeliveryRecords))
        .filter_expression("confirmed_by = :e")
        .expression_attribute_values(
            ":e",
            aws_sdk_dynamodb::types::AttributeValue::S("ses-event".into()),
        )
        .send()
        .await
        .expect("scanning the delivery records")
        .count;
    println!(
        "SES events published: {}; records the kill left `sending` and a Send event settled: {settled_by_event}",
        ses.published.load(std::sync::atomic::Ordering::SeqCst)
    );
    if ledger.lost() > 0 {
        faults::print_queues(&clients).await;
        println!("the runners' log: {}", dir.join("runner.log").display());
    }
    ledger.assert_clean("kill -9 of the local runner (bridge and functions) mid-stream");
    assert_eq!(ledger.in_dlq(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_of_the_bridge_mid_stream_loses_and_repeats_nothing() {
    let (clients, audience) = stage("faultkillbridge").await;
    let broker = RabbitMq::start();
    let config = broker.bridge_config(&uuid::Uuid::new_v4().to_string(), 50);
    let dir = temp_dir("faults-kill-bridge");
    // The functions in-process; their own bridge follows a fedmsg endpoint nobody publishes on,
    // so the one bus here is AMQP, through the bridge binary.
    let idle = fedmsg_publisher();
    let running = RunningSystem::start(
        &clients,
        options_with_visibility(idle.endpoint(), &temp_dir("faults-idle"), 10),
    );
    let spawn = || {
        let mut c = Command::new(bridge_binary());
        RabbitMq::bridge_env(&mut c, &config, &dir.join("spool"));
        c.env("FMN_RESOURCE_PREFIX", clients.names.prefix())
            .spawn()
            .expect("starting fmn-ingest-bridge")
    };
    let mut bridge = spawn();
    amqp_probe(&config, &audience).await;

    let (ids, publishing) = amqp_load(&config);
    wait_mails(&audience, LOAD / 2).await;
    kill_9(&mut bridge);
    publishing.await.unwrap();
    let mut bridge = spawn();

    let ledger = faults::ledger(&clients, &audience, &ids, SETTLE).await;
    kill_9(&mut bridge);
    ledger.assert_clean("kill -9 of the bridge binary mid-stream");
    assert_eq!(ledger.in_dlq(), 0);
    running.stop(Duration::from_secs(60)).await;
}
