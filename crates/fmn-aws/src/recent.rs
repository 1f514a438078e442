//! The recent-messages table (messages the match function saw, for "explain" and history) and
//! each user's activity feed (what was sent to them) in the activity table.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};

use fmn_core::jobs::DeliveryJob;

use crate::dynamo::{self, get_s, n, s, DynamoError, Item};
use crate::ingest_wire::{gunzip, gzip};

/// How long a message is kept (the ingest queue's retention).
pub const MESSAGE_TTL_SECS: u64 = 14 * 24 * 3600;
/// How long an activity entry is kept.
pub const ACTIVITY_TTL_SECS: u64 = 30 * 24 * 3600;

/// Ordered by the message's time (the arrival time when it has none); the job id makes a
/// redelivered job overwrite its own entry.
fn activity_sk(job: &DeliveryJob, now: u64) -> String {
    let ms = job
        .notification
        .timestamp
        .map_or(now * 1000, |t| (t * 1000.0).max(0.0) as u64);
    format!("{ms:015}#{}", job.job_id)
}

fn message_pk(msg_id: &str) -> String {
    format!("msg#{msg_id}")
}

/// A stored message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    pub msg_id: String,
    pub topic: String,
    /// The envelope's JSON.
    pub envelope: String,
    pub received_at: u64,
}

/// A message item read back.
fn stored_message(table: &str, msg_id: &str, item: &Item) -> Result<StoredMessage, DynamoError> {
    let malformed = |reason: &str| DynamoError::Malformed {
        table: table.to_string(),
        key: message_pk(msg_id),
        reason: reason.to_string(),
    };
    let gz = item
        .get("envelope_gzip")
        .and_then(|v| v.as_b().ok())
        .ok_or_else(|| malformed("no envelope"))?;
    let envelope = gunzip(gz.as_ref()).map_err(|e| malformed(&e.to_string()))?;
    Ok(StoredMessage {
        msg_id: msg_id.to_string(),
        topic: get_s(item, "topic").unwrap_or_default().to_string(),
        envelope,
        received_at: dynamo::get_n(item, "received_at").unwrap_or(0),
    })
}

