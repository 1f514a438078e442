//! Settings, from `FMN_*` environment variables.

use std::time::Duration;

/// How the bridge runs.
#[derive(Clone, Debug, PartialEq)]
pub struct BridgeConfig {
    /// `FMN_FEDMSG_ENDPOINTS`: comma-separated ZeroMQ endpoints; empty replays the sample.
    pub endpoints: Vec<String>,
    /// `FMN_REPLAY_RATE`: messages per second when replaying the sample (default 10).
    pub replay_rate: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{var}: {reason}")]
    Invalid { var: &'static str, reason: String },
}

impl BridgeConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let endpoints = get("FMN_FEDMSG_ENDPOINTS")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        let replay_rate = match get("FMN_REPLAY_RATE") {
            None => 10.0,
            Some(v) => v
                .parse::<f64>()
                .ok()
                .filter(|r| *r > 0.0 && r.is_finite())
                .ok_or_else(|| ConfigError::Invalid {
                    var: "FMN_REPLAY_RATE",
                    reason: format!("`{v}` is not a positive number of messages per second"),
                })?,
        };
        Ok(Self {
            endpoints,
            replay_rate,
        })
    }

    pub fn replay_interval(&self) -> Duration {
        Duration::from_secs_f64(1.0 / self.replay_rate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_replay_the_sample() {
        let c = BridgeConfig::from_lookup(|_| None).unwrap();
        assert!(c.endpoints.is_empty());
        assert_eq!(c.replay_rate, 10.0);
    }

    #[test]
    fn endpoints_are_a_comma_list() {
        let c = BridgeConfig::from_lookup(|k| {
            (k == "FMN_FEDMSG_ENDPOINTS").then(|| " tcp://a:1, ,tcp://b:2 ".to_string())
        })
        .unwrap();
        assert_eq!(c.endpoints, ["tcp://a:1", "tcp://b:2"]);
    }

    #[test]
    fn a_bad_rate_is_a_clear_error() {
        let err =
            BridgeConfig::from_lookup(|k| (k == "FMN_REPLAY_RATE").then(|| "fast".to_string()))
                .unwrap_err();
        assert!(err.to_string().contains("FMN_REPLAY_RATE"));
    }
}
