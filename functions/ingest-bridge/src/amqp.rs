//! The fedora-messaging source: one AMQP 0-9-1 consumer on a durable queue bound to the
//! broker's topic exchange, feeding the same forwarding task as the ZeroMQ subscribers.
//!
//! Nothing is lost: the queue is durable, non-exclusive and not auto-deleted (or the broker's
//! own, used passively), deliveries are acknowledged by hand and only once the forwarding task
//! says the message is safe (accepted by SQS, or synced to the disk spool). Until then the
//! broker keeps it, so a crash at any moment means a redelivery, which the forwarder's
//! de-duplication (by `message_id`) drops. A lost connection is re-established with backoff,
//! re-declaring what was declared; deliveries of the lost connection are the broker's again.
//! Only what can never succeed is refused (nack without requeue, counted and logged with the
//! id): bodies that are not JSON objects, topics that are not topics, messages too large.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions,
    QueueBindOptions, QueueDeclareOptions,
};
use lapin::tcp::{OwnedIdentity, OwnedTLSConfig};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection, ConnectionProperties};
use serde_json::{Map, Number, Value};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use fmn_aws::retry::RetryPolicy;
use fmn_core::message::{Envelope, EnvelopeError};

use crate::config::AmqpConfig;
use crate::metrics::{unix_ms, Metrics};
use crate::pending::{Ack, DeliveryRef, Settle, Verdict};
use crate::subscriber::Received;
use crate::validate::{Invalid, InvalidReason, Valid};

#[derive(Debug, thiserror::Error)]
pub enum AmqpError {
    #[error("{var} {path}: {source}")]
    File {
        var: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error("broker {source_name}: {error}")]
    Broker {
        source_name: String,
        error: lapin::Error,
    },
}

/// What the consumer task needs.
#[derive(Clone)]
pub struct AmqpSettings {
    /// Index of this source in the metrics' source list.
    pub index: usize,
    pub config: AmqpConfig,
    pub max_body_bytes: usize,
}

/// The TLS settings for the connection: the CA bundle (every certificate in it is trusted)
/// and the client identity, read once at start so a bad path is an error naming its variable.
pub fn tls_config(config: &AmqpConfig) -> Result<OwnedTLSConfig, AmqpError> {
    let read = |var: &'static str, path: &std::path::Path| {
        std::fs::read(path).map_err(|source| AmqpError::File {
            var,
            path: path.display().to_string(),
            source,
        })
    };
    let cert_chain = match &config.ca_file {
        Some(path) => Some(String::from_utf8_lossy(&read("FMN_AMQP_CA", path)?).into_owned()),
        None => None,
    };
    let identity = match &config.client_cert {
        Some((cert, key)) => Some(OwnedIdentity::PKCS8 {
            pem: read("FMN_AMQP_CERT", cert)?,
            key: read("FMN_AMQP_KEY", key)?,
        }),
        None => None,
    };
    Ok(OwnedTLSConfig {
        identity,
        cert_chain,
    })
}

/// The URL lapin connects to: with a client certificate and no mechanism named, SASL
/// EXTERNAL (the broker takes the user from the certificate, as Fedora's does).
pub fn connect_url(config: &AmqpConfig) -> String {
    if config.client_cert.is_none() || config.url.contains("auth_mechanism=") {
        return config.url.clone();
    }
    let sep = if config.url.contains('?') { '&' } else { '?' };
    format!("{}{sep}auth_mechanism=external", config.url)
}

/// Starts the consumer task. It runs until `shutdown`, then stops consuming and keeps
/// settling what the forwarder reports until every delivery it handed over is settled (or
/// the forwarder is gone), and closes the connection.
pub fn spawn(
    settings: AmqpSettings,
    metrics: Arc<Metrics>,
    tx: mpsc::Sender<Received>,
    shutdown: CancellationToken,
) -> Result<tokio::task::JoinHandle<()>, AmqpError> {
    let tls = tls_config(&settings.config)?;
    Ok(tokio::spawn(async move {
        let mut source = Source {
            settings,
            tls,
            metrics,
            tx: Some(tx),
            generation: 0,
        };
        source.run(shutdown).await;
    }))
}

struct Source {
    settings: AmqpSettings,
    tls: OwnedTLSConfig,
    metrics: Arc<Metrics>,
    /// Dropped at shutdown, so the forwarder's input closes.
    tx: Option<mpsc::Sender<Received>>,
    generation: u64,
}

