//! Small DynamoDB helpers shared by the stores: attribute access, errors, paged scans and
//! queries, and batch writes that retry what DynamoDB left unprocessed.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, WriteRequest};

use crate::retry::{classify, Classify, ErrorClass, RetryPolicy};

pub type Item = HashMap<String, AttributeValue>;

/// DynamoDB's limit on one item, attribute names and values included.
pub const MAX_ITEM_BYTES: usize = 400 * 1024;

/// A DynamoDB call that failed.
#[derive(Debug, thiserror::Error)]
pub enum DynamoError {
    #[error("DynamoDB {operation} on {table} failed ({}): {message}", class.as_str())]
    Call {
        operation: &'static str,
        table: String,
        /// The service's error code (`ConditionalCheckFailedException`, …) when it sent one.
        code: Option<String>,
        /// For a cancelled transaction, each item's reason code, in the request's order
        /// (`None` for an item that was not at fault).
        cancellation_reasons: Vec<Option<String>>,
        class: ErrorClass,
        message: String,
    },
    /// An item over [`MAX_ITEM_BYTES`]: it will never be stored as it is.
    #[error("DynamoDB {operation} on {table} refused an item over the {MAX_ITEM_BYTES}-byte item limit: {message}")]
    ItemTooLarge {
        operation: &'static str,
        table: String,
        message: String,
    },
    #[error("item {key} in {table} is malformed: {reason}")]
    Malformed {
        table: String,
        key: String,
        reason: String,
    },
}

impl DynamoError {
    pub fn call<E>(
        operation: &'static str,
        table: &str,
        e: aws_sdk_dynamodb::error::SdkError<E>,
    ) -> Self
    where
        E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
    {
        let code = e
            .as_service_error()
            .and_then(|s| s.code())
            .map(str::to_string);
        let message = DisplayErrorContext(&e).to_string();
        if code.as_deref() == Some("ValidationException") && is_size_message(&message) {
            return Self::ItemTooLarge {
                operation,
                table: table.to_string(),
                message,
            };
        }
        Self::Call {
            operation,
            table: table.to_string(),
            code,
            cancellation_reasons: Vec::new(),
            class: classify(&e),
            message,
        }
    }

    /// A failed `TransactWriteItems`: a cancelled transaction keeps each item's reason, and
    /// its class is that of its reasons (a conflict or throttling is retryable; a failed
    /// condition or a validation error is not).
    pub fn transaction(
        table: &str,
        e: aws_sdk_dynamodb::error::SdkError<TransactWriteItemsError>,
    ) -> Self {
        let reasons: Vec<(Option<String>, Option<String>)> = match e.as_service_error() {
            Some(TransactWriteItemsError::TransactionCanceledException(c)) => c
                .cancellation_reasons()
                .iter()
                .map(|r| {
                    (
                        r.code().filter(|c| *c != "None").map(str::to_string),
                        r.message().map(str::to_string),
                    )
                })
                .collect(),
            _ => return Self::call("TransactWriteItems", table, e),
        };
        let message = DisplayErrorContext(&e).to_string();
        if reasons.iter().any(|(code, message)| {
            code.as_deref() == Some("ValidationError")
                && message.as_deref().is_some_and(is_size_message)
        }) {
            return Self::ItemTooLarge {
                operation: "TransactWriteItems",
                table: table.to_string(),
                message,
            };
        }
        let class = if reasons.iter().any(|(code, _)| {
            matches!(
                code.as_deref(),
                Some(
                    "TransactionConflict"
                        | "ThrottlingError"
                        | "ProvisionedThroughputExceeded"
                        | "RequestLimitExceeded"
                )
            )
        }) {
            ErrorClass::Retryable
        } else {
            ErrorClass::Permanent
        };
        Self::Call {
            operation: "TransactWriteItems",
            table: table.to_string(),
            code: Some("TransactionCanceledException".into()),
            cancellation_reasons: reasons.into_iter().map(|(code, _)| code).collect(),
            class,
            message,
        }
    }

