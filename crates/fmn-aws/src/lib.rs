//! AWS adapters for fmn. The domain (`fmn-core`) knows nothing of AWS; everything that talks to
//! SQS, DynamoDB, SES v2 or EventBridge, reads the infra template, or wires a Lambda lives here.

pub mod auto_accounts;
pub mod batch;
pub mod clock;
pub mod config;
pub mod confirmations;
pub mod delivery_records;
pub mod digest_store;
pub mod dlq;
pub mod dynamo;
pub mod explain;
pub mod feed_tokens;
pub mod health;
pub mod ingest_wire;
pub mod job_queue;
pub mod lambda;
pub mod mail;
pub mod matrix_rooms;
pub mod names;
pub mod ownership_store;
pub mod pacing;
pub mod prefs_cache;
pub mod prefs_snapshot;
pub mod prefs_store;
pub mod preview;
pub mod provision;
pub mod recent;
pub mod request_count;
pub mod retry;
pub mod secrets;
pub mod ses;
pub mod ses_events;
pub mod sqs;
pub mod telemetry;
pub mod template;
pub mod throttle;
pub mod vars;

pub use config::AwsClients;
pub use names::{Access, FunctionName, IndexName, QueueName, ResourceNames, TableName};
pub use vars::{ConfigError, Vars};
