//! The digest function, run on the schedule: sends each digest destination whose pending items
//! are due one mail listing them, once.
//!
//! A run queries the `pending` partition of the digest table (never a scan) and, for each
//! destination that `fmn_core::digest::due` says is due:
//!
//! 1. cuts a batch: its items' sort keys and an id derived from them, recorded on the
//!    destination's pending marker (conditionally, so two overlapping runs cut one batch);
//! 2. claims the delivery record `digest#<batch id>` (`fmn_aws::delivery_records`), renders
//!    the digest and sends it through SES v2, marks the record `sent`;
//! 3. only then deletes the batch's items and takes them off the marker (deleting it when
//!    nothing else arrived meanwhile).
//!
//! A run that died anywhere leaves the batch on the marker; the next run finishes that same
//! batch (the record tells whether the mail went out), so a digest is neither lost nor sent
//! twice (except the one-duplicate window of a crash between SES accepting and the record
//! being marked, see `fmn_aws::delivery_records`). Items that arrive while a batch is out wait
//! for the next digest.
//!
//! Before sending, the destination is read again from the preferences ([`current_jobs`]): items
//! carry the destination as it was when they matched, so a digest goes out only to a
//! destination that still exists, is confirmed, belongs to an enabled account and has the
//! items' address; otherwise its items are dropped (counted as rejected, and logged).
//!
//! Notifications held for an immediate destination (quiet hours, a throttled filter; see
//! `fmn_match`) wait here too, released at their marker's `hold_until`: an e-mail
//! destination gets them as one digest; an IRC destination gets its held lines, in order,
//! through the IRC queue (a line is what the user asked for there; deliver-irc's records
//! drop a line queued twice).

use fmn_aws::delivery_records::{Channel, Delivered, DeliveryRecords, RecordInfo};
use fmn_aws::digest_store::{Batch, DigestStore, PendingMarker};
use fmn_aws::job_queue::{enqueue_jobs, QueuedJob};
use fmn_aws::mail::{MailSettings, Mailer};
use fmn_aws::prefs_store::PrefsStore;
use fmn_aws::ses::SesError;
use fmn_aws::{AwsClients, FunctionName, QueueName};
use fmn_core::digest::{digest_id, due, MAX_DIGEST_ITEMS};
use fmn_core::jobs::DeliveryJob;
use fmn_core::matrix::PreparedMessage;
use fmn_core::prefs::{DestinationKind, UserPrefs};
use futures::StreamExt;
use serde::Serialize;
use std::sync::atomic::{AtomicBool, Ordering};

pub const FUNCTION: FunctionName = FunctionName::Digest;

/// Destinations handled at the same time within one run.
const CONCURRENCY: usize = 4;

/// What one scheduled run did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DigestReport {
    /// Destinations with pending items.
    pub pending: usize,
    /// Destinations that were due (or had an unfinished batch).
    pub destinations_due: usize,
    pub mails_sent: usize,
    /// Items in the mails sent.
    pub items_sent: usize,
    /// Batches found already sent by an earlier run and only cleaned up.
    pub already_sent: usize,
    /// Batches refused for good (items dropped, reason in the record and the log).
    pub rejected: usize,
    /// Destinations left for the next run (SES or DynamoDB unavailable, another run busy).
    pub deferred: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum DigestError {
    #[error("reading pending digest items failed: {0}")]
    Store(String),
}

enum Outcome {
    NotDue,
    Sent(usize),
    AlreadySent,
    Rejected,
    Deferred,
}

pub struct DigestHandler {
    clients: AwsClients,
    /// The IRC queue, asked of SQS on first use (held IRC lines are rare).
    irc_queue: tokio::sync::OnceCell<String>,
    /// The Matrix queue, likewise.
    matrix_queue: tokio::sync::OnceCell<String>,
    store: DigestStore,
    prefs: PrefsStore,
    records: DeliveryRecords,
    mailer: Mailer,
    settings: MailSettings,
    /// Set in a run when SES refuses all mail, so that run tries no more destinations.
    halted: AtomicBool,
}

