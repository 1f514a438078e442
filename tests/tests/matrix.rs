//! Matrix delivery against a real homeserver: Synapse started once for this test binary
//! (`support/matrix.rs`), the deliver-matrix handler driven on the Matrix queue on LocalStack
//! as Lambda would, its records and rooms in DynamoDB Local, and a second account (the test,
//! through the client-server API) accepting the bot's invitation and reading the direct
//! messages.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fmn_aws::batch::REASON_ATTRIBUTE;
use fmn_aws::delivery_records::{Channel, DeliveryRecords};
use fmn_aws::digest_store::DigestStore;
use fmn_aws::dynamo::s;
use fmn_aws::job_queue::{enqueue_jobs, QueuedJob};
use fmn_aws::matrix_rooms::MatrixRooms;
use fmn_aws::{FunctionName, QueueName, TableName};
use fmn_core::jobs::{DeliveryJob, Notification};
use fmn_core::matrix::PreparedMessage;
use fmn_core::prefs::{Delivery, Destination, DestinationKind};
use fmn_deliver_matrix::{DeliverMatrixHandler, MatrixSettings};
use fmn_integration_tests::matrix::{synapse, MatrixUser, MESSAGE_BURST, MESSAGE_RATE};
use fmn_integration_tests::{
    job_for, sample_notification, start_function, store_job_owners, wait_for_records, TestEnv,
};
use fmn_local::stats::FunctionStats;
use tokio_util::sync::CancellationToken;

fn job(user_id: &str, n: usize) -> DeliveryJob {
    let destination = Destination::matrix("matrix-1", user_id).confirmed(true);
    let notification = Notification {
        agent: Some("bob".into()),
        subtitle: Some(format!("bob commented on update {n} <b>bold</b>")),
        link: Some(format!("https://bodhi.fedoraproject.org/updates/{n}")),
        usernames: vec!["bob".into()],
        timestamp: Some(1_700_000_000.0),
        ..sample_notification(&format!("2024-{user_id}-{n}"))
    };
    job_for("alice", destination, notification)
}

fn queued(j: &DeliveryJob) -> QueuedJob {
    QueuedJob {
        job_id: j.job_id.clone(),
        body: serde_json::to_string(j).unwrap(),
    }
}

/// The same job queued again as SQS would deliver it again (the FIFO queue drops a repeat of
/// a deduplication id within five minutes: another id, the same body).
fn queued_again(j: &DeliveryJob, n: usize) -> QueuedJob {
    QueuedJob {
        job_id: format!("{}-again-{n}", j.job_id),
        body: serde_json::to_string(j).unwrap(),
    }
}

async fn enqueue(env: &TestEnv, jobs: &[QueuedJob]) {
    enqueue_jobs(&env.clients.sqs, env.queue_url(QueueName::Matrix), jobs)
        .await
        .expect("SendMessageBatch");
}

/// deliver-matrix as `bot`, on the Matrix queue, with a retry schedule (rate limits beyond the
/// batch's time are held back in the queue).
async fn start_deliver_matrix(
    env: &TestEnv,
    bot: &MatrixUser,
) -> (
    CancellationToken,
    Arc<FunctionStats>,
    Arc<DeliverMatrixHandler>,
) {
    start_deliver_matrix_with(env, bot, MatrixSettings::default().batch_time).await
}

/// The same, with `batch_time` of sending per invocation.
async fn start_deliver_matrix_with(
    env: &TestEnv,
    bot: &MatrixUser,
    batch_time: Duration,
) -> (
    CancellationToken,
    Arc<FunctionStats>,
    Arc<DeliverMatrixHandler>,
) {
    let settings = MatrixSettings {
        homeserver: synapse().base.clone(),
        access_token: Some(bot.access_token.clone()),
        batch_time,
        ..MatrixSettings::default()
    };
    let handler = DeliverMatrixHandler::with_settings(&env.clients, settings)
        .await
        .expect("handler")
        .with_retry_schedule(Some("1s,1s,1s,1s,1s".parse().unwrap()));
    assert_eq!(handler.bot(), bot.user_id);
    let handler = Arc::new(handler);
    let (stop, stats) = start_function(env, FunctionName::DeliverMatrix, Arc::clone(&handler));
    (stop, stats, handler)
}

