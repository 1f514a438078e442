//! The fault suite's stage (`tests/tests/faults.rs`): followers of a load topic, a probe that
//! proves the whole pipeline runs before the load is published, an HTTP stand-in that answers
//! for an AWS service the way it does when it throttles or pauses, and the ledger: every
//! published message accounted for, per follower, as mail recorded by moto or as a record in a
//! dead-letter queue.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fmn_aws::prefs_store::PrefsStore;
use fmn_aws::{AwsClients, QueueName};
use fmn_core::prefs::{Destination, Filter, UserPrefs};
use fmn_core::rules::{Rule, RuleKind};

use crate::mail::sent_mail;

/// What the followers follow.
pub const LOAD_TOPIC: &str = "org.fedoraproject.prod.fmnfault.load";
/// What only the prober follows: published until it arrives, so the load is never published
/// to a bridge that has not subscribed yet (fedmsg drops what nobody listens to).
pub const PROBE_TOPIC: &str = "org.fedoraproject.prod.fmnfault.probe";
/// Followers of [`LOAD_TOPIC`]: every message is expected once in each one's mailbox.
pub const FOLLOWERS: usize = 2;

/// The users of one scenario: their mail addresses are unique to it (moto's log is shared).
pub struct Audience {
    pub followers: Vec<String>,
    pub prober: String,
}

fn follower(name: &str, address: &str, topic: &str) -> UserPrefs {
    let mut u = UserPrefs::new(name);
    let dest = Destination::email("email-1", address).confirmed(true);
    u.destinations = vec![dest.clone()];
    u.filters = vec![Filter::new(
        u.next_id("filter"),
        "fault suite".into(),
        vec![dest.id],
        vec![Rule::new(RuleKind::Topic { glob: topic.into() })],
    )];
    u
}

/// Creates the followers and the prober through the real preferences store.
pub async fn create_audience(clients: &AwsClients) -> Audience {
    let tag = clients.names.prefix().to_string();
    let store = PrefsStore::from_clients(clients);
    let mut followers = Vec::new();
    for i in 0..FOLLOWERS {
        let address = format!("follower{i}-{tag}@example.org");
        store
            .create(&follower(&format!("follower{i}"), &address, LOAD_TOPIC))
            .await
            .expect("creating a follower");
        followers.push(address);
    }
    let prober = format!("prober-{tag}@example.org");
    store
        .create(&follower("prober", &prober, PROBE_TOPIC))
        .await
        .expect("creating the prober");
    Audience { followers, prober }
}

/// How many mails each (message id, recipient) pair got, for the given recipients.
pub async fn mail_counts(recipients: &HashSet<String>) -> HashMap<(String, String), usize> {
    let mut counts = HashMap::new();
    for mail in sent_mail().await {
        // moto lists a recipient once per place it found it (envelope and `To:`).
        let to: HashSet<&String> = mail.destinations.iter().collect();
        // A burst's mail counts once for each message it carries.
        for id in crate::mail::notified_ids(&mail) {
            for to in to.iter().filter(|d| recipients.contains(**d)) {
                *counts.entry((id.clone(), (*to).clone())).or_default() += 1;
            }
        }
    }
    counts
}