impl DigestHandler {
    pub fn with_settings(clients: &AwsClients, settings: MailSettings) -> Self {
        let clients = &clients.scoped(FUNCTION);
        Self {
            clients: clients.clone(),
            irc_queue: tokio::sync::OnceCell::new(),
            matrix_queue: tokio::sync::OnceCell::new(),
            store: DigestStore::from_clients(clients),
            prefs: PrefsStore::from_clients(clients),
            records: DeliveryRecords::from_clients(clients, settings.lease),
            mailer: Mailer::new(clients.sesv2.clone(), &settings),
            settings,
            halted: AtomicBool::new(false),
        }
    }

    /// One scheduled run, now.
    pub async fn run(&self) -> Result<DigestReport, DigestError> {
        self.run_at(fmn_aws::dynamo::now_secs()).await
    }

    /// One run that judges due-ness as at `now` (epoch seconds).
    pub async fn run_at(&self, now: u64) -> Result<DigestReport, DigestError> {
        self.halted.store(false, Ordering::SeqCst);
        let markers = self
            .store
            .pending()
            .await
            .map_err(|e| DigestError::Store(e.to_string()))?;
        let mut report = DigestReport {
            pending: markers.len(),
            ..DigestReport::default()
        };
        let outcomes: Vec<Outcome> = futures::stream::iter(markers)
            .map(|m| self.destination(m, now))
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        for outcome in outcomes {
            if !matches!(outcome, Outcome::NotDue) {
                report.destinations_due += 1;
            }
            match outcome {
                Outcome::NotDue => {}
                Outcome::Sent(items) => {
                    report.mails_sent += 1;
                    report.items_sent += items;
                }
                Outcome::AlreadySent => report.already_sent += 1,
                Outcome::Rejected => report.rejected += 1,
                Outcome::Deferred => report.deferred += 1,
            }
        }
        if report.destinations_due > 0 {
            tracing::info!(?report, "digest run finished");
        } else {
            tracing::debug!(?report, "digest run finished");
        }
        Ok(report)
    }

    async fn destination(&self, marker: PendingMarker, now: u64) -> Outcome {
        if self.halted.load(Ordering::SeqCst) {
            return Outcome::Deferred;
        }
        let key = marker.key.clone();
        match self.try_destination(marker, now).await {
            Ok(outcome) => outcome,
            Err(e) => {
                tracing::warn!(digest = %key, error = %e, "digest deferred to the next run");
                Outcome::Deferred
            }
        }
    }

