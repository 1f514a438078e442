//! The deliver-matrix function: sends the jobs on the Matrix queue to their users as direct
//! messages from the bot account, each once, through the client-server API.
//!
//! Per batch, in order (the queue is FIFO with one message group):
//!
//! 1. every record is parsed ([`fmn_core::matrix::MatrixJob`]: a delivery job to a Matrix
//!    destination, or a message rendered before it was queued: a confirmation request, a
//!    digest); a malformed one is dead-lettered with its reason;
//! 2. its delivery record `matrix#<job id>` is claimed (`fmn_aws::delivery_records`): one
//!    already `sent` is acknowledged without a message;
//! 3. the user's direct-message room is found: remembered (`fmn_aws::matrix_rooms`) and
//!    checked once per batch (a room the user left or was banned from is replaced), or created
//!    (`createRoom`, `trusted_private_chat`, the user invited, once their profile shows they
//!    exist) and remembered;
//! 4. the message is sent with `PUT /rooms/{room}/send/m.room.message/{job id}`: the job id is
//!    the transaction id, so a job sent again (our record lost, a crash after the send) is
//!    answered with the first event and not shown twice; then the record is marked `sent`.
//!
//! Rate limits (`M_LIMIT_EXCEEDED`, `retry_after_ms`): a wait that ends within the batch's
//! sending time (`FMN_MATRIX_BATCH_SECONDS`) is waited, and the same message sent again;
//! a longer one sends the job, and every later job of the batch, back to the queue held back
//! for the server's delay ([`RecordError::RetryAfter`]: a visibility change, not a try of the
//! retry schedule). An unreachable or failing homeserver returns the rest of the batch for the
//! retry schedule; a refused access token halts the batch (nothing can be sent); a refusal of
//! one job (an unknown user, a room that cannot be made) is recorded `rejected` and the job
//! dead-lettered with the server's words.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use fmn_aws::batch::{process_batch, DeadLetterQueue, Record, RecordError, RetrySchedule};
use fmn_aws::delivery_records::{Channel, Claim, ClaimToken, DeliveryRecords, RecordInfo};
use fmn_aws::lambda::SqsBatchHandler;
use fmn_aws::matrix_rooms::MatrixRooms;
use fmn_aws::retry::ErrorClass;
use fmn_aws::{AwsClients, FunctionName, QueueName};
use fmn_core::matrix::MatrixJob;
use tokio::time::Instant;

pub mod client;
pub mod settings;

use client::{MatrixClient, MatrixError};
pub use settings::MatrixSettings;

pub const FUNCTION: FunctionName = FunctionName::DeliverMatrix;

/// Why the function cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Sqs(#[from] fmn_aws::sqs::SqsError),
    #[error("FMN_MATRIX_ACCESS_TOKEN: not set (the bot's access token; on AWS FMN_MATRIX_ACCESS_TOKEN_PARAMETER names it)")]
    NoToken,
    #[error("the bot's account (FMN_MATRIX_HOMESERVER, FMN_MATRIX_ACCESS_TOKEN): {0}")]
    Matrix(#[from] MatrixError),
}

pub struct DeliverMatrixHandler {
    dead_letter: DeadLetterQueue,
    /// The Matrix queue: where a failed job's next try is scheduled.
    source_url: String,
    records: DeliveryRecords,
    rooms: MatrixRooms,
    client: MatrixClient,
    /// The bot's user id (`whoami` at cold start).
    bot: String,
    settings: MatrixSettings,
    /// `M_LIMIT_EXCEEDED` answers seen (waited out or sent back to the queue).
    rate_limited: AtomicU64,
}

/// What became of one job.
enum Sent {
    Event(String),
    Failed(MatrixError),
}

impl DeliverMatrixHandler {
    pub async fn with_settings(
        clients: &AwsClients,
        settings: MatrixSettings,
    ) -> Result<Self, StartError> {
        let clients = &clients.scoped(FUNCTION);
        let token = settings.access_token.clone().ok_or(StartError::NoToken)?;
        let client = MatrixClient::new(&settings.homeserver, &token, settings.request_timeout)?;
        let bot = client.whoami().await?;
        tracing::info!(%bot, homeserver = %settings.homeserver, "matrix bot ready");
        let url = clients.queue_url(QueueName::MatrixDeadLetter).await?;
        Ok(Self {
            dead_letter: DeadLetterQueue::new(clients.sqs.clone(), url),
            source_url: clients.queue_url(QueueName::Matrix).await?,
            records: DeliveryRecords::from_clients(clients, settings.lease),
            rooms: MatrixRooms::from_clients(clients),
            client,
            bot,
            settings,
            rate_limited: AtomicU64::new(0),
        })
    }

    /// Failed records come back on `schedule` (`FMN_RETRY_SCHEDULE`), then are dead-lettered.
    pub fn with_retry_schedule(mut self, schedule: Option<RetrySchedule>) -> Self {
        self.dead_letter = self
            .dead_letter
            .with_schedule(self.source_url.clone(), schedule);
        self
    }

