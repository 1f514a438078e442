//! The ingest-bridge: the one always-on process. Follows the buses, fedora-messaging (AMQP:
//! `amqp`) and fedmsg (ZeroMQ: `subscriber`), and forwards every valid message, once, into the
//! SQS ingest queue, losing nothing while SQS is away (memory buffer, then a disk spool; AMQP
//! deliveries are acknowledged only once safe). With no bus configured and
//! `FMN_REPLAY_SAMPLE=true` it replays the bundled sample of real messages instead.
//!
//! Pipeline: `amqp` (one consumer task) and `subscriber` (one thread per endpoint: `validate`,
//! `signature`, `gaps`) → `bridge` (`dedupe`, the wire format of `fmn_aws::ingest_wire`,
//! `outbox` over `spool`, `sender`) → SQS; `metrics` and `health` report on it. `publisher` and
//! `amqp_publisher` speak the buses' wire formats for tests and the bench.

pub mod amqp;
pub mod amqp_publisher;
pub mod bridge;
pub mod canonical;
pub mod config;
pub mod dedupe;
pub mod gaps;
pub mod health;
pub mod journal;
pub mod metrics;
pub mod outbox;
pub mod pending;
pub mod publisher;
pub mod replay;
pub mod sender;
pub mod signature;
pub mod spool;
pub mod subscriber;
pub mod validate;

pub use bridge::{run, run_with, BridgeError, Outputs, Summary};
pub use config::BridgeConfig;
pub use metrics::Metrics;
