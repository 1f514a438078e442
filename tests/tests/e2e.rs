//! End to end: the whole local system (`fmn_local::system::run`, in-process, on LocalStack,
//! DynamoDB Local and moto) follows a real fedmsg publisher; real corpus messages published on
//! the bus become mail recorded by the SES v2 emulator, lines on a real IRC server (ngIRCd)
//! and direct messages on a real Matrix homeserver (Synapse), for exactly the users whose
//! filters match.
//!
//! The publisher is the Python `fedmsg` package itself (`tests/fedmsg-publisher`), not the
//! Rust `Publisher`: it is practical (one venv, shared with the bridge tests) and it proves
//! the whole chain against the frames Fedora's services really send (fedmsg's own envelope,
//! msg_id, counter and encoding), which a re-implementation of the wire format cannot.

use std::collections::BTreeSet;
use std::time::Duration;

use fmn_aws::prefs_store::PrefsStore;
use fmn_aws::provision::ProvisionOptions;
use fmn_aws::recent::RecentMessages;
use fmn_aws::{AwsClients, ResourceNames};
use fmn_core::defaults::default_filters;
use fmn_core::prefs::{Destination, DestinationKind, Filter, UserPrefs};
use fmn_core::rules::{Rule, RuleKind};
use fmn_integration_tests::fedmsg::PyPublisher;
use fmn_integration_tests::irc::{IrcReader, IrcServer};
use fmn_integration_tests::mail::mail_to;
use fmn_integration_tests::matrix::synapse;
use fmn_integration_tests::system::RunningSystem;
use fmn_integration_tests::{
    corpus_envelope, eventually, free_port, import_sample_ownership, init, options_following,
    repo_root, unique_prefix,
};
use fmn_local::system;
use mail_parser::MessageParser;
use serde_json::json;

/// lmacken submitted an update of control-center and gnome-settings-daemon (hadess's).
const BODHI_REQUEST: &str = "bodhi.TestBodhiRequestMultiplePackagesPerUpdate";
/// jnovy uploaded a texlive source to the lookaside cache.
const LOOKASIDE: &str = "__init__.TestLookaside";
/// ralph uploaded a picture to the wiki: nobody here asked for it.
const WIKI: &str = "__init__.TestMediaWikiUpload";

/// Generous: the emulators are slow on a loaded machine; nothing here asserts on speed.
const WAIT: Duration = Duration::from_secs(180);

fn destination(id: &str, kind: DestinationKind, address: &str) -> Destination {
    Destination::new(id, kind, address).confirmed(true)
}

fn user(name: &str, dest: Destination, rules: Option<Vec<Rule>>) -> UserPrefs {
    let mut u = UserPrefs::new(name);
    let ids = vec![dest.id.clone()];
    u.destinations = vec![dest];
    u.filters = match rules {
        None => default_filters(&u, &ids),
        Some(rules) => vec![Filter::new(
            u.next_id("filter"),
            "e2e filter".into(),
            ids,
            rules,
        )],
    };
    u
}