    pub fn bot(&self) -> &str {
        &self.bot
    }

    /// How many times the homeserver answered `M_LIMIT_EXCEEDED` since the start.
    pub fn rate_limited(&self) -> u64 {
        self.rate_limited.load(Ordering::Relaxed)
    }

    /// The verdict on each record, in order (each message once, see `process_batch`).
    async fn deliver(&self, records: Vec<Record>) -> Vec<Result<(), RecordError>> {
        let started = Instant::now();
        let deadline = started + self.settings.batch_time;
        let mut verdicts: Vec<Result<(), RecordError>> = Vec::with_capacity(records.len());
        // Rooms found (and checked) in this batch: user id → room id.
        let mut rooms: HashMap<String, String> = HashMap::new();
        let mut sent = 0usize;
        for record in &records {
            // FIFO: once a job goes back to the queue, every later one goes back too, untried,
            // so a user's messages keep their order.
            if let Some(back) = verdicts.iter().rev().find_map(|v| match v {
                Err(
                    e @ (RecordError::Retry(_)
                    | RecordError::RetryAfter { .. }
                    | RecordError::Halt(_)),
                ) => Some(e),
                _ => None,
            }) {
                let verdict = match back {
                    RecordError::Halt(r) => RecordError::Halt(r.clone()),
                    RecordError::RetryAfter { reason, after } => RecordError::RetryAfter {
                        reason: format!(
                            "an earlier job of the batch is retried first, in order ({reason})"
                        ),
                        after: *after,
                    },
                    other => RecordError::Retry(format!(
                        "an earlier job of the batch is retried first, in order ({other})"
                    )),
                };
                verdicts.push(Err(verdict));
                continue;
            }
            let verdict = self.deliver_one(record, deadline, &mut rooms).await;
            if verdict.is_ok() {
                sent += 1;
            }
            verdicts.push(verdict);
        }
        tracing::info!(
            records = records.len(),
            settled = sent,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "matrix batch done"
        );
        verdicts
    }

    async fn deliver_one(
        &self,
        record: &Record,
        deadline: Instant,
        rooms: &mut HashMap<String, String>,
    ) -> Result<(), RecordError> {
        let message_id = &record.message_id;
        let job = match MatrixJob::parse(&record.body) {
            Ok(job) => job,
            Err(e) => {
                let reason = format!("not a Matrix job: {e}");
                tracing::error!(%message_id, %reason, "job dead-lettered");
                return Err(RecordError::Reject(reason));
            }
        };
        let job_id = job.job_id().to_string();
        if Instant::now() >= deadline {
            // Not a failure: the job was not tried, so it does not use up a try.
            return Err(RecordError::RetryAfter {
                reason: "the batch's sending time is used up; left for the next invocation".into(),
                after: Duration::from_secs(1),
            });
        }
        let what = match &job {
            fmn_core::matrix::MatrixJob::Delivery(j) => j.notification.title.clone(),
            fmn_core::matrix::MatrixJob::Prepared(_) => "digest".to_string(),
        };
        let info = RecordInfo {
            user: job.user(),
            destination: job.destination_id(),
            address: job.user_id(),
            what: &what,
        };
        let claim = match self
            .records
            .claim(&Channel::Matrix.key(&job_id), &info)
            .await?
        {
            Claim::Claimed(claim) => claim,
            Claim::AlreadySent { .. } => {
                tracing::info!(%job_id, "already sent; acknowledged without sending");
                return Ok(());
            }
            Claim::AlreadyRejected { reason } => {
                tracing::info!(%job_id, %reason, "refused by the homeserver before; acknowledged");
                return Ok(());
            }
            Claim::InFlight { since_ms } => {
                return Err(RecordError::Retry(format!(
                    "job {job_id} is being sent by another invocation (claimed at {since_ms} ms)"
                )));
            }
        };
        let user_id = job.user_id().to_string();
        let content = job.text().content();
        match self
            .send(&user_id, &job_id, &content, deadline, rooms)
            .await
        {
            Sent::Event(event_id) => {
                if let Err(e) = self.records.mark_sent(&claim, &event_id).await {
                    // The message is out (and its transaction id makes a repeat harmless).
                    tracing::error!(%job_id, error = %e, "message sent but its record could not be marked");
                }
                self.records.note_delivered(&claim.key, &info).await;
                tracing::info!(%job_id, user_id = %user_id, %event_id, "matrix message sent");
                Ok(())
            }
            Sent::Failed(e) => {
                let reason = e.to_string();
                match (&e, e.class()) {
                    (MatrixError::RateLimited { retry_after, .. }, _) => {
                        self.give_back(&claim, &reason).await;
                        Err(RecordError::RetryAfter {
                            reason,
                            after: retry_after.unwrap_or(Duration::from_secs(5)),
                        })
                    }
                    (_, ErrorClass::Permanent) => {
                        tracing::error!(%job_id, user_id = %user_id, %reason, "the homeserver refused the message; recorded and dead-lettered");
                        if let Err(e) = self.records.mark_rejected(&claim, &reason).await {
                            tracing::error!(%job_id, error = %e, "could not record the refusal");
                        }
                        Err(RecordError::Reject(reason))
                    }
                    (_, class) => {
                        self.give_back(&claim, &reason).await;
                        Err(RecordError::of_class(class, reason))
                    }
                }
            }
        }
    }

