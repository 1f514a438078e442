//! The preferences page in a real headless browser (Debian's `chromium`, driven by
//! playwright-core from `tests/browser/browser.mjs`) against the whole local system
//! (`fmn_local::system::run` in-process on LocalStack, DynamoDB Local and moto), in the
//! web-api's development sign-in mode.
//!
//! The script signs in, adds an email destination, creates a filter with two rules (after
//! checking that a bad one is refused with the API's error next to the form), confirms the
//! destination through the link of the mail the SES v2 emulator recorded (Accept on the
//! confirmation page), then sees a matching corpus message, put on the ingest queue here,
//! arrive in its recent notifications and explained. Screenshots go to
//! `target/browser-artifacts/`.
//!
//! A second test signs in through OpenID Connect (authorization code + PKCE) against a
//! stand-in identity provider served by `tests/browser/oidc.mjs`, with the web-api in OIDC
//! mode checking its tokens through discovery and the JWKS.
//!
//! A third adds a Matrix destination offered from the FAS Matrix id and confirms it through
//! the direct message a real Synapse delivered (`tests/browser/matrix.mjs`).
//!
//! Needs `chromium` and `tests/browser/node_modules` (`make deps` installs both), and Synapse
//! (`tests/synapse/install.sh`, run by `make deps`).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use fmn_aws::prefs_store::PrefsStore;
use fmn_aws::provision::ProvisionOptions;
use fmn_aws::recent::RecentMessages;
use fmn_aws::sqs::{send_all, OutgoingMessage};
use fmn_aws::{AwsClients, QueueName, ResourceNames};
use fmn_integration_tests::mail::confirmation_token;
use fmn_integration_tests::system::RunningSystem;
use fmn_integration_tests::web::WebApi;
use fmn_integration_tests::{
    corpus_envelope, free_port, init, options_following, repo_root, unique_prefix, TestEnv,
};
use fmn_local::system;
use fmn_web_api::settings::Settings;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};

/// lmacken submitted an update of control-center and gnome-settings-daemon: bodhi, and the
/// package the page's filter asks for.
const BODHI_REQUEST: &str = "bodhi.TestBodhiRequestMultiplePackagesPerUpdate";

/// The whole browser session, from sign-in to the notification; typically 20-40 s.
const BUDGET: Duration = Duration::from_secs(170);

/// One browser at a time: the machine may have two cores, and the first test sets
/// process-wide variables.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// `target/browser-artifacts`, without the screenshots `names` of an earlier run.
fn fresh_artifacts(names: &[&str]) -> PathBuf {
    let dir = repo_root()
        .canonicalize()
        .expect("the repository root")
        .join("target/browser-artifacts");
    std::fs::create_dir_all(&dir).expect("creating target/browser-artifacts");
    for name in names {
        let _ = std::fs::remove_file(dir.join(name));
    }
    dir
}

/// `node tests/browser/<script>`, talking the `@@` line protocol on its stdin and stdout.
struct NodeScript {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    lines: Lines<BufReader<tokio::process::ChildStdout>>,
}

impl NodeScript {
    fn start(script: &str, envs: &[(&str, &str)]) -> Self {
        let mut child = node_script(script, envs);
        let stdin = child.stdin.take().unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        Self {
            child,
            stdin,
            lines,
        }
    }

    /// The script's next line (trimmed), `None` once it closed its output.
    async fn next_line(&mut self) -> Option<String> {
        let line = self.lines.next_line().await;
        line.expect("reading the script's output")
            .map(|l| l.trim().to_string())
    }

    async fn answer(&mut self, text: &str) {
        let line = format!("{text}\n");
        self.stdin
            .write_all(line.as_bytes())
            .await
            .expect("answering the script");
    }

    async fn wait(&mut self) -> std::process::ExitStatus {
        self.child.wait().await.expect("the script ran")
    }
}

fn node_script(script: &str, envs: &[(&str, &str)]) -> tokio::process::Child {
    let chromium = chromium();
    let browser_dir = repo_root().join("tests/browser");
    assert!(
        browser_dir.join("node_modules/playwright-core").exists(),
        "tests/browser/node_modules is missing: run `make deps` (or tests/browser/install.sh)"
    );
    tokio::process::Command::new("node")
        .arg(browser_dir.join(script))
        .current_dir(&browser_dir)
        .envs(envs.iter().copied())
        .env("CHROMIUM", &chromium)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("running node (Node.js 20+)")
}

