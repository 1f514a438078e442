//! An SQS event source mapping, as Lambda runs one: gather a batch (up to `batch_size`
//! records, waiting at most the batching window once the first arrives), invoke the handler
//! with the function's timeout, delete the records it did not report as failed, and leave the
//! failed ones for SQS to redeliver after the visibility timeout (and, past the queue's
//! `maxReceiveCount`, to move to the dead-letter queue).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName};
use fmn_aws::batch::event_from_received;
use fmn_aws::lambda::SqsBatchHandler;
use fmn_aws::sqs::backoff;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::stats::FunctionStats;

/// How long one empty receive waits (SQS long polling); short enough to notice shutdown.
const LONG_POLL_SECS: i32 = 5;

#[derive(Clone, Debug)]
pub struct MappingConfig {
    pub function: String,
    pub queue_url: String,
    pub queue_arn: String,
    pub batch_size: usize,
    pub batching_window: Duration,
    pub function_timeout: Duration,
    pub report_batch_item_failures: bool,
    /// Batches in flight at once (pollers), as Lambda's event source runs them: the
    /// template's `MaximumConcurrency`, else the 5 Lambda starts a standard queue with; 1 for
    /// a FIFO queue (one message group: one batch at a time).
    pub concurrency: usize,
}

/// Lambda's initial pollers for a standard queue without `MaximumConcurrency`.
pub const DEFAULT_STANDARD_CONCURRENCY: usize = 5;

/// Runs the mapping until `shutdown`; a batch in flight is finished first.
pub async fn run<H: SqsBatchHandler>(
    sqs: aws_sdk_sqs::Client,
    config: MappingConfig,
    handler: Arc<H>,
    stats: Arc<FunctionStats>,
    shutdown: CancellationToken,
) {
    tracing::info!(function = %config.function, queue = %config.queue_url, batch_size = config.batch_size, "event source mapping started");
    let mut errors = 0;
    loop {
        let received = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = receive_batch(&sqs, &config) => r,
        };
        let messages = match received {
            Ok(m) => {
                errors = 0;
                m
            }
            Err(e) => {
                errors += 1;
                tracing::warn!(function = %config.function, error = %e, "receiving from the queue failed; retrying");
                backoff(errors).await;
                continue;
            }
        };
        if messages.is_empty() {
            continue;
        }
        let failed = invoke(&config, &handler, &messages).await;
        stats.record_batch(messages.len(), failed.len());
        if let Err(e) = delete_succeeded(&sqs, &config, &messages, &failed).await {
            // The records come back after the visibility timeout; handlers are idempotent.
            tracing::error!(function = %config.function, error = %e, "deleting processed records failed; they will be redelivered");
        }
    }
    tracing::info!(function = %config.function, "event source mapping stopped");
}

/// Up to `batch_size` messages: waits (long polling) for the first, then gathers more until
/// the batch is full or the batching window has passed.
pub async fn receive_batch(
    sqs: &aws_sdk_sqs::Client,
    config: &MappingConfig,
) -> Result<Vec<Message>, String> {
    let mut messages = Vec::new();
    let mut deadline: Option<Instant> = None;
    loop {
        let wanted = (config.batch_size - messages.len()).min(10) as i32;
        let wait = match deadline {
            None => LONG_POLL_SECS,
            Some(d) => d
                .saturating_duration_since(Instant::now())
                .as_secs_f64()
                .ceil()
                .clamp(0.0, 20.0) as i32,
        };
        let out = sqs
            .receive_message()
            .queue_url(&config.queue_url)
            .max_number_of_messages(wanted)
            .wait_time_seconds(wait)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(|e| DisplayErrorContext(&e).to_string())?;
        let got = out.messages.unwrap_or_default();
        if !got.is_empty() && deadline.is_none() {
            deadline = Some(Instant::now() + config.batching_window);
        }
        messages.extend(got);
        let Some(d) = deadline else {
            return Ok(messages); // nothing yet: let the caller check for shutdown
        };
        if messages.len() >= config.batch_size || Instant::now() >= d {
            return Ok(messages);
        }
    }
}

/// Invokes the handler; returns the ids of the records to leave on the queue.
async fn invoke<H: SqsBatchHandler>(
    config: &MappingConfig,
    handler: &Arc<H>,
    messages: &[Message],
) -> HashSet<String> {
    let all: HashSet<String> = messages
        .iter()
        .filter_map(|m| m.message_id.clone())
        .collect();
    let event = event_from_received(messages, &config.queue_arn);
    let handler = Arc::clone(handler);
    let function = config.function.clone();
    let task = tokio::spawn(async move {
        let started = std::time::Instant::now();
        let response = handler.handle_batch(event).await;
        fmn_aws::request_count::record_invocation(&function, started.elapsed());
        response
    });
    match tokio::time::timeout(config.function_timeout, task).await {
        Ok(Ok(response)) if config.report_batch_item_failures => {
            let failed: HashSet<String> = response
                .batch_item_failures
                .into_iter()
                .map(|f| f.item_identifier)
                .collect();
            if let Some(unknown) = failed.iter().find(|id| !all.contains(*id)) {
                // Lambda treats an unknown identifier as a failure of the whole batch.
                tracing::error!(function = %config.function, id = %unknown, "handler reported an unknown record; the whole batch fails");
                return all;
            }
            failed
        }
        Ok(Ok(_)) => HashSet::new(),
        Ok(Err(e)) => {
            tracing::error!(function = %config.function, error = %e, records = all.len(), "handler crashed; the whole batch returns to the queue");
            all
        }
        Err(_) => {
            tracing::error!(function = %config.function, timeout = ?config.function_timeout, records = all.len(), "handler timed out; the whole batch returns to the queue");
            all
        }
    }
}

async fn delete_succeeded(
    sqs: &aws_sdk_sqs::Client,
    config: &MappingConfig,
    messages: &[Message],
    failed: &HashSet<String>,
) -> Result<(), String> {
    // Entry ids by position: one message may be in a batch twice (two receipt handles, both
    // to delete), and a call with two equal ids fails as a whole.
    let done: Vec<_> = messages
        .iter()
        .filter(|m| m.message_id.as_ref().is_some_and(|id| !failed.contains(id)))
        .enumerate()
        .filter_map(|(i, m)| {
            DeleteMessageBatchRequestEntry::builder()
                .id(format!("m{i}"))
                .set_receipt_handle(m.receipt_handle.clone())
                .build()
                .ok()
        })
        .collect();
    for chunk in done.chunks(10) {
        let out = sqs
            .delete_message_batch()
            .queue_url(&config.queue_url)
            .set_entries(Some(chunk.to_vec()))
            .send()
            .await
            .map_err(|e| DisplayErrorContext(&e).to_string())?;
        if let Some(f) = out.failed.first() {
            return Err(format!(
                "{} deletes failed, first: {} {}",
                out.failed.len(),
                f.code,
                f.message.as_deref().unwrap_or("")
            ));
        }
    }
    Ok(())
}
