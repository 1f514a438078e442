//! The bot's settings, from `FMN_MATRIX_*` variables (see the README's configuration table).

use std::time::Duration;

use fmn_aws::delivery_records::send_lease;
use fmn_aws::{ConfigError, Vars};

/// A homeserver on this machine (the tests start Synapse; see the README).
pub const DEFAULT_HOMESERVER: &str = "http://127.0.0.1:8008";
/// The function's timeout (the template's `Timeout`, 60 s).
pub const DEFAULT_FUNCTION_SECONDS: u64 = 60;
/// Seconds a batch may spend sending (rate-limit waits included) before the rest is left for
/// the next invocation.
pub const DEFAULT_BATCH_SECONDS: u64 = 30;
/// How long one request to the homeserver may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Left for the rest of the invocation (the last request, recording, answering Lambda).
const MARGIN: Duration = Duration::from_secs(5);

#[derive(Clone, Debug)]
pub struct MatrixSettings {
    /// `FMN_MATRIX_HOMESERVER`: the client-server API's base URL.
    pub homeserver: String,
    /// `FMN_MATRIX_ACCESS_TOKEN`: the bot account's access token (on AWS from Parameter Store).
    pub access_token: Option<String>,
    /// `FMN_MATRIX_BATCH_SECONDS`: sending time per batch.
    pub batch_time: Duration,
    /// `FMN_SEND_LEASE`: a delivery left `sending` longer than this is attempted again.
    pub lease: Duration,
    pub request_timeout: Duration,
}

impl Default for MatrixSettings {
    /// Every variable unset.
    fn default() -> Self {
        Self::from_vars(&Vars::from_lookup(|_| None)).expect("the defaults are valid")
    }
}

impl MatrixSettings {
    /// From the environment ([`Vars`]' policy: a set but invalid value is an error).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(&Vars::from_env())
    }

    pub fn from_vars(vars: &Vars<'_>) -> Result<Self, ConfigError> {
        let homeserver = vars.text_or("FMN_MATRIX_HOMESERVER", DEFAULT_HOMESERVER);
        let lower = homeserver.to_ascii_lowercase();
        if !(lower.starts_with("https://") || lower.starts_with("http://"))
            || reqwest::Url::parse(&homeserver).is_err()
        {
            return Err(ConfigError {
                name: "FMN_MATRIX_HOMESERVER".into(),
                value: homeserver,
                expected: "an http(s) URL of the homeserver's client-server API",
            });
        }
        let batch_secs = vars.positive("FMN_MATRIX_BATCH_SECONDS", DEFAULT_BATCH_SECONDS)?;
        let function_secs = vars.positive("FMN_FUNCTION_TIMEOUT", DEFAULT_FUNCTION_SECONDS)?;
        if Duration::from_secs(batch_secs) + REQUEST_TIMEOUT + MARGIN
            > Duration::from_secs(function_secs)
        {
            return Err(ConfigError {
                name: "FMN_MATRIX_BATCH_SECONDS".into(),
                value: batch_secs.to_string(),
                expected: "short enough that the batch, one more request (10 s) and 5 s more \
                           fit in FMN_FUNCTION_TIMEOUT",
            });
        }
        Ok(Self {
            homeserver: homeserver.trim_end_matches('/').to_string(),
            access_token: vars.text("FMN_MATRIX_ACCESS_TOKEN"),
            batch_time: Duration::from_secs(batch_secs),
            lease: send_lease(vars)?,
            request_timeout: REQUEST_TIMEOUT,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_batch_fits_in_the_function_timeout_and_the_homeserver_is_a_url() {
        let d = MatrixSettings::default();
        assert!(
            d.batch_time + d.request_timeout + MARGIN
                <= Duration::from_secs(DEFAULT_FUNCTION_SECONDS)
        );
        assert_eq!(d.homeserver, DEFAULT_HOMESERVER);
        let long =
            Vars::from_lookup(|k| (k == "FMN_MATRIX_BATCH_SECONDS").then(|| "50".to_string()));
        assert_eq!(
            MatrixSettings::from_vars(&long).unwrap_err().name,
            "FMN_MATRIX_BATCH_SECONDS"
        );
        let bad = Vars::from_lookup(|k| (k == "FMN_MATRIX_HOMESERVER").then(|| "fedora.im".into()));
        assert_eq!(
            MatrixSettings::from_vars(&bad).unwrap_err().name,
            "FMN_MATRIX_HOMESERVER"
        );
    }
}
