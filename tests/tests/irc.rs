//! IRC delivery against a real server: ngIRCd started by the test (`support/irc.rs`), the
//! deliver-irc handler driven on the IRC queue on LocalStack as Lambda would, its delivery
//! records in DynamoDB Local, and a second client registered as the target nick reading what
//! the bot says. TLS against ngIRCd with a certificate from a CA made for the test; SASL and
//! the NickServ check against InspIRCd with Atheme as its services.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fmn_aws::batch::REASON_ATTRIBUTE;
use fmn_aws::delivery_records::{Channel, DeliveryRecords};
use fmn_aws::dynamo::get_s;
use fmn_aws::health::GaveUpReport;
use fmn_aws::job_queue::{enqueue_jobs, QueuedJob};
use fmn_aws::{FunctionName, QueueName};
use fmn_core::irc_line::ConfirmationJob;
use fmn_core::jobs::{DeliveryJob, Notification};
use fmn_core::meta::Severity;
use fmn_core::prefs::{Destination, DestinationKind};
use fmn_deliver_irc::bot::{Bot, BotError};
use fmn_deliver_irc::{DeliverIrcHandler, IrcSettings};
use fmn_integration_tests::irc::{IrcReader, IrcServer, ServicesNetwork};
use fmn_integration_tests::{job_for, start_function, wait_for_records, wait_until, TestEnv};
use fmn_local::stats::FunctionStats;
use tokio_util::sync::CancellationToken;

fn unique_nick(tag: &str) -> String {
    format!("{tag}{}", &uuid::Uuid::new_v4().simple().to_string()[..8])
}

/// ngIRCd takes about three lines a second from a client: the tests pace at two (the default,
/// one a second, is Libera's).
fn settings(server: &IrcServer) -> IrcSettings {
    IrcSettings {
        server: "127.0.0.1".into(),
        port: server.port,
        nick: unique_nick("fmnbot"),
        rate: 2.0,
        ..IrcSettings::default()
    }
}

fn job(nick: &str, n: usize, colour: bool, verbose: bool) -> DeliveryJob {
    let destination = Destination {
        irc_colour: colour,
        verbose,
        ..Destination::irc("irc-1", nick).confirmed(true)
    };
    let notification = Notification {
        msg_id: format!("2024-{nick}-{n}"),
        topic: "org.fedoraproject.prod.bodhi.update.comment".into(),
        app: "bodhi".into(),
        agent: Some("bob".into()),
        title: "bodhi.update.comment".into(),
        subtitle: Some(format!("bob commented on update {n}\r\nQUIT :injected")),
        link: Some(format!("https://bodhi.fedoraproject.org/updates/{n}")),
        usernames: vec!["bob".into()],
        packages: vec!["foo".into()],
        usernames_total: None,
        packages_total: None,
        timestamp: None,
        severity: Severity::default(),
        origin: Default::default(),
        long_text: None,
    };
    job_for("alice", destination, notification)
}

/// Puts `(body, job id)` pairs on the IRC queue, as the match function does.
async fn enqueue(env: &TestEnv, bodies: &[(String, String)]) {
    let jobs: Vec<QueuedJob> = bodies
        .iter()
        .map(|(body, job_id)| QueuedJob {
            job_id: job_id.clone(),
            body: body.clone(),
        })
        .collect();
    enqueue_jobs(&env.clients.sqs, env.queue_url(QueueName::Irc), &jobs)
        .await
        .expect("SendMessageBatch");
}

fn body(j: &DeliveryJob) -> (String, String) {
    (serde_json::to_string(j).unwrap(), j.job_id.clone())
}

