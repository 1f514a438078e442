//! Auto-created accounts (`fmn_core::accounts`) against DynamoDB Local, the FASJSON and Pagure
//! stand-ins and SQS: a packager sponsorship and a first Badges login on the bus create an
//! account through the running match function; a first sign-in creates one through the
//! web-api; each has the FAS e-mail verified by FAS and sends nothing until its owner turns a
//! filter on, unless the admin's setting for one of the user's groups switches one on; a FAS
//! account deleted since the last sync stops receiving.

use std::sync::Arc;

use fmn_aws::prefs_store::PrefsStore;
use fmn_aws::sqs::{send_all, OutgoingMessage};
use fmn_aws::{FunctionName, QueueName};
use fmn_core::accounts::{DefaultFilter, GroupDefaults};
use fmn_core::prefs::{Destination, DestinationKind, Filter, UserPrefs, Verifier};
use fmn_core::rules::{Rule, RuleKind};
use fmn_integration_tests::standins::{user, FedoraServices};
use fmn_integration_tests::web::WebApi;
use fmn_integration_tests::{edited_corpus_message, start_function, wait_for_records, TestEnv};
use fmn_local::stats::FunctionStats;
use fmn_match::MatchHandler;
use fmn_sync::SyncHandler;
use reqwest::Method;
use serde_json::{json, Value};

/// A Bugzilla change (the message names its package only by the bug's component).
const BUGZILLA: &str = "bz.TestLegacy018492a2BugzillaUpdate";
/// Noggin's sponsorship (fedora-messaging).
const SPONSOR: &str = "c060fded-3827-584d-a52d-b4b9b06ebcdf";
/// A first Fedora Badges login (fedmsg).
const FIRST_BADGES_LOGIN: &str = "badges.TestFirstLogin";

fn world() -> Value {
    json!({
        "users": {
            "alice": user(&["alice@example.com"], &[], false),
            "erin": user(&["erin@example.com", "erin@work.example"], &[], false),
            "gina": user(&["gina@example.com"], &[], false),
        },
        "fas_groups": {"packager": ["alice"]},
        "projects": {
            "rpms/adplug": {"users": {"owner": ["erin"]}},
            "rpms/qux": {"users": {"owner": ["gina"]}},
        },
        "pagure_groups": {},
        "faults": [],
    })
}

/// A Bugzilla change on `package` by an address nobody has.
fn probe(package: &str) -> Value {
    edited_corpus_message(BUGZILLA, |b| {
        b["bug"]["component"] = json!(package);
        b["bug"]["creator"] = json!("someone@elsewhere.example");
        b["event"]["who"] = json!("someone@elsewhere.example");
    })
}

/// Sends messages to the ingest queue of a running match function, one at a time.
struct Bus<'a> {
    env: &'a TestEnv,
    stats: Arc<FunctionStats>,
    sent: u64,
}

