//! The one place that decides what an AWS SDK error means for the work that hit it, and the one
//! retry-with-backoff helper every retrying loop uses.
//!
//! Every SDK error (SQS, DynamoDB, SES v2) is one of three [`ErrorClass`]es:
//! - [`ErrorClass::Retryable`]: the call may succeed later (timeouts, connection failures, 5xx,
//!   throttling, transaction conflicts): retry with backoff, then hand the record back.
//! - [`ErrorClass::Permanent`]: this item will never be accepted (validation, a refused
//!   address, an item over a size limit): dead-letter it with the reason.
//! - [`ErrorClass::ServiceWide`]: nothing will be accepted until someone acts (the SES account
//!   is paused or suspended, the sending identity is not verified): the item is not at fault,
//!   so stop the batch and give everything back to the queue.
//!
//! Call sites never read codes themselves: the stores' typed errors carry their class
//! ([`Classify`]), and `crate::batch::RecordError` is made from them with `From`.

use std::future::Future;
use std::time::Duration;

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use rand::Rng;

/// An error's text with its causes (`connecting: tls handshake: bad certificate`): what a
/// log line or a dead-letter reason needs, since most errors' own text leaves the cause out.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// What an error means for the work that hit it (see the module's description).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    Retryable,
    Permanent,
    ServiceWide,
}

impl ErrorClass {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Retryable => "retryable",
            ErrorClass::Permanent => "permanent",
            ErrorClass::ServiceWide => "service-wide",
        }
    }
}

/// An error that knows its [`ErrorClass`].
pub trait Classify {
    fn class(&self) -> ErrorClass;
}

/// Error codes worth another try, across SQS, DynamoDB and SES v2 (and the emulators).
const RETRYABLE_CODES: &[&str] = &[
    // Throttling, under each service's name for it.
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottled",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "LimitExceededException",
    "KmsThrottled",
    "SlowDown",
    // Concurrency.
    "TransactionConflictException",
    "TransactionInProgressException",
    // The service's own trouble.
    "InternalFailure",
    "InternalError",
    "InternalServerError",
    "InternalServerException",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "RequestTimeout",
    "RequestTimeoutException",
    "PriorRequestNotComplete",
];

/// Error codes that stop every send, not just this one: SES refuses all mail until an
/// administrator acts.
const SERVICE_WIDE_CODES: &[&str] = &[
    "SendingPausedException",
    "AccountSuspendedException",
    "MailFromDomainNotVerifiedException",
    // SES v2's answer when the sending identity (or configuration set) does not exist.
    "NotFoundException",
];

/// SQS's codes for a batch call refused as a whole for what it carries (too long, too many or
/// duplicate entries...): the sender's fault, never accepted as it is. The faults of single
/// entries come back in the answer's `Failed` list instead.
const BATCH_REFUSAL_CODES: &[&str] = &[
    "BatchRequestTooLong",
    "TooManyEntriesInBatchRequest",
    "BatchEntryIdsNotDistinct",
    "InvalidBatchEntryId",
    "EmptyBatchRequest",
    "InvalidMessageContents",
    "InvalidParameterValue",
];

/// A code without its service's qualifier: SQS's query protocol answers
/// `AWS.SimpleQueueService.BatchRequestTooLong`, its JSON protocol `BatchRequestTooLong`.
fn unqualified(code: &str) -> &str {
    code.rsplit('.').next().unwrap_or(code)
}

/// The class of an error from its service code and HTTP status, when known. A code decides
/// when it is one we know; otherwise the status does (5xx, 429 and 408 are retryable, other
/// statuses are the request's fault); with neither, the error is retryable (no answer came).
pub fn classify_code(code: Option<&str>, status: Option<u16>) -> ErrorClass {
    if let Some(code) = code.map(unqualified) {
        if RETRYABLE_CODES.contains(&code) {
            return ErrorClass::Retryable;
        }
        if SERVICE_WIDE_CODES.contains(&code) {
            return ErrorClass::ServiceWide;
        }
        if BATCH_REFUSAL_CODES.contains(&code) {
            return ErrorClass::Permanent;
        }
    }
    match status {
        Some(s) if s >= 500 || s == 429 || s == 408 => ErrorClass::Retryable,
        Some(_) => ErrorClass::Permanent,
        None if code.is_some() => ErrorClass::Permanent,
        None => ErrorClass::Retryable,
    }
}

