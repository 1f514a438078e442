//! The match function: reads bus messages from the ingest queue, works out who asked to be
//! told about each, and fans out delivery jobs: immediate e-mail and IRC jobs to their queues,
//! digest items into the digest table.
//!
//! Per batch it refreshes its warm copy of the preferences (two counter reads when nothing
//! changed). Per message: decode (the bridge may have compressed it or stored it aside),
//! parse, extract metadata, keep the message in the recent-messages table, match, fan out,
//! record the users' activity, and disable one-shot filters that fired. The batch's immediate
//! e-mail jobs go on their queue once every message is handled, a burst for one address
//! (`FMN_EMAIL_BURST` or more) as one bundle that deliver-email sends as one mail. Job ids are
//! deterministic, so a message SQS delivers twice makes the same jobs again and delivery drops
//! the repeats. A malformed message goes to the dead-letter queue with the reason; a failure
//! of a service returns just that record to the queue.
//!
//! Time (`fmn_core::schedule`, in the user's time zone): a match for a digest destination with
//! a schedule records when the digest comes round; a match for an immediate destination
//! during its quiet hours, or beyond its filter's hourly allowance (`fmn_aws::throttle`), is
//! held in the digest table until the quiet hours (or the hour) end, and the digest function
//! sends what was held together. Severity error and urgent filters go through quiet hours.

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use std::sync::atomic::{AtomicU64, Ordering};
use tracing::Instrument;

use tokio::sync::Mutex;

use fmn_aws::auto_accounts::{AccountCreator, Ensured};
use fmn_aws::batch::{process_batch, DeadLetterQueue, Record, RecordError, RetrySchedule};
use fmn_aws::clock::Clock;
use fmn_aws::digest_store::{Added, DigestStore};
use fmn_aws::ingest_wire::{decode, Decoded, ENCODING_ATTRIBUTE};
use fmn_aws::job_queue::{enqueue_jobs, QueuedJob};
use fmn_aws::lambda::SqsBatchHandler;
use fmn_aws::ownership_store::OwnershipStore;
use fmn_aws::prefs_cache::{PrefsCache, RefreshError, RefreshReport};
use fmn_aws::prefs_store::PrefsStore;
use fmn_aws::recent::RecentMessages;
use fmn_aws::retry::{Classify, ErrorClass};
use fmn_aws::throttle::{Allowance, Throttle};
use fmn_aws::{AwsClients, FunctionName, QueueName};
use fmn_core::accounts::account_to_create;
use fmn_core::fact_changes::{fact_changes, FactChange};
use fmn_core::jobs::{email_queue_bodies, DeliveryJob, Notification};
use fmn_core::matching::{Match, MessageFacts};
use fmn_core::message::Envelope;
use fmn_core::noise::{Noise, NoisePolicy};
use fmn_core::prefs::DestinationKind;
use fmn_core::schedule::{self, Route};

pub const FUNCTION: FunctionName = FunctionName::Match;

pub struct MatchHandler {
    clients: AwsClients,
    dead_letter: DeadLetterQueue,
    /// The ingest queue: where a failed message's next try is scheduled.
    source_url: String,
    email_queue: String,
    irc_queue: String,
    matrix_queue: String,
    prefs: PrefsStore,
    ownership: OwnershipStore,
    /// Makes the accounts of new packagers and first Badges logins.
    accounts: AccountCreator,
    recent: RecentMessages,
    digest: DigestStore,
    throttle: Throttle,
    /// "Now" for quiet hours, schedules and allowances (set by tests).
    clock: Clock,
    /// The warm preferences, ownership and alias map.
    cache: Mutex<PrefsCache>,
    /// What is dropped as noise before storage (`FMN_DROP_NOISE`, …).
    noise: NoisePolicy,
    /// Messages dropped as noise since start, by reason.
    noise_dropped: NoiseCounts,
    /// FASJSON, to read an account a message says changed (None: such messages change
    /// nothing until the next sync).
    fasjson: Option<fmn_sources::FasJson>,
    /// From how many immediate mails for one address in one batch they go as one
    /// (`FMN_EMAIL_BURST`; 0: never).
    email_burst: usize,
}