impl Bus<'_> {
    async fn send(&mut self, message: &Value) {
        send_all(
            &self.env.clients.sqs,
            self.env.queue_url(QueueName::Ingest),
            &[OutgoingMessage::new("m", message.to_string())],
        )
        .await
        .unwrap();
        self.sent += 1;
        wait_for_records(&self.stats, self.sent).await;
    }

    /// Sends a probe; the users its e-mail jobs are for, and their addresses.
    async fn probe(&mut self, package: &str, expect: usize) -> Vec<(String, String)> {
        let probe = probe(package);
        self.send(&probe).await;
        let mut out: Vec<(String, String)> = self
            .env
            .drain(
                QueueName::Email,
                expect.max(1),
                if expect == 0 { 2 } else { 60 },
            )
            .await
            .iter()
            .map(|m| serde_json::from_str::<Value>(m.body.as_deref().unwrap()).unwrap())
            .filter(|j| j["notification"]["msg_id"] == probe["msg_id"])
            .map(|j| {
                (
                    j["user"].as_str().unwrap().to_string(),
                    j["destination"]["address"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        out.sort();
        out
    }
}

/// Auto-creation on packager sponsorship, through the running match function: the account
/// has the FAS e-mail verified by FAS and, by the admin's setting for packagers, the
/// "packages" filter on; a first Badges login makes an account that sends nothing until its
/// owner switches a filter on; a repeated sponsorship leaves the account alone.
#[tokio::test(flavor = "multi_thread")]
async fn packager_sponsorship_creates_an_account_through_the_match_path() {
    let env = TestEnv::new("acct-bus").await;
    let services = FedoraServices::start(&world());
    let settings = services.settings(100);
    SyncHandler::new(&env.clients, &settings)
        .run()
        .await
        .unwrap();
    let prefs = PrefsStore::from_clients(&env.clients);
    prefs
        .set_group_defaults(
            "packager",
            GroupDefaults {
                on: [DefaultFilter::Packages].into(),
            },
        )
        .await
        .unwrap();
    let handler = MatchHandler::new(&env.clients)
        .await
        .unwrap()
        .with_fasjson(&settings);
    let (stop, stats) = start_function(&env, FunctionName::Match, Arc::new(handler));
    let mut bus = Bus {
        env: &env,
        stats,
        sent: 0,
    };

    assert!(bus.probe("adplug", 0).await.is_empty(), "no account yet");
    let sponsor = |user: &str| {
        edited_corpus_message(SPONSOR, |b| {
            b["msg"]["group"] = json!("packager");
            b["msg"]["user"] = json!(user);
        })
    };
    bus.send(&sponsor("erin")).await;
    let erin = prefs.get("erin").await.unwrap().expect("erin's account");
    assert!(erin.enabled);
    assert_eq!(erin.destinations.len(), 1, "{erin:?}");
    let d = &erin.destinations[0];
    assert_eq!(
        (d.kind, d.address.as_str()),
        (DestinationKind::Email, "erin@example.com"),
        "FAS's first e-mail"
    );
    assert!(d.confirmed, "no confirmation needed");
    assert_eq!(d.verified_by, Some(Verifier::Fas));
    let on: Vec<bool> = erin.filters.iter().map(|f| f.enabled).collect();
    assert_eq!(on, [true, false], "packages on for packagers, the rest off");
    assert_eq!(
        bus.probe("adplug", 1).await,
        [("erin".to_string(), "erin@example.com".to_string())],
        "a packager gets their own packages' events at once"
    );
    // No confirmation mail went to the FAS address.
    assert!(fmn_integration_tests::mail::mail_to("erin@example.com")
        .await
        .is_empty());

    // erin changes her mind; a repeated sponsorship changes nothing.
    let erin = prefs
        .update(&erin.name, |p| {
            p.disable_filter("filter-1");
            Ok::<_, fmn_aws::prefs_store::PrefsStoreError>(())
        })
        .await
        .unwrap();
    bus.send(&sponsor("erin")).await;
    assert_eq!(prefs.get("erin").await.unwrap().unwrap(), erin, "untouched");
    assert!(bus.probe("adplug", 0).await.is_empty(), "erin opted out");

    // gina logs in to Badges for the first time: an account, with everything off.
    bus.send(&edited_corpus_message(FIRST_BADGES_LOGIN, |b| {
        b["user"]["username"] = json!("gina");
    }))
    .await;
    let gina = prefs.get("gina").await.unwrap().expect("gina's account");
    assert_eq!(gina.destinations[0].address, "gina@example.com");
    assert_eq!(gina.destinations[0].verified_by, Some(Verifier::Fas));
    assert!(gina.filters.iter().all(|f| !f.enabled), "opt-in: {gina:?}");
    assert!(
        bus.probe("qux", 0).await.is_empty(),
        "nothing until opted in"
    );
    // She turns her packages filter on.
    prefs
        .update("gina", |p| {
            p.filters[0].enabled = true;
            Ok::<_, fmn_aws::prefs_store::PrefsStoreError>(())
        })
        .await
        .unwrap();
    assert_eq!(
        bus.probe("qux", 1).await,
        [("gina".to_string(), "gina@example.com".to_string())]
    );
    stop.cancel();
}

/// The first sign-in creates the account with the synced FAS e-mail verified by FAS (no
/// confirmation mail) and every filter off; a member of a group the admin set (by the admin
/// API) starts with that group's filters on. Other addresses still need confirming.
#[tokio::test(flavor = "multi_thread")]
async fn first_sign_in_creates_the_account_with_the_fas_email_verified() {
    let env = TestEnv::new("acct-web").await;
    let services = FedoraServices::start(&world());
    SyncHandler::new(&env.clients, &services.settings(100))
        .run()
        .await
        .unwrap();
    let api = WebApi::start(&env).await;

    let me = api.get("/api/v1/me", &api.token("erin", false)).await;
    assert_eq!(me.status, 200, "{me:?}");
    let d = &me.body["destinations"][0];
    assert_eq!(d["address"], "erin@example.com");
    assert_eq!(d["confirmed"], true);
    assert_eq!(d["verified_by"], "fas");
    let filters = me.body["filters"].as_array().unwrap();
    assert_eq!(filters.len(), 2);
    assert!(filters.iter().all(|f| f["enabled"] == false), "{filters:?}");
    assert!(fmn_integration_tests::mail::mail_to("erin@example.com")
        .await
        .is_empty());

    // An address erin adds herself is confirmed as before.
    let added = api
        .add_destination(&api.token("erin", false), "email", "erin@work.example")
        .await;
    assert_eq!(added.status, 201, "{added:?}");
    assert_eq!(added.body["confirmed"], false);
    assert!(added.body.get("verified_by").is_none(), "{added:?}");

    // The admin switches packagers' packages filter on; non-admins cannot.
    let path = "/api/v1/admin/account-defaults/packager";
    let body = json!({"on": ["packages"]});
    let refused = api
        .send(
            Method::PUT,
            path,
            Some(&api.token("erin", false)),
            body.clone(),
        )
        .await;
    assert_eq!(refused.status, 403);
    let admin = api.token("root", true);
    let set = api.send(Method::PUT, path, Some(&admin), body).await;
    assert_eq!(set.status, 200, "{set:?}");
    assert_eq!(set.body, json!({"packager": {"on": ["packages"]}}));
    let bad = api
        .send(
            Method::PUT,
            path,
            Some(&admin),
            json!({"on": ["everything"]}),
        )
        .await;
    assert_eq!(bad.status, 422, "{bad:?}");
    let all = api.get("/api/v1/admin/account-defaults", &admin).await;
    assert_eq!(all.body, json!({"packager": {"on": ["packages"]}}));

    // alice is a packager: her first sign-in switches the packages filter on.
    let me = api.get("/api/v1/me", &api.token("alice", false)).await;
    let on: Vec<&Value> = me.body["filters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| &f["enabled"])
        .collect();
    assert_eq!(on, [&json!(true), &json!(false)], "{me:?}");
    assert_eq!(me.body["destinations"][0]["verified_by"], "fas");
    // gina is not: everything off.
    let me = api.get("/api/v1/me", &api.token("gina", false)).await;
    assert!(me.body["filters"]
        .as_array()
        .unwrap()
        .iter()
        .all(|f| f["enabled"] == false));
}

/// An account deleted from FAS since the last sync is disabled (not deleted) by the next.
#[tokio::test(flavor = "multi_thread")]
async fn a_deleted_fas_account_stops_receiving() {
    let env = TestEnv::new("acct-deleted").await;
    let mut data = world();
    let services = FedoraServices::start(&data);
    let sync = SyncHandler::new(&env.clients, &services.settings(100));
    sync.run().await.unwrap();
    let prefs = PrefsStore::from_clients(&env.clients);
    let mut gina = UserPrefs::new("gina");
    gina.destinations = vec![Destination::email("email-1", "gina@example.com").confirmed(true)];
    gina.filters = vec![Filter::new(
        "filter-1".into(),
        "mine".into(),
        vec!["email-1".into()],
        vec![Rule::new(RuleKind::UserPackages {
            user: String::new(),
        })],
    )];
    prefs.put(&gina).await.unwrap();
    let handler = MatchHandler::new(&env.clients).await.unwrap();
    let (stop, stats) = start_function(&env, FunctionName::Match, Arc::new(handler));
    let mut bus = Bus {
        env: &env,
        stats,
        sent: 0,
    };
    assert_eq!(bus.probe("qux", 1).await.len(), 1, "gina receives");

    data["users"].as_object_mut().unwrap().remove("gina");
    services.set_data(&data);
    let outcome = sync.run().await.unwrap();
    assert_eq!(outcome.deleted_accounts, 1, "{outcome:?}");
    assert_eq!(outcome.accounts_disabled, 1, "{outcome:?}");
    let stored = prefs.get("gina").await.unwrap().expect("kept");
    assert!(!stored.enabled, "disabled, not deleted");
    assert_eq!(stored.filters.len(), 1);
    assert!(
        bus.probe("qux", 0).await.is_empty(),
        "gina stopped receiving"
    );
    let again = sync.run().await.unwrap();
    assert_eq!(again.accounts_disabled, 0, "{again:?}");
    stop.cancel();
}
