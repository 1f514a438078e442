//! Processing one SQS batch record by record, so that one bad record never re-runs the batch:
//! the handler's verdict per record becomes the `batchItemFailures` Lambda gives back to SQS.

use std::future::Future;

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use tracing::Instrument;

use crate::retry::{Classify, ErrorClass};
use crate::sqs::{change_visibility, send_all, OutgoingMessage};
pub use fmn_core::retry_schedule::RetrySchedule;

/// Why a record was not processed.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// Worth another try (a service was down, throttled): the record goes back to the queue,
    /// and SQS moves it to the dead-letter queue after the queue's `maxReceiveCount`.
    #[error("{0}")]
    Retry(String),
    /// Will never succeed (malformed, refused for good): the record goes straight to the
    /// dead-letter queue with this reason, instead of being retried in vain.
    #[error("{0}")]
    Reject(String),
    /// Nothing can succeed until someone acts (SES paused, a queue missing): not this record's
    /// fault. It and every record after it in the batch go back to the queue untried, and the
    /// condition is logged once for the batch.
    #[error("{0}")]
    Halt(String),
    /// The service asked us to come back later (a rate limit with its delay, Matrix's
    /// `M_LIMIT_EXCEEDED`): not a failure, so it does not use up the retry schedule. With a
    /// schedule the record is held back in its queue for `after` (a visibility change),
    /// without one it comes back after the queue's visibility timeout; SQS's
    /// `maxReceiveCount` still bounds it.
    #[error("{reason}")]
    RetryAfter {
        reason: String,
        after: std::time::Duration,
    },
}

impl RecordError {
    /// The verdict for an error of `class`, with `reason`.
    pub fn of_class(class: ErrorClass, reason: String) -> Self {
        match class {
            ErrorClass::Retryable => RecordError::Retry(reason),
            ErrorClass::Permanent => RecordError::Reject(reason),
            ErrorClass::ServiceWide => RecordError::Halt(reason),
        }
    }
}

impl From<crate::dynamo::DynamoError> for RecordError {
    fn from(e: crate::dynamo::DynamoError) -> Self {
        Self::of_class(e.class(), e.to_string())
    }
}

impl From<crate::sqs::SqsError> for RecordError {
    fn from(e: crate::sqs::SqsError) -> Self {
        Self::of_class(e.class(), e.to_string())
    }
}

impl From<crate::ses::SesError> for RecordError {
    fn from(e: crate::ses::SesError) -> Self {
        Self::of_class(e.class(), e.to_string())
    }
}

/// Message attribute that carries the reason on a dead-lettered record.
pub const REASON_ATTRIBUTE: &str = "fmn-failure-reason";
/// Message attribute that carries the original message id on a dead-lettered record.
pub const ORIGINAL_ID_ATTRIBUTE: &str = "fmn-original-message-id";

/// A record as a handler sees it (owned, so a handler's future may keep it across awaits).
#[derive(Clone, Debug)]
pub struct Record {
    pub message_id: String,
    pub body: String,
    /// How many times SQS has delivered it (1 the first time).
    pub receive_count: u32,
    pub raw: SqsMessage,
}

/// Where rejected records go: the function's dead-letter queue; and, with a retry schedule,
/// when a failed record is tried again and when it is given up.
#[derive(Clone, Debug)]
pub struct DeadLetterQueue {
    pub sqs: aws_sdk_sqs::Client,
    pub url: String,
    /// `None`: a failed record comes back after the source queue's visibility timeout, until
    /// SQS moves it here after the queue's `maxReceiveCount`.
    pub retry: Option<ScheduledRetry>,
}

impl DeadLetterQueue {
    pub fn new(sqs: aws_sdk_sqs::Client, url: String) -> Self {
        Self {
            sqs,
            url,
            retry: None,
        }
    }

    /// Failed records from `source_url` come back on `schedule`; after its last try they are
    /// dead-lettered with their last reason.
    pub fn with_schedule(mut self, source_url: String, schedule: Option<RetrySchedule>) -> Self {
        self.retry = schedule.map(|schedule| ScheduledRetry {
            source_url,
            schedule,
        });
        self
    }
}

/// The variable that sets the retry schedule of every queue-fed function.
pub const RETRY_SCHEDULE_VAR: &str = "FMN_RETRY_SCHEDULE";

