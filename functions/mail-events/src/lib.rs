//! The mail-events function: what SES reports about the mail fmn sent (the configuration set's
//! event publishing, through SNS, into the mail-events queue; `fmn_aws::ses_events`), applied
//! to the delivery records.
//!
//! - An event proving SES accepted a mail (`Send`, `Delivery`, and the bounce, complaint and
//!   delay that only follow a send) settles its record: one still `sending` becomes `sent`.
//!   That is what makes a mail go out once even when its sender is killed between SES
//!   accepting it and marking the record: the redelivered job then finds `sent`, where it would
//!   otherwise have sent again after the lease.
//! - Bounces, complaints and rejections are logged with the record they concern.
//! - Mail sent without a record tag (confirmations) is acknowledged; a body that is no SES
//!   event is dead-lettered with the reason.

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use fmn_aws::batch::{process_records, DeadLetterQueue, Record, RecordError, RetrySchedule};
use fmn_aws::delivery_records::{Confirmed, DeliveryRecords};
use fmn_aws::lambda::SqsBatchHandler;
use fmn_aws::ses_events::{self, MailEventKind};
use fmn_aws::{AwsClients, FunctionName, QueueName};

pub const FUNCTION: FunctionName = FunctionName::MailEvents;

pub struct MailEventsHandler {
    dead_letter: DeadLetterQueue,
    /// The mail-events queue: where a failed event's next try is scheduled.
    source_url: String,
    records: DeliveryRecords,
}

impl MailEventsHandler {
    /// `lease`: the senders' (`FMN_SEND_LEASE`), for reading the records alike.
    pub async fn new(
        clients: &AwsClients,
        lease: std::time::Duration,
    ) -> Result<Self, fmn_aws::sqs::SqsError> {
        let clients = &clients.scoped(FUNCTION);
        Ok(Self {
            dead_letter: DeadLetterQueue::new(
                clients.sqs.clone(),
                clients.queue_url(QueueName::MailEventsDeadLetter).await?,
            ),
            source_url: clients.queue_url(QueueName::MailEvents).await?,
            records: DeliveryRecords::from_clients(clients, lease),
        })
    }

    /// Failed records come back on `schedule` (`FMN_RETRY_SCHEDULE`), then are dead-lettered.
    pub fn with_retry_schedule(mut self, schedule: Option<RetrySchedule>) -> Self {
        self.dead_letter = self
            .dead_letter
            .with_schedule(self.source_url.clone(), schedule);
        self
    }

    async fn handle_record(&self, record: Record) -> Result<(), RecordError> {
        let event = ses_events::parse(&record.body).map_err(|e| {
            let reason = e.to_string();
            tracing::error!(message_id = %record.message_id, %reason, "mail event dead-lettered");
            RecordError::Reject(reason)
        })?;
        let Some(key) = event.record_key.as_deref() else {
            tracing::info!(ses_message_id = %event.ses_message_id, kind = ?event.kind, "event about mail without a delivery record (a confirmation); acknowledged");
            return Ok(());
        };
        if event.kind.proves_sent() {
            match self
                .records
                .confirm_sent(key, &event.ses_message_id)
                .await?
            {
                Confirmed::Now => tracing::warn!(
                    key,
                    ses_message_id = %event.ses_message_id,
                    "a mail SES accepted was still `sending` (its sender died before marking it): now `sent`"
                ),
                Confirmed::Unchanged => {
                    tracing::debug!(key, kind = ?event.kind, "record already settled")
                }
            }
        }
        match &event.kind {
            MailEventKind::Bounce { permanent } => {
                tracing::warn!(key, permanent, recipients = ?event.recipients, "mail bounced")
            }
            MailEventKind::Complaint => {
                tracing::warn!(key, recipients = ?event.recipients, "recipient complained")
            }
            MailEventKind::Reject => tracing::warn!(key, "SES rejected the mail"),
            _ => {}
        }
        Ok(())
    }
}

impl SqsBatchHandler for MailEventsHandler {
    async fn handle_batch(&self, event: SqsEvent) -> SqsBatchResponse {
        process_records(FUNCTION.binary(), event, Some(&self.dead_letter), |r| {
            self.handle_record(r)
        })
        .await
    }
}