    /// The service's error code, if any.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Call { code, .. } => code.as_deref(),
            Self::ItemTooLarge { .. } => Some("ValidationException"),
            Self::Malformed { .. } => None,
        }
    }

    /// A single-item call's condition did not hold. A transaction's never counts: see
    /// [`DynamoError::condition_failed_at`].
    pub fn is_condition_failure(&self) -> bool {
        self.code() == Some("ConditionalCheckFailedException")
    }

    /// A transaction was cancelled because the condition on its `index`th item (from 0) did
    /// not hold, and for no other reason (a conflict elsewhere is not a failed condition).
    pub fn condition_failed_at(&self, index: usize) -> bool {
        match self {
            Self::Call {
                cancellation_reasons,
                ..
            } => {
                cancellation_reasons.get(index).and_then(Option::as_deref)
                    == Some("ConditionalCheckFailed")
                    && cancellation_reasons
                        .iter()
                        .enumerate()
                        .all(|(i, r)| i == index || r.is_none())
            }
            _ => false,
        }
    }
}

impl Classify for DynamoError {
    fn class(&self) -> ErrorClass {
        match self {
            Self::Call { class, .. } => *class,
            Self::ItemTooLarge { .. } | Self::Malformed { .. } => ErrorClass::Permanent,
        }
    }
}

/// DynamoDB's words for an item over its size limit ("Item size has exceeded the maximum
/// allowed size", "Item size to update has exceeded...").
fn is_size_message(message: &str) -> bool {
    message.contains("size has exceeded") || message.contains("Item size")
}

pub fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

pub fn get_s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

pub fn get_n(item: &Item, name: &str) -> Option<u64> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

pub fn get_list(item: &Item, name: &str) -> Vec<String> {
    match item.get(name) {
        Some(AttributeValue::L(list)) => {
            list.iter().filter_map(|v| v.as_s().ok().cloned()).collect()
        }
        Some(AttributeValue::Ss(set)) => set.clone(),
        _ => Vec::new(),
    }
}

pub fn list(values: &[String]) -> AttributeValue {
    AttributeValue::L(values.iter().map(|v| s(v.as_str())).collect())
}

/// Seconds since the epoch.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// Milliseconds since the epoch.
pub fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

/// The `version` counter kept at `pk = meta, sk = version` (0 when nothing was ever written),
/// read consistently: the stores bump it in the same transaction as each change.
pub async fn read_version_counter(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
) -> Result<u64, DynamoError> {
    let out = client
        .get_item()
        .table_name(table)
        .key("pk", s("meta"))
        .key("sk", s("version"))
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| DynamoError::call("GetItem", table, e))?;
    Ok(out
        .item
        .as_ref()
        .and_then(|i| get_n(i, "version"))
        .unwrap_or(0))
}

/// Adds one to the `version` counter at `pk = meta, sk = version` and returns the new value.
pub async fn bump_version_counter(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
) -> Result<u64, DynamoError> {
    bump_version_counter_by(client, table, 1).await
}

/// Adds `by` to the `version` counter at `pk = meta, sk = version` and returns the new value:
/// the numbers `new - by + 1 ..= new` are the caller's (a bulk write takes a block at once).
pub async fn bump_version_counter_by(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    by: u64,
) -> Result<u64, DynamoError> {
    let out = client
        .update_item()
        .table_name(table)
        .key("pk", s("meta"))
        .key("sk", s("version"))
        .update_expression("ADD version :by")
        .expression_attribute_values(":by", n(by))
        .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedNew)
        .send()
        .await
        .map_err(|e| DynamoError::call("UpdateItem", table, e))?;
    out.attributes
        .as_ref()
        .and_then(|a| get_n(a, "version"))
        .ok_or_else(|| DynamoError::Malformed {
            table: table.to_string(),
            key: "meta/version".into(),
            reason: "the counter has no number".into(),
        })
}

/// Every item of a table (a paged scan): one pass where several prefix scans would each read
/// the whole table.
pub async fn scan_all(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
) -> Result<Vec<Item>, DynamoError> {
    let mut out = Vec::new();
    let mut start: Option<Item> = None;
    loop {
        let page = client
            .scan()
            .table_name(table)
            .consistent_read(true)
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .map_err(|e| DynamoError::call("Scan", table, e))?;
        out.extend(page.items.unwrap_or_default());
        match page.last_evaluated_key {
            Some(key) if !key.is_empty() => start = Some(key),
            _ => return Ok(out),
        }
    }
}