/// `FMN_RETRY_SCHEDULE` (e.g. `5s,1m,10m,1h,6h`); unset: none (the queue's visibility timeout
/// and `maxReceiveCount` decide, as SQS does by itself).
pub fn retry_schedule_from(
    vars: &crate::vars::Vars<'_>,
) -> Result<Option<RetrySchedule>, crate::vars::ConfigError> {
    let Some(text) = vars.text(RETRY_SCHEDULE_VAR) else {
        return Ok(None);
    };
    text.parse()
        .map(Some)
        .map_err(|_| crate::vars::ConfigError {
            name: RETRY_SCHEDULE_VAR.to_string(),
            value: text,
            expected: "a retry schedule: delays such as 5s,1m,10m,1h,6h, each at most 12h",
        })
}

/// [`retry_schedule_from`] the process environment.
pub fn retry_schedule_from_env() -> Result<Option<RetrySchedule>, crate::vars::ConfigError> {
    retry_schedule_from(&crate::vars::Vars::from_env())
}

/// A retry schedule applied to the records of one queue.
#[derive(Clone, Debug)]
pub struct ScheduledRetry {
    /// The queue the records come from (the visibility change is made there).
    pub source_url: String,
    pub schedule: RetrySchedule,
}

/// The span a record's work runs in, so every line logged for it carries its message id.
pub fn record_span(function: &str, record: &Record) -> tracing::Span {
    tracing::info_span!("record", function, message_id = %record.message_id)
}

/// The batch's records, in order; one without a message id is left out (logged): it cannot
/// be reported back by id, so [`process_records`] and [`process_batch`] report the whole
/// batch failed ([`fail_whole_batch_if_unnamed`]) and SQS redelivers it.
pub fn records(function: &str, event: &SqsEvent) -> Vec<Record> {
    let mut records = Vec::with_capacity(event.records.len());
    for message in &event.records {
        let Some(message_id) = message.message_id.as_deref() else {
            tracing::error!(
                function,
                receipt_handle = message.receipt_handle.as_deref().unwrap_or("-"),
                "record without a message id; the whole batch is returned to the queue so it is redelivered"
            );
            continue;
        };
        records.push(Record {
            message_id: message_id.to_string(),
            body: message.body.clone().unwrap_or_default(),
            receive_count: message
                .attributes
                .get("ApproximateReceiveCount")
                .and_then(|c| c.parse().ok())
                .unwrap_or(1),
            raw: message.clone(),
        });
    }
    records
}

/// Runs `handle` on every record, in order, each in its [`record_span`], and returns the
/// records to retry. A rejected record is sent to `dead_letter` with its reason; if that send
/// fails, or no dead-letter queue is given, it is returned to the queue instead, so nothing is
/// ever dropped. After a [`RecordError::Halt`] the rest of the batch is not tried: it all goes
/// back to the queue. SQS may put one message in a batch twice: it is handled once, and a
/// repeat takes its first copy's verdict (only one copy is dead-lettered).
pub async fn process_records<F, Fut>(
    function: &str,
    event: SqsEvent,
    dead_letter: Option<&DeadLetterQueue>,
    mut handle: F,
) -> SqsBatchResponse
where
    F: FnMut(Record) -> Fut,
    Fut: Future<Output = Result<(), RecordError>>,
{
    let mut response = SqsBatchResponse::default();
    fail_whole_batch_if_unnamed(&event, &mut response);
    let mut halted = false;
    // Message id → whether its first copy went back to the queue.
    let mut seen: std::collections::HashMap<String, bool> = std::collections::HashMap::new();
    for record in records(function, &event) {
        if halted {
            response.batch_item_failures.push(failure(&record));
            continue;
        }
        if let Some(&retried) = seen.get(&record.message_id) {
            tracing::info!(function, message_id = %record.message_id, "the same message twice in one batch: handled once");
            if retried {
                response.batch_item_failures.push(failure(&record));
            }
            continue;
        }
        let span = record_span(function, &record);
        let verdict = handle(record.clone()).instrument(span.clone()).await;
        halted = matches!(verdict, Err(RecordError::Halt(_)));
        let failures_before = response.batch_item_failures.len();
        settle(function, dead_letter, &record, verdict, &mut response)
            .instrument(span)
            .await;
        seen.insert(
            record.message_id.clone(),
            response.batch_item_failures.len() > failures_before,
        );
    }
    if halted {
        tracing::warn!(
            function,
            returned = response.batch_item_failures.len(),
            "batch stopped by a service-wide condition; its remaining records returned to the queue untried"
        );
    }
    response
}

