//! Faults the error classifier (`fmn_aws::retry`) must get right, on the emulators: SES
//! refusing all mail for a while, transaction conflicts between concurrent digest adds, items
//! and batches over the services' size limits.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use fmn_aws::delivery_records::DeliveryRecords;
use fmn_aws::digest_store::{Added, DigestStore};
use fmn_aws::dynamo::get_s;
use fmn_aws::job_queue::{enqueue_jobs, QueuedJob};
use fmn_aws::lambda::SqsBatchHandler;
use fmn_aws::mail::MailSettings;
use fmn_aws::prefs_store::{PrefsStore, PrefsStoreError};
use fmn_aws::retry::{Classify, ErrorClass};
use fmn_aws::{AwsClients, QueueName};
use fmn_core::jobs::DeliveryJob;
use fmn_core::prefs::{Delivery, Destination, Filter, UserPrefs};
use fmn_core::rules::{Rule, RuleKind};
use fmn_integration_tests::mail::mail_to;
use fmn_integration_tests::{job_for, TestEnv};

fn unique(tag: &str) -> String {
    format!("{tag}-{}", &uuid::Uuid::new_v4().simple().to_string()[..10])
}

fn job(user: &str, address: &str, delivery: Delivery, msg: &str) -> DeliveryJob {
    let destination = Destination::email("email-1", address)
        .confirmed(true)
        .with_delivery(delivery);
    let notification = fmn_integration_tests::sample_notification(msg);
    job_for(user, destination, notification)
}

/// An SES v2 stand-in in front of moto: the first `paused` `SendEmail` calls get SES's answer
/// for a paused account (400, `SendingPausedException`); everything else is passed to moto.
struct PausedSes {
    url: String,
    refused: Arc<AtomicUsize>,
}

async fn paused_ses(paused: usize) -> PausedSes {
    use axum::body::Bytes;
    use axum::http::{HeaderMap, Method, StatusCode, Uri};
    use axum::response::IntoResponse;

    let refused = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&refused);
    let moto = std::env::var("AWS_ENDPOINT_URL_SESV2")
        .unwrap_or_else(|_| fmn_aws::config::LOCAL_SESV2_ENDPOINT.to_string());
    let http = reqwest::Client::new();
    let app = axum::Router::new().fallback(
        move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let count = Arc::clone(&count);
            let moto = moto.clone();
            let http = http.clone();
            async move {
                if method == Method::POST
                    && uri.path() == "/v2/email/outbound-emails"
                    && count.fetch_add(1, Ordering::SeqCst) < paused
                {
                    return (
                        StatusCode::BAD_REQUEST,
                        [
                            ("x-amzn-ErrorType", "SendingPausedException"),
                            ("content-type", "application/json"),
                        ],
                        r#"{"message":"Sending is paused for this account."}"#,
                    )
                        .into_response();
                }
                let target = format!(
                    "{moto}{}",
                    uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")
                );
                let mut request = http.request(method, target).body(body);
                for (name, value) in &headers {
                    if name != "host" && name != "content-length" {
                        request = request.header(name, value);
                    }
                }
                let response = request.send().await.expect("moto answers");
                let status = response.status();
                let headers = response.headers().clone();
                let body = response.bytes().await.expect("moto's body");
                let mut out = (status, body).into_response();
                for (name, value) in &headers {
                    if name != "content-length" && name != "transfer-encoding" {
                        out.headers_mut().insert(name, value.clone());
                    }
                }
                out
            }
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    // Only SendEmail calls count (creating the sender identity goes straight through).
    PausedSes { url, refused }
}

/// The test's clients with SES v2 behind `ses`.
fn through(env: &TestEnv, ses: &PausedSes) -> AwsClients {
    let mut clients = env.clients.clone();
    clients.sesv2 = aws_sdk_sesv2::Client::from_conf(
        env.clients
            .sesv2
            .config()
            .to_builder()
            .endpoint_url(&ses.url)
            .build(),
    );
    clients
}

async fn settings(env: &TestEnv) -> MailSettings {
    let mut settings = MailSettings::from_env().unwrap();
    settings.context.from_address = fmn_aws::mail::DEFAULT_FROM_ADDRESS.into();
    settings.ses_attempts = 3;
    fmn_aws::ses::ensure_email_identity(&env.clients.sesv2, &settings.context.from_address)
        .await
        .expect("verifying the sender on the emulator");
    settings
}

