//! Delivery on the emulators: deliver-email through SES v2 (moto) with the delivery records in
//! DynamoDB Local and the queues on LocalStack; the digest function over the digest table.
//! The mail moto recorded is parsed with a real MIME parser (`mail-parser`).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use fmn_aws::batch::REASON_ATTRIBUTE;
use fmn_aws::delivery_records::{Claim, DeliveryRecords, RecordInfo};
use fmn_aws::digest_store::{Batch, DigestStore};
use fmn_aws::dynamo::{get_s, n, s};
use fmn_aws::job_queue::{enqueue_jobs, QueuedJob};
use fmn_aws::mail::MailSettings;
use fmn_aws::{FunctionName, QueueName, TableName};
use fmn_core::jobs::{DeliveryJob, Notification};
use fmn_core::meta::Severity;
use fmn_core::prefs::{Delivery, Destination};
use fmn_integration_tests::mail::{sent_mail, start_deliver_email, SentMail};
use fmn_integration_tests::{job_for, wait_for_records, TestEnv};
use mail_parser::MessageParser;

/// Settings with the default (verified) sender and a known unsubscribe secret.
async fn settings(env: &TestEnv) -> MailSettings {
    fmn_integration_tests::mail::mail_settings(env).await
}

fn unique(tag: &str) -> String {
    format!("{tag}-{}", &uuid::Uuid::new_v4().simple().to_string()[..10])
}

fn job(user: &str, address: &str, delivery: Delivery, msg: &str, ts: f64) -> DeliveryJob {
    let destination = Destination::email("email-1", address)
        .confirmed(true)
        .with_delivery(delivery);
    let notification = Notification {
        msg_id: msg.into(),
        topic: "org.fedoraproject.prod.bodhi.update.comment".into(),
        app: if msg.ends_with('k') { "koji" } else { "bodhi" }.into(),
        agent: Some("zdeněk".into()),
        title: "bodhi.update.comment".into(),
        subtitle: Some(format!(
            "Zdeněk commented on update {msg} (karma: +1) & said <hi>"
        )),
        link: Some(format!(
            "https://bodhi.fedoraproject.org/updates/{msg}?a=1&b=2"
        )),
        usernames: vec!["zdeněk".into()],
        packages: vec!["python-foo".into(), "foo".into()],
        usernames_total: None,
        packages_total: None,
        timestamp: Some(ts),
        severity: Severity::default(),
        origin: Default::default(),
        long_text: None,
    };
    job_for(user, destination, notification)
}

/// Puts one job on the email queue, as the match function does.
async fn enqueue(env: &TestEnv, body: &str, job_id: &str) {
    let job = QueuedJob {
        job_id: job_id.into(),
        body: body.into(),
    };
    enqueue_jobs(&env.clients.sqs, env.queue_url(QueueName::Email), &[job])
        .await
        .expect("SendMessageBatch");
}

async fn mail_to(address: &str) -> Vec<SentMail> {
    sent_mail()
        .await
        .into_iter()
        .filter(|m| m.destinations.iter().any(|d| d.contains(address)))
        .collect()
}

