//! Settings, from `FMN_*` environment variables; every one has a default that works locally.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use fmn_aws::Vars;

/// How the bridge runs.
#[derive(Clone, Debug, PartialEq)]
pub struct BridgeConfig {
    /// `FMN_FEDMSG_ENDPOINTS`: comma-separated ZeroMQ endpoints.
    pub endpoints: Vec<String>,
    /// `FMN_FEDMSG_TOPICS`: comma-separated topic prefixes to subscribe to (default: all).
    pub topics: Vec<String>,
    /// `FMN_REPLAY_RATE`: messages per second when replaying the sample (default 10).
    pub replay_rate: f64,
    /// `FMN_REPLAY_SAMPLE` (default false): with no bus configured, replay the bundled sample
    /// of real messages into the ingest queue (a demo). Off, the binary refuses to start
    /// without a bus, so a deployment missing its settings never feeds samples to real users.
    pub replay_sample: bool,
    /// `FMN_MAX_BODY_BYTES`: larger envelopes are invalid (default 1 MiB).
    pub max_body_bytes: usize,
    /// `FMN_DEDUPE_WINDOW` (seconds, default 600): a `msg_id` seen again within it is dropped.
    pub dedupe_window: Duration,
    /// `FMN_DEDUPE_CAPACITY` (default 200000): ids remembered at most.
    pub dedupe_capacity: usize,
    /// `FMN_BATCH_LINGER_MS` (default 20): how long a partial batch waits for more.
    pub batch_linger: Duration,
    /// `FMN_SEND_CONCURRENCY` (default 8): `SendMessageBatch` calls in flight.
    pub send_concurrency: usize,
    /// `FMN_BUFFER_MESSAGES` (default 2000): messages held in memory before spooling to disk.
    pub buffer_messages: usize,
    /// `FMN_BUFFER_BYTES` (default 8 MiB): bytes held in memory before spooling to disk.
    pub buffer_bytes: usize,
    /// `FMN_SPOOL_DIR` (default `$FMN_LOCAL_DIR/spool/ingest-bridge`, i.e.
    /// `./.local/spool/ingest-bridge`).
    pub spool_dir: PathBuf,
    /// `FMN_SPOOL_MAX_BYTES` (default 1 GiB).
    pub spool_max_bytes: u64,
    /// `FMN_SHUTDOWN_GRACE` (seconds, default 10): time to flush the buffer to SQS on SIGTERM
    /// before saving the rest to the spool.
    pub shutdown_grace: Duration,
    /// `FMN_BRIDGE_METRICS_ADDR` (default `127.0.0.1:9108`; `off` disables): `/healthz` and
    /// `/metrics`.
    pub metrics_addr: Option<SocketAddr>,
    /// `FMN_ZMQ_HEARTBEAT` (seconds, default 10): ZeroMQ heartbeat interval; a peer silent for
    /// three intervals is dropped and reconnected.
    pub heartbeat: Duration,
    /// `FMN_IDLE_RECONNECT` (seconds, default 600; 0 disables): re-create an endpoint's socket
    /// when it has been silent this long.
    pub idle_reconnect: Option<Duration>,
    /// `FMN_VALIDATE_SIGNATURES` (default false): refuse messages without a valid x509
    /// signature.
    pub validate_signatures: bool,
    /// `FMN_FEDMSG_CA`: PEM file of the CA that signs publishers' certificates (required when
    /// validating signatures).
    pub ca_file: Option<PathBuf>,
    /// The fedora-messaging (AMQP) source, when `FMN_AMQP_URL` is set.
    pub amqp: Option<AmqpConfig>,
}

