//! The web-api's JSON API on the emulators (DynamoDB Local, SQS on LocalStack, SES v2 on moto),
//! served on a random port in development mode: every endpoint, every class of validation
//! error, authentication, confirmation by mail and by IRC end to end, unsubscribe, admin.

use std::time::Duration;

use fmn_aws::QueueName;
use fmn_integration_tests::mail::{confirmation_token, mail_to};
use fmn_integration_tests::web::{dev_settings, Answer, WebApi};
use fmn_integration_tests::{corpus_envelope, TestEnv};
use fmn_web_api::auth::DevIssuer;
use reqwest::Method;
use serde_json::{json, Value};

const GET: Method = Method::GET;
const POST: Method = Method::POST;
const PUT: Method = Method::PUT;
const PATCH: Method = Method::PATCH;
const DELETE: Method = Method::DELETE;

async fn start(test: &str) -> (TestEnv, WebApi) {
    let env = TestEnv::new(test).await;
    let api = WebApi::start(&env).await;
    (env, api)
}

fn unique_address(tag: &str) -> String {
    format!(
        "{tag}-{}@example.org",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    )
}

fn assert_error(a: &Answer, status: u16, code: &str) {
    assert_eq!(a.status.as_u16(), status, "{a:?}");
    assert_eq!(a.code(), code, "{a:?}");
    assert!(a.body["error"]["message"].is_string(), "{a:?}");
}

#[tokio::test]
async fn authentication_is_required_and_checked() {
    let (_env, api) = start("webauth").await;

    // Open endpoints.
    let a = api.call(GET, "/api/v1/config", None, None).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.body["auth"], "dev");
    let a = api.call(GET, "/api/v1/rules", None, None).await;
    assert!(a
        .body
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["kind"] == "package"));
    let a = api.call(GET, "/healthz", None, None).await;
    assert_eq!(a.status, 200);
    let a = api.call(GET, "/api/v1/openapi.json", None, None).await;
    assert_eq!(a.status, 200);
    for path in [
        "/api/v1/me",
        "/api/v1/me/filters/{id}",
        "/api/v1/confirm/{token}",
    ] {
        assert!(a.body["paths"][path].is_object(), "{path} documented");
    }
    assert!(a.body["components"]["schemas"]["ErrorBody"].is_object());

    // No token, garbage, wrong scheme.
    assert_error(
        &api.call(GET, "/api/v1/me", None, None).await,
        401,
        "unauthenticated",
    );
    assert_error(
        &api.call(GET, "/api/v1/me", Some("not-a-jwt"), None).await,
        401,
        "unauthenticated",
    );
    // Signed by another key under the same key id.
    let dev = api.state.dev.as_ref().unwrap();
    let forger = DevIssuer::generate(dev.issuer(), dev.kid());
    let forged = forger.token(&api.state.settings.auth, "alice", &[]);
    assert_error(
        &api.get("/api/v1/me", &forged).await,
        401,
        "unauthenticated",
    );
    // Expired (beyond the leeway), and from another issuer.
    let now = fmn_aws::dynamo::now_secs();
    let expired = dev.sign(&json!({
        "iss": dev.issuer(), "exp": now - 3600, "preferred_username": "alice", "groups": []
    }));
    let a = api.get("/api/v1/me", &expired).await;
    assert_error(&a, 401, "unauthenticated");
    assert!(a.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("expired"));
    let foreign = dev.sign(&json!({
        "iss": "https://elsewhere.example.org", "exp": now + 600, "preferred_username": "alice"
    }));
    assert_error(
        &api.get("/api/v1/me", &foreign).await,
        401,
        "unauthenticated",
    );
    // No user name claim.
    let nameless = dev.sign(&json!({"iss": dev.issuer(), "exp": now + 600}));
    assert_error(
        &api.get("/api/v1/me", &nameless).await,
        401,
        "unauthenticated",
    );

    // The development login issues tokens that pass the same checks.
    let a = api
        .send(
            POST,
            "/api/v1/dev/login",
            None,
            json!({"username": "alice"}),
        )
        .await;
    assert_eq!(a.status, 200, "{a:?}");
    let token = a.body["token"].as_str().unwrap().to_string();
    let me = api.get("/api/v1/me", &token).await;
    assert_eq!(me.status, 200, "{me:?}");
    assert_eq!(me.body["name"], "alice");
    assert_eq!(me.body["admin"], false);
    assert_eq!(
        me.body["filters"].as_array().unwrap().len(),
        2,
        "default filters"
    );
    assert!(me.body["destinations"].as_array().unwrap().is_empty());
    let a = api
        .send(
            POST,
            "/api/v1/dev/login",
            None,
            json!({"username": "Not Valid"}),
        )
        .await;
    assert_error(&a, 422, "invalid");
    assert_eq!(a.field(), "username");

    // Non-admins cannot administer.
    assert_error(
        &api.get("/api/v1/admin/users", &token).await,
        403,
        "forbidden",
    );
    // Unknown API paths are JSON 404s.
    assert_error(
        &api.call(GET, "/api/v1/nope", None, None).await,
        404,
        "not_found",
    );
}