/// The immediate e-mail jobs of a batch's records, held until every record is handled and
/// then put on the queue together, so a burst for one address can go as one mail
/// (`fmn_core::jobs::email_queue_bodies`): each with the index of the record that made it.
#[derive(Default)]
struct HeldEmail(std::sync::Mutex<Vec<(usize, DeliveryJob)>>);

/// Where a record's immediate e-mail jobs go.
#[derive(Clone, Copy)]
enum EmailSink<'a> {
    /// Straight on the queue (a replay).
    Queue,
    /// Held for the batch, as record `.1`'s.
    Held(&'a HeldEmail, usize),
}

/// A job as its queue carries it.
fn queued(job: &DeliveryJob) -> QueuedJob {
    QueuedJob {
        job_id: job.job_id.clone(),
        body: serde_json::to_string(job).expect("jobs serialise"),
    }
}

/// The most JSON a bundle carries: SQS's limit, less room for the job-id attribute.
const MAX_BUNDLE_BYTES: usize = fmn_aws::sqs::MAX_MESSAGE_BYTES - 1024;

/// Messages dropped as noise, by reason (`fmn_core::noise::Noise::label`).
#[derive(Debug, Default)]
pub struct NoiseCounts {
    pub non_production: AtomicU64,
    pub junk_topic: AtomicU64,
    pub ignored_copr_owner: AtomicU64,
}

impl NoiseCounts {
    /// Counts one drop; the new count for its reason.
    fn count(&self, noise: &Noise) -> u64 {
        let counter = match noise {
            Noise::NonProduction(_) => &self.non_production,
            Noise::JunkTopic(_) => &self.junk_topic,
            Noise::IgnoredCoprOwner(_) => &self.ignored_copr_owner,
        };
        counter.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// (label, count) of each reason.
    pub fn snapshot(&self) -> [(&'static str, u64); 3] {
        [
            (
                "non-production",
                self.non_production.load(Ordering::Relaxed),
            ),
            ("junk-topic", self.junk_topic.load(Ordering::Relaxed)),
            (
                "ignored-copr-owner",
                self.ignored_copr_owner.load(Ordering::Relaxed),
            ),
        ]
    }
}

/// What one message led to, for the log.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FanOut {
    /// Jobs put on the email queue.
    pub email: usize,
    /// Jobs put on the IRC queue.
    pub irc: usize,
    /// Jobs put on the Matrix queue.
    pub matrix: usize,
    /// Jobs added to a digest.
    pub digest: usize,
    /// Digest jobs added before (a repeated or replayed message): not added again.
    pub digest_repeats: usize,
    /// Immediate notifications held (quiet hours, allowance spent) for a later digest.
    pub held: usize,
}

/// A message routed: its jobs (`only_user`'s only, when given) and where they went.
#[derive(Debug, Clone)]
pub struct Routed {
    pub jobs: Vec<DeliveryJob>,
    pub fan_out: FanOut,
}

/// The envelope in a message's JSON text.
fn parse_envelope(text: &str) -> Result<Envelope, RecordError> {
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| RecordError::Reject(format!("body is not JSON: {e}")))?;
    Envelope::from_value(value)
        .map_err(|e| RecordError::Reject(format!("not a fedmsg envelope: {e}")))
}

impl MatchHandler {
    pub async fn new(clients: &AwsClients) -> Result<Self, fmn_aws::sqs::SqsError> {
        let clients = &clients.scoped(FUNCTION);
        Ok(Self {
            clients: clients.clone(),
            dead_letter: DeadLetterQueue::new(
                clients.sqs.clone(),
                clients.queue_url(QueueName::IngestDeadLetter).await?,
            ),
            source_url: clients.queue_url(QueueName::Ingest).await?,
            email_queue: clients.queue_url(QueueName::Email).await?,
            irc_queue: clients.queue_url(QueueName::Irc).await?,
            matrix_queue: clients.queue_url(QueueName::Matrix).await?,
            prefs: PrefsStore::from_clients(clients),
            ownership: OwnershipStore::from_clients(clients),
            accounts: AccountCreator::from_clients(clients),
            recent: RecentMessages::from_clients(clients),
            digest: DigestStore::from_clients(clients),
            throttle: Throttle::from_clients(clients),
            clock: Clock::system(),
            cache: Mutex::new(PrefsCache::new()),
            noise: NoisePolicy::default(),
            noise_dropped: NoiseCounts::default(),
            fasjson: None,
            email_burst: fmn_core::jobs::DEFAULT_EMAIL_BURST,
        })
    }

