//! Destination health on AWS: the mail-events function is its one writer. It takes SES's
//! events (bounce, complaint, delivery; `crate::ses_events`) and the senders' own reports of
//! deliveries they gave up ([`GaveUpReport`], on the same queue), records them in the
//! destination's [`DeliveryHealth`] in the preferences, and when a destination is stopped,
//! queues a notice to another of the user's e-mail destinations.

use fmn_core::health::{Change, HealthPolicy, Outcome, Stopped};
use serde::{Deserialize, Serialize};

use crate::dynamo::DynamoError;
use crate::job_queue::{enqueue_jobs, QueuedJob};
use crate::ownership_store::OwnershipStore;
use crate::prefs_store::{PrefsStore, PrefsStoreError};
use crate::sqs::{send_all, OutgoingMessage, SqsError};
use crate::vars::{ConfigError, Vars};

pub use fmn_core::health::DeliveryHealth;

/// A sender's report that it gave a delivery up (its retry schedule was spent, or the address
/// was refused). The wire format on the mail-events queue: `{"fmn_gave_up": {...}}`, beside
/// SES's events, which never have that key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GaveUpReport {
    pub user: String,
    pub destination: String,
    pub reason: String,
    /// Unix seconds.
    pub at: i64,
}

const GAVE_UP_KEY: &str = "fmn_gave_up";

impl GaveUpReport {
    pub fn to_body(&self) -> String {
        serde_json::json!({ GAVE_UP_KEY: self }).to_string()
    }

    /// The report in a queue record's body; `None` when the body is something else (an SES
    /// event).
    pub fn from_body(body: &str) -> Option<Self> {
        let value: serde_json::Value = serde_json::from_str(body).ok()?;
        serde_json::from_value(value.get(GAVE_UP_KEY)?.clone()).ok()
    }

    /// Puts the report on the mail-events queue at `url`.
    pub async fn send(&self, sqs: &aws_sdk_sqs::Client, url: &str) -> Result<(), SqsError> {
        let id = format!("gave-up-{}-{}-{}", self.user, self.destination, self.at);
        send_all(sqs, url, &[OutgoingMessage::new(id, self.to_body())]).await
    }
}

/// `FMN_SOFT_BOUNCE_LIMIT` (default 3) and `FMN_FAILING_DAYS` (default 3).
pub fn policy_from(vars: &Vars<'_>) -> Result<HealthPolicy, ConfigError> {
    let defaults = HealthPolicy::default();
    let days: u32 = vars.positive(
        "FMN_FAILING_DAYS",
        (defaults.failing_limit_secs / 86_400) as u32,
    )?;
    Ok(HealthPolicy {
        soft_bounce_limit: vars.positive("FMN_SOFT_BOUNCE_LIMIT", defaults.soft_bounce_limit)?,
        failing_limit_secs: i64::from(days) * 86_400,
    })
}

