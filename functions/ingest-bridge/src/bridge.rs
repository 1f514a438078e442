//! The bridge: subscriber threads → validate → de-duplicate → fit to SQS → outbox (memory,
//! then disk) → `SendMessageBatch`, retried with backoff and jitter until SQS takes it.

use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use fmn_aws::retry::RetryPolicy;
use fmn_aws::sqs::{SqsError, MAX_BATCH, MAX_MESSAGE_BYTES};
use fmn_aws::{AwsClients, QueueName, TableName};

use crate::amqp::{AmqpError, AmqpSettings};
use crate::config::BridgeConfig;
use crate::dedupe::Dedupe;
use crate::journal::Journal;
use crate::metrics::{unix_ms, DropReason, Metrics};
use crate::outbox::{Outbox, Placed};
use crate::pending::{Ack, Pending, Verdict};
use crate::sender::{send_batch, Outcome};
use crate::signature::{SignatureError, Verifier};
use crate::spool::{Spool, SpoolError};
use crate::subscriber::{self, Received, SubscriberSettings};
use fmn_aws::ingest_wire::{self as encode, Encoding, Fit};

#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    #[error(transparent)]
    Sqs(#[from] SqsError),
    #[error(transparent)]
    Spool(#[from] SpoolError),
    #[error(transparent)]
    Signature(#[from] SignatureError),
    #[error(transparent)]
    Amqp(#[from] AmqpError),
    #[error("starting a subscriber thread: {0}")]
    Thread(std::io::Error),
    #[error(
        "no bus configured: set FMN_FEDMSG_ENDPOINTS (fedmsg) or FMN_AMQP_URL (fedora-messaging)"
    )]
    NoEndpoints,
}

/// Where the bridge writes.
#[derive(Clone, Debug)]
pub struct Outputs {
    pub sqs: aws_sdk_sqs::Client,
    pub queue_url: String,
    pub dynamodb: aws_sdk_dynamodb::Client,
    /// The recent-messages table, for bodies too large for SQS.
    pub recent_table: String,
}

impl Outputs {
    pub async fn from_clients(clients: &AwsClients) -> Result<Self, SqsError> {
        Ok(Self {
            sqs: clients.sqs.clone(),
            queue_url: clients.queue_url(QueueName::Ingest).await?,
            dynamodb: clients.dynamodb.clone(),
            recent_table: clients.table(TableName::RecentMessages),
        })
    }
}

/// What a run did, for logs and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub forwarded: u64,
    /// Messages left in the spool at exit (replayed at the next start).
    pub spooled_at_exit: u64,
}

/// Runs the bridge for `config.endpoints` until `shutdown`, with its health/metrics server.
pub async fn run(
    config: BridgeConfig,
    clients: &AwsClients,
    shutdown: CancellationToken,
) -> Result<Summary, BridgeError> {
    let outputs = Outputs::from_clients(clients).await?;
    let metrics = Arc::new(Metrics::new(&config.source_names()));
    if let Some(addr) = config.metrics_addr {
        if let Err(e) = crate::health::serve(addr, Arc::clone(&metrics), shutdown.clone()).await {
            tracing::warn!(%addr, error = %e, "cannot serve /healthz and /metrics (set FMN_BRIDGE_METRICS_ADDR); forwarding anyway");
        }
    }
    run_with(config, outputs, metrics, shutdown).await
}

