//! The bot's settings, from `FMN_IRC_*` variables (see the README's configuration table).

use std::time::Duration;

use fmn_aws::delivery_records::send_lease;
use fmn_aws::{ConfigError, Vars};

pub const DEFAULT_SERVER: &str = "127.0.0.1";
pub const DEFAULT_PORT: u16 = 6667;
pub const DEFAULT_NICK: &str = "fmn-bot";
/// The services' nick that answers `INFO <nick>` (Atheme's and Anope's name).
pub const DEFAULT_NICKSERV: &str = "NickServ";
/// How long services may take to answer whether a nick is registered.
pub const NICKSERV_TIMEOUT: Duration = Duration::from_secs(10);
/// Lines per second once the burst is spent: what Libera (Solanum) tolerates after a burst of
/// five, so the bot is never disconnected for flooding there (ngIRCd reads about three
/// commands a second from a client).
pub const DEFAULT_RATE: f64 = 1.0;
pub const DEFAULT_BURST: u32 = 5;
/// The function's timeout (the template's `Timeout`, 60 s); connecting, the batch's sending
/// time and the QUIT must fit in it, or a run killed by Lambda repeats its lines.
pub const DEFAULT_FUNCTION_SECONDS: u64 = 60;
/// Seconds a batch may spend sending before the rest is left for the next invocation.
pub const DEFAULT_BATCH_SECONDS: u64 = 30;
/// How long connecting and registering may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// How long the server may take to confirm our QUIT (and so every line before it).
pub const QUIT_TIMEOUT: Duration = Duration::from_secs(10);
/// Left for the rest of the invocation (recording the deliveries, answering Lambda).
const MARGIN: Duration = Duration::from_secs(3);

#[derive(Clone, Debug)]
pub struct IrcSettings {
    /// `FMN_IRC_SERVER`
    pub server: String,
    /// `FMN_IRC_PORT`
    pub port: u16,
    /// `FMN_IRC_TLS`
    pub tls: bool,
    /// `FMN_IRC_NICK`
    pub nick: String,
    /// `FMN_IRC_CA_FILE`: PEM certificates trusted besides the public roots (webpki's and the
    /// system's), for a private or test CA.
    pub ca_file: Option<String>,
    /// `FMN_IRC_PASSWORD`: the bot's services password (log in when set).
    pub password: Option<String>,
    /// `FMN_IRC_ACCOUNT`: the services account (default: the nick).
    pub account: String,
    /// `FMN_IRC_SASL`: log in with SASL PLAIN before registering (else `NickServ IDENTIFY`
    /// after the welcome). Only used with a password.
    pub sasl: bool,
    /// `FMN_IRC_REQUIRE_REGISTERED_NICK`: send a confirmation only to a nick registered with
    /// services (asked with `INFO <nick>`); default on when the bot has a password.
    pub require_registered_nick: bool,
    /// `FMN_IRC_NICKSERV`: who answers `INFO`.
    pub nickserv: String,
    pub nickserv_timeout: Duration,
    /// `FMN_IRC_RATE`: lines per second, sustained.
    pub rate: f64,
    /// `FMN_IRC_BURST`: lines sent at once after a quiet spell.
    pub burst: u32,
    /// `FMN_IRC_BATCH_SECONDS`: sending time per batch.
    pub batch_time: Duration,
    /// `FMN_SEND_LEASE`: a delivery left `sending` longer than this is attempted again.
    pub lease: Duration,
    /// `FMN_PUBLIC_URL`
    pub public_url: String,
    pub connect_timeout: Duration,
    pub quit_timeout: Duration,
}

impl Default for IrcSettings {
    /// Every variable unset.
    fn default() -> Self {
        Self::from_vars(&Vars::from_lookup(|_| None)).expect("the defaults are valid")
    }
}