#[tokio::test]
async fn filters_are_created_changed_validated_and_private() {
    let (_env, api) = start("webfilters").await;
    let alice = api.token("alice", false);
    let bob = api.token("bob", false);
    let me = api.get("/api/v1/me", &alice).await;
    let v0 = me.body["version"].as_u64().unwrap();

    let body = json!({
        "name": "My builds",
        "rules": [
            {"kind": "package", "packages": ["kernel"]},
            {"kind": "topic", "glob": "*.buildsys.build.state.change", "negated": true}
        ]
    });
    let a = api
        .send(POST, "/api/v1/me/filters", Some(&alice), body.clone())
        .await;
    assert_eq!(a.status, 201, "{a:?}");
    let id = a.body["id"].as_str().unwrap().to_string();
    assert_eq!(a.body["rules"].as_array().unwrap().len(), 2);
    assert_eq!(a.body["rules"][1]["negated"], true);
    let me = api.get("/api/v1/me", &alice).await;
    assert!(
        me.body["version"].as_u64().unwrap() > v0,
        "the write bumped the version"
    );

    let a = api.get(&format!("/api/v1/me/filters/{id}"), &alice).await;
    assert_eq!(a.body["name"], "My builds");
    let renamed =
        json!({"name": "Kernel builds", "enabled": false, "oneshot": true, "rules": body["rules"]});
    let a = api
        .send(
            PUT,
            &format!("/api/v1/me/filters/{id}"),
            Some(&alice),
            renamed.clone(),
        )
        .await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(
        (
            a.body["name"].as_str(),
            a.body["enabled"].as_bool(),
            a.body["oneshot"].as_bool()
        ),
        (Some("Kernel builds"), Some(false), Some(true))
    );

    // Another user's filter does not exist for bob.
    for method in [GET, DELETE] {
        assert_error(
            &api.call(
                method,
                &format!("/api/v1/me/filters/{id}"),
                Some(&bob),
                None,
            )
            .await,
            404,
            "not_found",
        );
    }
    assert_error(
        &api.send(
            PUT,
            &format!("/api/v1/me/filters/{id}"),
            Some(&bob),
            renamed.clone(),
        )
        .await,
        404,
        "not_found",
    );

    // Validation: each class with its field; nothing is written.
    let before = api.get("/api/v1/me", &alice).await.body;
    let cases = [
        (
            json!({"name": "x", "rules": [{"kind": "no-such-rule"}]}),
            "rules[0]",
        ),
        (
            json!({"name": "x", "rules": [{"kind": "package-regex", "pattern": "(unclosed"}]}),
            "rules[0]",
        ),
        (
            json!({"name": "x", "rules": [{"kind": "package-regex", "pattern": "a{1000}{1000}{1000}"}]}),
            "rules[0]",
        ),
        (json!({"name": "n".repeat(65)}), "name"),
        (json!({"name": "   "}), "name"),
        (
            json!({"name": "x", "destinations": ["email-9"]}),
            "destinations[0]",
        ),
        (json!({"name": "x", "surprise": 1}), "surprise"),
        (json!({"rules": []}), "body"),
    ];
    for (body, field) in cases {
        let a = api
            .send(POST, "/api/v1/me/filters", Some(&alice), body.clone())
            .await;
        assert_eq!(a.status, 422, "{body}: {a:?}");
        assert_eq!(a.code(), "invalid", "{body}: {a:?}");
        assert!(
            a.field().starts_with(field),
            "{body}: field {} not {field}",
            a.field()
        );
    }
    // Not JSON at all.
    let a = api
        .http
        .post(format!("{}/api/v1/me/filters", api.base))
        .bearer_auth(&alice)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(a.status(), 400);
    let after = api.get("/api/v1/me", &alice).await.body;
    assert_eq!(before, after, "refused input wrote nothing");

    // Too many filters, through an import (one write or none).
    let filters: Vec<Value> = (0..51)
        .map(|i| json!({"id": format!("f{i}"), "name": format!("filter {i}"), "rules": []}))
        .collect();
    let a = api
        .send(
            PUT,
            "/api/v1/me/import",
            Some(&alice),
            json!({"filters": filters}),
        )
        .await;
    assert_error(&a, 422, "too_many");
    assert_eq!(a.field(), "filters");
    let after = api.get("/api/v1/me", &alice).await.body;
    assert_eq!(before, after, "nothing half-written");

    // Over the regex budget (10 regex rules per user, in all filters): an import built to
    // blow it, each rule valid on its own, is refused naming the limit.
    let filters: Vec<Value> = (0..4)
        .map(|i| {
            let rules: Vec<Value> = (0..3)
                .map(|j| json!({"kind": "regex", "pattern": format!("t{i}{j}\\w{{5}}")}))
                .collect();
            json!({"id": format!("f{i}"), "name": format!("regex {i}"), "rules": rules})
        })
        .collect();
    let a = api
        .send(
            PUT,
            "/api/v1/me/import",
            Some(&alice),
            json!({"filters": filters}),
        )
        .await;
    assert_error(&a, 422, "too_many");
    assert!(a.field().contains("regex"), "{a:?}");
    assert!(
        format!("{:?}", a.body).contains("10"),
        "names the limit: {a:?}"
    );
    let after = api.get("/api/v1/me", &alice).await.body;
    assert_eq!(before, after, "nothing written");

    let a = api
        .call(
            DELETE,
            &format!("/api/v1/me/filters/{id}"),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(a.status, 204);
    assert_error(
        &api.get(&format!("/api/v1/me/filters/{id}"), &alice).await,
        404,
        "not_found",
    );
}

#[tokio::test]
async fn an_email_destination_is_confirmed_through_the_mailed_link_and_unsubscribed() {
    let (_env, api) = start("webmail").await;
    let alice = api.token("alice", false);
    let address = unique_address("alice");

    // Validation of addresses and delivery.
    for (body, field) in [
        (
            json!({"kind": "email", "address": "not an address"}),
            "address",
        ),
        (
            json!({"kind": "email", "address": "a@b.org>, c@d.org"}),
            "address",
        ),
        (
            json!({"kind": "irc", "address": "9starts-with-digit"}),
            "address",
        ),
        (json!({"kind": "irc", "address": "n".repeat(40)}), "address"),
        (json!({"kind": "pigeon", "address": "x"}), "kind"),
        (
            json!({"kind": "email", "address": address, "delivery": {"mode": "digest"}}),
            "delivery",
        ),
        (
            json!({"kind": "email", "address": address, "delivery": {"mode": "digest", "batch_delta": 5}}),
            "delivery.batch_delta",
        ),
    ] {
        let a = api
            .send(POST, "/api/v1/me/destinations", Some(&alice), body.clone())
            .await;
        assert_error(&a, 422, "invalid");
        assert_eq!(a.field(), field, "{body}: {a:?}");
    }

    let a = api.add_destination(&alice, "email", &address).await;
    assert_eq!(a.status, 201, "{a:?}");
    assert_eq!(a.body["confirmed"], false);
    let id = a.body["id"].as_str().unwrap().to_string();
    let dup = api
        .add_destination(&alice, "email", &address.to_uppercase())
        .await;
    assert_error(&dup, 409, "conflict");

    let token = confirmation_token(&address, Duration::from_secs(5)).await;
    assert_eq!(token.len(), 43, "32 bytes, base64url: {token}");
    let info = api.confirmation(&token).await;
    assert_eq!(info.status, 200, "{info:?}");
    assert_eq!(info.body["user"], "alice");
    assert_eq!(info.body["address"], address.as_str());
    // Looking does not confirm.
    let me = api.get("/api/v1/me", &alice).await;
    assert_eq!(me.body["destinations"][0]["confirmed"], false);
    let v = me.body["version"].as_u64().unwrap();

    let a = api.answer_confirmation(&token, true).await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.body["confirmed"], true);
    let me = api.get("/api/v1/me", &alice).await;
    assert_eq!(me.body["destinations"][0]["confirmed"], true);
    assert!(me.body["version"].as_u64().unwrap() > v);
    // Single use.
    assert_error(&api.answer_confirmation(&token, true).await, 410, "gone");
    assert_error(&api.confirmation(&token).await, 410, "gone");
    assert_error(&api.resend(&alice, &id).await, 409, "conflict");

    // Patch: digest delivery.
    let a = api
        .send(
            PATCH,
            &format!("/api/v1/me/destinations/{id}"),
            Some(&alice),
            json!({"delivery": {"mode": "digest", "batch_delta": 3600}, "verbose": false}),
        )
        .await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.body["delivery"]["mode"], "digest");
    assert_eq!(a.body["verbose"], false);
    assert_eq!(a.body["confirmed"], true);

    // Bob cannot touch alice's destination: it does not exist for him.
    let bob = api.token("bob", false);
    assert_error(
        &api.send(
            PATCH,
            &format!("/api/v1/me/destinations/{id}"),
            Some(&bob),
            json!({"verbose": true}),
        )
        .await,
        404,
        "not_found",
    );

    // One-click unsubscribe with the mail's List-Unsubscribe token.
    let secret = &api.state.settings.mail.context.unsubscribe_secret;
    let unsub = fmn_core::unsubscribe::make_token(secret, "alice", &id);
    let resp = api
        .http
        .post(format!("{}/api/v1/unsubscribe/{unsub}", api.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let me = api.get("/api/v1/me", &alice).await;
    assert_eq!(
        me.body["destinations"][0]["confirmed"], false,
        "unsubscribed"
    );
    let forged = fmn_core::unsubscribe::make_token(b"another secret", "alice", &id);
    assert_error(
        &api.call(POST, &format!("/api/v1/unsubscribe/{forged}"), None, None)
            .await,
        404,
        "not_found",
    );

    // Resending voids the earlier link; rejecting leaves the destination unconfirmed.
    let a = api.resend(&alice, &id).await;
    assert_eq!(a.status, 202, "{a:?}");
    let first = confirmation_token(&address, Duration::from_secs(5)).await;
    let a = api.resend(&alice, &id).await;
    assert_eq!(a.status, 202);
    let mut second = first.clone();
    for _ in 0..50 {
        second = confirmation_token(&address, Duration::from_secs(5)).await;
        if second != first {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_ne!(first, second);
    assert_error(&api.confirmation(&first).await, 410, "gone");
    let a = api.answer_confirmation(&second, false).await;
    assert_eq!(a.body["confirmed"], false, "{a:?}");
    assert_eq!(api.first_destination_confirmed(&alice).await, false);

    // Removing it takes it out of the filters that used it.
    let f = api
        .send(
            POST,
            "/api/v1/me/filters",
            Some(&alice),
            json!({"name": "mine", "destinations": [id]}),
        )
        .await;
    assert_eq!(f.status, 201, "{f:?}");
    let a = api
        .call(
            DELETE,
            &format!("/api/v1/me/destinations/{id}"),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(a.status, 204);
    let filter = api
        .call(
            GET,
            &format!("/api/v1/me/filters/{}", f.body["id"].as_str().unwrap()),
            Some(&alice),
            None,
        )
        .await;
    assert!(filter.body["destinations"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn an_irc_destination_gets_a_confirmation_job_on_the_irc_queue() {
    let (env, api) = start("webirc").await;
    let carol = api.token("carol", false);
    let a = api
        .send(
            POST,
            "/api/v1/me/destinations",
            Some(&carol),
            json!({"kind": "irc", "address": "carol_", "irc_colour": true}),
        )
        .await;
    assert_eq!(a.status, 201, "{a:?}");
    let jobs = env.drain(QueueName::Irc, 1, 10).await;
    assert_eq!(jobs.len(), 1);
    let job: Value = serde_json::from_str(jobs[0].body.as_deref().unwrap()).unwrap();
    assert_eq!(job["kind"], "confirmation");
    assert_eq!(job["nick"], "carol_");
    assert_eq!(job["user"], "carol");
    let url = job["accept_url"].as_str().unwrap();
    let token = url.rsplit('/').next().unwrap();
    let a = api.answer_confirmation(token, true).await;
    assert_eq!(a.body["confirmed"], true, "{a:?}");
    let me = api.get("/api/v1/me", &carol).await;
    assert_eq!(me.body["destinations"][0]["confirmed"], true);
    assert_eq!(me.body["destinations"][0]["irc_colour"], true);
    // deliver-irc reports a refused nick against this destination.
    assert_eq!(job["destination"], me.body["destinations"][0]["id"]);
}

/// A chat destination added without an address is the caller's own from FAS (the accounts the
/// sync stores): the first Matrix id or IRC nick, Matrix else `@name:fedora.im`; `/me` offers
/// them as `suggested_addresses`.
#[tokio::test]
async fn chat_destinations_default_to_the_callers_own_addresses_from_fas() {
    use fmn_core::directory::Account;
    use fmn_core::fact_changes::FactChange;
    let (env, api) = start("webown").await;
    fmn_aws::ownership_store::OwnershipStore::from_clients(&env.clients)
        .apply(&[FactChange::SetAccount {
            user: "dana".into(),
            account: Some(Account {
                emails: vec!["dana@example.org".into()],
                ircnicks: vec!["irc:/dana_".into(), "matrix://matrix.org/Dana".into()],
                ..Account::default()
            }),
        }])
        .await
        .unwrap();
    let dana = api.token("dana", false);
    let me = api.get("/api/v1/me", &dana).await;
    assert_eq!(
        me.body["suggested_addresses"],
        json!({"email": "dana@example.org", "irc": "dana_", "matrix": "@dana:matrix.org"})
    );
    for (kind, expected) in [("matrix", "@dana:matrix.org"), ("irc", "dana_")] {
        let a = api
            .send(
                POST,
                "/api/v1/me/destinations",
                Some(&dana),
                json!({ "kind": kind }),
            )
            .await;
        assert_eq!(a.status, 201, "{a:?}");
        assert_eq!(a.body["address"], expected);
    }
    // FAS does not know erin: Matrix is her name on fedora.im; IRC needs a nick.
    let erin = api.token("erin", false);
    let me = api.get("/api/v1/me", &erin).await;
    assert_eq!(
        me.body["suggested_addresses"],
        json!({"email": null, "irc": null, "matrix": "@erin:fedora.im"})
    );
    let a = api
        .send(
            POST,
            "/api/v1/me/destinations",
            Some(&erin),
            json!({"kind": "matrix", "address": " "}),
        )
        .await;
    assert_eq!(
        (a.status.as_u16(), &a.body["address"]),
        (201, &json!("@erin:fedora.im"))
    );
    let a = api
        .send(
            POST,
            "/api/v1/me/destinations",
            Some(&erin),
            json!({"kind": "irc"}),
        )
        .await;
    assert_eq!(a.status, 422, "{a:?}");
    assert_eq!(a.field(), "address");
    let a = api
        .send(
            POST,
            "/api/v1/me/destinations",
            Some(&erin),
            json!({"kind": "email"}),
        )
        .await;
    assert_eq!(a.status, 422, "an e-mail address is always given: {a:?}");
}

#[tokio::test]
async fn export_import_explain_and_recent() {
    let (env, api) = start("webexport").await;
    let ralph = api.token("ralph", false);
    let address = unique_address("ralph");
    let a = api.add_destination(&ralph, "email", &address).await;
    assert_eq!(a.status, 201);
    let token = confirmation_token(&address, Duration::from_secs(5)).await;
    api.answer_confirmation(&token, true).await;

    let export = api.get("/api/v1/me/export", &ralph).await;
    assert_eq!(export.status, 200);
    assert!(export.headers["content-disposition"]
        .to_str()
        .unwrap()
        .contains("attachment"));
    let mut doc = export.body.clone();
    // A new address and a forged "confirmed": it comes in unconfirmed, and gets a mail.
    let other = unique_address("ralph2");
    doc["destinations"].as_array_mut().unwrap().push(json!({
        "id": "email-2", "kind": "email", "address": other, "confirmed": true
    }));
    doc["bot"] = true.into(); // ignored: not the user's to change
    let a = api
        .send(PUT, "/api/v1/me/import", Some(&ralph), doc.clone())
        .await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.body["bot"], false);
    assert_eq!(
        a.body["destinations"][0]["confirmed"], true,
        "same address stays confirmed"
    );
    assert_eq!(a.body["destinations"][1]["confirmed"], false);
    assert!(a.body["version"].as_u64() > export.body["version"].as_u64());
    assert_eq!(mail_to(&other).await.len(), 1);

    // Explain a recent message (ralph's own upload: the "referring to me" filter holds, and
    // "not my actions" does not).
    let envelope = corpus_envelope("__init__.TestMediaWikiUpload");
    let msg_id = envelope["msg_id"]
        .as_str()
        .unwrap_or("2013-test-wiki-upload")
        .to_string();
    let mut envelope = envelope;
    envelope["msg_id"] = msg_id.clone().into();
    env_recent(&env)
        .put(
            &msg_id,
            envelope["topic"].as_str().unwrap(),
            &envelope.to_string(),
        )
        .await
        .unwrap();
    let a = api
        .get(&format!("/api/v1/me/explain/{msg_id}"), &ralph)
        .await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.body["user"], "ralph");
    assert_eq!(a.body["filters"].as_array().unwrap().len(), 2);
    assert!(a.body["filters"][1]["rules"].as_array().unwrap().len() >= 2);
    assert_error(
        &api.get("/api/v1/me/explain/no-such-message", &ralph).await,
        404,
        "not_found",
    );

    // Recent notifications: the activity feed, newest first.
    assert_eq!(api.get("/api/v1/me/recent", &ralph).await.body, json!([]));
    let me = api.get("/api/v1/me", &ralph).await.body;
    let job: fmn_core::jobs::DeliveryJob = serde_json::from_value(json!({
        "job_id": "j1", "user": "ralph", "filter_id": "filter-2", "filter_name": "Events referring to me",
        "reason": "test", "destination": me["destinations"][0],
        "notification": {"msg_id": msg_id, "topic": "org.fedoraproject.prod.wiki.upload.complete",
                         "app": "wiki", "title": "wiki.upload.complete"}
    }))
    .unwrap();
    env_recent(&env).record_activity(&[job]).await.unwrap();
    let a = api.get("/api/v1/me/recent", &ralph).await;
    assert_eq!(a.body.as_array().unwrap().len(), 1, "{a:?}");
    assert_eq!(a.body[0]["msg_id"], msg_id.as_str());
    let time = a.body[0]["time"].as_f64().unwrap();
    assert!((time - now_secs() as f64).abs() < 600.0, "{time}");
}

fn now_secs() -> u64 {
    fmn_aws::dynamo::now_secs()
}

fn env_recent(env: &TestEnv) -> fmn_aws::recent::RecentMessages {
    fmn_aws::recent::RecentMessages::from_clients(&env.clients)
}

#[tokio::test]
async fn admins_manage_accounts_and_bot_preferences() {
    let (_env, api) = start("webadmin").await;
    let admin = api.token("kalev", true);
    let person = api.token("dana", false);
    api.get("/api/v1/me", &person).await;
    let me = api.get("/api/v1/me", &admin).await;
    assert_eq!(me.body["admin"], true);

    let list_address = unique_address("devel-list");
    let a = api
        .send(
            POST,
            "/api/v1/admin/users",
            Some(&admin),
            json!({"name": "devel-list", "bot": true, "email": list_address}),
        )
        .await;
    assert_eq!(a.status, 201, "{a:?}");
    assert_eq!(
        a.body,
        json!({"name": "devel-list", "enabled": true, "bot": true, "destinations": 1, "filters": 2})
    );
    assert_eq!(
        mail_to(&list_address).await.len(),
        1,
        "the list address must confirm too"
    );
    // Bots share the FAS name space: whoever holds the FAS name `devel-list` does not get the
    // bot's preferences, nor its activity, nor a way to add destinations.
    let squatter = api.token("devel-list", false);
    for (method, path, body) in [
        (GET, "/api/v1/me", None),
        (GET, "/api/v1/me/recent", None),
        (GET, "/api/v1/me/export", None),
        (
            POST,
            "/api/v1/me/destinations",
            Some(json!({"kind": "irc", "address": "squatter"})),
        ),
    ] {
        assert_error(
            &api.call(method, path, Some(&squatter), body.as_ref()).await,
            403,
            "forbidden",
        );
    }
    assert_error(
        &api.send(
            POST,
            "/api/v1/admin/users",
            Some(&admin),
            json!({"name": "devel-list"}),
        )
        .await,
        409,
        "conflict",
    );
    let a = api
        .send(
            POST,
            "/api/v1/admin/users",
            Some(&admin),
            json!({"name": "Bad Name"}),
        )
        .await;
    assert_error(&a, 422, "invalid");
    assert_eq!(a.field(), "name");
    let a = api
        .send(
            POST,
            "/api/v1/admin/users",
            Some(&admin),
            json!({"name": "x", "email": "nope"}),
        )
        .await;
    assert_eq!(a.field(), "email");

    let a = api.get("/api/v1/admin/users", &admin).await;
    let names: Vec<&str> = a
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["dana", "devel-list", "kalev"]);

    let a = api
        .call(POST, "/api/v1/admin/users/dana/disable", Some(&admin), None)
        .await;
    assert_eq!(a.body["enabled"], false, "{a:?}");
    let a = api
        .call(POST, "/api/v1/admin/users/dana/enable", Some(&admin), None)
        .await;
    assert_eq!(a.body["enabled"], true);
    assert_error(
        &api.call(
            POST,
            "/api/v1/admin/users/nobody/disable",
            Some(&admin),
            None,
        )
        .await,
        404,
        "not_found",
    );

    // Bot preferences: readable and replaceable; a person's are not the admin's to edit.
    let a = api
        .get("/api/v1/admin/users/devel-list/prefs", &admin)
        .await;
    assert_eq!(a.status, 200);
    let mut doc = a.body.clone();
    doc["filters"] = json!([{"id": "f1", "name": "kernel", "destinations": ["email-1"],
                             "rules": [{"kind": "package", "packages": ["kernel"]}]}]);
    let a = api
        .send(
            PUT,
            "/api/v1/admin/users/devel-list/prefs",
            Some(&admin),
            doc.clone(),
        )
        .await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.body["filters"].as_array().unwrap().len(), 1);
    assert_eq!(
        a.body["destinations"][0]["confirmed"], false,
        "still needs its confirmation"
    );
    assert_error(
        &api.get("/api/v1/admin/users/dana/prefs", &admin).await,
        403,
        "forbidden",
    );
    assert_error(
        &api.send(
            PUT,
            "/api/v1/admin/users/dana/prefs",
            Some(&admin),
            doc.clone(),
        )
        .await,
        403,
        "forbidden",
    );

    // Non-admins: 403 everywhere under /admin.
    for (method, path) in [
        (GET, "/api/v1/admin/users"),
        (POST, "/api/v1/admin/users/dana/disable"),
        (GET, "/api/v1/admin/users/devel-list/prefs"),
    ] {
        assert_error(
            &api.call(method, path, Some(&person), None).await,
            403,
            "forbidden",
        );
    }
}

#[tokio::test]
async fn a_real_issuer_is_trusted_through_its_jwks_and_dev_login_is_off() {
    let env = TestEnv::new("weboidc").await;
    let (issuer, key) = fmn_integration_tests::web::fake_issuer().await;
    let settings = fmn_web_api::settings::Settings::from_lookup(
        |k| match k {
            "FMN_DEV_AUTH" => Some("false".into()),
            "FMN_OIDC_ISSUER" => Some(issuer.clone()),
            "FMN_OIDC_USERNAME_CLAIM" => Some("nickname".into()),
            "FMN_OIDC_GROUPS_CLAIM" => Some("roles".into()),
            "FMN_ADMIN_GROUP" => Some("fmn-admins".into()),
            "FMN_OIDC_AUDIENCE" => Some("fmn".into()),
            _ => None,
        },
        false,
        fmn_aws::mail::MailSettings::from_env().unwrap(),
    )
    .unwrap();
    let api = WebApi::start_with(&env, settings).await;
    assert!(api.state.dev.is_none());

    let a = api.call(GET, "/api/v1/config", None, None).await;
    assert_eq!(
        (a.body["auth"].as_str(), a.body["issuer"].as_str()),
        (Some("oidc"), Some(issuer.as_str()))
    );
    assert_error(
        &api.send(POST, "/api/v1/dev/login", None, json!({"username": "eve"}))
            .await,
        404,
        "not_found",
    );

    let now = fmn_aws::dynamo::now_secs();
    let token = key.sign(&json!({
        "iss": issuer, "aud": "fmn", "exp": now + 600, "nickname": "frank", "roles": ["fmn-admins"]
    }));
    // The issuer signs for its other clients too: their tokens are not ours.
    for foreign in [
        json!({"iss": issuer, "aud": "another-client", "exp": now + 600, "nickname": "frank"}),
        json!({"iss": issuer, "exp": now + 600, "nickname": "frank"}),
        json!({"iss": issuer, "aud": "fmn", "azp": "another-client", "exp": now + 600, "nickname": "frank"}),
    ] {
        assert_error(
            &api.get("/api/v1/me", &key.sign(&foreign)).await,
            401,
            "unauthenticated",
        );
    }
    let me = api.get("/api/v1/me", &token).await;
    assert_eq!(me.status, 200, "{me:?}");
    assert_eq!(
        (me.body["name"].as_str(), me.body["admin"].as_bool()),
        (Some("frank"), Some(true))
    );
    assert_eq!(api.get("/api/v1/admin/users", &token).await.status, 200);
    // The configured claims are the ones read: `preferred_username` alone is not enough.
    let other_claims = key.sign(
        &json!({"iss": issuer, "aud": "fmn", "exp": now + 600, "preferred_username": "frank"}),
    );
    assert_error(
        &api.get("/api/v1/me", &other_claims).await,
        401,
        "unauthenticated",
    );
    // A key the issuer does not publish.
    let stranger = DevIssuer::generate(issuer.clone(), "issuer-key-2");
    let forged =
        stranger.sign(&json!({"iss": issuer, "aud": "fmn", "exp": now + 600, "nickname": "frank"}));
    assert_error(
        &api.get("/api/v1/me", &forged).await,
        401,
        "unauthenticated",
    );
}

#[tokio::test]
async fn confirmations_per_user_and_hour_are_limited() {
    let env = TestEnv::new("webrate").await;
    // The allowance is per clock hour: a clock halfway through one, so the test never
    // straddles two.
    let now = now_secs();
    let clock = fmn_aws::clock::Clock::fixed(now - now % 3600 + 1800);
    // Only the user's allowance is tested here: the address's is out of the way.
    let mut settings = dev_settings();
    settings.confirmations.per_address_day = 1000;
    let api = WebApi::start_with_clock(&env, settings, clock).await;
    let eve = api.token("eve", false);
    let a = api.add_destination(&eve, "irc", "victim").await;
    assert_eq!(a.status, 201, "{a:?}");
    let max = fmn_aws::confirmations::MAX_PER_HOUR;
    for _ in 1..max {
        let a = api.resend(&eve, "irc-1").await;
        assert_eq!(a.status, 202, "{a:?}");
    }
    assert_error(&api.resend(&eve, "irc-1").await, 429, "too_many");
    let before = api.get("/api/v1/me", &eve).await.body;
    let a = api.add_destination(&eve, "irc", "victim2").await;
    assert_error(&a, 429, "too_many");
    let after = api.get("/api/v1/me", &eve).await.body;
    assert_eq!(before, after, "a refused confirmation adds nothing");
    // Other users are not affected.
    let frank = api.token("frank", false);
    let a = api.add_destination(&frank, "irc", "frank").await;
    assert_eq!(a.status, 201, "{a:?}");
}

#[tokio::test]
async fn confirmations_per_address_and_for_everybody_are_limited() {
    let env = TestEnv::new("webrateall").await;
    // Halfway through an hour in the middle of a UTC day, so no window turns meanwhile.
    let now = now_secs();
    let start = now - now % 86_400 + 12 * 3600 + 1800;
    let clock = fmn_aws::clock::Clock::fixed(start);
    let mut settings = dev_settings();
    settings.confirmations.per_address_day = 2;
    settings.confirmations.global_hour = 5;
    let api = WebApi::start_with_clock(&env, settings, clock.clone()).await;

    // Many accounts, one nick (in any case): the third confirmation today is refused.
    for (user, nick) in [("u1", "victim"), ("u2", "Victim")] {
        let a = api
            .add_destination(&api.token(user, false), "irc", nick)
            .await;
        assert_eq!(a.status, 201, "{a:?}");
    }
    let u3 = api.token("u3", false);
    let before = api.get("/api/v1/me", &u3).await.body;
    let a = api.add_destination(&u3, "irc", "VICTIM").await;
    assert_error(&a, 429, "too_many");
    assert!(
        a.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("address"),
        "{a:?}"
    );
    assert_eq!(
        api.get("/api/v1/me", &u3).await.body,
        before,
        "nothing written"
    );
    assert_eq!(env.drain(QueueName::Irc, 2, 10).await.len(), 2);

    // Everybody's allowance: 2 used; 3 more go, the sixth of the hour is refused.
    for nick in ["a_nick", "b_nick", "c_nick"] {
        let a = api.add_destination(&u3, "irc", nick).await;
        assert_eq!(a.status, 201, "{a:?}");
    }
    let u4 = api.token("u4", false);
    let before = api.get("/api/v1/me", &u4).await.body;
    let a = api.add_destination(&u4, "irc", "d_nick").await;
    assert_error(&a, 429, "too_many");
    assert!(
        a.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("service"),
        "{a:?}"
    );
    assert_eq!(
        api.get("/api/v1/me", &u4).await.body,
        before,
        "nothing written"
    );

    // The refusal took back the address's count: next hour `d_nick` still has both of today's.
    clock.set(start + 3600);
    for user in ["u5", "u6"] {
        let a = api
            .add_destination(&api.token(user, false), "irc", "d_nick")
            .await;
        assert_eq!(a.status, 201, "{user}: {a:?}");
    }
    let a = api.add_destination(&u4, "irc", "d_nick").await;
    assert_error(&a, 429, "too_many");
}

#[tokio::test]
async fn service_nicks_and_irc_digests_are_refused_with_their_field() {
    let (_env, api) = start("webircrules").await;
    let gil = api.token("gil", false);
    for nick in ["NickServ", "chanserv", "MemoServ", "OperServ", "Global"] {
        let a = api.add_destination(&gil, "irc", nick).await;
        assert_error(&a, 422, "invalid");
        assert_eq!(a.field(), "address", "{nick}: {a:?}");
    }

    // An IRC destination cannot be a digest: digests are mails.
    let digest = json!({"mode": "digest", "batch_delta": 3600});
    let a = api
        .send(
            POST,
            "/api/v1/me/destinations",
            Some(&gil),
            json!({"kind": "irc", "address": "gil", "delivery": digest}),
        )
        .await;
    assert_error(&a, 422, "invalid");
    assert_eq!(a.field(), "delivery", "{a:?}");
    assert!(
        a.body["error"]["message"].as_str().unwrap().contains("IRC"),
        "{a:?}"
    );
    // Nor become one.
    let a = api.add_destination(&gil, "irc", "gil").await;
    assert_eq!(a.status, 201, "{a:?}");
    let a = api
        .send(
            PATCH,
            "/api/v1/me/destinations/irc-1",
            Some(&gil),
            json!({"delivery": digest}),
        )
        .await;
    assert_error(&a, 422, "invalid");
    assert_eq!(a.field(), "delivery", "{a:?}");
    // Nor be imported as one.
    let mut doc = api.get("/api/v1/me/export", &gil).await.body;
    doc["destinations"][0]["delivery"] = digest.clone();
    let a = api.send(PUT, "/api/v1/me/import", Some(&gil), doc).await;
    assert_error(&a, 422, "invalid");
    assert_eq!(a.field(), "destinations[0].delivery", "{a:?}");
    let me = api.get("/api/v1/me", &gil).await;
    assert_eq!(me.body["destinations"][0]["delivery"]["mode"], "immediate");
    // An e-mail digest is fine.
    let a = api
        .send(
            POST,
            "/api/v1/me/destinations",
            Some(&gil),
            json!({"kind": "email", "address": unique_address("gil"), "delivery": digest}),
        )
        .await;
    assert_eq!(a.status, 201, "{a:?}");
}

#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    let (_env, api) = start("webheaders").await;
    let hal = api.token("hal", false);
    let bad = json!({"kind": "irc", "address": "NickServ"});
    for (method, path, token, body, status) in [
        (GET, "/", None, None, 200),
        (GET, "/confirm/sometoken", None, None, 200),
        (GET, "/app.js", None, None, 200),
        (GET, "/app.css", None, None, 200),
        (GET, "/healthz", None, None, 200),
        (GET, "/api/v1/config", None, None, 200),
        (GET, "/api/v1/openapi.json", None, None, 200),
        (GET, "/api/v1/me", None, None, 401),
        (GET, "/api/v1/me", Some(&hal), None, 200),
        (POST, "/api/v1/me/destinations", Some(&hal), Some(&bad), 422),
        (GET, "/api/v1/no-such-thing", None, None, 404),
        (GET, "/no-such-page", None, None, 404),
    ] {
        let a = api
            .call(method.clone(), path, token.map(String::as_str), body)
            .await;
        assert_eq!(a.status.as_u16(), status, "{method} {path}: {a:?}");
        let header = |name: &str| {
            a.headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string()
        };
        let csp = header("content-security-policy");
        for directive in [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "connect-src 'self'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
        ] {
            assert!(
                csp.contains(directive),
                "{path}: {directive} not in {csp:?}"
            );
        }
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(header("x-frame-options"), "DENY", "{path}");
        assert_eq!(header("referrer-policy"), "no-referrer", "{path}");
    }
}

#[tokio::test]
async fn destination_ids_are_never_reused_so_old_unsubscribe_links_reach_nothing() {
    let (_env, api) = start("webids").await;
    let ivy = api.token("ivy", false);
    let a = api
        .add_destination(&ivy, "email", &unique_address("ivy"))
        .await;
    assert_eq!(a.body["id"], "email-1", "{a:?}");
    let secret = &api.state.settings.mail.context.unsubscribe_secret;
    let old_link = fmn_core::unsubscribe::make_token(secret, "ivy", "email-1");
    let a = api
        .call(DELETE, "/api/v1/me/destinations/email-1", Some(&ivy), None)
        .await;
    assert_eq!(a.status, 204, "{a:?}");
    let a = api
        .add_destination(&ivy, "email", &unique_address("ivy2"))
        .await;
    assert_eq!(
        a.body["id"], "email-2",
        "a new destination, a new id: {a:?}"
    );
    assert_error(
        &api.call(POST, &format!("/api/v1/unsubscribe/{old_link}"), None, None)
            .await,
        404,
        "not_found",
    );
}

#[tokio::test]
async fn removing_a_destination_purges_its_pending_digest_items() {
    use fmn_core::jobs::Notification;
    use fmn_core::meta::Severity;
    let (env, api) = start("webpurge").await;
    let jo = api.token("jo", false);
    let address = unique_address("jo");
    let a = api
        .send(
            POST,
            "/api/v1/me/destinations",
            Some(&jo),
            json!({"kind": "email", "address": address,
                   "delivery": {"mode": "digest", "batch_delta": 3600}}),
        )
        .await;
    assert_eq!(a.status, 201, "{a:?}");
    let destination: fmn_core::prefs::Destination = serde_json::from_value(a.body).unwrap();
    // Two items wait in its digest, as the match function would have added them.
    let store = fmn_aws::digest_store::DigestStore::from_clients(&env.clients);
    for msg in ["m1", "m2"] {
        let notification = Notification {
            msg_id: msg.into(),
            topic: "org.fedoraproject.prod.bodhi.update.comment".into(),
            app: "bodhi".into(),
            agent: None,
            title: "bodhi.update.comment".into(),
            subtitle: None,
            link: None,
            usernames: vec![],
            packages: vec![],
            timestamp: Some(1_700_000_000.0),
            severity: Severity::default(),
            origin: Default::default(),
            long_text: None,
            usernames_total: None,
            packages_total: None,
        };
        let job = fmn_integration_tests::job_for("jo", destination.clone(), notification);
        store
            .add(&job, None, fmn_aws::dynamo::now_secs())
            .await
            .unwrap();
    }
    let key = fmn_core::jobs::digest_key("jo", &destination.id);
    assert_eq!(store.items(&key).await.unwrap().len(), 2);
    assert!(store.marker(&key).await.unwrap().is_some());

    let a = api
        .call(
            DELETE,
            &format!("/api/v1/me/destinations/{}", destination.id),
            Some(&jo),
            None,
        )
        .await;
    assert_eq!(a.status, 204, "{a:?}");
    assert!(store.items(&key).await.unwrap().is_empty(), "items purged");
    assert!(store.marker(&key).await.unwrap().is_none(), "marker gone");
}

#[tokio::test]
async fn a_destination_is_paused_and_resumed_without_unsubscribing() {
    let (env, api) = start("webpause").await;
    let dana = api.token("dana", false);
    let a = api
        .send(
            POST,
            "/api/v1/me/destinations",
            Some(&dana),
            json!({"kind": "irc", "address": "dana_"}),
        )
        .await;
    assert_eq!(a.status, 201, "{a:?}");
    let id = a.body["id"].as_str().unwrap().to_string();
    let jobs = env.drain(QueueName::Irc, 1, 10).await;
    let job: Value = serde_json::from_str(jobs[0].body.as_deref().unwrap()).unwrap();
    let token = job["accept_url"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap();
    assert_eq!(api.answer_confirmation(token, true).await.status, 200);
    let path = format!("/api/v1/me/destinations/{id}");
    let a = api
        .send(PATCH, &path, Some(&dana), json!({"paused": true}))
        .await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.body["paused"], true);
    assert_eq!(a.body["confirmed"], true, "still subscribed");
    // A health resume does not undo the owner's pause.
    let a = api
        .send(PATCH, &path, Some(&dana), json!({"resume": true}))
        .await;
    assert_eq!(a.body["paused"], true, "{a:?}");
    let a = api
        .send(PATCH, &path, Some(&dana), json!({"paused": false}))
        .await;
    assert_eq!(a.status, 200, "{a:?}");
    assert!(a.body.get("paused").is_none(), "{a:?}");
    assert_error(
        &api.send(PATCH, &path, Some(&dana), json!({"paused": "yes"}))
            .await,
        422,
        "invalid",
    );
}

#[tokio::test]
async fn filters_are_reset_to_the_defaults_keeping_destinations() {
    let (_env, api) = start("webreset").await;
    let erin = api.token("erin", false);
    let a = api
        .send(
            POST,
            "/api/v1/me/filters",
            Some(&erin),
            json!({"name": "koji failures", "enabled": true, "oneshot": false, "destinations": [],
                   "rules": [{"kind": "catalogue", "entry": "koji_build_failed"}]}),
        )
        .await;
    assert_eq!(a.status, 201, "{a:?}");
    let a = api
        .send(POST, "/api/v1/me/reset", Some(&erin), json!({}))
        .await;
    assert_eq!(a.status, 200, "{a:?}");
    let names: Vec<&str> = a.body["filters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["Events on packages I maintain", "Events referring to me"]
    );
}

/// A notification in the activity log, as the match function records it.
fn feed_job(
    user: &str,
    me: &Value,
    job_id: &str,
    msg_id: &str,
    title: &str,
) -> fmn_core::jobs::DeliveryJob {
    serde_json::from_value(json!({
        "job_id": job_id, "user": user, "filter_id": "filter-1", "filter_name": "Mine & yours",
        "reason": "test", "destination": me["destinations"][0],
        "notification": {"msg_id": msg_id, "topic": "org.fedoraproject.prod.buildsys.build.state.change",
                         "app": "koji", "title": title, "subtitle": format!("{title} <failed>"),
                         "link": "https://koji.fedoraproject.org/koji/taskinfo?taskID=1&x=2"}
    }))
    .unwrap()
}

/// `GET path` without a bearer token, with `If-None-Match` when given: status, headers, body.
async fn get_raw(
    api: &WebApi,
    path: &str,
    token: Option<&str>,
    if_none_match: Option<&str>,
) -> (u16, reqwest::header::HeaderMap, String) {
    let mut req = api.http.get(format!("{}{path}", api.base));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(tag) = if_none_match {
        req = req.header("If-None-Match", tag);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, headers, resp.text().await.unwrap())
}

const ATOM_NS: &str = "http://www.w3.org/2005/Atom";

fn atom_child<'a, 'i>(n: roxmltree::Node<'a, 'i>, name: &str) -> roxmltree::Node<'a, 'i> {
    n.children()
        .find(|c| c.has_tag_name((ATOM_NS, name)))
        .unwrap_or_else(|| panic!("no <{name}>"))
}

/// The Atom entries of `xml` (parsed strictly): id, title, updated, link, summary of each.
fn atom_entries(xml: &str) -> Vec<[String; 5]> {
    let doc = roxmltree::Document::parse(xml).expect("the feed is well-formed XML");
    let feed = doc.root_element();
    assert_eq!(feed.tag_name().name(), "feed");
    assert_eq!(feed.tag_name().namespace(), Some(ATOM_NS));
    // RFC 4287: a feed has an id, a title and an updated date.
    for name in ["id", "title", "updated"] {
        assert!(
            !atom_child(feed, name).text().unwrap_or("").is_empty(),
            "feed {name}"
        );
    }
    feed.children()
        .filter(|c| c.has_tag_name((ATOM_NS, "entry")))
        .map(|e| {
            let text = |name: &str| atom_child(e, name).text().unwrap_or("").to_string();
            [
                text("id"),
                text("title"),
                text("updated"),
                atom_child(e, "link")
                    .attribute("href")
                    .unwrap_or("")
                    .to_string(),
                text("summary"),
            ]
        })
        .collect()
}

#[tokio::test]
async fn the_atom_feed_and_live_updates() {
    let (env, api) = start("webfeed").await;
    let user = "feedfan";
    let token = api.token(user, false);
    let address = unique_address("feed");
    assert_eq!(
        api.add_destination(&token, "email", &address).await.status,
        201
    );
    let me = api.get("/api/v1/me", &token).await.body;

    // No feed before one is asked for; no sign-in gets one.
    let made = api.call(POST, "/api/v1/me/feed-token", None, None).await;
    assert_error(&made, 401, "unauthenticated");
    let made = api
        .call(POST, "/api/v1/me/feed-token", Some(&token), None)
        .await;
    assert_eq!(made.status, 200, "{made:?}");
    let feed_token = made.body["token"].as_str().unwrap().to_string();
    assert!(feed_token.len() >= 22, "128 bits at least: {feed_token}");
    let url = made.body["url"].as_str().unwrap();
    assert!(url.ends_with(&format!("/feed/{feed_token}.atom")), "{url}");
    let path = format!("/feed/{feed_token}.atom");

    // The feed is empty but valid, served without a bearer token.
    let (status, headers, xml) = get_raw(&api, &path, None, None).await;
    assert_eq!(status, 200, "{xml}");
    assert_eq!(headers["content-type"], "application/atom+xml");
    assert!(atom_entries(&xml).is_empty());

    // Live updates: the first answer gives an ETag, asking again with it is 304.
    let (status, headers, body) = get_raw(&api, "/api/v1/me/latest", Some(&token), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"items": []})
    );
    let etag = headers["etag"].to_str().unwrap().to_string();
    let (status, headers, body) =
        get_raw(&api, "/api/v1/me/latest", Some(&token), Some(&etag)).await;
    assert_eq!(status, 304, "{body}");
    assert_eq!(headers["etag"].to_str().unwrap(), etag);
    assert!(body.is_empty());

    // A notification is queued for the user: the feed shows it, the ETag changes.
    let job = feed_job(user, &me, "feedjob1", "2026-feed-1", "koji build");
    env_recent(&env).record_activity(&[job]).await.unwrap();
    let (status, headers, body) =
        get_raw(&api, "/api/v1/me/latest", Some(&token), Some(&etag)).await;
    assert_eq!(status, 200, "{body}");
    let new_etag = headers["etag"].to_str().unwrap().to_string();
    assert_ne!(new_etag, etag);
    let latest: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(latest["items"][0]["msg_id"], "2026-feed-1");
    let (status, _, _) = get_raw(&api, "/api/v1/me/latest", Some(&token), Some(&new_etag)).await;
    assert_eq!(status, 304);

    let (status, headers, xml) = get_raw(&api, &path, None, None).await;
    assert_eq!(status, 200);
    let entries = atom_entries(&xml);
    assert_eq!(entries.len(), 1, "{xml}");
    let [id, title, updated, link, summary] = &entries[0];
    assert_eq!(id, "urn:fmn:notification:feedjob1");
    assert_eq!(title, "koji build <failed>");
    assert!(updated.ends_with('Z') && updated.len() == 20, "{updated}");
    assert_eq!(
        link,
        "https://koji.fedoraproject.org/koji/taskinfo?taskID=1&x=2"
    );
    assert!(summary.contains("filter “Mine & yours”"), "{summary}");
    assert!(summary.contains(&address), "{summary}");
    // A feed reader's conditional request.
    let feed_etag = headers["etag"].to_str().unwrap().to_string();
    assert_eq!(get_raw(&api, &path, None, Some(&feed_etag)).await.0, 304);

    // Rotating: the old URL is gone, the new one serves the same feed.
    let made = api
        .call(POST, "/api/v1/me/feed-token", Some(&token), None)
        .await;
    assert_eq!(made.status, 200, "{made:?}");
    let rotated = made.body["token"].as_str().unwrap();
    assert_ne!(rotated, feed_token);
    let (status, _, body) = get_raw(&api, &path, None, None).await;
    assert_eq!(status, 404, "{body}");
    let (status, _, xml) = get_raw(&api, &format!("/feed/{rotated}.atom"), None, None).await;
    assert_eq!(status, 200);
    assert_eq!(atom_entries(&xml).len(), 1);
    // Nothing else opens a feed.
    for bad in [
        "/feed/nothing.atom",
        &format!("/feed/{rotated}"),
        "/feed/%00.atom",
    ] {
        assert_eq!(get_raw(&api, bad, None, None).await.0, 404, "{bad}");
    }
}
