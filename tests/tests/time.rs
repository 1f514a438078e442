//! Time on the emulators: the match function (its clock set by the test) and the digest
//! function (run "at" a given instant) over LocalStack, DynamoDB Local and moto. A user in
//! Europe/Prague (UTC+1 in January) with quiet hours, a throttled filter, a daily digest.

use std::sync::Arc;

use fmn_aws::clock::Clock;
use fmn_aws::mail::MailSettings;
use fmn_aws::prefs_store::PrefsStore;
use fmn_aws::sqs::{send_all, OutgoingMessage};
use fmn_aws::{FunctionName, QueueName};
use fmn_core::jobs::DeliveryJob;
use fmn_core::prefs::{Delivery, Destination, Filter, UserPrefs};
use fmn_core::rules::{Rule, RuleKind};
use fmn_core::schedule::{QuietHours, Schedule};
use fmn_integration_tests::mail::sent_mail;
use fmn_integration_tests::{start_function, wait_for_records, TestEnv};

/// 2026-01-14 23:00 in Prague (22:00 UTC).
const WED_2300_PRAGUE: u64 = 1_768_428_000;
/// 2026-01-15 06:59 and 07:00 in Prague.
const THU_0659_PRAGUE: u64 = 1_768_456_740;
const THU_0700_PRAGUE: u64 = 1_768_456_800;
/// 2026-01-15 07:59 and 08:00 in Prague.
const THU_0759_PRAGUE: u64 = 1_768_460_340;
const THU_0800_PRAGUE: u64 = 1_768_460_400;

async fn settings(env: &TestEnv) -> MailSettings {
    fmn_integration_tests::mail::mail_settings(env).await
}

fn unique_address(tag: &str) -> String {
    format!(
        "{tag}-{}@example.org",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    )
}

/// A user in Prague whose one filter (every elections message) feeds `destination`.
fn user(name: &str, destination: Destination, max_per_hour: Option<u32>) -> UserPrefs {
    let mut p = UserPrefs::new(name);
    p.time_zone = Some("Europe/Prague".into());
    p.destinations.push(destination.confirmed(true));
    let rules = vec![Rule::new(RuleKind::Topic {
        glob: "org.fedoraproject.prod.elections.*".into(),
    })];
    p.filters.push(Filter {
        max_per_hour,
        ..Filter::new(
            "filter-1".into(),
            "Elections".into(),
            vec!["email-1".into()],
            rules,
        )
    });
    p.validate().expect("a valid test user");
    p
}

/// A fedora-messaging message as the bridge puts it on the ingest queue, with its severity
/// (fedora-messaging's levels: 20 info, 40 error).
async fn publish(env: &TestEnv, id: &str, severity: u8) {
    let envelope = serde_json::json!({
        "topic": "org.fedoraproject.prod.elections.vote",
        "msg_id": id,
        "timestamp": 1_768_400_000,
        "origin": "fedora-messaging",
        "headers": {
            "fedora_messaging_schema": "elections.vote.v3",
            "fedora_messaging_severity": severity,
            "sent-at": "2026-01-14T14:13:20+00:00",
        },
        "msg": {"agent": "alice", "election": id},
    });
    send_all(
        &env.clients.sqs,
        env.queue_url(QueueName::Ingest),
        &[OutgoingMessage::new(id, envelope.to_string())],
    )
    .await
    .unwrap();
}

/// The match function on the ingest queue, its clock standing at `now`.
async fn start_match(
    env: &TestEnv,
    now: u64,
) -> (
    tokio_util::sync::CancellationToken,
    Arc<fmn_local::stats::FunctionStats>,
) {
    let handler = fmn_match::MatchHandler::new(&env.clients)
        .await
        .unwrap()
        .with_clock(Clock::fixed(now));
    start_function(env, FunctionName::Match, Arc::new(handler))
}

fn jobs(messages: &[aws_sdk_sqs::types::Message]) -> Vec<DeliveryJob> {
    messages
        .iter()
        .map(|m| serde_json::from_str(m.body().unwrap()).unwrap())
        .collect()
}

