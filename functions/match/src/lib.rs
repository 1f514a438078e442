//! The match function: reads bus messages from the ingest queue, works out who asked to be
//! told about each, and fans out delivery jobs. This build validates each message and hands
//! malformed ones to the dead-letter queue with the reason; matching arrives with the
//! preferences model.

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use fmn_aws::batch::{process_records, DeadLetterQueue, Record, RecordError};
use fmn_aws::lambda::SqsBatchHandler;
use fmn_aws::{AwsClients, FunctionName, QueueName};

pub const FUNCTION: FunctionName = FunctionName::Match;

pub struct MatchHandler {
    dead_letter: DeadLetterQueue,
}

impl MatchHandler {
    pub async fn new(clients: &AwsClients) -> Result<Self, fmn_aws::sqs::SqsError> {
        let url = clients.queue_url(QueueName::IngestDeadLetter).await?;
        Ok(Self {
            dead_letter: DeadLetterQueue {
                sqs: clients.sqs.clone(),
                url,
            },
        })
    }

    async fn handle_record(&self, record: Record) -> Result<(), RecordError> {
        let envelope: serde_json::Value = serde_json::from_str(&record.body)
            .map_err(|e| RecordError::Reject(format!("body is not JSON: {e}")))?;
        let topic = envelope
            .get("topic")
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| RecordError::Reject("envelope has no `topic`".into()))?;
        tracing::info!(message_id = %record.message_id, topic, "bus message received");
        Ok(())
    }
}

impl SqsBatchHandler for MatchHandler {
    async fn handle_batch(&self, event: SqsEvent) -> SqsBatchResponse {
        process_records(FUNCTION.binary(), event, Some(&self.dead_letter), |r| {
            self.handle_record(r)
        })
        .await
    }
}