/// deliver-irc with `settings`, running on the IRC queue.
async fn start_deliver_irc(
    env: &TestEnv,
    settings: IrcSettings,
) -> (CancellationToken, Arc<FunctionStats>) {
    let handler = DeliverIrcHandler::with_settings(&env.clients, settings).await;
    start_function(
        env,
        FunctionName::DeliverIrc,
        Arc::new(handler.expect("handler")),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn jobs_and_confirmations_reach_the_nick_on_one_line_each() {
    let server = IrcServer::start();
    let env = TestEnv::new("irclines").await;
    let settings = settings(&server);
    let bot_nick = settings.nick.clone();
    let nick = unique_nick("alice");
    let reader = IrcReader::connect(server.port, &nick).await;
    let (stop, stats) = start_deliver_irc(&env, settings).await;

    let terse = job(&nick, 1, false, false);
    let coloured = job(&nick, 2, true, true);
    let confirmation = ConfirmationJob {
        job_id: "confirm-1".into(),
        user: "alice".into(),
        nick: nick.clone(),
        accept_url: "http://127.0.0.1:8080/confirm/accept/abc".into(),
        reject_url: Some("http://127.0.0.1:8080/confirm/reject/abc".into()),
        destination: None,
    };
    enqueue(
        &env,
        &[
            body(&terse),
            body(&coloured),
            (confirmation.to_json(), confirmation.job_id.clone()),
        ],
    )
    .await;
    let got = reader.wait_for(3, Duration::from_secs(60)).await;
    wait_for_records(&stats, 3).await;
    stop.cancel();

    let texts: Vec<&str> = got.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(
        texts,
        [
            "[bodhi] bob commented on update 1 QUIT :injected https://bodhi.fedoraproject.org/updates/1",
            "\x0303[bodhi]\x0f bob commented on update 2 QUIT :injected \x0314(bob)\x0f \
             \x0310https://bodhi.fedoraproject.org/updates/2\x0f \x0314(filter: My packages)\x0f",
            "Fedora Notifications: account alice has requested that notifications be sent to this nick; to accept visit \
             http://127.0.0.1:8080/confirm/accept/abc; to reject visit \
             http://127.0.0.1:8080/confirm/reject/abc",
        ]
    );
    assert!(got.iter().all(|m| m.from == bot_nick), "{got:?}");
    assert_eq!(stats.failed.load(Ordering::Relaxed), 0);

    // Each delivery is recorded as sent.
    let records = DeliveryRecords::from_clients(&env.clients, Duration::from_secs(300));
    for id in [&terse.job_id, &coloured.job_id, &confirmation.job_id] {
        let item = records
            .get(&Channel::Irc.key(id))
            .await
            .unwrap()
            .expect("record");
        assert_eq!(get_s(&item, "state"), Some("sent"));
        assert_eq!(get_s(&item, "address"), Some(nick.as_str()));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_burst_of_200_jobs_arrives_complete_in_order_without_a_kick() {
    let server = IrcServer::start();
    let env = TestEnv::new("ircburst").await;
    let settings = settings(&server);
    let (rate, burst) = (settings.rate, settings.burst);
    let nick = unique_nick("burst");
    let reader = IrcReader::connect(server.port, &nick).await;

    let jobs: Vec<_> = (0..200).map(|n| job(&nick, n, false, false)).collect();
    let bodies: Vec<_> = jobs.iter().map(body).collect();
    enqueue(&env, &bodies).await;
    let started = Instant::now();
    let (stop, stats) = start_deliver_irc(&env, settings).await;

    let got = reader.wait_for(200, Duration::from_secs(600)).await;
    let elapsed = started.elapsed();
    wait_for_records(&stats, 200).await;
    stop.cancel();

    let numbers: Vec<usize> = got
        .iter()
        .map(|m| {
            m.text
                .strip_prefix("[bodhi] bob commented on update ")
                .and_then(|t| t.split(' ').next())
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("unexpected line {:?}", m.text))
        })
        .collect();
    assert_eq!(
        numbers,
        (0..200).collect::<Vec<_>>(),
        "complete, in order, once each"
    );
    assert_eq!(
        stats.failed.load(Ordering::Relaxed),
        0,
        "no record failed (a kicked bot fails its batch)"
    );
    assert!(
        server.flood_disconnects().is_empty(),
        "the server logged flooding: {:?}",
        server.flood_disconnects()
    );
    eprintln!(
        "irc burst: 200 lines in {:.1} s ({:.2} lines/s; rate {rate}/s, burst {burst}; {} invocations)",
        elapsed.as_secs_f64(),
        200.0 / elapsed.as_secs_f64(),
        stats.invocations.load(Ordering::Relaxed),
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redelivered_job_is_said_once() {
    let server = IrcServer::start();
    let env = TestEnv::new("ircrepeat").await;
    let nick = unique_nick("carol");
    let reader = IrcReader::connect(server.port, &nick).await;
    let (stop, stats) = start_deliver_irc(&env, settings(&server)).await;

    let first = job(&nick, 1, false, false);
    enqueue(&env, &[body(&first)]).await;
    reader.wait_for(1, Duration::from_secs(60)).await;
    wait_for_records(&stats, 1).await;

    // The same job again (the match function ran twice, or SQS delivered twice).
    enqueue(&env, &[body(&first)]).await;
    wait_for_records(&stats, 2).await;
    // A marker after it: anything the repeat had said would arrive before the marker.
    let marker = job(&nick, 2, false, false);
    enqueue(&env, &[body(&marker)]).await;
    let got = reader.wait_for(2, Duration::from_secs(60)).await;
    wait_for_records(&stats, 3).await;
    stop.cancel();

    let texts: Vec<&str> = got.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts.len(), 2, "{texts:?}");
    assert!(texts[0].contains("update 1"), "{texts:?}");
    assert!(texts[1].contains("update 2"), "{texts:?}");
    assert_eq!(stats.failed.load(Ordering::Relaxed), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_jobs_go_to_the_dead_letter_queue_with_a_reason() {
    let server = IrcServer::start();
    let env = TestEnv::new("ircbad").await;
    let nick = unique_nick("dave");
    let reader = IrcReader::connect(server.port, &nick).await;
    let (stop, stats) = start_deliver_irc(&env, settings(&server)).await;

    let mut to_email = job(&nick, 1, false, false);
    to_email.destination.kind = DestinationKind::Email;
    let mut bad_nick = job(&nick, 2, false, false);
    bad_nick.destination.address = format!("{nick},#fedora");
    let good = job(&nick, 3, false, false);
    enqueue(
        &env,
        &[
            ("this is not json".into(), "x".into()),
            body(&to_email),
            body(&bad_nick),
            body(&good),
        ],
    )
    .await;
    wait_for_records(&stats, 4).await;
    let got = reader.wait_for(1, Duration::from_secs(60)).await;
    stop.cancel();

    let dead = env.drain(QueueName::IrcDeadLetter, 3, 30).await;
    let mut reasons: Vec<String> = dead
        .iter()
        .map(|m| {
            m.message_attributes
                .as_ref()
                .and_then(|a| a.get(REASON_ATTRIBUTE))
                .and_then(|v| v.string_value.clone())
                .expect("a dead-lettered job carries its reason")
        })
        .collect();
    reasons.sort();
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert!(
        reasons.iter().all(|r| r.starts_with("not an IRC job")),
        "{reasons:?}"
    );
    assert!(reasons.iter().any(|r| r.contains("not irc")), "{reasons:?}");
    assert!(
        reasons.iter().any(|r| r.contains("not a valid IRC nick")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("expected")),
        "{reasons:?}"
    );
    // The good one in the same batch went out.
    assert_eq!(got.len(), 1);
    assert!(got[0].text.contains("update 3"));
}

#[tokio::test(flavor = "multi_thread")]
async fn no_server_returns_the_batch_to_the_queue() {
    let env = TestEnv::new("ircdown").await;
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let settings = IrcSettings {
        server: "127.0.0.1".into(),
        port,
        nick: unique_nick("fmnbot"),
        ..IrcSettings::default()
    };
    let (stop, stats) = start_deliver_irc(&env, settings).await;
    let j = job("erin", 1, false, false);
    enqueue(&env, &[body(&j)]).await;
    wait_until("the record to fail", Duration::from_secs(60), || {
        stats.failed.load(Ordering::Relaxed) > 0
    })
    .await;
    stop.cancel();
    assert_record(&env, &j.job_id, "retry", "cannot connect").await;
    // Nothing was dead-lettered by us: a connection failure is worth retrying.
    let dead = env.drain(QueueName::IrcDeadLetter, 1, 2).await;
    assert!(dead.iter().all(|m| m
        .message_attributes
        .as_ref()
        .and_then(|a| a.get(REASON_ATTRIBUTE))
        .is_none()));
}

fn confirmation(nick: &str, destination: &str) -> ConfirmationJob {
    ConfirmationJob {
        job_id: format!("confirm-{}", uuid::Uuid::new_v4().simple()),
        user: "alice".into(),
        nick: nick.to_string(),
        accept_url: "http://127.0.0.1:8080/confirm/abc".into(),
        reject_url: None,
        destination: Some(destination.to_string()),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn over_tls_lines_arrive_and_an_unknown_ca_is_refused() {
    let server = IrcServer::start_tls();
    let env = TestEnv::new("irctls").await;
    let settings = IrcSettings {
        port: server.tls_port.expect("a TLS port"),
        tls: true,
        ca_file: Some(server.ca_file().display().to_string()),
        ..settings(&server)
    };
    // Without the test CA the server's certificate is not trusted (webpki's and the system's
    // roots only): no connection, nothing said.
    let untrusted = IrcSettings {
        ca_file: None,
        nick: unique_nick("fmnbot"),
        ..settings.clone()
    };
    match Bot::connect(&untrusted).await {
        Err(BotError::Connect { reason, .. }) => {
            assert!(reason.to_lowercase().contains("certificate"), "{reason}")
        }
        Err(e) => panic!("expected a certificate error, got {e}"),
        Ok(_) => panic!("connected to a server whose certificate no trusted CA signed"),
    }

    // The reader is on the plain port: the same server relays between the two.
    let nick = unique_nick("tina");
    let reader = IrcReader::connect(server.port, &nick).await;
    let (stop, stats) = start_deliver_irc(&env, settings).await;
    let j = job(&nick, 1, false, false);
    enqueue(&env, &[body(&j)]).await;
    let got = reader.wait_for(1, Duration::from_secs(60)).await;
    wait_for_records(&stats, 1).await;
    stop.cancel();
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].text.contains("update 1"), "{got:?}");
    assert_eq!(stats.failed.load(Ordering::Relaxed), 0);
}

/// The bot's settings on the services network: its account registered with NickServ, SASL on.
async fn services_settings(network: &ServicesNetwork) -> IrcSettings {
    let nick = unique_nick("fmnbot");
    network.register_nick(&nick, "bot-password").await;
    let vars = fmn_aws::Vars::from_lookup(|k| match k {
        "FMN_IRC_PASSWORD" => Some("bot-password".to_string()),
        "FMN_IRC_NICK" => Some(nick.clone()),
        _ => None,
    });
    let defaults = IrcSettings::from_vars(&vars).expect("settings");
    assert!(
        defaults.sasl && defaults.require_registered_nick,
        "on with a password"
    );
    IrcSettings {
        server: "127.0.0.1".into(),
        port: network.port,
        rate: 2.0,
        ..defaults
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sasl_logs_in_and_a_wrong_password_is_a_service_wide_refusal() {
    let network = ServicesNetwork::start().await;
    let settings = services_settings(&network).await;
    let bot = Bot::connect(&settings).await.expect("SASL login");
    assert_eq!(bot.nick, settings.nick);
    bot.quit(Duration::from_secs(10)).await.expect("quit");

    let wrong = IrcSettings {
        password: Some("not-the-password".into()),
        ..settings.clone()
    };
    match Bot::connect(&wrong).await {
        Err(BotError::LoginRefused { reason, .. }) => {
            assert!(reason.contains("ERR_SASLFAIL"), "{reason}")
        }
        Err(e) => panic!("expected a SASL refusal, got {e}"),
        Ok(_) => panic!("logged in with a wrong password"),
    }

    // Through the handler: the job goes back untried (a halt), never said, never rejected.
    let env = TestEnv::new("ircsasl").await;
    let nick = unique_nick("sam");
    let reader = IrcReader::connect(network.port, &nick).await;
    let (stop, stats) = start_deliver_irc(&env, wrong).await;
    let j = job(&nick, 1, false, false);
    enqueue(&env, &[body(&j)]).await;
    wait_until("the record to fail", Duration::from_secs(60), || {
        stats.failed.load(Ordering::Relaxed) > 0
    })
    .await;
    stop.cancel();
    assert_record(&env, &j.job_id, "retry", "refused the bot's SASL login").await;
    assert!(reader.received().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_confirmation_goes_only_to_a_nick_registered_with_nickserv() {
    let network = ServicesNetwork::start().await;
    let env = TestEnv::new("ircnickserv").await;
    let settings = services_settings(&network).await;
    let bot_nick = settings.nick.clone();
    let registered = unique_nick("rita");
    network.register_nick(&registered, "rita-password").await;
    let stranger = unique_nick("stan");
    let registered_reader = IrcReader::connect(network.port, &registered).await;
    let stranger_reader = IrcReader::connect(network.port, &stranger).await;
    let (stop, stats) = start_deliver_irc(&env, settings).await;

    let to_stranger = confirmation(&stranger, "irc-2");
    let to_registered = confirmation(&registered, "irc-1");
    enqueue(
        &env,
        &[
            (to_stranger.to_json(), to_stranger.job_id.clone()),
            (to_registered.to_json(), to_registered.job_id.clone()),
        ],
    )
    .await;
    let got = registered_reader.wait_for(1, Duration::from_secs(60)).await;
    wait_for_records(&stats, 2).await;
    stop.cancel();

    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].from, bot_nick);
    assert!(
        got[0].text.contains("http://127.0.0.1:8080/confirm/abc"),
        "{got:?}"
    );
    assert!(
        stranger_reader.received().is_empty(),
        "the unregistered nick got {:?}",
        stranger_reader.received()
    );
    assert_eq!(stats.failed.load(Ordering::Relaxed), 0);

    assert_record(&env, &to_registered.job_id, "sent", "").await;
    let reason = assert_record(
        &env,
        &to_stranger.job_id,
        "rejected",
        &format!("the nick {stranger} is not registered with NickServ"),
    )
    .await;
    // The refusal reaches the destination's health (shown by the API), through mail-events.
    let reports: Vec<GaveUpReport> = env
        .drain(QueueName::MailEvents, 1, 30)
        .await
        .iter()
        .filter_map(|m| GaveUpReport::from_body(m.body.as_deref().unwrap_or_default()))
        .collect();
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_eq!(
        (reports[0].user.as_str(), reports[0].destination.as_str()),
        ("alice", "irc-2")
    );
    assert_eq!(reports[0].reason, reason);
}

/// The whole path a user sees: the web-api adds an IRC destination and queues its
/// confirmation, deliver-irc asks NickServ and refuses the unregistered nick, mail-events
/// records the refusal in the destination's health, and `GET /api/v1/me` shows it.
#[tokio::test(flavor = "multi_thread")]
async fn the_user_sees_why_an_unregistered_nick_got_no_confirmation() {
    let network = ServicesNetwork::start().await;
    let env = TestEnv::new("ircrefusal").await;
    let api = fmn_integration_tests::web::WebApi::start(&env).await;
    let settings = services_settings(&network).await;
    let stranger = unique_nick("stan");
    let reader = IrcReader::connect(network.port, &stranger).await;
    let (stop, stats) = start_deliver_irc(&env, settings).await;
    let events = Arc::new(
        fmn_mail_events::MailEventsHandler::new(
            &env.clients,
            Duration::from_secs(300),
            Default::default(),
        )
        .await
        .expect("mail-events handler"),
    );
    let (stop_events, _) =
        fmn_integration_tests::start_function(&env, FunctionName::MailEvents, events);

    let carol = api.token("carol", false);
    let added = api
        .send(
            reqwest::Method::POST,
            "/api/v1/me/destinations",
            Some(&carol),
            serde_json::json!({"kind": "irc", "address": stranger}),
        )
        .await;
    assert_eq!(added.status, 201, "{added:?}");
    let problem = fmn_integration_tests::eventually(
        "the refusal in the destination's health",
        Duration::from_secs(60),
        || async {
            let me = api.get("/api/v1/me", &carol).await;
            me.body["destinations"][0]["health"]["last_problem"]["reason"]
                .as_str()
                .map(str::to_string)
        },
    )
    .await;
    wait_for_records(&stats, 1).await;
    stop.cancel();
    stop_events.cancel();
    assert!(
        problem.contains(&format!(
            "the nick {stranger} is not registered with NickServ"
        )),
        "{problem}"
    );
    assert!(reader.received().is_empty(), "{:?}", reader.received());
}

/// The IRC delivery record of `job_id` is in `state`, its reason containing `reason`; returns
/// the whole reason.
async fn assert_record(env: &TestEnv, job_id: &str, state: &str, reason: &str) -> String {
    let item = DeliveryRecords::from_clients(&env.clients, Duration::from_secs(300))
        .get(&Channel::Irc.key(job_id))
        .await
        .unwrap()
        .expect("record");
    assert_eq!(get_s(&item, "state"), Some(state), "{item:?}");
    let stored = get_s(&item, "reason").unwrap_or_default().to_string();
    assert!(stored.contains(reason), "{item:?}");
    stored
}
