//! The deliver-email function: sends the jobs on the email queue as mail through SES v2, each
//! once.
//!
//! Per record: parse the job (malformed → dead-letter), render it (`fmn_core::render::email`;
//! unrenderable → dead-letter), claim its delivery record `email#<job id>`
//! (`fmn_aws::delivery_records`), send, mark the record. A record already `sent` is
//! acknowledged without sending; one being sent elsewhere is retried later. SES throttling or
//! unavailability is retried with backoff, then handed back to the queue; a rejection goes to
//! the dead-letter queue with SES's reason and stays in the delivery record, against the user
//! and destination. A service-wide refusal (sending paused, account suspended, sender not
//! verified) is no rejection: the batch stops and every job in it goes back to the queue.

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use fmn_aws::batch::{process_records, DeadLetterQueue, Record, RecordError, RetrySchedule};
use fmn_aws::delivery_records::{Channel, Delivered, DeliveryRecords, RecordInfo};
use fmn_aws::lambda::SqsBatchHandler;
use fmn_aws::mail::{MailSettings, Mailer};
use fmn_aws::{AwsClients, FunctionName, QueueName};
use fmn_core::jobs::DeliveryJob;

pub const FUNCTION: FunctionName = FunctionName::DeliverEmail;

pub struct DeliverEmailHandler {
    dead_letter: DeadLetterQueue,
    /// The email queue: where a failed job's next try is scheduled.
    source_url: String,
    /// The mail-events queue: refused addresses are reported there, to the destination's
    /// health (`fmn_aws::health`).
    health_reports_url: String,
    records: DeliveryRecords,
    mailer: Mailer,
    settings: MailSettings,
}

impl DeliverEmailHandler {
    pub async fn with_settings(
        clients: &AwsClients,
        settings: MailSettings,
    ) -> Result<Self, fmn_aws::sqs::SqsError> {
        let clients = &clients.scoped(FUNCTION);
        let url = clients.queue_url(QueueName::EmailDeadLetter).await?;
        Ok(Self {
            dead_letter: DeadLetterQueue::new(clients.sqs.clone(), url),
            source_url: clients.queue_url(QueueName::Email).await?,
            health_reports_url: clients.queue_url(QueueName::MailEvents).await?,
            records: DeliveryRecords::from_clients(clients, settings.lease),
            mailer: Mailer::new(clients.sesv2.clone(), &settings),
            settings,
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
        let job: DeliveryJob = serde_json::from_str(&record.body).map_err(|e| {
            let reason = format!("not a delivery job: {e}");
            tracing::error!(message_id = %record.message_id, %reason, "job dead-lettered");
            RecordError::Reject(reason)
        })?;
        let job_id = job.job_id.as_str();
        let now = fmn_aws::dynamo::now_secs() as i64;
        let mail = fmn_core::render::email::render(&job, &self.settings.context, now).map_err(
            |e| {
                let reason = format!("cannot be sent as mail: {e}");
                tracing::error!(job_id, user = %job.user, destination = %job.destination.id, %reason, "job dead-lettered");
                RecordError::Reject(reason)
            },
        )?;
        let info = RecordInfo {
            user: &job.user,
            destination: &job.destination.id,
            address: &job.destination.address,
            what: &job.notification.title,
        };
        let key = Channel::Email.key(job_id);
        let delivered = self
            .records
            .deliver_once(&key, &info, || {
                self.mailer.send_recorded(&mail.to, &mail.raw, &key)
            })
            .await?;
        match delivered {
            Delivered::Sent {
                message_id,
                attempts,
            } => {
                tracing::info!(job_id, user = %job.user, destination = %job.destination.id, ses_message_id = %message_id, attempt = attempts, "mail sent");
                Ok(())
            }
            Delivered::AlreadySent { message_id } => {
                tracing::info!(
                    job_id,
                    ?message_id,
                    "already sent; acknowledged without sending"
                );
                Ok(())
            }
            Delivered::AlreadyRejected { reason } => {
                tracing::warn!(job_id, %reason, "rejected before and dead-lettered then; acknowledged");
                Ok(())
            }
            Delivered::InFlight { since_ms } => Err(RecordError::Retry(format!(
                "job {job_id} is being sent by another invocation (claimed at {since_ms} ms)"
            ))),
            Delivered::Rejected { reason, unrecorded } => {
                if let Some(e) = unrecorded {
                    tracing::error!(job_id, error = %e, "could not record the rejection");
                }
                tracing::error!(job_id, user = %job.user, destination = %job.destination.id, address = %job.destination.address, %reason, "SES rejected the mail; job dead-lettered");
                // A refusal counts against the destination only in a run: SES refuses for
                // reasons of ours too (an unverified sender), so it never stops one at once.
                let report = fmn_aws::health::GaveUpReport {
                    user: job.user.clone(),
                    destination: job.destination.id.clone(),
                    reason: format!("SES refused the mail: {reason}"),
                    at: now,
                };
                if let Err(e) = report
                    .send(&self.dead_letter.sqs, &self.health_reports_url)
                    .await
                {
                    tracing::warn!(job_id, error = %e, "could not report the refusal to the destination's health");
                }
                Err(RecordError::Reject(format!(
                    "SES rejected the mail: {reason}"
                )))
            }
            Delivered::Unavailable { reason } => {
                Err(RecordError::Retry(format!("SES unavailable: {reason}")))
            }
            // SES sends nothing for anyone: the batch stops and goes back to the queue.
            Delivered::ServiceWide { reason } => Err(RecordError::Halt(format!(
                "SES is not sending any mail: {reason}"
            ))),
        }
    }
}

impl SqsBatchHandler for DeliverEmailHandler {
    async fn handle_batch(&self, event: SqsEvent) -> SqsBatchResponse {
        process_records(FUNCTION.binary(), event, Some(&self.dead_letter), |r| {
            self.handle_record(r)
        })
        .await
    }
}