/// Runs the bridge with explicit outputs and metrics (tests and the bench use this).
pub async fn run_with(
    config: BridgeConfig,
    outputs: Outputs,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> Result<Summary, BridgeError> {
    if !config.has_sources() {
        return Err(BridgeError::NoEndpoints);
    }
    let verifier = match (&config.validate_signatures, &config.ca_file) {
        (true, Some(ca)) => Some(Arc::new(Verifier::from_file(ca)?)),
        _ => None,
    };
    let mut spool = Spool::open(&config.spool_dir, config.spool_max_bytes)?;
    let (mut journal, recovered) = Journal::open(&config.spool_dir)?;
    if !recovered.is_empty() {
        // Received by a run that crashed: maybe in SQS already, surely not lost.
        spool.save_front(&recovered)?;
        journal.forget_recovered()?;
    }
    let outbox = Outbox::new(spool, config.buffer_messages, config.buffer_bytes);
    let (tx, rx) = mpsc::channel::<Received>(1024);
    let ctx = zmq::Context::new();
    let mut threads = Vec::new();
    for (index, endpoint) in config.endpoints.iter().enumerate() {
        let settings = SubscriberSettings {
            index,
            endpoint: endpoint.clone(),
            topics: config.topics.clone(),
            max_body_bytes: config.max_body_bytes,
            heartbeat: config.heartbeat,
            idle_reconnect: config.idle_reconnect,
            verifier: verifier.clone(),
        };
        threads.push(
            subscriber::spawn(
                ctx.clone(),
                settings,
                Arc::clone(&metrics),
                tx.clone(),
                shutdown.clone(),
            )
            .map_err(BridgeError::Thread)?,
        );
    }
    let amqp = match &config.amqp {
        Some(amqp) => Some(crate::amqp::spawn(
            AmqpSettings {
                index: config.endpoints.len(),
                config: amqp.clone(),
                max_body_bytes: config.max_body_bytes,
            },
            Arc::clone(&metrics),
            tx.clone(),
            shutdown.clone(),
        )?),
        None => None,
    };
    drop(tx);
    let (stored_tx, stored_rx) = mpsc::unbounded_channel();
    let forwarder = Forwarder {
        dedupe: Dedupe::new(config.dedupe_window, config.dedupe_capacity),
        config,
        outputs,
        metrics: Arc::clone(&metrics),
        outbox,
        unsafe_ids: HashMap::new(),
        unsynced: Vec::new(),
        sqs_failing: false,
        storing: 0,
        stored_tx,
        journal,
    };
    let summary = forwarder.run(rx, stored_rx, shutdown.clone()).await;
    // The subscribers stop on the cancelled token (the forwarder only returns after it).
    shutdown.cancel();
    let _ = tokio::task::spawn_blocking(move || {
        for t in threads {
            let _ = t.join();
        }
    })
    .await;
    if let Some(task) = amqp {
        // It sends the last acknowledgements and closes the connection.
        let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
    }
    summary
}

struct Forwarder {
    config: BridgeConfig,
    outputs: Outputs,
    metrics: Arc<Metrics>,
    dedupe: Dedupe,
    outbox: Outbox,
    /// Messages in memory or in flight, not safe yet, with the acknowledgements of their
    /// duplicates (the same message from another source or redelivered), which are due only
    /// when the original is safe: acknowledging a duplicate earlier could lose the message.
    unsafe_ids: HashMap<String, Vec<Ack>>,
    /// Acknowledgements of spooled messages, due at the next sync of the spool.
    unsynced: Vec<Ack>,
    sqs_failing: bool,
    /// Oversized bodies being stored aside: off the forwarding loop, so a slow table never
    /// backs up into the bus (ZeroMQ drops what a slow subscriber does not read).
    storing: usize,
    stored_tx: mpsc::UnboundedSender<StoredAside>,
    /// What is only in memory and no broker keeps for us (fedmsg), journalled first.
    journal: Journal,
}

/// An oversized body's store-aside, finished.
struct StoredAside {
    msg_id: String,
    topic: String,
    bytes: usize,
    received_ms: u64,
    ack: Option<Ack>,
    result: Result<fmn_aws::ingest_wire::StoredRef, fmn_aws::dynamo::DynamoError>,
}

/// SQS calls that take longer than this count as failed (and are retried).
const CALL_TIMEOUT: Duration = Duration::from_secs(15);

/// Resending after failed SQS calls: from 200 ms doubling up to 10 s, equal jitter.
const SEND_RETRY: RetryPolicy =
    RetryPolicy::forever(Duration::from_millis(200), Duration::from_secs(10));

impl Forwarder {
    async fn run(
        mut self,
        mut rx: mpsc::Receiver<Received>,
        mut stored_rx: mpsc::UnboundedReceiver<StoredAside>,
        shutdown: CancellationToken,
    ) -> Result<Summary, BridgeError> {
        let concurrency = self.config.send_concurrency;
        let mut inflight: JoinSet<(u64, Outcome)> = JoinSet::new();
        let mut batches: HashMap<u64, Arc<Vec<Pending>>> = HashMap::new();
        let mut next_batch = 0u64;
        let mut failures = 0u32;
        let mut retry_at: Option<Instant> = None;
        let mut input_open = true;
        let mut stopping: Option<Instant> = None; // the grace deadline
        let mut sync_tick = tokio::time::interval(Duration::from_secs(1));
        sync_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

        loop {
            if stopping.is_none() {
                if let Err(e) = self.outbox.refill() {
                    tracing::error!(error = %e, "reading the spool failed; retrying");
                    self.metrics.set_error(Some(e.to_string()));
                }
            }
            let now = Instant::now();
            let limit = if failures > 0 { 1 } else { concurrency };
            while inflight.len() < limit
                && retry_at.is_none_or(|t| now >= t)
                && self.outbox.ready(now, MAX_BATCH, stopping.is_some())
            {
                let batch = Arc::new(self.outbox.take_batch(MAX_BATCH, MAX_MESSAGE_BYTES));
                let id = next_batch;
                next_batch += 1;
                batches.insert(id, Arc::clone(&batch));
                let sqs = self.outputs.sqs.clone();
                let url = self.outputs.queue_url.clone();
                inflight
                    .spawn(async move { (id, send_batch(&sqs, &url, &batch, CALL_TIMEOUT).await) });
            }
            self.gauges(inflight.len());

            if let Some(deadline) = stopping {
                let flushed = !input_open
                    && inflight.is_empty()
                    && self.outbox.waiting() == 0
                    && self.storing == 0;
                let sqs_down = !input_open && inflight.is_empty() && failures > 0;
                if flushed || sqs_down || now >= deadline {
                    break;
                }
            }
            let mut wake: Option<Instant> = None;
            if inflight.len() < limit && self.outbox.waiting() > 0 {
                wake = match retry_at.filter(|t| *t > now) {
                    Some(t) => Some(t),
                    None => self.outbox.linger_deadline().filter(|t| *t > now),
                };
            }
            if let Some(deadline) = stopping {
                wake = Some(wake.map_or(deadline, |w| w.min(deadline)));
            }
            let sleep = async {
                match wake {
                    Some(t) => tokio::time::sleep_until(t.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                Some(joined) = inflight.join_next(), if !inflight.is_empty() => {
                    match joined {
                        Ok((id, outcome)) => {
                            let batch = batches.remove(&id).map(|b| Arc::try_unwrap(b).unwrap_or_else(|b| (*b).clone())).unwrap_or_default();
                            self.settle(batch, outcome, &mut failures, &mut retry_at);
                        }
                        Err(e) => tracing::error!(error = %e, "a send task failed"),
                    }
                }
                Some(stored) = stored_rx.recv(), if self.storing > 0 => {
                    self.storing -= 1;
                    self.stored_aside(stored);
                    self.sync_spool(false);
                }
                received = rx.recv(), if input_open => {
                    match received {
                        Some(r) => {
                            self.admit(r).await;
                            // Take what else is queued without going round the loop each time.
                            for _ in 0..255 {
                                match rx.try_recv() {
                                    Ok(r) => self.admit(r).await,
                                    Err(_) => break,
                                }
                            }
                            self.sync_spool(false);
                        }
                        None => input_open = false,
                    }
                }
                _ = shutdown.cancelled(), if stopping.is_none() => {
                    tracing::info!(grace = ?self.config.shutdown_grace, buffered = self.outbox.buffered(), "shutting down: flushing the buffer to SQS");
                    stopping = Some(Instant::now() + self.config.shutdown_grace);
                }
                _ = sync_tick.tick() => self.sync_spool(true),
                _ = sleep => {}
            }
        }

        // Whatever is still in flight may or may not have reached SQS: keep it (a possible
        // repeat is better than a loss).
        if !inflight.is_empty() {
            tracing::warn!(
                batches = inflight.len(),
                "SQS calls still unanswered at the end of the grace period; keeping their messages"
            );
            inflight.abort_all();
            while inflight.join_next().await.is_some() {}
            let mut ids: Vec<u64> = batches.keys().copied().collect();
            ids.sort_unstable();
            for id in ids.into_iter().rev() {
                if let Some(b) = batches.remove(&id) {
                    self.outbox
                        .requeue(Arc::try_unwrap(b).unwrap_or_else(|b| (*b).clone()));
                }
            }
        }
        let saved = self.outbox.save()?;
        // Everything the journal covered is in SQS or in the (synced) spool now.
        self.journal.clear()?;
        // Everything that was in memory is on disk now: every acknowledgement is due.
        self.sync_spool(true);
        for (msg_id, ack) in saved.acks {
            ack.settle(Verdict::Ack);
            self.resolve(&msg_id, Verdict::Ack);
        }
        for (_, waiting) in self.unsafe_ids.drain() {
            waiting.into_iter().for_each(|a| a.settle(Verdict::Ack));
        }
        let saved = saved.messages;
        let spooled_at_exit = self.outbox.spool().messages();
        self.gauges(0);
        tracing::info!(
            forwarded = self.metrics.forwarded.load(Relaxed),
            saved_now = saved,
            spooled_at_exit,
            "bridge stopped{}",
            if spooled_at_exit > 0 {
                "; the spool is replayed at the next start"
            } else {
                ""
            }
        );
        Ok(Summary {
            forwarded: self.metrics.forwarded.load(Relaxed),
            spooled_at_exit,
        })
    }

    fn gauges(&self, inflight_batches: usize) {
        let m = &self.metrics;
        m.buffered.store(self.outbox.buffered() as u64, Relaxed);
        m.in_flight.store(inflight_batches as u64, Relaxed);
        m.spool_messages
            .store(self.outbox.spool().messages(), Relaxed);
        m.spool_bytes.store(self.outbox.spool().bytes(), Relaxed);
        m.journal_messages
            .store(self.journal.outstanding() as u64, Relaxed);
    }

    /// Syncs (or just writes) the spool; after a sync, the acknowledgements of what it holds
    /// are due.
    fn sync_spool(&mut self, sync: bool) {
        // Group commit: what arrived in this burst is on disk before the next is read.
        if let Err(e) = self.journal.flush(true) {
            tracing::error!(error = %e, "writing the journal failed; retrying");
        }
        let sync = sync || !self.unsynced.is_empty();
        match self.outbox.flush_spool(sync) {
            Ok(()) if sync => {
                for ack in self.unsynced.drain(..) {
                    ack.settle(Verdict::Ack);
                }
            }
            Ok(()) => {}
            Err(e) => tracing::error!(error = %e, "writing the spool failed; retrying"),
        }
    }

    /// A message is safe (or given up): its duplicates' acknowledgements get the same verdict.
    fn resolve(&mut self, msg_id: &str, verdict: Verdict) {
        if let Some(waiting) = self.unsafe_ids.remove(msg_id) {
            waiting.into_iter().for_each(|a| a.settle(verdict));
        }
    }

    /// Settles a message that left the outbox, and its duplicates.
    fn finish(&mut self, p: &mut Pending, verdict: Verdict) {
        if let Some(ack) = p.ack.take() {
            ack.settle(verdict);
        }
        self.resolve(&p.msg_id, verdict);
        self.unjournal(&p.msg_id);
    }

    fn unjournal(&mut self, msg_id: &str) {
        if let Err(e) = self.journal.release(msg_id) {
            tracing::warn!(msg_id, error = %e, "removing a journal segment failed; a restart may repeat its messages");
        }
    }

    /// A message that could not be kept: a broker delivers it again (after a pause, so a
    /// failing dependency is not hammered); fedmsg cannot, so it is dropped with its reason.
    fn give_back(&mut self, msg_id: &str, ack: Option<Ack>) {
        self.dedupe.forget(msg_id);
        self.resolve(msg_id, Verdict::Retry);
        if let Some(ack) = ack {
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(5)).await;
                ack.settle(Verdict::Retry);
            });
        }
    }

    /// De-duplicates, fits to SQS and queues one valid message.
    async fn admit(&mut self, r: Received) {
        let m = &self.metrics;
        let v = r.valid;
        if !self.dedupe.first_time(&v.msg_id, Instant::now()) {
            m.duplicates.fetch_add(1, Relaxed);
            tracing::debug!(
                msg_id = v.msg_id,
                endpoint = r.endpoint,
                "duplicate within the window; already forwarded"
            );
            if let Some(ack) = r.ack {
                match self.unsafe_ids.get_mut(&v.msg_id) {
                    Some(waiting) => waiting.push(ack),
                    None => ack.settle(Verdict::Ack),
                }
            }
            return;
        }
        let ack = r.ack;
        let (body, encoding) = match encode::fit(&v.msg_id, &v.body, MAX_MESSAGE_BYTES) {
            Fit::Plain => (v.body, Encoding::Plain),
            Fit::Compressed(b) => {
                m.compressed.fetch_add(1, Relaxed);
                tracing::info!(
                    msg_id = v.msg_id,
                    bytes = v.body.len(),
                    compressed = b.len(),
                    "body over the SQS limit: sending it compressed"
                );
                (b, Encoding::GzipBase64)
            }
            Fit::Store(gz) => {
                self.storing += 1;
                let client = self.outputs.dynamodb.clone();
                let table = self.outputs.recent_table.clone();
                let tx = self.stored_tx.clone();
                tokio::spawn(async move {
                    let result = fmn_aws::recent::store_ingest_body(
                        &client, &table, &v.msg_id, &v.topic, gz,
                    )
                    .await;
                    let _ = tx.send(StoredAside {
                        msg_id: v.msg_id,
                        topic: v.topic,
                        bytes: v.body.len(),
                        received_ms: r.received_ms,
                        ack,
                        result,
                    });
                });
                return;
            }
            Fit::TooLarge(gz) => {
                m.dropped(DropReason::TooLarge);
                tracing::error!(
                    msg_id = v.msg_id,
                    topic = v.topic,
                    bytes = v.body.len(),
                    compressed = gz,
                    reason = DropReason::TooLarge.label(),
                    "dropping a message: too large for SQS and for the table even compressed"
                );
                if let Some(ack) = ack {
                    ack.settle(Verdict::Refuse);
                }
                return;
            }
        };
        self.enqueue(Pending {
            msg_id: v.msg_id,
            body,
            encoding,
            received_ms: r.received_ms,
            from_spool: false,
            alone: false,
            ack,
        });
    }

    /// A stored-aside body: its reference goes to SQS like any message; a failure is given
    /// back to the broker, or dropped with its reason (fedmsg).
    fn stored_aside(&mut self, s: StoredAside) {
        match s.result {
            Ok(reference) => {
                self.metrics.stored.fetch_add(1, Relaxed);
                tracing::info!(
                    msg_id = s.msg_id,
                    bytes = s.bytes,
                    table = reference.fmn_stored_body.table,
                    "body too large for SQS even compressed: stored, sending a reference"
                );
                self.enqueue(Pending {
                    msg_id: s.msg_id,
                    body: serde_json::to_string(&reference).expect("a reference serialises"),
                    encoding: Encoding::Stored,
                    received_ms: s.received_ms,
                    from_spool: false,
                    alone: false,
                    ack: s.ack,
                });
            }
            Err(e) if s.ack.is_some() => {
                tracing::warn!(
                    msg_id = s.msg_id,
                    topic = s.topic,
                    error = %e,
                    "storing an oversized body failed; the broker delivers it again"
                );
                self.give_back(&s.msg_id, s.ack);
            }
            Err(e) => {
                // Another endpoint's copy of it may still get through.
                self.dedupe.forget(&s.msg_id);
                self.metrics.dropped(DropReason::StoreFailed);
                tracing::error!(
                    msg_id = s.msg_id,
                    topic = s.topic,
                    reason = DropReason::StoreFailed.label(),
                    error = %e,
                    "dropping a message: storing its oversized body failed"
                );
            }
        }
    }

    /// Queues a message in the outbox (memory, or the spool).
    fn enqueue(&mut self, pending: Pending) {
        let to_spool = pending.ack.is_some() && self.sqs_failing;
        let msg_id = pending.msg_id.clone();
        if pending.ack.is_none() {
            if let Err(e) = self.journal.append(&pending) {
                tracing::error!(msg_id, error = %e, "writing the journal failed; the message is kept in memory only");
            }
        }
        match self
            .outbox
            .push(pending, Instant::now(), self.config.batch_linger, to_spool)
        {
            Ok(Placed::Memory) => {
                self.unsafe_ids.insert(msg_id, Vec::new());
            }
            Ok(Placed::Spool(ack)) => {
                self.metrics.spooled.fetch_add(1, Relaxed);
                self.unsynced.extend(ack);
                self.unjournal(&msg_id);
            }
            Err(failed) if failed.0.ack.is_some() => {
                let (p, e) = *failed;
                tracing::warn!(msg_id = p.msg_id, error = %e, "the buffer is full and the spool cannot take the message; the broker delivers it again");
                self.give_back(&p.msg_id, p.ack);
            }
            Err(failed) => {
                let (p, e) = *failed;
                self.dedupe.forget(&p.msg_id);
                self.unjournal(&p.msg_id);
                let reason = if matches!(e, SpoolError::Full(_)) {
                    DropReason::SpoolFull
                } else {
                    DropReason::SpoolError
                };
                self.metrics.dropped(reason);
                tracing::error!(msg_id = p.msg_id, reason = reason.label(), error = %e, "dropping a message: the buffer is full and the spool cannot take it");
            }
        }
    }

    /// Applies what SQS did with one batch.
    fn settle(
        &mut self,
        batch: Vec<Pending>,
        outcome: Outcome,
        failures: &mut u32,
        retry_at: &mut Option<Instant>,
    ) {
        let m = Arc::clone(&self.metrics);
        match outcome {
            Outcome::BatchRefused { error, elapsed } if batch.len() > 1 => {
                m.send_latency.observe(elapsed);
                tracing::warn!(
                    messages = batch.len(),
                    error,
                    "SQS refused a batch as a whole; sending its messages one by one"
                );
                let alone = batch
                    .into_iter()
                    .map(|mut p| {
                        p.alone = true;
                        p
                    })
                    .collect();
                self.outbox.requeue(alone);
            }
            Outcome::BatchRefused { error, elapsed } => {
                m.send_latency.observe(elapsed);
                for mut p in batch {
                    m.dropped(DropReason::Rejected);
                    tracing::error!(
                        msg_id = p.msg_id,
                        error,
                        drop_reason = DropReason::Rejected.label(),
                        "dropping a message SQS refuses even alone"
                    );
                    self.finish(&mut p, Verdict::Refuse);
                    if let Err(e) = self.outbox.done(std::slice::from_ref(&p)) {
                        tracing::error!(error = %e, "removing a replayed spool segment failed; it may be replayed again");
                    }
                }
            }
            Outcome::CallFailed { error, elapsed } => {
                m.send_latency.observe(elapsed);
                m.sqs_errors.fetch_add(1, Relaxed);
                *failures += 1;
                let delay = SEND_RETRY.equal_jitter(*failures);
                *retry_at = Some(Instant::now() + delay);
                m.sqs_failing.store(true, Relaxed);
                if *failures == 1 || (*failures).is_power_of_two() {
                    tracing::warn!(failures = *failures, retry_in = ?delay, buffered = self.outbox.buffered(), error, "SendMessageBatch failed; keeping the messages and retrying");
                }
                m.set_error(Some(error));
                self.outbox.requeue(batch);
                self.sqs_failing = true;
                // A broker need not hold what waits for SQS: spool it, acknowledge after sync.
                match self.outbox.spill() {
                    Ok(spilled) => {
                        self.metrics
                            .spooled
                            .fetch_add(spilled.len() as u64, Relaxed);
                        for (msg_id, ack) in spilled {
                            self.unsynced.push(ack);
                            if let Some(waiting) = self.unsafe_ids.remove(&msg_id) {
                                self.unsynced.extend(waiting);
                            }
                        }
                        self.sync_spool(true);
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "spooling what waits for SQS failed; the broker keeps it")
                    }
                }
            }
            Outcome::Done {
                accepted,
                retry,
                refused,
                elapsed,
            } => {
                m.send_latency.observe(elapsed);
                if *failures > 0 {
                    tracing::info!(
                        after_failures = *failures,
                        "SQS takes messages again; replaying what was kept"
                    );
                }
                *failures = 0;
                self.sqs_failing = false;
                m.sqs_failing.store(false, Relaxed);
                m.set_error(None);
                let mut slots: Vec<Option<Pending>> = batch.into_iter().map(Some).collect();
                let now_ms = unix_ms(SystemTime::now());
                let mut done = Vec::new();
                for i in accepted {
                    if let Some(mut p) = slots.get_mut(i).and_then(Option::take) {
                        m.forward_latency
                            .observe(Duration::from_millis(now_ms.saturating_sub(p.received_ms)));
                        self.finish(&mut p, Verdict::Ack);
                        done.push(p);
                    }
                }
                m.forwarded.fetch_add(done.len() as u64, Relaxed);
                let mut again = Vec::new();
                for (i, reason) in refused {
                    let Some(mut p) = slots.get_mut(i).and_then(Option::take) else {
                        continue;
                    };
                    if p.encoding == Encoding::Plain {
                        // SQS refuses some characters; the compressed form is plain ASCII.
                        tracing::warn!(
                            msg_id = p.msg_id,
                            reason,
                            "SQS refused the body; sending it compressed"
                        );
                        let mut q = p.clone();
                        q.body = encode::compress(&p.body);
                        q.encoding = Encoding::GzipBase64;
                        q.from_spool = false;
                        q.ack = p.ack.take();
                        done.push(p);
                        // Compressed, it is checked against the limit again.
                        if q.size() > MAX_MESSAGE_BYTES {
                            m.dropped(DropReason::TooLarge);
                            tracing::error!(
                                msg_id = q.msg_id,
                                bytes = q.size(),
                                reason = DropReason::TooLarge.label(),
                                "dropping a message SQS refused: compressed it is over the SQS limit"
                            );
                            self.finish(&mut q, Verdict::Refuse);
                        } else {
                            again.push(q);
                        }
                    } else {
                        m.dropped(DropReason::Rejected);
                        tracing::error!(
                            msg_id = p.msg_id,
                            reason,
                            drop_reason = DropReason::Rejected.label(),
                            "dropping a message SQS refused"
                        );
                        self.finish(&mut p, Verdict::Refuse);
                        done.push(p);
                    }
                }
                let retry: Vec<Pending> = retry
                    .into_iter()
                    .filter_map(|i| slots.get_mut(i).and_then(Option::take))
                    .collect();
                if !retry.is_empty() {
                    m.sqs_errors.fetch_add(1, Relaxed);
                    tracing::warn!(
                        count = retry.len(),
                        "SQS failed some entries; retrying them"
                    );
                    *retry_at = Some(Instant::now() + SEND_RETRY.equal_jitter(1));
                    self.outbox.requeue(retry);
                }
                if let Err(e) = self.outbox.done(&done) {
                    tracing::error!(error = %e, "removing a replayed spool segment failed; it may be replayed again");
                }
                for q in again {
                    self.outbox.push_front(q);
                }
            }
        }
    }
}
