//! The mail-events function: what SES reports about the mail fmn sent (the configuration set's
//! event publishing, through SNS, into the mail-events queue; `fmn_aws::ses_events`), applied
//! to the delivery records.
//!
//! - An event proving SES accepted a mail (`Send`, `Delivery`, and the bounce, complaint and
//!   delay that only follow a send) settles its record: one still `sending` becomes `sent`.
//!   That is what makes a mail go out once even when its sender is killed between SES
//!   accepting it and marking the record: the redelivered job then finds `sent`, where it would
//!   otherwise have sent again after the lease.
//! - Bounces, complaints and deliveries go in the health of the destination the record names
//!   (`fmn_core::health`): a hard bounce or a complaint stops it, soft bounces in a row
//!   (`FMN_SOFT_BOUNCE_LIMIT`) too, and a delivery clears the count. The senders' reports of
//!   deliveries they gave up (`fmn_aws::health::GaveUpReport`, on this queue too) stop a
//!   destination after `FMN_FAILING_DAYS` without a delivery. A stop queues a notice to
//!   another of the user's e-mail destinations. A hard bounce of a `@fedoraproject.org` alias
//!   moves the destination to the account's FAS address instead (old FMN's rule; the accounts
//!   are the sync's). This function is the health's one writer.
//! - Mail sent without a record tag (confirmations) is acknowledged; a body that is no SES
//!   event is dead-lettered with the reason.

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use fmn_aws::batch::{process_records, DeadLetterQueue, Record, RecordError, RetrySchedule};
use fmn_aws::delivery_records::{Confirmed, DeliveryRecords};
use fmn_aws::dynamo::get_s;
use fmn_aws::health::{GaveUpReport, HealthRecorder};
use fmn_aws::lambda::SqsBatchHandler;
use fmn_aws::ownership_store::OwnershipStore;
use fmn_aws::prefs_store::PrefsStore;
use fmn_aws::ses_events::{self, MailEventKind};
use fmn_aws::{AwsClients, FunctionName, QueueName};
use fmn_core::health::{Change, HealthPolicy, Outcome};

pub const FUNCTION: FunctionName = FunctionName::MailEvents;

pub struct MailEventsHandler {
    dead_letter: DeadLetterQueue,
    /// The mail-events queue: where a failed event's next try is scheduled.
    source_url: String,
    records: DeliveryRecords,
    health: HealthRecorder,
}

impl MailEventsHandler {
    /// `lease`: the senders' (`FMN_SEND_LEASE`), for reading the records alike; `policy`:
    /// when problems stop a destination (`fmn_aws::health::policy_from`).
    pub async fn new(
        clients: &AwsClients,
        lease: std::time::Duration,
        policy: HealthPolicy,
    ) -> Result<Self, fmn_aws::sqs::SqsError> {
        let clients = &clients.scoped(FUNCTION);
        Ok(Self {
            dead_letter: DeadLetterQueue::new(
                clients.sqs.clone(),
                clients.queue_url(QueueName::MailEventsDeadLetter).await?,
            ),
            source_url: clients.queue_url(QueueName::MailEvents).await?,
            records: DeliveryRecords::from_clients(clients, lease),
            health: HealthRecorder::new(
                PrefsStore::from_clients(clients),
                OwnershipStore::from_clients(clients),
                clients.sqs.clone(),
                clients.queue_url(QueueName::Email).await?,
                policy,
            ),
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
        if let Some(report) = GaveUpReport::from_body(&record.body) {
            let outcome = Outcome::GaveUp(report.reason.clone());
            let change = self
                .health
                .record(&report.user, &report.destination, &outcome, None, report.at)
                .await?;
            log_change(&report.user, &report.destination, &outcome, &change);
            return Ok(());
        }
        let event = ses_events::parse(&record.body).map_err(|e| {
            let reason = e.to_string();
            tracing::error!(message_id = %record.message_id, %reason, "mail event dead-lettered");
            RecordError::Reject(reason)
        })?;
        // A burst's mail names all its records; they share the user and destination.
        let Some(key) = event.record_keys.first().map(String::as_str) else {
            tracing::info!(ses_message_id = %event.ses_message_id, kind = ?event.kind, "event about mail without a delivery record (a confirmation); acknowledged");
            return Ok(());
        };
        if event.kind.proves_sent() {
            for key in &event.record_keys {
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
        }
        let outcome = match &event.kind {
            MailEventKind::Bounce { permanent: true } => Outcome::HardBounce(event.detail.clone()),
            MailEventKind::Bounce { permanent: false } => Outcome::SoftBounce(event.detail.clone()),
            MailEventKind::Complaint => Outcome::Complaint(event.detail.clone()),
            MailEventKind::Delivery => Outcome::Delivered,
            MailEventKind::Reject => {
                tracing::warn!(key, "SES rejected the mail (a virus)");
                return Ok(());
            }
            _ => return Ok(()),
        };
        let Some(item) = self.records.get(key).await? else {
            tracing::warn!(key, kind = ?event.kind, "event about a delivery with no record (expired?); acknowledged");
            return Ok(());
        };
        let (Some(user), Some(destination)) = (get_s(&item, "user"), get_s(&item, "destination"))
        else {
            tracing::warn!(
                key,
                "delivery record without user or destination; acknowledged"
            );
            return Ok(());
        };
        let now = fmn_aws::dynamo::now_secs() as i64;
        let change = self
            .health
            .record(user, destination, &outcome, Some(&event.recipients), now)
            .await?;
        log_change(user, destination, &outcome, &change);
        Ok(())
    }
}

fn log_change(user: &str, destination: &str, outcome: &Outcome, change: &Change) {
    match change {
        Change::Stopped(s) => {
            tracing::warn!(user, destination, ?outcome, cause = ?s.cause, reason = %s.reason, "delivery to the destination stopped")
        }
        Change::Readdressed { from, to } => {
            tracing::warn!(user, destination, ?outcome, %from, %to, "a bouncing Fedora alias replaced by the account's FAS address")
        }
        Change::Updated => {
            tracing::info!(user, destination, ?outcome, "destination health updated")
        }
        Change::None => {
            tracing::debug!(user, destination, ?outcome, "destination health unchanged")
        }
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
