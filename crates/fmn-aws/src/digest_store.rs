//! The digest table: items waiting for a digest, and the list of destinations that have any.
//!
//! Items (`pk`, `sk`): `digest#<user>/<destination>`, `<published ms, 15 digits>#<job id>` with
//! the job as JSON; `pending`, `<user>/<destination>` with `first_at` (when the oldest waiting
//! item arrived), `count`, and the destination's `batch_delta` / `batch_count`, and
//! `hold_until` (epoch seconds: a scheduled digest's next occurrence or the end of a hold,
//! set by the latest add, which all items since the last digest agree on). The digest
//! function queries the `pending` partition instead of scanning the table.

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};

use fmn_core::jobs::DeliveryJob;
use fmn_core::prefs::Delivery;

use crate::dynamo::{self, n, s, DynamoError};
use crate::retry::RetryPolicy;

/// Attempts of one add (transaction conflicts between match instances are expected).
const ADD_POLICY: RetryPolicy = RetryPolicy::attempts(8);

#[derive(Clone, Debug)]
pub struct DigestStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
    /// The delivery-records table, holding each added job's idempotency record.
    records_table: String,
}

/// How long a digest job's idempotency record is kept (the ingest queue's retention).
pub const IDEMPOTENCY_TTL_SECS: u64 = 14 * 24 * 3600;

/// Whether an add stored something new.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Added {
    New,
    AlreadyThere,
}

pub fn item_sk(job: &DeliveryJob) -> String {
    let ms = job
        .notification
        .timestamp
        .map_or(0, |t| (t * 1000.0).max(0.0) as u64);
    format!("{ms:015}#{}", job.job_id)
}

impl DigestStore {
    pub fn from_clients(clients: &crate::AwsClients) -> Self {
        Self {
            client: clients.dynamodb.clone(),
            table: clients.table(crate::TableName::DigestItems),
            records_table: clients.table(crate::TableName::DeliveryRecords),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Adds a job to its destination's digest, once: a repeat (same job id) changes nothing,
    /// even after the digest holding it was sent. One transaction writes the item, the
    /// destination's `pending` marker and the job's idempotency record (in the
    /// delivery-records table, kept 14 days), so a crash leaves all three or none.
    ///
    /// `hold_until` is when the digest may go at the earliest (see `fmn_core::digest::due`):
    /// a scheduled digest's next occurrence, or the end of quiet hours or of a throttled hour
    /// for an immediate destination's held notifications; `now` is the add's time.
    pub async fn add(
        &self,
        job: &DeliveryJob,
        hold_until: Option<u64>,
        now: u64,
    ) -> Result<Added, DynamoError> {
        let key = job.digest_key();
        let (delta, count) = match job.destination.delivery {
            Delivery::Digest {
                batch_delta,
                batch_count,
                ..
            } => (batch_delta, batch_count),
            Delivery::Immediate => (None, None),
        };
        let item = Put::builder()
            .table_name(&self.table)
            .item("pk", s(format!("digest#{key}")))
            .item("sk", s(item_sk(job)))
            .item(
                "job",
                s(serde_json::to_string(job).expect("jobs serialise")),
            )
            .build()
            .expect("table and item set");
        let once = Put::builder()
            .table_name(&self.records_table)
            .item("pk", s(format!("digest-item#{}", job.job_id)))
            .item("state", s("queued"))
            .item("expires_at", n(now + IDEMPOTENCY_TTL_SECS))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .expect("table and item set");
        let set = "SET first_at = if_not_exists(first_at, :now), #user = :user, destination = :dest, batch_delta = :delta, batch_count = :count";
        let marker = Update::builder()
            .table_name(&self.table)
            .key("pk", s("pending"))
            .key("sk", s(key.as_str()))
            .update_expression(match hold_until {
                Some(_) => format!("{set}, hold_until = :hold ADD pending_count :one"),
                None => format!("{set} ADD pending_count :one REMOVE hold_until"),
            })
            .expression_attribute_names("#user", "user")
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":user", s(job.user.as_str()))
            .expression_attribute_values(":dest", s(job.destination.id.as_str()))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":delta", delta.map_or(AttributeValue::Null(true), n))
            .expression_attribute_values(":count", count.map_or(AttributeValue::Null(true), n));
        let marker = match hold_until {
            Some(h) => marker.expression_attribute_values(":hold", n(h)),
            None => marker,
        }
        .build()
        .expect("table, key and expression set");
        // A conflict with another add to the same destination (its marker) is retried here; a
        // conflict still there after the attempts comes back retryable, never as "already there".
        let result = ADD_POLICY
            .run("TransactWriteItems (digest add)", |_| async {
                self.client
                    .transact_write_items()
                    .transact_items(TransactWriteItem::builder().put(once.clone()).build())
                    .transact_items(TransactWriteItem::builder().put(item.clone()).build())
                    .transact_items(TransactWriteItem::builder().update(marker.clone()).build())
                    .send()
                    .await
                    .map_err(|e| DynamoError::transaction(&self.table, e))
            })
            .await;
        match result {
            Ok(_) => Ok(Added::New),
            Err(e) => {
                // Only the idempotency record's condition (the first item) means "added before".
                if e.condition_failed_at(0) {
                    Ok(Added::AlreadyThere)
                } else {
                    Err(e)
                }
            }
        }
    }
}