/// Publishes probes through `publish` until the prober has mail: the bus is subscribed and
/// every function answers.
pub async fn probe<F>(audience: &Audience, timeout: Duration, mut publish: F)
where
    F: FnMut(),
{
    let deadline = tokio::time::Instant::now() + timeout;
    let prober: HashSet<String> = [audience.prober.clone()].into();
    loop {
        publish();
        if !mail_counts(&prober).await.is_empty() {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no probe reached the prober within {timeout:?}: the system is not running"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Every queue a function consumes (the tests give them a short visibility timeout through
/// `RunOptions::queue_visibility`, `FMN_QUEUE_VISIBILITY`).
const FUNCTION_QUEUES: [QueueName; 5] = [
    QueueName::Ingest,
    QueueName::Email,
    QueueName::Irc,
    QueueName::Matrix,
    QueueName::MailEvents,
];

/// Every published message, per follower: delivered (how often) or dead-lettered (why).
#[derive(Debug, Default)]
pub struct Ledger {
    pub published: usize,
    /// (msg id, address) → mails.
    pub mails: HashMap<(String, String), usize>,
    /// (msg id, address) → the dead-letter reason.
    pub dead_lettered: HashMap<(String, String), String>,
    /// Every (msg id, address) expected once.
    pub wanted: Vec<(String, String)>,
}

impl Ledger {
    pub fn expected(&self) -> usize {
        self.wanted.len()
    }
    pub fn delivered_once(&self) -> usize {
        self.mails.values().filter(|n| **n == 1).count()
    }
    pub fn duplicated(&self) -> usize {
        self.mails.values().filter(|n| **n > 1).count()
    }
    pub fn in_dlq(&self) -> usize {
        self.dead_lettered
            .keys()
            .filter(|k| !self.mails.contains_key(*k))
            .count()
    }
    pub fn lost(&self) -> usize {
        self.expected() - self.mails.len() - self.in_dlq()
    }

    /// The deliveries neither mailed nor dead-lettered.
    pub fn missing(&self) -> Vec<&(String, String)> {
        self.wanted
            .iter()
            .filter(|k| !self.mails.contains_key(*k) && !self.dead_lettered.contains_key(*k))
            .collect()
    }

    /// One row of the suite's table (Markdown).
    pub fn row(&self, fault: &str) -> String {
        format!(
            "| {fault} | {} | {} | {} | {} | {} | {} |",
            self.published,
            self.expected(),
            self.delivered_once(),
            self.in_dlq(),
            self.lost(),
            self.duplicated()
        )
    }

    /// Fails with the row and the first few missing or repeated deliveries unless nothing was
    /// lost and nothing repeated.
    pub fn assert_clean(&self, fault: &str) {
        let row = self.row(fault);
        println!("| fault | published | expected deliveries | delivered once | in DLQ | lost | duplicated |\n|---|---|---|---|---|---|---|\n{row}");
        for (key, reason) in &self.dead_lettered {
            println!("dead-lettered {key:?}: {reason}");
        }
        let repeated: Vec<_> = self.mails.iter().filter(|(_, n)| **n > 1).take(5).collect();
        assert_eq!(
            self.lost(),
            0,
            "{row}: messages lost {:?}",
            self.missing().into_iter().take(5).collect::<Vec<_>>()
        );
        assert!(repeated.is_empty(), "{row}: repeated mail {repeated:?}");
    }
}

/// Prints each function queue's waiting and in-flight counts: where lost deliveries are when
/// a ledger is not clean (in flight: a batch's records waiting out a visibility timeout).
pub async fn print_queues(clients: &AwsClients) {
    for queue in FUNCTION_QUEUES {
        let url = clients.queue_url(queue).await.expect("the queue exists");
        let state = crate::sqs::queue_state(&clients.sqs, &url).await;
        println!(
            "queue {queue:?}: {} waiting, {} in flight, visibility {} s",
            state.visible, state.in_flight, state.visibility_secs
        );
    }
}

/// Reads the dead-letter queues: (msg id, address) of each email job there, and each ingest
/// record's msg id for every follower.
async fn drain_dead_letters(
    clients: &AwsClients,
    followers: &[String],
    into: &mut HashMap<(String, String), String>,
) {
    use fmn_aws::batch::REASON_ATTRIBUTE;
    let reason_of = |m: &aws_sdk_sqs::types::Message| {
        crate::bridge::attr(m, REASON_ATTRIBUTE).unwrap_or_else(|| "(no reason given)".into())
    };
    let url = clients.queue_url(QueueName::EmailDeadLetter).await.unwrap();
    for m in crate::sqs::drain(&clients.sqs, &url, usize::MAX, Duration::from_secs(1)).await {
        use fmn_core::jobs::EmailQueueBody;
        let jobs = match EmailQueueBody::parse(m.body.as_deref().unwrap_or_default())
            .expect("a dead-lettered email job is a job or a bundle")
        {
            EmailQueueBody::One(job) => vec![*job],
            EmailQueueBody::Bundle(bundle) => bundle.jobs,
        };
        for job in jobs {
            into.insert(
                (job.notification.msg_id, job.destination.address),
                reason_of(&m),
            );
        }
    }
    let url = clients
        .queue_url(QueueName::IngestDeadLetter)
        .await
        .unwrap();
    for m in crate::sqs::drain(&clients.sqs, &url, usize::MAX, Duration::from_secs(1)).await {
        let id = crate::bridge::attr(&m, fmn_aws::ingest_wire::MSG_ID_ATTRIBUTE)
            .unwrap_or_else(|| "(no msg id)".into());
        for f in followers {
            into.insert((id.clone(), f.clone()), reason_of(&m));
        }
    }
}

/// Waits until every (published id, follower) pair was mailed or dead-lettered, or `timeout`
/// passed; then a few seconds more, so a late repeat is counted too.
pub async fn ledger(
    clients: &AwsClients,
    audience: &Audience,
    published: &[String],
    timeout: Duration,
) -> Ledger {
    let recipients: HashSet<String> = audience.followers.iter().cloned().collect();
    let ids: HashSet<&String> = published.iter().collect();
    let mut ledger = Ledger {
        published: published.len(),
        wanted: published
            .iter()
            .flat_map(|id| audience.followers.iter().map(|a| (id.clone(), a.clone())))
            .collect(),
        ..Ledger::default()
    };
    let deadline = tokio::time::Instant::now() + timeout;
    let mut settled_at = None;
    loop {
        drain_dead_letters(clients, &audience.followers, &mut ledger.dead_lettered).await;
        ledger.mails = mail_counts(&recipients).await;
        ledger.mails.retain(|(id, _), _| ids.contains(id));
        ledger.dead_lettered.retain(|(id, _), _| ids.contains(id));
        let accounted = ledger.mails.len() + ledger.in_dlq();
        let now = tokio::time::Instant::now();
        if accounted >= ledger.expected() {
            let since = *settled_at.get_or_insert(now);
            if now - since >= Duration::from_secs(5) {
                return ledger;
            }
        } else if now >= deadline {
            return ledger;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// A canned answer of an AWS service.
#[derive(Clone, Copy, Debug)]
pub struct Canned {
    pub status: u16,
    /// The error's code, as the service names it in `x-amzn-ErrorType` (JSON protocols) and
    /// `__type`.
    pub code: &'static str,
    pub message: &'static str,
}

/// SES v2 throttling one account (`TooManyRequestsException`, 429).
pub const SES_THROTTLED: Canned = Canned {
    status: 429,
    code: "TooManyRequestsException",
    message: "Maximum sending rate exceeded.",
};
/// SES v2 for an account whose sending is paused (`SendingPausedException`, 400).
pub const SES_PAUSED: Canned = Canned {
    status: 400,
    code: "SendingPausedException",
    message: "Sending is paused for this account.",
};
/// SQS (JSON protocol) throttling (`RequestThrottled`, 400... as SQS answers it).
pub const SQS_THROTTLED: Canned = Canned {
    status: 400,
    code: "ThrottlingException",
    message: "Rate exceeded",
};

/// Sees each request passed through and its answer: (path, request body, status, answer body).
pub type Observer = Arc<dyn Fn(&str, &[u8], u16, &[u8]) + Send + Sync>;

/// An HTTP stand-in in front of a service: passes every request through, except that while a
/// canned answer is set, the requests `applies` picks get that answer instead.
pub struct StandIn {
    pub url: String,
    answer: Arc<Mutex<Option<Canned>>>,
    /// Requests answered with a canned answer so far.
    pub refused: Arc<AtomicUsize>,
}

impl StandIn {
    pub async fn start(target: String, applies: fn(&axum::http::Uri) -> bool) -> StandIn {
        Self::observed(target, applies, None).await
    }

    /// [`StandIn::start`], telling `observer` about every request passed through.
    pub async fn observed(
        target: String,
        applies: fn(&axum::http::Uri) -> bool,
        observer: Option<Observer>,
    ) -> StandIn {
        use axum::body::Bytes;
        use axum::http::{HeaderMap, Method, StatusCode, Uri};
        use axum::response::IntoResponse;

        let answer: Arc<Mutex<Option<Canned>>> = Arc::default();
        let refused = Arc::new(AtomicUsize::new(0));
        let (a, r) = (Arc::clone(&answer), Arc::clone(&refused));
        let http = reqwest::Client::new();
        let app = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let canned = *a.lock().unwrap();
                let (r, target, http) = (Arc::clone(&r), target.clone(), http.clone());
                let observer = observer.clone();
                async move {
                    if let Some(c) = canned.filter(|_| applies(&uri)) {
                        r.fetch_add(1, Ordering::SeqCst);
                        let body = serde_json::json!({"__type": c.code, "message": c.message});
                        return (
                            StatusCode::from_u16(c.status).unwrap(),
                            [
                                ("x-amzn-ErrorType", c.code.to_string()),
                                ("x-amzn-query-error", format!("{};Sender", c.code)),
                                ("content-type", "application/x-amz-json-1.0".to_string()),
                            ],
                            body.to_string(),
                        )
                            .into_response();
                    }
                    let url = format!(
                        "{target}{}",
                        uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")
                    );
                    let sent = body.clone();
                    let mut request = http.request(method, url).body(body);
                    for (name, value) in &headers {
                        if name != "host" && name != "content-length" {
                            request = request.header(name, value);
                        }
                    }
                    let response = match request.send().await {
                        Ok(r) => r,
                        Err(e) => return (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
                    };
                    let status = response.status();
                    let headers = response.headers().clone();
                    let body = response.bytes().await.unwrap_or_default();
                    if let Some(observe) = &observer {
                        observe(uri.path(), &sent, status.as_u16(), &body);
                    }
                    let mut out = (status, body).into_response();
                    for (name, value) in &headers {
                        if name != "content-length" && name != "transfer-encoding" {
                            out.headers_mut().insert(name, value.clone());
                        }
                    }
                    out
                }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        StandIn {
            url,
            answer,
            refused,
        }
    }

    /// From now on, answer with `canned` (or pass everything through, with `None`).
    pub fn answer(&self, canned: Option<Canned>) {
        *self.answer.lock().unwrap() = canned;
    }
}

/// The emulator endpoint of a service, as the tests' environment sets it.
pub fn endpoint(var: &str, default: &str) -> String {
    std::env::var(var)
        .or_else(|_| std::env::var("AWS_ENDPOINT_URL"))
        .unwrap_or_else(|_| default.to_string())
        .trim_end_matches('/')
        .to_string()
}

/// SES v2 (moto) with SES's event publishing, which moto lacks: a stand-in in front of moto
/// that, for each mail moto accepts from a request naming a configuration set, sends the
/// `Send` event SES would publish (AWS's documented format: `eventType`, `mail.messageId`,
/// `mail.destination`, `mail.tags` from the request's `EmailTags`) to `events_queue_url`,
/// as the configuration set's SNS destination with raw delivery would.
pub struct SesWithEvents {
    pub url: String,
    /// Events published so far.
    pub published: Arc<AtomicUsize>,
    _stand_in: StandIn,
}

impl SesWithEvents {
    pub async fn start(sqs: aws_sdk_sqs::Client, events_queue_url: String) -> SesWithEvents {
        let published = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&published);
        let runtime = tokio::runtime::Handle::current();
        let observer: Observer = Arc::new(move |path, request, status, answer| {
            if path != "/v2/email/outbound-emails" || status != 200 {
                return;
            }
            let (Ok(request), Ok(answer)) = (
                serde_json::from_slice::<serde_json::Value>(request),
                serde_json::from_slice::<serde_json::Value>(answer),
            ) else {
                return;
            };
            let Some(set) = request["ConfigurationSetName"].as_str() else {
                return; // SES publishes events only for mail sent through a configuration set
            };
            let mut tags = serde_json::Map::new();
            tags.insert("ses:configuration-set".into(), serde_json::json!([set]));
            for tag in request["EmailTags"].as_array().into_iter().flatten() {
                if let (Some(n), Some(v)) = (tag["Name"].as_str(), tag["Value"].as_str()) {
                    tags.insert(n.into(), serde_json::json!([v]));
                }
            }
            let event = serde_json::json!({
                "eventType": "Send",
                "mail": {
                    "timestamp": "2026-12-01T00:00:00.000Z",
                    "source": request["FromEmailAddress"],
                    "messageId": answer["MessageId"],
                    "destination": request["Destination"]["ToAddresses"],
                    "headersTruncated": false,
                    "tags": tags,
                },
                "send": {},
            });
            let (sqs, url, count) = (sqs.clone(), events_queue_url.clone(), Arc::clone(&count));
            runtime.spawn(async move {
                sqs.send_message()
                    .queue_url(url)
                    .message_body(event.to_string())
                    .send()
                    .await
                    .expect("publishing a mail event");
                count.fetch_add(1, Ordering::SeqCst);
            });
        });
        let moto = endpoint(
            "AWS_ENDPOINT_URL_SESV2",
            fmn_aws::config::LOCAL_SESV2_ENDPOINT,
        );
        let stand_in = StandIn::observed(moto, |_| false, Some(observer)).await;
        SesWithEvents {
            url: stand_in.url.clone(),
            published,
            _stand_in: stand_in,
        }
    }
}
