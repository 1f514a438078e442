//! Wiring handlers to the Lambda runtime. A function's `main.rs` builds its handler and hands it
//! to one of these; the local runner calls the same handlers directly.

use std::future::Future;
use std::sync::Arc;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{service_fn, LambdaEvent};

/// A function driven by an SQS event source mapping with `ReportBatchItemFailures`.
pub trait SqsBatchHandler: Send + Sync + 'static {
    fn handle_batch(&self, event: SqsEvent) -> impl Future<Output = SqsBatchResponse> + Send;
}

/// Serves `handler` to the Lambda runtime until the runtime stops.
pub async fn run_sqs<H: SqsBatchHandler>(handler: H) -> Result<(), lambda_runtime::Error> {
    let handler = Arc::new(handler);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let handler = Arc::clone(&handler);
        async move { Ok::<_, lambda_runtime::Error>(handler.handle_batch(event.payload).await) }
    }))
    .await
}
