//! Filter previews over the recent-messages table: the days' topic lists, then only the index
//! partitions the filter can match (`fmn_core::preview::plan`), each read newest first and
//! bounded, the messages run through the real rules, and the rate estimated. Never a scan.

use std::collections::BTreeSet;

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use fmn_core::matching::MessageFacts;
use fmn_core::message::Envelope;
use fmn_core::preview::{self, Estimate, PartitionRead, Plan, DAY_SECS, WINDOW_DAYS};
use fmn_core::rules::Rule;
use tokio::task::JoinSet;

use crate::dynamo::{self, get_s, s, DynamoError, Item};
use crate::explain::KnownFacts;
use crate::ingest_wire::gunzip;
use crate::recent::{topics_seen_pk, RecentMessages};
use crate::IndexName;

/// How much one preview may read.
#[derive(Clone, Copy, Debug)]
pub struct PreviewLimits {
    /// Index queries of a topic plan (whole days, newest first, beyond the newest day).
    pub max_queries: usize,
    /// Messages read from one (topic, day) partition.
    pub per_partition: i32,
    /// Messages read from one day of a sample.
    pub sample_per_day: i32,
    /// Matches listed.
    pub listed: usize,
    /// Queries in flight at once.
    pub concurrency: usize,
}

impl Default for PreviewLimits {
    fn default() -> Self {
        Self {
            max_queries: 60,
            per_partition: 100,
            sample_per_day: 100,
            listed: 20,
            concurrency: 8,
        }
    }
}

/// One matching message.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct PreviewMatch {
    pub msg_id: String,
    pub topic: String,
    pub title: String,
    pub subtitle: Option<String>,
    pub link: Option<String>,
    /// The message's time (its arrival when it has none), epoch seconds.
    pub time: f64,
    pub about_your_packages: bool,
}

/// What a preview found.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Preview {
    #[serde(flatten)]
    pub estimate: Estimate,
    /// "about 12 a day, 3 of them about your packages".
    pub summary: String,
    /// `topics` (the partitions of the topics the filter can match), `sample` (the newest
    /// messages of each day) or `nothing`.
    pub mode: &'static str,
    /// Index partitions read.
    pub partitions: usize,
    /// DynamoDB requests made.
    pub requests: usize,
    /// The newest matches, newest first.
    pub matches: Vec<PreviewMatch>,
}

