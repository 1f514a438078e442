//! Mail settings from the environment, and sending through SES v2 with a few quick retries.

use std::time::Duration;

use fmn_core::render::MailContext;

use crate::delivery_records::send_lease;
use crate::retry::RetryPolicy;
use crate::ses::{send_raw, SesError};
use crate::vars::{ConfigError, Vars};

/// `FMN_FROM_ADDRESS` default (the template's default).
pub const DEFAULT_FROM_ADDRESS: &str = "notifications@fedoraproject.org";
/// `FMN_FROM_NAME` default.
pub const DEFAULT_FROM_NAME: &str = "Fedora Notifications";
/// `FMN_PUBLIC_URL` default: the local web-api.
pub const DEFAULT_PUBLIC_URL: &str = "http://127.0.0.1:8080";
/// `FMN_UNSUBSCRIBE_SECRET` default: fine locally, never in production (the template has no
/// default for it).
pub const DEFAULT_UNSUBSCRIBE_SECRET: &str = "fmn-local-unsubscribe-secret";
/// `FMN_SES_ATTEMPTS` default: tries per record within one invocation before handing it back.
pub const DEFAULT_SES_ATTEMPTS: u32 = 3;
/// `FMN_SES_SEND_RATE` default: SES's starting production quota, mails a second.
pub const DEFAULT_SES_SEND_RATE: f64 = 14.0;
/// `FMN_EMAIL_CONCURRENCY` default: the template's `EmailConcurrency` (SQS's minimum).
pub const DEFAULT_EMAIL_CONCURRENCY: u32 = 2;

/// Everything the mail-sending functions read from the environment.
#[derive(Clone, Debug)]
pub struct MailSettings {
    pub context: MailContext,
    /// See [`crate::delivery_records`].
    pub lease: Duration,
    /// SES calls per delivery within one invocation (throttling is retried with backoff).
    pub ses_attempts: u32,
    /// `FMN_SES_CONFIGURATION_SET`: the SES configuration set whose event destination
    /// publishes each mail's events to the mail-events queue (unset: no events, as locally).
    pub configuration_set: Option<String>,
    /// `FMN_SES_SEND_RATE`: the SES account's quota, mails a second, for all senders.
    pub account_send_rate: f64,
    /// `FMN_EMAIL_CONCURRENCY`: deliver-email instances at most (its event source's
    /// `MaximumConcurrency`). With the digest run they share the account's rate.
    pub email_concurrency: u32,
}

impl MailSettings {
    /// From `FMN_FROM_ADDRESS`, `FMN_FROM_NAME`, `FMN_PUBLIC_URL`, `FMN_UNSUBSCRIBE_SECRET`,
    /// `FMN_SEND_LEASE`, `FMN_SES_ATTEMPTS`, `FMN_SES_CONFIGURATION_SET`, `FMN_SES_SEND_RATE`
    /// and `FMN_EMAIL_CONCURRENCY` ([`Vars`]' policy).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(&Vars::from_env())
    }

    pub fn from_vars(vars: &Vars<'_>) -> Result<Self, ConfigError> {
        Ok(Self {
            context: MailContext {
                from_address: vars.text_or("FMN_FROM_ADDRESS", DEFAULT_FROM_ADDRESS),
                from_name: vars.text_or("FMN_FROM_NAME", DEFAULT_FROM_NAME),
                public_url: vars.text_or("FMN_PUBLIC_URL", DEFAULT_PUBLIC_URL),
                unsubscribe_secret: vars
                    .text_or("FMN_UNSUBSCRIBE_SECRET", DEFAULT_UNSUBSCRIBE_SECRET)
                    .into_bytes(),
            },
            lease: send_lease(vars)?,
            ses_attempts: vars.positive("FMN_SES_ATTEMPTS", DEFAULT_SES_ATTEMPTS)?,
            configuration_set: vars.text("FMN_SES_CONFIGURATION_SET"),
            account_send_rate: vars.positive("FMN_SES_SEND_RATE", DEFAULT_SES_SEND_RATE)?,
            email_concurrency: vars.positive("FMN_EMAIL_CONCURRENCY", DEFAULT_EMAIL_CONCURRENCY)?,
        })
    }

    /// One sender's share of the account's rate: the deliver-email instances and the digest
    /// run (one at a time) send at once, so each gets rate / (concurrency + 1). Sending within
    /// the share never meets SES's throttling, and a throttled send, when it happens anyway,
    /// waits its retry schedule in the queue instead of sleeping in the function.
    pub fn sender_rate(&self) -> f64 {
        self.account_send_rate / f64::from(self.email_concurrency.saturating_add(1))
    }
}

/// Sends rendered mail from the configured sender through SES v2, retrying throttling and
/// unavailability a few times within the call.
#[derive(Clone, Debug)]
pub struct Mailer {
    ses: aws_sdk_sesv2::Client,
    from_address: String,
    attempts: u32,
    configuration_set: Option<String>,
    /// This sender's share of the SES account's rate ([`MailSettings::sender_rate`]).
    pacer: crate::pacing::Pacer,
}

impl Mailer {
    /// From `settings`' sender and SES attempts.
    pub fn new(ses: aws_sdk_sesv2::Client, settings: &MailSettings) -> Self {
        Self {
            ses,
            from_address: settings.context.from_address.clone(),
            attempts: settings.ses_attempts,
            configuration_set: settings.configuration_set.clone(),
            // A burst of one second's share: SES measures its quota per second.
            pacer: crate::pacing::Pacer::new(
                settings.sender_rate(),
                settings.sender_rate().ceil() as u32,
            ),
        }
    }

    /// Sends `raw` (a whole MIME message) to `to`, retrying throttling and unavailability up to
    /// the configured attempts with exponential backoff and jitter; a rejection or a
    /// service-wide refusal is returned at once. Returns the SES message id.
    pub async fn send(&self, to: &str, raw: &[u8]) -> Result<String, SesError> {
        self.send_with(to, raw, Vec::new()).await
    }

    /// [`Mailer::send`] for deliveries with records (`record_keys`, see
    /// [`crate::delivery_records`]; several for a burst in one mail): the mail is tagged with
    /// them, so SES's events about the mail find the records.
    pub async fn send_recorded(
        &self,
        to: &str,
        raw: &[u8],
        record_keys: &[&str],
    ) -> Result<String, SesError> {
        let tags = crate::delivery_records::record_tags(record_keys);
        self.send_with(to, raw, tags).await
    }

    async fn send_with(
        &self,
        to: &str,
        raw: &[u8],
        tags: Vec<(String, String)>,
    ) -> Result<String, SesError> {
        let to = [to.to_string()];
        let options = crate::ses::SendOptions {
            configuration_set: self.configuration_set.clone(),
            tags,
        };
        RetryPolicy::attempts(self.attempts)
            .run("SES SendEmail", |_| async {
                self.pacer.take().await;
                send_raw(&self.ses, &self.from_address, &to, raw.to_vec(), &options).await
            })
            .await
    }
}