/// DynamoDB's size of an item (names and values, as its write units are counted), close enough
/// for reporting: a write costs one unit per started KiB.
pub fn item_size(item: &Item) -> usize {
    fn value_size(v: &AttributeValue) -> usize {
        match v {
            AttributeValue::S(s) => s.len(),
            AttributeValue::N(n) => n.len().div_ceil(2) + 1,
            AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
            AttributeValue::B(b) => b.as_ref().len(),
            AttributeValue::Ss(v) => v.iter().map(String::len).sum(),
            AttributeValue::L(l) => 3 + l.iter().map(|v| 1 + value_size(v)).sum::<usize>(),
            AttributeValue::M(m) => {
                3 + m
                    .iter()
                    .map(|(k, v)| 1 + k.len() + value_size(v))
                    .sum::<usize>()
            }
            _ => 8,
        }
    }
    item.iter().map(|(k, v)| k.len() + value_size(v)).sum()
}

/// The write units a put of `item` consumes.
pub fn write_units(item: &Item) -> u64 {
    item_size(item).div_ceil(1024).max(1) as u64
}

/// Every item of a table whose `pk` starts with `prefix` (a paged scan).
pub async fn scan_prefix(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    prefix: &str,
) -> Result<Vec<Item>, DynamoError> {
    let mut out = Vec::new();
    scan_prefix_pages(client, table, prefix, |page| {
        out.extend(page);
        Ok::<_, DynamoError>(())
    })
    .await?;
    Ok(out)
}

/// [`scan_prefix`], handing each page to `each_page` as it arrives, so a caller that decodes
/// items holds one page of raw items at a time (a cold start's memory), not the whole table.
/// Returns how long was spent waiting for pages (the rest is the caller's).
pub async fn scan_prefix_pages<E: From<DynamoError>>(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    prefix: &str,
    mut each_page: impl FnMut(Vec<Item>) -> Result<(), E>,
) -> Result<std::time::Duration, E> {
    let mut waited = std::time::Duration::ZERO;
    let mut start: Option<Item> = None;
    loop {
        let asked = std::time::Instant::now();
        let page = client
            .scan()
            .table_name(table)
            .filter_expression("begins_with(pk, :p)")
            .expression_attribute_values(":p", s(prefix))
            .consistent_read(true)
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .map_err(|e| DynamoError::call("Scan", table, e))?;
        waited += asked.elapsed();
        each_page(page.items.unwrap_or_default())?;
        match page.last_evaluated_key {
            Some(key) if !key.is_empty() => start = Some(key),
            _ => return Ok(waited),
        }
    }
}

/// Every item of one partition with `sk` greater than `after` (all when None), in order.
pub async fn query_after(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    pk: &str,
    after: Option<&str>,
) -> Result<Vec<Item>, DynamoError> {
    let mut out = Vec::new();
    let mut start: Option<Item> = None;
    loop {
        let mut q = client
            .query()
            .table_name(table)
            .consistent_read(true)
            .expression_attribute_values(":pk", s(pk))
            .set_exclusive_start_key(start.take());
        q = match after {
            Some(after) => q
                .key_condition_expression("pk = :pk AND sk > :after")
                .expression_attribute_values(":after", s(after)),
            None => q.key_condition_expression("pk = :pk"),
        };
        let page = q
            .send()
            .await
            .map_err(|e| DynamoError::call("Query", table, e))?;
        out.extend(page.items.unwrap_or_default());
        match page.last_evaluated_key {
            Some(key) if !key.is_empty() => start = Some(key),
            _ => return Ok(out),
        }
    }
}

