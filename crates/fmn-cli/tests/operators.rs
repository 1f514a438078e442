//! The operators' commands on the emulators, through the real `fmn` binary: `fmn dlq
//! list|show|redrive` on messages dead-lettered by the functions' own code path, and `fmn
//! replay` of stored messages, with deliver-email (SES v2 on moto) taking what they queue.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fmn_aws::digest_store::DigestStore;
use fmn_aws::dlq::DeadLetters;
use fmn_aws::ingest_wire::{compress, decode, Decoded, ENCODING_ATTRIBUTE};
use fmn_aws::job_queue::{enqueue_jobs, QueuedJob};
use fmn_aws::prefs_store::PrefsStore;
use fmn_aws::recent::RecentMessages;
use fmn_aws::sqs::{send_all, OutgoingMessage};
use fmn_aws::{FunctionName, QueueName};
use fmn_core::jobs::DeliveryJob;
use fmn_core::message::Envelope;
use fmn_core::prefs::{Delivery, Destination, Filter, UserPrefs};
use fmn_core::rules::{Rule, RuleKind};
use fmn_integration_tests::cli::{fails_with, ok};
use fmn_integration_tests::dlq::dead_letter;
use fmn_integration_tests::mail::{fedmsg_id, mail_settings, mail_to, start_deliver_email};
use fmn_integration_tests::{
    corpus_envelope, email_job, job_for, repo_root, sample_notification, sqs, start_function,
    wait_for_records, TestEnv,
};

fn fmn(env: &TestEnv, args: &[&str]) -> std::process::Output {
    fmn_integration_tests::cli::fmn(env!("CARGO_BIN_EXE_fmn"), env, args)
}

fn unique(tag: &str) -> String {
    format!("{tag}-{}", &uuid::Uuid::new_v4().simple().to_string()[..10])
}

fn queued(job: &DeliveryJob) -> QueuedJob {
    QueuedJob {
        job_id: job.job_id.clone(),
        body: serde_json::to_string(job).unwrap(),
    }
}

async fn visible(env: &TestEnv, dlq: QueueName) -> u64 {
    DeadLetters::open(&env.clients, dlq)
        .await
        .unwrap()
        .depth()
        .await
        .unwrap()
        .visible
}