    async fn try_destination(
        &self,
        marker: PendingMarker,
        now: u64,
    ) -> Result<Outcome, fmn_aws::dynamo::DynamoError> {
        let key = marker.key.as_str();
        let items = match &marker.batch {
            // An earlier run cut this batch and did not finish it: finish it, whatever the
            // policy says now.
            Some(batch) => {
                tracing::info!(digest = key, batch = %batch.id, "finishing a batch an earlier run left");
                self.store.items(key).await?
            }
            None => {
                let Some(why) = due(&marker.pending, now) else {
                    return Ok(Outcome::NotDue);
                };
                let items = self.store.items(key).await?;
                if items.is_empty() {
                    // A marker whose items are gone: nothing to send.
                    self.store
                        .remove_empty_marker(key, marker.pending.count)
                        .await?;
                    return Ok(Outcome::NotDue);
                }
                tracing::info!(
                    digest = key,
                    reason = why.as_str(),
                    items = items.len(),
                    "digest due"
                );
                items
            }
        };
        let batch = match marker.batch.clone() {
            Some(batch) => batch,
            None => {
                let complete = items.len() <= MAX_DIGEST_ITEMS;
                let sks: Vec<String> = items
                    .iter()
                    .take(MAX_DIGEST_ITEMS)
                    .map(|i| i.sk.clone())
                    .collect();
                let batch = Batch {
                    id: digest_id(sks.iter().map(String::as_str)),
                    sks,
                    at: now,
                    complete,
                };
                if !self.store.start_batch(key, &batch).await? {
                    // Another run cut a batch first; the next run sees it.
                    return Ok(Outcome::Deferred);
                }
                batch
            }
        };
        let mut jobs: Vec<DeliveryJob> = Vec::new();
        for item in items.into_iter().filter(|i| batch.sks.contains(&i.sk)) {
            match item.job {
                Ok(job) => jobs.push(job),
                Err(reason) => {
                    tracing::error!(digest = key, item = %item.sk, %reason, "unreadable digest item dropped")
                }
            }
        }
        if jobs.is_empty() {
            self.store.finish_batch(key, &batch).await?;
            return Ok(Outcome::Rejected);
        }
        let prefs = match self.prefs.get(&marker.user).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(digest = key, error = %e, "reading the preferences failed; digest left for the next run");
                return Ok(Outcome::Deferred);
            }
        };
        let jobs = match current_jobs(prefs.as_ref(), &marker.destination, jobs) {
            Ok(jobs) => jobs,
            Err(why) => {
                tracing::warn!(digest = key, batch = %batch.id, user = %marker.user, destination = %marker.destination, reason = %why, "digest not sent; its items are dropped");
                self.store.finish_batch(key, &batch).await?;
                return Ok(Outcome::Rejected);
            }
        };
        match jobs[0].destination.kind {
            DestinationKind::Irc => return self.release_irc(key, &batch, &jobs).await,
            DestinationKind::Matrix => return self.release_matrix(key, &batch, &jobs).await,
            DestinationKind::Email => {}
        }
        let address = jobs[0].destination.address.clone();
        let what = format!("a digest of {} notifications", jobs.len());
        let info = RecordInfo {
            user: &marker.user,
            destination: &marker.destination,
            address: &address,
            what: &what,
        };
        let record_key = Channel::Digest.key(&batch.id);
        let send = || async {
            let now = fmn_aws::dynamo::now_secs() as i64;
            match fmn_core::render::digest::render(&jobs, &batch.id, &self.settings.context, now) {
                Ok(mail) => {
                    self.mailer
                        .send_recorded(&mail.to, &mail.raw, &[&record_key])
                        .await
                }
                Err(e) => Err(SesError::Rejected(format!("cannot be sent as mail: {e}"))),
            }
        };
        let delivered = self.records.deliver_once(&record_key, &info, send).await?;
        match delivered {
            Delivered::Sent { message_id, .. } => {
                tracing::info!(digest = key, batch = %batch.id, items = jobs.len(), ses_message_id = %message_id, "digest sent");
                self.store.finish_batch(key, &batch).await?;
                Ok(Outcome::Sent(jobs.len()))
            }
            Delivered::AlreadySent { message_id } => {
                tracing::info!(digest = key, batch = %batch.id, ?message_id, "digest was sent by an earlier run; cleaning up");
                self.store.finish_batch(key, &batch).await?;
                Ok(Outcome::AlreadySent)
            }
            Delivered::AlreadyRejected { reason } => {
                tracing::warn!(digest = key, batch = %batch.id, %reason, "digest was rejected by an earlier run; dropping its items");
                self.store.finish_batch(key, &batch).await?;
                Ok(Outcome::Rejected)
            }
            Delivered::InFlight { since_ms } => {
                tracing::info!(digest = key, batch = %batch.id, since_ms, "digest is being sent by another run");
                Ok(Outcome::Deferred)
            }
            Delivered::Rejected { reason, unrecorded } => {
                // Unrecorded, the batch stays for the next run rather than losing its record.
                if let Some(e) = unrecorded {
                    return Err(e);
                }
                tracing::error!(digest = key, batch = %batch.id, user = %marker.user, destination = %marker.destination, %address, items = jobs.len(), %reason, "digest rejected; its items are dropped");
                self.store.finish_batch(key, &batch).await?;
                Ok(Outcome::Rejected)
            }
            Delivered::Unavailable { reason } => {
                tracing::warn!(digest = key, batch = %batch.id, %reason, "SES unavailable; digest left for the next run");
                Ok(Outcome::Deferred)
            }
            Delivered::ServiceWide { reason } => {
                // The items stay; the rest of the run is skipped (logged once, by `run_at`).
                if !self.halted.swap(true, Ordering::SeqCst) {
                    tracing::error!(digest = key, batch = %batch.id, %reason, "SES is not sending any mail; digests left for the next run");
                }
                Ok(Outcome::Deferred)
            }
        }
    }
}

