//! The eight functions as they are deployed: the `bootstrap` binaries `cargo lambda build`
//! packages, each started as Lambda starts it (its `main.rs`: the runtime, the settings from
//! the environment the template gives it) and invoked through cargo-lambda's Lambda emulator
//! with the events Lambda would send: SQS batches received from LocalStack's queues, the
//! digest schedule's EventBridge event, and function-URL requests. Effects are checked on the
//! emulators: jobs on queues, items in DynamoDB, mail recorded by moto, lines on ngIRCd,
//! direct messages on Synapse.
//!
//! Needs `make lambda-debug` first (`make test` runs it) and cargo-lambda
//! (tools/cargo-lambda/install.sh, part of `make deps`).

use std::time::Duration;

use aws_sdk_sqs::types::Message;
use fmn_aws::delivery_records::{Channel, DeliveryRecords};
use fmn_aws::digest_store::DigestStore;
use fmn_aws::job_queue::{enqueue_jobs, QueuedJob};
use fmn_aws::prefs_store::PrefsStore;
use fmn_aws::sqs::{send_all, OutgoingMessage};
use fmn_aws::{FunctionName, QueueName, TableName};
use fmn_core::jobs::{DeliveryJob, Notification};
use fmn_core::meta::Severity;
use fmn_core::prefs::{Delivery, Destination, DestinationKind, Filter, UserPrefs};
use fmn_core::rules::{Rule, RuleKind};
use fmn_integration_tests::irc::{IrcReader, IrcServer};
use fmn_integration_tests::lambda::{self, Emulator, LambdaProcess};
use fmn_integration_tests::mail::mail_to;
use fmn_integration_tests::matrix::synapse;
use fmn_integration_tests::{corpus_envelope, import_sample_ownership, job_for, TestEnv};
use serde_json::{json, Value};

/// lmacken submitted an update of control-center and gnome-settings-daemon (hadess's).
const BODHI_REQUEST: &str = "bodhi.TestBodhiRequestMultiplePackagesPerUpdate";

fn unique(tag: &str) -> String {
    format!("{tag}{}", &uuid::Uuid::new_v4().simple().to_string()[..10])
}

/// The emulator, waiting for an invocation as long as the template lets `function` run.
fn emulator(env: &TestEnv, function: FunctionName) -> Emulator {
    let timeout = lambda::template(env)
        .function(function.logical_id())
        .expect("the function")
        .timeout_secs;
    Emulator::start(Duration::from_secs(u64::from(timeout) + 10))
}

/// Receives `count` messages of `function`'s queue as its event source mapping would and
/// builds the SQS event Lambda sends for them.
async fn sqs_event(env: &TestEnv, function: FunctionName, count: usize) -> (Value, Vec<Message>) {
    let config = fmn_local::system::mapping_config(&env.template, &env.provisioned, function)
        .expect("the template maps the function's queue");
    let mut messages = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while messages.len() < count {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{count} messages on {}",
            config.queue_url
        );
        messages.extend(
            fmn_local::esm::receive_batch(&env.clients.sqs, &config)
                .await
                .expect("ReceiveMessage"),
        );
    }
    let event = fmn_aws::batch::event_from_received(&messages, &config.queue_arn);
    (serde_json::to_value(&event).unwrap(), messages)
}

/// Invokes `function` with an SQS event and checks that Lambda would delete every record
/// (status 200, `batchItemFailures` empty); then deletes them, as the mapping does.
async fn invoke_sqs(
    emulator: &Emulator,
    process: &mut LambdaProcess,
    env: &TestEnv,
    event: &Value,
    messages: &[Message],
) {
    let (status, response) = emulator.invoke(process.function.binary(), event).await;
    process.assert_running();
    assert_eq!(
        status,
        200,
        "invocation failed: {response}\nfunction log:\n{}",
        process.log()
    );
    assert_eq!(
        response["batchItemFailures"],
        json!([]),
        "every record handled: {response}\nfunction log:\n{}",
        process.log()
    );
    let queue = process
        .function
        .source_queue()
        .expect("an SQS-driven function");
    for m in messages {
        env.clients
            .sqs
            .delete_message()
            .queue_url(env.queue_url(queue))
            .set_receipt_handle(m.receipt_handle.clone())
            .send()
            .await
            .expect("DeleteMessage");
    }
}