/// The line of `fmn dlq list` naming `id`.
fn line_with<'a>(stdout: &'a str, id: &str) -> &'a str {
    stdout
        .lines()
        .find(|l| l.contains(id))
        .unwrap_or_else(|| panic!("no line with {id}:\n{stdout}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn dead_letters_are_listed_without_being_consumed_then_redriven_once() {
    let env = TestEnv::new("cli-dlq").await;
    let settings = mail_settings(&env).await;

    // Three mails deliver-email gave up on, one ingest message the match function refused
    // (compressed by the bridge: its encoding must survive the round trip), one IRC job.
    let addresses: Vec<String> = (0..3)
        .map(|i| format!("{}@example.org", unique(&format!("dlq{i}"))))
        .collect();
    let jobs: Vec<DeliveryJob> = addresses
        .iter()
        .enumerate()
        .map(|(i, a)| email_job("alice", a, &format!("FEDORA-2025-dlq{i}")))
        .collect();
    enqueue_jobs(
        &env.clients.sqs,
        env.queue_url(QueueName::Email),
        &jobs.iter().map(queued).collect::<Vec<_>>(),
    )
    .await
    .unwrap();
    let gave_up = "gave up after 6 tries (retry schedule 5s,1m,10m,1h,6h): SES sending paused";
    let email_ids = dead_letter(&env, QueueName::Email, 3, gave_up).await;

    let envelope = corpus_envelope("bodhi.TestBodhiRequestMultiplePackagesPerUpdate");
    let (body, encoding) = (compress(&envelope.to_string()), "gzip+base64");
    send_all(
        &env.clients.sqs,
        env.queue_url(QueueName::Ingest),
        &[OutgoingMessage::new("ingest-1", body).with_attribute(ENCODING_ATTRIBUTE, encoding)],
    )
    .await
    .unwrap();
    let ingest_ids = dead_letter(&env, QueueName::Ingest, 1, "preferences are not loaded").await;

    let irc_job = job_for(
        "alice",
        Destination::irc("irc-1", "alice_").confirmed(true),
        sample_notification("FEDORA-2025-irc"),
    );
    enqueue_jobs(
        &env.clients.sqs,
        env.queue_url(QueueName::Irc),
        &[queued(&irc_job)],
    )
    .await
    .unwrap();
    let irc_ids = dead_letter(&env, QueueName::Irc, 1, "the IRC server refused the bot").await;

    // list: counts, ids, ages and reasons; nothing consumed.
    let stdout = ok(&fmn(&env, &["dlq", "list"]));
    assert!(
        stdout.contains("email-dlq (back to email): 3 waiting"),
        "{stdout}"
    );
    assert!(
        stdout.contains("ingest-dlq (back to ingest): 1 waiting"),
        "{stdout}"
    );
    assert!(
        stdout.contains("irc-dlq.fifo (back to irc.fifo): 1 waiting"),
        "{stdout}"
    );
    assert!(
        stdout.contains("mail-events-dlq (back to mail-events): 0 waiting"),
        "{stdout}"
    );
    for id in &email_ids {
        assert!(line_with(&stdout, id).contains(gave_up), "{stdout}");
    }
    assert!(line_with(&stdout, &ingest_ids[0]).contains("preferences are not loaded"));
    assert!(line_with(&stdout, &irc_ids[0]).contains("refused the bot"));
    assert_eq!(visible(&env, QueueName::EmailDeadLetter).await, 3);
    assert_eq!(visible(&env, QueueName::IngestDeadLetter).await, 1);
    let stdout = ok(&fmn(
        &env,
        &["dlq", "list", "--queue", "email", "--limit", "2"],
    ));
    assert!(stdout.contains("… 1 more"), "{stdout}");

    // show: by original id; the ingest body decoded, pretty JSON; every attribute.
    let stdout = ok(&fmn(
        &env,
        &["dlq", "show", &ingest_ids[0], "--queue", "ingest"],
    ));
    assert!(
        stdout.contains("reason: preferences are not loaded"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("original id: {}", ingest_ids[0])),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("{ENCODING_ATTRIBUTE}: {encoding}")),
        "{stdout}"
    );
    assert!(stdout.contains("ApproximateReceiveCount"), "{stdout}");
    assert!(
        stdout.contains("\n  \"topic\": \""),
        "pretty JSON: {stdout}"
    );
    fails_with(
        &fmn(&env, &["dlq", "show", "no-such-message"]),
        "no message `no-such-message` waits in",
    );

    // A dry run moves nothing.
    let stdout = ok(&fmn(
        &env,
        &["dlq", "redrive", "--queue", "email", "--dry-run"],
    ));
    assert!(stdout.contains("dry run: would move 3"), "{stdout}");
    assert_eq!(visible(&env, QueueName::EmailDeadLetter).await, 3);

    // One by id, then the rest of every queue.
    let out = fmn(
        &env,
        &["dlq", "redrive", "--queue", "email", "--id", &email_ids[0]],
    );
    let stdout = ok(&out);
    assert!(stdout.contains("moved 1, failed 0"), "{stdout}");
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("(original {})", email_ids[0])));
    let started = Instant::now();
    let stdout = ok(&fmn(&env, &["dlq", "redrive"]));
    let took = started.elapsed();
    assert!(
        stdout.contains("email-dlq → email: moved 2, failed 0"),
        "{stdout}"
    );
    assert!(
        stdout.contains("ingest-dlq → ingest: moved 1, failed 0"),
        "{stdout}"
    );
    assert!(
        stdout.contains("irc-dlq.fifo → irc.fifo: moved 1, failed 0"),
        "{stdout}"
    );
    assert!(stdout.contains("moved 4, failed 0"), "{stdout}");
    eprintln!("redrive of 4 messages over 4 queues: {took:?}");

    // Back where they came from, as they were: the ingest message with its encoding and
    // without the dead-lettering's attributes; the IRC job on the FIFO queue.
    let ingest = env.drain(QueueName::Ingest, 1, 10).await;
    assert_eq!(ingest.len(), 1);
    let attrs = ingest[0].message_attributes.clone().unwrap_or_default();
    assert_eq!(
        attrs.keys().map(String::as_str).collect::<Vec<_>>(),
        [ENCODING_ATTRIBUTE]
    );
    let text = match decode(
        ingest[0].body.as_deref().unwrap(),
        attrs[ENCODING_ATTRIBUTE].string_value.as_deref(),
    )
    .unwrap()
    {
        Decoded::Envelope(text) => text,
        Decoded::Stored(_) => panic!("stored aside"),
    };
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&text).unwrap(),
        envelope
    );
    let irc = env.drain(QueueName::Irc, 1, 10).await;
    assert_eq!(irc.len(), 1);
    let redriven: DeliveryJob = serde_json::from_str(irc[0].body.as_deref().unwrap()).unwrap();
    assert_eq!(redriven.job_id, irc_job.job_id);

    // deliver-email takes the three jobs back: each mail goes out once.
    let (stop, stats) = start_deliver_email(&env, settings).await;
    wait_for_records(&stats, 3).await;
    for a in &addresses {
        assert_eq!(mail_to(a).await.len(), 1, "{a}");
    }

    // Nothing is left to move.
    let stdout = ok(&fmn(&env, &["dlq", "redrive"]));
    assert!(stdout.contains("moved 0, failed 0"), "{stdout}");
    fails_with(
        &fmn(&env, &["dlq", "redrive", "--id", "no-such-message"]),
        "not found in the dead-letter queues: no-such-message",
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.cancel();
    for a in &addresses {
        assert_eq!(mail_to(a).await.len(), 1, "{a}");
    }
    assert_eq!(stats.failed.load(Ordering::Relaxed), 0);
}

