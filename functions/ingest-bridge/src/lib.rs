//! The ingest-bridge: the one always-on process. Subscribes to the fedmsg bus (ZeroMQ) and
//! forwards every valid message, once, into the SQS ingest queue, losing nothing while SQS is
//! away (memory buffer, then a disk spool). With no bus configured it replays the bundled
//! sample of real messages, so a local run shows notifications flowing.
//!
//! Pipeline: `subscriber` (one thread per endpoint: `validate`, `signature`, `gaps`) →
//! `bridge` (`dedupe`, `encode`/`store`, `outbox` over `spool`, `sender`) → SQS; `metrics`
//! and `health` report on it. `publisher` speaks the fedmsg wire format for tests and the
//! bench.

pub mod amqp;
pub mod amqp_publisher;
pub mod bridge;
pub mod canonical;
pub mod config;
pub mod dedupe;
pub mod encode;
pub mod gaps;
pub mod health;
pub mod metrics;
pub mod outbox;
pub mod pending;
pub mod publisher;
pub mod replay;
pub mod sender;
pub mod signature;
pub mod spool;
pub mod store;
pub mod subscriber;
pub mod validate;

pub use bridge::{run, run_with, BridgeError, Outputs, Summary};
pub use config::BridgeConfig;
pub use metrics::Metrics;