/// Why a session ended.
enum Ended {
    /// Shutdown: stopped consuming and settled what could be settled.
    Stopped,
    /// The connection or channel failed; reconnect.
    Lost(String),
}

/// Reconnecting after failed connections: from 500 ms doubling up to 30 s, equal jitter.
const RECONNECT: RetryPolicy =
    RetryPolicy::forever(Duration::from_millis(500), Duration::from_secs(30));

impl Source {
    fn name(&self) -> String {
        self.settings.config.source_name()
    }

    async fn run(&mut self, shutdown: CancellationToken) {
        let mut failures = 0u32;
        loop {
            self.generation += 1;
            match self.session(&shutdown, &mut failures).await {
                Ended::Stopped => break,
                Ended::Lost(error) => {
                    let m = self.metrics.endpoint(self.settings.index);
                    if m.connected.swap(false, Relaxed) {
                        m.disconnects.fetch_add(1, Relaxed);
                    }
                    failures += 1;
                    let delay = RECONNECT.equal_jitter(failures);
                    tracing::warn!(source = self.name(), error, retry_in = ?delay, "AMQP connection lost or refused; reconnecting (unacknowledged deliveries go back to the queue)");
                    self.metrics.set_error(Some(format!("AMQP: {error}")));
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = shutdown.cancelled() => break,
                    }
                    self.metrics
                        .endpoint(self.settings.index)
                        .reconnects
                        .fetch_add(1, Relaxed);
                }
            }
        }
        self.tx = None;
    }

    async fn connect(&self) -> Result<(Connection, Channel, lapin::Consumer), lapin::Error> {
        let c = &self.settings.config;
        let props = ConnectionProperties::default()
            .with_connection_name(format!("fmn-ingest-bridge {}", std::process::id()).into());
        let conn = Connection::connect_with_config(
            &connect_url(c),
            props,
            self.tls.clone(),
            lapin::runtime::default_runtime()?,
        )
        .await?;
        let channel = conn.create_channel().await?;
        channel
            .basic_qos(c.prefetch, BasicQosOptions::default())
            .await?;
        let durable = QueueDeclareOptions {
            passive: c.passive,
            durable: true,
            exclusive: false,
            auto_delete: false,
            nowait: false,
        };
        let queue = channel
            .queue_declare(c.queue.as_str().into(), durable, FieldTable::default())
            .await?;
        if !c.passive {
            for key in &c.bindings {
                channel
                    .queue_bind(
                        c.queue.as_str().into(),
                        c.exchange.as_str().into(),
                        key.as_str().into(),
                        QueueBindOptions::default(),
                        FieldTable::default(),
                    )
                    .await?;
            }
        }
        tracing::info!(
            source = self.name(),
            waiting = queue.message_count(),
            prefetch = c.prefetch,
            "consuming from the AMQP queue"
        );
        let consumer = channel
            .basic_consume(
                c.queue.as_str().into(),
                format!("fmn-ingest-bridge-{}", uuid::Uuid::new_v4().simple()).into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        Ok((conn, channel, consumer))
    }

    async fn session(&mut self, shutdown: &CancellationToken, failures: &mut u32) -> Ended {
        let connected = tokio::select! {
            c = self.connect() => c,
            _ = shutdown.cancelled() => return Ended::Stopped,
        };
        let (conn, channel, mut consumer) = match connected {
            Ok(c) => c,
            Err(e) => return Ended::Lost(e.to_string()),
        };
        *failures = 0;
        let m = self.metrics.endpoint(self.settings.index);
        m.connects.fetch_add(1, Relaxed);
        m.connected.store(true, Relaxed);
        self.metrics.set_error(None);
        let (sink, mut settled) = mpsc::unbounded_channel::<Settle>();
        let mut tracker = AckTracker::default();
        let generation = self.generation;

        let ended = loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break Ended::Stopped,
                Some(s) = settled.recv() => {
                    let mut batch = vec![s];
                    while let Ok(s) = settled.try_recv() {
                        batch.push(s);
                    }
                    if let Err(e) = self.apply(&channel, &mut tracker, generation, batch).await {
                        break Ended::Lost(e.to_string());
                    }
                }
                delivery = consumer.next() => {
                    let delivery = match delivery {
                        Some(Ok(d)) => d,
                        Some(Err(e)) => break Ended::Lost(e.to_string()),
                        None => break Ended::Lost("the broker cancelled the consumer".into()),
                    };
                    let tag = delivery.delivery_tag;
                    tracker.delivered(tag);
                    let ack = Ack::new(DeliveryRef { generation, tag }, sink.clone());
                    match self.receive(delivery) {
                        Ok(valid) => {
                            let received = Received {
                                endpoint: self.settings.index,
                                valid,
                                received_ms: unix_ms(SystemTime::now()),
                                ack: Some(ack),
                            };
                            let Some(tx) = &self.tx else { break Ended::Stopped };
                            tokio::select! {
                                sent = tx.send(received) => if sent.is_err() {
                                    break Ended::Stopped;
                                },
                                _ = shutdown.cancelled() => break Ended::Stopped,
                            }
                        }
                        Err(_) => ack.settle(Verdict::Refuse),
                    }
                }
            }
        };
        if let Ended::Lost(_) = ended {
            return ended;
        }
        // Shutdown: take no more, hand the forwarder's input back (so it can finish), then
        // settle what it reports until nothing it holds is ours, and say goodbye.
        let _ = channel
            .basic_cancel(consumer.tag(), BasicCancelOptions::default())
            .await;
        self.tx = None;
        drop(sink);
        while let Some(s) = settled.recv().await {
            let mut batch = vec![s];
            while let Ok(s) = settled.try_recv() {
                batch.push(s);
            }
            if self
                .apply(&channel, &mut tracker, generation, batch)
                .await
                .is_err()
            {
                break;
            }
        }
        if !tracker.is_empty() {
            tracing::info!(
                source = self.name(),
                unsettled = tracker.outstanding.len(),
                "closing with deliveries unsettled; the broker delivers them again"
            );
        }
        let _ = conn.close(200, "fmn-ingest-bridge stopping".into()).await;
        Ended::Stopped
    }

    /// Validates one delivery into what the forwarder takes, counting and logging refusals.
    fn receive(&self, d: lapin::message::Delivery) -> Result<Valid, Invalid> {
        let m = self.metrics.endpoint(self.settings.index);
        m.received.fetch_add(1, Relaxed);
        m.last_message_ms.store(unix_ms(SystemTime::now()), Relaxed);
        let message_id = d
            .properties
            .message_id()
            .as_ref()
            .map(|s| s.as_str().to_owned());
        let headers = d
            .properties
            .headers()
            .as_ref()
            .map(headers_to_json)
            .unwrap_or_default();
        let result = to_valid(
            message_id.as_deref(),
            d.routing_key.as_str(),
            headers,
            &d.data,
            self.settings.max_body_bytes,
        );
        if let Err(invalid) = &result {
            self.metrics.invalid(invalid.reason);
            tracing::warn!(
                source = self.name(),
                msg_id = invalid.msg_id.as_deref().unwrap_or(""),
                topic = d.routing_key.as_str(),
                reason = invalid.reason.label(),
                detail = invalid.detail,
                "refusing an AMQP message (nack, not requeued): it can never be forwarded"
            );
        }
        result
    }

    async fn apply(
        &self,
        channel: &Channel,
        tracker: &mut AckTracker,
        generation: u64,
        batch: Vec<Settle>,
    ) -> Result<(), lapin::Error> {
        for s in batch {
            // Settlements of a lost connection: the broker took those deliveries back.
            if s.delivery.generation == generation {
                tracker.settle(s.delivery.tag, s.verdict);
            }
        }
        for action in tracker.actions() {
            match action {
                Action::Ack { tag, multiple } => {
                    channel.basic_ack(tag, BasicAckOptions { multiple }).await?
                }
                Action::Nack { tag, requeue } => {
                    channel
                        .basic_nack(
                            tag,
                            BasicNackOptions {
                                multiple: false,
                                requeue,
                            },
                        )
                        .await?
                }
            }
        }
        Ok(())
    }
}