/// Reads the stored messages received in a time window (`fmn replay`). The table is keyed by
/// message id alone, with no index by time, so this is a scan of the whole table: DynamoDB
/// reads (and bills) every item and drops those outside the window after reading. Segments
/// let several readers share the scan.
#[derive(Clone, Debug)]
pub struct MessageScan {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

/// Where a segment's scan goes on from.
#[derive(Clone, Debug)]
pub struct ScanCursor(Item);

/// One page of a [`MessageScan`].
#[derive(Debug)]
pub struct WindowPage {
    /// Items read (in the window or not).
    pub scanned: usize,
    /// The messages in the window; a malformed one as its id and why.
    pub messages: Vec<Result<StoredMessage, (String, String)>>,
    /// `None`: the segment is done.
    pub next: Option<ScanCursor>,
}

impl MessageScan {
    pub fn from_clients(clients: &crate::AwsClients) -> Self {
        Self {
            client: clients.dynamodb.clone(),
            table: clients.table(crate::TableName::RecentMessages),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// One page of segment `segment` of `segments`: the messages received from `since` to
    /// `until` (epoch seconds, both included). Start with `None`, go on with the page's
    /// `next`.
    pub async fn page(
        &self,
        since: u64,
        until: u64,
        segment: u32,
        segments: u32,
        start: Option<ScanCursor>,
    ) -> Result<WindowPage, DynamoError> {
        let out = self
            .client
            .scan()
            .table_name(&self.table)
            .segment(segment as i32)
            .total_segments(segments as i32)
            .filter_expression("#kind = :message AND received_at BETWEEN :since AND :until")
            .expression_attribute_names("#kind", "kind")
            .expression_attribute_values(":message", s("message"))
            .expression_attribute_values(":since", n(since))
            .expression_attribute_values(":until", n(until))
            .set_exclusive_start_key(start.map(|c| c.0))
            .send()
            .await
            .map_err(|e| DynamoError::call("Scan", &self.table, e))?;
        let messages = out
            .items
            .unwrap_or_default()
            .iter()
            .map(|item| {
                let msg_id = get_s(item, "msg_id").unwrap_or_default();
                stored_message(&self.table, msg_id, item)
                    .map_err(|e| (msg_id.to_string(), e.to_string()))
            })
            .collect();
        Ok(WindowPage {
            scanned: out.scanned_count.max(0) as usize,
            messages,
            next: out
                .last_evaluated_key
                .filter(|k| !k.is_empty())
                .map(ScanCursor),
        })
    }
}

#[derive(Clone, Debug)]
pub struct RecentMessages {
    client: aws_sdk_dynamodb::Client,
    table: String,
    activity_table: String,
    /// (day, topic) pairs this instance already added to the day's topic list.
    topics_listed: Arc<Mutex<HashSet<(u64, String)>>>,
}

/// The key of the list of topics seen on a day (days since the epoch).
pub fn topics_seen_pk(day: u64) -> String {
    format!("topics#{day}")
}

/// The preview indexes' keys of a message that arrived at `received_ms` (ms since the epoch):
/// (`topic_day`, `msg_day`, `time_id`); see [`crate::IndexName`].
pub fn preview_keys(topic: &str, msg_id: &str, received_ms: u64) -> (String, String, String) {
    let day = received_ms / 1000 / fmn_core::preview::DAY_SECS;
    (
        format!("{topic}#{day}"),
        day.to_string(),
        format!("{received_ms:015}#{msg_id}"),
    )
}

impl RecentMessages {
    pub fn from_clients(clients: &crate::AwsClients) -> Self {
        Self {
            client: clients.dynamodb.clone(),
            table: clients.table(crate::TableName::RecentMessages),
            activity_table: clients.table(crate::TableName::Activity),
            topics_listed: Arc::default(),
        }
    }

    pub fn client(&self) -> &aws_sdk_dynamodb::Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Stores a message (gzip-compressed: an item is at most 400 KB), with the keys of the
    /// preview indexes, and lists its topic among the day's (once per topic, day and
    /// instance). Storing it again overwrites it with the same content (and index keys of the
    /// new arrival time).
    pub async fn put(&self, msg_id: &str, topic: &str, envelope: &str) -> Result<(), DynamoError> {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis() as u64;
        let now = now_ms / 1000;
        let (topic_day, msg_day, time_id) = preview_keys(topic, msg_id, now_ms);
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(message_pk(msg_id)))
            .item("kind", s("message"))
            .item("msg_id", s(msg_id))
            .item("topic", s(topic))
            .item(
                "envelope_gzip",
                AttributeValue::B(Blob::new(gzip(envelope.as_bytes()))),
            )
            .item("received_at", n(now))
            .item("expires_at", n(now + MESSAGE_TTL_SECS))
            .item("topic_day", s(topic_day))
            .item("msg_day", s(msg_day))
            .item("time_id", s(time_id))
            .send()
            .await
            .map_err(|e| DynamoError::call("PutItem", &self.table, e))?;
        self.list_topic(now / fmn_core::preview::DAY_SECS, topic)
            .await
    }

    /// Adds the topic to the day's list (a string set), unless this instance already did.
    async fn list_topic(&self, day: u64, topic: &str) -> Result<(), DynamoError> {
        let key = (day, topic.to_string());
        if self
            .topics_listed
            .lock()
            .expect("not poisoned")
            .contains(&key)
        {
            return Ok(());
        }
        let expires = (day + 1) * fmn_core::preview::DAY_SECS + MESSAGE_TTL_SECS;
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(topics_seen_pk(day)))
            .update_expression("ADD topics :t SET #kind = :kind, expires_at = :exp")
            .expression_attribute_names("#kind", "kind")
            .expression_attribute_values(":t", AttributeValue::Ss(vec![topic.to_string()]))
            .expression_attribute_values(":kind", s("topics-seen"))
            .expression_attribute_values(":exp", n(expires))
            .send()
            .await
            .map_err(|e| DynamoError::call("UpdateItem", &self.table, e))?;
        let mut listed = self.topics_listed.lock().expect("not poisoned");
        // Yesterday's pairs are no longer needed.
        listed.retain(|(d, _)| *d + 1 >= day);
        listed.insert(key);
        Ok(())
    }

