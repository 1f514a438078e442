//! The match function on LocalStack: real corpus messages on the ingest queue become jobs on
//! the e-mail and IRC queues and items in the digest table, for exactly the users who asked.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use fmn_aws::ingest_wire::{compress, ENCODING_ATTRIBUTE};
use fmn_aws::ownership_store::OwnershipStore;
use fmn_aws::prefs_store::PrefsStore;
use fmn_aws::recent::RecentMessages;
use fmn_aws::sqs::{send_all, OutgoingMessage};
use fmn_aws::{FunctionName, QueueName, TableName};
use fmn_core::defaults::default_filters;
use fmn_core::jobs::DeliveryJob;
use fmn_core::matching::{explain, MessageFacts};
use fmn_core::message::Envelope;
use fmn_core::meta::Registry;
use fmn_core::prefs::{Delivery, Destination, DestinationKind, Filter, UserPrefs};
use fmn_core::rules::{Rule, RuleKind};
use fmn_integration_tests::{
    corpus_envelope, import_sample_ownership, sqs, start_function, wait_for_records, TestEnv,
};

/// lmacken submitted an update of control-center and gnome-settings-daemon (hadess's).
const BODHI_REQUEST: &str = "bodhi.TestBodhiRequestMultiplePackagesPerUpdate";
/// jnovy uploaded a texlive source.
const LOOKASIDE: &str = "__init__.TestLookaside";

fn destination(id: &str, kind: DestinationKind, address: &str, confirmed: bool) -> Destination {
    Destination::new(id, kind, address).confirmed(confirmed)
}

fn with_filter(mut user: UserPrefs, rules: Vec<Rule>, oneshot: bool) -> UserPrefs {
    let destinations = user.destinations.iter().map(|d| d.id.clone()).collect();
    user.filters.push(Filter {
        id: user.next_id("filter"),
        name: "test filter".into(),
        enabled: true,
        oneshot,
        destinations,
        rules,
        max_per_hour: None,
        urgent: false,
    });
    user
}

fn user(name: &str, destinations: Vec<Destination>) -> UserPrefs {
    let mut u = UserPrefs::new(name);
    u.destinations = destinations;
    u
}

fn jobs(messages: &[aws_sdk_sqs::types::Message]) -> Vec<DeliveryJob> {
    messages
        .iter()
        .map(|m| serde_json::from_str(m.body.as_deref().unwrap()).unwrap())
        .collect()
}