/// Turns one AMQP message into the envelope the ingest queue carries.
pub fn to_valid(
    message_id: Option<&str>,
    routing_key: &str,
    headers: Map<String, Value>,
    data: &[u8],
    max_body_bytes: usize,
) -> Result<Valid, Invalid> {
    let invalid = |reason, detail: String, msg_id: Option<&str>| Invalid {
        reason,
        detail,
        msg_id: msg_id.map(str::to_owned),
    };
    // Publishers other than fedora-messaging may leave the id out: derive a stable one, so a
    // redelivery is still recognised as the same message.
    let derived;
    let msg_id = match message_id.filter(|id| !id.is_empty()) {
        Some(id) => id,
        None => {
            let mut h = Sha256::new();
            h.update(routing_key.as_bytes());
            h.update(b"\n");
            h.update(data);
            derived = format!("sha256:{}", hex::encode(h.finalize()));
            &derived
        }
    };
    if data.len() > max_body_bytes {
        return Err(invalid(
            InvalidReason::TooLarge,
            format!("body of {} bytes, limit {max_body_bytes}", data.len()),
            Some(msg_id),
        ));
    }
    let body: Value = serde_json::from_slice(data).map_err(|e| {
        invalid(
            InvalidReason::NotJson,
            format!("body is not JSON: {e}"),
            Some(msg_id),
        )
    })?;
    let envelope =
        Envelope::from_fedora_messaging(msg_id, routing_key, headers, body).map_err(|e| {
            let reason = match e {
                EnvelopeError::Topic(_) => InvalidReason::NoTopic,
                EnvelopeError::MsgIdTooLong(_)
                | EnvelopeError::MissingMsgId
                | EnvelopeError::EmptyMsgId => InvalidReason::NoMsgId,
                _ => InvalidReason::NotJson,
            };
            invalid(reason, e.to_string(), Some(msg_id))
        })?;
    let body = envelope.to_json();
    if body.len() > max_body_bytes {
        return Err(invalid(
            InvalidReason::TooLarge,
            format!("envelope of {} bytes, limit {max_body_bytes}", body.len()),
            Some(msg_id),
        ));
    }
    Ok(Valid {
        topic: routing_key.to_owned(),
        msg_id: envelope.msg_id().to_owned(),
        i: None,
        username: None,
        signed: false,
        body,
    })
}

