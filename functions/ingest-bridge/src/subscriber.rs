//! One ZeroMQ SUB socket per endpoint, each on its own thread (libzmq sockets are not
//! thread-safe, and a blocking receive loop is the simplest correct shape). Each thread
//! validates what it receives, checks signatures when asked, tracks the publishers' counters
//! for gaps, and hands valid messages to the forwarding task.
//!
//! Connection handling: libzmq reconnects by itself (100 ms, backing off to 1 s, as fedmsg
//! does); ZMTP heartbeats detect a dead peer that TCP alone would not notice; a socket monitor
//! logs every connect and disconnect; an endpoint silent for `idle_reconnect` gets a fresh
//! socket (fedmsg has no application heartbeat, so a half-open link looks like a quiet bus).

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::gaps::{stream_key, Gap, GapTracker};
use crate::metrics::{unix_ms, Metrics};
use crate::signature::Verifier;
use crate::validate::{validate, InvalidReason, Valid};

/// A valid message off the bus.
#[derive(Debug)]
pub struct Received {
    pub endpoint: usize,
    pub valid: Valid,
    pub received_ms: u64,
    /// The broker's delivery, for sources that wait for an acknowledgement (AMQP).
    pub ack: Option<crate::pending::Ack>,
}

/// What one subscriber thread needs.
#[derive(Clone)]
pub struct SubscriberSettings {
    pub index: usize,
    pub endpoint: String,
    pub topics: Vec<String>,
    pub max_body_bytes: usize,
    pub heartbeat: Duration,
    pub idle_reconnect: Option<Duration>,
    pub verifier: Option<Arc<Verifier>>,
}

/// How long one poll waits before checking for shutdown.
const POLL_MS: i64 = 200;
/// Messages queued inside libzmq for this socket before it stops reading from TCP.
const RCVHWM: i32 = 2_000;

#[derive(Debug, thiserror::Error)]
pub enum SubscribeError {
    #[error("ZeroMQ on {endpoint}: {source}")]
    Zmq {
        endpoint: String,
        source: zmq::Error,
    },
}

/// Starts the thread for one endpoint. It ends when `shutdown` is cancelled or the forwarding
/// task is gone.
pub fn spawn(
    ctx: zmq::Context,
    settings: SubscriberSettings,
    metrics: Arc<Metrics>,
    tx: mpsc::Sender<Received>,
    shutdown: CancellationToken,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("fedmsg-sub-{}", settings.index))
        .spawn(move || {
            let endpoint = settings.endpoint.clone();
            if let Err(e) = subscribe(&ctx, &settings, &metrics, &tx, &shutdown) {
                tracing::error!(endpoint, error = %e, "subscriber stopped");
            }
        })
}

fn zmq_err(endpoint: &str) -> impl Fn(zmq::Error) -> SubscribeError + '_ {
    move |source| SubscribeError::Zmq {
        endpoint: endpoint.to_string(),
        source,
    }
}

fn open(
    ctx: &zmq::Context,
    s: &SubscriberSettings,
    generation: u64,
) -> Result<(zmq::Socket, zmq::Socket), zmq::Error> {
    let sock = ctx.socket(zmq::SUB)?;
    sock.set_linger(0)?;
    sock.set_rcvhwm(RCVHWM)?;
    sock.set_reconnect_ivl(100)?;
    sock.set_reconnect_ivl_max(1000)?;
    sock.set_tcp_keepalive(1)?;
    sock.set_tcp_keepalive_idle(60)?;
    sock.set_tcp_keepalive_intvl(5)?;
    sock.set_tcp_keepalive_cnt(3)?;
    let hb = s.heartbeat.as_millis().clamp(100, i32::MAX as u128 / 3) as i32;
    sock.set_heartbeat_ivl(hb)?;
    sock.set_heartbeat_timeout(hb * 3)?;
    sock.set_heartbeat_ttl(hb * 3)?;
    if s.topics.is_empty() {
        sock.set_subscribe(b"")?;
    }
    for t in &s.topics {
        sock.set_subscribe(t.trim_end_matches('*').as_bytes())?;
    }
    let monitor_addr = format!(
        "inproc://fmn-bridge-monitor-{}-{}-{generation}",
        std::process::id(),
        s.index
    );
    sock.monitor(&monitor_addr, zmq::SocketEvent::ALL as i32)?;
    let monitor = ctx.socket(zmq::PAIR)?;
    monitor.set_linger(0)?;
    monitor.connect(&monitor_addr)?;
    sock.connect(&s.endpoint)?;
    Ok((sock, monitor))
}