#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    #[error(transparent)]
    Prefs(#[from] PrefsStoreError),
    /// Reading the account's FAS addresses.
    #[error(transparent)]
    Accounts(#[from] DynamoError),
    #[error(transparent)]
    Sqs(#[from] SqsError),
}

impl crate::retry::Classify for HealthError {
    fn class(&self) -> crate::retry::ErrorClass {
        match self {
            HealthError::Prefs(e) => e.class(),
            HealthError::Accounts(e) => e.class(),
            HealthError::Sqs(e) => e.class(),
        }
    }
}

impl From<HealthError> for crate::batch::RecordError {
    fn from(e: HealthError) -> Self {
        use crate::retry::Classify;
        Self::of_class(e.class(), e.to_string())
    }
}

/// Records outcomes in destinations' health.
#[derive(Clone, Debug)]
pub struct HealthRecorder {
    prefs: PrefsStore,
    /// The FAS accounts, for the address a bouncing Fedora alias falls back to.
    accounts: OwnershipStore,
    sqs: aws_sdk_sqs::Client,
    /// Where stop notices go (the email queue).
    email_queue_url: String,
    policy: HealthPolicy,
}

impl HealthRecorder {
    pub fn new(
        prefs: PrefsStore,
        accounts: OwnershipStore,
        sqs: aws_sdk_sqs::Client,
        email_queue_url: String,
        policy: HealthPolicy,
    ) -> Self {
        Self {
            prefs,
            accounts,
            sqs,
            email_queue_url,
            policy,
        }
    }

    /// Records `outcome` (seen at `at`, unix seconds) for `user`'s destination `destination`
    /// (`fmn_core::health::record_outcome`: `recipients` are the addresses the mail went to,
    /// when known); a user or destination that no longer exists changes nothing. A stop queues
    /// its notice.
    pub async fn record(
        &self,
        user: &str,
        destination: &str,
        outcome: &Outcome,
        recipients: Option<&[String]>,
        at: i64,
    ) -> Result<Change, HealthError> {
        let fas_emails = self.fallback_addresses(user, outcome).await?;
        let mut change = Change::None;
        let written = self
            .prefs
            .update_if(user, |prefs| {
                change = fmn_core::health::record_outcome(
                    prefs,
                    destination,
                    outcome,
                    recipients,
                    at,
                    &self.policy,
                    &fas_emails,
                );
                Ok::<_, PrefsStoreError>(change != Change::None)
            })
            .await?;
        if let (Change::Stopped(stopped), Some(prefs)) = (&change, &written) {
            self.notify(prefs, destination, stopped).await?;
        }
        Ok(change)
    }

    /// The account's FAS addresses when `outcome` could move a Fedora alias to one of them (a
    /// hard bounce): read only then, and an account FAS does not know (never synced) has none.
    async fn fallback_addresses(
        &self,
        user: &str,
        outcome: &Outcome,
    ) -> Result<Vec<String>, HealthError> {
        if !matches!(outcome, Outcome::HardBounce(_)) {
            return Ok(Vec::new());
        }
        Ok(self
            .accounts
            .account(user)
            .await?
            .map(|a| a.emails)
            .unwrap_or_default())
    }

    async fn notify(
        &self,
        prefs: &fmn_core::prefs::UserPrefs,
        destination: &str,
        stopped: &Stopped,
    ) -> Result<(), HealthError> {
        let Some(d) = prefs.destination(destination) else {
            return Ok(());
        };
        let Some(job) = fmn_core::health::stop_notice(prefs, d, stopped) else {
            tracing::info!(user = %prefs.name, destination, "destination stopped; no other e-mail destination to tell");
            return Ok(());
        };
        let body = serde_json::to_string(&job).expect("a job serializes");
        enqueue_jobs(
            &self.sqs,
            &self.email_queue_url,
            &[QueuedJob {
                job_id: job.job_id.clone(),
                body,
            }],
        )
        .await?;
        tracing::info!(user = %prefs.name, destination, notice_to = %job.destination.id, "destination stopped; notice queued");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_reads_back_and_an_ses_event_is_not_one() {
        let r = GaveUpReport {
            user: "alice".into(),
            destination: "irc-2".into(),
            reason: "gave up after 6 tries".into(),
            at: 5,
        };
        assert_eq!(GaveUpReport::from_body(&r.to_body()), Some(r));
        assert_eq!(GaveUpReport::from_body(r#"{"eventType":"Bounce"}"#), None);
        assert_eq!(GaveUpReport::from_body("not json"), None);
    }

    #[test]
    fn the_policy_reads_its_variables() {
        let vars = Vars::from_lookup(|k| match k {
            "FMN_FAILING_DAYS" => Some("5".into()),
            _ => None,
        });
        let p = policy_from(&vars).unwrap();
        assert_eq!(p.failing_limit_secs, 5 * 86_400);
        assert_eq!(p.soft_bounce_limit, 3);
        let bad = Vars::from_lookup(|k| (k == "FMN_SOFT_BOUNCE_LIMIT").then(|| "0".into()));
        assert!(policy_from(&bad)
            .unwrap_err()
            .to_string()
            .contains("FMN_SOFT_BOUNCE_LIMIT"));
    }
}
