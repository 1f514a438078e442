//! The ingest-bridge: the one always-on process. Forwards fedmsg bus messages into the SQS
//! ingest queue. With no bus configured it replays the bundled sample of real messages, so a
//! local run shows notifications flowing.

pub mod config;
pub mod replay;

pub use config::BridgeConfig;