/// A record without a message id cannot be named in the response, and a record not named
/// counts as done (SQS deletes it). An empty identifier makes Lambda (and the local runner)
/// fail the whole batch instead: the other records are repeated, which their delivery records
/// make harmless, and the unnamed one is not lost.
fn fail_whole_batch_if_unnamed(event: &SqsEvent, response: &mut SqsBatchResponse) {
    if event.records.iter().any(|m| m.message_id.is_none()) {
        response
            .batch_item_failures
            .push(BatchItemFailure::default());
    }
}

fn failure(record: &Record) -> BatchItemFailure {
    let mut failure = BatchItemFailure::default();
    failure.item_identifier = record.message_id.clone();
    failure
}

/// For handlers that decide per batch (one connection for all records): `decide` gets the
/// batch's records, each message once (SQS may put a message in a batch twice), and returns
/// one verdict per record it got, in order; verdicts are then reported as by
/// [`process_records`]. A repeated message gets its first copy's verdict, except that only one
/// copy is dead-lettered; a record `decide` gave no verdict is retried.
pub async fn process_batch<F, Fut>(
    function: &str,
    event: SqsEvent,
    dead_letter: Option<&DeadLetterQueue>,
    decide: F,
) -> SqsBatchResponse
where
    F: FnOnce(Vec<Record>) -> Fut,
    Fut: Future<Output = Vec<Result<(), RecordError>>>,
{
    let all = records(function, &event);
    let mut seen = std::collections::HashSet::new();
    let unique: Vec<Record> = all
        .iter()
        .filter(|r| seen.insert(r.message_id.clone()))
        .cloned()
        .collect();
    let ids: Vec<String> = unique.iter().map(|r| r.message_id.clone()).collect();
    let mut verdicts: std::collections::HashMap<String, Result<(), RecordError>> =
        ids.into_iter().zip(decide(unique).await).collect();
    let mut response = SqsBatchResponse::default();
    fail_whole_batch_if_unnamed(&event, &mut response);
    for record in all {
        let verdict = match verdicts.get_mut(&record.message_id) {
            None => Err(RecordError::Retry("not handled".into())),
            // Dead-letter one copy; the others are the same message.
            Some(v @ Err(RecordError::Reject(_))) => std::mem::replace(v, Ok(())),
            Some(Ok(())) => Ok(()),
            Some(Err(RecordError::Retry(reason))) => Err(RecordError::Retry(reason.clone())),
            Some(Err(RecordError::Halt(reason))) => Err(RecordError::Halt(reason.clone())),
            Some(Err(RecordError::RetryAfter { reason, after })) => Err(RecordError::RetryAfter {
                reason: reason.clone(),
                after: *after,
            }),
        };
        let span = record_span(function, &record);
        settle(function, dead_letter, &record, verdict, &mut response)
            .instrument(span)
            .await;
    }
    response
}

/// Acts on one record's verdict: a retry (or a rejection that cannot be dead-lettered) goes
/// into `response`'s failures.
async fn settle(
    function: &str,
    dead_letter: Option<&DeadLetterQueue>,
    record: &Record,
    verdict: Result<(), RecordError>,
    response: &mut SqsBatchResponse,
) {
    let message_id = record.message_id.as_str();
    let receive_count = record.receive_count;
    let verdict = match (verdict, dead_letter.and_then(|d| d.retry.as_ref())) {
        (Err(RecordError::RetryAfter { reason, after }), Some(retry)) => {
            let delay = after.clamp(
                std::time::Duration::from_secs(1),
                fmn_core::retry_schedule::MAX_DELAY,
            );
            Err(RecordError::Retry(
                hold_back(function, retry, dead_letter, record, delay, reason).await,
            ))
        }
        (Err(RecordError::RetryAfter { reason, .. }), None) => Err(RecordError::Retry(reason)),
        (Err(RecordError::Retry(reason) | RecordError::Halt(reason)), Some(retry)) => {
            match retry.schedule.after_try(receive_count) {
                Some(delay) => Err(RecordError::Retry(
                    hold_back(function, retry, dead_letter, record, delay, reason).await,
                )),
                None => {
                    let reason = format!(
                        "gave up after {receive_count} tries (retry schedule {}): {reason}",
                        retry.schedule
                    );
                    Err(RecordError::Reject(reason))
                }
            }
        }
        (verdict, _) => verdict,
    };
    let retry = match verdict {
        Ok(()) => false,
        Err(RecordError::Retry(reason) | RecordError::RetryAfter { reason, .. }) => {
            tracing::warn!(function, message_id, receive_count, %reason, "record failed; returned to the queue");
            true
        }
        Err(RecordError::Halt(reason)) => {
            tracing::error!(function, message_id, receive_count, %reason, "service-wide condition; record returned to the queue");
            true
        }
        Err(RecordError::Reject(reason)) => match dead_letter {
            Some(dlq) => match dead_letter_record(dlq, record, &reason).await {
                Ok(()) => {
                    tracing::warn!(function, message_id, %reason, dead_letter_queue = %dlq.url, "record rejected; dead-lettered");
                    false
                }
                Err(e) => {
                    tracing::error!(function, message_id, %reason, error = %e, "record rejected but the dead-letter queue failed; returned to the queue");
                    true
                }
            },
            None => {
                tracing::warn!(function, message_id, %reason, "record rejected; returned to the queue for SQS to dead-letter");
                true
            }
        },
    };
    if retry {
        response.batch_item_failures.push(failure(record));
    }
}