fn event(message_id: &str, body: &str) -> SqsEvent {
    let mut m = SqsMessage::default();
    m.message_id = Some(message_id.into());
    m.body = Some(body.into());
    m.attributes
        .insert("ApproximateReceiveCount".into(), "1".into());
    let mut event = SqsEvent::default();
    event.records.push(m);
    event
}

async fn record_state(env: &TestEnv, key: &str) -> Option<String> {
    DeliveryRecords::from_clients(&env.clients, Duration::from_secs(300))
        .get(key)
        .await
        .unwrap()
        .and_then(|item| get_s(&item, "state").map(str::to_string))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_paused_ses_account_rejects_no_mail_and_the_job_goes_out_once_afterwards() {
    let env = TestEnv::new("ses-paused").await;
    let settings = settings(&env).await;
    let ses = paused_ses(1).await;
    let clients = through(&env, &ses);
    let handler = fmn_deliver_email::DeliverEmailHandler::with_settings(&clients, settings)
        .await
        .unwrap();
    let address = format!("{}@example.org", unique("paused"));
    let j = job("alice", &address, Delivery::Immediate, "FEDORA-2024-p1");
    let body = serde_json::to_string(&j).unwrap();
    let key = fmn_aws::delivery_records::Channel::Email.key(&j.job_id);

    // Paused: the job goes back to the queue, nothing is dead-lettered or marked rejected.
    let response = handler.handle_batch(event("m-1", &body)).await;
    assert_eq!(ses.refused.load(Ordering::SeqCst), 1, "SES was asked once");
    assert_eq!(
        response.batch_item_failures.len(),
        1,
        "the job is returned to the queue"
    );
    assert_eq!(record_state(&env, &key).await.as_deref(), Some("retry"));
    let dlq = env.drain(QueueName::EmailDeadLetter, 1, 2).await;
    assert!(dlq.is_empty(), "nothing dead-lettered: {dlq:?}");
    assert!(mail_to(&address).await.is_empty());

    // SES is back: the same job (redelivered, or redriven from a DLQ) goes out, once.
    let response = handler.handle_batch(event("m-1", &body)).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(record_state(&env, &key).await.as_deref(), Some("sent"));
    let again = handler.handle_batch(event("m-2", &body)).await;
    assert!(again.batch_item_failures.is_empty());
    assert_eq!(mail_to(&address).await.len(), 1, "one mail");
}

/// The window `fmn_aws::delivery_records` admits, closed: a sender killed after SES accepted
/// its mail leaves the record `sending`; SES's `Send` event (AWS's documented format, tagged
/// with the record) arrives through the real mail-events queue and settles it, so the
/// redelivered job sends nothing, even after the lease.
#[tokio::test(flavor = "multi_thread")]
async fn a_send_event_settles_a_record_its_dead_sender_left_sending() {
    use fmn_aws::delivery_records::{record_tag_value, Claim, RecordInfo};
    let env = TestEnv::new("mail-events").await;
    let mut settings = settings(&env).await;
    settings.lease = Duration::from_millis(1);
    let address = format!("{}@example.org", unique("killed"));
    let j = job("alice", &address, Delivery::Immediate, "FEDORA-2024-k1");
    let key = fmn_aws::delivery_records::Channel::Email.key(&j.job_id);

    // The dead sender's claim: `sending`, never marked (its lease already over).
    let records = DeliveryRecords::from_clients(&env.clients, settings.lease);
    let info = RecordInfo {
        user: "alice",
        destination: "email-1",
        address: &address,
        what: "test",
    };
    assert!(matches!(
        records.claim(&key, &info).await.unwrap(),
        Claim::Claimed(_)
    ));
    // What SES publishes about the mail it accepted before the sender died.
    let send_event = serde_json::json!({
        "eventType": "Send",
        "mail": {
            "timestamp": "2026-12-01T00:00:00.000Z",
            "source": "notifications@fedoraproject.org",
            "messageId": "0100019a-ses-id-000000",
            "destination": [address],
            "headersTruncated": false,
            "tags": {"ses:configuration-set": ["fmn-mail"], "fmn-record": [record_tag_value(&key)]},
        },
        "send": {},
    });
    let malformed = "{\"not\": \"an event\"}";
    for body in [send_event.to_string(), malformed.to_string()] {
        env.clients
            .sqs
            .send_message()
            .queue_url(env.queue_url(QueueName::MailEvents))
            .message_body(body)
            .send()
            .await
            .unwrap();
    }
    let handler = Arc::new(
        fmn_mail_events::MailEventsHandler::new(&env.clients, settings.lease, Default::default())
            .await
            .unwrap(),
    );
    let (stop, _) =
        fmn_integration_tests::start_function(&env, fmn_aws::FunctionName::MailEvents, handler);
    fmn_integration_tests::eventually("the record settled", Duration::from_secs(60), || async {
        (record_state(&env, &key).await.as_deref() == Some("sent")).then_some(())
    })
    .await;
    let dlq = env.drain(QueueName::MailEventsDeadLetter, 1, 30).await;
    stop.cancel();
    assert_eq!(dlq.len(), 1, "the malformed event is dead-lettered");
    let item = records.get(&key).await.unwrap().unwrap();
    assert_eq!(get_s(&item, "confirmed_by"), Some("ses-event"));
    assert_eq!(get_s(&item, "message_id"), Some("0100019a-ses-id-000000"));

    // The job, redelivered after the lease: acknowledged, nothing sent again.
    let deliver = fmn_deliver_email::DeliverEmailHandler::with_settings(&env.clients, settings)
        .await
        .unwrap();
    let response = deliver
        .handle_batch(event("m-1", &serde_json::to_string(&j).unwrap()))
        .await;
    assert!(response.batch_item_failures.is_empty());
    assert!(mail_to(&address).await.is_empty(), "no mail sent again");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_paused_ses_account_keeps_digest_items_for_the_next_run() {
    let env = TestEnv::new("ses-paused-digest").await;
    let settings = settings(&env).await;
    let ses = paused_ses(1).await;
    let clients = through(&env, &ses);
    let digest = fmn_digest::DigestHandler::with_settings(&clients, settings);
    let store = DigestStore::from_clients(&env.clients);
    let address = format!("{}@example.org", unique("paused-digest"));
    let delivery = Delivery::Digest {
        batch_delta: Some(60),
        batch_count: None,
        schedule: None,
    };
    let jobs: Vec<DeliveryJob> = (0..3)
        .map(|i| job("bob", &address, delivery, &format!("FEDORA-2024-d{i}")))
        .collect();
    for j in &jobs {
        assert_eq!(
            store
                .add(j, None, fmn_aws::dynamo::now_secs())
                .await
                .unwrap(),
            Added::New
        );
    }
    fmn_integration_tests::store_job_owners(&env, &jobs).await;
    let key = jobs[0].digest_key();
    let later = fmn_aws::dynamo::now_secs() + 3600;

    let report = digest.run_at(later).await.unwrap();
    assert_eq!(ses.refused.load(Ordering::SeqCst), 1, "SES was asked once");
    assert_eq!((report.rejected, report.deferred), (0, 1), "{report:?}");
    assert_eq!(store.items(&key).await.unwrap().len(), 3, "items survive");
    assert!(mail_to(&address).await.is_empty());

    let report = digest.run_at(later).await.unwrap();
    assert_eq!((report.mails_sent, report.items_sent), (1, 3), "{report:?}");
    assert!(store.items(&key).await.unwrap().is_empty());
    assert_eq!(mail_to(&address).await.len(), 1, "one digest");
}

/// DynamoDB Local runs transactions one at a time, so this does not provoke the
/// `TransactionConflict` real DynamoDB gives concurrent adds to one marker (the reading of
/// cancellation reasons is unit-tested in `fmn_aws::dynamo`); it checks that no concurrent add
/// is lost or mistaken for a repeat.
#[tokio::test(flavor = "multi_thread")]
async fn concurrent_digest_adds_for_one_destination_all_store() {
    let env = TestEnv::new("digest-conflict").await;
    let store = DigestStore::from_clients(&env.clients);
    let delivery = Delivery::Digest {
        batch_delta: Some(3600),
        batch_count: None,
        schedule: None,
    };
    let jobs: Vec<DeliveryJob> = (0..50)
        .map(|i| {
            job(
                "carol",
                "carol@example.org",
                delivery,
                &format!("FEDORA-2024-c{i}"),
            )
        })
        .collect();
    let key = jobs[0].digest_key();
    let mut tasks = tokio::task::JoinSet::new();
    for j in jobs {
        let store = store.clone();
        // As SQS would: a retryable failure is tried again (redelivered); anything else is
        // the outcome.
        tasks.spawn(async move {
            loop {
                match store.add(&j, None, fmn_aws::dynamo::now_secs()).await {
                    Err(e) if e.class() == ErrorClass::Retryable => continue,
                    other => return other,
                }
            }
        });
    }
    while let Some(added) = tasks.join_next().await {
        assert_eq!(
            added.unwrap().unwrap(),
            Added::New,
            "each job is new: a conflict is not `already there`"
        );
    }
    assert_eq!(store.items(&key).await.unwrap().len(), 50);
    let marker = store.marker(&key).await.unwrap().expect("a pending marker");
    assert_eq!(marker.pending.count, 50);
}

#[tokio::test(flavor = "multi_thread")]
async fn preferences_over_the_item_limit_are_refused_naming_it() {
    let env = TestEnv::new("prefs-too-large").await;
    let store = PrefsStore::from_clients(&env.clients);
    let mut prefs = UserPrefs::new(unique("dave"));
    // 3 filters of 60 rules of 100 package names of 60 bytes: about 1 MB.
    for f in 0..3 {
        prefs.filters.push(Filter::new(
            format!("filter-{f}"),
            format!("Filter {f}"),
            Vec::new(),
            (0..60)
                .map(|r| {
                    Rule::new(RuleKind::Package {
                        packages: (0..100).map(|p| format!("{f}-{r}-{p:0>54}")).collect(),
                    })
                })
                .collect(),
        ));
    }
    prefs
        .validate()
        .expect("every list is within its own limit");
    match store.create(&prefs).await {
        Err(PrefsStoreError::TooLarge { limit_bytes, .. }) => {
            assert_eq!(limit_bytes, 400 * 1024)
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn jobs_over_a_batch_s_byte_limit_are_sent_in_several_calls() {
    let env = TestEnv::new("enqueue-bytes").await;
    // Ten jobs of 60 KiB: 600 KiB, more than twice what one SendMessageBatch takes.
    let jobs: Vec<QueuedJob> = (0..10)
        .map(|i| QueuedJob {
            job_id: format!("job-{i}"),
            body: format!("{{\"pad\":\"{}\"}}", "x".repeat(60 * 1024)),
        })
        .collect();
    enqueue_jobs(&env.clients.sqs, env.queue_url(QueueName::Email), &jobs)
        .await
        .expect("every job enqueued");
    let got = env.drain(QueueName::Email, 10, 20).await;
    assert_eq!(got.len(), 10);
}

/// The IRC queue is FIFO with one group: jobs come out in the order they went in, and a job
/// enqueued again (a redelivered match) within SQS's window is there once.
#[tokio::test(flavor = "multi_thread")]
async fn irc_jobs_keep_their_order_and_a_repeat_is_queued_once() {
    let env = TestEnv::new("irc-fifo").await;
    let url = env.queue_url(QueueName::Irc).to_string();
    assert!(fmn_aws::sqs::is_fifo(&url), "{url}");
    let jobs: Vec<QueuedJob> = (0..25)
        .map(|i| QueuedJob {
            job_id: format!("job-{i:02}"),
            body: format!("{{\"n\":{i}}}"),
        })
        .collect();
    enqueue_jobs(&env.clients.sqs, &url, &jobs).await.unwrap();
    // The same jobs again, as a repeated match would send them.
    enqueue_jobs(&env.clients.sqs, &url, &jobs[..10])
        .await
        .unwrap();
    let got = env.drain(QueueName::Irc, 35, 10).await;
    let bodies: Vec<String> = got.into_iter().filter_map(|m| m.body).collect();
    let expected: Vec<String> = jobs.iter().map(|j| j.body.clone()).collect();
    assert_eq!(bodies, expected, "each once, in order");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_lettered_copy_keeps_the_record_s_encoding() {
    use fmn_aws::batch::{process_records, DeadLetterQueue, RecordError, REASON_ATTRIBUTE};
    use fmn_aws::ingest_wire::ENCODING_ATTRIBUTE;

    let env = TestEnv::new("dlq-encoding").await;
    let dlq = DeadLetterQueue::new(
        env.clients.sqs.clone(),
        env.queue_url(QueueName::IngestDeadLetter).to_string(),
    );
    let mut e = event("m-enc", "H4sIAAAAAAAA");
    let mut encoding = aws_lambda_events::sqs::SqsMessageAttribute::default();
    encoding.data_type = Some("String".into());
    encoding.string_value = Some("gzip+base64".into());
    e.records[0]
        .message_attributes
        .insert(ENCODING_ATTRIBUTE.into(), encoding);
    let response = process_records("test", e, Some(&dlq), |_| async {
        Err(RecordError::Reject("refused".into()))
    })
    .await;
    assert!(response.batch_item_failures.is_empty());
    let got = env.drain(QueueName::IngestDeadLetter, 1, 10).await;
    assert_eq!(got.len(), 1);
    let attrs = got[0].message_attributes.clone().unwrap_or_default();
    let value = |name: &str| attrs.get(name).and_then(|a| a.string_value.clone());
    assert_eq!(value(ENCODING_ATTRIBUTE).as_deref(), Some("gzip+base64"));
    assert_eq!(value(REASON_ATTRIBUTE).as_deref(), Some("refused"));
    assert_eq!(got[0].body.as_deref(), Some("H4sIAAAAAAAA"));
}

/// With a retry schedule, a record that keeps failing comes back after each of its delays (not
/// after the queue's one-second visibility timeout), and after the last try it is
/// dead-lettered with the reason, instead of cycling until SQS's receive limit.
#[tokio::test(flavor = "multi_thread")]
async fn a_failing_record_is_tried_on_the_schedule_then_given_up() {
    use aws_sdk_sqs::types::MessageSystemAttributeName;
    use fmn_aws::batch::{event_from_received, process_records, DeadLetterQueue, RecordError};
    use fmn_aws::batch::{RetrySchedule, REASON_ATTRIBUTE};
    use std::time::Instant;

    let env = TestEnv::new("retry-schedule").await;
    let source = env.queue_url(QueueName::Email).to_string();
    let schedule: RetrySchedule = "2s,3s".parse().unwrap();
    let dlq = DeadLetterQueue::new(
        env.clients.sqs.clone(),
        env.queue_url(QueueName::EmailDeadLetter).to_string(),
    )
    .with_schedule(source.clone(), Some(schedule.clone()));
    env.clients
        .sqs
        .send_message()
        .queue_url(&source)
        .message_body("{\"job\":1}")
        .send()
        .await
        .unwrap();

    let mut failed_at: Option<Instant> = None;
    let mut gaps = Vec::new();
    let mut tries = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while tries < schedule.tries() {
        assert!(Instant::now() < deadline, "only {tries} tries in 60 s");
        let received = env
            .clients
            .sqs
            .receive_message()
            .queue_url(&source)
            .wait_time_seconds(1)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await
            .unwrap();
        let messages = received.messages.unwrap_or_default();
        if messages.is_empty() {
            continue;
        }
        if let Some(at) = failed_at {
            gaps.push(at.elapsed());
        }
        tries += 1;
        let event = event_from_received(&messages, "arn:aws:sqs:us-east-1:000000000000:email");
        let response = process_records("test", event, Some(&dlq), |r| async move {
            assert_eq!(r.receive_count, tries, "SQS's count is the try number");
            Err(RecordError::Retry("SES is down".into()))
        })
        .await;
        failed_at = Some(Instant::now());
        let returned = response.batch_item_failures.len();
        if tries < schedule.tries() {
            assert_eq!(returned, 1, "try {tries} goes back to the queue");
        } else {
            assert_eq!(
                returned, 0,
                "the last try is not returned: it is dead-lettered"
            );
            // What Lambda's event source does with a record not returned: delete it.
            env.clients
                .sqs
                .delete_message()
                .queue_url(&source)
                .receipt_handle(messages[0].receipt_handle.clone().unwrap())
                .send()
                .await
                .unwrap();
        }
    }
    println!("gaps between tries: {gaps:?} (schedule {schedule}, queue visibility 1 s)");
    // Lower bounds only: a slow machine makes the gaps longer, never shorter.
    assert!(gaps[0] >= Duration::from_millis(1800), "{gaps:?}");
    assert!(gaps[1] >= Duration::from_millis(2800), "{gaps:?}");

    let dead = env.drain(QueueName::EmailDeadLetter, 1, 10).await;
    assert_eq!(dead.len(), 1);
    let reason = dead[0]
        .message_attributes
        .as_ref()
        .and_then(|a| a.get(REASON_ATTRIBUTE))
        .and_then(|a| a.string_value.clone())
        .unwrap_or_default();
    assert_eq!(
        reason,
        "gave up after 3 tries (retry schedule 2s,3s): SES is down"
    );
    assert_eq!(dead[0].body.as_deref(), Some("{\"job\":1}"));
    // Nothing comes back to the source queue.
    let left = env.drain(QueueName::Email, 1, 3).await;
    assert!(left.is_empty(), "{left:?}");
}