/// The sender the template configures, verified on the SES emulator (an operator does it
/// once on AWS).
async fn verify_sender(env: &TestEnv) -> String {
    let from =
        lambda::function_environment(env, FunctionName::DeliverEmail)["FMN_FROM_ADDRESS"].clone();
    fmn_aws::ses::ensure_email_identity(&env.clients.sesv2, &from)
        .await
        .expect("verifying the sender on the emulator");
    from
}

fn notification(msg_id: &str) -> Notification {
    Notification {
        msg_id: msg_id.into(),
        topic: "org.fedoraproject.prod.bodhi.update.comment".into(),
        app: "bodhi".into(),
        agent: Some("bob".into()),
        title: "bodhi.update.comment".into(),
        subtitle: Some(format!("bob commented on update {msg_id}")),
        link: Some(format!("https://bodhi.fedoraproject.org/updates/{msg_id}")),
        usernames: vec!["bob".into()],
        packages: vec!["foo".into()],
        usernames_total: None,
        packages_total: None,
        timestamp: Some(1.7e9),
        severity: Severity::default(),
        origin: Default::default(),
        long_text: None,
    }
}

async fn enqueue(env: &TestEnv, queue: QueueName, jobs: &[DeliveryJob]) {
    let jobs: Vec<QueuedJob> = jobs
        .iter()
        .map(|j| QueuedJob {
            job_id: j.job_id.clone(),
            body: serde_json::to_string(j).unwrap(),
        })
        .collect();
    enqueue_jobs(&env.clients.sqs, env.queue_url(queue), &jobs)
        .await
        .expect("SendMessageBatch");
}

async fn count_items(env: &TestEnv, table: TableName) -> usize {
    env.clients
        .dynamodb
        .scan()
        .table_name(env.clients.names.table(table))
        .send()
        .await
        .expect("Scan")
        .items
        .unwrap_or_default()
        .len()
}