#[derive(Debug, thiserror::Error)]
pub enum PreviewError {
    #[error(transparent)]
    Dynamo(#[from] DynamoError),
    #[error("a preview query stopped: {0}")]
    Task(String),
}

/// The topics seen on each of the window's days that have messages (one BatchGetItem).
async fn days_with_topics(
    recent: &RecentMessages,
    now: u64,
) -> Result<(Vec<(u64, BTreeSet<String>)>, usize), DynamoError> {
    let today = now / DAY_SECS;
    let mut keys = Vec::new();
    for day in (today + 1 - WINDOW_DAYS)..=today {
        keys.push(Item::from([("pk".to_string(), s(topics_seen_pk(day)))]));
    }
    let mut requests = 0;
    let mut found = Vec::new();
    let mut pending = Some(
        KeysAndAttributes::builder()
            .set_keys(Some(keys))
            .build()
            .expect("keys set"),
    );
    let mut attempt = 0;
    while let Some(batch) = pending.take() {
        requests += 1;
        let out = recent
            .client()
            .batch_get_item()
            .request_items(recent.table(), batch)
            .send()
            .await
            .map_err(|e| DynamoError::call("BatchGetItem", recent.table(), e))?;
        for item in out
            .responses
            .and_then(|mut r| r.remove(recent.table()))
            .unwrap_or_default()
        {
            let day = get_s(&item, "pk")
                .and_then(|pk| pk.strip_prefix("topics#"))
                .and_then(|d| d.parse::<u64>().ok());
            let topics = item
                .get("topics")
                .and_then(|v| v.as_ss().ok())
                .cloned()
                .unwrap_or_default();
            if let Some(day) = day {
                found.push((day, topics.into_iter().collect()));
            }
        }
        pending = out
            .unprocessed_keys
            .and_then(|mut u| u.remove(recent.table()))
            .filter(|k| !k.keys().is_empty());
        if pending.is_some() {
            attempt += 1;
            crate::sqs::backoff(attempt).await;
        }
    }
    Ok((found, requests))
}

/// One partition read: its items, whether it was read to the end.
struct Read {
    day: u64,
    items: Vec<Item>,
    complete: bool,
}

async fn read_partition(
    client: aws_sdk_dynamodb::Client,
    table: String,
    index: IndexName,
    key: String,
    day: u64,
    limit: i32,
) -> Result<Read, DynamoError> {
    let out = client
        .query()
        .table_name(&table)
        .index_name(index.name())
        .key_condition_expression("#h = :h")
        .expression_attribute_names("#h", index.hash_key())
        .expression_attribute_values(":h", AttributeValue::S(key))
        .scan_index_forward(false)
        .limit(limit)
        .send()
        .await
        .map_err(|e| DynamoError::call("Query", &table, e))?;
    Ok(Read {
        day,
        items: out.items.unwrap_or_default(),
        complete: out.last_evaluated_key.is_none_or(|k| k.is_empty()),
    })
}

/// Previews `rules` (an unsaved filter of `owner`) over the stored messages of the last 14
/// days before `now` (epoch seconds).
pub async fn preview(
    recent: &RecentMessages,
    known: &KnownFacts,
    owner: &str,
    rules: &[Rule],
    now: u64,
    limits: PreviewLimits,
) -> Result<Preview, PreviewError> {
    let (days, mut requests) = days_with_topics(recent, now).await?;
    let plan = preview::plan(rules, &days, limits.max_queries);
    let (mode, partitions): (&'static str, Vec<(IndexName, String, u64, i32)>) = match &plan {
        Plan::Nothing => ("nothing", Vec::new()),
        Plan::Topics { partitions, .. } => (
            "topics",
            partitions
                .iter()
                .map(|(topic, day)| {
                    (
                        IndexName::MessagesByTopicDay,
                        format!("{topic}#{day}"),
                        *day,
                        limits.per_partition,
                    )
                })
                .collect(),
        ),
        Plan::Sample { days } => (
            "sample",
            days.iter()
                .map(|day| {
                    (
                        IndexName::MessagesByDay,
                        day.to_string(),
                        *day,
                        limits.sample_per_day,
                    )
                })
                .collect(),
        ),
    };
    let partition_count = partitions.len();
    let mut queue = partitions.into_iter();
    let mut running = JoinSet::new();
    let mut reads = Vec::new();
    loop {
        while running.len() < limits.concurrency.max(1) {
            let Some((index, key, day, limit)) = queue.next() else {
                break;
            };
            requests += 1;
            running.spawn(read_partition(
                recent.client().clone(),
                recent.table().to_string(),
                index,
                key,
                day,
                limit,
            ));
        }
        match running.join_next().await {
            None => break,
            Some(Ok(read)) => reads.push(read?),
            Some(Err(e)) => return Err(PreviewError::Task(e.to_string())),
        }
    }

    let ownership = &known.loaded.ownership;
    let mut partition_reads = Vec::new();
    let mut matches = Vec::new();
    for read in &reads {
        let mut result = PartitionRead {
            day: read.day,
            read: read.items.len() as u64,
            matched: 0,
            about_owner: 0,
            complete: read.complete,
            oldest: None,
        };
        for item in &read.items {
            let received = dynamo::get_n(item, "received_at").unwrap_or(0);
            result.oldest = Some(result.oldest.map_or(received, |o: u64| o.min(received)));
            let Some(envelope) = item
                .get("envelope_gzip")
                .and_then(|v| v.as_b().ok())
                .and_then(|gz| gunzip(gz.as_ref()).ok())
                .and_then(|json| Envelope::from_json(&json).ok())
            else {
                tracing::warn!(
                    msg_id = get_s(item, "msg_id").unwrap_or_default(),
                    "a stored message is unreadable; the preview leaves it out"
                );
                continue;
            };
            let meta = known.registry.extract(&envelope);
            let facts = MessageFacts::new(&envelope, &meta, ownership);
            if !preview::holds(rules, owner, &facts, ownership) {
                continue;
            }
            let about = preview::about_owner_packages(owner, &facts, ownership);
            result.matched += 1;
            result.about_owner += u64::from(about);
            matches.push(PreviewMatch {
                msg_id: envelope.msg_id().to_string(),
                topic: envelope.topic().as_str().to_string(),
                title: meta.title.clone(),
                subtitle: meta.subtitle.clone(),
                link: meta.link.clone(),
                time: envelope.timestamp_secs().unwrap_or(received as f64),
                about_your_packages: about,
            });
        }
        partition_reads.push(result);
    }
    let stored: Vec<u64> = days.iter().map(|(d, _)| *d).collect();
    let (covered, left_out) = plan.coverage(&stored);
    let estimate = preview::estimate(&partition_reads, &covered, left_out, now);
    matches.sort_by(|a, b| b.time.total_cmp(&a.time).then(a.msg_id.cmp(&b.msg_id)));
    matches.dedup_by(|a, b| a.msg_id == b.msg_id);
    matches.truncate(limits.listed);
    Ok(Preview {
        summary: preview::describe(&estimate),
        estimate,
        mode,
        partitions: partition_count,
        requests,
        matches,
    })
}
