//! Counting the AWS requests (and DynamoDB capacity units) a process makes, by stage, service,
//! operation and resource: what decides the bill. Off unless `FMN_COUNT_REQUESTS` is on (or a
//! bench calls [`enable`]); then every client scoped to a component ([`AwsClients::scoped`],
//! [`AwsClients::counted_as`]) carries a [`RequestCounter`] interceptor, which
//!
//! - counts each attempt sent (each is billed), with its resource: the DynamoDB table(s) named
//!   in the request, the SQS queue (last segment of `QueueUrl`);
//! - asks DynamoDB for `ReturnConsumedCapacity: TOTAL` on the data operations that do not ask
//!   already, and adds the capacity units the response reports (read or write by operation);
//! - counts SQS's billed requests: each 64 KiB chunk of a request's or a response's payload is
//!   one request.
//!
//! The counts are process-wide ([`snapshot`], [`take`]); a Lambda logs and resets them after
//! each invocation ([`log_invocation`]), the local runner and `fmn bench` read them directly.
//!
//! [`AwsClients::scoped`]: crate::AwsClients::scoped
//! [`AwsClients::counted_as`]: crate::AwsClients::counted_as

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    AfterDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextMut,
    BeforeTransmitInterceptorContextRef,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};
use serde_json::Value;

use crate::vars::{ConfigError, Vars};

/// The setting that turns counting on.
pub const VARIABLE: &str = "FMN_COUNT_REQUESTS";

/// SQS bills each 64 KiB chunk of a payload as one request.
const SQS_CHUNK: usize = 64 * 1024;

static ENABLED: AtomicBool = AtomicBool::new(false);
static COUNTS: Mutex<BTreeMap<Key, Tally>> = Mutex::new(BTreeMap::new());

/// Turns counting on for clients built from now on.
pub fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
}

pub fn is_enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Turns counting on when `FMN_COUNT_REQUESTS` says so (default off).
pub fn enable_from(vars: &Vars) -> Result<bool, ConfigError> {
    let on = vars.flag(VARIABLE, false)?;
    if on {
        enable();
    }
    Ok(on)
}

/// One row of the counts.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    /// The component that made the call (`fmn-match`, `fmn-deliver-email event source`...).
    pub stage: Arc<str>,
    /// `sqs`, `dynamodb`, `sesv2`, or `lambda` for invocations.
    pub service: String,
    pub operation: String,
    /// Table(s) joined by `+`, queue name, or empty.
    pub resource: String,
}

/// What one row adds up to.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Tally {
    /// Attempts sent (Lambda: invocations).
    pub requests: u64,
    /// Attempts that came back with an error status.
    pub failed: u64,
    /// What the service bills as requests: SQS counts 64 KiB chunks; else `requests`.
    pub billed_requests: u64,
    /// DynamoDB read capacity units reported consumed.
    pub read_units: f64,
    /// DynamoDB write capacity units reported consumed.
    pub write_units: f64,
    /// Lambda: time spent in the handler.
    pub busy: Duration,
}

impl Tally {
    fn add(&mut self, other: &Tally) {
        self.requests += other.requests;
        self.failed += other.failed;
        self.billed_requests += other.billed_requests;
        self.read_units += other.read_units;
        self.write_units += other.write_units;
        self.busy += other.busy;
    }
}

fn record(key: Key, tally: Tally) {
    let mut counts = COUNTS.lock().unwrap_or_else(|e| e.into_inner());
    counts.entry(key).or_default().add(&tally);
}