/// A user with one filter on every topic, feeding `destination`.
fn user_of_everything(name: &str, destination: Destination) -> UserPrefs {
    let mut u = UserPrefs::new(name);
    u.filters.push(Filter::new(
        "filter-1".into(),
        "everything".into(),
        vec![destination.id.clone()],
        vec![Rule::new(RuleKind::Topic { glob: "*".into() })],
    ));
    u.destinations.push(destination);
    u
}

#[tokio::test(flavor = "multi_thread")]
async fn replay_delivers_what_was_missed_and_nothing_twice() {
    let env = TestEnv::new("cli-replay").await;
    let settings = mail_settings(&env).await;
    let prefs = PrefsStore::from_clients(&env.clients);
    let (alice, bob, carol) = (unique("alice"), unique("bob"), unique("carol"));
    let address = |u: &str| format!("{u}@example.org");
    for (name, destination) in [
        (&alice, Destination::email("email-1", address(&alice))),
        (&bob, Destination::email("email-1", address(&bob))),
        (
            &carol,
            Destination::email("email-1", address(&carol)).with_delivery(Delivery::Digest {
                batch_delta: Some(86400),
                batch_count: None,
                schedule: None,
            }),
        ),
    ] {
        prefs
            .create(&user_of_everything(name, destination.confirmed(true)))
            .await
            .unwrap();
    }

    // Two messages through the real match function.
    let messages: Vec<serde_json::Value> = [
        "bodhi.TestBodhiRequestMultiplePackagesPerUpdate",
        "__init__.TestLookaside",
    ]
    .iter()
    .map(|id| corpus_envelope(id))
    .collect();
    let msg_ids: Vec<String> = messages
        .iter()
        .map(|m| {
            Envelope::from_value(m.clone())
                .unwrap()
                .msg_id()
                .to_string()
        })
        .collect();
    let matcher = Arc::new(fmn_match::MatchHandler::new(&env.clients).await.unwrap());
    let (stop_match, match_stats) = start_function(&env, FunctionName::Match, matcher);
    send_all(
        &env.clients.sqs,
        env.queue_url(QueueName::Ingest),
        &messages
            .iter()
            .enumerate()
            .map(|(i, m)| OutgoingMessage::new(format!("m{i}"), m.to_string()))
            .collect::<Vec<_>>(),
    )
    .await
    .unwrap();
    wait_for_records(&match_stats, 2).await;
    stop_match.cancel();

    // Four mail jobs (alice and bob, two messages); bob's second is lost before delivery.
    let jobs: Vec<DeliveryJob> = env
        .drain(QueueName::Email, 4, 30)
        .await
        .iter()
        .map(|m| serde_json::from_str(m.body.as_deref().unwrap()).unwrap())
        .collect();
    assert_eq!(jobs.len(), 4);
    let lost = jobs
        .iter()
        .find(|j| j.user == bob && j.notification.msg_id == msg_ids[1])
        .unwrap()
        .clone();
    let kept: Vec<QueuedJob> = jobs
        .iter()
        .filter(|j| j.job_id != lost.job_id)
        .map(queued)
        .collect();
    enqueue_jobs(&env.clients.sqs, env.queue_url(QueueName::Email), &kept)
        .await
        .unwrap();
    let (stop, stats) = start_deliver_email(&env, settings).await;
    wait_for_records(&stats, 3).await;
    assert_eq!(mail_to(&address(&alice)).await.len(), 2);
    assert_eq!(mail_to(&address(&bob)).await.len(), 1);
    let digest = DigestStore::from_clients(&env.clients);
    let carol_key = fmn_core::jobs::digest_key(&carol, "email-1");
    assert_eq!(digest.items(&carol_key).await.unwrap().len(), 2);

    // Refused: older than the store keeps; an unknown user; a bad time.
    fails_with(
        &fmn(&env, &["replay", "--since", "20d"]),
        "older than what recent-messages keeps (14 days)",
    );
    fails_with(
        &fmn(&env, &["replay", "--since", "1h", "--user", "nobody-here"]),
        "no user `nobody-here`",
    );
    fails_with(
        &fmn(&env, &["replay", "--since", "yesterday"]),
        "neither an RFC 3339 time",
    );
    // A window before the messages arrived holds nothing.
    let stdout = ok(&fmn(&env, &["replay", "--since", "1h", "--until", "30m"]));
    assert!(stdout.contains("0 messages in the window"), "{stdout}");

    // A dry run lists the six jobs and queues nothing.
    let stdout = ok(&fmn(&env, &["replay", "--since", "1h", "--dry-run"]));
    assert!(
        stdout.contains("2 messages in the window, 2 matched; 6 jobs"),
        "{stdout}"
    );
    assert_eq!(
        stdout.lines().filter(|l| l.contains("\temail ")).count(),
        6,
        "{stdout}"
    );
    assert_eq!(
        sqs::depth(&env.clients.sqs, env.queue_url(QueueName::Email)).await,
        0
    );

    // Alice's replay: her two jobs queued again, and dropped by delivery (sent before).
    let stdout = ok(&fmn(&env, &["replay", "--since", "1h", "--user", &alice]));
    assert!(
        stdout.contains("2 messages in the window, 2 matched; 2 jobs"),
        "{stdout}"
    );
    assert!(stdout.contains("2 email and 0 IRC jobs queued"), "{stdout}");
    wait_for_records(&stats, 5).await;
    assert_eq!(mail_to(&address(&alice)).await.len(), 2);
    assert_eq!(
        mail_to(&address(&bob)).await.len(),
        1,
        "--user kept bob's out"
    );

    // Everyone: bob's lost job goes out; nothing else does; no digest item twice.
    let stdout = ok(&fmn(
        &env,
        &["replay", "--since", "10m", "--until", &rfc3339_now()],
    ));
    assert!(
        stdout.contains("2 messages in the window, 2 matched; 6 jobs"),
        "{stdout}"
    );
    assert!(
        stdout.contains("digest items 0 new, 2 there before"),
        "{stdout}"
    );
    wait_for_records(&stats, 9).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.cancel();
    assert_eq!(mail_to(&address(&alice)).await.len(), 2);
    let bobs = mail_to(&address(&bob)).await;
    assert_eq!(bobs.len(), 2);
    let mut ids: Vec<String> = bobs.iter().filter_map(fedmsg_id).collect();
    ids.sort();
    let mut expected = msg_ids.clone();
    expected.sort();
    assert_eq!(ids, expected, "one mail per message");
    assert_eq!(digest.items(&carol_key).await.unwrap().len(), 2);
    assert_eq!(stats.failed.load(Ordering::Relaxed), 0);
}