    /// Sends `content` to `user`'s room (found or made), waiting out rate limits that end
    /// before `deadline`.
    async fn send(
        &self,
        user: &str,
        txn_id: &str,
        content: &serde_json::Value,
        deadline: Instant,
        rooms: &mut HashMap<String, String>,
    ) -> Sent {
        let mut fresh_room = false;
        loop {
            let room = match rooms.get(user) {
                Some(room) => room.clone(),
                None => match self.room_of(user, fresh_room).await {
                    Ok(room) => {
                        rooms.insert(user.to_string(), room.clone());
                        room
                    }
                    Err(RoomError::Matrix(e)) => {
                        if let Some(wait) = self.wait_for(&e, deadline) {
                            tokio::time::sleep(wait).await;
                            continue;
                        }
                        return Sent::Failed(e);
                    }
                    Err(RoomError::Store(e)) => {
                        return Sent::Failed(MatrixError::Unavailable(format!(
                            "the rooms' table: {e}"
                        )))
                    }
                },
            };
            match self.client.send_message(&room, txn_id, content).await {
                Ok(event_id) => return Sent::Event(event_id),
                Err(e) => {
                    if let Some(wait) = self.wait_for(&e, deadline) {
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                    // The bot is no longer in the room (kicked, the room gone): make a new one,
                    // once.
                    if matches!(&e, MatrixError::Refused { code, .. } if code == "M_FORBIDDEN")
                        && !fresh_room
                    {
                        tracing::warn!(user, %room, error = %e, "cannot send to the remembered room; making a new one");
                        rooms.remove(user);
                        fresh_room = true;
                        continue;
                    }
                    return Sent::Failed(e);
                }
            }
        }
    }

    /// How long to wait before trying again, when `e` is a rate limit that ends before
    /// `deadline` (with a request's time to spare).
    fn wait_for(&self, e: &MatrixError, deadline: Instant) -> Option<Duration> {
        let MatrixError::RateLimited { retry_after, .. } = e else {
            return None;
        };
        self.rate_limited.fetch_add(1, Ordering::Relaxed);
        let wait = retry_after.unwrap_or(Duration::from_secs(1));
        (Instant::now() + wait < deadline).then_some(wait)
    }

    /// The user's direct-message room: the remembered one while the user is still invited to
    /// or in it (and `fresh` is false), else a new one, remembered.
    async fn room_of(&self, user: &str, fresh: bool) -> Result<String, RoomError> {
        if !fresh {
            if let Some(room) = self
                .rooms
                .get(&self.bot, user)
                .await
                .map_err(RoomError::Store)?
            {
                match self.client.membership(&room, user).await {
                    Ok(Some(m)) if m == "join" || m == "invite" => return Ok(room),
                    Ok(m) => {
                        tracing::info!(user, %room, membership = ?m, "the user left the direct-message room; making a new one");
                    }
                    Err(MatrixError::Refused { .. }) => {
                        tracing::info!(user, %room, "the remembered room cannot be read; making a new one");
                    }
                    Err(e) => return Err(RoomError::Matrix(e)),
                }
            }
        }
        // Inviting an unknown user succeeds on some servers: the message would go nowhere.
        if !self
            .client
            .user_exists(user)
            .await
            .map_err(RoomError::Matrix)?
        {
            return Err(RoomError::Matrix(MatrixError::Refused {
                status: 404,
                code: "M_NOT_FOUND".into(),
                message: format!("no such Matrix user {user}"),
            }));
        }
        let room = self
            .client
            .create_direct_room(user)
            .await
            .map_err(RoomError::Matrix)?;
        tracing::info!(user, %room, "direct-message room created");
        self.rooms
            .put(&self.bot, user, &room)
            .await
            .map_err(RoomError::Store)?;
        Ok(room)
    }

    /// Marks a claimed delivery for retry, so the next attempt may claim it at once.
    async fn give_back(&self, claim: &ClaimToken, reason: &str) {
        if let Err(e) = self.records.mark_retry(claim, reason).await {
            tracing::warn!(key = %claim.key, error = %e, "could not mark the delivery for retry; it waits for the lease");
        }
    }
}

enum RoomError {
    Matrix(MatrixError),
    Store(fmn_aws::dynamo::DynamoError),
}

impl SqsBatchHandler for DeliverMatrixHandler {
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
