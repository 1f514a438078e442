//! The digest function, run on the schedule: sends each digest destination whose pending items
//! are due one mail listing them. This build runs on the schedule and reports what it did;
//! the digest policy and mail arrive with delivery.

use fmn_aws::{AwsClients, FunctionName};
use serde::Serialize;

pub const FUNCTION: FunctionName = FunctionName::Digest;

/// What one scheduled run did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DigestReport {
    pub destinations_due: usize,
    pub mails_sent: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum DigestError {
    #[error("reading pending digest items failed: {0}")]
    Store(String),
}

pub struct DigestHandler {
    _clients: AwsClients,
}

impl DigestHandler {
    pub fn new(clients: &AwsClients) -> Self {
        Self {
            _clients: clients.clone(),
        }
    }

    /// One scheduled run.
    pub async fn run(&self) -> Result<DigestReport, DigestError> {
        let report = DigestReport::default();
        tracing::info!(?report, "digest run finished");
        Ok(report)
    }
}