    /// Sends the immediate mails of one address in one batch as one from `burst` of them
    /// (`FMN_EMAIL_BURST`; 0: never).
    pub fn with_email_burst(mut self, burst: usize) -> Self {
        self.email_burst = burst;
        self
    }

    /// Drops what `policy` calls noise before storage (the default: the old FMN's junk topics
    /// and ignored Copr owners, and every environment but production).
    pub fn with_noise_policy(mut self, policy: NoisePolicy) -> Self {
        self.noise = policy;
        self
    }

    /// Messages dropped as noise so far, by reason.
    pub fn noise_dropped(&self) -> &NoiseCounts {
        &self.noise_dropped
    }

    /// Reads accounts that messages say changed from FASJSON.
    pub fn with_fasjson(mut self, settings: &fmn_sources::SourceSettings) -> Self {
        self.fasjson = Some(fmn_sources::FasJson::new(settings));
        self
    }

    /// Failed records come back on `schedule` (`FMN_RETRY_SCHEDULE`), then are dead-lettered.
    pub fn with_retry_schedule(mut self, schedule: Option<RetrySchedule>) -> Self {
        self.dead_letter = self
            .dead_letter
            .with_schedule(self.source_url.clone(), schedule);
        self
    }

    /// Reads "now" from `clock` (tests set the time of day rather than wait for it).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The envelope's JSON text from an ingest record.
    async fn envelope_text(&self, record: &Record) -> Result<String, RecordError> {
        let encoding = record
            .raw
            .message_attributes
            .get(ENCODING_ATTRIBUTE)
            .and_then(|a| a.string_value.as_deref());
        match decode(&record.body, encoding) {
            Ok(Decoded::Envelope(text)) => Ok(text),
            Ok(Decoded::Stored(reference)) => {
                // A reference is read only from our own table: a message naming another one
                // (a forged or misrouted record) must not make us read whatever it names.
                if !self.recent.holds_ingest_bodies_of(&reference) {
                    return Err(RecordError::Reject(format!(
                        "the stored body of {} names table {}, not ours",
                        reference.msg_id, reference.fmn_stored_body.table
                    )));
                }
                match self.recent.fetch_ingest_body(&reference).await {
                    Ok(Some(text)) => Ok(text),
                    Ok(None) => Err(RecordError::Reject(format!(
                        "the stored body of {} is gone (expired?)",
                        reference.msg_id
                    ))),
                    Err(e) => Err(e.into()),
                }
            }
            Err(e) => Err(RecordError::Reject(format!("undecodable body: {e}"))),
        }
    }

    async fn handle_record(
        &self,
        record: &Record,
        email: EmailSink<'_>,
    ) -> Result<(), RecordError> {
        let text = self.envelope_text(record).await?;
        let envelope = parse_envelope(&text)?;
        if let Some(noise) = self.noise.classify(&envelope) {
            // Not an error: acknowledged, neither stored nor matched.
            let total = self.noise_dropped.count(&noise);
            tracing::info!(
                msg_id = envelope.msg_id(),
                topic = envelope.topic().as_str(),
                reason = %noise,
                metric = "fmn_match_noise_dropped_total",
                label = noise.label(),
                total,
                "dropped as noise"
            );
            fmn_aws::telemetry::emit_count(
                "NoiseDropped",
                &[("Function", FUNCTION.binary()), ("Reason", noise.label())],
                1,
            );
            return Ok(());
        }
        self.recent
            .put(envelope.msg_id(), envelope.topic().as_str(), &text)
            .await?;
        self.apply_fact_changes(&envelope).await?;
        self.create_account(&envelope).await?;
        self.route_envelope(&envelope, None, email).await?;
        Ok(())
    }