/// The fedora-messaging source: a durable queue on a RabbitMQ broker bound to its topic
/// exchange.
#[derive(Clone, Debug, PartialEq)]
pub struct AmqpConfig {
    /// `FMN_AMQP_URL`: `amqps://host/%2Fvhost` (Fedora's public broker:
    /// `amqps://rabbitmq.fedoraproject.org/%2Fpublic_pubsub`). With a client certificate and no
    /// `auth_mechanism` in the URL, SASL EXTERNAL is used.
    pub url: String,
    /// `FMN_AMQP_QUEUE` (default `fmn-ingest`): the durable queue to consume. Fedora's public
    /// vhost only allows UUID names: make one once (`uuidgen`) and keep it, since the queue
    /// holds what arrives while the bridge is down.
    pub queue: String,
    /// `FMN_AMQP_EXCHANGE` (default `amq.topic`): where fedora-messaging publishes.
    pub exchange: String,
    /// `FMN_AMQP_BINDINGS` (comma-separated routing keys, default `#`: every topic).
    pub bindings: Vec<String>,
    /// `FMN_AMQP_PREFETCH` (default 1000): deliveries in flight (unacknowledged) at most. Acks
    /// wait for SQS, so the window must cover a few SQS round trips of batches.
    pub prefetch: u16,
    /// `FMN_AMQP_PASSIVE` (default false): the broker owns the queue and its bindings (a
    /// queue Fedora Infrastructure made): only check that it exists, declare and bind nothing.
    pub passive: bool,
    /// `FMN_AMQP_CA`: PEM bundle of the CAs to trust (every certificate in it; Fedora's
    /// `cacert.pem` holds two during a rotation). Unset: the public web roots.
    pub ca_file: Option<PathBuf>,
    /// `FMN_AMQP_CERT` / `FMN_AMQP_KEY`: the client certificate and its key (PEM), for TLS
    /// client authentication (SASL EXTERNAL). Both or neither.
    pub client_cert: Option<(PathBuf, PathBuf)>,
}

pub use fmn_aws::ConfigError;

fn invalid(name: &str, value: impl Into<String>, expected: &'static str) -> ConfigError {
    ConfigError {
        name: name.to_string(),
        value: value.into(),
        expected,
    }
}

/// A comma-separated list, blanks dropped.
fn list(v: Option<String>) -> Vec<String> {
    v.unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// A number of zero or more (zero meaning "none" or "off" for that setting), or `default`.
fn non_negative(vars: &Vars<'_>, name: &str, default: f64) -> Result<f64, ConfigError> {
    let v: f64 = vars.parsed(name, default, "a number (0 or more)")?;
    if v.is_finite() && v >= 0.0 {
        Ok(v)
    } else {
        Err(invalid(name, v.to_string(), "a number (0 or more)"))
    }
}

impl BridgeConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let vars = Vars::from_lookup(get);
        let v = &vars;
        let secs = |name: &str, default: f64| -> Result<Duration, ConfigError> {
            Ok(Duration::from_secs_f64(non_negative(v, name, default)?))
        };
        let spool_dir = match v.text("FMN_SPOOL_DIR") {
            Some(d) => PathBuf::from(d),
            None => {
                PathBuf::from(v.text_or("FMN_LOCAL_DIR", "./.local")).join("spool/ingest-bridge")
            }
        };
        let metrics_addr = match v.text("FMN_BRIDGE_METRICS_ADDR") {
            None => Some(SocketAddr::from(([127, 0, 0, 1], 9108))),
            Some(a) if a.eq_ignore_ascii_case("off") => None,
            Some(a) => Some(a.parse().map_err(|_| {
                invalid(
                    "FMN_BRIDGE_METRICS_ADDR",
                    a,
                    "an address like 127.0.0.1:9108 (or `off`)",
                )
            })?),
        };
        let validate_signatures = v.flag("FMN_VALIDATE_SIGNATURES", false)?;
        let ca_file = v.text("FMN_FEDMSG_CA").map(PathBuf::from);
        if validate_signatures && ca_file.is_none() {
            return Err(invalid(
                "FMN_FEDMSG_CA",
                "",
                "set: FMN_VALIDATE_SIGNATURES is on, name the CA's PEM file",
            ));
        }
        let idle = secs("FMN_IDLE_RECONNECT", 600.0)?;
        let amqp = match v.text("FMN_AMQP_URL") {
            None => None,
            Some(url) => Some(AmqpConfig::from_vars(v, url)?),
        };
        Ok(Self {
            endpoints: list(v.text("FMN_FEDMSG_ENDPOINTS")),
            topics: list(v.text("FMN_FEDMSG_TOPICS")),
            replay_rate: v.positive("FMN_REPLAY_RATE", 10.0)?,
            replay_sample: v.flag("FMN_REPLAY_SAMPLE", false)?,
            max_body_bytes: v.positive("FMN_MAX_BODY_BYTES", 1024 * 1024)?,
            dedupe_window: secs("FMN_DEDUPE_WINDOW", 600.0)?,
            dedupe_capacity: v.positive("FMN_DEDUPE_CAPACITY", 200_000)?,
            batch_linger: Duration::from_secs_f64(
                non_negative(v, "FMN_BATCH_LINGER_MS", 20.0)? / 1000.0,
            ),
            send_concurrency: v.positive("FMN_SEND_CONCURRENCY", 8)?,
            buffer_messages: v.positive("FMN_BUFFER_MESSAGES", 2000)?,
            buffer_bytes: v.positive("FMN_BUFFER_BYTES", 8 * 1024 * 1024)?,
            spool_dir,
            spool_max_bytes: v.positive("FMN_SPOOL_MAX_BYTES", 1024 * 1024 * 1024)?,
            shutdown_grace: secs("FMN_SHUTDOWN_GRACE", 10.0)?,
            metrics_addr,
            heartbeat: v
                .seconds("FMN_ZMQ_HEARTBEAT")?
                .unwrap_or(Duration::from_secs(10)),
            idle_reconnect: (!idle.is_zero()).then_some(idle),
            validate_signatures,
            ca_file,
            amqp,
        })
    }

    /// Whether any bus is configured (fedmsg endpoints or an AMQP broker).
    pub fn has_sources(&self) -> bool {
        !self.endpoints.is_empty() || self.amqp.is_some()
    }

    /// The sources' names for metrics and logs: the fedmsg endpoints, then the AMQP queue.
    pub fn source_names(&self) -> Vec<String> {
        let mut names = self.endpoints.clone();
        if let Some(a) = &self.amqp {
            names.push(a.source_name());
        }
        names
    }

    pub fn replay_interval(&self) -> Duration {
        Duration::from_secs_f64(1.0 / self.replay_rate)
    }
}