/// The counts so far.
pub fn snapshot() -> BTreeMap<Key, Tally> {
    COUNTS.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// The counts so far, and zero from now on.
pub fn take() -> BTreeMap<Key, Tally> {
    std::mem::take(&mut *COUNTS.lock().unwrap_or_else(|e| e.into_inner()))
}

/// Counts one handler invocation of `function` (the local event source mappings: on AWS each
/// is a billed Lambda request and `busy` × memory is its GB-s).
pub fn record_invocation(function: &str, busy: Duration) {
    if !is_enabled() {
        return;
    }
    record(
        Key {
            stage: Arc::from(function),
            service: "lambda".into(),
            operation: "Invoke".into(),
            resource: function.into(),
        },
        Tally {
            requests: 1,
            billed_requests: 1,
            busy,
            ..Tally::default()
        },
    );
}

/// Logs what this invocation's requests were, one line, and resets the counts (a Lambda runs
/// one invocation at a time, so the counts are this invocation's).
pub fn log_invocation() {
    if !is_enabled() {
        return;
    }
    let counts = take();
    if counts.is_empty() {
        return;
    }
    tracing::info!(requests = %Rows(&counts), "aws requests of this invocation");
}

/// `service:Operation[resource] n (r RCU, w WCU)`, comma-separated.
struct Rows<'a>(&'a BTreeMap<Key, Tally>);

impl fmt::Display for Rows<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (k, t)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}:{}", k.service, k.operation)?;
            if !k.resource.is_empty() {
                write!(f, "[{}]", k.resource)?;
            }
            write!(f, " {}", t.requests)?;
            if t.read_units > 0.0 || t.write_units > 0.0 {
                write!(f, " ({} RCU, {} WCU)", t.read_units, t.write_units)?;
            }
        }
        Ok(())
    }
}

/// The interceptor; one per stage, added by [`crate::AwsClients::counted_as`].
#[derive(Debug, Clone)]
pub struct RequestCounter {
    stage: Arc<str>,
}

impl RequestCounter {
    pub fn new(stage: &str) -> Self {
        Self {
            stage: Arc::from(stage),
        }
    }
}

/// What the request side learnt, kept for the response side.
#[derive(Debug, Clone)]
struct Sent {
    key: Key,
    request_bytes: usize,
}

impl Storable for Sent {
    type Storer = StoreReplace<Self>;
}

/// DynamoDB operations that read, and those that write (the others are control-plane calls,
/// which have no capacity and do not take `ReturnConsumedCapacity`).
const DYNAMO_READS: &[&str] = &[
    "GetItem",
    "BatchGetItem",
    "Query",
    "Scan",
    "TransactGetItems",
];
const DYNAMO_WRITES: &[&str] = &[
    "PutItem",
    "UpdateItem",
    "DeleteItem",
    "BatchWriteItem",
    "TransactWriteItems",
];

fn operation(cfg: &ConfigBag) -> (String, String) {
    match cfg.load::<Metadata>() {
        Some(m) => (m.service().to_ascii_lowercase(), m.name().to_string()),
        None => ("unknown".into(), "unknown".into()),
    }
}

impl Intercept for RequestCounter {
    fn name(&self) -> &'static str {
        "RequestCounter"
    }

    fn modify_before_signing(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let (service, operation) = operation(cfg);
        let is_data = DYNAMO_READS.contains(&operation.as_str())
            || DYNAMO_WRITES.contains(&operation.as_str());
        if service != "dynamodb" || !is_data {
            return Ok(());
        }
        let request = context.request_mut();
        let Some(mut body) = request
            .body()
            .bytes()
            .and_then(|b| serde_json::from_slice::<Value>(b).ok())
        else {
            return Ok(());
        };
        let Some(fields) = body.as_object_mut() else {
            return Ok(());
        };
        if fields.contains_key("ReturnConsumedCapacity") {
            return Ok(());
        }
        fields.insert("ReturnConsumedCapacity".into(), "TOTAL".into());
        let bytes = serde_json::to_vec(&body)?;
        request
            .headers_mut()
            .insert("content-length", bytes.len().to_string());
        *request.body_mut() = SdkBody::from(bytes);
        Ok(())
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let (service, operation) = operation(cfg);
        let body = context.request().body().bytes().unwrap_or_default();
        let resource = serde_json::from_slice::<Value>(body)
            .map(|v| resource_of(&service, &v))
            .unwrap_or_default();
        let key = Key {
            stage: Arc::clone(&self.stage),
            service,
            operation,
            resource,
        };
        cfg.interceptor_state().store_put(Sent {
            key,
            request_bytes: body.len(),
        });
        Ok(())
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(sent) = cfg.load::<Sent>().cloned() else {
            return Ok(());
        };
        let response = context.response();
        let body = response.body().bytes().unwrap_or_default();
        let mut tally = Tally {
            requests: 1,
            failed: u64::from(!response.status().is_success()),
            billed_requests: 1,
            ..Tally::default()
        };
        match sent.key.service.as_str() {
            "sqs" => {
                let chunks = sent.request_bytes.max(body.len()).div_ceil(SQS_CHUNK);
                tally.billed_requests = chunks.max(1) as u64;
            }
            "dynamodb" => {
                let units = serde_json::from_slice::<Value>(body)
                    .map(|v| consumed_units(&v))
                    .unwrap_or(0.0);
                if DYNAMO_WRITES.contains(&sent.key.operation.as_str()) {
                    tally.write_units = units;
                } else {
                    tally.read_units = units;
                }
            }
            _ => {}
        }
        record(sent.key, tally);
        Ok(())
    }
}