/// One destination's entry in the `pending` partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingMarker {
    /// `<user>/<destination>`.
    pub key: String,
    pub user: String,
    pub destination: String,
    pub pending: fmn_core::digest::Pending,
    /// The batch being sent, if a run cut one and has not finished it.
    pub batch: Option<Batch>,
}

/// A cut batch: the digest id and the sort keys of its items.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch {
    pub id: String,
    pub sks: Vec<String>,
    /// When it was cut, epoch seconds.
    pub at: u64,
    /// Whether it took every item present then (so what remains afterwards arrived later).
    pub complete: bool,
}

/// An item waiting in a digest.
#[derive(Clone, Debug)]
pub struct DigestItem {
    pub sk: String,
    /// The job, or why it could not be read.
    pub job: Result<DeliveryJob, String>,
}

fn marker_from_item(item: &dynamo::Item) -> Option<PendingMarker> {
    let key = dynamo::get_s(item, "sk")?.to_string();
    let (user_from_key, dest_from_key) = key.split_once('/').unwrap_or((key.as_str(), ""));
    let batch = dynamo::get_s(item, "batch_id").map(|id| Batch {
        id: id.to_string(),
        sks: dynamo::get_list(item, "batch_sks"),
        at: dynamo::get_n(item, "batch_at").unwrap_or(0),
        complete: item
            .get("batch_complete")
            .and_then(|v| v.as_bool().ok())
            .copied()
            .unwrap_or(true),
    });
    Some(PendingMarker {
        user: dynamo::get_s(item, "user")
            .unwrap_or(user_from_key)
            .to_string(),
        destination: dynamo::get_s(item, "destination")
            .unwrap_or(dest_from_key)
            .to_string(),
        pending: fmn_core::digest::Pending {
            first_at: dynamo::get_n(item, "first_at").unwrap_or(0),
            count: dynamo::get_n(item, "pending_count").unwrap_or(0),
            batch_delta: dynamo::get_n(item, "batch_delta"),
            batch_count: dynamo::get_n(item, "batch_count").map(|c| c.min(u32::MAX.into()) as u32),
            hold_until: dynamo::get_n(item, "hold_until"),
        },
        key,
        batch,
    })
}

impl DigestStore {
    /// Every destination with pending items: one query of the `pending` partition.
    pub async fn pending(&self) -> Result<Vec<PendingMarker>, DynamoError> {
        let items = dynamo::query_after(&self.client, &self.table, "pending", None).await?;
        Ok(items.iter().filter_map(marker_from_item).collect())
    }

