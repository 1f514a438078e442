//! Dead letters made the way the functions make them, for the operators' commands' tests.

use std::time::Duration;

use aws_sdk_sqs::types::MessageSystemAttributeName;
use fmn_aws::batch::{event_from_received, process_records, DeadLetterQueue, RecordError};
use fmn_aws::QueueName;

use crate::TestEnv;

/// Receives `count` messages of `queue` and hands them to `process_records` with a handler
/// that rejects each with `reason`, as a function refusing them would: they are dead-lettered
/// to `queue`'s dead-letter queue with the reason and their original id, and deleted from
/// `queue` as the event source mapping deletes records not reported failed. Returns their
/// original message ids.
pub async fn dead_letter(
    env: &TestEnv,
    queue: QueueName,
    count: usize,
    reason: &str,
) -> Vec<String> {
    let url = env.queue_url(queue).to_string();
    let dlq = DeadLetterQueue::new(
        env.clients.sqs.clone(),
        env.queue_url(
            queue
                .dead_letter()
                .expect("the queue has a dead-letter queue"),
        )
        .to_string(),
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut ids = Vec::new();
    while ids.len() < count {
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} of {count} messages arrived in {queue:?}",
            ids.len()
        );
        let out = env
            .clients
            .sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages((count - ids.len()).min(10) as i32)
            .wait_time_seconds(1)
            // Held while dead-lettered and deleted: the tests' queues let a record go after 1 s.
            .visibility_timeout(crate::sqs::DRAIN_VISIBILITY_SECS)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await
            .expect("ReceiveMessage");
        let messages = out.messages.unwrap_or_default();
        if messages.is_empty() {
            continue;
        }
        let event = event_from_received(&messages, "arn:aws:sqs:test");
        let response = process_records("test", event, Some(&dlq), |_| async {
            Err(RecordError::Reject(reason.to_string()))
        })
        .await;
        assert!(
            response.batch_item_failures.is_empty(),
            "every record dead-lettered: {:?}",
            response.batch_item_failures
        );
        for m in messages {
            env.clients
                .sqs
                .delete_message()
                .queue_url(&url)
                .receipt_handle(m.receipt_handle.unwrap_or_default())
                .send()
                .await
                .expect("DeleteMessage");
            ids.push(m.message_id.unwrap_or_default());
        }
    }
    ids
}