/// The number in a delivery's body (`… update <n> …`).
fn update_number(body: &str) -> usize {
    body.strip_prefix("[bodhi] bob commented on update ")
        .and_then(|t| t.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected message {body:?}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_confirmation_and_a_job_arrive_in_one_direct_message_room() {
    let env = TestEnv::new("mxbasic").await;
    let hs = synapse();
    let bot = hs.register("fmnbot").await;
    let alice = hs.register("alice").await;
    let (stop, stats, _handler) = start_deliver_matrix(&env, &bot).await;

    let confirmation = PreparedMessage {
        job_id: format!("confirm-{}", uuid::Uuid::new_v4().simple()),
        user: "alice".into(),
        destination: "confirmation".into(),
        user_id: alice.user_id.clone(),
        text: fmn_core::matrix::confirmation("alice", "http://127.0.0.1:8080/confirm/tok", 24),
    };
    enqueue(
        &env,
        &[QueuedJob {
            job_id: confirmation.job_id.clone(),
            body: confirmation.to_json(),
        }],
    )
    .await;
    wait_for_records(&stats, 1).await;
    let j = job(&alice.user_id, 7);
    enqueue(&env, &[queued(&j)]).await;
    let got = alice
        .wait_for_messages(&bot.user_id, 2, Duration::from_secs(60))
        .await;
    wait_for_records(&stats, 2).await;
    stop.cancel();

    assert_eq!(got.len(), 2, "{got:?}");
    assert!(
        got[0].body().contains("account `alice` has asked")
            && got[0].body().contains("http://127.0.0.1:8080/confirm/tok"),
        "{}",
        got[0].body()
    );
    assert!(got[0]
        .html()
        .contains("<a href=\"http://127.0.0.1:8080/confirm/tok\">"));
    assert_eq!(
        got[1].body(),
        "[bodhi] bob commented on update 7 <b>bold</b>\nhttps://bodhi.fedoraproject.org/updates/7\nby bob · 2023-11-14 22:13:20 UTC · filter: My packages"
    );
    assert_eq!(got[1].content["format"], "org.matrix.custom.html");
    assert_eq!(got[1].content["msgtype"], "m.notice");
    assert!(
        got[1]
            .html()
            .contains("bob commented on update 7 &lt;b&gt;bold&lt;/b&gt;"),
        "content is escaped: {}",
        got[1].html()
    );
    assert_eq!(got[0].room, got[1].room, "one direct-message room, reused");
    let remembered = MatrixRooms::from_clients(&env.clients)
        .get(&bot.user_id, &alice.user_id)
        .await
        .unwrap();
    assert_eq!(remembered.as_deref(), Some(got[0].room.as_str()));
    assert_eq!(stats.failed.load(Ordering::Relaxed), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_delivered_twice_shows_once_even_when_our_record_is_lost() {
    let env = TestEnv::new("mxrepeat").await;
    let hs = synapse();
    let bot = hs.register("fmnbot").await;
    let carol = hs.register("carol").await;
    let (stop, stats, _handler) = start_deliver_matrix(&env, &bot).await;

    let first = job(&carol.user_id, 1);
    enqueue(&env, &[queued(&first)]).await;
    carol
        .wait_for_messages(&bot.user_id, 1, Duration::from_secs(60))
        .await;
    wait_for_records(&stats, 1).await;

    // The same job again (SQS delivered twice): our record drops it.
    enqueue(&env, &[queued_again(&first, 1)]).await;
    wait_for_records(&stats, 2).await;
    // Again, with the record gone (a crash between the send and marking it): the job id is the
    // transaction id, so the homeserver answers with the first event instead of a new one.
    let key = Channel::Matrix.key(&first.job_id);
    env.clients
        .dynamodb
        .delete_item()
        .table_name(env.clients.table(TableName::DeliveryRecords))
        .key("pk", s(key.as_str()))
        .send()
        .await
        .unwrap();
    enqueue(&env, &[queued_again(&first, 2)]).await;
    wait_for_records(&stats, 3).await;
    let record = DeliveryRecords::from_clients(&env.clients, Duration::from_secs(300))
        .get(&key)
        .await
        .unwrap()
        .expect("the repeat recorded its delivery again");
    assert_eq!(fmn_aws::dynamo::get_s(&record, "state"), Some("sent"));
    // A marker after them: anything a repeat had shown would come before it.
    let marker = job(&carol.user_id, 2);
    enqueue(&env, &[queued(&marker)]).await;
    let got = carol
        .wait_for_messages(&bot.user_id, 2, Duration::from_secs(60))
        .await;
    wait_for_records(&stats, 4).await;
    stop.cancel();

    let numbers: Vec<usize> = got.iter().map(|m| update_number(m.body())).collect();
    assert_eq!(numbers, vec![1, 2], "the repeated job shows once");
    assert_eq!(stats.failed.load(Ordering::Relaxed), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rate_limited_burst_of_200_arrives_complete_and_in_order() {
    // The template's visibility timeout rather than the tests' 1 s: a FIFO queue refuses the
    // receipt handle of a batch that outlived it (deletes fail, the batch comes again).
    let env = TestEnv::with_options(
        "mxburst",
        fmn_aws::provision::ProvisionOptions {
            visibility_timeout_secs: Some(60),
        },
    )
    .await;
    let hs = synapse();
    let bot = hs.register("fmnbot").await;
    let dave = hs.register("dave").await;
    let jobs: Vec<QueuedJob> = (0..200).map(|n| queued(&job(&dave.user_id, n))).collect();
    enqueue(&env, &jobs).await;
    let started = Instant::now();
    // Two seconds of sending per invocation: rate-limit waits that would end later send the
    // rest of the batch back to the queue, held back for the server's delay.
    let (stop, stats, handler) =
        start_deliver_matrix_with(&env, &bot, Duration::from_secs(2)).await;

    let got = dave
        .wait_for_messages(&bot.user_id, 200, Duration::from_secs(300))
        .await;
    let elapsed = started.elapsed();
    stop.cancel();

    let numbers: Vec<usize> = got.iter().map(|m| update_number(m.body())).collect();
    assert_eq!(
        numbers,
        (0..200).collect::<Vec<_>>(),
        "complete, in order, once each"
    );
    assert!(
        handler.rate_limited() > 0,
        "the homeserver's rate limit ({MESSAGE_RATE}/s after {MESSAGE_BURST}) was met"
    );
    eprintln!(
        "matrix burst: 200 messages in {:.1} s ({:.1}/s; Synapse allows {MESSAGE_RATE}/s after a burst of {MESSAGE_BURST}); {} M_LIMIT_EXCEEDED answers honoured; {} invocations, {} records sent back to the queue",
        elapsed.as_secs_f64(),
        200.0 / elapsed.as_secs_f64(),
        handler.rate_limited(),
        stats.invocations.load(Ordering::Relaxed),
        stats.failed.load(Ordering::Relaxed),
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn jobs_that_cannot_be_sent_are_dead_lettered_with_a_reason() {
    let env = TestEnv::new("mxbad").await;
    let hs = synapse();
    let bot = hs.register("fmnbot").await;
    let erin = hs.register("erin").await;
    let (stop, stats, _handler) = start_deliver_matrix(&env, &bot).await;

    let mut to_irc = job(&erin.user_id, 1);
    to_irc.destination.kind = DestinationKind::Irc;
    to_irc.job_id.push_str("-irc");
    let mut bad_id = job(&erin.user_id, 2);
    bad_id.destination.address = "erin".into();
    let nobody = job("@nobody-here:fmn.test", 3);
    let good = job(&erin.user_id, 4);
    enqueue(
        &env,
        &[
            QueuedJob {
                job_id: "x".into(),
                body: "this is not json".into(),
            },
            queued(&to_irc),
            queued(&bad_id),
            queued(&nobody),
            queued(&good),
        ],
    )
    .await;
    let got = erin
        .wait_for_messages(&bot.user_id, 1, Duration::from_secs(60))
        .await;
    wait_for_records(&stats, 5).await;
    stop.cancel();
    assert_eq!(update_number(got[0].body()), 4);

    let dlq = env.queue_url(QueueName::MatrixDeadLetter).to_string();
    let dead =
        fmn_integration_tests::sqs::drain(&env.clients.sqs, &dlq, 4, Duration::from_secs(30)).await;
    let mut reasons: Vec<String> = dead
        .iter()
        .map(|m| {
            m.message_attributes
                .as_ref()
                .and_then(|a| a.get(REASON_ATTRIBUTE))
                .and_then(|v| v.string_value.clone())
                .unwrap_or_default()
        })
        .collect();
    reasons.sort();
    assert_eq!(reasons.len(), 4, "{reasons:?}");
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("not a Matrix job: malformed")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("destination is irc, not matrix")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("not a Matrix user id")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("refused by the homeserver")),
        "{reasons:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_digest_is_one_message_grouped_by_service() {
    let env = TestEnv::new("mxdigest").await;
    let hs = synapse();
    let bot = hs.register("fmnbot").await;
    let frank = hs.register("frank").await;
    let destination = Destination::matrix("matrix-1", &frank.user_id)
        .confirmed(true)
        .with_delivery(Delivery::Digest {
            batch_delta: None,
            batch_count: Some(3),
            schedule: None,
        });
    let item = |app: &str, n: usize, at: f64| {
        let mut j = job(&frank.user_id, n);
        j.destination = destination.clone();
        j.notification.app = app.into();
        j.notification.msg_id = format!("digest-{}-{n}", frank.user_id);
        j.notification.timestamp = Some(at);
        j.job_id = fmn_core::jobs::job_id(&j.notification.msg_id, &j.user, &j.destination);
        j
    };
    let items = [
        item("koji", 1, 1.7e9 + 2.0),
        item("bodhi", 2, 1.7e9),
        item("koji", 3, 1.7e9 + 1.0),
    ];
    let store = DigestStore::from_clients(&env.clients);
    for j in &items {
        store
            .add(j, None, fmn_aws::dynamo::now_secs())
            .await
            .unwrap();
    }
    store_job_owners(&env, &items).await;
    let settings = fmn_integration_tests::mail::mail_settings(&env).await;
    let digest = fmn_digest::DigestHandler::with_settings(&env.clients, settings);
    let report = digest.run().await.unwrap();
    assert_eq!((report.mails_sent, report.items_sent), (1, 3), "{report:?}");
    // A second run finds nothing left: the batch is queued once.
    assert_eq!(digest.run().await.unwrap().items_sent, 0);

    let (stop, stats, _handler) = start_deliver_matrix(&env, &bot).await;
    let got = frank
        .wait_for_messages(&bot.user_id, 1, Duration::from_secs(60))
        .await;
    wait_for_records(&stats, 1).await;
    stop.cancel();
    assert_eq!(got.len(), 1, "one message: {got:?}");
    let body = got[0].body();
    assert!(
        body.starts_with(
            "Fedora Notifications Digest (3 updates)\n\nbodhi\n- bob commented on update 2"
        ),
        "{body}"
    );
    let koji = body.find("\n\nkoji\n").expect("a koji group");
    assert!(
        body[koji..].find("update 3") < body[koji..].find("update 1"),
        "items in time order: {body}"
    );
    assert!(
        got[0].html().contains("<p><b>koji</b></p><ul>"),
        "{}",
        got[0].html()
    );
}
