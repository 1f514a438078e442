//! One `SendMessageBatch` call for one batch of the outbox, and what became of each message.

use std::time::{Duration, Instant};

use aws_sdk_sqs::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};

use crate::pending::Pending;
use fmn_aws::ingest_wire::{Encoding, ENCODING_ATTRIBUTE, MSG_ID_ATTRIBUTE};
use fmn_aws::retry::{classify_batch, ErrorClass};

/// What SQS did with a batch; messages are named by their index in the batch.
#[derive(Debug)]
pub enum Outcome {
    /// The call itself failed (SQS unreachable, throttled, 5xx): retry the whole batch.
    CallFailed { error: String, elapsed: Duration },
    /// SQS refused the call as a whole as the sender's fault (`BatchRequestTooLong`...):
    /// retrying it unchanged can never succeed; send its messages one by one.
    BatchRefused { error: String, elapsed: Duration },
    /// The call went through.
    Done {
        accepted: Vec<usize>,
        /// Failed on SQS's side: retry.
        retry: Vec<usize>,
        /// Refused as the sender's fault, with SQS's reason.
        refused: Vec<(usize, String)>,
        elapsed: Duration,
    },
}

fn attribute(value: &str) -> MessageAttributeValue {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .expect("data type is set")
}

fn entry(index: usize, p: &Pending) -> SendMessageBatchRequestEntry {
    let mut e = SendMessageBatchRequestEntry::builder()
        .id(index.to_string())
        .message_body(&p.body)
        .message_attributes(MSG_ID_ATTRIBUTE, attribute(&p.msg_id));
    if p.encoding != Encoding::Plain {
        e = e.message_attributes(ENCODING_ATTRIBUTE, attribute(p.encoding.label()));
    }
    e.build().expect("id and body are set")
}

/// Sends `batch` (at most 10 messages, within SQS's batch size) in one call.
pub async fn send_batch(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    batch: &[Pending],
    timeout: Duration,
) -> Outcome {
    let started = Instant::now();
    let call = sqs
        .send_message_batch()
        .queue_url(queue_url)
        .set_entries(Some(
            batch.iter().enumerate().map(|(i, p)| entry(i, p)).collect(),
        ))
        .send();
    let result = tokio::time::timeout(timeout, call).await;
    let elapsed = started.elapsed();
    let out = match result {
        Err(_) => {
            return Outcome::CallFailed {
                error: format!("no answer within {timeout:?}"),
                elapsed,
            }
        }
        Ok(Err(e)) => {
            // Permanent for a batch call: refused as a whole for what it carries.
            let refused = classify_batch(&e) == ErrorClass::Permanent;
            let code = e.code().map(|c| format!("{c}: ")).unwrap_or_default();
            let error = format!("{code}{}", DisplayErrorContext(&e));
            return if refused {
                Outcome::BatchRefused { error, elapsed }
            } else {
                Outcome::CallFailed { error, elapsed }
            };
        }
        Ok(Ok(out)) => out,
    };
    let mut unaccounted: Vec<bool> = vec![true; batch.len()];
    let mut accepted = Vec::new();
    let mut retry = Vec::new();
    let mut refused = Vec::new();
    for s in &out.successful {
        if let Some(i) = s.id.parse::<usize>().ok().filter(|i| *i < batch.len()) {
            if std::mem::take(&mut unaccounted[i]) {
                accepted.push(i);
            }
        }
    }
    for f in &out.failed {
        if let Some(i) = f.id.parse::<usize>().ok().filter(|i| *i < batch.len()) {
            if !std::mem::take(&mut unaccounted[i]) {
                continue;
            }
            if f.sender_fault {
                refused.push((
                    i,
                    format!("{}: {}", f.code, f.message.as_deref().unwrap_or("")),
                ));
            } else {
                retry.push(i);
            }
        }
    }
    // Anything SQS did not account for is sent again.
    retry.extend(
        unaccounted
            .iter()
            .enumerate()
            .filter(|(_, u)| **u)
            .map(|(i, _)| i),
    );
    Outcome::Done {
        accepted,
        retry,
        refused,
        elapsed,
    }
}