    /// A stored message, if still kept.
    pub async fn get(&self, msg_id: &str) -> Result<Option<StoredMessage>, DynamoError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(message_pk(msg_id)))
            .send()
            .await
            .map_err(|e| DynamoError::call("GetItem", &self.table, e))?;
        match out.item {
            Some(item) => stored_message(&self.table, msg_id, &item).map(Some),
            None => Ok(None),
        }
    }

    /// Records the jobs in their users' activity feeds (idempotent: the key is the job id).
    pub async fn record_activity(&self, jobs: &[DeliveryJob]) -> Result<(), DynamoError> {
        let now = dynamo::now_secs();
        let writes = jobs
            .iter()
            .map(|job| {
                let summary = serde_json::json!({
                    "msg_id": job.notification.msg_id,
                    "topic": job.notification.topic,
                    "app": job.notification.app,
                    "title": job.notification.title,
                    "subtitle": job.notification.subtitle,
                    "link": job.notification.link,
                    "filter": job.filter_name,
                    "destination": job.destination.id,
                    "address": job.destination.address,
                    "digest": job.destination.is_digest(),
                    "job_id": job.job_id,
                });
                let put = PutRequest::builder()
                    .item("pk", s(job.user.as_str()))
                    .item("sk", s(activity_sk(job, now)))
                    .item("entry", s(summary.to_string()))
                    .item("expires_at", n(now + ACTIVITY_TTL_SECS))
                    .build()
                    .expect("item set");
                WriteRequest::builder().put_request(put).build()
            })
            .collect();
        dynamo::batch_write(&self.client, &self.activity_table, writes).await
    }

    /// A user's latest activity entries, newest first, each with its `time` (epoch seconds).
    pub async fn activity(
        &self,
        user: &str,
        limit: i32,
    ) -> Result<Vec<serde_json::Value>, DynamoError> {
        let out = self
            .client
            .query()
            .table_name(&self.activity_table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(user))
            .scan_index_forward(false)
            .limit(limit)
            .send()
            .await
            .map_err(|e| DynamoError::call("Query", &self.activity_table, e))?;
        Ok(out
            .items
            .unwrap_or_default()
            .iter()
            .filter_map(|i: &Item| {
                let mut entry: serde_json::Value = serde_json::from_str(get_s(i, "entry")?).ok()?;
                // The entry's time (the message's, else its arrival), epoch seconds, from the key.
                let ms = get_s(i, "sk")
                    .and_then(|sk| sk.split('#').next())
                    .and_then(|ms| ms.parse::<u64>().ok());
                if let (Some(ms), Some(obj)) = (ms, entry.as_object_mut()) {
                    obj.entry("time").or_insert((ms as f64 / 1000.0).into());
                }
                Some(entry)
            })
            .collect())
    }

    /// Whether `reference` names this deployment's recent-messages table (the only table a
    /// stored body is read from).
    pub fn holds_ingest_bodies_of(&self, reference: &crate::ingest_wire::StoredRef) -> bool {
        reference.fmn_stored_body.table == self.table
    }

    /// The body of a message the bridge stored because it was too large for SQS.
    pub async fn fetch_ingest_body(
        &self,
        reference: &crate::ingest_wire::StoredRef,
    ) -> Result<Option<String>, DynamoError> {
        let table = &reference.fmn_stored_body.table;
        let out = self
            .client
            .get_item()
            .table_name(table)
            .key("pk", s(reference.fmn_stored_body.pk.as_str()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| DynamoError::call("GetItem", table, e))?;
        let Some(item) = out.item else {
            return Ok(None);
        };
        let gz = item
            .get("body_gzip")
            .and_then(|v| v.as_b().ok())
            .ok_or_else(|| DynamoError::Malformed {
                table: table.clone(),
                key: reference.fmn_stored_body.pk.clone(),
                reason: "no body_gzip".into(),
            })?;
        gunzip(gz.as_ref())
            .map(Some)
            .map_err(|e| DynamoError::Malformed {
                table: table.clone(),
                key: reference.fmn_stored_body.pk.clone(),
                reason: e.to_string(),
            })
    }
}

/// Keeps the gzip bytes of an envelope too large for SQS (the bridge calls this) and
/// returns the reference to send instead; [`RecentMessages::fetch_ingest_body`] reads it
/// back. Retried with backoff a few times.
pub async fn store_ingest_body(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    msg_id: &str,
    topic: &str,
    gz: Vec<u8>,
) -> Result<crate::ingest_wire::StoredRef, DynamoError> {
    const ATTEMPTS: u32 = 5;
    let pk = crate::ingest_wire::stored_pk(msg_id);
    let expires = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
        + MESSAGE_TTL_SECS;
    let blob = Blob::new(gz);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let result = client
            .put_item()
            .table_name(table)
            .item("pk", s(pk.as_str()))
            .item("kind", s("ingest-body"))
            .item("msg_id", s(msg_id))
            .item("topic", s(topic))
            .item("body_gzip", AttributeValue::B(blob.clone()))
            .item("expires_at", n(expires))
            .send()
            .await;
        match result {
            Ok(_) => {
                return Ok(crate::ingest_wire::StoredRef {
                    fmn_stored_body: crate::ingest_wire::StoredKey {
                        table: table.to_string(),
                        pk,
                    },
                    msg_id: msg_id.to_string(),
                    topic: topic.to_string(),
                })
            }
            Err(e) if attempt < ATTEMPTS => {
                tracing::warn!(msg_id, attempt, error = %aws_sdk_dynamodb::error::DisplayErrorContext(&e), "storing an oversized body failed; retrying");
                crate::sqs::backoff(attempt).await;
            }
            Err(e) => return Err(DynamoError::call("PutItem", table, e)),
        }
    }
}
