//! The delivery queues' contract: a job is a JSON body whose id also travels as the
//! [`JOB_ID_ATTRIBUTE`] message attribute (for tracing a job through the queues without
//! parsing bodies). Everything that puts jobs on the email or IRC queue goes through
//! [`enqueue_jobs`].

use crate::sqs::{send_all, OutgoingMessage, SqsError};

/// Message attribute carrying a job's id on the delivery queues.
pub const JOB_ID_ATTRIBUTE: &str = "fmn-job-id";

/// A job as it goes on a queue.
#[derive(Clone, Debug)]
pub struct QueuedJob {
    pub job_id: String,
    /// The job as JSON.
    pub body: String,
}

/// Sends `jobs` to the queue at `url` (nothing when there are none).
pub async fn enqueue_jobs(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    jobs: &[QueuedJob],
) -> Result<(), SqsError> {
    if jobs.is_empty() {
        return Ok(());
    }
    let messages: Vec<OutgoingMessage> = jobs
        .iter()
        .map(|j| {
            OutgoingMessage::new(&j.job_id, j.body.as_str())
                .with_attribute(JOB_ID_ATTRIBUTE, j.job_id.as_str())
        })
        .collect();
    send_all(sqs, url, &messages).await
}
