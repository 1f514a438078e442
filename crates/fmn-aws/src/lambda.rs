//! Wiring handlers to the Lambda runtime. A function's `main.rs` builds its handler and hands it
//! to one of these; the local runner calls the same handlers directly.

use std::future::Future;
use std::process::ExitCode;
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
        async move {
            let response = handler.handle_batch(event.payload).await;
            crate::request_count::log_invocation();
            Ok::<_, lambda_runtime::Error>(response)
        }
    }))
    .await
}

/// A function's exit: `Ok` is a clean stop; an error (a bad setting, a missing secret, an
/// unreachable service at cold start) is logged once, readably (the error and its causes, a
/// setting's error naming the variable), and the process exits with status 1, rather than
/// Rust's `Error: <Debug dump>` on stderr.
pub fn exit_status(function: &str, result: Result<(), lambda_runtime::Error>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let mut reason = e.to_string();
            let mut source = e.source();
            while let Some(s) = source {
                reason.push_str(": ");
                reason.push_str(&s.to_string());
                source = s.source();
            }
            tracing::error!(function, error = %reason, "the function cannot run");
            ExitCode::FAILURE
        }
    }
}
