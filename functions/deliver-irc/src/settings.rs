//! The bot's settings, from `FMN_IRC_*` variables (see the README's configuration table).

use std::time::Duration;

pub const DEFAULT_SERVER: &str = "127.0.0.1";
pub const DEFAULT_PORT: u16 = 6667;
pub const DEFAULT_NICK: &str = "fmn-bot";
/// Lines per second once the burst is spent: under the usual servers' limits (Libera/Solanum
/// throttles beyond about one line a second after a burst of five; ngIRCd reads about three
/// commands a second from a client), so the bot is never disconnected for flooding.
pub const DEFAULT_RATE: f64 = 2.0;
pub const DEFAULT_BURST: u32 = 5;
/// Seconds a batch may spend sending before the rest is left for the next invocation (the
/// template's function timeout is 60 s).
pub const DEFAULT_BATCH_SECONDS: u64 = 45;
/// How long connecting and registering may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the server may take to confirm our QUIT (and so every line before it).
pub const QUIT_TIMEOUT: Duration = Duration::from_secs(30);

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
    /// `FMN_IRC_PASSWORD`: identify to NickServ when set.
    pub password: Option<String>,
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
    fn default() -> Self {
        Self {
            server: DEFAULT_SERVER.into(),
            port: DEFAULT_PORT,
            tls: false,
            nick: DEFAULT_NICK.into(),
            password: None,
            rate: DEFAULT_RATE,
            burst: DEFAULT_BURST,
            batch_time: Duration::from_secs(DEFAULT_BATCH_SECONDS),
            lease: Duration::from_secs(300),
            public_url: fmn_aws::mail::DEFAULT_PUBLIC_URL.into(),
            connect_timeout: CONNECT_TIMEOUT,
            quit_timeout: QUIT_TIMEOUT,
        }
    }
}

fn var(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// A parsed variable; an unparsable one is logged and the default kept.
fn parsed<T: std::str::FromStr>(name: &str, default: T) -> T {
    match var(name) {
        None => default,
        Some(v) => v.parse().unwrap_or_else(|_| {
            tracing::error!(variable = name, value = %v, "not a valid value; using the default");
            default
        }),
    }
}

impl IrcSettings {
    pub fn from_env() -> Self {
        let d = Self::default();
        let tls = match var("FMN_IRC_TLS").map(|v| v.to_ascii_lowercase()) {
            None => d.tls,
            Some(v) => matches!(v.as_str(), "1" | "true" | "yes" | "on"),
        };
        let rate: f64 = parsed("FMN_IRC_RATE", d.rate);
        let burst: u32 = parsed("FMN_IRC_BURST", d.burst);
        Self {
            server: var("FMN_IRC_SERVER").unwrap_or(d.server),
            port: parsed("FMN_IRC_PORT", d.port),
            tls,
            nick: var("FMN_IRC_NICK").unwrap_or(d.nick),
            password: var("FMN_IRC_PASSWORD"),
            rate: if rate.is_finite() && rate > 0.0 {
                rate
            } else {
                d.rate
            },
            burst: burst.max(1),
            batch_time: Duration::from_secs(parsed("FMN_IRC_BATCH_SECONDS", DEFAULT_BATCH_SECONDS)),
            lease: Duration::from_secs(parsed("FMN_SEND_LEASE", 300u64)),
            public_url: var("FMN_PUBLIC_URL").unwrap_or(d.public_url),
            ..d
        }
    }
}