fn subscribe(
    ctx: &zmq::Context,
    s: &SubscriberSettings,
    metrics: &Metrics,
    tx: &mpsc::Sender<Received>,
    shutdown: &CancellationToken,
) -> Result<(), SubscribeError> {
    let em = metrics.endpoint(s.index);
    let mut gaps = GapTracker::default();
    let mut generation = 0u64;
    tracing::info!(endpoint = s.endpoint, topics = ?s.topics, "subscribing");
    'socket: loop {
        generation += 1;
        let (sock, monitor) = open(ctx, s, generation).map_err(zmq_err(&s.endpoint))?;
        let mut last_activity = Instant::now();
        loop {
            if shutdown.is_cancelled() {
                em.connected.store(false, Relaxed);
                return Ok(());
            }
            let (readable, events) = {
                let mut items = [
                    sock.as_poll_item(zmq::POLLIN),
                    monitor.as_poll_item(zmq::POLLIN),
                ];
                match zmq::poll(&mut items, POLL_MS) {
                    Ok(_) => {}
                    Err(zmq::Error::EINTR) => continue,
                    Err(e) => return Err(zmq_err(&s.endpoint)(e)),
                }
                (items[0].is_readable(), items[1].is_readable())
            };
            if events {
                drain_monitor(&monitor, s, metrics);
            }
            if readable {
                // Take what is queued, bounded so shutdown stays responsive.
                for _ in 0..1000 {
                    let frames = match sock.recv_multipart(zmq::DONTWAIT) {
                        Ok(f) => f,
                        Err(zmq::Error::EAGAIN) => break,
                        Err(zmq::Error::EINTR) => continue,
                        Err(e) => return Err(zmq_err(&s.endpoint)(e)),
                    };
                    last_activity = Instant::now();
                    if let Some(r) = handle(frames, s, metrics, &mut gaps) {
                        if tx.blocking_send(r).is_err() {
                            return Ok(()); // the forwarding task is gone: shutting down
                        }
                    }
                }
            }
            if let Some(idle) = s.idle_reconnect {
                if last_activity.elapsed() >= idle {
                    tracing::warn!(
                        endpoint = s.endpoint,
                        silent_for = ?idle,
                        "no message for too long; re-creating the socket (FMN_IDLE_RECONNECT)"
                    );
                    em.reconnects.fetch_add(1, Relaxed);
                    em.connected.store(false, Relaxed);
                    continue 'socket;
                }
            }
        }
    }
}

/// Validates one message, counts it, and returns it when it is to be forwarded.
fn handle(
    frames: Vec<Vec<u8>>,
    s: &SubscriberSettings,
    metrics: &Metrics,
    gaps: &mut GapTracker,
) -> Option<Received> {
    let em = metrics.endpoint(s.index);
    em.received.fetch_add(1, Relaxed);
    let now = unix_ms(SystemTime::now());
    em.last_message_ms.store(now, Relaxed);
    let valid = match validate(frames, s.max_body_bytes) {
        Ok(v) => v,
        Err(inv) => {
            metrics.invalid(inv.reason);
            tracing::warn!(
                endpoint = s.endpoint,
                msg_id = inv.msg_id.as_deref().unwrap_or("-"),
                reason = inv.reason.label(),
                detail = inv.detail,
                "skipping an invalid message"
            );
            return None;
        }
    };
    if let Some(verifier) = &s.verifier {
        if let Err(e) = verifier.verify_envelope(&valid.body) {
            metrics.invalid(InvalidReason::BadSignature);
            tracing::warn!(
                endpoint = s.endpoint,
                msg_id = valid.msg_id,
                topic = valid.topic,
                reason = InvalidReason::BadSignature.label(),
                detail = %e,
                "skipping a message whose signature does not verify"
            );
            return None;
        }
    }
    if let Some(i) = valid.i {
        let stream = stream_key(&valid.topic, valid.username.as_deref());
        match gaps.observe(&stream, i) {
            Gap::InOrder | Gap::Repeat => {}
            Gap::Jump { missed, expected } => {
                em.missed.fetch_add(missed, Relaxed);
                tracing::warn!(
                    endpoint = s.endpoint,
                    stream,
                    missed,
                    expected,
                    got = i,
                    "gap in the publisher's counter: {missed} message(s) missed"
                );
            }
            Gap::Restart { last } => {
                em.publisher_restarts.fetch_add(1, Relaxed);
                tracing::info!(
                    endpoint = s.endpoint,
                    stream,
                    last,
                    got = i,
                    "publisher counter went back: the publisher restarted"
                );
            }
        }
    }
    Some(Received {
        endpoint: s.index,
        valid,
        received_ms: now,
        ack: None,
    })
}

fn drain_monitor(monitor: &zmq::Socket, s: &SubscriberSettings, metrics: &Metrics) {
    let em = metrics.endpoint(s.index);
    while let Ok(frames) = monitor.recv_multipart(zmq::DONTWAIT) {
        let Some(head) = frames.first().filter(|f| f.len() >= 2) else {
            continue;
        };
        let event = u16::from_le_bytes([head[0], head[1]]);
        let is = |e: zmq::SocketEvent| event == e.to_raw();
        if is(zmq::SocketEvent::CONNECTED) {
            em.connects.fetch_add(1, Relaxed);
            em.connected.store(true, Relaxed);
            tracing::info!(endpoint = s.endpoint, "connected to the bus");
        } else if is(zmq::SocketEvent::DISCONNECTED) {
            em.disconnects.fetch_add(1, Relaxed);
            em.connected.store(false, Relaxed);
            tracing::warn!(
                endpoint = s.endpoint,
                "disconnected from the bus; reconnecting (gaps will be reported)"
            );
        } else if is(zmq::SocketEvent::CONNECT_RETRIED) {
            tracing::debug!(endpoint = s.endpoint, "connection attempt failed; retrying");
        } else if is(zmq::SocketEvent::HANDSHAKE_FAILED_PROTOCOL)
            || is(zmq::SocketEvent::HANDSHAKE_FAILED_NO_DETAIL)
        {
            tracing::warn!(endpoint = s.endpoint, "ZeroMQ handshake failed");
        }
    }
}