/// The class of any SDK error (the SDKs share `SdkError`).
pub fn classify<E>(err: &SdkError<E, HttpResponse>) -> ErrorClass
where
    E: ProvideErrorMetadata,
{
    match err {
        // The request could not even be built: it never will be.
        SdkError::ConstructionFailure(_) => ErrorClass::Permanent,
        SdkError::TimeoutError(_) => ErrorClass::Retryable,
        // A misconfigured client (bad endpoint) fails every call the same way.
        SdkError::DispatchFailure(f) if f.is_user() => ErrorClass::ServiceWide,
        SdkError::DispatchFailure(_) => ErrorClass::Retryable,
        // An answer we could not read: a proxy's error page, a cut connection.
        SdkError::ResponseError(_) => ErrorClass::Retryable,
        SdkError::ServiceError(s) => classify_code(s.err().code(), Some(s.raw().status().as_u16())),
        _ => ErrorClass::Retryable,
    }
}

/// What a failed batch call (SQS `SendMessageBatch`) means for the batch it carried:
/// [`ErrorClass::Permanent`] only when SQS refused the request as a whole for its content (its
/// entries may still be accepted one by one); any other refusal (no such queue, no access) is
/// not the batch's fault and is [`ErrorClass::ServiceWide`]: nothing is accepted until someone
/// acts. Otherwise as [`classify`].
pub fn classify_batch<E>(err: &SdkError<E, HttpResponse>) -> ErrorClass
where
    E: ProvideErrorMetadata,
{
    batch_class(classify(err), err.code())
}

/// [`classify_batch`] from a code and status (as [`classify_code`]).
pub fn classify_batch_code(code: Option<&str>, status: Option<u16>) -> ErrorClass {
    batch_class(classify_code(code, status), code)
}

fn batch_class(class: ErrorClass, code: Option<&str>) -> ErrorClass {
    let refusal = code.is_some_and(|c| BATCH_REFUSAL_CODES.contains(&unqualified(c)));
    match class {
        ErrorClass::Permanent if !refusal => ErrorClass::ServiceWide,
        other => other,
    }
}

/// `FMN_*_ATTEMPTS`-style bounded retries with exponential backoff and full jitter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Calls in all, the first included (at least 1).
    pub attempts: u32,
    /// The ceiling of the first wait; it doubles with each attempt...
    pub base: Duration,
    /// ...up to this.
    pub cap: Duration,
}

impl RetryPolicy {
    /// `attempts` calls, waits up to 100 ms, 200 ms, 400 ms... capped at 5 s.
    pub const fn attempts(attempts: u32) -> Self {
        Self {
            attempts,
            base: Duration::from_millis(100),
            cap: Duration::from_secs(5),
        }
    }

    /// Retries without a limit (loops that never give up: reconnecting, resending), waits
    /// from `base` doubling up to `cap`.
    pub const fn forever(base: Duration, cap: Duration) -> Self {
        Self {
            attempts: u32::MAX,
            base,
            cap,
        }
    }

    /// A wait after the `attempt`th consecutive failure with equal jitter: half the ceiling
    /// fixed, half random, so a loop never comes straight back (full jitter may wait nearly
    /// nothing) while many of them still spread out.
    pub fn equal_jitter(&self, attempt: u32) -> Duration {
        let half = self.ceiling(attempt) / 2;
        half + rand::rng().random_range(Duration::ZERO..=half)
    }

    /// The longest wait after the `attempt`th call (1-based).
    pub fn ceiling(&self, attempt: u32) -> Duration {
        self.base
            .saturating_mul(1u32 << attempt.clamp(1, 16).saturating_sub(1))
            .min(self.cap)
    }

    /// A fresh count of attempts, for loops that keep state between calls.
    pub fn start(&self) -> Attempts {
        Attempts {
            policy: *self,
            made: 0,
        }
    }

    /// Calls `op` (with the attempt number, from 1) until it succeeds, fails other than
    /// [`ErrorClass::Retryable`], or the attempts are spent; waits between calls. `what` names
    /// the call in the log.
    pub async fn run<T, E, F, Fut>(&self, what: &str, mut op: F) -> Result<T, E>
    where
        E: Classify + std::fmt::Display + Sync,
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let mut attempts = self.start();
        loop {
            let attempt = attempts.begin();
            match op(attempt).await {
                Ok(v) => return Ok(v),
                Err(e) => {
                    if !attempts.again(e.class(), what, &e).await {
                        return Err(e);
                    }
                }
            }
        }
    }
}

/// The attempts made so far under a [`RetryPolicy`].
#[derive(Clone, Debug)]
pub struct Attempts {
    policy: RetryPolicy,
    made: u32,
}

