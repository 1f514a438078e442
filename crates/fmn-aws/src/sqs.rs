//! Sending to SQS in batches of ten, retrying what SQS could not take.

use aws_sdk_sqs::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};

use crate::retry::{classify, Classify, ErrorClass, RetryPolicy};

/// SQS takes at most this many entries in one `SendMessageBatch`.
pub const MAX_BATCH: usize = 10;
/// SQS's limit on one message (and on one batch), in bytes.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;
/// Attempts for calls and entries SQS failed for a reason of its own (throttling, a blip).
const SEND_POLICY: RetryPolicy = RetryPolicy::attempts(5);

#[derive(Debug, thiserror::Error)]
pub enum SqsError {
    #[error("SQS {operation} on `{target}` failed ({}): {detail}", class.as_str())]
    Call {
        operation: &'static str,
        target: String,
        detail: String,
        /// The service's error code, e.g. `AWS.SimpleQueueService.NonExistentQueue`.
        code: Option<String>,
        class: ErrorClass,
    },
    #[error("SQS refused {count} message(s), first `{first_id}`: {reason}")]
    Rejected {
        count: usize,
        first_id: String,
        reason: String,
        /// Permanent when SQS blamed the sender, retryable when it kept failing on its side.
        class: ErrorClass,
    },
    /// A message SQS would refuse for its size; nothing was sent.
    #[error("message `{id}` is {bytes} bytes, over SQS's limit of {MAX_MESSAGE_BYTES}")]
    TooLarge { id: String, bytes: usize },
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
            class: classify(&err),
            detail: DisplayErrorContext(&err).to_string(),
            code,
        }
    }
}