/// Holds a failed record back for `delay` (its retry schedule's), and returns the reason to
/// log. If SQS refuses, the record comes back after the queue's visibility timeout instead.
async fn hold_back(
    function: &str,
    retry: &ScheduledRetry,
    dead_letter: Option<&DeadLetterQueue>,
    record: &Record,
    delay: std::time::Duration,
    reason: String,
) -> String {
    let (Some(dlq), Some(receipt)) = (dead_letter, record.raw.receipt_handle.as_deref()) else {
        return reason;
    };
    match change_visibility(&dlq.sqs, &retry.source_url, receipt, delay).await {
        Ok(()) => format!(
            "{reason} (try {} of {}; next in {}s)",
            record.receive_count,
            retry.schedule.tries(),
            delay.as_secs()
        ),
        Err(e) => {
            tracing::warn!(function, message_id = %record.message_id, error = %e, "could not schedule the next try; it comes after the queue's visibility timeout");
            reason
        }
    }
}

async fn dead_letter_record(
    dlq: &DeadLetterQueue,
    record: &Record,
    reason: &str,
) -> Result<(), crate::sqs::SqsError> {
    // SQS attribute values are limited; a reason is a sentence, not a dump.
    let reason: String = reason.chars().take(1000).collect();
    let mut message = OutgoingMessage::new(&record.message_id, record.body.as_str());
    // The record's own attributes travel with it (`fmn-encoding` says how to read the body,
    // so a redriven copy is read as the original was). SQS takes ten attributes; two are ours.
    let mut own: Vec<(&String, &String)> = record
        .raw
        .message_attributes
        .iter()
        .filter(|(name, _)| *name != REASON_ATTRIBUTE && *name != ORIGINAL_ID_ATTRIBUTE)
        .filter_map(|(name, a)| Some((name, a.string_value.as_ref()?)))
        .collect();
    own.sort();
    for (name, value) in own.into_iter().take(8) {
        message = message.with_attribute(name.as_str(), value.as_str());
    }
    let message = message
        .with_attribute(REASON_ATTRIBUTE, reason)
        .with_attribute(ORIGINAL_ID_ATTRIBUTE, record.message_id.as_str());
    send_all(&dlq.sqs, &dlq.url, &[message]).await
}