async fn record(env: &TestEnv, key: &str) -> fmn_aws::dynamo::Item {
    DeliveryRecords::from_clients(&env.clients, Duration::from_secs(300))
        .get(key)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no delivery record {key}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn an_email_job_is_sent_once_as_parseable_mime() {
    let env = TestEnv::new("email").await;
    let settings = settings(&env).await;
    let address = format!("{}@example.org", unique("alice"));
    let j = job(
        "alice",
        &address,
        Delivery::Immediate,
        "FEDORA-2024-1",
        1.7e9,
    );
    let (stop, stats) = start_deliver_email(&env, settings).await;
    enqueue(&env, &serde_json::to_string(&j).unwrap(), &j.job_id).await;
    wait_for_records(&stats, 1).await;

    let mails = mail_to(&address).await;
    assert_eq!(mails.len(), 1, "one mail");
    let raw = &mails[0].raw;
    assert_eq!(mails[0].source, fmn_aws::mail::DEFAULT_FROM_ADDRESS);

    // Unknown headers as text, so encoded-words in them are decoded.
    let msg = MessageParser::new()
        .with_mime_headers()
        .with_date_headers()
        .with_address_headers()
        .with_message_ids()
        .default_header_text()
        .parse(raw.as_bytes())
        .expect("MIME parses");
    assert_eq!(
        msg.subject(),
        Some("[bodhi] Zdeněk commented on update FEDORA-2024-1 (karma: +1) & said <hi>")
    );
    assert!(raw.contains("Subject: =?UTF-8?B?"), "RFC 2047 subject");
    assert_eq!(
        msg.from().and_then(|a| a.first()).and_then(|a| a.address()),
        Some(fmn_aws::mail::DEFAULT_FROM_ADDRESS)
    );
    assert_eq!(
        msg.to().and_then(|a| a.first()).and_then(|a| a.address()),
        Some(address.as_str())
    );
    assert_eq!(
        msg.message_id(),
        Some(format!("fmn.{}@fedoraproject.org", j.job_id).as_str())
    );
    assert!(msg.date().is_some());
    let text = |name: &str| -> Vec<String> {
        msg.header_values(name)
            .filter_map(|v| v.as_text().map(str::to_string))
            .collect()
    };
    assert_eq!(
        text("X-Fedmsg-Topic"),
        ["org.fedoraproject.prod.bodhi.update.comment"]
    );
    assert_eq!(text("X-Fedmsg-Category"), ["bodhi"]);
    assert_eq!(text("X-Fedmsg-Username"), ["zdeněk"]);
    assert_eq!(text("X-Fedmsg-Id"), ["FEDORA-2024-1"]);
    assert_eq!(text("X-Fedmsg-Package"), ["foo", "python-foo"]);
    assert_eq!(
        msg.header_raw("List-Unsubscribe-Post").map(str::trim),
        Some("List-Unsubscribe=One-Click")
    );
    assert!(msg
        .header_raw("List-Id")
        .unwrap()
        .contains("<notifications.fedoraproject.org>"));
    let unsubscribe = msg.header_raw("List-Unsubscribe").unwrap().trim();
    let token = unsubscribe
        .strip_prefix("<http://127.0.0.1:8080/api/v1/unsubscribe/")
        .and_then(|t| t.strip_suffix('>'))
        .expect("one-click URL on the web-api");
    assert_eq!(
        fmn_core::unsubscribe::verify_token(fmn_integration_tests::mail::UNSUBSCRIBE_SECRET, token),
        Some(("alice".into(), "email-1".into()))
    );

    // Both alternatives, decoded from quoted-printable.
    assert_eq!(msg.text_body_count(), 1);
    assert_eq!(msg.html_body_count(), 1);
    let plain = msg.body_text(0).unwrap();
    assert!(plain.contains("Zdeněk commented on update FEDORA-2024-1 (karma: +1) & said <hi>"));
    assert!(plain.contains("https://bodhi.fedoraproject.org/updates/FEDORA-2024-1?a=1&b=2"));
    assert!(plain.contains("By: zdeněk"));
    assert!(plain.contains("\"My packages\""));
    assert!(plain.contains("http://127.0.0.1:8080/"));
    let html = msg.body_html(0).unwrap();
    assert!(html.contains("&amp; said &lt;hi&gt;"));
    assert!(
        html.contains("href=\"https://bodhi.fedoraproject.org/updates/FEDORA-2024-1?a=1&amp;b=2\"")
    );
    assert_eq!(
        raw.matches("Content-Transfer-Encoding: quoted-printable")
            .count(),
        2
    );
    assert!(raw.is_ascii(), "7-bit clean on the wire");

    let rec = record(
        &env,
        &fmn_aws::delivery_records::Channel::Email.key(&j.job_id),
    )
    .await;
    assert_eq!(get_s(&rec, "state"), Some("sent"));
    assert!(rec.contains_key("expires_at"));

    // The same job again (SQS redelivery, or the match function repeating itself).
    enqueue(&env, &serde_json::to_string(&j).unwrap(), &j.job_id).await;
    wait_for_records(&stats, 2).await;
    stop.cancel();
    assert_eq!(mail_to(&address).await.len(), 1, "nothing sent twice");
    assert_eq!(stats.failed.load(Ordering::Relaxed), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn rejected_and_malformed_jobs_go_to_the_dead_letter_queue_with_a_reason() {
    let env = TestEnv::new("emailreject").await;
    let settings = settings(&env).await;
    // moto refuses an address without a domain ("Missing domain"), as SES would.
    let bad_address = format!("{}@", unique("nodomain"));
    let rejected = job(
        "carol",
        &bad_address,
        Delivery::Immediate,
        "FEDORA-2024-2",
        1.7e9,
    );
    let (stop, stats) = start_deliver_email(&env, settings).await;
    enqueue(
        &env,
        &serde_json::to_string(&rejected).unwrap(),
        &rejected.job_id,
    )
    .await;
    enqueue(&env, "{not json", "x").await;
    wait_for_records(&stats, 2).await;
    stop.cancel();

    let dead = env.drain(QueueName::EmailDeadLetter, 2, 30).await;
    assert_eq!(dead.len(), 2);
    let reason_of = |body_has: &str| -> String {
        let m = dead
            .iter()
            .find(|m| m.body.as_deref().unwrap_or_default().contains(body_has))
            .unwrap_or_else(|| panic!("no dead letter with {body_has}"));
        m.message_attributes.as_ref().unwrap()[REASON_ATTRIBUTE]
            .string_value
            .clone()
            .unwrap()
    };
    let reason = reason_of(&rejected.job_id);
    assert!(reason.contains("SES rejected the mail"), "{reason}");
    assert!(reason.contains("Missing domain"), "{reason}");
    assert!(reason_of("{not json").contains("not a delivery job"));

    // Recorded against the destination.
    let rec = record(
        &env,
        &fmn_aws::delivery_records::Channel::Email.key(&rejected.job_id),
    )
    .await;
    assert_eq!(get_s(&rec, "state"), Some("rejected"));
    assert_eq!(get_s(&rec, "user"), Some("carol"));
    assert_eq!(get_s(&rec, "destination"), Some("email-1"));
    assert!(get_s(&rec, "reason").unwrap().contains("Missing domain"));
    assert!(mail_to(&bad_address).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_send_left_half_done_by_a_crash_waits_for_its_lease_then_goes_once() {
    let env = TestEnv::new("emaillease").await;
    let settings = settings(&env).await;
    let records = DeliveryRecords::from_clients(&env.clients, settings.lease);
    let address = format!("{}@example.org", unique("dave"));
    let j = job(
        "dave",
        &address,
        Delivery::Immediate,
        "FEDORA-2024-3",
        1.7e9,
    );
    let key = fmn_aws::delivery_records::Channel::Email.key(&j.job_id);
    let info = RecordInfo {
        user: "dave",
        destination: "email-1",
        address: &address,
        what: "test",
    };
    // Another sender holds it right now: a second claim must wait.
    assert!(matches!(
        records.claim(&key, &info).await.unwrap(),
        Claim::Claimed(_)
    ));
    assert!(matches!(
        records.claim(&key, &info).await.unwrap(),
        Claim::InFlight { .. }
    ));
    // That sender died ten minutes ago (its claim is older than the lease).
    let old = fmn_aws::delivery_records::now_ms() - 600_000;
    env.clients
        .dynamodb
        .update_item()
        .table_name(env.clients.table(TableName::DeliveryRecords))
        .key("pk", s(key.as_str()))
        .update_expression("SET claimed_at = :old")
        .expression_attribute_values(":old", n(old))
        .send()
        .await
        .unwrap();
    let (stop, stats) = start_deliver_email(&env, settings).await;
    enqueue(&env, &serde_json::to_string(&j).unwrap(), &j.job_id).await;
    wait_for_records(&stats, 1).await;
    enqueue(&env, &serde_json::to_string(&j).unwrap(), &j.job_id).await;
    wait_for_records(&stats, 2).await;
    stop.cancel();
    assert_eq!(mail_to(&address).await.len(), 1);
    let rec = record(&env, &key).await;
    assert_eq!(get_s(&rec, "state"), Some("sent"));
    assert_eq!(rec["attempts"].as_n().unwrap(), "2");
}

/// A digest destination's job.
fn digest_job(
    user: &str,
    address: &str,
    delta: Option<u64>,
    count: Option<u32>,
    msg: &str,
    ts: f64,
) -> DeliveryJob {
    job(
        user,
        address,
        Delivery::Digest {
            batch_delta: delta,
            batch_count: count,
            schedule: None,
        },
        msg,
        ts,
    )
}

fn parse_digest(mail: &SentMail) -> (String, String) {
    let msg = MessageParser::default()
        .parse(mail.raw.as_bytes())
        .expect("digest MIME parses");
    assert_eq!(msg.html_body_count(), 1);
    (
        msg.subject().unwrap().to_string(),
        msg.body_text(0).unwrap().to_string(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn only_due_digests_are_sent_each_once_with_all_their_items() {
    let env = TestEnv::new("digest").await;
    let settings = settings(&env).await;
    let store = DigestStore::from_clients(&env.clients);
    // Three destinations: a 5-minute window, a count of 3, an hour or 10 items.
    let by_age = format!("{}@example.org", unique("age"));
    let by_count = format!("{}@example.org", unique("count"));
    let later = format!("{}@example.org", unique("later"));
    let mut added = Vec::new();
    for (i, msg) in ["A-1", "A-2k"].iter().enumerate() {
        added.push(digest_job(
            "ann",
            &by_age,
            Some(300),
            None,
            msg,
            1.7e9 + i as f64,
        ));
    }
    for (i, msg) in ["B-3", "B-1k", "B-2"].iter().enumerate() {
        added.push(digest_job(
            "bea",
            &by_count,
            None,
            Some(3),
            msg,
            1.7e9 - i as f64,
        ));
    }
    for (i, msg) in ["C-1", "C-2"].iter().enumerate() {
        added.push(digest_job(
            "cy",
            &later,
            Some(3600),
            Some(10),
            msg,
            1.7e9 + i as f64,
        ));
    }
    for j in &added {
        store
            .add(j, None, fmn_aws::dynamo::now_secs())
            .await
            .unwrap();
        // A repeat of a job is stored once.
        store
            .add(j, None, fmn_aws::dynamo::now_secs())
            .await
            .unwrap();
    }
    fmn_integration_tests::store_job_owners(&env, &added).await;
    let digest = fmn_digest::DigestHandler::with_settings(&env.clients, settings);
    let now = fmn_aws::dynamo::now_secs();

    let first = digest.run_at(now).await.unwrap();
    assert_eq!(first.pending, 3);
    assert_eq!((first.mails_sent, first.items_sent), (1, 3), "{first:?}");
    assert_eq!(mail_to(&by_count).await.len(), 1);
    assert!(mail_to(&by_age).await.is_empty());
    assert!(mail_to(&later).await.is_empty());

    // Five minutes on: the age window has passed, the hour has not.
    let second = digest.run_at(now + 301).await.unwrap();
    assert_eq!((second.mails_sent, second.items_sent), (1, 2), "{second:?}");
    // And again: nothing left that is due.
    let third = digest.run_at(now + 301).await.unwrap();
    assert_eq!(third.mails_sent, 0, "{third:?}");
    assert_eq!(third.pending, 1);

    for (address, items) in [
        (&by_count, vec!["B-1k", "B-2", "B-3"]),
        (&by_age, vec!["A-1", "A-2k"]),
    ] {
        let mails = mail_to(address).await;
        assert_eq!(mails.len(), 1, "one digest for {address}");
        let (subject, text) = parse_digest(&mails[0]);
        assert_eq!(
            subject,
            format!("Fedora Notifications Digest ({} updates)", items.len())
        );
        for item in &items {
            assert!(
                text.contains(&format!(
                    "https://bodhi.fedoraproject.org/updates/{item}?a=1&b=2"
                )),
                "{item} in {text}"
            );
        }
        // Grouped by service (bodhi first: its first item is older), in time order.
        let bodhi = text.find("bodhi (").unwrap();
        let koji = text.find("koji (1)").unwrap();
        assert!(bodhi < koji, "{text}");
    }
    let (_, text) = parse_digest(&mail_to(&by_count).await[0]);
    assert!(
        text.find("B-2 ").unwrap() < text.find("B-3 ").unwrap(),
        "time order: {text}"
    );

    // What is left: the undue destination, untouched.
    let pending = store.pending().await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].user, "cy");
    assert_eq!(pending[0].pending.count, 2);
    assert_eq!(store.items(&pending[0].key).await.unwrap().len(), 2);
    assert!(mail_to(&later).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_digest_run_that_died_after_sending_is_finished_without_sending_again() {
    let env = TestEnv::new("digestcrash").await;
    let settings = settings(&env).await;
    let store = DigestStore::from_clients(&env.clients);
    let records = DeliveryRecords::from_clients(&env.clients, settings.lease);
    let address = format!("{}@example.org", unique("dora"));
    let old: Vec<DeliveryJob> = ["D-1", "D-2"]
        .iter()
        .map(|m| digest_job("dora", &address, None, Some(2), m, 1.7e9))
        .collect();
    for j in &old {
        store
            .add(j, None, fmn_aws::dynamo::now_secs())
            .await
            .unwrap();
    }
    // A run cut the batch, sent it and died before deleting anything.
    let key = old[0].digest_key();
    let sks: Vec<String> = store
        .items(&key)
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.sk)
        .collect();
    let batch = Batch {
        id: fmn_core::digest::digest_id(sks.iter().map(String::as_str)),
        sks,
        at: fmn_aws::dynamo::now_secs(),
        complete: true,
    };
    assert!(store.start_batch(&key, &batch).await.unwrap());
    let Claim::Claimed(claim) = records
        .claim(
            &fmn_aws::delivery_records::Channel::Digest.key(&batch.id),
            &RecordInfo::default(),
        )
        .await
        .unwrap()
    else {
        panic!("fresh record")
    };
    records
        .mark_sent(&claim, "ses-id-of-the-lost-run")
        .await
        .unwrap();
    // Meanwhile a new item arrived.
    let newer = digest_job("dora", &address, None, Some(2), "D-3", 1.7e9 + 10.0);
    store
        .add(&newer, None, fmn_aws::dynamo::now_secs())
        .await
        .unwrap();
    fmn_integration_tests::store_job_owners(&env, std::slice::from_ref(&newer)).await;

    let digest = fmn_digest::DigestHandler::with_settings(&env.clients, settings);
    let report = digest.run().await.unwrap();
    assert_eq!(report.already_sent, 1, "{report:?}");
    assert_eq!(report.mails_sent, 0, "{report:?}");
    assert!(
        mail_to(&address).await.is_empty(),
        "the lost run's mail is not repeated"
    );
    // The new item waits for its own digest (count 1 of 2).
    let marker = store.marker(&key).await.unwrap().expect("marker kept");
    assert_eq!(marker.pending.count, 1);
    assert!(marker.batch.is_none());
    let left = store.items(&key).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].job.as_ref().unwrap().job_id, newer.job_id);
    // One more completes it.
    store
        .add(
            &digest_job("dora", &address, None, Some(2), "D-4", 1.7e9 + 20.0),
            None,
            fmn_aws::dynamo::now_secs(),
        )
        .await
        .unwrap();
    let report = digest.run().await.unwrap();
    assert_eq!((report.mails_sent, report.items_sent), (1, 2), "{report:?}");
    assert!(store.marker(&key).await.unwrap().is_none());
    let mails = mail_to(&address).await;
    assert_eq!(mails.len(), 1);
    let (_, text) = parse_digest(&mails[0]);
    assert!(text.contains("D-3") && text.contains("D-4") && !text.contains("D-1"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_digest_goes_only_to_its_destination_as_it_is_at_send_time() {
    let env = TestEnv::new("digestreread").await;
    let settings = settings(&env).await;
    let store = DigestStore::from_clients(&env.clients);
    let old_address = format!("{}@example.org", unique("old"));
    let new_address = format!("{}@example.org", unique("new"));
    let items: Vec<DeliveryJob> = ["E-1", "E-2"]
        .iter()
        .map(|m| digest_job("eve", &old_address, None, Some(2), m, 1.7e9))
        .collect();
    for j in &items {
        store
            .add(j, None, fmn_aws::dynamo::now_secs())
            .await
            .unwrap();
    }
    // The destination now has another address under the same id (as a reused id once did).
    let mut now_is = items[0].clone();
    now_is.destination.address = new_address.clone();
    fmn_integration_tests::store_job_owners(&env, &[now_is]).await;

    let digest = fmn_digest::DigestHandler::with_settings(&env.clients, settings);
    let report = digest.run().await.unwrap();
    assert_eq!((report.mails_sent, report.rejected), (0, 1), "{report:?}");
    assert!(
        mail_to(&old_address).await.is_empty(),
        "not to the old address"
    );
    assert!(
        mail_to(&new_address).await.is_empty(),
        "nor the old items to the new one"
    );
    assert!(store
        .items(&items[0].digest_key())
        .await
        .unwrap()
        .is_empty());
}

/// deliver-email keeps to its share of the SES account's rate: the account's rate divided
/// among the instances its event source allows and the digest run. 12 jobs at 6 mails a
/// second shared by 2 instances and a digest run: 2 a second after a burst of 2, so the last
/// mail goes 5 s after the first at the earliest; without pacing all 12 go within a second.
#[tokio::test(flavor = "multi_thread")]
async fn deliver_email_keeps_to_its_share_of_the_ses_rate() {
    let env = TestEnv::new("email-pace").await;
    let mut settings = settings(&env).await;
    settings.account_send_rate = 6.0;
    settings.email_concurrency = 2;
    assert_eq!(settings.sender_rate(), 2.0);
    let address = format!("{}@example.org", unique("paced"));
    let jobs: Vec<QueuedJob> = (0..12)
        .map(|i| {
            let j = job(
                "alice",
                &address,
                Delivery::Immediate,
                &format!("FEDORA-PACE-{i}"),
                1.7e9,
            );
            QueuedJob {
                job_id: j.job_id.clone(),
                body: serde_json::to_string(&j).unwrap(),
            }
        })
        .collect();
    enqueue_jobs(&env.clients.sqs, env.queue_url(QueueName::Email), &jobs)
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let (stop, stats) = start_deliver_email(&env, settings).await;
    wait_for_records(&stats, 12).await;
    let took = started.elapsed();
    stop.cancel();
    let mails = mail_to(&address).await;
    assert_eq!(mails.len(), 12, "each job once");
    println!(
        "12 mails at a share of 2/s (burst 2): {:.1} s",
        took.as_secs_f64()
    );
    // A lower bound only: (12 - 2) / 2 a second.
    assert!(took >= Duration::from_millis(4900), "{took:?}");
}

/// One job for `user`'s e-mail destination `email-1` at `address`, sent through the running
/// deliver-email (`stats`, its counters) as a real mail: its record key and SES message id.
async fn send_for_real(
    env: &TestEnv,
    stats: &fmn_local::stats::FunctionStats,
    user: &str,
    address: &str,
    msg: &str,
) -> (String, String) {
    let before = stats.records.load(Ordering::SeqCst);
    let mut j = job(user, address, Delivery::Immediate, msg, 1.7e9);
    j.user = user.to_string();
    j.job_id = fmn_core::jobs::job_id(&j.notification.msg_id, user, &j.destination);
    enqueue(env, &serde_json::to_string(&j).unwrap(), &j.job_id).await;
    wait_for_records(stats, before + 1).await;
    let key = fmn_aws::delivery_records::Channel::Email.key(&j.job_id);
    let sent = record(env, &key).await;
    let ses_id = get_s(&sent, "message_id")
        .expect("the mail went out")
        .to_string();
    (key, ses_id)
}

/// The mail-events function, running on its queue until the token is cancelled.
async fn start_mail_events(
    env: &TestEnv,
    settings: &MailSettings,
) -> tokio_util::sync::CancellationToken {
    let events = Arc::new(
        fmn_mail_events::MailEventsHandler::new(&env.clients, settings.lease, Default::default())
            .await
            .unwrap(),
    );
    fmn_integration_tests::start_function(env, FunctionName::MailEvents, events).0
}

/// `body` on the mail-events queue, as SNS puts SES's events there.
async fn report_event(env: &TestEnv, body: String) {
    env.clients
        .sqs
        .send_message()
        .queue_url(env.queue_url(QueueName::MailEvents))
        .message_body(body)
        .send()
        .await
        .unwrap();
}

/// AWS's documented SES event `name` (`tests/data/ses-events/`), about the mail `record_key`
/// was sent as: its message id, recipient and our record tag put in.
fn documented_event(name: &str, record_key: &str, ses_message_id: &str, to: &str) -> String {
    let path =
        fmn_integration_tests::repo_root().join(format!("tests/data/ses-events/{name}.json"));
    let mut event: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    event["mail"]["messageId"] = ses_message_id.into();
    event["mail"]["destination"] = serde_json::json!([to]);
    event["mail"]["tags"][fmn_aws::delivery_records::RECORD_TAG] =
        serde_json::json!([fmn_aws::delivery_records::record_tag_value(record_key)]);
    event.to_string()
}

/// A hard bounce (AWS's documented event, through the real mail-events queue and function)
/// stops the address: the API and page show why and since when, a notice goes to the user's
/// other address, and a message matching the user's filter afterwards reaches the other
/// address only: 0 mails to the bounced one. Resuming makes it receive again.
#[tokio::test(flavor = "multi_thread")]
async fn a_bounced_address_is_mailed_nothing_more_and_its_user_is_told() {
    use fmn_core::health::StopCause;

    let env = TestEnv::new("bounce").await;
    let settings = settings(&env).await;
    let user = unique("alice");
    let bouncing = format!("{}@example.org", unique("gone"));
    let other = format!("{}@example.org", unique("other"));
    let prefs_store = fmn_aws::prefs_store::PrefsStore::from_clients(&env.clients);
    follow_hadess(
        &env,
        &user,
        &[
            Destination::email("email-1", &bouncing).confirmed(true),
            Destination::email("email-2", &other).confirmed(true),
        ],
    )
    .await;

    // A mail to the address, sent for real.
    let (stop_email, email_stats) = start_deliver_email(&env, settings.clone()).await;
    let (key, ses_id) =
        send_for_real(&env, &email_stats, &user, &bouncing, "FEDORA-BOUNCE-1").await;
    assert_eq!(mail_to(&bouncing).await.len(), 1);

    // SES reports the bounce.
    let stop_events = start_mail_events(&env, &settings).await;
    report_event(&env, documented_event("bounce", &key, &ses_id, &bouncing)).await;
    let stopped = fmn_integration_tests::eventually(
        "the address stopped",
        Duration::from_secs(60),
        || async {
            let p = prefs_store.get(&user).await.unwrap().unwrap();
            p.destination("email-1").unwrap().health.stopped.clone()
        },
    )
    .await;
    assert_eq!(stopped.cause, StopCause::HardBounce);
    assert_eq!(
        stopped.reason,
        "the address bounced: Permanent/General: smtp; 550 5.1.1 user unknown"
    );
    // The user is told at the other address.
    let notice =
        fmn_integration_tests::eventually("the notice", Duration::from_secs(60), || async {
            mail_to(&other).await.into_iter().next()
        })
        .await;
    assert!(
        notice.raw.contains(&bouncing),
        "the notice names the address"
    );

    // A message for the user's filter afterwards: the other address only.
    let matcher = Arc::new(fmn_match::MatchHandler::new(&env.clients).await.unwrap());
    let (stop_match, match_stats) =
        fmn_integration_tests::start_function(&env, FunctionName::Match, matcher);
    let envelope =
        fmn_integration_tests::corpus_envelope("bodhi.TestBodhiRequestMultiplePackagesPerUpdate");
    fmn_aws::sqs::send_all(
        &env.clients.sqs,
        env.queue_url(QueueName::Ingest),
        &[fmn_aws::sqs::OutgoingMessage::new(
            "after-bounce",
            envelope.to_string(),
        )],
    )
    .await
    .unwrap();
    wait_for_records(&match_stats, 1).await;
    fmn_integration_tests::eventually(
        "the message at the other address",
        Duration::from_secs(60),
        || async { (mail_to(&other).await.len() == 2).then_some(()) },
    )
    .await;
    let after_bounce = mail_to(&bouncing).await.len() - 1;
    println!("mails to the bounced address after the bounce event: {after_bounce}");
    assert_eq!(after_bounce, 0);

    // Resumed (the page's button: PATCH resume), it receives again.
    prefs_store
        .update(&user, |p| {
            p.destination_mut("email-1")?.health.resume();
            Ok::<_, fmn_aws::prefs_store::PrefsStoreError>(())
        })
        .await
        .unwrap();
    let p = prefs_store.get(&user).await.unwrap().unwrap();
    assert!(p.destination("email-1").unwrap().is_active());
    assert_eq!(
        p.destination("email-1")
            .unwrap()
            .health
            .last_problem
            .as_ref()
            .map(|l| l.reason.as_str()),
        Some("Permanent/General: smtp; 550 5.1.1 user unknown"),
        "the last problem stays on view"
    );
    stop_match.cancel();
    stop_events.cancel();
    stop_email.cancel();
}

/// A complaint (AWS's documented event) stops the address at once; soft bounces are counted
/// and a delivery clears them (fmn_core::health's unit tests cover the counting).
#[tokio::test(flavor = "multi_thread")]
async fn a_complaint_stops_the_address() {
    use fmn_core::health::StopCause;
    use fmn_core::prefs::UserPrefs;

    let env = TestEnv::new("complaint").await;
    let settings = settings(&env).await;
    let user = unique("bob");
    let address = format!("{}@example.org", unique("complains"));
    let prefs_store = fmn_aws::prefs_store::PrefsStore::from_clients(&env.clients);
    let mut prefs = UserPrefs::new(user.as_str());
    prefs
        .destinations
        .push(Destination::email("email-1", &address).confirmed(true));
    prefs_store.create(&prefs).await.unwrap();
    let records = DeliveryRecords::from_clients(&env.clients, settings.lease);
    let key = fmn_aws::delivery_records::Channel::Email.key("complaint-job");
    let info = RecordInfo {
        user: &user,
        destination: "email-1",
        address: &address,
        what: "test",
    };
    let Claim::Claimed(claim) = records.claim(&key, &info).await.unwrap() else {
        panic!("a fresh record is claimed");
    };
    records.mark_sent(&claim, "ses-complaint-1").await.unwrap();
    handle_event(
        &env,
        &settings,
        documented_event("complaint", &key, "ses-complaint-1", &address),
    )
    .await;
    let p = prefs_store.get(&user).await.unwrap().unwrap();
    let stopped = p
        .destination("email-1")
        .unwrap()
        .health
        .stopped
        .clone()
        .unwrap();
    assert_eq!(stopped.cause, StopCause::Complaint);
    assert_eq!(stopped.reason, "marked as spam: abuse");
    assert!(!p.destination("email-1").unwrap().is_active());
}

/// `body` handled by a mail-events handler called directly (the test knows when it is done).
async fn handle_event(env: &TestEnv, settings: &MailSettings, body: String) {
    use fmn_aws::lambda::SqsBatchHandler;
    let events =
        fmn_mail_events::MailEventsHandler::new(&env.clients, settings.lease, Default::default())
            .await
            .unwrap();
    let mut event = aws_lambda_events::sqs::SqsEvent::default();
    let mut m = aws_lambda_events::sqs::SqsMessage::default();
    m.message_id = Some("direct".into());
    m.body = Some(body);
    event.records.push(m);
    let response = events.handle_batch(event).await;
    assert!(response.batch_item_failures.is_empty());
}

/// Old FMN's rule: a user's `@fedoraproject.org` alias that bounces for good is replaced by the
/// FAS address the sync stored for the account, which receives from then on (confirmed: FAS
/// verified it); the alias is mailed nothing more, and a late bounce of mail sent to the alias
/// before the move changes nothing.
#[tokio::test(flavor = "multi_thread")]
async fn a_bouncing_fedora_alias_falls_back_to_the_fas_address() {
    use fmn_core::directory::Account;
    use fmn_core::fact_changes::FactChange;

    let env = TestEnv::new("alias").await;
    let settings = settings(&env).await;
    let user = unique("carol");
    let alias = format!("{user}@fedoraproject.org");
    let own = format!("{}@example.org", unique("carol-own"));
    fmn_aws::ownership_store::OwnershipStore::from_clients(&env.clients)
        .apply(&[FactChange::SetAccount {
            user: user.clone(),
            account: Some(Account {
                emails: vec![alias.clone(), own.clone()],
                ..Account::default()
            }),
        }])
        .await
        .unwrap();
    let prefs_store = fmn_aws::prefs_store::PrefsStore::from_clients(&env.clients);
    follow_hadess(
        &env,
        &user,
        &[Destination::email("email-1", &alias).confirmed(true)],
    )
    .await;

    let (stop_email, email_stats) = start_deliver_email(&env, settings.clone()).await;
    let (key, ses_id) = send_for_real(&env, &email_stats, &user, &alias, "FEDORA-ALIAS-1").await;
    assert_eq!(mail_to(&alias).await.len(), 1);

    let stop_events = start_mail_events(&env, &settings).await;
    report_event(&env, documented_event("bounce", &key, &ses_id, &alias)).await;
    let moved = fmn_integration_tests::eventually(
        "the destination moved to the FAS address",
        Duration::from_secs(60),
        || async {
            let p = prefs_store.get(&user).await.unwrap().unwrap();
            let d = p.destination("email-1").unwrap().clone();
            (d.address == own).then_some(d)
        },
    )
    .await;
    assert!(moved.is_active(), "confirmed and not stopped: {moved:?}");
    let problem = moved.health.last_problem.expect("the bounce stays on view");
    assert!(
        problem.reason.contains(&alias) && problem.reason.contains("550 5.1.1"),
        "{problem:?}"
    );

    // The same mail's bounce reported again (SES may): the alias is not the address any more.
    handle_event(
        &env,
        &settings,
        documented_event("bounce", &key, &ses_id, &alias),
    )
    .await;
    let p = prefs_store.get(&user).await.unwrap().unwrap();
    assert!(p.destination("email-1").unwrap().is_active());

    // The next matching message goes to the FAS address, none to the alias.
    let matcher = Arc::new(fmn_match::MatchHandler::new(&env.clients).await.unwrap());
    let (stop_match, match_stats) =
        fmn_integration_tests::start_function(&env, FunctionName::Match, matcher);
    fmn_aws::sqs::send_all(
        &env.clients.sqs,
        env.queue_url(QueueName::Ingest),
        &[fmn_aws::sqs::OutgoingMessage::new(
            "after-alias-bounce",
            fmn_integration_tests::corpus_envelope(
                "bodhi.TestBodhiRequestMultiplePackagesPerUpdate",
            )
            .to_string(),
        )],
    )
    .await
    .unwrap();
    wait_for_records(&match_stats, 1).await;
    fmn_integration_tests::eventually(
        "the message at the FAS address",
        Duration::from_secs(60),
        || async { (mail_to(&own).await.len() == 1).then_some(()) },
    )
    .await;
    let after_bounce = mail_to(&alias).await.len() - 1;
    println!("mails to the bounced alias after the bounce event: {after_bounce}");
    assert_eq!(after_bounce, 0);
    stop_match.cancel();
    stop_events.cancel();
    stop_email.cancel();
}

/// A burst for one address in one match batch (three messages of a followed user's work) goes
/// out as one mail listing the three, each notification's own delivery record marked sent by
/// it. Delivered again (the batch retried: one message alone, then two of them with a new one)
/// nothing goes twice: a bundle sends only what no mail carried yet, and one job left is its
/// ordinary mail.
#[tokio::test(flavor = "multi_thread")]
async fn a_burst_for_one_address_is_one_mail_and_each_notification_goes_once() {
    let env = TestEnv::new("burst").await;
    let settings = settings(&env).await;
    let user = unique("follower");
    let address = format!("{}@example.org", unique("burst"));
    let destination = Destination::email("email-1", &address).confirmed(true);
    follow_hadess(&env, &user, std::slice::from_ref(&destination)).await;
    let messages: Vec<serde_json::Value> = (0..4)
        .map(|_| {
            fmn_integration_tests::edited_corpus_message(
                "bodhi.TestBodhiRequestMultiplePackagesPerUpdate",
                |_| {},
            )
        })
        .collect();
    let msg_id = |i: usize| messages[i]["msg_id"].as_str().unwrap().to_string();
    let record_key = |i: usize| {
        fmn_aws::delivery_records::Channel::Email.key(&fmn_core::jobs::job_id(
            &msg_id(i),
            &user,
            &destination,
        ))
    };
    // Messages on the ingest queue before the match function starts: one batch.
    let ingest = |which: &[usize]| {
        let batch: Vec<fmn_aws::sqs::OutgoingMessage> = which
            .iter()
            .map(|&i| {
                fmn_aws::sqs::OutgoingMessage::new(
                    format!("m{i}-{}", unique("copy")),
                    messages[i].to_string(),
                )
            })
            .collect();
        let env = &env;
        async move {
            fmn_aws::sqs::send_all(&env.clients.sqs, env.queue_url(QueueName::Ingest), &batch)
                .await
                .unwrap()
        }
    };
    let run_match = |records: u64| {
        let env = &env;
        async move {
            let matcher = Arc::new(fmn_match::MatchHandler::new(&env.clients).await.unwrap());
            let (stop, stats) =
                fmn_integration_tests::start_function(env, FunctionName::Match, matcher);
            wait_for_records(&stats, records).await;
            stop.cancel();
        }
    };
    ingest(&[0, 1, 2]).await;
    run_match(3).await;
    let (stop_email, email_stats) = start_deliver_email(&env, settings).await;
    wait_for_records(&email_stats, 1).await;

    let mails = mail_to(&address).await;
    assert_eq!(mails.len(), 1, "one mail for the burst");
    let raw = &mails[0].raw;
    let parsed = MessageParser::default().parse(raw.as_bytes()).unwrap();
    assert_eq!(
        parsed.subject(),
        Some("Fedora Notifications (3 updates at once)")
    );
    assert!(raw.contains("X-Fmn-Burst-Count: 3"), "{raw}");
    let mut carried = fmn_integration_tests::mail::notified_ids(&mails[0]);
    carried.sort();
    let mut published: Vec<String> = (0..3).map(msg_id).collect();
    published.sort();
    assert_eq!(carried, published, "X-Fmn-Burst-Ids");
    let mut ses_ids = Vec::new();
    for i in 0..3 {
        let item = record(&env, &record_key(i)).await;
        assert_eq!(get_s(&item, "state"), Some("sent"), "job of message {i}");
        ses_ids.push(get_s(&item, "message_id").unwrap().to_string());
    }
    assert!(ses_ids.iter().all(|id| *id == ses_ids[0]), "{ses_ids:?}");

    // The batch again, in parts: message 1 alone, then 0 and 2 with the new message 3.
    ingest(&[1]).await;
    run_match(1).await;
    wait_for_records(&email_stats, 2).await;
    ingest(&[0, 2, 3]).await;
    run_match(3).await;
    wait_for_records(&email_stats, 3).await;
    let mails = mail_to(&address).await;
    let subjects: Vec<String> = mails
        .iter()
        .map(|m| {
            MessageParser::default()
                .parse(m.raw.as_bytes())
                .and_then(|p| p.subject().map(str::to_string))
                .unwrap_or_default()
        })
        .collect();
    println!("mails after the repeats: {subjects:?}");
    assert_eq!(mails.len(), 2, "only message 3 went again: {subjects:?}");
    assert_eq!(
        fmn_integration_tests::mail::fedmsg_id(&mails[1]),
        Some(msg_id(3)),
        "the one job left is its ordinary mail"
    );
    assert!(!subjects[1].contains("at once"), "{subjects:?}");
    let item = record(&env, &record_key(3)).await;
    assert_eq!(get_s(&item, "state"), Some("sent"));
    stop_email.cancel();
}

/// Stores `user` with `destinations` and one filter, "hadess's work" (messages naming the user
/// hadess, as the corpus's bodhi update does), feeding them all.
async fn follow_hadess(env: &TestEnv, user: &str, destinations: &[Destination]) {
    use fmn_core::prefs::{Filter, UserPrefs};
    use fmn_core::rules::{Rule, RuleKind};
    let mut prefs = UserPrefs::new(user);
    prefs.destinations.extend_from_slice(destinations);
    prefs.filters.push(Filter::new(
        "filter-1".into(),
        "hadess's work".into(),
        destinations.iter().map(|d| d.id.clone()).collect(),
        vec![Rule::new(RuleKind::User {
            users: vec!["hadess".into()],
        })],
    ));
    fmn_aws::prefs_store::PrefsStore::from_clients(&env.clients)
        .create(&prefs)
        .await
        .unwrap();
}

/// SES's Send event about a burst's mail names every record: a sender that died after SES
/// accepted the mail leaves them all `sending`, and the event settles them all.
#[tokio::test(flavor = "multi_thread")]
async fn a_send_event_settles_every_record_of_a_burst_mail() {
    let env = TestEnv::new("burst-event").await;
    let settings = settings(&env).await;
    let records = DeliveryRecords::from_clients(&env.clients, Duration::from_secs(300));
    let keys: Vec<String> = (0..3)
        .map(|_| fmn_aws::delivery_records::Channel::Email.key(&unique("job")))
        .collect();
    for key in &keys {
        let claim = records.claim(key, &RecordInfo::default()).await.unwrap();
        assert!(matches!(claim, Claim::Claimed(_)), "{claim:?}");
    }
    let mut event: serde_json::Value = serde_json::from_str(&documented_event(
        "send",
        &keys[0],
        "ses-burst-1",
        "someone@example.org",
    ))
    .unwrap();
    let tagged: Vec<&str> = keys.iter().map(String::as_str).collect();
    for (name, value) in fmn_aws::delivery_records::record_tags(&tagged) {
        event["mail"]["tags"][name] = serde_json::json!([value]);
    }
    let stop_events = start_mail_events(&env, &settings).await;
    report_event(&env, event.to_string()).await;
    for key in &keys {
        let settled = fmn_integration_tests::eventually(
            "the record settled",
            Duration::from_secs(60),
            || {
                let records = &records;
                async move {
                    let item = records.get(key).await.unwrap()?;
                    (get_s(&item, "state") == Some("sent"))
                        .then(|| get_s(&item, "message_id").map(str::to_string))
                }
            },
        )
        .await;
        assert_eq!(settled.as_deref(), Some("ses-burst-1"), "{key}");
    }
    stop_events.cancel();
}