#[tokio::test(flavor = "multi_thread")]
async fn match_binary_turns_an_ingest_message_into_a_mail_job() {
    let env = TestEnv::new("lambda-match").await;
    lambda::store_secrets(&env).await;
    import_sample_ownership(&env.clients).await;
    let mut hadess = UserPrefs::new("hadess");
    hadess.destinations =
        vec![
            Destination::new("email-1", DestinationKind::Email, "hadess@example.org")
                .confirmed(true),
        ];
    hadess.filters.push(Filter::new(
        hadess.next_id("filter"),
        "about me".into(),
        vec!["email-1".into()],
        vec![Rule::new(RuleKind::RelatedEvents)],
    ));
    PrefsStore::from_clients(&env.clients)
        .create(&hadess)
        .await
        .unwrap();
    let envelope = corpus_envelope(BODHI_REQUEST);
    send_all(
        &env.clients.sqs,
        env.queue_url(QueueName::Ingest),
        &[OutgoingMessage::new(BODHI_REQUEST, envelope.to_string())],
    )
    .await
    .unwrap();

    let emulator = emulator(&env, FunctionName::Match);
    let mut process = LambdaProcess::start(&emulator, &env, FunctionName::Match, &[]);
    let (event, messages) = sqs_event(&env, FunctionName::Match, 1).await;
    assert_eq!(event["Records"][0]["eventSource"], "aws:sqs");
    invoke_sqs(&emulator, &mut process, &env, &event, &messages).await;

    let jobs = env.drain(QueueName::Email, 1, 10).await;
    assert_eq!(jobs.len(), 1, "one mail job");
    let job: DeliveryJob = serde_json::from_str(jobs[0].body.as_deref().unwrap()).unwrap();
    assert_eq!(job.user, "hadess");
    assert_eq!(job.destination.address, "hadess@example.org");
    assert!(
        env.drain(QueueName::Irc, 1, 1).await.is_empty(),
        "no IRC job"
    );
    assert!(
        count_items(&env, TableName::Activity).await >= 1,
        "hadess's activity recorded"
    );
    assert_eq!(
        env.drain(QueueName::IngestDeadLetter, 1, 1).await.len(),
        0,
        "nothing dead-lettered"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn deliver_email_binary_sends_a_job_through_ses() {
    let env = TestEnv::new("lambda-email").await;
    lambda::store_secrets(&env).await;
    let from = verify_sender(&env).await;
    let address = format!("{}@example.org", unique("alice"));
    let destination = Destination::email("email-1", &address)
        .confirmed(true)
        .with_delivery(Delivery::Immediate);
    let job = job_for("alice", destination, notification(&unique("FEDORA-")));
    enqueue(&env, QueueName::Email, std::slice::from_ref(&job)).await;

    let emulator = emulator(&env, FunctionName::DeliverEmail);
    let mut process = LambdaProcess::start(&emulator, &env, FunctionName::DeliverEmail, &[]);
    let (event, messages) = sqs_event(&env, FunctionName::DeliverEmail, 1).await;
    invoke_sqs(&emulator, &mut process, &env, &event, &messages).await;

    let mails = mail_to(&address).await;
    assert_eq!(mails.len(), 1, "one mail");
    assert_eq!(mails[0].source, from);
    // The template's public URL is in the links, its secret signs the unsubscribe token.
    assert!(mails[0]
        .raw
        .contains("<https://notifications.fedoraproject.org/api/v1/unsubscribe/"));
    let record = DeliveryRecords::from_clients(&env.clients, Duration::from_secs(300))
        .get(&Channel::Email.key(&job.job_id))
        .await
        .unwrap()
        .expect("a delivery record");
    assert_eq!(
        fmn_aws::dynamo::get_s(&record, "state"),
        Some("sent"),
        "{record:?}"
    );
}

/// mail-events: SES's `Send` event for a mail whose sender died before marking its record
/// settles the record.
#[tokio::test(flavor = "multi_thread")]
async fn mail_events_binary_settles_a_record_from_a_send_event() {
    use fmn_aws::delivery_records::{record_tag_value, Claim, RecordInfo};
    let env = TestEnv::new("lambda-events").await;
    lambda::store_secrets(&env).await;
    let records = DeliveryRecords::from_clients(&env.clients, Duration::from_secs(300));
    let key = Channel::Email.key(&unique("job"));
    let info = RecordInfo {
        user: "alice",
        destination: "email-1",
        address: "alice@example.org",
        what: "test",
    };
    assert!(matches!(
        records.claim(&key, &info).await.unwrap(),
        Claim::Claimed(_)
    ));
    let event = json!({
        "eventType": "Send",
        "mail": {
            "timestamp": "2026-12-01T00:00:00.000Z",
            "source": "notifications@fedoraproject.org",
            "messageId": "0100019a-lambda-test",
            "destination": ["alice@example.org"],
            "tags": {"fmn-record": [record_tag_value(&key)]},
        },
        "send": {},
    });
    send_all(
        &env.clients.sqs,
        env.queue_url(QueueName::MailEvents),
        &[OutgoingMessage::new("e1", event.to_string())],
    )
    .await
    .unwrap();

    let emulator = emulator(&env, FunctionName::MailEvents);
    let mut process = LambdaProcess::start(&emulator, &env, FunctionName::MailEvents, &[]);
    let (event, messages) = sqs_event(&env, FunctionName::MailEvents, 1).await;
    invoke_sqs(&emulator, &mut process, &env, &event, &messages).await;

    let record = records.get(&key).await.unwrap().expect("the record");
    assert_eq!(fmn_aws::dynamo::get_s(&record, "state"), Some("sent"));
    assert_eq!(
        fmn_aws::dynamo::get_s(&record, "message_id"),
        Some("0100019a-lambda-test")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn deliver_irc_binary_says_a_job_to_the_nick() {
    let server = IrcServer::start();
    // A FIFO queue refuses a receipt handle once the message's visibility ran out, and the bot
    // takes seconds (connect, welcome, QUIT): the template's timeout, not the tests' 1 s.
    let env = TestEnv::with_options(
        "lambda-irc",
        fmn_aws::provision::ProvisionOptions {
            visibility_timeout_secs: Some(120),
        },
    )
    .await;
    lambda::store_secrets(&env).await;
    let nick = unique("reader");
    let reader = IrcReader::connect(server.port, &nick).await;
    let job = job_for(
        "alice",
        Destination::irc("irc-1", &nick).confirmed(true),
        notification(&unique("FEDORA-")),
    );
    enqueue(&env, QueueName::Irc, std::slice::from_ref(&job)).await;

    let emulator = emulator(&env, FunctionName::DeliverIrc);
    // The template's server is Libera over TLS: here, the test's ngIRCd.
    let bot = unique("fmnbot");
    let mut process = LambdaProcess::start(
        &emulator,
        &env,
        FunctionName::DeliverIrc,
        &[
            ("FMN_IRC_SERVER", "127.0.0.1".to_string()),
            ("FMN_IRC_PORT", server.port.to_string()),
            ("FMN_IRC_TLS", "false".to_string()),
            ("FMN_IRC_NICK", bot.clone()),
        ],
    );
    let (event, messages) = sqs_event(&env, FunctionName::DeliverIrc, 1).await;
    invoke_sqs(&emulator, &mut process, &env, &event, &messages).await;

    let said = reader.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(said.len(), 1, "one line: {said:?}");
    assert_eq!(said[0].from, bot);
    assert!(said[0].text.contains("bob commented on update"), "{said:?}");
    let record = DeliveryRecords::from_clients(&env.clients, Duration::from_secs(300))
        .get(&Channel::Irc.key(&job.job_id))
        .await
        .unwrap()
        .expect("a delivery record");
    assert_eq!(
        fmn_aws::dynamo::get_s(&record, "state"),
        Some("sent"),
        "{record:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn deliver_matrix_binary_sends_a_job_to_the_user() {
    // FIFO, as the IRC queue: the template's visibility timeout, not the tests' 1 s.
    let env = TestEnv::with_options(
        "lambda-matrix",
        fmn_aws::provision::ProvisionOptions {
            visibility_timeout_secs: Some(120),
        },
    )
    .await;
    let homeserver = synapse();
    let bot = homeserver.register("fmnbot").await;
    let reader = homeserver.register("reader").await;
    lambda::store_matrix_token(&env, &bot.access_token).await;
    let job = job_for(
        "alice",
        Destination::matrix("matrix-1", &reader.user_id).confirmed(true),
        notification(&unique("FEDORA-")),
    );
    enqueue(&env, QueueName::Matrix, std::slice::from_ref(&job)).await;

    let emulator = emulator(&env, FunctionName::DeliverMatrix);
    // The template's homeserver is fedora.im's: here, the test's Synapse.
    let mut process = LambdaProcess::start(
        &emulator,
        &env,
        FunctionName::DeliverMatrix,
        &[("FMN_MATRIX_HOMESERVER", homeserver.base.clone())],
    );
    let (event, messages) = sqs_event(&env, FunctionName::DeliverMatrix, 1).await;
    invoke_sqs(&emulator, &mut process, &env, &event, &messages).await;

    let got = reader
        .wait_for_messages(&bot.user_id, 1, Duration::from_secs(30))
        .await;
    assert_eq!(got.len(), 1, "one message: {got:?}");
    assert!(got[0].body().contains("bob commented on update"), "{got:?}");
    let record = DeliveryRecords::from_clients(&env.clients, Duration::from_secs(300))
        .get(&Channel::Matrix.key(&job.job_id))
        .await
        .unwrap()
        .expect("a delivery record");
    assert_eq!(
        fmn_aws::dynamo::get_s(&record, "state"),
        Some("sent"),
        "{record:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn digest_binary_sends_a_due_digest_on_the_schedule_event() {
    let env = TestEnv::new("lambda-digest").await;
    lambda::store_secrets(&env).await;
    verify_sender(&env).await;
    let address = format!("{}@example.org", unique("dora"));
    let destination = Destination::email("email-1", &address)
        .confirmed(true)
        .with_delivery(Delivery::Digest {
            batch_delta: None,
            batch_count: Some(2),
            schedule: None,
        });
    let jobs: Vec<DeliveryJob> = ["D-1", "D-2"]
        .iter()
        .map(|m| job_for("dora", destination.clone(), notification(&unique(m))))
        .collect();
    let store = DigestStore::from_clients(&env.clients);
    for j in &jobs {
        store
            .add(j, None, fmn_aws::dynamo::now_secs())
            .await
            .unwrap();
    }
    fmn_integration_tests::store_job_owners(&env, &jobs).await;

    let emulator = emulator(&env, FunctionName::Digest);
    let mut process = LambdaProcess::start(&emulator, &env, FunctionName::Digest, &[]);
    let event = lambda::scheduled_event(&env, FunctionName::Digest);
    let (status, report) = emulator.invoke(FunctionName::Digest.binary(), &event).await;
    process.assert_running();
    assert_eq!(status, 200, "{report}\nfunction log:\n{}", process.log());
    assert_eq!(report["mails_sent"], 1, "{report}");
    assert_eq!(report["items_sent"], 2, "{report}");

    let mails = mail_to(&address).await;
    assert_eq!(mails.len(), 1, "one digest mail");
    assert!(
        store.pending().await.unwrap().is_empty(),
        "the digest items are gone"
    );
}

/// The sync function's binary, invoked by its schedule's event, copies the stand-ins' FASJSON
/// and Pagure data (its URLs overridden) into the ownership table and reports what it did.
#[tokio::test(flavor = "multi_thread")]
async fn sync_binary_copies_ownership_and_accounts_on_its_schedule() {
    use fmn_integration_tests::standins::{user, FedoraServices};
    let env = TestEnv::new("lambda-sync").await;
    let services = FedoraServices::start(&json!({
        "users": {"alice": user(&["alice@example.com"], &["irc:/ali"], false)},
        "fas_groups": {"packager": ["alice"]},
        "projects": {"rpms/adplug": {"users": {"owner": ["alice"]}}},
    }));
    let emulator = emulator(&env, FunctionName::Sync);
    let mut process = LambdaProcess::start(
        &emulator,
        &env,
        FunctionName::Sync,
        &[
            ("FMN_FASJSON_URL", services.url.clone()),
            ("FMN_PAGURE_URL", services.url.clone()),
        ],
    );
    let event = lambda::scheduled_event(&env, FunctionName::Sync);
    let (status, report) = emulator.invoke(FunctionName::Sync.binary(), &event).await;
    process.assert_running();
    assert_eq!(status, 200, "{report}\nfunction log:\n{}", process.log());
    assert_eq!(report["artifacts_written"], 1, "{report}");
    assert_eq!(report["accounts"], 1, "{report}");
    let loaded = fmn_aws::ownership_store::OwnershipStore::from_clients(&env.clients)
        .load_everything()
        .await
        .unwrap();
    assert_eq!(loaded.directory.aliases().nick("ali"), "alice");
}

#[tokio::test(flavor = "multi_thread")]
async fn web_api_binary_answers_on_its_function_url() {
    let env = TestEnv::new("lambda-webapi").await;
    lambda::store_secrets(&env).await;
    let emulator = emulator(&env, FunctionName::WebApi);
    let mut process = LambdaProcess::start(&emulator, &env, FunctionName::WebApi, &[]);
    let http = reqwest::Client::new();
    let binary = FunctionName::WebApi.binary();

    let health = http
        .get(emulator.function_url(binary, "/healthz"))
        .send()
        .await
        .expect("GET /healthz");
    process.assert_running();
    assert_eq!(health.status(), 200, "function log:\n{}", process.log());
    let body: Value = health.json().await.unwrap();
    assert_eq!(body["status"], "ok");

    let openapi = http
        .get(emulator.function_url(binary, "/api/v1/openapi.json"))
        .send()
        .await
        .expect("GET /api/v1/openapi.json");
    assert_eq!(openapi.status(), 200);
    let doc: Value = openapi.json().await.unwrap();
    assert!(doc["paths"]["/api/v1/me"].is_object(), "{doc}");

    // No development login inside Lambda: without a token of the issuer, 401.
    let me = http
        .get(emulator.function_url(binary, "/api/v1/me"))
        .send()
        .await
        .expect("GET /api/v1/me");
    assert_eq!(me.status(), 401);
    let dev_login = http
        .post(emulator.function_url(binary, "/api/v1/dev/login"))
        .json(&json!({ "username": "alice" }))
        .send()
        .await
        .expect("POST /api/v1/dev/login");
    assert_eq!(dev_login.status(), 404, "development login is off");
    // The template's issuer and client, from the environment main.rs read.
    let config: Value = http
        .get(emulator.function_url(binary, "/api/v1/config"))
        .send()
        .await
        .expect("GET /api/v1/config")
        .json()
        .await
        .unwrap();
    let vars = lambda::function_environment(&env, FunctionName::WebApi);
    assert_eq!(config["auth"], "oidc");
    assert_eq!(config["issuer"], vars["FMN_OIDC_ISSUER"]);
    assert_eq!(config["client_id"], vars["FMN_OIDC_CLIENT_ID"]);
    process.assert_running();
}

#[tokio::test(flavor = "multi_thread")]
async fn web_api_binary_refuses_dev_auth_inside_lambda() {
    let env = TestEnv::new("lambda-devauth").await;
    lambda::store_secrets(&env).await;
    let emulator = emulator(&env, FunctionName::WebApi);
    // An operator who set FMN_DEV_AUTH on the deployed function.
    let mut process = LambdaProcess::start(
        &emulator,
        &env,
        FunctionName::WebApi,
        &[("FMN_DEV_AUTH", "true".to_string())],
    );
    let status = process.wait_exit(Duration::from_secs(30)).await;
    assert!(!status.success(), "{status}");
    // One readable line naming the setting, not a Debug dump.
    assert!(
        process
            .log()
            .contains("FMN_DEV_AUTH=true inside Lambda (AWS_LAMBDA_FUNCTION_NAME is set)"),
        "refused for FMN_DEV_AUTH: {}",
        process.log()
    );
    assert!(
        !process.log().contains("DevAuthInLambda"),
        "{}",
        process.log()
    );
}

/// `cargo lambda deploy` reads `[package.metadata.lambda.deploy]`: what it would configure
/// (`--dry`) is what the template says for the stack with the default prefix, less what only
/// the stack can set (queue URLs, secrets), which `merge_env` keeps.
#[test]
fn deploy_metadata_configures_each_function_as_the_template_does() {
    let template = fmn_aws::template::Template::bundled(fmn_aws::names::DEFAULT_PREFIX).unwrap();
    let secrets = ["FMN_UNSUBSCRIBE_SECRET", "FMN_IRC_PASSWORD"];
    for function in FunctionName::ALL {
        let spec = template.function(function.logical_id()).unwrap();
        let out = std::process::Command::new(lambda::cargo_lambda())
            .args(["lambda", "deploy", "--dry", "--output-format", "json"])
            .arg(function.binary())
            .current_dir(fmn_integration_tests::repo_root())
            .env("CARGO_TARGET_DIR", lambda::target_dir())
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .output()
            .expect("running cargo lambda deploy --dry");
        assert!(
            out.status.success(),
            "cargo lambda deploy --dry {}: {}",
            function.binary(),
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let json_start = stdout.find('{').expect("a JSON report");
        let dry: Value = serde_json::from_str(&stdout[json_start..]).expect("JSON");
        let config = &dry["config"];
        assert_eq!(dry["name"], spec.name, "deployed under the template's name");
        assert_eq!(config["runtime"], "provided.al2023");
        assert_eq!(
            config["timeout"],
            spec.timeout_secs,
            "{}",
            function.binary()
        );
        assert_eq!(
            config["memory"],
            lambda::template_memory(function),
            "{}",
            function.binary()
        );
        assert_eq!(config["tracing"], "PassThrough");
        assert_eq!(
            config["enable_function_url"],
            function == FunctionName::WebApi,
            "a function URL for the web-api only"
        );

        let mut want: Vec<String> = spec
            .environment
            .iter()
            .filter(|(k, _)| !secrets.contains(&k.as_str()))
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        for (variable, logical_id) in &spec.resource_variables {
            if let Some(table) = TableName::from_logical_id(logical_id) {
                want.push(format!(
                    "{variable}={}",
                    template.table(table.logical_id()).unwrap().name
                ));
            } else if let Some(name) = template.configuration_sets.get(logical_id) {
                want.push(format!("{variable}={name}"));
            } else {
                assert!(
                    QueueName::from_logical_id(logical_id).is_some(),
                    "{variable}: {logical_id}"
                );
            }
        }
        want.sort();
        let mut got: Vec<String> = config["env_var"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        got.sort();
        assert_eq!(got, want, "{}'s variables", function.binary());
    }
}
