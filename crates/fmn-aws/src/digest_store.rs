//! The digest table: items waiting for a digest, and the list of destinations that have any.
//!
//! Items (`pk`, `sk`): `digest#<user>/<destination>`, `<published ms, 15 digits>#<job id>` with
//! the job as JSON; `pending`, `<user>/<destination>` with `first_at` (when the oldest waiting
//! item arrived), `count`, and the destination's `batch_delta` / `batch_count`. The digest
//! function queries the `pending` partition instead of scanning the table.

use aws_sdk_dynamodb::types::AttributeValue;

use fmn_core::jobs::DeliveryJob;
use fmn_core::prefs::Delivery;

use crate::dynamo::{self, n, s, DynamoError};

#[derive(Clone, Debug)]
pub struct DigestStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

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
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Adds a job to its destination's digest, once: a repeat (same job id) changes nothing.
    pub async fn add(&self, job: &DeliveryJob) -> Result<Added, DynamoError> {
        let key = job.digest_key();
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(format!("digest#{key}")))
            .item("sk", s(item_sk(job)))
            .item(
                "job",
                s(serde_json::to_string(job).expect("jobs serialise")),
            )
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
            .map_err(|e| DynamoError::call("PutItem", &self.table, e));
        match put {
            Ok(_) => {}
            Err(e) if e.is_condition_failure() => return Ok(Added::AlreadyThere),
            Err(e) => return Err(e),
        }
        let (delta, count) = match job.destination.delivery {
            Delivery::Digest {
                batch_delta,
                batch_count,
            } => (batch_delta, batch_count),
            Delivery::Immediate => (None, None),
        };
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s("pending"))
            .key("sk", s(key.as_str()))
            .update_expression(
                "SET first_at = if_not_exists(first_at, :now), #user = :user, destination = :dest, batch_delta = :delta, batch_count = :count ADD pending_count :one",
            )
            .expression_attribute_names("#user", "user")
            .expression_attribute_values(":now", n(dynamo::now_secs()))
            .expression_attribute_values(":user", s(job.user.as_str()))
            .expression_attribute_values(":dest", s(job.destination.id.as_str()))
            .expression_attribute_values(":one", n(1));
        update = update
            .expression_attribute_values(":delta", delta.map_or(AttributeValue::Null(true), n))
            .expression_attribute_values(":count", count.map_or(AttributeValue::Null(true), n));
        update
            .send()
            .await
            .map_err(|e| DynamoError::call("UpdateItem", &self.table, e))?;
        Ok(Added::New)
    }
}
