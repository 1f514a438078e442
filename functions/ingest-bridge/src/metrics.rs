//! Counters and gauges of the bridge, rendered as Prometheus text for `/metrics`.
//!
//! Plain atomics: the subscriber threads and the forwarding task update them without locks.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::validate::InvalidReason;

/// Why a valid message was not forwarded after all (each is also logged with its id).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// Even compressed it is too large for SQS and for a DynamoDB item.
    TooLarge,
    /// Storing an oversized body in the recent-messages table kept failing.
    StoreFailed,
    /// SQS refused it as the sender's fault, even compressed.
    Rejected,
    /// The disk spool is full (`FMN_SPOOL_MAX_BYTES`).
    SpoolFull,
    /// The disk spool could not be written.
    SpoolError,
}

impl DropReason {
    pub const ALL: [DropReason; 5] = [
        DropReason::TooLarge,
        DropReason::StoreFailed,
        DropReason::Rejected,
        DropReason::SpoolFull,
        DropReason::SpoolError,
    ];

    pub fn label(self) -> &'static str {
        match self {
            DropReason::TooLarge => "too_large",
            DropReason::StoreFailed => "store_failed",
            DropReason::Rejected => "rejected",
            DropReason::SpoolFull => "spool_full",
            DropReason::SpoolError => "spool_error",
        }
    }
}

/// Upper bounds (seconds) of the latency histograms' buckets.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0,
];

/// A Prometheus histogram of durations.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        for (bound, bucket) in BUCKETS.iter().zip(&self.buckets) {
            if secs <= *bound {
                bucket.fetch_add(1, Relaxed);
            }
        }
        self.count.fetch_add(1, Relaxed);
        self.sum_micros
            .fetch_add(d.as_micros().min(u128::from(u64::MAX)) as u64, Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.count.load(Relaxed)
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (bound, bucket) in BUCKETS.iter().zip(&self.buckets) {
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{bound}\"}} {}",
                bucket.load(Relaxed)
            );
        }
        let count = self.count.load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(
            out,
            "{name}_sum {}",
            self.sum_micros.load(Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count {count}");
    }
}

/// Per-endpoint counters.
#[derive(Debug, Default)]
pub struct EndpointMetrics {
    pub received: AtomicU64,
    pub missed: AtomicU64,
    pub publisher_restarts: AtomicU64,
    pub connects: AtomicU64,
    pub disconnects: AtomicU64,
    pub reconnects: AtomicU64,
    pub connected: AtomicBool,
    /// Unix milliseconds of the last message from this endpoint (0: none yet).
    pub last_message_ms: AtomicU64,
}

/// Everything `/metrics` and `/healthz` report.
#[derive(Debug)]
pub struct Metrics {
    pub endpoints: Vec<(String, EndpointMetrics)>,
    invalid: [AtomicU64; InvalidReason::ALL.len()],
    dropped: [AtomicU64; DropReason::ALL.len()],
    pub duplicates: AtomicU64,
    pub forwarded: AtomicU64,
    pub compressed: AtomicU64,
    pub stored: AtomicU64,
    pub spooled: AtomicU64,
    pub sqs_errors: AtomicU64,
    pub buffered: AtomicU64,
    pub spool_messages: AtomicU64,
    /// Messages held in memory and journalled (synced or about to be, at the burst's end).
    pub journal_messages: AtomicU64,
    pub spool_bytes: AtomicU64,
    pub in_flight: AtomicU64,
    /// True while SQS calls fail (the bridge is backing off and buffering).
    pub sqs_failing: AtomicBool,
    /// Duration of each `SendMessageBatch` call.
    pub send_latency: Histogram,
    /// From the message's arrival off the bus to SQS accepting it.
    pub forward_latency: Histogram,
    started: SystemTime,
    last_error: Mutex<Option<String>>,
}