impl Attempts {
    /// Counts a call about to be made; returns its number (from 1).
    pub fn begin(&mut self) -> u32 {
        self.made += 1;
        self.made
    }

    pub fn made(&self) -> u32 {
        self.made
    }

    /// After a failed call of class `class`: when another is allowed (retryable, attempts
    /// left), logs it, waits the backoff and returns true.
    pub async fn again(
        &mut self,
        class: ErrorClass,
        what: &str,
        error: &(dyn std::fmt::Display + Sync),
    ) -> bool {
        if class != ErrorClass::Retryable || self.made >= self.policy.attempts.max(1) {
            return false;
        }
        tracing::warn!(call = what, attempt = self.made, %error, "failed; retrying after a backoff");
        self.wait().await;
        true
    }

    /// Waits the backoff after the current attempt (full jitter).
    pub async fn wait(&self) {
        let ceiling = self.policy.ceiling(self.made);
        let wait = rand::rng().random_range(Duration::ZERO..=ceiling);
        tokio::time::sleep(wait).await;
    }

    /// Whether attempts remain.
    pub fn left(&self) -> bool {
        self.made < self.policy.attempts.max(1)
    }
}

/// Waits the default policy's backoff after the `attempt`th failure (for loops with no limit,
/// such as a poller).
pub async fn backoff(attempt: u32) {
    RetryPolicy::attempts(u32::MAX)
        .start_at(attempt)
        .wait()
        .await
}

