//! Filters' hourly allowances (`Filter::max_per_hour`): one counter per user, filter and clock
//! hour, in the delivery-records table (`pk` only, TTL `expires_at`, which the match function
//! already writes for digest adds).
//!
//! Item: `pk = throttle#<user>/<filter>#<hour>` (`hour` = epoch seconds / 3600), `count`,
//! `expires_at` (two hours after the hour ends). Taking a place is one conditional `ADD`, so
//! concurrent match instances never hand out more than the allowance. A message SQS delivers
//! twice counts twice (the repeat's jobs are dropped by delivery): at worst one match too many
//! waits for the digest.

use crate::dynamo::{n, s, DynamoError};

/// How long after its hour a counter is kept (then DynamoDB's TTL removes it).
const KEEP_SECS: u64 = 2 * 3600;

#[derive(Clone, Debug)]
pub struct Throttle {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

/// Whether a match may go now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Allowance {
    /// Within the allowance (this was the `n`th this hour).
    Granted(u64),
    /// The allowance is spent for this hour.
    Spent,
}

/// The counter's key: the one place the layout is written.
pub fn key(user: &str, filter: &str, now: u64) -> String {
    format!("throttle#{user}/{filter}#{}", now / 3600)
}

impl Throttle {
    pub fn from_clients(clients: &crate::AwsClients) -> Self {
        Self {
            client: clients.dynamodb.clone(),
            table: clients.table(crate::TableName::DeliveryRecords),
        }
    }

    /// Takes one of `max` places of `user`'s `filter` in the hour of `now`.
    pub async fn take(
        &self,
        user: &str,
        filter: &str,
        max: u32,
        now: u64,
    ) -> Result<Allowance, DynamoError> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(key(user, filter, now)))
            .update_expression("ADD #count :one SET expires_at = :expires")
            .condition_expression("attribute_not_exists(pk) OR #count < :max")
            .expression_attribute_names("#count", "count")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":max", n(max))
            .expression_attribute_values(
                ":expires",
                n(fmn_core::schedule::hour_end(now) + KEEP_SECS),
            )
            .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(|e| DynamoError::call("UpdateItem", &self.table, e));
        match out {
            Ok(out) => Ok(Allowance::Granted(
                out.attributes
                    .as_ref()
                    .and_then(|a| a.get("count"))
                    .and_then(|v| v.as_n().ok())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(1),
            )),
            Err(e) if e.is_condition_failure() => Ok(Allowance::Spent),
            Err(e) => Err(e),
        }
    }
}