    /// Writes what the message changes in ownership, membership or accounts
    /// (`fmn_core::fact_changes`), and updates the warm copy at once when something changed
    /// (in place; a reload if someone else wrote meanwhile), so this message and the next ones
    /// are matched on the new facts.
    pub async fn apply_fact_changes(&self, envelope: &Envelope) -> Result<(), RecordError> {
        let changes = fact_changes(envelope);
        if changes.is_empty() {
            return Ok(());
        }
        let msg_id = envelope.msg_id();
        let mut resolved = Vec::with_capacity(changes.len());
        for change in changes {
            let FactChange::RefreshAccount { user } = change else {
                resolved.push(change);
                continue;
            };
            let Some(fas) = &self.fasjson else {
                tracing::debug!(
                    msg_id,
                    user,
                    "no FASJSON configured: the account waits for the next sync"
                );
                continue;
            };
            match fas.user(&user).await {
                Ok(found) => resolved.push(FactChange::SetAccount {
                    account: found.map(|u| u.account()),
                    user,
                }),
                Err(e) if e.class() == ErrorClass::Permanent => {
                    tracing::warn!(msg_id, user, error = %e, "could not read the changed account; it waits for the next sync");
                }
                Err(e) => return Err(RecordError::of_class(e.class(), e.to_string())),
            }
        }
        for change in &resolved {
            if let FactChange::SetAccount { user, account } = change {
                let disabled = match account {
                    Some(a) if !a.locked => false,
                    _ => self
                        .prefs
                        .disable_account(user)
                        .await
                        .map_err(|e| match e {
                            fmn_aws::prefs_store::PrefsStoreError::Dynamo(d) => {
                                RecordError::from(d)
                            }
                            other => RecordError::Retry(other.to_string()),
                        })?,
                };
                if disabled {
                    tracing::info!(
                        msg_id,
                        user,
                        "FAS account locked or gone: fmn account disabled"
                    );
                }
            }
        }
        let Some(version) = self.ownership.apply(&resolved).await? else {
            return Ok(());
        };
        for change in &resolved {
            tracing::info!(
                msg_id,
                version,
                change = change.describe(),
                "facts changed by the bus"
            );
        }
        let mut cache = self.cache.lock().await;
        if let Err(e) = cache
            .apply_own_changes(&resolved, version, &self.prefs, &self.ownership)
            .await
        {
            tracing::warn!(msg_id, error = %e, "reloading after a change failed; the next batch tries again");
        }
        Ok(())
    }

    /// Creates the account a message says to (`fmn_core::accounts::account_to_create`: a new
    /// packager, a first Badges login) if there is none, after the message's membership change
    /// is written (so the admin's setting for the packager group applies), and puts it in the
    /// warm copy at once. The FAS record comes from the stored copy (the sync's), or FASJSON
    /// for an account newer than the last sync.
    pub async fn create_account(&self, envelope: &Envelope) -> Result<(), RecordError> {
        let Some((user, reason)) = account_to_create(envelope) else {
            return Ok(());
        };
        let msg_id = envelope.msg_id();
        let synced = self
            .ownership
            .account(&user)
            .await
            .map_err(|e| RecordError::of_class(e.class(), e.to_string()))?;
        let fas = match (synced, &self.fasjson) {
            (Some(account), _) => Some(account),
            (None, Some(fas)) => match fas.user(&user).await {
                Ok(found) => found.map(|u| u.account()),
                Err(e) if e.class() == ErrorClass::Permanent => {
                    tracing::warn!(msg_id, user, error = %e, "could not read the new account from FASJSON; creating it without its e-mail");
                    None
                }
                Err(e) => return Err(RecordError::of_class(e.class(), e.to_string())),
            },
            (None, None) => None,
        };
        match self.accounts.ensure(&user, reason, fas).await {
            Ok(Ensured::Created(prefs)) => {
                tracing::info!(
                    msg_id,
                    user,
                    reason = reason.as_str(),
                    "account created from the bus"
                );
                self.cache.lock().await.upsert(&prefs);
            }
            Ok(Ensured::Existed(_)) => {
                tracing::debug!(msg_id, user, "account exists already")
            }
            Ok(Ensured::Locked) => {
                tracing::info!(msg_id, user, "FAS account locked: no account created")
            }
            // The message is still routed; a retry would not help.
            Err(e) if e.class() == ErrorClass::Permanent => {
                tracing::warn!(msg_id, user, error = %e, "could not create the account")
            }
            Err(e) => return Err(RecordError::of_class(e.class(), e.to_string())),
        }
        Ok(())
    }