impl RetryPolicy {
    fn start_at(&self, made: u32) -> Attempts {
        Attempts {
            policy: *self,
            made,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_runtime_api::client::result::{ConnectorError, SdkError};
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::ErrorMetadata;

    fn service(code: &str, status: u16) -> ErrorClass {
        let raw = HttpResponse::new(StatusCode::try_from(status).unwrap(), SdkBody::empty());
        let err = aws_sdk_sesv2::operation::send_email::SendEmailError::generic(
            ErrorMetadata::builder().code(code).build(),
        );
        classify(&SdkError::service_error(err, raw))
    }

    fn dynamo(code: &str, status: u16) -> ErrorClass {
        let raw = HttpResponse::new(StatusCode::try_from(status).unwrap(), SdkBody::empty());
        let err = aws_sdk_dynamodb::operation::put_item::PutItemError::generic(
            ErrorMetadata::builder().code(code).build(),
        );
        classify(&SdkError::service_error(err, raw))
    }

    #[test]
    fn ses_account_conditions_are_service_wide() {
        for code in [
            "SendingPausedException",
            "AccountSuspendedException",
            "MailFromDomainNotVerifiedException",
            "NotFoundException",
        ] {
            assert_eq!(service(code, 400), ErrorClass::ServiceWide, "{code}");
        }
    }

    #[test]
    fn a_refused_mail_is_permanent() {
        assert_eq!(service("MessageRejected", 400), ErrorClass::Permanent);
        assert_eq!(service("BadRequestException", 400), ErrorClass::Permanent);
        assert_eq!(service("InvalidParameterValue", 400), ErrorClass::Permanent);
        assert_eq!(dynamo("ValidationException", 400), ErrorClass::Permanent);
    }

    #[test]
    fn throttling_conflicts_and_server_errors_are_retryable() {
        assert_eq!(
            service("TooManyRequestsException", 429),
            ErrorClass::Retryable
        );
        assert_eq!(
            service("LimitExceededException", 400),
            ErrorClass::Retryable
        );
        for code in [
            "ProvisionedThroughputExceededException",
            "RequestLimitExceeded",
            "ThrottlingException",
            "TransactionConflictException",
        ] {
            assert_eq!(dynamo(code, 400), ErrorClass::Retryable, "{code}");
        }
        // An unknown code: the status decides.
        assert_eq!(dynamo("SomethingNew", 503), ErrorClass::Retryable);
        assert_eq!(dynamo("SomethingNew", 400), ErrorClass::Permanent);
    }

    #[test]
    fn no_answer_is_retryable_a_bad_request_is_not() {
        type E = aws_sdk_sqs::operation::send_message_batch::SendMessageBatchError;
        let timeout: SdkError<E, HttpResponse> = SdkError::timeout_error("slow");
        assert_eq!(classify(&timeout), ErrorClass::Retryable);
        let io: SdkError<E, HttpResponse> =
            SdkError::dispatch_failure(ConnectorError::io("reset".into()));
        assert_eq!(classify(&io), ErrorClass::Retryable);
        let built: SdkError<E, HttpResponse> = SdkError::construction_failure("no queue url");
        assert_eq!(classify(&built), ErrorClass::Permanent);
        let garbled: SdkError<E, HttpResponse> = SdkError::response_error(
            "not XML",
            HttpResponse::new(StatusCode::try_from(502).unwrap(), SdkBody::empty()),
        );
        assert_eq!(classify(&garbled), ErrorClass::Retryable);
    }

    fn sqs_batch(code: &str, status: u16) -> ErrorClass {
        let raw = HttpResponse::new(StatusCode::try_from(status).unwrap(), SdkBody::empty());
        let err = aws_sdk_sqs::operation::send_message_batch::SendMessageBatchError::generic(
            ErrorMetadata::builder().code(code).build(),
        );
        classify_batch(&SdkError::service_error(err, raw))
    }

    #[test]
    fn batch_refusals_are_told_from_outages() {
        for code in [
            "BatchRequestTooLong",
            "AWS.SimpleQueueService.BatchRequestTooLong",
            "TooManyEntriesInBatchRequest",
            "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
            "BatchEntryIdsNotDistinct",
            "EmptyBatchRequest",
            "InvalidBatchEntryId",
        ] {
            assert_eq!(sqs_batch(code, 400), ErrorClass::Permanent, "{code}");
            assert_eq!(classify_batch_code(Some(code), None), ErrorClass::Permanent);
        }
        assert_eq!(sqs_batch("ThrottlingException", 400), ErrorClass::Retryable);
        assert_eq!(
            sqs_batch("AWS.SimpleQueueService.RequestThrottled", 403),
            ErrorClass::Retryable
        );
        assert_eq!(sqs_batch("InternalError", 500), ErrorClass::Retryable);
        assert_eq!(sqs_batch("ServiceUnavailable", 503), ErrorClass::Retryable);
        // Refused, but not for what the batch carries: sending it in parts would not help.
        for code in [
            "AWS.SimpleQueueService.NonExistentQueue",
            "AccessDenied",
            "InvalidClientTokenId",
        ] {
            assert_eq!(sqs_batch(code, 403), ErrorClass::ServiceWide, "{code}");
        }
        type E = aws_sdk_sqs::operation::send_message_batch::SendMessageBatchError;
        let timeout: SdkError<E, HttpResponse> = SdkError::timeout_error("slow");
        assert_eq!(classify_batch(&timeout), ErrorClass::Retryable);
        let built: SdkError<E, HttpResponse> = SdkError::construction_failure("no queue url");
        assert_ne!(classify_batch(&built), ErrorClass::Permanent);
    }

    #[test]
    fn equal_jitter_keeps_half_the_ceiling() {
        let p = RetryPolicy::forever(Duration::from_millis(200), Duration::from_secs(10));
        for attempt in [0, 1, 3, 7, 40] {
            let ceiling = p.ceiling(attempt);
            for _ in 0..50 {
                let wait = p.equal_jitter(attempt);
                assert!(
                    wait >= ceiling / 2 && wait <= ceiling,
                    "{attempt}: {wait:?}"
                );
            }
        }
        assert_eq!(p.ceiling(0), Duration::from_millis(200));
        assert_eq!(p.ceiling(6), Duration::from_millis(6400));
        assert_eq!(p.ceiling(7), Duration::from_secs(10));
    }

    #[test]
    fn backoff_grows_to_its_cap() {
        let p = RetryPolicy::attempts(5);
        assert_eq!(p.ceiling(1), Duration::from_millis(100));
        assert_eq!(p.ceiling(2), Duration::from_millis(200));
        assert_eq!(p.ceiling(30), Duration::from_secs(5));
    }

    #[derive(Debug)]
    struct E(ErrorClass);
    impl Classify for E {
        fn class(&self) -> ErrorClass {
            self.0
        }
    }
    impl std::fmt::Display for E {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0.as_str())
        }
    }

    #[tokio::test]
    async fn only_retryable_errors_are_retried_up_to_the_attempts() {
        let policy = RetryPolicy::attempts(3);
        let mut calls = 0;
        let r: Result<(), E> = policy
            .run("t", |_| {
                calls += 1;
                std::future::ready(Err(E(ErrorClass::Retryable)))
            })
            .await;
        assert!(r.is_err());
        assert_eq!(calls, 3);
        for class in [ErrorClass::Permanent, ErrorClass::ServiceWide] {
            let mut calls = 0;
            let _: Result<(), E> = policy
                .run("t", |_| {
                    calls += 1;
                    std::future::ready(Err(E(class)))
                })
                .await;
            assert_eq!(calls, 1, "{class:?} is not retried");
        }
    }
}