impl DigestHandler {
    /// Held IRC lines, queued for deliver-irc in the order they matched; then the batch is done.
    async fn release_irc(
        &self,
        key: &str,
        batch: &Batch,
        jobs: &[DeliveryJob],
    ) -> Result<Outcome, fmn_aws::dynamo::DynamoError> {
        let queued: Vec<QueuedJob> = jobs
            .iter()
            .map(|j| QueuedJob {
                job_id: j.job_id.clone(),
                body: serde_json::to_string(j).expect("jobs serialise"),
            })
            .collect();
        let sent = async {
            let url = self
                .irc_queue
                .get_or_try_init(|| self.clients.queue_url(QueueName::Irc))
                .await?;
            enqueue_jobs(&self.clients.sqs, url, &queued).await
        };
        if let Err(e) = sent.await {
            tracing::warn!(digest = key, batch = %batch.id, error = %e, "queueing held IRC lines failed; left for the next run");
            return Ok(Outcome::Deferred);
        }
        tracing::info!(digest = key, batch = %batch.id, lines = jobs.len(), "held IRC lines released");
        self.store.finish_batch(key, batch).await?;
        Ok(Outcome::Sent(jobs.len()))
    }

    /// A Matrix digest: one message (`fmn_core::matrix::digest`, grouped by service) queued
    /// for deliver-matrix as job `digest-<batch id>` (its record and transaction id: a batch
    /// queued twice is sent once); a single item goes as its ordinary message. Then the batch
    /// is done.
    async fn release_matrix(
        &self,
        key: &str,
        batch: &Batch,
        jobs: &[DeliveryJob],
    ) -> Result<Outcome, fmn_aws::dynamo::DynamoError> {
        let queued = match jobs {
            [one] => QueuedJob {
                job_id: one.job_id.clone(),
                body: serde_json::to_string(one).expect("jobs serialise"),
            },
            _ => {
                let first = &jobs[0];
                let message = PreparedMessage {
                    job_id: format!("digest-{}", batch.id),
                    user: first.user.clone(),
                    destination: first.destination.id.clone(),
                    user_id: first.destination.address.clone(),
                    text: fmn_core::matrix::digest(jobs, &self.settings.context.preferences_url()),
                };
                QueuedJob {
                    job_id: message.job_id.clone(),
                    body: message.to_json(),
                }
            }
        };
        let sent = async {
            let url = self
                .matrix_queue
                .get_or_try_init(|| self.clients.queue_url(QueueName::Matrix))
                .await?;
            enqueue_jobs(&self.clients.sqs, url, std::slice::from_ref(&queued)).await
        };
        if let Err(e) = sent.await {
            tracing::warn!(digest = key, batch = %batch.id, error = %e, "queueing the Matrix digest failed; left for the next run");
            return Ok(Outcome::Deferred);
        }
        tracing::info!(digest = key, batch = %batch.id, items = jobs.len(), job_id = %queued.job_id, "Matrix digest queued");
        self.store.finish_batch(key, batch).await?;
        Ok(Outcome::Sent(jobs.len()))
    }
}

