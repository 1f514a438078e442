//! Creates the queues and tables the template describes (and the digest schedule's rule), for
//! LocalStack and the tests. Idempotent: what exists is left as it is or brought in line.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, CreateGlobalSecondaryIndexAction, GlobalSecondaryIndex,
    GlobalSecondaryIndexUpdate, KeySchemaElement, KeyType as DynamoKeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};
use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::QueueAttributeName;

use crate::config::AwsClients;
use crate::template::{IndexSpec, KeyType, QueueSpec, TableSpec, Template};

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error("creating queue `{queue}` failed: {detail}")]
    Queue { queue: String, detail: String },
    #[error("creating table `{table}` failed: {detail}")]
    Table { table: String, detail: String },
    #[error("creating schedule `{rule}` failed: {detail}")]
    Schedule { rule: String, detail: String },
    #[error("the template is inconsistent: {0}")]
    Template(String),
}

/// Knobs the tests turn; the defaults create exactly what the template says.
#[derive(Clone, Debug, Default)]
pub struct ProvisionOptions {
    /// Replaces every queue's visibility timeout (tests want failed records back in seconds).
    pub visibility_timeout_secs: Option<u32>,
}

/// What was created: queue URLs and ARNs by logical id.
#[derive(Clone, Debug, Default)]
pub struct Provisioned {
    pub queue_urls: HashMap<String, String>,
    pub queue_arns: HashMap<String, String>,
    pub tables: Vec<String>,
}

/// Creates every queue (dead-letter queues first) and every table of `template`.
pub async fn provision(
    clients: &AwsClients,
    template: &Template,
    options: &ProvisionOptions,
) -> Result<Provisioned, ProvisionError> {
    let mut done = Provisioned::default();
    // Dead-letter queues first: a redrive policy names its target's ARN.
    let (plain, redriven): (Vec<&QueueSpec>, Vec<&QueueSpec>) =
        template.queues.iter().partition(|q| q.redrive.is_none());
    for queue in plain.into_iter().chain(redriven) {
        let redrive = match &queue.redrive {
            None => None,
            Some(r) => {
                let arn = done.queue_arns.get(&r.dead_letter_queue).ok_or_else(|| {
                    ProvisionError::Template(format!(
                        "{} redrives to {}, which is not a queue without a redrive policy",
                        queue.logical_id, r.dead_letter_queue
                    ))
                })?;
                Some(serde_json::json!({
                    "deadLetterTargetArn": arn,
                    "maxReceiveCount": r.max_receive_count.to_string(),
                }))
            }
        };
        let (url, arn) = create_queue(clients, queue, redrive, options).await?;
        tracing::debug!(queue = %queue.name, %url, "queue ready");
        done.queue_urls.insert(queue.logical_id.clone(), url);
        done.queue_arns.insert(queue.logical_id.clone(), arn);
    }
    for table in &template.tables {
        create_table(clients, table).await?;
        tracing::debug!(table = %table.name, "table ready");
        done.tables.push(table.name.clone());
    }
    Ok(done)
}

async fn create_queue(
    clients: &AwsClients,
    queue: &QueueSpec,
    redrive: Option<serde_json::Value>,
    options: &ProvisionOptions,
) -> Result<(String, String), ProvisionError> {
    let err = |detail: String| ProvisionError::Queue {
        queue: queue.name.clone(),
        detail,
    };
    let mut attributes = HashMap::new();
    if let Some(v) = options
        .visibility_timeout_secs
        .or(queue.visibility_timeout_secs)
    {
        attributes.insert(QueueAttributeName::VisibilityTimeout, v.to_string());
    }
    if let Some(v) = queue.retention_secs {
        attributes.insert(QueueAttributeName::MessageRetentionPeriod, v.to_string());
    }
    if let Some(policy) = redrive {
        attributes.insert(QueueAttributeName::RedrivePolicy, policy.to_string());
    }
    let mut create_attributes = attributes.clone();
    if queue.fifo {
        create_attributes.insert(QueueAttributeName::FifoQueue, "true".into());
    }
    let created = clients
        .sqs
        .create_queue()
        .queue_name(&queue.name)
        .set_attributes(Some(create_attributes))
        .send()
        .await;
    let url = match created {
        Ok(out) => out.queue_url.ok_or_else(|| err("no URL returned".into()))?,
        // Exists with other attributes: bring them in line with the template.
        Err(e) if e.code() == Some("QueueAlreadyExists") || e.code() == Some("QueueNameExists") => {
            let url = clients
                .sqs
                .get_queue_url()
                .queue_name(&queue.name)
                .send()
                .await
                .map_err(|e| err(DisplayErrorContext(&e).to_string()))?
                .queue_url
                .ok_or_else(|| err("no URL returned".into()))?;
            clients
                .sqs
                .set_queue_attributes()
                .queue_url(&url)
                .set_attributes(Some(attributes))
                .send()
                .await
                .map_err(|e| err(DisplayErrorContext(&e).to_string()))?;
            url
        }
        Err(e) => return Err(err(DisplayErrorContext(&e).to_string())),
    };
    let arn = clients
        .sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| err(DisplayErrorContext(&e).to_string()))?
        .attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .ok_or_else(|| err("no ARN returned".into()))?;
    Ok((url, arn))
}