impl AmqpConfig {
    fn from_vars(v: &Vars<'_>, url: String) -> Result<Self, ConfigError> {
        if !(url.starts_with("amqp://") || url.starts_with("amqps://")) {
            return Err(invalid("FMN_AMQP_URL", url, "an amqp:// or amqps:// URL"));
        }
        let client_cert = match (v.text("FMN_AMQP_CERT"), v.text("FMN_AMQP_KEY")) {
            (None, None) => None,
            (Some(c), Some(k)) => Some((PathBuf::from(c), PathBuf::from(k))),
            (Some(_), None) => {
                return Err(invalid(
                    "FMN_AMQP_KEY",
                    "",
                    "set: FMN_AMQP_CERT is, name the key's PEM file too",
                ))
            }
            (None, Some(_)) => {
                return Err(invalid(
                    "FMN_AMQP_CERT",
                    "",
                    "set: FMN_AMQP_KEY is, name the certificate's PEM file too",
                ))
            }
        };
        let mut bindings = list(v.text("FMN_AMQP_BINDINGS"));
        if bindings.is_empty() {
            bindings.push("#".into());
        }
        Ok(AmqpConfig {
            url,
            queue: v.text_or("FMN_AMQP_QUEUE", "fmn-ingest"),
            exchange: v.text_or("FMN_AMQP_EXCHANGE", "amq.topic"),
            bindings,
            prefetch: v.positive("FMN_AMQP_PREFETCH", 1000)?,
            passive: v.flag("FMN_AMQP_PASSIVE", false)?,
            ca_file: v.text("FMN_AMQP_CA").map(PathBuf::from),
            client_cert,
        })
    }

