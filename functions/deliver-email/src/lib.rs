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
//!
//! A record may be a bundle (`fmn_core::jobs::JobBundle`: a burst for one address from one
//! match batch): every job's own record is claimed, one mail carries those claimed
//! (`fmn_core::render::digest::render_burst`), and each claimed record is marked with that
//! send's result; jobs delivered before are left out, so each still goes once.

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use fmn_aws::batch::{process_records, DeadLetterQueue, Record, RecordError, RetrySchedule};
use fmn_aws::delivery_records::{Channel, Delivered, DeliveryRecords, RecordInfo};
use fmn_aws::lambda::SqsBatchHandler;
use fmn_aws::mail::{MailSettings, Mailer};
use fmn_aws::ses::SesError;
use fmn_aws::{AwsClients, FunctionName, QueueName};
use fmn_core::jobs::{DeliveryJob, EmailQueueBody, JobBundle};

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
        let body = EmailQueueBody::parse(&record.body).map_err(|e| {
            let reason = format!("not a delivery job: {e}");
            tracing::error!(message_id = %record.message_id, %reason, "job dead-lettered");
            RecordError::Reject(reason)
        })?;
        match body {
            EmailQueueBody::One(job) => self.deliver_one(&job).await,
            EmailQueueBody::Bundle(bundle) => self.deliver_bundle(&bundle).await,
        }
    }

    async fn deliver_one(&self, job: &DeliveryJob) -> Result<(), RecordError> {
        let job_id = job.job_id.as_str();
        let now = fmn_aws::dynamo::now_secs() as i64;
        let mail = fmn_core::render::email::render(job, &self.settings.context, now).map_err(
            |e| {
                let reason = format!("cannot be sent as mail: {e}");
                tracing::error!(job_id, user = %job.user, destination = %job.destination.id, %reason, "job dead-lettered");
                RecordError::Reject(reason)
            },
        )?;
        let key = Channel::Email.key(job_id);
        let tagged = [key.as_str()];
        let delivered = self
            .records
            .deliver_once(&key, &record_info(job), || {
                self.mailer.send_recorded(&mail.to, &mail.raw, &tagged)
            })
            .await?;
        if let Delivered::Rejected { reason, .. } = &delivered {
            self.report_refusal(job, reason, now).await;
        }
        verdict(job, None, delivered)
    }

    /// A burst's jobs in one mail: each job's record claimed, the mail made of those claimed
    /// (the others were delivered before, alone or in another bundle, or are being delivered
    /// now), every claimed record marked with the one send's result. The bundle is done when
    /// every job is; a job in flight elsewhere makes the bundle come back later, when its
    /// record tells whether it went.
    async fn deliver_bundle(&self, bundle: &JobBundle) -> Result<(), RecordError> {
        let bundle_id = bundle.bundle_id.as_str();
        let now = fmn_aws::dynamo::now_secs() as i64;
        let Some(first) = bundle.jobs.first() else {
            return Err(reject_bundle(bundle_id, "an empty bundle".into()));
        };
        if let Some(stranger) = bundle.jobs.iter().find(|j| {
            (&j.user, &j.destination.id, &j.destination.address)
                != (
                    &first.user,
                    &first.destination.id,
                    &first.destination.address,
                )
        }) {
            let reason = format!(
                "a bundle for {}/{} holds job {} for {}/{}",
                first.user,
                first.destination.id,
                stranger.job_id,
                stranger.user,
                stranger.destination.id
            );
            return Err(reject_bundle(bundle_id, reason));
        }
        // What cannot be rendered is the destination's fault, the same for every job: refused
        // before any record is claimed, without rendering a mail that the claims may change.
        let d = &first.destination;
        fmn_core::render::require_email(d.kind, &d.id, &d.address)
            .map_err(|e| reject_bundle(bundle_id, format!("cannot be sent as mail: {e}")))?;
        let context = &self.settings.context;
        let keys: Vec<String> = bundle
            .jobs
            .iter()
            .map(|j| Channel::Email.key(&j.job_id))
            .collect();
        let items: Vec<(&str, RecordInfo<'_>)> = keys
            .iter()
            .zip(&bundle.jobs)
            .map(|(key, job)| (key.as_str(), record_info(job)))
            .collect();
        let keys = &keys;
        let outcomes = self
            .records
            .deliver_together(&items, |claimed| async move {
                let jobs: Vec<DeliveryJob> =
                    claimed.iter().map(|&i| bundle.jobs[i].clone()).collect();
                let id = bundle_id_of(&jobs);
                let mail = fmn_core::render::digest::render_burst(&jobs, &id, context, now)
                    .map_err(|e| SesError::Rejected(format!("cannot be sent as mail: {e}")))?;
                let keys: Vec<&str> = claimed.iter().map(|&i| keys[i].as_str()).collect();
                tracing::info!(
                    bundle_id,
                    jobs = jobs.len(),
                    of = bundle.jobs.len(),
                    "sending a burst as one mail"
                );
                self.mailer.send_recorded(&mail.to, &mail.raw, &keys).await
            })
            .await;
        let mut verdicts = Vec::with_capacity(outcomes.len());
        let mut reported = false;
        for (job, outcome) in bundle.jobs.iter().zip(outcomes) {
            let delivered = match outcome {
                Ok(delivered) => delivered,
                Err(e) => {
                    tracing::warn!(job_id = %job.job_id, bundle_id, error = %e, "claiming the job's record failed");
                    verdicts.push(Err(RecordError::from(e)));
                    continue;
                }
            };
            if let Delivered::Rejected { reason, .. } = &delivered {
                if !std::mem::replace(&mut reported, true) {
                    self.report_refusal(job, reason, now).await;
                }
            }
            verdicts.push(verdict(job, Some(bundle_id), delivered));
        }
        bundle_verdict(verdicts)
    }

    /// A refusal counts against the destination only in a run: SES refuses for reasons of ours
    /// too (an unverified sender), so it never stops one at once.
    async fn report_refusal(&self, job: &DeliveryJob, reason: &str, now: i64) {
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
            tracing::warn!(job_id = %job.job_id, error = %e, "could not report the refusal to the destination's health");
        }
    }
}

