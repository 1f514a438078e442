//! The deliver-irc function: sends the jobs on the irc queue as IRC messages through a bot connection.
//! Delivery itself is not in this build: every job is handed to the dead-letter queue with
//! that reason, so none is lost and none is acknowledged unsent.

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use fmn_aws::batch::{process_records, DeadLetterQueue, Record, RecordError};
use fmn_aws::lambda::SqsBatchHandler;
use fmn_aws::{AwsClients, FunctionName, QueueName};

pub const FUNCTION: FunctionName = FunctionName::DeliverIrc;

pub struct DeliverIrcHandler {
    dead_letter: DeadLetterQueue,
}

impl DeliverIrcHandler {
    pub async fn new(clients: &AwsClients) -> Result<Self, fmn_aws::sqs::SqsError> {
        let url = clients.queue_url(QueueName::IrcDeadLetter).await?;
        Ok(Self {
            dead_letter: DeadLetterQueue {
                sqs: clients.sqs.clone(),
                url,
            },
        })
    }

    async fn handle_record(&self, record: Record) -> Result<(), RecordError> {
        serde_json::from_str::<serde_json::Value>(&record.body)
            .map_err(|e| RecordError::Reject(format!("job is not JSON: {e}")))?;
        Err(RecordError::Reject(
            "irc delivery is not available in this build".into(),
        ))
    }
}

impl SqsBatchHandler for DeliverIrcHandler {
    async fn handle_batch(&self, event: SqsEvent) -> SqsBatchResponse {
        process_records(FUNCTION.binary(), event, Some(&self.dead_letter), |r| {
            self.handle_record(r)
        })
        .await
    }
}