    /// `amqp(s)://host:port/vhost#queue`, without credentials.
    pub fn source_name(&self) -> String {
        let rest = self.url.split_once("://").map_or("", |(_, r)| r);
        let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
        let host = host.split('?').next().unwrap_or(host);
        let scheme = self.url.split("://").next().unwrap_or("amqp");
        format!("{scheme}://{host}#{}", self.queue)
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
        assert_eq!(c.max_body_bytes, 1 << 20);
        assert_eq!(c.spool_dir, PathBuf::from("./.local/spool/ingest-bridge"));
        assert_eq!(c.metrics_addr, Some("127.0.0.1:9108".parse().unwrap()));
        assert_eq!(c.batch_linger, Duration::from_millis(20));
        assert!(!c.validate_signatures);
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

    #[test]
    fn settings_are_read_and_checked() {
        let c = BridgeConfig::from_lookup(|k| {
            match k {
                "FMN_BRIDGE_METRICS_ADDR" => Some("off"),
                "FMN_IDLE_RECONNECT" => Some("0"),
                "FMN_LOCAL_DIR" => Some("/tmp/x"),
                "FMN_FEDMSG_TOPICS" => {
                    Some("org.fedoraproject.prod.bodhi,org.fedoraproject.prod.copr")
                }
                _ => None,
            }
            .map(str::to_string)
        })
        .unwrap();
        assert_eq!(c.metrics_addr, None);
        assert_eq!(c.idle_reconnect, None);
        assert_eq!(c.spool_dir, PathBuf::from("/tmp/x/spool/ingest-bridge"));
        assert_eq!(c.topics.len(), 2);
        let err = BridgeConfig::from_lookup(|k| {
            (k == "FMN_VALIDATE_SIGNATURES").then(|| "true".to_string())
        })
        .unwrap_err();
        assert!(err.to_string().contains("FMN_FEDMSG_CA"), "{err}");
        assert!(BridgeConfig::from_lookup(|k| {
            (k == "FMN_SEND_CONCURRENCY").then(|| "-1".to_string())
        })
        .is_err());
    }

    fn amqp(vars: &[(&str, &str)]) -> Result<BridgeConfig, ConfigError> {
        BridgeConfig::from_lookup(|k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn the_amqp_source_has_working_defaults() {
        assert_eq!(amqp(&[]).unwrap().amqp, None);
        let c = amqp(&[(
            "FMN_AMQP_URL",
            "amqps://fedora:@rabbit.example/%2Fpublic_pubsub",
        )])
        .unwrap();
        assert!(c.has_sources());
        let a = c.amqp.unwrap();
        assert_eq!(a.exchange, "amq.topic");
        assert_eq!(a.bindings, ["#"]);
        assert_eq!(a.prefetch, 1000);
        assert!(!a.passive);
        assert_eq!(
            a.source_name(),
            "amqps://rabbit.example/%2Fpublic_pubsub#fmn-ingest"
        );
    }

    #[test]
    fn amqp_settings_are_checked_by_name() {
        let err = |vars: &[(&str, &str)]| amqp(vars).unwrap_err().to_string();
        let url = ("FMN_AMQP_URL", "amqp://localhost/%2F");
        assert!(err(&[("FMN_AMQP_URL", "http://x")]).contains("FMN_AMQP_URL"));
        assert!(err(&[url, ("FMN_AMQP_PREFETCH", "70000")]).contains("FMN_AMQP_PREFETCH"));
        assert!(err(&[url, ("FMN_AMQP_CERT", "/c.pem")]).contains("FMN_AMQP_KEY"));
        assert!(err(&[url, ("FMN_AMQP_PASSIVE", "maybe")]).contains("FMN_AMQP_PASSIVE"));
        let c = amqp(&[
            url,
            (
                "FMN_AMQP_BINDINGS",
                "org.fedoraproject.prod.#, org.release-monitoring.#",
            ),
            ("FMN_AMQP_PASSIVE", "yes"),
            ("FMN_AMQP_CERT", "/c.pem"),
            ("FMN_AMQP_KEY", "/k.pem"),
        ])
        .unwrap()
        .amqp
        .unwrap();
        assert_eq!(c.bindings.len(), 2);
        assert!(c.passive);
        assert!(c.client_cert.is_some());
    }
}