    /// The marker of one destination, if it has pending items.
    pub async fn marker(&self, key: &str) -> Result<Option<PendingMarker>, DynamoError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s("pending"))
            .key("sk", s(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| DynamoError::call("GetItem", &self.table, e))?;
        Ok(out.item.as_ref().and_then(marker_from_item))
    }

    /// Every item waiting in `key`'s digest, oldest first.
    pub async fn items(&self, key: &str) -> Result<Vec<DigestItem>, DynamoError> {
        let items =
            dynamo::query_after(&self.client, &self.table, &format!("digest#{key}"), None).await?;
        Ok(items
            .iter()
            .filter_map(|item| {
                let sk = dynamo::get_s(item, "sk")?.to_string();
                let job = match dynamo::get_s(item, "job") {
                    Some(j) => serde_json::from_str(j).map_err(|e| e.to_string()),
                    None => Err("no `job` attribute".to_string()),
                };
                Some(DigestItem { sk, job })
            })
            .collect())
    }

    /// Records `batch` on `key`'s marker, unless a batch is recorded already. Returns whether
    /// it was recorded.
    pub async fn start_batch(&self, key: &str, batch: &Batch) -> Result<bool, DynamoError> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s("pending"))
            .key("sk", s(key))
            .update_expression(
                "SET batch_id = :id, batch_sks = :sks, batch_at = :at, batch_complete = :complete",
            )
            .condition_expression("attribute_exists(pk) AND attribute_not_exists(batch_id)")
            .expression_attribute_values(":id", s(batch.id.as_str()))
            .expression_attribute_values(":sks", dynamo::list(&batch.sks))
            .expression_attribute_values(":at", n(batch.at))
            .expression_attribute_values(":complete", AttributeValue::Bool(batch.complete))
            .send()
            .await
            .map_err(|e| DynamoError::call("UpdateItem", &self.table, e));
        match out {
            Ok(_) => Ok(true),
            Err(e) if e.is_condition_failure() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// After the batch was sent (or refused for good): deletes its items, then takes them off
    /// the marker. The marker goes when nothing else is pending; when items arrived meanwhile
    /// it stays, with the count of those and, if the batch took everything present when it was
    /// cut, the cut time as the new `first_at` (the remaining items all arrived after it).
    /// Safe to repeat after a crash at any point.
    pub async fn finish_batch(&self, key: &str, batch: &Batch) -> Result<(), DynamoError> {
        let deletes = batch
            .sks
            .iter()
            .map(|sk| {
                aws_sdk_dynamodb::types::WriteRequest::builder()
                    .delete_request(
                        aws_sdk_dynamodb::types::DeleteRequest::builder()
                            .key("pk", s(format!("digest#{key}")))
                            .key("sk", s(sk.as_str()))
                            .build()
                            .expect("key is set"),
                    )
                    .build()
            })
            .collect();
        dynamo::batch_write(&self.client, &self.table, deletes).await?;
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s("pending"))
            .key("sk", s(key))
            .condition_expression("batch_id = :id")
            .expression_attribute_values(":id", s(batch.id.as_str()))
            .expression_attribute_values(":n", n(batch.sks.len()))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew);
        update = if batch.complete {
            update
                .update_expression(
                    "SET pending_count = pending_count - :n, first_at = :at \
                     REMOVE batch_id, batch_sks, batch_at, batch_complete",
                )
                .expression_attribute_values(":at", n(batch.at))
        } else {
            update.update_expression(
                "SET pending_count = pending_count - :n \
                 REMOVE batch_id, batch_sks, batch_at, batch_complete",
            )
        };
        let remaining = match update.send().await {
            Ok(out) => out
                .attributes
                .as_ref()
                .and_then(|a| a.get("pending_count"))
                .and_then(|v| v.as_n().ok())
                .and_then(|v| v.parse::<i64>().ok())
                .unwrap_or(0),
            // Already finished by an earlier attempt.
            Err(e) => {
                let e = DynamoError::call("UpdateItem", &self.table, e);
                if e.is_condition_failure() {
                    return Ok(());
                }
                return Err(e);
            }
        };
        if remaining <= 0 {
            // Gone only if nothing arrived since (an add increments the count first).
            self.delete_marker_if(key, "pending_count <= :n", 0).await?;
        }
        Ok(())
    }
}

impl DigestStore {
    /// Drops every item waiting in the digest of `user`'s destination `destination` and its
    /// marker: the destination was removed (ids are never reused, so a changed address is a
    /// removal too), and its items must not go out. Returns how many items were dropped. A
    /// batch a digest run is sending at that moment finishes on its own (`finish_batch` finds
    /// no marker and has nothing left to do).
    pub async fn purge(&self, user: &str, destination: &str) -> Result<usize, DynamoError> {
        let key = fmn_core::jobs::digest_key(user, destination);
        let items =
            dynamo::query_after(&self.client, &self.table, &format!("digest#{key}"), None).await?;
        let deletes: Vec<_> = items
            .iter()
            .filter_map(|item| dynamo::get_s(item, "sk"))
            .map(|sk| {
                aws_sdk_dynamodb::types::WriteRequest::builder()
                    .delete_request(
                        aws_sdk_dynamodb::types::DeleteRequest::builder()
                            .key("pk", s(format!("digest#{key}")))
                            .key("sk", s(sk))
                            .build()
                            .expect("key is set"),
                    )
                    .build()
            })
            .collect();
        let dropped = deletes.len();
        dynamo::batch_write(&self.client, &self.table, deletes).await?;
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s("pending"))
            .key("sk", s(key.as_str()))
            .send()
            .await
            .map_err(|e| DynamoError::call("DeleteItem", &self.table, e))?;
        Ok(dropped)
    }

    /// Deletes `key`'s marker when it has no items, unless its count changed since it was read
    /// as `count` or a batch is recorded on it.
    pub async fn remove_empty_marker(&self, key: &str, count: u64) -> Result<(), DynamoError> {
        self.delete_marker_if(key, "pending_count = :n", count)
            .await
    }

    /// Deletes `key`'s marker if `count_condition` (on `:n` = `count`) holds and no batch is
    /// recorded on it; a marker that changed meanwhile is left alone.
    async fn delete_marker_if(
        &self,
        key: &str,
        count_condition: &str,
        count: u64,
    ) -> Result<(), DynamoError> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s("pending"))
            .key("sk", s(key))
            .condition_expression(format!(
                "{count_condition} AND attribute_not_exists(batch_id)"
            ))
            .expression_attribute_values(":n", n(count))
            .send()
            .await
            .map_err(|e| DynamoError::call("DeleteItem", &self.table, e));
        match out {
            Err(e) if !e.is_condition_failure() => Err(e),
            _ => Ok(()),
        }
    }
}