    /// Loads (or refreshes) the preferences and ownership the matching uses; a batch does this
    /// itself, a [`MatchHandler::replay`] caller once before it starts.
    pub async fn refresh_preferences(&self) -> Result<RefreshReport, RefreshError> {
        self.cache
            .lock()
            .await
            .refresh(&self.prefs, &self.ownership)
            .await
    }

    /// Routes a stored message again (`fmn replay`): matches it against the preferences as
    /// they are now and fans its jobs out as for an ingest record (same job ids, so delivery
    /// drops what went out already and a digest takes a job once), without storing the message
    /// again. `only_user`: that user's jobs only. `dry_run`: the jobs, sent nowhere.
    pub async fn replay(
        &self,
        envelope_text: &str,
        only_user: Option<&str>,
        dry_run: bool,
    ) -> Result<Routed, RecordError> {
        let envelope = parse_envelope(envelope_text)?;
        if dry_run {
            let (_, jobs) = self.match_envelope(&envelope, only_user).await?;
            return Ok(Routed {
                jobs,
                fan_out: FanOut::default(),
            });
        }
        self.route_envelope(&envelope, only_user, EmailSink::Queue)
            .await
    }

    /// The matches of `envelope` and their jobs (`only_user`'s only, when given).
    async fn match_envelope(
        &self,
        envelope: &Envelope,
        only_user: Option<&str>,
    ) -> Result<(Vec<Match>, Vec<DeliveryJob>), RecordError> {
        let (meta, mut matches): (_, Vec<Match>) = {
            let cache = self.cache.lock().await;
            let meta = cache.registry().extract(envelope);
            let Some(matcher) = cache.matcher() else {
                return Err(RecordError::Retry("preferences are not loaded".into()));
            };
            let facts = MessageFacts::new(envelope, &meta, matcher.ownership());
            let matches = matcher.matches(&facts);
            (meta, matches)
        };
        if let Some(user) = only_user {
            matches.retain(|m| &*m.user == user);
        }
        let notification = Notification::new(envelope, &meta);
        let jobs = matches
            .iter()
            .map(|m| DeliveryJob::new(m, &notification))
            .collect();
        Ok((matches, jobs))
    }

    /// Matches `envelope` and fans out its jobs, records the users' activity and disables
    /// one-shot filters that fired.
    async fn route_envelope(
        &self,
        envelope: &Envelope,
        only_user: Option<&str>,
        email: EmailSink<'_>,
    ) -> Result<Routed, RecordError> {
        let msg_id = envelope.msg_id();
        let topic = envelope.topic().as_str();
        let (matches, jobs) = self.match_envelope(envelope, only_user).await?;
        let fan_out = self.fan_out(&matches, &jobs, email).await?;
        if !jobs.is_empty() {
            if let Err(e) = self.recent.record_activity(&jobs).await {
                tracing::warn!(msg_id, error = %e, "recording activity failed; notifications still go out");
            }
        }
        self.disable_one_shots(&matches).await;
        if matches.is_empty() {
            tracing::debug!(msg_id, topic, "message matched nobody");
        } else {
            tracing::info!(
                msg_id,
                topic,
                matches = matches.len(),
                email = fan_out.email,
                irc = fan_out.irc,
                matrix = fan_out.matrix,
                digest = fan_out.digest,
                digest_repeats = fan_out.digest_repeats,
                held = fan_out.held,
                "message routed"
            );
        }
        Ok(Routed { jobs, fan_out })
    }