/// The table(s) a DynamoDB request names, or the queue an SQS request names.
fn resource_of(service: &str, body: &Value) -> String {
    match service {
        "dynamodb" => {
            let mut tables: Vec<&str> = Vec::new();
            if let Some(t) = body["TableName"].as_str() {
                tables.push(t);
            }
            if let Some(items) = body["RequestItems"].as_object() {
                tables.extend(items.keys().map(String::as_str));
            }
            for item in body["TransactItems"].as_array().into_iter().flatten() {
                if let Some(fields) = item.as_object() {
                    tables.extend(fields.values().filter_map(|v| v["TableName"].as_str()));
                }
            }
            tables.sort_unstable();
            tables.dedup();
            tables.join("+")
        }
        "sqs" => body["QueueUrl"]
            .as_str()
            .and_then(|u| u.rsplit('/').next())
            .unwrap_or_default()
            .to_string(),
        _ => String::new(),
    }
}

/// The capacity units a DynamoDB response reports (`ConsumedCapacity`: one object, or one per
/// table for the batch and transaction operations).
fn consumed_units(body: &Value) -> f64 {
    match &body["ConsumedCapacity"] {
        Value::Array(all) => all.iter().filter_map(|c| c["CapacityUnits"].as_f64()).sum(),
        c => c["CapacityUnits"].as_f64().unwrap_or(0.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_resource_is_every_table_named_or_the_queue() {
        assert_eq!(
            resource_of("dynamodb", &json!({"TableName": "p-recent"})),
            "p-recent"
        );
        assert_eq!(
            resource_of(
                "dynamodb",
                &json!({"TransactItems": [
                    {"Put": {"TableName": "p-digest"}},
                    {"Update": {"TableName": "p-activity"}},
                    {"Put": {"TableName": "p-digest"}}
                ]})
            ),
            "p-activity+p-digest"
        );
        assert_eq!(
            resource_of("dynamodb", &json!({"RequestItems": {"p-a": [], "p-b": []}})),
            "p-a+p-b"
        );
        assert_eq!(
            resource_of(
                "sqs",
                &json!({"QueueUrl": "http://localhost:4566/000000000000/p-email"})
            ),
            "p-email"
        );
        assert_eq!(resource_of("sesv2", &json!({})), "");
    }

    #[test]
    fn consumed_capacity_is_one_object_or_one_per_table() {
        assert_eq!(
            consumed_units(&json!({"ConsumedCapacity": {"TableName": "t", "CapacityUnits": 3.0}})),
            3.0
        );
        assert_eq!(
            consumed_units(&json!({"ConsumedCapacity": [
                {"TableName": "a", "CapacityUnits": 2.0},
                {"TableName": "b", "CapacityUnits": 0.5}
            ]})),
            2.5
        );
        assert_eq!(consumed_units(&json!({})), 0.0);
    }

    #[test]
    fn rows_print_compactly() {
        let mut counts = BTreeMap::new();
        counts.insert(
            Key {
                stage: Arc::from("fmn-match"),
                service: "dynamodb".into(),
                operation: "PutItem".into(),
                resource: "p-recent".into(),
            },
            Tally {
                requests: 2,
                write_units: 6.0,
                ..Tally::default()
            },
        );
        assert_eq!(
            Rows(&counts).to_string(),
            "dynamodb:PutItem[p-recent] 2 (0 RCU, 6 WCU)"
        );
    }
}
