//! Keeps a body too large for SQS, even compressed, in the recent-messages table.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;

use crate::encode::{stored_pk, StoredKey, StoredRef};

/// How long a stored body is kept (the table's TTL attribute is `expires_at`), matching the
/// ingest queue's retention of 14 days.
pub const KEEP: Duration = Duration::from_secs(14 * 24 * 3600);
const ATTEMPTS: u32 = 5;

/// Stores the gzip bytes of the envelope and returns the reference to send instead.
pub async fn put(
    dynamodb: &aws_sdk_dynamodb::Client,
    table: &str,
    msg_id: &str,
    topic: &str,
    gz: Vec<u8>,
) -> Result<StoredRef, String> {
    let pk = stored_pk(msg_id);
    let expires = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .saturating_add(KEEP)
        .as_secs();
    let blob = Blob::new(gz);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let result = dynamodb
            .put_item()
            .table_name(table)
            .item("pk", AttributeValue::S(pk.clone()))
            .item("kind", AttributeValue::S("ingest-body".into()))
            .item("msg_id", AttributeValue::S(msg_id.to_string()))
            .item("topic", AttributeValue::S(topic.to_string()))
            .item("body_gzip", AttributeValue::B(blob.clone()))
            .item("expires_at", AttributeValue::N(expires.to_string()))
            .send()
            .await;
        match result {
            Ok(_) => {
                return Ok(StoredRef {
                    fmn_stored_body: StoredKey {
                        table: table.to_string(),
                        pk,
                    },
                    msg_id: msg_id.to_string(),
                    topic: topic.to_string(),
                })
            }
            Err(e) if attempt < ATTEMPTS => {
                tracing::warn!(msg_id, attempt, error = %DisplayErrorContext(&e), "storing an oversized body failed; retrying");
                fmn_aws::sqs::backoff(attempt).await;
            }
            Err(e) => return Err(DisplayErrorContext(&e).to_string()),
        }
    }
}