/// AMQP header values as JSON: what fedora-messaging's Python (pika) would see.
pub fn headers_to_json(table: &FieldTable) -> Map<String, Value> {
    table
        .inner()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), amqp_to_json(v)))
        .collect()
}

fn amqp_to_json(value: &AMQPValue) -> Value {
    let float = |f: f64| Number::from_f64(f).map_or(Value::Null, Value::Number);
    match value {
        AMQPValue::Boolean(b) => Value::Bool(*b),
        AMQPValue::ShortShortInt(n) => Value::from(*n),
        AMQPValue::ShortShortUInt(n) => Value::from(*n),
        AMQPValue::ShortInt(n) => Value::from(*n),
        AMQPValue::ShortUInt(n) => Value::from(*n),
        AMQPValue::LongInt(n) => Value::from(*n),
        AMQPValue::LongUInt(n) => Value::from(*n),
        AMQPValue::LongLongInt(n) => Value::from(*n),
        AMQPValue::Timestamp(n) => Value::from(*n),
        AMQPValue::Float(f) => float(f64::from(*f)),
        AMQPValue::Double(f) => float(*f),
        AMQPValue::DecimalValue(d) => float(f64::from(d.value) / 10f64.powi(i32::from(d.scale))),
        AMQPValue::ShortString(s) => Value::String(s.as_str().to_owned()),
        AMQPValue::LongString(s) => Value::String(String::from_utf8_lossy(s.as_bytes()).into()),
        AMQPValue::ByteArray(b) => Value::String(String::from_utf8_lossy(b.as_slice()).into()),
        AMQPValue::FieldArray(a) => Value::Array(a.as_slice().iter().map(amqp_to_json).collect()),
        AMQPValue::FieldTable(t) => Value::Object(headers_to_json(t)),
        AMQPValue::Void => Value::Null,
    }
}

/// What to send the broker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Ack { tag: u64, multiple: bool },
    Nack { tag: u64, requeue: bool },
}

/// Turns settlements (in any order) into as few broker calls as possible: one `ack` with
/// `multiple` for the settled run below the oldest unsettled delivery, single acks above it,
/// a nack each for refusals. Settling an unknown or already settled tag does nothing, so a
/// tag is never acknowledged twice (which the broker punishes by closing the channel).
#[derive(Debug, Default)]
pub struct AckTracker {
    /// Delivered, not settled yet.
    outstanding: BTreeSet<u64>,
    /// Settled as safe, acknowledgement not sent yet.
    to_ack: BTreeSet<u64>,
    /// Refused or to retry, nack not sent yet.
    to_nack: Vec<(u64, bool)>,
}