    /// Sends, digests or holds each job (`jobs[i]` is made of `matches[i]`); immediate e-mail
    /// jobs go to `email`.
    async fn fan_out(
        &self,
        matches: &[Match],
        jobs: &[DeliveryJob],
        email_sink: EmailSink<'_>,
    ) -> Result<FanOut, RecordError> {
        let mut out = FanOut::default();
        let mut email = Vec::new();
        let mut irc = Vec::new();
        let mut matrix = Vec::new();
        let now = self.clock.now_secs();
        for (m, job) in matches.iter().zip(jobs) {
            let tz = schedule::user_time_zone(m.time_zone.as_deref());
            if job.destination.is_digest() {
                let not_before = schedule::digest_not_before(&job.destination.delivery, &tz, now);
                match self.digest.add(job, not_before, now).await? {
                    Added::New => out.digest += 1,
                    Added::AlreadyThere => out.digest_repeats += 1,
                }
                continue;
            }
            let mut route = schedule::route(
                &job.destination,
                &tz,
                job.notification.severity,
                m.urgent,
                now,
            );
            if let (Route::Now, Some(max)) = (route, m.max_per_hour) {
                if self.throttle.take(&m.user, &m.filter_id, max, now).await? == Allowance::Spent {
                    route = schedule::throttled(&job.destination, &tz, now);
                }
            }
            if let Route::Hold { until, why } = route {
                self.digest.add(job, Some(until), now).await?;
                tracing::debug!(
                    user = %job.user,
                    destination = %job.destination.id,
                    why = why.as_str(),
                    until,
                    "notification held"
                );
                out.held += 1;
                continue;
            }
            match job.destination.kind {
                DestinationKind::Email => email.push(job),
                DestinationKind::Irc => irc.push(queued(job)),
                DestinationKind::Matrix => matrix.push(queued(job)),
            }
        }
        out.email = email.len();
        out.irc = irc.len();
        out.matrix = matrix.len();
        let email = match email_sink {
            EmailSink::Queue => email.into_iter().map(queued).collect(),
            EmailSink::Held(held, record) => {
                let mut held = held.0.lock().expect("not poisoned");
                held.extend(email.into_iter().map(|job| (record, job.clone())));
                Vec::new()
            }
        };
        for (url, jobs) in [
            (&self.email_queue, email),
            (&self.irc_queue, irc),
            (&self.matrix_queue, matrix),
        ] {
            enqueue_jobs(&self.clients.sqs, url, &jobs).await?;
        }
        Ok(out)
    }

    /// One-shot filters turn themselves off after their first match. A failure here is logged,
    /// not retried: at worst the filter fires once more.
    async fn disable_one_shots(&self, matches: &[Match]) {
        let mut done: Vec<(&str, &str)> = Vec::new();
        for m in matches.iter().filter(|m| m.oneshot) {
            if done.contains(&(&*m.user, &*m.filter_id)) {
                continue;
            }
            done.push((&m.user, &m.filter_id));
            let result = self
                .prefs
                .update(&m.user, |p| {
                    p.disable_filter(&m.filter_id);
                    Ok::<_, fmn_aws::prefs_store::PrefsStoreError>(())
                })
                .await;
            match result {
                Ok(updated) => {
                    self.cache.lock().await.upsert(&updated);
                    tracing::info!(
                        user = &*m.user,
                        filter = &*m.filter_id,
                        "one-shot filter fired; disabled"
                    );
                }
                Err(e) => {
                    tracing::warn!(user = &*m.user, filter = &*m.filter_id, error = %e, "could not disable a one-shot filter")
                }
            }
        }
    }
}