fn rfc3339_now() -> String {
    use time::format_description::well_known::Rfc3339;
    time::OffsetDateTime::now_utc().format(&Rfc3339).unwrap()
}

/// Every corpus message stored as the match function stores it, one user who wants them all:
/// a replay reads the whole window in pages over parallel segments and queues a job per
/// message. Prints the rate.
#[tokio::test(flavor = "multi_thread")]
async fn replay_reads_the_whole_window_and_reports_its_rate() {
    let env = TestEnv::new("cli-replay-all").await;
    let name = unique("dora");
    PrefsStore::from_clients(&env.clients)
        .create(&user_of_everything(
            &name,
            Destination::email("email-1", format!("{name}@example.org")).confirmed(true),
        ))
        .await
        .unwrap();
    let corpus =
        std::fs::read_to_string(repo_root().join("tests/data/fedmsg-examples.jsonl")).unwrap();
    let recent = RecentMessages::from_clients(&env.clients);
    let mut stored = std::collections::BTreeSet::new();
    for line in corpus.lines() {
        let value: serde_json::Value = serde_json::from_str(line).unwrap();
        let Ok(envelope) = Envelope::from_value(value["message"].clone()) else {
            continue;
        };
        if stored.insert(envelope.msg_id().to_string()) {
            recent
                .put(
                    envelope.msg_id(),
                    envelope.topic().as_str(),
                    &envelope.to_json(),
                )
                .await
                .unwrap();
        }
    }
    let n = stored.len();
    assert!(n > 300, "{n} messages stored");

    let started = Instant::now();
    let out = fmn_integration_tests::cli::fmn_with(
        env!("CARGO_BIN_EXE_fmn"),
        &env,
        &["replay", "--since", "1h", "--segments", "4"],
        &[("FMN_PROGRESS_INTERVAL", "0.5")],
    );
    let took = started.elapsed();
    let stdout = ok(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("progress: scanned"),
        "progress lines on stderr: {stderr}"
    );
    assert!(
        stdout.contains(&format!(
            "{n} messages in the window, {n} matched; {n} jobs"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("{n} email and 0 IRC jobs queued")),
        "{stdout}"
    );
    assert!(stdout.contains("0 failed"), "{stdout}");
    assert_eq!(
        sqs::depth(&env.clients.sqs, env.queue_url(QueueName::Email)).await,
        n as u64
    );
    eprintln!(
        "replay of {n} stored messages: {:.1} s, {:.0} messages/s (whole command)\n{stdout}",
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64()
    );
}