fn chromium() -> PathBuf {
    let path = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    assert!(
        path.exists(),
        "{} is missing: run `make deps` (installs Debian's chromium)",
        path.display()
    );
    path
}

#[tokio::test(flavor = "multi_thread")]
async fn the_preferences_page_signs_in_filters_confirms_and_shows_a_notification() {
    let _serial = SERIAL.lock().await;
    init();
    let prefix = unique_prefix("browser");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    // This test is alone in its binary: the process environment is its own. The web-api reads
    // its settings (development sign-in, the public URL of confirmation links) from it.
    std::env::set_var("FMN_DEV_AUTH", "true");
    std::env::set_var("FMN_PUBLIC_URL", &base);

    let clients = AwsClients::with_names(ResourceNames::new(prefix.clone())).await;
    let (_, provisioned) = system::provision_all(&clients, &ProvisionOptions::default())
        .await
        .expect("creating the resources of infra/template.yaml");
    let ingest_url = provisioned.queue_urls[QueueName::Ingest.logical_id()].clone();

    // The system, following a bus nobody publishes on (so no sample replay, no demo users).
    let dir = tempfile::tempdir().unwrap();
    let nobody = format!("tcp://127.0.0.1:{}", free_port());
    let mut options = options_following(nobody, dir.path());
    options.web_addr = ([127, 0, 0, 1], port).into();
    let mut running = RunningSystem::start(&clients, options);
    running.healthz().await;

    let user = "pagetester";
    let email = format!("pagetester-{prefix}@example.org");
    let artifacts = fresh_artifacts(&[
        "preferences.png",
        "preferences-phone.png",
        "confirm.png",
        "admin.png",
        "failure.png",
    ]);
    let mut script = NodeScript::start(
        "browser.mjs",
        &[
            ("FMN_BASE_URL", base.as_str()),
            ("FMN_TEST_USER", user),
            ("FMN_TEST_EMAIL", email.as_str()),
            ("FMN_ARTIFACTS", artifacts.to_str().unwrap()),
        ],
    );

    // Answer the script's requests until it is done.
    let mut published = None;
    let mut done = false;
    let session = async {
        while let Some(line) = script.next_line().await {
            let answer = match line.as_str() {
                "@@need confirmation-link" => {
                    let token = confirmation_token(&email, Duration::from_secs(60)).await;
                    format!("link {base}/confirm/{token}")
                }
                "@@need publish" => {
                    let mut envelope = corpus_envelope(BODHI_REQUEST);
                    let msg_id = format!("{prefix}-bodhi");
                    envelope["msg_id"] = serde_json::Value::String(msg_id.clone());
                    send_all(
                        &clients.sqs,
                        &ingest_url,
                        &[OutgoingMessage::new("page", envelope.to_string())],
                    )
                    .await
                    .expect("sending to the ingest queue");
                    published = Some(msg_id.clone());
                    format!("published {msg_id}")
                }
                "@@done" => {
                    done = true;
                    continue;
                }
                other => panic!("unexpected line from the browser script: {other}"),
            };
            script.answer(&answer).await;
        }
        script.wait().await
    };
    let status = tokio::time::timeout(BUDGET, session)
        .await
        .unwrap_or_else(|_| panic!("the browser session took over {BUDGET:?}"));
    assert!(
        status.success() && done,
        "the browser script failed ({status}); see its log above and {}",
        artifacts.join("failure.png").display()
    );
    assert!(artifacts.join("preferences.png").exists(), "a screenshot");

    // What the page showed is what the system recorded.
    let msg_id = published.expect("a message was published");
    let activity = RecentMessages::from_clients(&clients)
        .activity(user, 100)
        .await
        .unwrap();
    assert_eq!(activity.len(), 1, "{activity:?}");
    assert_eq!(activity[0]["msg_id"], msg_id.as_str());
    assert_eq!(activity[0]["address"], email.as_str());
    // And by mail: the long form in both parts, the old FMN headers, the reason and the filter.
    let mail = fmn_integration_tests::eventually(
        "the notification mail",
        Duration::from_secs(60),
        || async {
            fmn_integration_tests::mail::mail_to(&email)
                .await
                .into_iter()
                .find(|m| {
                    fmn_integration_tests::mail::fedmsg_id(m).as_deref() == Some(msg_id.as_str())
                })
        },
    )
    .await;
    let parsed = mail_parser::MessageParser::default()
        .parse(mail.raw.as_bytes())
        .expect("the mail parses");
    let header = |name: &str| {
        parsed
            .header_raw(name)
            .map(str::trim)
            .unwrap_or_else(|| panic!("no {name} header in {}", mail.raw))
            .to_string()
    };
    assert!(
        header("X-Fedmsg-Topic").ends_with(".bodhi.update.request.testing"),
        "{}",
        mail.raw
    );
    assert_eq!(header("X-Fedmsg-Category"), "bodhi");
    assert!(
        header("X-Fedmsg-Username").contains("lmacken"),
        "{}",
        mail.raw
    );
    // The filter's first positive rule by rank is the package rule.
    assert_eq!(header("X-Fmn-Reason"), "followed");
    assert_eq!(header("Precedence"), "bulk");
    let text = parsed.body_text(0).expect("a plain-text part");
    let html = parsed.body_html(0).expect("an HTML part");
    assert!(
        text.contains("gnome-settings-daemon"),
        "the long form: {text}"
    );
    assert!(html.contains("gnome-settings-daemon"), "{html}");

    running.stop(Duration::from_secs(60)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_page_signs_in_through_openid_connect_with_pkce() {
    let _serial = SERIAL.lock().await;
    let env = TestEnv::new("browseroidc").await;
    let user = "oidcuser";
    let client_id = "fmn-page";
    let artifacts = fresh_artifacts(&["oidc.png", "oidc-failure.png"]);
    let mut script = NodeScript::start(
        "oidc.mjs",
        &[
            ("FMN_CLIENT_ID", client_id),
            ("FMN_TEST_USER", user),
            ("FMN_ARTIFACTS", artifacts.to_str().unwrap()),
        ],
    );

    let mut web = None;
    let mut done = false;
    let session = async {
        while let Some(line) = script.next_line().await {
            if let Some(issuer) = line.strip_prefix("@@issuer ") {
                // The web-api in OIDC mode, trusting the script's identity provider.
                let vars = [
                    ("FMN_DEV_AUTH", "false"),
                    ("FMN_OIDC_ISSUER", issuer),
                    ("FMN_OIDC_CLIENT_ID", client_id),
                    ("FMN_OIDC_AUDIENCE", client_id),
                ];
                let settings = Settings::from_lookup(
                    |k| {
                        vars.iter()
                            .find(|(n, _)| *n == k)
                            .map(|(_, v)| v.to_string())
                    },
                    false,
                    fmn_aws::mail::MailSettings::from_env().unwrap(),
                )
                .expect("OIDC settings");
                web = Some(WebApi::start_with(&env, settings).await);
            } else if line == "@@need base" {
                let base = &web.as_ref().expect("the issuer came first").base;
                script.answer(&format!("base {base}")).await;
            } else if line == "@@done" {
                done = true;
            } else {
                panic!("unexpected line from the OIDC script: {line}");
            }
        }
        script.wait().await
    };
    let status = tokio::time::timeout(Duration::from_secs(120), session)
        .await
        .expect("the OIDC browser session took over 120 s");
    assert!(
        status.success() && done,
        "the OIDC browser script failed ({status}); see its log above and {}",
        artifacts.join("oidc-failure.png").display()
    );
    // The account was created by the signed-in call, under the token's username claim.
    let prefs = PrefsStore::from_clients(&env.clients)
        .get(user)
        .await
        .unwrap()
        .expect("the account exists");
    assert_eq!(prefs.name, user);
}

/// Issue 19's acceptance on the page: a Matrix destination is offered from the user's Matrix id
/// in FAS, added, and confirmed through the link the bot sends as a direct message on a real
/// homeserver (Synapse, `tests/support/matrix.rs`) — the whole local system in between.
#[tokio::test(flavor = "multi_thread")]
async fn the_page_adds_and_confirms_a_matrix_destination_from_fas() {
    use fmn_core::directory::Account;
    use fmn_core::fact_changes::FactChange;
    use fmn_integration_tests::matrix::synapse;

    let _serial = SERIAL.lock().await;
    init();
    let prefix = unique_prefix("browsermx");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    // The tests of this binary run one at a time (SERIAL): the environment is this test's.
    std::env::set_var("FMN_DEV_AUTH", "true");
    std::env::set_var("FMN_PUBLIC_URL", &base);

    let homeserver = synapse();
    let bot = homeserver.register("fmnpagebot").await;
    let reader = homeserver.register("pagemx").await;
    let (localpart, server) = reader.user_id[1..].split_once(':').unwrap();

    let clients = AwsClients::with_names(ResourceNames::new(prefix.clone())).await;
    system::provision_all(&clients, &ProvisionOptions::default())
        .await
        .expect("creating the resources of infra/template.yaml");
    // The account as the sync stores it from FAS: its Matrix id on the test homeserver.
    let user = "pagematrix";
    fmn_aws::ownership_store::OwnershipStore::from_clients(&clients)
        .apply(&[FactChange::SetAccount {
            user: user.into(),
            account: Some(Account {
                emails: vec![format!("{user}-{prefix}@example.org")],
                ircnicks: vec![format!("matrix://{server}/{localpart}")],
                ..Account::default()
            }),
        }])
        .await
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let nobody = format!("tcp://127.0.0.1:{}", free_port());
    let mut options = options_following(nobody, dir.path());
    options.web_addr = ([127, 0, 0, 1], port).into();
    options.matrix.homeserver = homeserver.base.clone();
    options.matrix.access_token = Some(bot.access_token.clone());
    let mut running = RunningSystem::start(&clients, options);
    running.healthz().await;

    let artifacts = fresh_artifacts(&["matrix.png", "matrix-failure.png"]);
    let mut script = NodeScript::start(
        "matrix.mjs",
        &[
            ("FMN_BASE_URL", base.as_str()),
            ("FMN_TEST_USER", user),
            ("FMN_EXPECTED_MATRIX", reader.user_id.as_str()),
            ("FMN_ARTIFACTS", artifacts.to_str().unwrap()),
        ],
    );
    let mut done = false;
    let session = async {
        while let Some(line) = script.next_line().await {
            match line.as_str() {
                "@@need matrix-confirmation-link" => {
                    // The bot's direct message, read by the user's own client.
                    let dm = reader
                        .wait_for_messages(&bot.user_id, 1, Duration::from_secs(60))
                        .await;
                    let body = dm[0].body();
                    let link = body
                        .split_whitespace()
                        .find(|w| w.starts_with(&format!("{base}/confirm/")))
                        .unwrap_or_else(|| panic!("no confirmation link in {body:?}"));
                    script.answer(&format!("link {link}")).await;
                }
                "@@done" => done = true,
                other => panic!("unexpected line from the Matrix browser script: {other}"),
            }
        }
        script.wait().await
    };
    let status = tokio::time::timeout(BUDGET, session)
        .await
        .unwrap_or_else(|_| panic!("the Matrix browser session took over {BUDGET:?}"));
    assert!(
        status.success() && done,
        "the Matrix browser script failed ({status}); see its log above and {}",
        artifacts.join("matrix-failure.png").display()
    );

    // Stored as the page showed it: the FAS Matrix id, confirmed.
    let prefs = PrefsStore::from_clients(&clients)
        .get(user)
        .await
        .unwrap()
        .expect("the account exists");
    let matrix: Vec<_> = prefs
        .destinations
        .iter()
        .filter(|d| d.kind == fmn_core::prefs::DestinationKind::Matrix)
        .collect();
    assert_eq!(matrix.len(), 1, "{:?}", prefs.destinations);
    assert_eq!(matrix[0].address, reader.user_id);
    assert!(matrix[0].confirmed);
    running.stop(Duration::from_secs(60)).await;
}