async fn mail_to(address: &str) -> Vec<fmn_integration_tests::mail::SentMail> {
    sent_mail()
        .await
        .into_iter()
        .filter(|m| m.destinations.iter().any(|d| d == address))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_at_23_local_arrives_at_07_local_in_one_digest_and_an_error_goes_at_once() {
    let env = TestEnv::new("time-quiet").await;
    let address = unique_address("owl");
    let quiet = QuietHours {
        from: "22:00".parse().unwrap(),
        to: "07:00".parse().unwrap(),
    };
    let owl = user(
        "owl",
        Destination::email("email-1", &address).with_quiet_hours(Some(quiet)),
        None,
    );
    PrefsStore::from_clients(&env.clients)
        .create(&owl)
        .await
        .unwrap();

    let (stop, stats) = start_match(&env, WED_2300_PRAGUE).await;
    publish(&env, "quiet-1", 20).await;
    publish(&env, "quiet-2", 20).await;
    publish(&env, "quiet-error", 40).await;
    wait_for_records(&stats, 3).await;
    stop.cancel();

    // The error went at once; the two others are held.
    let now = jobs(&env.drain(QueueName::Email, 3, 5).await);
    let ids: Vec<&str> = now.iter().map(|j| j.notification.msg_id.as_str()).collect();
    assert_eq!(ids, ["quiet-error"], "{now:#?}");

    let digest = fmn_digest::DigestHandler::with_settings(&env.clients, settings(&env).await);
    let early = digest.run_at(THU_0659_PRAGUE).await.unwrap();
    assert_eq!(early.mails_sent, 0, "06:59 is still quiet: {early:?}");
    assert!(mail_to(&address).await.is_empty());

    let seven = digest.run_at(THU_0700_PRAGUE).await.unwrap();
    assert_eq!(
        (seven.mails_sent, seven.items_sent),
        (1, 2),
        "at 07:00 one digest with both: {seven:?}"
    );
    let mails = mail_to(&address).await;
    assert_eq!(mails.len(), 1, "one mail");
    let parsed = mail_parser::MessageParser::default()
        .parse(mails[0].raw.as_bytes())
        .unwrap();
    assert!(
        parsed.subject().unwrap().contains("Digest (2 updates)"),
        "{:?}",
        parsed.subject()
    );
    // Nothing is left: a later run sends nothing more.
    let after = digest.run_at(THU_0700_PRAGUE + 3600).await.unwrap();
    assert_eq!((after.pending, after.mails_sent), (0, 0), "{after:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn matches_beyond_a_filters_hourly_allowance_wait_for_the_hour_to_end() {
    let env = TestEnv::new("time-throttle").await;
    let address = unique_address("busy");
    let busy = user("busy", Destination::email("email-1", &address), Some(2));
    PrefsStore::from_clients(&env.clients)
        .create(&busy)
        .await
        .unwrap();
    // 13:20 UTC (14:20 in Prague, outside any quiet hours): the hour ends at 14:00 UTC.
    let now = 1_768_483_200;
    let hour_end = 1_768_485_600;
    let (stop, stats) = start_match(&env, now).await;
    for (n, id) in ["busy-1", "busy-2", "busy-3"].into_iter().enumerate() {
        publish(&env, id, 20).await;
        // One at a time, so which one is the third is known.
        wait_for_records(&stats, n as u64 + 1).await;
    }
    stop.cancel();
    let sent = jobs(&env.drain(QueueName::Email, 3, 5).await);
    let mut ids: Vec<&str> = sent
        .iter()
        .map(|j| j.notification.msg_id.as_str())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, ["busy-1", "busy-2"], "the allowance is 2 an hour");

    let digest = fmn_digest::DigestHandler::with_settings(&env.clients, settings(&env).await);
    let within = digest.run_at(hour_end - 1).await.unwrap();
    assert_eq!(within.mails_sent, 0, "{within:?}");
    let next = digest.run_at(hour_end).await.unwrap();
    assert_eq!((next.mails_sent, next.items_sent), (1, 1), "{next:?}");
    let mails = mail_to(&address).await;
    assert_eq!(mails.len(), 1);
    assert!(
        mails[0].raw.contains("busy-3"),
        "the third match, as a mail"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_daily_digest_at_08_local_is_not_sent_at_07_59_and_is_at_08_00() {
    let env = TestEnv::new("time-daily").await;
    let address = unique_address("early");
    let daily = Delivery::Digest {
        batch_delta: None,
        batch_count: None,
        schedule: Some(Schedule::Day {
            at: "08:00".parse().unwrap(),
        }),
    };
    let early = user(
        "early",
        Destination::email("email-1", &address).with_delivery(daily),
        None,
    );
    PrefsStore::from_clients(&env.clients)
        .create(&early)
        .await
        .unwrap();
    // Matched at 23:00 the evening before.
    let (stop, stats) = start_match(&env, WED_2300_PRAGUE).await;
    publish(&env, "daily-1", 20).await;
    publish(&env, "daily-2", 20).await;
    wait_for_records(&stats, 2).await;
    stop.cancel();
    assert!(env.drain(QueueName::Email, 1, 2).await.is_empty());

    let digest = fmn_digest::DigestHandler::with_settings(&env.clients, settings(&env).await);
    let before = digest.run_at(THU_0759_PRAGUE).await.unwrap();
    assert_eq!((before.pending, before.mails_sent), (1, 0), "{before:?}");
    assert!(mail_to(&address).await.is_empty());
    let at = digest.run_at(THU_0800_PRAGUE).await.unwrap();
    assert_eq!((at.mails_sent, at.items_sent), (1, 2), "{at:?}");
    assert_eq!(mail_to(&address).await.len(), 1);
}
