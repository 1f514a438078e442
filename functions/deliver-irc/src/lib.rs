//! The deliver-irc function: says the jobs on the IRC queue to their nicks, each once, through
//! one bot connection per batch.
//!
//! Per batch:
//!
//! 1. every record is parsed ([`fmn_core::irc_line::IrcJob`]: a delivery job to an IRC
//!    destination, or a `{"kind": "confirmation", …}` request); a malformed one is
//!    dead-lettered with its reason;
//! 2. in order, each job's delivery record `irc#<job id>` is claimed
//!    (`fmn_aws::delivery_records`): one already `sent` is acknowledged without a line, one
//!    being sent elsewhere is retried later;
//! 3. the bot connects on the first job to send (`FMN_IRC_*`), waits for the server's welcome,
//!    and says one `PRIVMSG` per job, paced by a token bucket (`FMN_IRC_RATE`, `FMN_IRC_BURST`);
//! 4. it QUITs; the server's answer confirms every line before it (a server handles a
//!    client's lines in order), and only then are the records marked `sent` and the jobs
//!    acknowledged. A line the server refused (`401 No such nick`: the nick is not online) is
//!    recorded as `rejected` with the server's words and acknowledged: IRC keeps no messages
//!    for absent nicks, and retrying would only repeat the refusal.
//!
//! A confirmation request with `FMN_IRC_REQUIRE_REGISTERED_NICK` on first asks services
//! whether the nick is registered (`NickServ INFO`); an unregistered nick gets no line: the
//! refusal is recorded (`rejected`, with the reason), reported to the destination's health
//! (the mail-events queue; the API shows it as the destination's last problem) and the job
//! acknowledged, since asking again cannot help until the nick's owner registers it.
//!
//! Failures: services refusing the bot's SASL login (a wrong password) halt the batch: every
//! job goes back untried (and is dead-lettered after the queue's receive count), since nothing
//! can be sent until an operator fixes the settings. No connection, or a connection lost before the QUIT was confirmed → the batch's
//! unconfirmed jobs go back to the queue (record `retry`). The queue is FIFO with one message
//! group (one invocation at a time, in order): from the first job that goes back, every later
//! job of the batch goes back untried. A job whose line reached the server
//! but whose confirmation was lost is said again on the retry: at least once, never lost. Jobs
//! left when the batch's sending time (`FMN_IRC_BATCH_SECONDS`) is used up go back unclaimed.

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use fmn_aws::batch::{process_batch, DeadLetterQueue, Record, RecordError, RetrySchedule};
use fmn_aws::delivery_records::{Channel, Claim, ClaimToken, DeliveryRecords, RecordInfo};
use fmn_aws::health::GaveUpReport;
use fmn_aws::lambda::SqsBatchHandler;
use fmn_aws::{AwsClients, FunctionName, QueueName};
use fmn_core::irc_line::{ConfirmationJob, IrcJob, LineContext};
use tokio::time::Instant;

pub mod bot;
pub mod settings;

use bot::{Bot, BotError};
use fmn_aws::pacing::Pacer;
pub use settings::IrcSettings;

pub const FUNCTION: FunctionName = FunctionName::DeliverIrc;

pub struct DeliverIrcHandler {
    dead_letter: DeadLetterQueue,
    /// The IRC queue: where a failed job's next try is scheduled.
    source_url: String,
    records: DeliveryRecords,
    /// Where refusals are reported to the destination-health writer (mail-events).
    health_reports_url: String,
    settings: IrcSettings,
}

/// A job whose line went out and awaits the server's confirmation.
struct Sent {
    /// The record's place in the batch.
    index: usize,
    job_id: String,
    nick: String,
    claim: ClaimToken,
    /// For the destination's last delivery (none for a confirmation line).
    delivered: Option<(String, String, String)>,
}

