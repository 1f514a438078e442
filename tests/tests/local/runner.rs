//! The local runner drives handlers the way Lambda's SQS event source mapping does.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use fmn_aws::batch::{process_records, RecordError, REASON_ATTRIBUTE};
use fmn_aws::lambda::SqsBatchHandler;
use fmn_aws::sqs::{send_all, OutgoingMessage};
use fmn_aws::{FunctionName, QueueName};
use fmn_integration_tests::{sqs, wait_until, TestEnv};
use fmn_local::esm;
use fmn_local::stats::FunctionStats;
use tokio_util::sync::CancellationToken;

/// Records every body it is given; fails (for retry) the ones that say "poison".
#[derive(Default)]
struct Recorder {
    seen: Mutex<Vec<String>>,
}

impl Recorder {
    fn times_seen(&self, body: &str) -> usize {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|b| *b == body)
            .count()
    }
}

impl SqsBatchHandler for Recorder {
    async fn handle_batch(&self, event: SqsEvent) -> SqsBatchResponse {
        process_records("recorder", event, None, |r| {
            self.seen.lock().unwrap().push(r.body.clone());
            let verdict = if r.body == "poison" {
                Err(RecordError::Retry("poison".into()))
            } else {
                Ok(())
            };
            async move { verdict }
        })
        .await
    }
}

fn start<H: SqsBatchHandler>(
    env: &TestEnv,
    function: FunctionName,
    handler: Arc<H>,
) -> (CancellationToken, Arc<FunctionStats>) {
    let config =
        fmn_local::system::mapping_config(&env.template, &env.provisioned, function).unwrap();
    let stop = CancellationToken::new();
    let stats = Arc::new(FunctionStats::default());
    tokio::spawn(esm::run(
        env.clients.sqs.clone(),
        config,
        handler,
        Arc::clone(&stats),
        stop.clone(),
    ));
    (stop, stats)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_on_a_queue_reaches_its_handler_and_is_deleted() {
    let env = TestEnv::new("reaches").await;
    let recorder = Arc::new(Recorder::default());
    let (stop, stats) = start(&env, FunctionName::Match, Arc::clone(&recorder));

    let ingest = env.queue_url(QueueName::Ingest);
    send_all(
        &env.clients.sqs,
        ingest,
        &[
            OutgoingMessage::new("a", "hello"),
            OutgoingMessage::new("b", "world"),
        ],
    )
    .await
    .unwrap();
    wait_until(
        "the handler to see both messages",
        Duration::from_secs(20),
        || recorder.times_seen("hello") == 1 && recorder.times_seen("world") == 1,
    )
    .await;
    // Succeeded records are deleted: nothing comes back after the visibility timeout.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(recorder.seen.lock().unwrap().len(), 2);
    assert_eq!(sqs::depth(&env.clients.sqs, ingest).await, 0);
    assert_eq!(stats.failed.load(std::sync::atomic::Ordering::Relaxed), 0);
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_record_returns_to_the_queue_then_goes_to_the_dead_letter_queue() {
    let env = TestEnv::new("redrive").await;
    let max_receive = env
        .template
        .queue(QueueName::Ingest.logical_id())
        .unwrap()
        .redrive
        .as_ref()
        .unwrap()
        .max_receive_count as usize;
    let recorder = Arc::new(Recorder::default());
    let (stop, _) = start(&env, FunctionName::Match, Arc::clone(&recorder));

    send_all(
        &env.clients.sqs,
        env.queue_url(QueueName::Ingest),
        &[
            OutgoingMessage::new("good", "good"),
            OutgoingMessage::new("poison", "poison"),
        ],
    )
    .await
    .unwrap();

    let dlq = env.queue_url(QueueName::IngestDeadLetter);
    let dead = sqs::drain(&env.clients.sqs, dlq, 1, Duration::from_secs(60)).await;
    assert_eq!(
        dead.len(),
        1,
        "the poison message reached the dead-letter queue"
    );
    assert_eq!(dead[0].body.as_deref(), Some("poison"));
    // Only the failed record was retried: the good one was handled exactly once.
    assert_eq!(recorder.times_seen("good"), 1);
    // Retried until SQS gave up: at most maxReceiveCount handlings. Fewer when a receive found
    // it twice in one batch (visibility 1 s is shorter than the batching window here): the
    // copies of one message in a batch are handled once.
    let seen = recorder.times_seen("poison");
    assert!(
        (2..=max_receive).contains(&seen),
        "handled {seen} times, delivered at most {max_receive}"
    );
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_match_handler_dead_letters_malformed_messages_with_the_reason() {
    let env = TestEnv::new("malformed").await;
    let handler = Arc::new(fmn_match::MatchHandler::new(&env.clients).await.unwrap());
    let (stop, stats) = start(&env, FunctionName::Match, handler);

    send_all(
        &env.clients.sqs,
        env.queue_url(QueueName::Ingest),
        &[OutgoingMessage::new("bad", "this is not json")],
    )
    .await
    .unwrap();
    let dead = env.drain(QueueName::IngestDeadLetter, 1, 20).await;
    assert_eq!(dead.len(), 1);
    let attributes: HashMap<_, _> = dead[0].message_attributes.clone().unwrap_or_default();
    let reason = attributes[REASON_ATTRIBUTE]
        .string_value()
        .unwrap_or_default()
        .to_string();
    assert!(reason.contains("not JSON"), "reason: {reason}");
    // Dead-lettered on the first delivery: not retried in vain.
    assert_eq!(stats.records.load(std::sync::atomic::Ordering::Relaxed), 1);
    stop.cancel();
}