impl IrcSettings {
    /// From the environment ([`Vars`]' policy: a set but invalid value is an error).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(&Vars::from_env())
    }

    pub fn from_vars(vars: &Vars<'_>) -> Result<Self, ConfigError> {
        let rate: f64 = vars.positive("FMN_IRC_RATE", DEFAULT_RATE)?;
        if !rate.is_finite() {
            return Err(ConfigError {
                name: "FMN_IRC_RATE".into(),
                value: rate.to_string(),
                expected: "a finite number of lines per second",
            });
        }
        let batch_secs = vars.positive("FMN_IRC_BATCH_SECONDS", DEFAULT_BATCH_SECONDS)?;
        let function_secs = vars.positive("FMN_FUNCTION_TIMEOUT", DEFAULT_FUNCTION_SECONDS)?;
        let needed = Duration::from_secs(batch_secs) + CONNECT_TIMEOUT + QUIT_TIMEOUT + MARGIN;
        if needed > Duration::from_secs(function_secs) {
            return Err(ConfigError {
                name: "FMN_IRC_BATCH_SECONDS".into(),
                value: batch_secs.to_string(),
                expected:
                    "short enough that connecting (15 s), the batch, the QUIT (10 s) and 3 s \
                           more fit in FMN_FUNCTION_TIMEOUT",
            });
        }
        let ca_file = vars.text("FMN_IRC_CA_FILE");
        if let Some(path) = &ca_file {
            let pem = std::fs::read_to_string(path).unwrap_or_default();
            if !pem.contains("-----BEGIN CERTIFICATE-----") {
                return Err(ConfigError {
                    name: "FMN_IRC_CA_FILE".into(),
                    value: path.clone(),
                    expected: "a readable file of PEM certificates",
                });
            }
        }
        let nick = vars.text_or("FMN_IRC_NICK", DEFAULT_NICK);
        let password = vars.text("FMN_IRC_PASSWORD");
        Ok(Self {
            server: vars.text_or("FMN_IRC_SERVER", DEFAULT_SERVER),
            port: vars.positive("FMN_IRC_PORT", DEFAULT_PORT)?,
            tls: vars.flag("FMN_IRC_TLS", false)?,
            ca_file,
            account: vars.text_or("FMN_IRC_ACCOUNT", &nick),
            sasl: vars.flag("FMN_IRC_SASL", true)?,
            require_registered_nick: vars
                .flag("FMN_IRC_REQUIRE_REGISTERED_NICK", password.is_some())?,
            nickserv: vars.text_or("FMN_IRC_NICKSERV", DEFAULT_NICKSERV),
            nickserv_timeout: NICKSERV_TIMEOUT,
            nick,
            password,
            rate,
            burst: vars.positive("FMN_IRC_BURST", DEFAULT_BURST)?,
            batch_time: Duration::from_secs(batch_secs),
            lease: send_lease(vars)?,
            public_url: vars.text_or("FMN_PUBLIC_URL", fmn_aws::mail::DEFAULT_PUBLIC_URL),
            connect_timeout: CONNECT_TIMEOUT,
            quit_timeout: QUIT_TIMEOUT,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_batch_fits_in_the_function_timeout() {
        let d = IrcSettings::default();
        assert!(
            d.batch_time + d.connect_timeout + d.quit_timeout + MARGIN
                <= Duration::from_secs(DEFAULT_FUNCTION_SECONDS)
        );
        assert_eq!(d.rate, 1.0, "Libera's pace");
        let long = Vars::from_lookup(|k| (k == "FMN_IRC_BATCH_SECONDS").then(|| "45".to_string()));
        assert_eq!(
            IrcSettings::from_vars(&long).unwrap_err().name,
            "FMN_IRC_BATCH_SECONDS"
        );
        let longer_function = Vars::from_lookup(|k| match k {
            "FMN_IRC_BATCH_SECONDS" => Some("200".to_string()),
            "FMN_FUNCTION_TIMEOUT" => Some("300".to_string()),
            _ => None,
        });
        assert!(IrcSettings::from_vars(&longer_function).is_ok());
    }

    #[test]
    fn tls_takes_yes_and_refuses_nonsense() {
        let yes = Vars::from_lookup(|k| (k == "FMN_IRC_TLS").then(|| "yes".to_string()));
        assert!(IrcSettings::from_vars(&yes).unwrap().tls);
        let bad = Vars::from_lookup(|k| (k == "FMN_IRC_TLS").then(|| "sure".to_string()));
        let e = IrcSettings::from_vars(&bad).unwrap_err();
        assert_eq!(e.name, "FMN_IRC_TLS");
    }

    #[test]
    fn a_password_turns_on_sasl_and_the_nick_check() {
        let d = IrcSettings::default();
        assert!(!d.require_registered_nick, "no services locally");
        assert_eq!(d.account, DEFAULT_NICK);
        let with = Vars::from_lookup(|k| match k {
            "FMN_IRC_PASSWORD" => Some("pw".to_string()),
            "FMN_IRC_NICK" => Some("bot".to_string()),
            _ => None,
        });
        let s = IrcSettings::from_vars(&with).unwrap();
        assert!(s.sasl && s.require_registered_nick);
        assert_eq!(s.account, "bot");
        let off = Vars::from_lookup(|k| match k {
            "FMN_IRC_PASSWORD" => Some("pw".to_string()),
            "FMN_IRC_REQUIRE_REGISTERED_NICK" => Some("no".to_string()),
            _ => None,
        });
        assert!(
            !IrcSettings::from_vars(&off)
                .unwrap()
                .require_registered_nick
        );
    }

    #[test]
    fn a_ca_file_must_hold_certificates() {
        let missing = Vars::from_lookup(|k| {
            (k == "FMN_IRC_CA_FILE").then(|| "/nonexistent/ca.pem".to_string())
        });
        assert_eq!(
            IrcSettings::from_vars(&missing).unwrap_err().name,
            "FMN_IRC_CA_FILE"
        );
    }
}