/// Who and what a job's record names.
fn record_info(job: &DeliveryJob) -> RecordInfo<'_> {
    RecordInfo {
        user: &job.user,
        destination: &job.destination.id,
        address: &job.destination.address,
        what: &job.notification.title,
    }
}

/// The id of the bundle `jobs` make (the claimed part of a bundle is a bundle of its own).
fn bundle_id_of(jobs: &[DeliveryJob]) -> String {
    fmn_core::jobs::bundle_id(jobs.iter().map(|j| j.job_id.as_str()))
}

fn reject_bundle(bundle_id: &str, reason: String) -> RecordError {
    tracing::error!(bundle_id, %reason, "bundle dead-lettered");
    RecordError::Reject(reason)
}

/// What a job's delivery means for its queue message, logged.
fn verdict(
    job: &DeliveryJob,
    bundle_id: Option<&str>,
    delivered: Delivered,
) -> Result<(), RecordError> {
    let job_id = job.job_id.as_str();
    match delivered {
        Delivered::Sent {
            message_id,
            attempts,
        } => {
            tracing::info!(job_id, bundle_id, user = %job.user, destination = %job.destination.id, ses_message_id = %message_id, attempt = attempts, "mail sent");
            Ok(())
        }
        Delivered::AlreadySent { message_id } => {
            tracing::info!(
                job_id,
                bundle_id,
                ?message_id,
                "already sent; acknowledged without sending"
            );
            Ok(())
        }
        Delivered::AlreadyRejected { reason } => {
            tracing::warn!(job_id, bundle_id, %reason, "rejected before and dead-lettered then; acknowledged");
            Ok(())
        }
        Delivered::InFlight { since_ms } => Err(RecordError::Retry(format!(
            "job {job_id} is being sent by another invocation (claimed at {since_ms} ms)"
        ))),
        Delivered::Rejected { reason, unrecorded } => {
            if let Some(e) = unrecorded {
                tracing::error!(job_id, error = %e, "could not record the rejection");
            }
            tracing::error!(job_id, bundle_id, user = %job.user, destination = %job.destination.id, address = %job.destination.address, %reason, "SES rejected the mail; job dead-lettered");
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

/// A bundle's verdict from its jobs': done when all are; otherwise the gravest (the batch
/// stops, dead-letter, try again).
fn bundle_verdict(verdicts: Vec<Result<(), RecordError>>) -> Result<(), RecordError> {
    let rank = |e: &RecordError| match e {
        RecordError::Halt(_) => 0,
        RecordError::Reject(_) => 1,
        _ => 2,
    };
    verdicts
        .into_iter()
        .filter_map(Result::err)
        .min_by_key(rank)
        .map_or(Ok(()), Err)
}

impl SqsBatchHandler for DeliverEmailHandler {
    async fn handle_batch(&self, event: SqsEvent) -> SqsBatchResponse {
        process_records(FUNCTION.binary(), event, Some(&self.dead_letter), |r| {
            self.handle_record(r)
        })
        .await
    }
}