impl DeliverIrcHandler {
    pub async fn with_settings(
        clients: &AwsClients,
        settings: IrcSettings,
    ) -> Result<Self, fmn_aws::sqs::SqsError> {
        let clients = &clients.scoped(FUNCTION);
        let url = clients.queue_url(QueueName::IrcDeadLetter).await?;
        Ok(Self {
            dead_letter: DeadLetterQueue::new(clients.sqs.clone(), url),
            source_url: clients.queue_url(QueueName::Irc).await?,
            records: DeliveryRecords::from_clients(clients, settings.lease),
            health_reports_url: clients.queue_url(QueueName::MailEvents).await?,
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

    pub fn settings(&self) -> &IrcSettings {
        &self.settings
    }

    /// The verdict on each record, in order (each message once, see `process_batch`).
    async fn deliver(&self, records: Vec<Record>) -> Vec<Result<(), RecordError>> {
        let started = Instant::now();
        let mut verdicts: Vec<Result<(), RecordError>> = Vec::with_capacity(records.len());
        let ctx = LineContext {
            public_url: self.settings.public_url.clone(),
            now_secs: fmn_aws::dynamo::now_secs() as i64,
        };
        let mut bot: Option<Bot> = None;
        let mut down: Option<String> = None;
        let pacer = Pacer::new(self.settings.rate, self.settings.burst);
        let mut sent: Vec<Sent> = Vec::new();

        // The queue is FIFO: once a job goes back to it, every later one goes back too, untried,
        // so lines keep their order (Lambda hands the group back from the first failure).
        let mut blocked: Option<String> = None;
        for (index, record) in records.iter().enumerate() {
            if blocked.is_none() {
                if let Some(Err(RecordError::Retry(reason) | RecordError::Halt(reason))) =
                    verdicts.last()
                {
                    blocked = Some(reason.clone());
                }
            }
            if let Some(reason) = &blocked {
                verdicts.push(Err(RecordError::Retry(format!(
                    "an earlier job of the batch is retried first, in order ({reason})"
                ))));
                continue;
            }
            // Filled in below unless the line goes out (then after the QUIT).
            verdicts.push(Ok(()));
            let message_id = &record.message_id;
            let job = match IrcJob::parse(&record.body) {
                Ok(job) => job,
                Err(e) => {
                    let reason = format!("not an IRC job: {e}");
                    tracing::error!(%message_id, %reason, "job dead-lettered");
                    verdicts[index] = Err(RecordError::Reject(reason));
                    continue;
                }
            };
            let job_id = job.job_id().to_string();
            let text = job.text(&ctx);
            if text.is_empty() {
                let reason = "the job has nothing to say".to_string();
                tracing::error!(%job_id, %message_id, %reason, "job dead-lettered");
                verdicts[index] = Err(RecordError::Reject(reason));
                continue;
            }
            if let Some(reason) = &down {
                verdicts[index] = Err(RecordError::Retry(reason.clone()));
                continue;
            }
            if started.elapsed() >= self.settings.batch_time {
                verdicts[index] = Err(RecordError::Retry(
                    "the batch's sending time is used up; left for the next invocation".into(),
                ));
                continue;
            }

            let what = match &job {
                fmn_core::irc_line::IrcJob::Delivery(j) => j.notification.title.clone(),
                fmn_core::irc_line::IrcJob::Confirmation(_) => "confirmation request".to_string(),
            };
            let info = RecordInfo {
                user: job.user(),
                destination: job.destination_id(),
                address: job.nick(),
                what: &what,
            };
            let claim = match self.records.claim(&Channel::Irc.key(&job_id), &info).await {
                Ok(Claim::Claimed(claim)) => claim,
                Ok(Claim::AlreadySent { .. }) => {
                    tracing::info!(%job_id, "already sent; acknowledged without sending");
                    continue;
                }
                Ok(Claim::AlreadyRejected { reason }) => {
                    tracing::info!(%job_id, %reason, "refused by the server before; acknowledged");
                    continue;
                }
                Ok(Claim::InFlight { since_ms }) => {
                    verdicts[index] = Err(RecordError::Retry(format!(
                        "job {job_id} is being sent by another invocation (claimed at {since_ms} ms)"
                    )));
                    continue;
                }
                Err(e) => {
                    verdicts[index] = Err(e.into());
                    continue;
                }
            };

            if bot.is_none() {
                match Bot::connect(&self.settings).await {
                    Ok(b) => bot = Some(b),
                    Err(e) => {
                        let reason = e.to_string();
                        self.give_back(&claim, &reason).await;
                        verdicts[index] = Err(if let BotError::LoginRefused { .. } = e {
                            tracing::error!(error = %reason, "services refused the bot's login; the batch returns to the queue untried until the settings are fixed");
                            RecordError::Halt(reason.clone())
                        } else {
                            tracing::error!(error = %reason, "irc connection failed; the batch returns to the queue");
                            RecordError::Retry(reason.clone())
                        });
                        down = Some(reason);
                        continue;
                    }
                }
            }
            let b = bot.as_mut().expect("connected above");
            if let IrcJob::Confirmation(confirmation) = &job {
                if self.settings.require_registered_nick {
                    pacer.take().await;
                    match b
                        .nick_registered(&confirmation.nick, self.settings.nickserv_timeout)
                        .await
                    {
                        Ok(true) => {}
                        Ok(false) => {
                            self.refuse_unregistered(confirmation, &claim).await;
                            continue;
                        }
                        Err(e) => {
                            let reason = format!("cannot tell whether the nick is registered: {e}");
                            tracing::error!(%job_id, error = %reason, "confirmation returns to the queue");
                            self.give_back(&claim, &reason).await;
                            verdicts[index] = Err(RecordError::Retry(reason));
                            continue;
                        }
                    }
                }
            }
            pacer.take().await;
            if let Err(e) = b.privmsg(job.nick(), &text) {
                let reason = e.to_string();
                tracing::error!(error = %reason, "irc connection lost mid-batch");
                self.give_back(&claim, &reason).await;
                verdicts[index] = Err(RecordError::Retry(reason.clone()));
                down = Some(reason);
                continue;
            }
            sent.push(Sent {
                index,
                job_id,
                nick: job.nick().to_string(),
                claim,
                delivered: matches!(job, fmn_core::irc_line::IrcJob::Delivery(_)).then(|| {
                    (
                        job.user().to_string(),
                        job.destination_id().to_string(),
                        what.clone(),
                    )
                }),
            });
        }

        let Some(bot) = bot else {
            return verdicts;
        };
        let nick = bot.nick.clone();
        let lines = sent.len();
        match bot.quit(self.settings.quit_timeout).await {
            Ok(refused) => {
                for s in sent {
                    if let Some(why) = refused.get(&s.nick.to_lowercase()) {
                        tracing::warn!(job_id = %s.job_id, nick = %s.nick, reason = %why, "the server refused the line; recorded and acknowledged");
                        if let Err(e) = self.records.mark_rejected(&s.claim, why).await {
                            tracing::error!(job_id = %s.job_id, error = %e, "could not record the refusal");
                        }
                    } else {
                        if let Err(e) = self
                            .records
                            .mark_sent(&s.claim, &format!("{}:{}", self.settings.server, nick))
                            .await
                        {
                            // The line is out: acknowledging is right. The record stays
                            // `sending`; a repeat of the job waits for the lease.
                            tracing::error!(job_id = %s.job_id, error = %e, "line sent but its record could not be marked");
                        }
                        if let Some((user, destination, what)) = &s.delivered {
                            let info = RecordInfo {
                                user,
                                destination,
                                address: &s.nick,
                                what,
                            };
                            self.records.note_delivered(&s.claim.key, &info).await;
                        }
                        tracing::info!(job_id = %s.job_id, nick = %s.nick, "irc line sent");
                    }
                }
                tracing::info!(
                    lines,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "irc batch done"
                );
            }
            Err(e) => {
                let reason = format!("not confirmed by the server: {e}");
                tracing::error!(lines, error = %reason, "irc batch not confirmed; its lines return to the queue");
                for s in sent {
                    self.give_back(&s.claim, &reason).await;
                    verdicts[s.index] = Err(RecordError::Retry(reason.clone()));
                }
            }
        }
        verdicts
    }

    /// Records that `confirmation`'s nick is not registered with services, and reports it to
    /// the destination's health, where the user sees it.
    async fn refuse_unregistered(&self, confirmation: &ConfirmationJob, claim: &ClaimToken) {
        let reason = format!(
            "the nick {} is not registered with {} on {}: no confirmation was sent; register \
             the nick (/msg {} REGISTER) and ask for a new confirmation",
            confirmation.nick, self.settings.nickserv, self.settings.server, self.settings.nickserv,
        );
        tracing::warn!(job_id = %confirmation.job_id, user = %confirmation.user, nick = %confirmation.nick, %reason, "confirmation refused; acknowledged");
        if let Err(e) = self.records.mark_rejected(claim, &reason).await {
            tracing::error!(job_id = %confirmation.job_id, error = %e, "could not record the refusal");
        }
        let Some(destination) = &confirmation.destination else {
            return;
        };
        let report = GaveUpReport {
            user: confirmation.user.clone(),
            destination: destination.clone(),
            reason,
            at: fmn_aws::dynamo::now_secs() as i64,
        };
        if let Err(e) = report
            .send(&self.dead_letter.sqs, &self.health_reports_url)
            .await
        {
            tracing::warn!(job_id = %confirmation.job_id, error = %e, "could not report the refusal to the destination's health");
        }
    }

    /// Marks a claimed delivery for retry, so the next attempt may claim it at once.
    async fn give_back(&self, claim: &ClaimToken, reason: &str) {
        if let Err(e) = self.records.mark_retry(claim, reason).await {
            tracing::warn!(key = %claim.key, error = %e, "could not mark the delivery for retry; it waits for the lease");
        }
    }
}

impl SqsBatchHandler for DeliverIrcHandler {
    async fn handle_batch(&self, event: SqsEvent) -> SqsBatchResponse {
        process_batch(
            FUNCTION.binary(),
            event,
            Some(&self.dead_letter),
            |records| self.deliver(records),
        )
        .await
    }
}