pub fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Metrics {
    pub fn new(endpoints: &[String]) -> Self {
        Self {
            endpoints: endpoints
                .iter()
                .map(|e| (e.clone(), EndpointMetrics::default()))
                .collect(),
            invalid: Default::default(),
            dropped: Default::default(),
            duplicates: AtomicU64::new(0),
            forwarded: AtomicU64::new(0),
            compressed: AtomicU64::new(0),
            stored: AtomicU64::new(0),
            spooled: AtomicU64::new(0),
            sqs_errors: AtomicU64::new(0),
            buffered: AtomicU64::new(0),
            spool_messages: AtomicU64::new(0),
            journal_messages: AtomicU64::new(0),
            spool_bytes: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            sqs_failing: AtomicBool::new(false),
            send_latency: Histogram::default(),
            forward_latency: Histogram::default(),
            started: SystemTime::now(),
            last_error: Mutex::new(None),
        }
    }

    pub fn endpoint(&self, index: usize) -> &EndpointMetrics {
        &self.endpoints[index].1
    }

    pub fn invalid(&self, reason: InvalidReason) {
        self.invalid[reason as usize].fetch_add(1, Relaxed);
    }

    pub fn invalid_count(&self, reason: InvalidReason) -> u64 {
        self.invalid[reason as usize].load(Relaxed)
    }

    pub fn invalid_total(&self) -> u64 {
        self.invalid.iter().map(|c| c.load(Relaxed)).sum()
    }

    pub fn dropped(&self, reason: DropReason) {
        self.dropped[reason as usize].fetch_add(1, Relaxed);
    }

    pub fn dropped_total(&self) -> u64 {
        self.dropped.iter().map(|c| c.load(Relaxed)).sum()
    }

    pub fn received_total(&self) -> u64 {
        self.endpoints
            .iter()
            .map(|(_, m)| m.received.load(Relaxed))
            .sum()
    }

    pub fn missed_total(&self) -> u64 {
        self.endpoints
            .iter()
            .map(|(_, m)| m.missed.load(Relaxed))
            .sum()
    }

    pub fn set_error(&self, error: Option<String>) {
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = error;
    }

    /// Seconds since the last message from any endpoint (since start when none came yet).
    pub fn last_message_age(&self) -> f64 {
        let last = self
            .endpoints
            .iter()
            .map(|(_, m)| m.last_message_ms.load(Relaxed))
            .max()
            .unwrap_or(0);
        let now = unix_ms(SystemTime::now());
        let since = if last == 0 {
            unix_ms(self.started)
        } else {
            last
        };
        now.saturating_sub(since) as f64 / 1000.0
    }

    /// The `/healthz` document.
    pub fn health(&self) -> serde_json::Value {
        let last_error = self
            .last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        serde_json::json!({
            "status": if self.sqs_failing.load(Relaxed) { "degraded" } else { "ok" },
            "sqs_failing": self.sqs_failing.load(Relaxed),
            "last_error": last_error,
            "last_message_age_seconds": self.last_message_age(),
            "buffered": self.buffered.load(Relaxed),
            "spooled_now": self.spool_messages.load(Relaxed),
            "received": self.received_total(),
            "forwarded": self.forwarded.load(Relaxed),
            "endpoints": self.endpoints.iter().map(|(e, m)| serde_json::json!({
                "endpoint": e,
                "connected": m.connected.load(Relaxed),
                "received": m.received.load(Relaxed),
                "missed": m.missed.load(Relaxed),
            })).collect::<Vec<_>>(),
        })
    }

    /// Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        let mut counter = |name: &str, help: &str, kind: &str, rows: Vec<(String, f64)>| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, v) in rows {
                let _ = writeln!(out, "{name}{labels} {v}");
            }
        };
        let per_endpoint = |f: &dyn Fn(&EndpointMetrics) -> f64| -> Vec<(String, f64)> {
            self.endpoints
                .iter()
                .map(|(e, m)| (format!("{{endpoint=\"{}\"}}", escape(e)), f(m)))
                .collect()
        };
        let plain = |v: u64| vec![(String::new(), v as f64)];
        counter(
            "fmn_bridge_received_total",
            "Messages received from the bus.",
            "counter",
            per_endpoint(&|m| m.received.load(Relaxed) as f64),
        );
        counter(
            "fmn_bridge_forwarded_total",
            "Messages accepted by SQS.",
            "counter",
            plain(self.forwarded.load(Relaxed)),
        );
        counter(
            "fmn_bridge_invalid_total",
            "Malformed messages counted and skipped, by reason.",
            "counter",
            InvalidReason::ALL
                .iter()
                .map(|r| {
                    (
                        format!("{{reason=\"{}\"}}", r.label()),
                        self.invalid_count(*r) as f64,
                    )
                })
                .collect(),
        );
        counter(
            "fmn_bridge_duplicates_total",
            "Messages seen again within the de-duplication window (sent once).",
            "counter",
            plain(self.duplicates.load(Relaxed)),
        );
        counter(
            "fmn_bridge_dropped_total",
            "Valid messages that could not be forwarded, by reason (each is logged).",
            "counter",
            DropReason::ALL
                .iter()
                .map(|r| {
                    (
                        format!("{{reason=\"{}\"}}", r.label()),
                        self.dropped[*r as usize].load(Relaxed) as f64,
                    )
                })
                .collect(),
        );
        counter(
            "fmn_bridge_compressed_total",
            "Messages sent gzip-compressed because they exceeded the SQS size limit.",
            "counter",
            plain(self.compressed.load(Relaxed)),
        );
        counter(
            "fmn_bridge_stored_total",
            "Messages stored in the recent-messages table and sent by reference.",
            "counter",
            plain(self.stored.load(Relaxed)),
        );
        counter(
            "fmn_bridge_spooled_total",
            "Messages written to the disk spool.",
            "counter",
            plain(self.spooled.load(Relaxed)),
        );
        counter(
            "fmn_bridge_sqs_errors_total",
            "Failed SendMessageBatch calls (retried).",
            "counter",
            plain(self.sqs_errors.load(Relaxed)),
        );
        counter(
            "fmn_bridge_missed_total",
            "Messages missed according to the publishers' sequence counter `i`.",
            "counter",
            per_endpoint(&|m| m.missed.load(Relaxed) as f64),
        );
        counter(
            "fmn_bridge_publisher_restarts_total",
            "Times a publisher's counter `i` went back (a restarted publisher).",
            "counter",
            per_endpoint(&|m| m.publisher_restarts.load(Relaxed) as f64),
        );
        counter(
            "fmn_bridge_disconnects_total",
            "Connections to an endpoint lost (ZeroMQ reconnects by itself).",
            "counter",
            per_endpoint(&|m| m.disconnects.load(Relaxed) as f64),
        );
        counter(
            "fmn_bridge_reconnects_total",
            "Sockets re-created after the endpoint stayed silent too long.",
            "counter",
            per_endpoint(&|m| m.reconnects.load(Relaxed) as f64),
        );
        counter(
            "fmn_bridge_connected",
            "1 while connected to the endpoint.",
            "gauge",
            per_endpoint(&|m| u8::from(m.connected.load(Relaxed)) as f64),
        );
        counter(
            "fmn_bridge_buffered_messages",
            "Messages held in memory (waiting or in flight).",
            "gauge",
            plain(self.buffered.load(Relaxed)),
        );
        counter(
            "fmn_bridge_spool_messages",
            "Messages in the disk spool.",
            "gauge",
            plain(self.spool_messages.load(Relaxed)),
        );
        counter(
            "fmn_bridge_journal_messages",
            "Messages only in memory, safe in the write-ahead journal.",
            "gauge",
            plain(self.journal_messages.load(Relaxed)),
        );
        counter(
            "fmn_bridge_spool_bytes",
            "Size of the disk spool.",
            "gauge",
            plain(self.spool_bytes.load(Relaxed)),
        );
        counter(
            "fmn_bridge_sqs_failing",
            "1 while SQS calls fail and the bridge backs off.",
            "gauge",
            plain(u64::from(self.sqs_failing.load(Relaxed))),
        );
        counter(
            "fmn_bridge_last_message_age_seconds",
            "Seconds since the last message from the bus.",
            "gauge",
            vec![(String::new(), self.last_message_age())],
        );
        self.send_latency.render(
            &mut out,
            "fmn_bridge_send_latency_seconds",
            "Duration of SendMessageBatch calls.",
        );
        self.forward_latency.render(
            &mut out,
            "fmn_bridge_forward_latency_seconds",
            "From arrival off the bus to acceptance by SQS.",
        );
        out
    }
}

fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::new(&["tcp://127.0.0.1:1".into()]);
        m.endpoint(0).received.fetch_add(3, Relaxed);
        m.invalid(InvalidReason::NotJson);
        m.send_latency.observe(Duration::from_millis(3));
        let text = m.render();
        assert!(text.contains("fmn_bridge_received_total{endpoint=\"tcp://127.0.0.1:1\"} 3"));
        assert!(text.contains("fmn_bridge_invalid_total{reason=\"not_json\"} 1"));
        assert!(text.contains("fmn_bridge_send_latency_seconds_bucket{le=\"0.005\"} 1"));
        assert!(text.contains("fmn_bridge_send_latency_seconds_count 1"));
        assert!(text.contains("# TYPE fmn_bridge_last_message_age_seconds gauge"));
    }
}