/// Builds an `SqsEvent` from messages received with `ReceiveMessage`, as Lambda's event
/// source mapping does (the local runner and tests use it).
pub fn event_from_received(messages: &[aws_sdk_sqs::types::Message], source_arn: &str) -> SqsEvent {
    let mut event = SqsEvent::default();
    for m in messages {
        let mut record = SqsMessage::default();
        record.message_id = m.message_id.clone();
        record.receipt_handle = m.receipt_handle.clone();
        record.body = m.body.clone();
        record.md5_of_body = m.md5_of_body.clone();
        record.attributes = m
            .attributes
            .as_ref()
            .map(|a| {
                a.iter()
                    .map(|(k, v)| (k.as_str().to_string(), v.clone()))
                    .collect()
            })
            .unwrap_or_default();
        record.message_attributes = m
            .message_attributes
            .as_ref()
            .map(|attrs| {
                attrs
                    .iter()
                    .map(|(k, v)| {
                        let mut a = aws_lambda_events::sqs::SqsMessageAttribute::default();
                        a.string_value = v.string_value.clone();
                        a.data_type = Some(v.data_type.clone());
                        (k.clone(), a)
                    })
                    .collect()
            })
            .unwrap_or_default();
        record.event_source = Some("aws:sqs".to_string());
        record.event_source_arn = Some(source_arn.to_string());
        event.records.push(record);
    }
    event
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(bodies: &[&str]) -> SqsEvent {
        let mut event = SqsEvent::default();
        for (i, body) in bodies.iter().enumerate() {
            let mut m = SqsMessage::default();
            m.message_id = Some(format!("m{i}"));
            m.body = Some(body.to_string());
            m.attributes
                .insert("ApproximateReceiveCount".into(), "2".into());
            event.records.push(m);
        }
        event
    }

    /// The verdict the tests' handlers give a record with this body.
    fn verdict(body: &str) -> Result<(), RecordError> {
        match body {
            "ok" => Ok(()),
            "retry" => Err(RecordError::Retry("down".into())),
            "halt" => Err(RecordError::Halt("paused".into())),
            _ => Err(RecordError::Reject("bad".into())),
        }
    }

    fn failed(response: &SqsBatchResponse) -> Vec<&str> {
        response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect()
    }

    #[tokio::test]
    async fn only_failed_records_are_reported() {
        let response =
            process_records("test", event(&["ok", "retry", "ok", "reject"]), None, |r| {
                assert_eq!(r.receive_count, 2);
                std::future::ready(verdict(&r.body))
            })
            .await;
        // Without a dead-letter queue a rejected record is retried, never dropped.
        assert_eq!(failed(&response), ["m1", "m3"]);
    }

    #[tokio::test]
    async fn a_service_wide_condition_returns_the_rest_of_the_batch_untried() {
        let mut tried = Vec::new();
        let response = process_records("test", event(&["ok", "halt", "ok", "reject"]), None, |r| {
            tried.push(r.message_id.clone());
            std::future::ready(verdict(&r.body))
        })
        .await;
        assert_eq!(tried, ["m0", "m1"]);
        assert_eq!(failed(&response), ["m1", "m2", "m3"]);
    }

    /// SQS may hand one message twice in a batch (seen on LocalStack): one handling, and both
    /// copies share its verdict.
    #[tokio::test]
    async fn a_message_twice_in_a_batch_is_handled_once() {
        let mut e = event(&["ok", "retry"]);
        for i in 0..2 {
            let mut copy = e.records[i].clone();
            copy.receipt_handle = Some(format!("second-{i}"));
            e.records.push(copy);
        }
        let mut tried = Vec::new();
        let response = process_records("test", e, None, |r| {
            tried.push(r.message_id.clone());
            std::future::ready(verdict(&r.body))
        })
        .await;
        assert_eq!(tried, ["m0", "m1"]);
        assert_eq!(failed(&response), ["m1", "m1"]);
    }

    #[test]
    fn store_errors_become_the_verdict_of_their_class() {
        use crate::ses::SesError;
        assert!(matches!(
            RecordError::from(SesError::ServiceWide("paused".into())),
            RecordError::Halt(_)
        ));
        assert!(matches!(
            RecordError::from(SesError::Rejected("bad address".into())),
            RecordError::Reject(_)
        ));
        assert!(matches!(
            RecordError::from(SesError::Unavailable("throttled".into())),
            RecordError::Retry(_)
        ));
    }

    #[tokio::test]
    async fn a_record_without_a_message_id_fails_the_whole_batch() {
        let mut e = event(&["ok", "ok"]);
        e.records[1].message_id = None;
        let response = process_records("test", e.clone(), None, |r| {
            std::future::ready(verdict(&r.body))
        })
        .await;
        // An empty identifier: Lambda returns every record of the batch to the queue.
        assert_eq!(failed(&response), [""]);
        let response = process_batch("test", e, None, |records| async move {
            records.iter().map(|r| verdict(&r.body)).collect()
        })
        .await;
        assert_eq!(failed(&response), [""]);
    }

    #[tokio::test]
    async fn records_are_handled_in_order() {
        let mut seen = Vec::new();
        process_records("test", event(&["a", "b", "c"]), None, |r| {
            seen.push(r.body);
            async { Ok(()) }
        })
        .await;
        assert_eq!(seen, ["a", "b", "c"]);
    }

    #[tokio::test]
    async fn a_batch_decider_sees_each_message_once() {
        let mut e = event(&["ok", "reject", "retry"]);
        e.records.push(e.records[1].clone());
        e.records.push(e.records[2].clone());
        let response = process_batch("test", e, None, |records| async move {
            assert_eq!(records.len(), 3);
            records.iter().map(|r| verdict(&r.body)).collect()
        })
        .await;
        // The rejection is reported once; both copies of the retry go back.
        assert_eq!(failed(&response), ["m1", "m2", "m2"]);
    }
}
