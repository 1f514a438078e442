//! Mail settings from the environment, and sending through SES v2 with a few quick retries.

use std::time::Duration;

use fmn_core::render::MailContext;

use crate::ses::{send_raw, SesError};

/// `FMN_FROM_ADDRESS` default (the template's default).
pub const DEFAULT_FROM_ADDRESS: &str = "notifications@fedoraproject.org";
/// `FMN_FROM_NAME` default.
pub const DEFAULT_FROM_NAME: &str = "Fedora Notifications";
/// `FMN_PUBLIC_URL` default: the local web-api.
pub const DEFAULT_PUBLIC_URL: &str = "http://127.0.0.1:8080";
/// `FMN_UNSUBSCRIBE_SECRET` default: fine locally, never in production (the template has no
/// default for it).
pub const DEFAULT_UNSUBSCRIBE_SECRET: &str = "fmn-local-unsubscribe-secret";
/// `FMN_SEND_LEASE` default, seconds: a `sending` record older than this is sent again.
pub const DEFAULT_SEND_LEASE_SECS: u64 = 300;
/// `FMN_SES_ATTEMPTS` default: tries per record within one invocation before handing it back.
pub const DEFAULT_SES_ATTEMPTS: u32 = 3;

/// Everything the mail-sending functions read from the environment.
#[derive(Clone, Debug)]
pub struct MailSettings {
    pub context: MailContext,
    /// See [`crate::delivery_records`].
    pub lease: Duration,
    /// SES calls per delivery within one invocation (throttling is retried with backoff).
    pub ses_attempts: u32,
}

impl MailSettings {
    /// From `FMN_FROM_ADDRESS`, `FMN_FROM_NAME`, `FMN_PUBLIC_URL`, `FMN_UNSUBSCRIBE_SECRET`,
    /// `FMN_SEND_LEASE` and `FMN_SES_ATTEMPTS`; a missing or unparsable value takes the default
    /// (logged).
    pub fn from_env() -> Self {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let number = |k: &str, default: u64| -> u64 {
            match var(k).map(|v| v.trim().parse::<u64>()) {
                None => default,
                Some(Ok(v)) if v > 0 => v,
                Some(_) => {
                    tracing::warn!(
                        variable = k,
                        default,
                        "not a positive integer; using the default"
                    );
                    default
                }
            }
        };
        Self {
            context: MailContext {
                from_address: var("FMN_FROM_ADDRESS")
                    .unwrap_or_else(|| DEFAULT_FROM_ADDRESS.into()),
                from_name: var("FMN_FROM_NAME").unwrap_or_else(|| DEFAULT_FROM_NAME.into()),
                public_url: var("FMN_PUBLIC_URL").unwrap_or_else(|| DEFAULT_PUBLIC_URL.into()),
                unsubscribe_secret: var("FMN_UNSUBSCRIBE_SECRET")
                    .unwrap_or_else(|| DEFAULT_UNSUBSCRIBE_SECRET.into())
                    .into_bytes(),
            },
            lease: Duration::from_secs(number("FMN_SEND_LEASE", DEFAULT_SEND_LEASE_SECS)),
            ses_attempts: number("FMN_SES_ATTEMPTS", DEFAULT_SES_ATTEMPTS.into()) as u32,
        }
    }
}

/// Sends a rendered mail, retrying throttling and unavailability up to `attempts` times with
/// exponential backoff and jitter; a rejection is returned at once.
pub async fn send_with_backoff(
    client: &aws_sdk_sesv2::Client,
    from: &str,
    to: &str,
    raw: &[u8],
    attempts: u32,
) -> Result<String, SesError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match send_raw(client, from, &[to.to_string()], raw.to_vec()).await {
            Err(SesError::Unavailable(reason)) if attempt < attempts.max(1) => {
                tracing::warn!(attempt, %reason, "SES unavailable or throttling; retrying");
                crate::sqs::backoff(attempt).await;
            }
            other => return other,
        }
    }
}