/// Writes (puts and deletes) 25 per call, retrying failed calls and unprocessed items with
/// backoff.
pub async fn batch_write(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    requests: Vec<WriteRequest>,
) -> Result<(), DynamoError> {
    const POLICY: RetryPolicy = RetryPolicy::attempts(8);
    let mut requests = requests;
    while !requests.is_empty() {
        let rest = requests.split_off(requests.len().min(25));
        let mut pending = std::mem::replace(&mut requests, rest);
        let mut attempts = POLICY.start();
        while !pending.is_empty() {
            attempts.begin();
            let out = client
                .batch_write_item()
                .request_items(table, pending.clone())
                .send()
                .await
                .map_err(|e| DynamoError::call("BatchWriteItem", table, e));
            match out {
                Ok(out) => {
                    pending = out
                        .unprocessed_items
                        .and_then(|mut m| m.remove(table))
                        .unwrap_or_default();
                }
                Err(e) => {
                    if attempts.again(e.class(), "BatchWriteItem", &e).await {
                        continue;
                    }
                    return Err(e);
                }
            }
            if !pending.is_empty() {
                if !attempts.left() {
                    return Err(DynamoError::Call {
                        operation: "BatchWriteItem",
                        table: table.to_string(),
                        code: None,
                        cancellation_reasons: Vec::new(),
                        class: ErrorClass::Retryable,
                        message: format!(
                            "{} items still unprocessed after {} attempts",
                            pending.len(),
                            attempts.made()
                        ),
                    });
                }
                attempts.wait().await;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::types::error::TransactionCanceledException;
    use aws_sdk_dynamodb::types::CancellationReason;
    use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
    use aws_smithy_runtime_api::client::result::SdkError;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::ErrorMetadata;

    /// A cancelled transaction as DynamoDB reports it: one reason per item, `None` for items
    /// not at fault.
    fn cancelled(reasons: &[(&str, &str)]) -> DynamoError {
        let mut e = TransactionCanceledException::builder()
            .message("Transaction cancelled")
            .meta(
                ErrorMetadata::builder()
                    .code("TransactionCanceledException")
                    .build(),
            );
        for (code, message) in reasons {
            e = e.cancellation_reasons(
                CancellationReason::builder()
                    .code(*code)
                    .message(*message)
                    .build(),
            );
        }
        let raw = HttpResponse::new(StatusCode::try_from(400).unwrap(), SdkBody::empty());
        DynamoError::transaction(
            "t",
            SdkError::service_error(
                TransactWriteItemsError::TransactionCanceledException(e.build()),
                raw,
            ),
        )
    }

    #[test]
    fn a_conflict_is_retryable_and_no_failed_condition() {
        let e = cancelled(&[
            ("None", ""),
            ("None", ""),
            ("TransactionConflict", "conflict"),
        ]);
        assert_eq!(e.class(), ErrorClass::Retryable);
        assert!(!e.condition_failed_at(0));
        assert!(!e.is_condition_failure());
    }

    #[test]
    fn only_the_named_item_s_failed_condition_counts() {
        let e = cancelled(&[("ConditionalCheckFailed", "x"), ("None", ""), ("None", "")]);
        assert!(e.condition_failed_at(0));
        assert!(!e.condition_failed_at(1));
        assert_eq!(e.class(), ErrorClass::Permanent);
        // A failed condition together with a conflict elsewhere is not "already there".
        let both = cancelled(&[("ConditionalCheckFailed", "x"), ("TransactionConflict", "")]);
        assert!(!both.condition_failed_at(0));
        assert_eq!(both.class(), ErrorClass::Retryable);
    }

    #[test]
    fn an_item_over_the_size_limit_is_its_own_permanent_error() {
        let e = cancelled(&[(
            "ValidationError",
            "Item size has exceeded the maximum allowed size",
        )]);
        assert!(matches!(e, DynamoError::ItemTooLarge { .. }), "{e}");
        assert_eq!(e.class(), ErrorClass::Permanent);
        assert!(!e.condition_failed_at(0));
    }
}

/// How long a full load spent reading items and turning them into values (the cold start's
/// split, reported by the stores' `*_timed` loads; two clock reads per phase).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoadTiming {
    /// Scans and queries, until the last page arrived.
    pub read: std::time::Duration,
    /// Items to values.
    pub decode: std::time::Duration,
    /// Items read.
    pub items: usize,
}