#[tokio::test(flavor = "multi_thread")]
async fn corpus_messages_on_the_bus_reach_exactly_the_users_who_asked_by_mail_and_irc() {
    init();
    let prefix = unique_prefix("e2e");
    let clients = AwsClients::with_names(ResourceNames::new(prefix.clone())).await;
    // Provision first so users and ownership exist before the match function's cache loads.
    system::provision_all(&clients, &ProvisionOptions::default())
        .await
        .expect("creating the resources of infra/template.yaml");
    import_sample_ownership(&clients).await;

    // moto's mail log is shared by every test: addresses unique to this run.
    let hadess_address = format!("hadess-{prefix}@example.org");
    let lmacken_address = format!("lmacken-{prefix}@example.org");
    let bystander_address = format!("bystander-{prefix}@example.org");
    let store = PrefsStore::from_clients(&clients);
    // A real Matrix homeserver: the bot's account and texlive's follower on Matrix.
    let homeserver = synapse();
    let matrix_bot = homeserver.register("fmne2ebot").await;
    let texmx = homeserver.register("texmx").await;
    let users = [
        // The update is about hadess's packages: the default filters, by mail.
        user(
            "hadess",
            destination("email-1", DestinationKind::Email, &hadess_address),
            None,
        ),
        // lmacken made the update: the defaults leave out one's own actions.
        user(
            "lmacken",
            destination("email-1", DestinationKind::Email, &lmacken_address),
            None,
        ),
        // Follows a package none of the messages is about.
        user(
            "bystander",
            destination("email-1", DestinationKind::Email, &bystander_address),
            Some(vec![Rule::new(RuleKind::Package {
                packages: vec!["no-such-package".into()],
            })]),
        ),
        // Follows texlive on IRC.
        user(
            "texfan",
            destination("irc-1", DestinationKind::Irc, "texfan"),
            Some(vec![Rule::new(RuleKind::Package {
                packages: vec!["texlive".into()],
            })]),
        ),
        // Follows texlive on Matrix.
        user(
            "texmx",
            destination("matrix-1", DestinationKind::Matrix, &texmx.user_id),
            Some(vec![Rule::new(RuleKind::Package {
                packages: vec!["texlive".into()],
            })]),
        ),
        // Follows the kernel on IRC: nothing about it is published.
        user(
            "kernelfan",
            destination("irc-1", DestinationKind::Irc, "kernelfan"),
            Some(vec![Rule::new(RuleKind::Package {
                packages: vec!["kernel".into()],
            })]),
        ),
    ];
    for u in &users {
        store.create(u).await.unwrap();
    }

    // A real IRC server, and the two nicks online before anything is sent to them.
    let irc = IrcServer::start();
    let texfan = IrcReader::connect(irc.port, "texfan").await;
    let kernelfan = IrcReader::connect(irc.port, "kernelfan").await;

    // The real fedmsg publisher, and the system following it.
    let dir = tempfile::tempdir().unwrap();
    let mut publisher = PyPublisher::start(dir.path()).await;
    let mut options = options_following(publisher.endpoint.clone(), dir.path());
    options.progress_interval = Duration::from_secs(5);
    options.bridge.batch_linger = Duration::from_millis(10);
    options.irc.server = "127.0.0.1".into();
    options.irc.port = irc.port;
    options.irc.tls = false;
    options.irc.nick = "fmn-e2e-bot".into();
    options.irc.password = None;
    options.matrix.homeserver = homeserver.base.clone();
    options.matrix.access_token = Some(matrix_bot.access_token.clone());
    let mut running = RunningSystem::start(&clients, options);

    // PUB/SUB drops what is published before the bridge's subscription reaches the publisher
    // (the "slow joiner"): publish warm-ups until one has gone all the way through the match
    // function (which keeps every message it sees in the recent-messages table).
    let recent = RecentMessages::from_clients(&clients);
    let mut warmups = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    'warm: loop {
        running.assert_running().await;
        assert!(
            tokio::time::Instant::now() < deadline,
            "no warm-up message reached the match function"
        );
        warmups.push(
            publisher
                .message(
                    "org.fedoraproject.dev.fmntest.e2e.warmup",
                    &json!({"warmup": true}),
                )
                .await,
        );
        for id in &warmups {
            if recent.get(id).await.ok().flatten().is_some() {
                break 'warm;
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // The corpus messages, live.
    let mut published = Vec::new();
    for id in [BODHI_REQUEST, LOOKASIDE, WIKI] {
        let envelope = corpus_envelope(id);
        let topic = envelope["topic"].as_str().unwrap().to_string();
        let msg_id = publisher.message(&topic, &envelope["msg"]).await;
        published.push((id, msg_id));
    }

    // hadess gets one mail: the update of the packages.
    let mails = eventually("hadess's mail", WAIT, || async {
        let m = mail_to(&hadess_address).await;
        (!m.is_empty()).then_some(m)
    })
    .await;
    let parsed = MessageParser::new()
        .parse(mails[0].raw.as_bytes())
        .expect("MIME parses");
    assert_eq!(
        parsed
            .to()
            .and_then(|a| a.first())
            .and_then(|a| a.address()),
        Some(hadess_address.as_str())
    );
    let subject = parsed.subject().unwrap_or_default().to_string();
    assert!(
        subject.starts_with("[bodhi] lmacken submitted gnome-settings-daemon")
            && subject.ends_with("to testing"),
        "subject: {subject}"
    );
    let bodhi_msg_id = &published[0].1;
    assert_eq!(
        parsed.header_raw("X-Fedmsg-Id").map(str::trim),
        Some(bodhi_msg_id.as_str()),
        "the mail is about the message just published"
    );
    assert_eq!(
        parsed.header_raw("X-Fedmsg-Topic").map(str::trim),
        Some("org.fedoraproject.prod.bodhi.update.request.testing")
    );

    // texfan's nick gets one line: jnovy's texlive upload.
    let lines = texfan.wait_for(1, WAIT).await;
    assert_eq!(lines.len(), 1, "texfan: {lines:?}");
    assert!(
        lines[0].text.contains("texlive") && lines[0].text.contains("jnovy"),
        "{lines:?}"
    );
    assert!(
        lines[0].from.starts_with("fmn-e2e-bot"),
        "sent by the bot: {lines:?}"
    );

    // texmx gets one direct message on Matrix: the same upload.
    let messages = texmx.wait_for_messages(&matrix_bot.user_id, 1, WAIT).await;
    assert!(
        messages[0].body().contains("texlive") && messages[0].body().contains("jnovy"),
        "{messages:?}"
    );

    // Every published message went through the match function; give any job it made for the
    // others time to be delivered, then check nothing came.
    for (id, msg_id) in &published {
        eventually(
            &format!("{id} in the recent-messages table"),
            WAIT,
            || async { recent.get(msg_id).await.ok().flatten().map(|_| ()) },
        )
        .await;
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    let activity = |name: &'static str| {
        let recent = &recent;
        async move { recent.activity(name, 100).await.unwrap() }
    };
    assert_eq!(activity("hadess").await.len(), 1);
    assert_eq!(activity("texfan").await.len(), 1);
    assert_eq!(activity("texmx").await.len(), 1);
    assert_eq!(
        texmx.messages_from(&matrix_bot.user_id).await.len(),
        1,
        "one Matrix message to texmx"
    );
    for quiet in ["lmacken", "bystander", "kernelfan"] {
        assert!(
            activity(quiet).await.is_empty(),
            "{quiet} was notified: {:?}",
            activity(quiet).await
        );
    }
    assert_eq!(
        mail_to(&hadess_address).await.len(),
        1,
        "one mail to hadess"
    );
    assert!(mail_to(&lmacken_address).await.is_empty());
    assert!(mail_to(&bystander_address).await.is_empty());
    assert_eq!(texfan.received().len(), 1, "one line to texfan");
    assert!(
        kernelfan.received().is_empty(),
        "kernelfan: {:?}",
        kernelfan.received()
    );
    let subjects: BTreeSet<String> = mail_to(&hadess_address)
        .await
        .iter()
        .map(|m| {
            MessageParser::new()
                .parse(m.raw.as_bytes())
                .and_then(|p| p.subject().map(str::to_string))
                .unwrap_or_default()
        })
        .collect();
    assert_eq!(subjects, BTreeSet::from([subject]));

    publisher.quit().await;
    running.stop(Duration::from_secs(60)).await;
}

/// gnome-settings-daemon's update submitted for testing (bodhi-messages).
const FM_BODHI: &str = "47851d0d-57c3-5f0c-8f46-46e7fd3397b9";
/// Koji finished building spot's chromium (koji-fedoramessaging-messages).
const FM_KOJI: &str = "41e49078-ebf8-5d17-8909-650b4067b23d";
/// A distribution added to release-monitoring: about no package anyone follows.
const FM_ANITYA: &str = "0b8dc857-1f2c-51db-9634-297f369e2286";

#[tokio::test(flavor = "multi_thread")]
async fn fedora_messaging_corpus_messages_reach_exactly_the_users_who_asked() {
    use fmn_integration_tests::rabbitmq::RabbitMq;
    init();
    let prefix = unique_prefix("e2eamqp");
    let clients = AwsClients::with_names(ResourceNames::new(prefix.clone())).await;
    system::provision_all(&clients, &ProvisionOptions::default())
        .await
        .expect("creating the resources of infra/template.yaml");
    let gnome_address = format!("gnomefan-{prefix}@example.org");
    let bystander_address = format!("bystander-{prefix}@example.org");
    let store = PrefsStore::from_clients(&clients);
    let follows = |name: &str, dest: Destination, package: &str| {
        user(
            name,
            dest,
            Some(vec![Rule::new(RuleKind::Package {
                packages: vec![package.into()],
            })]),
        )
    };
    let users = [
        follows(
            "gnomefan",
            destination("email-1", DestinationKind::Email, &gnome_address),
            "gnome-settings-daemon",
        ),
        follows(
            "chromefan",
            destination("irc-1", DestinationKind::Irc, "chromefan"),
            "chromium",
        ),
        follows(
            "bystander",
            destination("email-1", DestinationKind::Email, &bystander_address),
            "no-such-package",
        ),
    ];
    for u in &users {
        store.create(u).await.unwrap();
    }
    // IRC over TLS, as on Libera: the bot trusts the test CA that signed ngIRCd's certificate.
    let irc = IrcServer::start_tls();
    let chromefan = IrcReader::connect(irc.port, "chromefan").await;

    // Fedora's bus today: RabbitMQ with TLS client certificates, and the bridge on its queue.
    let broker = RabbitMq::start();
    let pki = broker.tls();
    let queue = uuid::Uuid::new_v4().to_string();
    let dir = tempfile::tempdir().unwrap();
    let mut options = fmn_local::system::RunOptions::from_env().unwrap();
    options.web_addr = ([127, 0, 0, 1], free_port()).into();
    options.progress_interval = Duration::from_secs(5);
    options.bridge.endpoints.clear();
    options.bridge.amqp = Some(fmn_ingest_bridge::config::AmqpConfig {
        url: broker.amqps_url(),
        queue: queue.clone(),
        exchange: "amq.topic".into(),
        bindings: vec!["#".into()],
        prefetch: 25,
        passive: false,
        ca_file: Some(pki.ca_file.clone()),
        client_cert: Some((pki.client_cert.clone(), pki.client_key.clone())),
    });
    options.bridge.metrics_addr = None;
    options.bridge.spool_dir = dir.path().join("spool");
    options.bridge.batch_linger = Duration::from_millis(10);
    options.irc.server = "127.0.0.1".into();
    options.irc.port = irc.tls_port.expect("a TLS port");
    options.irc.tls = true;
    options.irc.ca_file = Some(irc.ca_file().display().to_string());
    options.irc.nick = "fmn-e2e-amqp".into();
    options.irc.password = None;
    let running = RunningSystem::start(&clients, options);
    eventually("the bridge consuming from its queue", WAIT, || async {
        broker
            .queue_stats(&queue)
            .filter(|s| s.consumers >= 1)
            .map(|_| ())
    })
    .await;

    // The three corpus messages, published by the fedora-messaging library itself.
    let corpus =
        std::fs::read_to_string(repo_root().join("tests/data/fedora-messaging-examples.jsonl"))
            .unwrap();
    let lines: Vec<&str> = [FM_BODHI, FM_KOJI, FM_ANITYA]
        .iter()
        .map(|id| {
            corpus
                .lines()
                .find(|l| l.contains(&format!("\"id\": \"{id}\"")))
                .unwrap_or_else(|| panic!("{id} in the corpus"))
        })
        .collect();
    let file = dir.path().join("publish.jsonl");
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let published = broker
        .publish_with_fedora_messaging(&file)
        .expect("the fedora-messaging library publishes");
    assert_eq!(published.len(), 3);

    let mails = eventually("gnomefan's mail", WAIT, || async {
        let m = mail_to(&gnome_address).await;
        (!m.is_empty()).then_some(m)
    })
    .await;
    let parsed = MessageParser::new()
        .parse(mails[0].raw.as_bytes())
        .expect("MIME parses");
    let subject = parsed.subject().unwrap_or_default().to_string();
    assert!(
        subject.starts_with("[bodhi] lmacken submitted hadess's update FEDORA-2019-f1ca3c00e5"),
        "subject: {subject}"
    );
    assert_eq!(
        parsed.header_raw("X-Fedmsg-Id").map(str::trim),
        Some(FM_BODHI),
        "the mail is about the message just published"
    );
    let lines = chromefan.wait_for(1, WAIT).await;
    assert!(
        lines[0].text.contains("chromium") && lines[0].text.contains("spot"),
        "{lines:?}"
    );
    let recent = RecentMessages::from_clients(&clients);
    for id in [FM_BODHI, FM_KOJI, FM_ANITYA] {
        eventually(
            &format!("{id} in the recent-messages table"),
            WAIT,
            || async { recent.get(id).await.ok().flatten().map(|_| ()) },
        )
        .await;
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(mail_to(&gnome_address).await.len(), 1, "one mail");
    assert!(mail_to(&bystander_address).await.is_empty());
    assert_eq!(chromefan.received().len(), 1, "one line");
    assert_eq!(recent.activity("bystander", 100).await.unwrap().len(), 0);
    assert_eq!(broker.queue_depth(&queue), Some(0), "all acknowledged");

    running.stop(Duration::from_secs(60)).await;
}