/// The jobs of a digest that may still go out to `destination` of the account `prefs`, each
/// carrying the destination as it is now; or why none may: the account is gone or disabled,
/// the destination removed or unconfirmed (unsubscribed), or its address is no longer the
/// items' (jobs for another address are left out). An IRC destination's items are lines held
/// through quiet hours or a throttled hour.
pub fn current_jobs(
    prefs: Option<&UserPrefs>,
    destination: &str,
    jobs: Vec<DeliveryJob>,
) -> Result<Vec<DeliveryJob>, &'static str> {
    let prefs = prefs.ok_or("the account no longer exists")?;
    if !prefs.enabled {
        return Err("the account is disabled");
    }
    let current = prefs
        .destination(destination)
        .ok_or("the destination was removed")?;
    if !current.confirmed {
        return Err("the destination is not confirmed (unsubscribed, or awaiting confirmation)");
    }
    // Bounced, complained or failing (fmn_core::health): nothing more goes there.
    if current.health.is_stopped() {
        return Err("delivery to the destination is stopped (bounces, a complaint or failures)");
    }
    let kept: Vec<DeliveryJob> = jobs
        .into_iter()
        .filter(|j| {
            j.destination.kind == current.kind
                && j.destination.address.eq_ignore_ascii_case(&current.address)
        })
        .map(|mut j| {
            j.destination = current.clone();
            j
        })
        .collect();
    if kept.is_empty() {
        return Err("the destination's address changed since the items were added");
    }
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use super::*;
    use fmn_core::jobs::Notification;
    use fmn_core::prefs::{Delivery, Destination};

    fn job(address: &str) -> DeliveryJob {
        let destination = Destination::email("email-1", address)
            .confirmed(true)
            .with_delivery(Delivery::Digest {
                batch_delta: Some(3600),
                batch_count: None,
                schedule: None,
            });
        let notification: Notification = serde_json::from_value(serde_json::json!({
            "msg_id": "m1", "topic": "t", "app": "bodhi", "title": "t"
        }))
        .expect("a minimal notification");
        DeliveryJob {
            job_id: "j".into(),
            user: "alice".into(),
            filter_id: "filter-1".into(),
            filter_name: "f".into(),
            reason: "r".into(),
            reason_code: String::new(),
            destination,
            notification,
        }
    }

    fn prefs(address: &str, confirmed: bool) -> UserPrefs {
        let mut p = UserPrefs::new("alice");
        p.destinations
            .push(Destination::email("email-1", address).confirmed(confirmed));
        p
    }

    #[test]
    fn a_digest_goes_only_to_the_destination_as_it_is_now() {
        let items = || vec![job("old@example.org"), job("new@example.org")];
        // Same id, another address now: only that address's items, to it.
        let kept = current_jobs(Some(&prefs("NEW@example.org", true)), "email-1", items()).unwrap();
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].destination.address, "NEW@example.org");
        assert!(current_jobs(Some(&prefs("other@example.org", true)), "email-1", items()).is_err());
        // Removed, unsubscribed, disabled, gone.
        assert!(current_jobs(Some(&prefs("new@example.org", true)), "email-2", items()).is_err());
        assert!(current_jobs(Some(&prefs("new@example.org", false)), "email-1", items()).is_err());
        let mut disabled = prefs("new@example.org", true);
        disabled.enabled = false;
        assert!(current_jobs(Some(&disabled), "email-1", items()).is_err());
        assert!(current_jobs(None, "email-1", items()).is_err());
        // Stopped by a bounce after the items were added.
        let mut bounced = prefs("new@example.org", true);
        bounced.destinations[0].health.record(
            &fmn_core::health::Outcome::HardBounce("550".into()),
            1,
            &Default::default(),
        );
        assert_eq!(
            current_jobs(Some(&bounced), "email-1", items()).unwrap_err(),
            "delivery to the destination is stopped (bounces, a complaint or failures)"
        );
    }
}
