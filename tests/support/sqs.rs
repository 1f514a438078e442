//! Reading queues in tests.

use std::time::Duration;

use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName};

/// Receives (and deletes) messages until `count` arrived or `timeout` passed.
///
/// The test environment's queues have a one-second visibility timeout; a received batch is
/// held for [`DRAIN_VISIBILITY_SECS`] instead, so a loaded machine deleting it late neither sees
/// its receipt handles expire nor gets the same messages again.
pub async fn drain(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    count: usize,
    timeout: Duration,
) -> Vec<Message> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut got = Vec::new();
    while got.len() < count && tokio::time::Instant::now() < deadline {
        let out = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .visibility_timeout(DRAIN_VISIBILITY_SECS)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await
            .expect("ReceiveMessage");
        let messages = out.messages.unwrap_or_default();
        if messages.is_empty() {
            continue;
        }
        let entries = messages
            .iter()
            .enumerate()
            .map(|(i, m)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(m.receipt_handle.clone().unwrap_or_default())
                    .build()
                    .expect("id and receipt handle are set")
            })
            .collect::<Vec<_>>();
        let deleted = sqs
            .delete_message_batch()
            .queue_url(url)
            .set_entries(Some(entries))
            .send()
            .await
            .expect("DeleteMessageBatch");
        assert!(
            deleted.failed.is_empty(),
            "DeleteMessageBatch failed for {:?}",
            deleted.failed
        );
        got.extend(messages);
    }
    got
}

/// How long a test holds a received batch before deleting it ([`drain`], the dead-letter helper).
pub const DRAIN_VISIBILITY_SECS: i32 = 60;

/// A queue's approximate visible and in-flight message counts, and its visibility timeout.
#[derive(Debug, Clone, Copy)]
pub struct QueueState {
    pub visible: u64,
    pub in_flight: u64,
    pub visibility_secs: u64,
}

pub async fn queue_state(sqs: &aws_sdk_sqs::Client, url: &str) -> QueueState {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(A::ApproximateNumberOfMessages)
        .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
        .attribute_names(A::VisibilityTimeout)
        .send()
        .await
        .expect("GetQueueAttributes")
        .attributes
        .unwrap_or_default();
    let number = |a: A| {
        attrs
            .get(&a)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    QueueState {
        visible: number(A::ApproximateNumberOfMessages),
        in_flight: number(A::ApproximateNumberOfMessagesNotVisible),
        visibility_secs: number(A::VisibilityTimeout),
    }
}

/// Approximate number of visible plus in-flight messages.
pub async fn depth(sqs: &aws_sdk_sqs::Client, url: &str) -> u64 {
    let state = queue_state(sqs, url).await;
    state.visible + state.in_flight
}
