//! A message on its way to SQS, and the acknowledgement a broker waits for until it is safe.
//!
//! Shared by the outbox (memory) and the spool (disk), which is why it lives in neither.

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use fmn_aws::ingest_wire::{attributes_size, Encoding};

/// One message ready for SQS.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    pub msg_id: String,
    /// The SQS body (the envelope itself unless `encoding` says otherwise).
    pub body: String,
    pub encoding: Encoding,
    /// When the message came off the bus (Unix ms), for the end-to-end latency.
    pub received_ms: u64,
    /// Loaded from the spool's current segment.
    #[serde(skip)]
    pub from_spool: bool,
    /// Its batch was refused as a whole: send it in a batch of its own, to tell which message
    /// SQS refuses.
    #[serde(skip)]
    pub alone: bool,
    /// The broker's delivery to settle once the message is safe (in SQS or synced to the
    /// spool). Not written to the spool: what is on disk is safe already.
    #[serde(skip)]
    pub ack: Option<Ack>,
}

impl Pending {
    /// A small plain message `id-<n>`, for tests.
    #[cfg(test)]
    pub fn sample(n: usize) -> Self {
        Pending {
            msg_id: format!("id-{n}"),
            body: format!("{{\"n\":{n}}}"),
            encoding: Encoding::Plain,
            received_ms: 0,
            from_spool: false,
            alone: false,
            ack: None,
        }
    }

    /// Size as SQS counts it.
    pub fn size(&self) -> usize {
        self.body.len() + attributes_size(&self.msg_id, self.encoding)
    }
}

/// Which delivery of which connection: delivery tags restart with every channel, so a tag is
/// meaningful only with the connection generation it came on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DeliveryRef {
    pub generation: u64,
    pub tag: u64,
}

/// What to tell the broker about a delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Safe with us: the broker may forget it.
    Ack,
    /// Can never succeed (not JSON, too large even stored aside): nack without requeue, so the
    /// broker drops or dead-letters it.
    Refuse,
    /// Could not be kept this time (spool full, store-aside failing): nack with requeue, the
    /// broker delivers it again.
    Retry,
}

/// A settled delivery, sent back to the source that received it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settle {
    pub delivery: DeliveryRef,
    pub verdict: Verdict,
}

/// The handle a broker delivery travels with. Settling consumes it; the source ignores
/// settlements of a connection that is gone (the broker redelivers those by itself).
#[derive(Clone, Debug)]
pub struct Ack {
    pub delivery: DeliveryRef,
    sink: mpsc::UnboundedSender<Settle>,
}

impl PartialEq for Ack {
    fn eq(&self, other: &Self) -> bool {
        self.delivery == other.delivery
    }
}

impl Eq for Ack {}

impl Ack {
    pub fn new(delivery: DeliveryRef, sink: mpsc::UnboundedSender<Settle>) -> Self {
        Self { delivery, sink }
    }

    pub fn settle(self, verdict: Verdict) {
        // A closed sink means the source has stopped: the broker redelivers what it did not
        // hear about, so there is nothing else to do.
        let _ = self.sink.send(Settle {
            delivery: self.delivery,
            verdict,
        });
    }
}