impl Classify for SqsError {
    fn class(&self) -> ErrorClass {
        match self {
            SqsError::Call { class, .. } | SqsError::Rejected { class, .. } => *class,
            SqsError::TooLarge { .. } => ErrorClass::Permanent,
            // A queue the configuration names but that does not exist.
            SqsError::Missing(_) => ErrorClass::ServiceWide,
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

    fn entry(&self, fifo: bool) -> SendMessageBatchRequestEntry {
        let mut entry = SendMessageBatchRequestEntry::builder()
            .id(&self.id)
            .message_body(&self.body);
        if fifo {
            // One group: the queue is consumed strictly in order by one invocation at a time.
            // The entry id (a job's id, a record's message id) deduplicates a repeat sent
            // within SQS's five-minute window.
            entry = entry
                .message_group_id(FIFO_GROUP)
                .message_deduplication_id(&self.id);
        }
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

/// The one message group of every FIFO queue (the IRC queues).
pub const FIFO_GROUP: &str = "fmn";

/// Whether the queue at `url` is a FIFO queue (SQS requires the `.fifo` suffix).
pub fn is_fifo(url: &str) -> bool {
    url.ends_with(".fifo")
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

/// Holds a received message back for `delay` (from now): it is delivered again after that,
/// whatever the queue's visibility timeout says.
pub async fn change_visibility(
    client: &aws_sdk_sqs::Client,
    queue_url: &str,
    receipt_handle: &str,
    delay: std::time::Duration,
) -> Result<(), SqsError> {
    let secs = i32::try_from(delay.as_secs()).unwrap_or(i32::MAX);
    client
        .change_message_visibility()
        .queue_url(queue_url)
        .receipt_handle(receipt_handle)
        .visibility_timeout(secs)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| SqsError::call("ChangeMessageVisibility", queue_url, e))
}

/// Sends every message, in batches of at most ten and [`MAX_MESSAGE_BYTES`] ([`batches`]),
/// retrying calls and entries SQS failed on its side with backoff and jitter. Entries SQS
/// refuses as the sender's fault are not retried: they come back in the error, as do entries
/// still failing after the last attempt. A message too large for SQS fails the whole call
/// before anything is sent.
pub async fn send_all(
    client: &aws_sdk_sqs::Client,
    queue_url: &str,
    messages: &[OutgoingMessage],
) -> Result<(), SqsError> {
    for batch in batches(messages)? {
        send_batch(client, queue_url, batch).await?;
    }
    Ok(())
}

/// The bytes SQS counts for a message: its body and each attribute's name, type and value.
pub fn message_bytes(message: &OutgoingMessage) -> usize {
    message.body.len()
        + message
            .attributes
            .iter()
            .map(|(name, value)| name.len() + "String".len() + value.len())
            .sum::<usize>()
}

/// Splits `messages`, in order, into the batches `SendMessageBatch` takes: at most
/// [`MAX_BATCH`] entries and [`MAX_MESSAGE_BYTES`] in all (SQS refuses a larger call as a
/// whole). A message over the limit on its own is an error, found before anything is sent.
pub fn batches(messages: &[OutgoingMessage]) -> Result<Vec<&[OutgoingMessage]>, SqsError> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, message) in messages.iter().enumerate() {
        let size = message_bytes(message);
        if size > MAX_MESSAGE_BYTES {
            return Err(SqsError::TooLarge {
                id: message.id.clone(),
                bytes: size,
            });
        }
        if i > start && (i - start == MAX_BATCH || bytes + size > MAX_MESSAGE_BYTES) {
            out.push(&messages[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += size;
    }
    if start < messages.len() {
        out.push(&messages[start..]);
    }
    Ok(out)
}

async fn send_batch(
    client: &aws_sdk_sqs::Client,
    queue_url: &str,
    batch: &[OutgoingMessage],
) -> Result<(), SqsError> {
    let mut pending: Vec<&OutgoingMessage> = batch.iter().collect();
    let mut attempts = SEND_POLICY.start();
    loop {
        attempts.begin();
        let result = client
            .send_message_batch()
            .queue_url(queue_url)
            .set_entries(Some(
                pending
                    .iter()
                    .map(|m| m.entry(is_fifo(queue_url)))
                    .collect(),
            ))
            .send()
            .await
            .map_err(|e| SqsError::call("SendMessageBatch", queue_url, e));
        let out = match result {
            Ok(out) => out,
            Err(e) => {
                if attempts.again(e.class(), "SendMessageBatch", &e).await {
                    continue;
                }
                return Err(e);
            }
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
                class: ErrorClass::Permanent,
            });
        }
        if !attempts.left() {
            return Err(SqsError::Rejected {
                count: failed.len(),
                first_id: failed[0].id.clone(),
                reason: format!(
                    "still failing after {} attempts: {}",
                    attempts.made(),
                    failed[0].message.as_deref().unwrap_or(&failed[0].code)
                ),
                class: ErrorClass::Retryable,
            });
        }
        tracing::warn!(
            queue = queue_url,
            attempt = attempts.made(),
            failed = failed.len(),
            "SQS failed some entries; retrying them"
        );
        pending.retain(|m| failed.iter().any(|f| f.id == m.id));
        attempts.wait().await;
    }
}

/// Exponential backoff with full jitter after the `attempt`th failure ([`crate::retry`]).
pub use crate::retry::backoff;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_ids_are_what_sqs_accepts() {
        assert_eq!(batch_entry_id("2024-abc.def/ghi"), "2024-abc_def_ghi");
        assert_eq!(batch_entry_id(""), "_");
        assert_eq!(batch_entry_id(&"x".repeat(200)).len(), 80);
    }

    fn sized(i: usize, bytes: usize) -> OutgoingMessage {
        OutgoingMessage::new(format!("m{i}"), "x".repeat(bytes))
    }

    #[test]
    fn batches_hold_at_most_ten_entries_and_the_byte_limit() {
        let small: Vec<_> = (0..25).map(|i| sized(i, 10)).collect();
        let sizes: Vec<usize> = batches(&small).unwrap().iter().map(|b| b.len()).collect();
        assert_eq!(sizes, [10, 10, 5]);

        // Ten 60 KiB jobs: four fit in one call, not ten.
        let big: Vec<_> = (0..10).map(|i| sized(i, 60 * 1024)).collect();
        let split = batches(&big).unwrap();
        assert_eq!(split.iter().map(|b| b.len()).collect::<Vec<_>>(), [4, 4, 2]);
        for b in &split {
            assert!(b.iter().map(message_bytes).sum::<usize>() <= MAX_MESSAGE_BYTES);
        }
        // Attributes count too.
        let with_attr: Vec<_> = (0..2)
            .map(|i| sized(i, MAX_MESSAGE_BYTES / 2).with_attribute("a", "b"))
            .collect();
        assert_eq!(batches(&with_attr).unwrap().len(), 2);
    }

    #[test]
    fn a_message_over_the_limit_is_refused_before_sending() {
        let messages = vec![sized(0, 10), sized(1, MAX_MESSAGE_BYTES + 1)];
        let err = batches(&messages).unwrap_err();
        assert!(
            matches!(err, SqsError::TooLarge { ref id, .. } if id == "m1"),
            "{err}"
        );
        assert_eq!(err.class(), ErrorClass::Permanent);
    }
}
