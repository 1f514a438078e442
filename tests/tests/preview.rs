//! Filter previews through the real web-api on the emulators, over messages the real match
//! function stored: only the partitions of the filter's topics are read, the matches are the
//! real rules' and the rate says when it is sampled. Prints the requests and time per preview.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use fmn_aws::sqs::{send_all, OutgoingMessage};
use fmn_aws::{FunctionName, QueueName};
use fmn_core::rules::Glob;
use fmn_integration_tests::web::WebApi;
use fmn_integration_tests::{
    import_sample_ownership, repo_root, start_function, wait_for_records, TestEnv,
};
use reqwest::Method;
use serde_json::{json, Value};

/// The production messages of the fedmsg corpus, each with a unique id.
fn production_corpus() -> Vec<Value> {
    let text = std::fs::read_to_string(repo_root().join("tests/data/fedmsg-examples.jsonl"))
        .expect("the corpus is in the repository");
    text.lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("corpus lines are JSON"))
        .map(|v| v["message"].clone())
        .filter(|m| m["topic"].as_str().is_some_and(|t| t.contains(".prod.")))
        .enumerate()
        .map(|(i, mut m)| {
            m["msg_id"] = format!("preview-{i:03}").into();
            m
        })
        .collect()
}

async fn preview(api: &WebApi, token: &str, rules: Value) -> (u16, Value, std::time::Duration) {
    let started = Instant::now();
    let a = api
        .send(
            Method::POST,
            "/api/v1/me/filters/preview",
            Some(token),
            json!({ "rules": rules }),
        )
        .await;
    (a.status.as_u16(), a.body, started.elapsed())
}

fn report(what: &str, body: &Value, took: std::time::Duration) {
    println!(
        "preview {what}: mode {}, {} partitions, {} DynamoDB requests, {} read, {} matched, {:?} ({})",
        body["mode"], body["partitions"], body["requests"], body["read"], body["matched"], took,
        body["summary"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn previews_read_only_their_partitions_and_run_the_real_rules() {
    let env = TestEnv::new("preview").await;
    import_sample_ownership(&env.clients).await;
    let handler = Arc::new(fmn_match::MatchHandler::new(&env.clients).await.unwrap());
    let (stop, stats) = start_function(&env, FunctionName::Match, handler);

    let corpus = production_corpus();
    let outgoing: Vec<OutgoingMessage> = corpus
        .iter()
        .map(|m| OutgoingMessage::new(m["msg_id"].as_str().unwrap(), m.to_string()))
        .collect();
    send_all(
        &env.clients.sqs,
        env.queue_url(QueueName::Ingest),
        &outgoing,
    )
    .await
    .unwrap();
    wait_for_records(&stats, corpus.len() as u64).await;
    stop.cancel();

    let api = WebApi::start(&env).await;
    let kalev = api.token("kalev", false);

    // A topic rule: only the partitions of the bodhi topics stored today are read, and every
    // stored bodhi message matches.
    let glob = "org.fedoraproject.prod.bodhi.*";
    let (status, body, took) =
        preview(&api, &kalev, json!([{"kind": "topic", "glob": glob}])).await;
    report("topic glob", &body, took);
    assert_eq!(status, 200, "{body}");
    let g = Glob::new(glob).unwrap();
    let bodhi: Vec<&Value> = corpus
        .iter()
        .filter(|m| g.matches(m["topic"].as_str().unwrap()))
        .collect();
    let bodhi_topics: BTreeSet<&str> = bodhi.iter().map(|m| m["topic"].as_str().unwrap()).collect();
    assert_eq!(body["mode"], "topics");
    assert_eq!(
        body["partitions"],
        bodhi_topics.len(),
        "one partition a topic (one day)"
    );
    assert_eq!(
        body["requests"],
        bodhi_topics.len() + 1,
        "the topic lists, then each partition"
    );
    assert_eq!(body["read"], bodhi.len(), "nothing but bodhi was read");
    assert_eq!(body["matched"], bodhi.len());
    assert_eq!(body["sampled"], false);
    assert!(
        body["per_day"].as_f64().unwrap() >= bodhi.len() as f64,
        "{body}"
    );
    let listed = body["matches"].as_array().unwrap();
    assert_eq!(listed.len(), bodhi.len().min(20));
    assert!(listed
        .iter()
        .all(|m| m["topic"].as_str().unwrap().contains(".bodhi.") && m["title"].is_string()));
    let times: Vec<f64> = listed.iter().map(|m| m["time"].as_f64().unwrap()).collect();
    assert!(
        times.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {times:?}"
    );

    // A catalogue entry narrows further by its field tests (the real matcher runs).
    let (status, body, took) = preview(
        &api,
        &kalev,
        json!([{"kind": "catalogue", "entry": "bodhi_update_comment"}]),
    )
    .await;
    report("catalogue entry", &body, took);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["mode"], "topics");
    let comments = bodhi
        .iter()
        .filter(|m| {
            m["topic"]
                .as_str()
                .unwrap()
                .ends_with(".bodhi.update.comment")
        })
        .count();
    assert_eq!(body["matched"], comments, "{body}");
    assert!(body["partitions"].as_u64().unwrap() <= 2, "{body}");

    // "My packages" pins no topic: the newest messages of the day are a sample, and every
    // match is about kalev's (gnome-sig's) packages.
    let (status, body, took) = preview(&api, &kalev, json!([{"kind": "user-packages"}])).await;
    report("my packages", &body, took);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["mode"], "sample");
    assert_eq!(body["requests"], 2, "the topic lists and one day");
    assert_eq!(body["read"], 100, "the sample's bound");
    assert_eq!(body["sampled"], true);
    assert!(
        body["summary"].as_str().unwrap().contains("sample"),
        "{body}"
    );
    for m in body["matches"].as_array().unwrap() {
        assert_eq!(m["about_your_packages"], true, "{m}");
    }
    assert_eq!(body["per_day"], body["about_your_packages_per_day"]);

    // Negating the bodhi topics on top of the glob leaves nothing to read.
    let (status, body, _) = preview(
        &api,
        &kalev,
        json!([{"kind": "topic", "glob": glob}, {"kind": "topic", "glob": "*.bodhi.*", "negated": true}]),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["mode"].as_str(), body["matched"].as_u64()),
        (Some("nothing"), Some(0))
    );
    assert_eq!(body["requests"], 1);

    // No rules: nothing; a bad rule: its field; no token: 401.
    let (status, body, _) = preview(&api, &kalev, json!([])).await;
    assert_eq!((status, body["mode"].as_str()), (200, Some("nothing")));
    let (status, body, _) = preview(&api, &kalev, json!([{"kind": "regex", "pattern": "("}])).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"]["field"]
            .as_str()
            .unwrap()
            .starts_with("rules[0]"),
        "{body}"
    );
    let a = api
        .call(
            Method::POST,
            "/api/v1/me/filters/preview",
            None,
            Some(&json!({"rules": []})),
        )
        .await;
    assert_eq!(a.status, 401);
}
