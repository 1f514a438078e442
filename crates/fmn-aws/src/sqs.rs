//! Sending to SQS in batches of ten, retrying what SQS could not take.

use std::time::Duration;

use aws_sdk_sqs::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};
use rand::Rng;

/// SQS takes at most this many entries in one `SendMessageBatch`.
pub const MAX_BATCH: usize = 10;
/// SQS's limit on one message (and on one batch), in bytes.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;
/// Attempts for entries SQS failed for a reason of its own (throttling, a blip).
const SEND_ATTEMPTS: u32 = 5;

#[derive(Debug, thiserror::Error)]
pub enum SqsError {
    #[error("SQS {operation} on `{target}` failed: {detail}")]
    Call {
        operation: &'static str,
        target: String,
        detail: String,
        /// The service's error code, e.g. `AWS.SimpleQueueService.NonExistentQueue`.
        code: Option<String>,
    },
    #[error("SQS refused {count} message(s), first `{first_id}`: {reason}")]
    Rejected {
        count: usize,
        first_id: String,
        reason: String,
    },
    #[error("{0}")]
    Missing(String),
}

impl SqsError {
    pub fn call<E>(
        operation: &'static str,
        target: &str,
        err: aws_sdk_sqs::error::SdkError<E>,
    ) -> Self
    where
        E: std::error::Error + ProvideErrorMetadata + 'static,
    {
        let code = err.code().map(str::to_string);
        SqsError::Call {
            operation,
            target: target.to_string(),
            detail: DisplayErrorContext(&err).to_string(),
            code,
        }
    }
}

/// One message to send. `id` must be unique within the call and made of `[A-Za-z0-9_-]`
/// (at most 80 characters); `batch_entry_id` makes one from anything.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutgoingMessage {
    pub id: String,
    pub body: String,
    pub attributes: Vec<(String, String)>,
}

impl OutgoingMessage {
    pub fn new(id: impl AsRef<str>, body: impl Into<String>) -> Self {
        Self {
            id: batch_entry_id(id.as_ref()),
            body: body.into(),
            attributes: Vec::new(),
        }
    }

    pub fn with_attribute(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.attributes.push((name.into(), value.into()));
        self
    }

    fn entry(&self) -> SendMessageBatchRequestEntry {
        let mut entry = SendMessageBatchRequestEntry::builder()
            .id(&self.id)
            .message_body(&self.body);
        for (name, value) in &self.attributes {
            entry = entry.message_attributes(
                name,
                MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value(value)
                    .build()
                    .expect("data type is set"),
            );
        }
        entry.build().expect("id and body are set")
    }
}

/// A batch-entry id from any text: SQS only takes `[A-Za-z0-9_-]{1,80}`.
pub fn batch_entry_id(raw: &str) -> String {
    let mut id: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(80)
        .collect();
    if id.is_empty() {
        id.push('_');
    }
    id
}

/// Sends every message, ten per call, retrying entries SQS failed on its side with backoff
/// and jitter. Entries SQS refuses as the sender's fault are not retried: they come back in
/// the error, as do entries still failing after the last attempt.
pub async fn send_all(
    client: &aws_sdk_sqs::Client,
    queue_url: &str,
    messages: &[OutgoingMessage],
) -> Result<(), SqsError> {
    for chunk in messages.chunks(MAX_BATCH) {
        send_chunk(client, queue_url, chunk).await?;
    }
    Ok(())
}

async fn send_chunk(
    client: &aws_sdk_sqs::Client,
    queue_url: &str,
    chunk: &[OutgoingMessage],
) -> Result<(), SqsError> {
    let mut pending: Vec<&OutgoingMessage> = chunk.iter().collect();
    let mut attempt = 0;
    loop {
        attempt += 1;
        let result = client
            .send_message_batch()
            .queue_url(queue_url)
            .set_entries(Some(pending.iter().map(|m| m.entry()).collect()))
            .send()
            .await;
        let out = match result {
            Ok(out) => out,
            Err(e) if attempt < SEND_ATTEMPTS => {
                tracing::warn!(queue = queue_url, attempt, error = %DisplayErrorContext(&e), "SendMessageBatch failed; retrying");
                backoff(attempt).await;
                continue;
            }
            Err(e) => return Err(SqsError::call("SendMessageBatch", queue_url, e)),
        };
        let failed = out.failed;
        if failed.is_empty() {
            return Ok(());
        }
        if let Some(f) = failed.iter().find(|f| f.sender_fault) {
            return Err(SqsError::Rejected {
                count: failed.iter().filter(|f| f.sender_fault).count(),
                first_id: f.id.clone(),
                reason: format!("{}: {}", f.code, f.message.as_deref().unwrap_or("")),
            });
        }
        if attempt >= SEND_ATTEMPTS {
            return Err(SqsError::Rejected {
                count: failed.len(),
                first_id: failed[0].id.clone(),
                reason: format!(
                    "still failing after {attempt} attempts: {}",
                    failed[0].message.as_deref().unwrap_or(&failed[0].code)
                ),
            });
        }
        pending.retain(|m| failed.iter().any(|f| f.id == m.id));
        backoff(attempt).await;
    }
}

/// Exponential backoff with full jitter: up to 100 ms, 200 ms, 400 ms... capped at 5 s.
pub async fn backoff(attempt: u32) {
    let ceiling = Duration::from_millis(100u64.saturating_mul(1 << attempt.min(6)))
        .min(Duration::from_secs(5));
    let wait = rand::rng().random_range(Duration::ZERO..=ceiling);
    tokio::time::sleep(wait).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_ids_are_what_sqs_accepts() {
        assert_eq!(batch_entry_id("2024-abc.def/ghi"), "2024-abc_def_ghi");
        assert_eq!(batch_entry_id(""), "_");
        assert_eq!(batch_entry_id(&"x".repeat(200)).len(), 80);
    }
}