impl AckTracker {
    pub fn delivered(&mut self, tag: u64) {
        self.outstanding.insert(tag);
    }

    pub fn settle(&mut self, tag: u64, verdict: Verdict) {
        if !self.outstanding.remove(&tag) {
            return;
        }
        match verdict {
            Verdict::Ack => {
                self.to_ack.insert(tag);
            }
            Verdict::Refuse => self.to_nack.push((tag, false)),
            Verdict::Retry => self.to_nack.push((tag, true)),
        }
    }

    /// Nothing delivered is waiting for a settlement or a call.
    pub fn is_empty(&self) -> bool {
        self.outstanding.is_empty() && self.to_ack.is_empty() && self.to_nack.is_empty()
    }

    /// The calls due now.
    pub fn actions(&mut self) -> Vec<Action> {
        let mut out: Vec<Action> = self
            .to_nack
            .drain(..)
            .map(|(tag, requeue)| Action::Nack { tag, requeue })
            .collect();
        let oldest_unsettled = self.outstanding.first().copied().unwrap_or(u64::MAX);
        let above = self.to_ack.split_off(&oldest_unsettled);
        // Everything below the oldest unsettled delivery is settled (acked or nacked just
        // now, before this ack): one multiple ack covers the acked ones.
        if let Some(&last) = self.to_ack.last() {
            out.push(Action::Ack {
                tag: last,
                multiple: self.to_ack.len() > 1,
            });
        }
        out.extend(above.iter().map(|&tag| Action::Ack {
            tag,
            multiple: false,
        }));
        self.to_ack.clear();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lapin::types::{FieldArray, LongString, ShortString};
    use rand::Rng;

    #[test]
    fn in_order_settlements_become_one_multiple_ack() {
        let mut t = AckTracker::default();
        for tag in 1..=5 {
            t.delivered(tag);
        }
        for tag in [2, 1, 3] {
            t.settle(tag, Verdict::Ack);
        }
        assert_eq!(
            t.actions(),
            [Action::Ack {
                tag: 3,
                multiple: true
            }]
        );
        t.settle(5, Verdict::Ack);
        // 4 is still out: 5 is acknowledged alone, never by a multiple ack covering 4.
        assert_eq!(
            t.actions(),
            [Action::Ack {
                tag: 5,
                multiple: false
            }]
        );
        assert!(!t.is_empty());
        t.settle(4, Verdict::Refuse);
        assert_eq!(
            t.actions(),
            [Action::Nack {
                tag: 4,
                requeue: false
            }]
        );
        assert!(t.is_empty());
    }

    #[test]
    fn a_tag_is_settled_once_and_unknown_tags_are_ignored() {
        let mut t = AckTracker::default();
        t.delivered(7);
        t.settle(7, Verdict::Ack);
        t.settle(7, Verdict::Ack);
        t.settle(8, Verdict::Retry);
        assert_eq!(
            t.actions(),
            [Action::Ack {
                tag: 7,
                multiple: false
            }]
        );
        assert!(t.actions().is_empty());
    }

    #[test]
    fn a_multiple_ack_never_covers_an_unsettled_delivery() {
        // Random settlement orders: replay the calls against a model of the broker.
        let mut rng = rand::rng();
        for _ in 0..200 {
            let n = rng.random_range(1..40u64);
            let mut t = AckTracker::default();
            let mut order: Vec<u64> = (1..=n).collect();
            for tag in &order {
                t.delivered(*tag);
            }
            for i in (1..order.len()).rev() {
                order.swap(i, rng.random_range(0..=i));
            }
            let mut settled = BTreeSet::new();
            let mut acked = BTreeSet::new();
            for tag in order {
                t.settle(tag, Verdict::Ack);
                settled.insert(tag);
                if rng.random_bool(0.5) {
                    for a in t.actions() {
                        let Action::Ack { tag, multiple } = a else {
                            panic!("only acks")
                        };
                        let covered: Vec<u64> = if multiple {
                            (1..=tag).filter(|x| !acked.contains(x)).collect()
                        } else {
                            vec![tag]
                        };
                        for c in covered {
                            assert!(settled.contains(&c), "acked {c} before it was settled");
                            assert!(acked.insert(c), "acked {c} twice");
                        }
                    }
                }
            }
            for a in t.actions() {
                if let Action::Ack { tag, multiple } = a {
                    let covered: Vec<u64> = if multiple {
                        (1..=tag).filter(|x| !acked.contains(x)).collect()
                    } else {
                        vec![tag]
                    };
                    for c in covered {
                        assert!(acked.insert(c), "acked {c} twice");
                    }
                }
            }
            assert_eq!(acked.len() as u64, n);
        }
    }

    #[test]
    fn headers_become_json() {
        let mut t = FieldTable::default();
        t.insert(
            "fedora_messaging_schema".into(),
            AMQPValue::LongString(LongString::from("bodhi.update.comment.v1")),
        );
        t.insert("fedora_messaging_severity".into(), AMQPValue::LongInt(20));
        t.insert(
            "fedora_messaging_user_alice".into(),
            AMQPValue::Boolean(true),
        );
        t.insert(
            "list".into(),
            AMQPValue::FieldArray(FieldArray::from(vec![AMQPValue::ShortString(
                ShortString::from("x"),
            )])),
        );
        let json = headers_to_json(&t);
        assert_eq!(json["fedora_messaging_schema"], "bodhi.update.comment.v1");
        assert_eq!(json["fedora_messaging_severity"], 20);
        assert_eq!(json["fedora_messaging_user_alice"], true);
        assert_eq!(json["list"], serde_json::json!(["x"]));
    }

    #[test]
    fn messages_become_envelopes_or_clear_refusals() {
        let topic = "org.fedoraproject.prod.bodhi.update.comment";
        let mut headers = Map::new();
        headers.insert("sent-at".into(), "2026-01-01T00:00:00+00:00".into());
        let v = to_valid(Some("abc"), topic, headers.clone(), br#"{"a":1}"#, 1 << 20).unwrap();
        assert_eq!(v.msg_id, "abc");
        let env = Envelope::from_json(&v.body).unwrap();
        assert_eq!(env.origin(), fmn_core::message::Origin::FedoraMessaging);
        assert_eq!(env.timestamp_secs(), Some(1_767_225_600.0));
        // No id: a stable derived one.
        let a = to_valid(None, topic, Map::new(), br#"{"a":1}"#, 1 << 20).unwrap();
        let b = to_valid(Some(""), topic, Map::new(), br#"{"a":1}"#, 1 << 20).unwrap();
        assert!(a.msg_id.starts_with("sha256:"));
        assert_eq!(a.msg_id, b.msg_id);
        let reason = |id: Option<&str>, topic: &str, data: &[u8]| {
            to_valid(id, topic, Map::new(), data, 64)
                .unwrap_err()
                .reason
        };
        assert_eq!(
            reason(Some("x"), topic, b"not json"),
            InvalidReason::NotJson
        );
        assert_eq!(reason(Some("x"), topic, b"[1]"), InvalidReason::NotJson);
        assert_eq!(reason(Some("x"), "hello", b"{}"), InvalidReason::NoTopic);
        assert_eq!(
            reason(Some("x"), topic, &[b' '; 65]),
            InvalidReason::TooLarge
        );
        let long = "x".repeat(300);
        assert_eq!(reason(Some(&long), topic, b"{}"), InvalidReason::NoMsgId);
    }

    #[test]
    fn external_auth_is_named_when_a_client_certificate_is_set() {
        let mut c = AmqpConfig {
            url: "amqps://h/%2Fpublic_pubsub".into(),
            queue: "q".into(),
            exchange: "amq.topic".into(),
            bindings: vec!["#".into()],
            prefetch: 10,
            passive: false,
            ca_file: None,
            client_cert: None,
        };
        assert_eq!(connect_url(&c), "amqps://h/%2Fpublic_pubsub");
        c.client_cert = Some(("c".into(), "k".into()));
        assert_eq!(
            connect_url(&c),
            "amqps://h/%2Fpublic_pubsub?auth_mechanism=external"
        );
        c.url = "amqps://h/?heartbeat=10".into();
        assert_eq!(
            connect_url(&c),
            "amqps://h/?heartbeat=10&auth_mechanism=external"
        );
        let err = tls_config(&AmqpConfig {
            ca_file: Some("/nonexistent/ca.pem".into()),
            ..c
        })
        .unwrap_err();
        assert!(err.to_string().contains("FMN_AMQP_CA"), "{err}");
    }
}