async fn create_table(clients: &AwsClients, table: &TableSpec) -> Result<(), ProvisionError> {
    let err = |detail: String| ProvisionError::Table {
        table: table.name.clone(),
        detail,
    };
    let mut request = clients
        .dynamodb
        .create_table()
        .table_name(&table.name)
        .billing_mode(BillingMode::PayPerRequest);
    for (name, kind) in &table.attributes {
        request = request.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::from(kind.as_str()))
                .build()
                .map_err(|e| err(e.to_string()))?,
        );
    }
    for element in key_schema(&table.key_schema).map_err(err)? {
        request = request.key_schema(element);
    }
    for index in &table.indexes {
        request = request.global_secondary_indexes(global_index(index).map_err(err)?);
    }
    match request.send().await {
        Ok(_) => {}
        Err(e) if e.code() == Some("ResourceInUseException") => {
            return add_missing_indexes(clients, table).await.map_err(err)
        }
        Err(e) => {
            return Err(err(
                aws_sdk_dynamodb::error::DisplayErrorContext(&e).to_string()
            ))
        }
    }
    if let Some(attribute) = &table.ttl_attribute {
        clients
            .dynamodb
            .update_time_to_live()
            .table_name(&table.name)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name(attribute)
                    .enabled(true)
                    .build()
                    .map_err(|e| err(e.to_string()))?,
            )
            .send()
            .await
            .map_err(|e| err(aws_sdk_dynamodb::error::DisplayErrorContext(&e).to_string()))?;
    }
    Ok(())
}

fn key_schema(keys: &[(String, KeyType)]) -> Result<Vec<KeySchemaElement>, String> {
    keys.iter()
        .map(|(name, kind)| {
            let key_type = match kind {
                KeyType::Hash => DynamoKeyType::Hash,
                KeyType::Range => DynamoKeyType::Range,
            };
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(key_type)
                .build()
                .map_err(|e| e.to_string())
        })
        .collect()
}

fn global_index(index: &IndexSpec) -> Result<GlobalSecondaryIndex, String> {
    GlobalSecondaryIndex::builder()
        .index_name(&index.name)
        .set_key_schema(Some(key_schema(&index.key_schema)?))
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::from(index.projection.as_str()))
                .build(),
        )
        .build()
        .map_err(|e| e.to_string())
}

/// A table made before an index was added to the template gets it (one per update, as
/// DynamoDB allows; the index is usable once it has been built).
async fn add_missing_indexes(clients: &AwsClients, table: &TableSpec) -> Result<(), String> {
    if table.indexes.is_empty() {
        return Ok(());
    }
    let described = clients
        .dynamodb
        .describe_table()
        .table_name(&table.name)
        .send()
        .await
        .map_err(|e| aws_sdk_dynamodb::error::DisplayErrorContext(&e).to_string())?;
    let present: Vec<String> = described
        .table
        .and_then(|t| t.global_secondary_indexes)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|i| i.index_name)
        .collect();
    for index in table.indexes.iter().filter(|i| !present.contains(&i.name)) {
        let attributes = index
            .key_schema
            .iter()
            .filter_map(|(name, _)| table.attributes.iter().find(|(a, _)| a == name))
            .map(|(name, kind)| {
                AttributeDefinition::builder()
                    .attribute_name(name)
                    .attribute_type(ScalarAttributeType::from(kind.as_str()))
                    .build()
                    .map_err(|e| e.to_string())
            })
            .collect::<Result<Vec<_>, _>>()?;
        let spec = global_index(index)?;
        let create = CreateGlobalSecondaryIndexAction::builder()
            .index_name(&index.name)
            .set_key_schema(Some(spec.key_schema))
            .set_projection(spec.projection)
            .build()
            .map_err(|e| e.to_string())?;
        tracing::info!(table = %table.name, index = %index.name, "adding a missing index");
        clients
            .dynamodb
            .update_table()
            .table_name(&table.name)
            .set_attribute_definitions(Some(attributes))
            .global_secondary_index_updates(
                GlobalSecondaryIndexUpdate::builder().create(create).build(),
            )
            .send()
            .await
            .map_err(|e| aws_sdk_dynamodb::error::DisplayErrorContext(&e).to_string())?;
    }
    Ok(())
}

/// Creates (or updates) the EventBridge rules of the template's schedules, each targeting
/// `target_arn`. In AWS, SAM makes the rule target the function; locally the target is a
/// queue (EventBridge in LocalStack cannot invoke a function that is not deployed there).
pub async fn provision_schedules(
    clients: &AwsClients,
    template: &Template,
    target_arn: &str,
) -> Result<Vec<String>, ProvisionError> {
    let mut rules = Vec::new();
    for function in &template.functions {
        for schedule in &function.schedules {
            let err = |detail: String| ProvisionError::Schedule {
                rule: schedule.name.clone(),
                detail,
            };
            let state = if schedule.enabled {
                aws_sdk_eventbridge::types::RuleState::Enabled
            } else {
                aws_sdk_eventbridge::types::RuleState::Disabled
            };
            clients
                .eventbridge
                .put_rule()
                .name(&schedule.name)
                .schedule_expression(&schedule.expression)
                .state(state)
                .send()
                .await
                .map_err(
                    |e| err(aws_sdk_eventbridge::error::DisplayErrorContext(&e).to_string()),
                )?;
            clients
                .eventbridge
                .put_targets()
                .rule(&schedule.name)
                .targets(
                    aws_sdk_eventbridge::types::Target::builder()
                        .id(format!("{}-target", function.logical_id))
                        .arn(target_arn)
                        .build()
                        .map_err(|e| err(e.to_string()))?,
                )
                .send()
                .await
                .map_err(
                    |e| err(aws_sdk_eventbridge::error::DisplayErrorContext(&e).to_string()),
                )?;
            rules.push(schedule.name.clone());
        }
    }
    Ok(rules)
}