async fn send_envelope(env: &TestEnv, id: &str, envelope: &serde_json::Value) {
    send_all(
        &env.clients.sqs,
        env.queue_url(QueueName::Ingest),
        &[OutgoingMessage::new(id, envelope.to_string())],
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn ingest_messages_become_jobs_for_exactly_the_users_who_asked() {
    let env = TestEnv::new("match-fanout").await;
    import_sample_ownership(&env.clients).await;
    let store = PrefsStore::from_clients(&env.clients);
    let email = DestinationKind::Email;
    let irc = DestinationKind::Irc;

    // hadess: the message is about them; immediate e-mail.
    let hadess = with_filter(
        user(
            "hadess",
            vec![destination("email-1", email, "hadess@example.org", true)],
        ),
        vec![Rule::new(RuleKind::RelatedEvents)],
        false,
    );
    // kalev: the defaults, through gnome-sig's packages; IRC.
    let mut kalev = user("kalev", vec![destination("irc-1", irc, "kalev", true)]);
    kalev.filters = default_filters(&kalev, &["irc-1".to_string()]);
    // mcrha: gnome-sig member, digest.
    let mut mcrha_dest = destination("email-1", email, "mcrha@example.org", true);
    mcrha_dest.delivery = Delivery::Digest {
        batch_delta: Some(3600),
        batch_count: Some(10),
        schedule: None,
    };
    let mcrha = with_filter(
        user("mcrha", vec![mcrha_dest]),
        vec![Rule::new(RuleKind::UserPackages {
            user: String::new(),
        })],
        false,
    );
    // Would match, but: account disabled / address unconfirmed / the agent's own action.
    let mut disabled = with_filter(
        user(
            "jwboyer",
            vec![destination("email-1", email, "jwboyer@example.org", true)],
        ),
        vec![Rule::new(RuleKind::User {
            users: vec!["hadess".into()],
        })],
        false,
    );
    disabled.enabled = false;
    let unconfirmed = with_filter(
        user(
            "pmatilai",
            vec![destination("email-1", email, "pmatilai@example.org", false)],
        ),
        vec![Rule::new(RuleKind::User {
            users: vec!["hadess".into()],
        })],
        false,
    );
    let mut lmacken = user(
        "lmacken",
        vec![destination("email-1", email, "lmacken@example.org", true)],
    );
    lmacken.filters = default_filters(&lmacken, &["email-1".to_string()]);
    // Not about this message at all.
    let bystander = with_filter(
        user(
            "bystander",
            vec![destination("email-1", email, "bystander@example.org", true)],
        ),
        vec![Rule::new(RuleKind::Package {
            packages: vec!["texlive".into()],
        })],
        false,
    );
    // A one-shot filter: fires once, then turns itself off.
    let once = with_filter(
        user(
            "oneshot-fan",
            vec![destination("email-1", email, "once@example.org", true)],
        ),
        vec![Rule::new(RuleKind::UsersFollowed {
            users: vec!["lmacken".into()],
        })],
        true,
    );
    for u in [
        &hadess,
        &kalev,
        &mcrha,
        &disabled,
        &unconfirmed,
        &lmacken,
        &bystander,
        &once,
    ] {
        store.create(u).await.unwrap();
    }

    let handler = Arc::new(fmn_match::MatchHandler::new(&env.clients).await.unwrap());
    let (stop, stats) = start_function(&env, FunctionName::Match, handler);

    // The same bus message twice (two bridges, a replay, or SQS redelivering).
    let envelope = corpus_envelope(BODHI_REQUEST);
    send_envelope(&env, "first", &envelope).await;
    send_envelope(&env, "again", &envelope).await;
    wait_for_records(&stats, 2).await;

    let email_jobs = jobs(&env.drain(QueueName::Email, 4, 10).await);
    let recipients: BTreeSet<&str> = email_jobs
        .iter()
        .map(|j| j.destination.address.as_str())
        .collect();
    assert_eq!(
        recipients,
        BTreeSet::from(["hadess@example.org", "once@example.org"]),
        "e-mail jobs: {email_jobs:#?}"
    );
    let ids: BTreeSet<&str> = email_jobs.iter().map(|j| j.job_id.as_str()).collect();
    assert_eq!(ids.len(), 2, "the repeat made the same job ids");
    let job = email_jobs.iter().find(|j| j.user == "hadess").unwrap();
    assert_eq!(job.notification.title, "bodhi.update.request.testing");
    assert_eq!(job.notification.agent.as_deref(), Some("lmacken"));
    assert!(job.notification.link.is_some());

    let irc_jobs = jobs(&env.drain(QueueName::Irc, 2, 10).await);
    assert!(irc_jobs.iter().all(|j| j.user == "kalev"), "{irc_jobs:#?}");
    assert_eq!(
        irc_jobs
            .iter()
            .map(|j| &j.job_id)
            .collect::<BTreeSet<_>>()
            .len(),
        1
    );
    assert!(!irc_jobs.is_empty());

    // mcrha's digest holds the message once, and the pending list knows about it.
    let digest_table = env.clients.table(TableName::DigestItems);
    let items = env
        .clients
        .dynamodb
        .query()
        .table_name(&digest_table)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(
            ":pk",
            aws_sdk_dynamodb::types::AttributeValue::S("digest#mcrha/email-1".into()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(items.count, 1, "one digest item despite the repeat");
    let pending = env
        .clients
        .dynamodb
        .get_item()
        .table_name(&digest_table)
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S("pending".into()),
        )
        .key(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S("mcrha/email-1".into()),
        )
        .send()
        .await
        .unwrap();
    assert!(pending.item.is_some());
    // Even after the digest went out (items deleted), the same job is not queued again.
    let item = &items.items.unwrap()[0];
    let job: DeliveryJob = serde_json::from_str(item["job"].as_s().unwrap()).unwrap();
    env.clients
        .dynamodb
        .delete_item()
        .table_name(&digest_table)
        .key("pk", item["pk"].clone())
        .key("sk", item["sk"].clone())
        .send()
        .await
        .unwrap();
    let again = fmn_aws::digest_store::DigestStore::from_clients(&env.clients)
        .add(&job, None, fmn_aws::dynamo::now_secs())
        .await
        .unwrap();
    assert_eq!(again, fmn_aws::digest_store::Added::AlreadyThere);

    // The one-shot filter is now off in the store.
    let stored = store.get("oneshot-fan").await.unwrap().unwrap();
    assert!(!stored.filters[0].enabled);

    // The message is kept, and explain tells pmatilai why nothing came.
    let recent = RecentMessages::from_clients(&env.clients);
    let env_obj = Envelope::from_value(envelope.clone()).unwrap();
    let kept = recent.get(env_obj.msg_id()).await.unwrap().unwrap();
    let kept_env = Envelope::from_json(&kept.envelope).unwrap();
    assert_eq!(kept_env, env_obj);
    let (ownership, _) = OwnershipStore::from_clients(&env.clients)
        .load()
        .await
        .unwrap();
    let meta = Registry::default().extract(&kept_env);
    let facts = MessageFacts::new(&kept_env, &meta, &ownership);
    let why = explain(&unconfirmed, &facts, &ownership);
    assert!(!why.notified);
    assert_eq!(
        why.filters[0].destinations[0].outcome,
        "not sent: the destination is not confirmed"
    );
    // hadess's activity feed shows the notification.
    let activity = recent.activity("hadess", 100).await.unwrap();
    assert!(!activity.is_empty());
    assert_eq!(activity[0]["title"], "bodhi.update.request.testing");

    // The second copy changed nothing more: queues are empty now.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        sqs::depth(&env.clients.sqs, env.queue_url(QueueName::Email)).await,
        0
    );
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_warm_function_sees_preference_changes_and_compressed_bodies() {
    let env = TestEnv::new("match-warm").await;
    import_sample_ownership(&env.clients).await;
    let store = PrefsStore::from_clients(&env.clients);
    let jnovy = user(
        "jnovy",
        vec![destination(
            "email-1",
            DestinationKind::Email,
            "jnovy@example.org",
            true,
        )],
    );
    store.create(&jnovy).await.unwrap();

    let handler = Arc::new(fmn_match::MatchHandler::new(&env.clients).await.unwrap());
    let (stop, stats) = start_function(&env, FunctionName::Match, handler);

    // No filter yet: nothing.
    send_envelope(&env, "before", &corpus_envelope(LOOKASIDE)).await;
    wait_for_records(&stats, 1).await;

    // Add a filter while the function is warm.
    store
        .update("jnovy", |p| {
            let dest = p.destinations[0].id.clone();
            p.filters.push(Filter::new(
                "filter-1".into(),
                "my packages".into(),
                vec![dest],
                vec![Rule::new(RuleKind::ArtifactsOwned { users: vec![] })],
            ));
            Ok::<_, fmn_aws::prefs_store::PrefsStoreError>(())
        })
        .await
        .unwrap();

    // The same message again, as the bridge sends a body too large for SQS: compressed.
    let mut envelope = corpus_envelope(LOOKASIDE);
    envelope["msg_id"] = serde_json::Value::String("2026-warm-compressed".into());
    send_all(
        &env.clients.sqs,
        env.queue_url(QueueName::Ingest),
        &[
            OutgoingMessage::new("compressed", compress(&envelope.to_string()))
                .with_attribute(ENCODING_ATTRIBUTE, "gzip+base64"),
        ],
    )
    .await
    .unwrap();
    wait_for_records(&stats, 2).await;

    let got = jobs(&env.drain(QueueName::Email, 1, 10).await);
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(got[0].notification.msg_id, "2026-warm-compressed");
    assert_eq!(got[0].filter_name, "my packages");

    // A stored-body reference naming a table that is not ours is refused, not read.
    let reference = serde_json::json!({
        "fmn_stored_body": {"table": "someone-elses-table", "pk": "ingest-body#x"},
        "msg_id": "2026-foreign-reference",
        "topic": "org.fedoraproject.prod.git.lookaside.new",
    });
    send_all(
        &env.clients.sqs,
        env.queue_url(QueueName::Ingest),
        &[OutgoingMessage::new("foreign", reference.to_string())
            .with_attribute(ENCODING_ATTRIBUTE, "dynamodb")],
    )
    .await
    .unwrap();
    let dead = env.drain(QueueName::IngestDeadLetter, 1, 30).await;
    assert_eq!(dead.len(), 1, "dead-lettered with its reason");
    let reason = format!("{:?}", dead[0].message_attributes);
    assert!(reason.contains("not ours"), "{reason}");
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread")]
async fn noise_is_dropped_before_storage_counted_and_the_rest_kept() {
    let env = TestEnv::new("match-noise").await;
    let handler = Arc::new(fmn_match::MatchHandler::new(&env.clients).await.unwrap());
    let (stop, stats) = start_function(&env, FunctionName::Match, handler.clone());
    let message = |id: &str, topic: &str, msg: serde_json::Value| serde_json::json!({"topic": topic, "msg_id": id, "timestamp": 1.7e9, "msg": msg});
    let sent = [
        message(
            "noise-stg",
            "org.fedoraproject.stg.bodhi.update.comment",
            serde_json::json!({}),
        ),
        message(
            "noise-tag",
            "org.fedoraproject.prod.buildsys.tag",
            serde_json::json!({"tag": "f40"}),
        ),
        message(
            "noise-gem",
            "org.fedoraproject.prod.copr.build.end",
            serde_json::json!({"owner": "@rubygems", "copr": "rubygems", "status": 1}),
        ),
        message(
            "noise-kept",
            "org.fedoraproject.prod.copr.build.end",
            serde_json::json!({"owner": "ralph", "copr": "x", "status": 1}),
        ),
    ];
    for (i, m) in sent.iter().enumerate() {
        send_envelope(&env, &format!("n{i}"), m).await;
    }
    wait_for_records(&stats, sent.len() as u64).await;
    let recent = RecentMessages::from_clients(&env.clients);
    for id in ["noise-stg", "noise-tag", "noise-gem"] {
        assert!(recent.get(id).await.unwrap().is_none(), "{id} was stored");
    }
    assert!(recent.get("noise-kept").await.unwrap().is_some());
    let counts = handler.noise_dropped().snapshot();
    assert_eq!(
        counts,
        [
            ("non-production", 1),
            ("junk-topic", 1),
            ("ignored-copr-owner", 1)
        ]
    );
    // Nothing was dead-lettered: noise is not an error.
    assert!(env
        .drain(QueueName::IngestDeadLetter, 0, 2)
        .await
        .is_empty());
    stop.cancel();
}