impl SqsBatchHandler for MatchHandler {
    async fn handle_batch(&self, event: SqsEvent) -> SqsBatchResponse {
        {
            let mut cache = self.cache.lock().await;
            match cache.refresh(&self.prefs, &self.ownership).await {
                Ok(report) if report.users_reloaded > 0 || report.ownership_reloaded => {
                    tracing::info!(
                        full_load = report.full_load,
                        ownership_reloaded = report.ownership_reloaded,
                        users_reloaded = report.users_reloaded,
                        "preferences refreshed"
                    );
                }
                Ok(_) => {}
                // With a copy loaded, stale for one batch beats not routing at all.
                Err(e) if cache.matcher().is_some() => {
                    tracing::warn!(error = %e, "refreshing preferences failed; using the loaded copy");
                }
                Err(e) => {
                    tracing::error!(error = %e, "loading preferences failed; the batch is returned to the queue");
                }
            }
        }
        process_batch(
            FUNCTION.binary(),
            event,
            Some(&self.dead_letter),
            |records| self.handle_records(records),
        )
        .await
    }
}

impl MatchHandler {
    /// Each record in turn (the rest untried after a service-wide condition), then the batch's
    /// immediate e-mail jobs on their queue; a record whose jobs could not be queued is
    /// retried whole (its jobs are made again, with the same ids).
    async fn handle_records(&self, records: Vec<Record>) -> Vec<Result<(), RecordError>> {
        let held = HeldEmail::default();
        let mut verdicts: Vec<Result<(), RecordError>> = Vec::with_capacity(records.len());
        let mut halted = false;
        for (i, record) in records.iter().enumerate() {
            if halted {
                verdicts.push(Err(RecordError::Halt(
                    "not tried: an earlier record met a service-wide condition".into(),
                )));
                continue;
            }
            let span = fmn_aws::batch::record_span(FUNCTION.binary(), record);
            let verdict = self
                .handle_record(record, EmailSink::Held(&held, i))
                .instrument(span)
                .await;
            halted = matches!(verdict, Err(RecordError::Halt(_)));
            verdicts.push(verdict);
        }
        let held = held.0.into_inner().expect("not poisoned");
        self.queue_held_email(held, &records, &mut verdicts).await;
        verdicts
    }

    /// Puts the held e-mail jobs of the records that succeeded on the e-mail queue, a burst
    /// for one address as one bundle; a record some of whose jobs failed to go is retried.
    async fn queue_held_email(
        &self,
        held: Vec<(usize, DeliveryJob)>,
        records: &[Record],
        verdicts: &mut [Result<(), RecordError>],
    ) {
        let (owners, jobs): (Vec<usize>, Vec<DeliveryJob>) = held
            .into_iter()
            .filter(|(record, _)| verdicts[*record].is_ok())
            .unzip();
        if jobs.is_empty() {
            return;
        }
        let bodies = email_queue_bodies(&jobs, self.email_burst, MAX_BUNDLE_BYTES);
        let bundles = bodies
            .iter()
            .filter(|(b, _)| matches!(b, fmn_core::jobs::EmailQueueBody::Bundle(_)))
            .count();
        if bundles > 0 {
            tracing::info!(
                jobs = jobs.len(),
                messages = bodies.len(),
                bundles,
                "bursts for one address bundled into one mail each"
            );
        }
        // One call per ten messages, so a failure returns only the records it concerns.
        for chunk in bodies.chunks(fmn_aws::sqs::MAX_BATCH) {
            let queued: Vec<QueuedJob> = chunk
                .iter()
                .map(|(body, _)| QueuedJob {
                    job_id: body.id().to_string(),
                    body: body.to_json(),
                })
                .collect();
            let Err(e) = enqueue_jobs(&self.clients.sqs, &self.email_queue, &queued).await else {
                continue;
            };
            let (class, reason) = (e.class(), e.to_string());
            for (_, carried) in chunk {
                for &job in carried {
                    let record = owners[job];
                    if verdicts[record].is_ok() {
                        tracing::warn!(message_id = %records[record].message_id, error = %reason, "its e-mail jobs could not be queued; the message is retried");
                        verdicts[record] = Err(RecordError::of_class(class, reason.clone()));
                    }
                }
            }
        }
    }
}
