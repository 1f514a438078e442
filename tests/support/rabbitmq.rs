//! A real RabbitMQ broker for tests, set up like Fedora's public broker
//! (`amqps://rabbitmq.fedoraproject.org/%2Fpublic_pubsub`), and the real `fedora-messaging`
//! publisher to feed it.
//!
//! The broker is Debian's `rabbitmq-server` (installed by `make deps`), run as a plain process
//! (no systemd, no Docker) with everything of its own: a unique node name, free ports (AMQP,
//! AMQPS, Erlang distribution and a private `epmd`), and its config, data (mnesia), logs and
//! Erlang cookie under one temporary directory. Several brokers run side by side in parallel
//! tests. Set up:
//!
//! - vhost `/public_pubsub`, exchange `amq.topic` (built in);
//! - a TLS listener on 127.0.0.1 that requires a client certificate (`verify_peer`,
//!   `fail_if_no_peer_cert`), with SASL `EXTERNAL` (plugin `rabbitmq_auth_mechanism_ssl`,
//!   `ssl_cert_login_from = common_name`): the certificate `CN=fedora` logs in as the
//!   passwordless user `fedora`, which has every permission on the vhost;
//! - a plain listener on 127.0.0.1 with the password user `fmn` (same permissions, tag
//!   `administrator`) for load publishers;
//! - a test PKI ([`TestPki`], `tests/rabbitmq/make-pki.sh`) shaped like Fedora's: the CA file
//!   holds two CA certificates with the same subject (a rotation), the server certificate is
//!   signed by the second, the client certificate by the first.
//!
//! Users, permissions and the vhost come from a definitions file loaded at boot; there is no
//! `guest` user. [`RabbitMq::publish_with_fedora_messaging`] runs
//! `tests/fedora-messaging-publisher/publish.py` (the library's own `api.publish`, over TLS
//! with the client certificate) in the venv that `tests/fedora-messaging-publisher/install.sh`
//! makes (made on first use if missing).
//!
//! Dropping a [`RabbitMq`] kills the broker's process group and its `epmd`: nothing is left
//! running, and its node name dies with its `epmd`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::repo_root;

/// Debian's broker start script (the real one: `/usr/sbin/rabbitmq-server` is a wrapper that
/// switches to the `rabbitmq` user and drops the environment).
pub const RABBITMQ_SERVER: &str = "/usr/lib/rabbitmq/bin/rabbitmq-server";
/// Debian's `rabbitmqctl`, for the same reason.
pub const RABBITMQCTL: &str = "/usr/lib/rabbitmq/bin/rabbitmqctl";
/// The vhost of Fedora's public broker.
pub const VHOST: &str = "/public_pubsub";
/// The exchange Fedora publishes to.
pub const EXCHANGE: &str = "amq.topic";
/// The password user of the plain listener.
pub const PLAIN_USER: &str = "fmn";
/// Its password (a test credential, loopback only).
pub const PLAIN_PASSWORD: &str = "fmn-test-password";
/// `rabbit_password_hashing_sha256` of [`PLAIN_PASSWORD`] with the salt `908d2c1f`:
/// base64(salt ++ sha256(salt ++ password)).
const PLAIN_PASSWORD_HASH: &str = "kI0sH14ZHSDj5hHgzcDYoQgmjYKsCcsZm9HtvwKvQcEklo2P";

/// How long `start`/`restart` wait for the broker to answer.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a graceful `stop` may take before the broker is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

static COUNTER: AtomicU32 = AtomicU32::new(0);
static VENV: Mutex<()> = Mutex::new(());

/// The files of the test PKI (all PEM), generated per broker by `tests/rabbitmq/make-pki.sh`.
#[derive(Clone, Debug)]
pub struct TestPki {
    pub dir: PathBuf,
    /// The bundle clients trust: two CA certificates of the same subject (`CN=fmn test
    /// RabbitMQ CA`), the first ([`Self::ca1_cert`]) signs the client certificates, the second
    /// ([`Self::ca2_cert`]) the server's. The broker trusts the same bundle.
    pub ca_file: PathBuf,
    pub ca1_cert: PathBuf,
    pub ca2_cert: PathBuf,
    /// `CN=localhost`, SAN `IP:127.0.0.1`, `DNS:localhost`, signed by the second CA.
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    /// `CN=fedora`, signed by the first CA: logs in as `fedora` with EXTERNAL. Like Fedora's
    /// `fedora-cert.pem`, the file is OpenSSL's text dump of the certificate followed by the
    /// PEM block.
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    /// `CN=intruder`, signed by the first CA: the TLS handshake succeeds, the EXTERNAL login
    /// is refused (no such user).
    pub intruder_cert: PathBuf,
    pub intruder_key: PathBuf,
    /// `CN=fedora`, signed by a third CA of the same name that nobody trusts: refused in the
    /// TLS handshake.
    pub rogue_cert: PathBuf,
    pub rogue_key: PathBuf,
    /// That untrusted CA.
    pub rogue_ca_cert: PathBuf,
}

impl TestPki {
    /// Generates the PKI into `dir` (with the `openssl` CLI).
    pub fn generate(dir: &Path) -> TestPki {
        let script = repo_root().join("tests/rabbitmq/make-pki.sh");
        let out = Command::new("bash")
            .arg(&script)
            .arg(dir)
            .output()
            .expect("running tests/rabbitmq/make-pki.sh (is openssl installed? `make deps`)");
        assert!(
            out.status.success(),
            "tests/rabbitmq/make-pki.sh failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let f = |name: &str| dir.join(name);
        TestPki {
            dir: dir.to_path_buf(),
            ca_file: f("cacert.pem"),
            ca1_cert: f("ca1.pem"),
            ca2_cert: f("ca2.pem"),
            server_cert: f("server.pem"),
            server_key: f("server.key"),
            client_cert: f("client.pem"),
            client_key: f("client.key"),
            intruder_cert: f("intruder.pem"),
            intruder_key: f("intruder.key"),
            rogue_cert: f("rogue.pem"),
            rogue_key: f("rogue.key"),
            rogue_ca_cert: f("rogue-ca.pem"),
        }
    }
}

/// Who the fedora-messaging publisher connects as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Identity {
    /// TLS with the `CN=fedora` client certificate (EXTERNAL): the normal case.
    Fedora,
    /// TLS with a trusted certificate whose CN is no user (`intruder`).
    Intruder,
    /// TLS with a `CN=fedora` certificate from an untrusted CA of the same name.
    Rogue,
    /// TLS without a client certificate.
    NoCertificate,
    /// The plain listener, user `fmn` with its password.
    Plain,
}

/// The outcome of [`RabbitMq::check_login`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Login {
    Accepted,
    /// Refused by the broker, in the TLS handshake or at login; the publisher's reason.
    Refused(String),
}

/// Options of a fedora-messaging publisher run (see `publish.py --help`).
#[derive(Clone, Debug)]
pub struct PublishOptions {
    pub identity: Identity,
    /// Skip the first N lines of the file.
    pub skip: usize,
    /// Use at most N lines (after `skip`).
    pub limit: Option<usize>,
    /// Publish exactly N messages, cycling over the lines; passes after the first get fresh
    /// ids (uuid5 of the original id and the pass number).
    pub count: Option<usize>,
    /// At most this many messages per second.
    pub rate: Option<f64>,
    /// Declare this durable queue and bind it to `amq.topic` first.
    pub declare_queue: Option<String>,
    /// Routing keys for `declare_queue` (default `#`).
    pub bind: Vec<String>,
    /// Seconds the library waits for each publish to be confirmed.
    pub timeout_secs: u32,
    /// Publish each line's `body` as given, bypassing the library (no schema, no
    /// validation), for malformed messages: a string body goes out as its bytes, anything else
    /// as JSON; `headers`, `id`, `content_type`, `content_encoding` are used when present.
    pub raw: bool,
}

impl Default for PublishOptions {
    fn default() -> Self {
        PublishOptions {
            identity: Identity::Fedora,
            skip: 0,
            limit: None,
            count: None,
            rate: None,
            declare_queue: None,
            bind: Vec::new(),
            timeout_secs: 30,
            raw: false,
        }
    }
}

/// A queue's counters, from `rabbitmqctl list_queues`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueStats {
    /// Ready + unacknowledged.
    pub messages: u64,
    pub ready: u64,
    pub unacknowledged: u64,
    pub consumers: u64,
    pub durable: bool,
}

/// A running RabbitMQ node (see the module documentation). Killed when dropped.
pub struct RabbitMq {
    broker: Option<Child>,
    epmd: Option<Child>,
    /// The node name, `fmn-…@localhost`.
    pub node: String,
    /// The plain AMQP listener (127.0.0.1).
    pub port: u16,
    /// The AMQPS listener (127.0.0.1).
    pub tls_port: u16,
    pub dist_port: u16,
    pub epmd_port: u16,
    pki: TestPki,
    root: tempfile::TempDir,
    /// How long the last start (or restart) took until the broker answered.
    pub last_start: Duration,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Four distinct free ports.
fn free_ports() -> [u16; 4] {
    loop {
        let p = [free_port(), free_port(), free_port(), free_port()];
        let mut s = p.to_vec();
        s.sort_unstable();
        s.dedup();
        if s.len() == 4 {
            return p;
        }
    }
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Sends the AMQP 0-9-1 protocol header and checks that the broker answers with a method frame
/// (`connection.start`).
fn amqp_answers(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(500),
    ) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"AMQP\x00\x00\x09\x01").is_err() {
        return false;
    }
    let mut head = [0u8; 7];
    s.read_exact(&mut head).is_ok() && head[0] == 1
}

fn tcp_answers(port: u16) -> bool {
    TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(500),
    )
    .is_ok()
}

/// Sends `signal` to the process `target` (a pid, or `-pgid` for a process group) with bash's
/// built-in `kill` (no procps needed; the broker is started as its own group).
fn send_signal(target: &str, signal: &str) {
    let _ = Command::new("bash")
        .args(["-c", "kill -s \"$1\" -- \"$2\"", "kill", signal, target])
        .stderr(Stdio::null())
        .status();
}

/// Sends `signal` to the process group `pgid`.
fn signal_group(pgid: u32, signal: &str) {
    send_signal(&format!("-{pgid}"), signal);
}

fn wait_timeout(child: &mut Child, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// The fedora-messaging venv's interpreter, creating the venv first if needed (under a lock
/// shared by every test process).
pub fn fedora_messaging_python() -> PathBuf {
    let _guard = VENV.lock().unwrap_or_else(|p| p.into_inner());
    let root = repo_root();
    let run = root.join(".local/run");
    std::fs::create_dir_all(&run).unwrap();
    let status = Command::new("flock")
        .arg(run.join("fedora-messaging-venv.lock"))
        .arg(root.join("tests/fedora-messaging-publisher/install.sh"))
        .status()
        .expect("running tests/fedora-messaging-publisher/install.sh");
    assert!(
        status.success(),
        "tests/fedora-messaging-publisher/install.sh failed"
    );
    let local = std::env::var_os("FMN_LOCAL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join(".local"));
    local.join("venv-fedora-messaging/bin/python")
}

impl RabbitMq {
    /// Starts a fresh broker and waits (up to [`START_TIMEOUT`]) until both listeners answer
    /// AMQP. Panics with the log files' tails if it does not come up.
    pub fn start() -> RabbitMq {
        assert!(
            Path::new(RABBITMQ_SERVER).is_file(),
            "{RABBITMQ_SERVER} is missing: run `make deps` (Debian package rabbitmq-server)"
        );
        let root = tempfile::Builder::new()
            .prefix("fmn-rabbitmq-")
            .tempdir()
            .expect("a temporary directory");
        let pki = TestPki::generate(&root.path().join("pki"));
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let node = format!(
            "fmn-{}-{n}-{}@localhost",
            std::process::id(),
            &uuid::Uuid::new_v4().simple().to_string()[..6]
        );
        let [port, tls_port, dist_port, epmd_port] = free_ports();
        let mut rmq = RabbitMq {
            broker: None,
            epmd: None,
            node,
            port,
            tls_port,
            dist_port,
            epmd_port,
            pki,
            root,
            last_start: Duration::ZERO,
        };
        rmq.write_config();
        // A port chosen above may be taken by someone else before the broker binds it: then
        // try again on new ports.
        let mut last_error = String::new();
        for attempt in 0..3 {
            if attempt > 0 {
                [rmq.port, rmq.tls_port, rmq.dist_port, rmq.epmd_port] = free_ports();
                rmq.write_config();
            }
            match rmq.boot() {
                Ok(()) => return rmq,
                Err(e) => {
                    last_error = format!("{e:#}");
                    eprintln!(
                        "rabbitmq: start attempt {} failed: {last_error}",
                        attempt + 1
                    );
                    rmq.kill();
                    rmq.stop_epmd();
                }
            }
        }
        panic!("RabbitMQ did not start: {last_error}");
    }

    /// `amqps://127.0.0.1:<tls_port>/%2Fpublic_pubsub`: log in with the client certificate
    /// (EXTERNAL), trusting [`TestPki::ca_file`].
    pub fn amqps_url(&self) -> String {
        format!("amqps://127.0.0.1:{}/%2Fpublic_pubsub", self.tls_port)
    }

    /// `amqp://fmn:<password>@127.0.0.1:<port>/%2Fpublic_pubsub`, the plain listener.
    pub fn amqp_url(&self) -> String {
        format!(
            "amqp://{PLAIN_USER}:{PLAIN_PASSWORD}@127.0.0.1:{}/%2Fpublic_pubsub",
            self.port
        )
    }

    pub fn tls(&self) -> &TestPki {
        &self.pki
    }

    /// A bridge's AMQP settings for this broker: TLS with the client certificate (EXTERNAL),
    /// `queue` bound to every topic of `amq.topic`.
    pub fn bridge_config(
        &self,
        queue: &str,
        prefetch: u16,
    ) -> fmn_ingest_bridge::config::AmqpConfig {
        fmn_ingest_bridge::config::AmqpConfig {
            url: self.amqps_url(),
            queue: queue.to_owned(),
            exchange: EXCHANGE.into(),
            bindings: vec!["#".into()],
            prefetch,
            passive: false,
            ca_file: Some(self.pki.ca_file.clone()),
            client_cert: Some((self.pki.client_cert.clone(), self.pki.client_key.clone())),
        }
    }

    /// The variables that give a bridge binary (or `fmn-local`) `config` as its AMQP source,
    /// its spool in `spool`, no metrics server and quiet logs.
    pub fn bridge_env(
        command: &mut Command,
        config: &fmn_ingest_bridge::config::AmqpConfig,
        spool: &Path,
    ) {
        let (cert, key) = config.client_cert.clone().expect("a client certificate");
        command
            .env("FMN_AMQP_URL", &config.url)
            .env("FMN_AMQP_QUEUE", &config.queue)
            .env("FMN_AMQP_PREFETCH", config.prefetch.to_string())
            .env("FMN_AMQP_CA", config.ca_file.as_ref().expect("a CA file"))
            .env("FMN_AMQP_CERT", cert)
            .env("FMN_AMQP_KEY", key)
            .env("FMN_SPOOL_DIR", spool)
            .env("FMN_BRIDGE_METRICS_ADDR", "off")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null());
    }

    /// The directory holding config, data, logs and PKI.
    pub fn dir(&self) -> &Path {
        self.root.path()
    }

    /// The broker's own log.
    pub fn log_file(&self) -> PathBuf {
        self.root.path().join("log/rabbit.log")
    }

    /// What the start script and the VM printed (start-up failures land here).
    pub fn startup_log_file(&self) -> PathBuf {
        self.root.path().join("log/startup.log")
    }

    /// The broker's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_file()).unwrap_or_default()
    }

    fn log_since(&self, offset: u64) -> String {
        let log = self.log();
        log.get(offset as usize..).unwrap_or_default().to_string()
    }

    /// Whether the broker process is running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.broker.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// Graceful stop (SIGTERM: the broker closes its connections and flushes its queues),
    /// then SIGKILL after 30 s. The data directory, ports and `epmd` stay for [`Self::restart`].
    pub fn stop(&mut self) {
        if let Some(mut child) = self.broker.take() {
            // The start script forwards SIGTERM to the VM and waits for it.
            send_signal(&child.id().to_string(), "TERM");
            if !wait_timeout(&mut child, STOP_TIMEOUT) {
                eprintln!(
                    "rabbitmq: {} did not stop in {STOP_TIMEOUT:?}; killing",
                    self.node
                );
            }
            signal_group(child.id(), "KILL");
            let _ = child.wait();
            self.wait_ports_closed();
        }
    }

    /// SIGKILL to the whole broker (its process group): a crash. Persistent messages in
    /// durable queues that the broker had confirmed survive a restart.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.broker.take() {
            signal_group(child.id(), "KILL");
            let _ = child.kill();
            let _ = child.wait();
            self.wait_ports_closed();
        }
    }

    /// Stops (gracefully) and starts again on the same node name, ports and data directory.
    pub fn restart(&mut self) {
        self.stop();
        self.start_again();
    }

    /// Starts a stopped or killed broker again on the same node name, ports and data.
    pub fn start_again(&mut self) {
        assert!(self.broker.is_none(), "the broker is running");
        let mut last_error = String::new();
        // After a kill the OS may hold a port briefly; the broker retries binding itself, and
        // one more try covers the rest.
        for _attempt in 0..2 {
            match self.boot() {
                Ok(()) => return,
                Err(e) => {
                    last_error = format!("{e:#}");
                    eprintln!("rabbitmq: restart failed: {last_error}");
                    self.kill();
                }
            }
        }
        panic!("RabbitMQ did not start again: {last_error}");
    }

    /// Runs `rabbitmqctl -n <node> ARGS` against this broker.
    pub fn ctl(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(RABBITMQCTL);
        self.env(&mut cmd);
        cmd.arg("-n").arg(&self.node).args(args);
        cmd.stdin(Stdio::null())
            .output()
            .expect("running rabbitmqctl")
    }

    /// The counters of `queue` in `/public_pubsub`, or `None` if there is no such queue (or
    /// the broker does not answer).
    pub fn queue_stats(&self, queue: &str) -> Option<QueueStats> {
        let out = self.ctl(&[
            "list_queues",
            "-p",
            VHOST,
            "-q",
            "--formatter",
            "json",
            "name",
            "messages",
            "messages_ready",
            "messages_unacknowledged",
            "consumers",
            "durable",
        ]);
        if !out.status.success() {
            eprintln!(
                "rabbitmqctl list_queues failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            return None;
        }
        let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).ok()?;
        let row = rows.into_iter().find(|r| r["name"] == queue)?;
        let n = |k: &str| row[k].as_u64().unwrap_or(0);
        Some(QueueStats {
            messages: n("messages"),
            ready: n("messages_ready"),
            unacknowledged: n("messages_unacknowledged"),
            consumers: n("consumers"),
            durable: row["durable"].as_bool().unwrap_or(false),
        })
    }

    /// Messages in `queue` (ready + unacknowledged), `None` if there is no such queue.
    pub fn queue_depth(&self, queue: &str) -> Option<u64> {
        self.queue_stats(queue).map(|s| s.messages)
    }

    /// Waits up to `timeout` until `queue` holds `depth` messages; returns the last depth seen.
    pub fn wait_queue_depth(&self, queue: &str, depth: u64, timeout: Duration) -> Option<u64> {
        let deadline = Instant::now() + timeout;
        loop {
            let now = self.queue_depth(queue);
            if now == Some(depth) || Instant::now() >= deadline {
                return now;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Closes every client connection from the broker side (`rabbitmqctl
    /// close_all_connections`), as a broker maintenance would.
    pub fn close_all_connections(&self, reason: &str) {
        let out = self.ctl(&["close_all_connections", reason]);
        assert!(
            out.status.success(),
            "rabbitmqctl close_all_connections: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Writes the fedora-messaging configuration TOML for `identity` and returns its path:
    /// `amqp_url`, `publish_exchange = "amq.topic"` and, over TLS, `[tls]` `ca_cert`,
    /// `keyfile`, `certfile`.
    pub fn fedora_messaging_config(&self, identity: Identity) -> PathBuf {
        let pki = &self.pki;
        let q = |p: &Path| format!("{:?}", p.display().to_string());
        let (url, tls) = match identity {
            Identity::Plain => (self.amqp_url(), String::new()),
            Identity::NoCertificate => (
                self.amqps_url(),
                format!(
                    "[tls]\nca_cert = {}\nkeyfile = \"\"\ncertfile = \"\"\n",
                    q(&pki.ca_file)
                ),
            ),
            Identity::Fedora | Identity::Intruder | Identity::Rogue => {
                let (cert, key) = match identity {
                    Identity::Fedora => (&pki.client_cert, &pki.client_key),
                    Identity::Intruder => (&pki.intruder_cert, &pki.intruder_key),
                    _ => (&pki.rogue_cert, &pki.rogue_key),
                };
                (
                    self.amqps_url(),
                    format!(
                        "[tls]\nca_cert = {}\nkeyfile = {}\ncertfile = {}\n",
                        q(&pki.ca_file),
                        q(key),
                        q(cert)
                    ),
                )
            }
        };
        let text = format!(
            "# fedora-messaging configuration written by tests/support/rabbitmq.rs\n\
             amqp_url = \"{url}\"\n\
             publish_exchange = \"{EXCHANGE}\"\n\
             {tls}\
             [client_properties]\n\
             app = \"fmn tests fedora-messaging publisher\"\n"
        );
        let path = self
            .root
            .path()
            .join(format!("fedora-messaging-{identity:?}.toml").to_lowercase());
        std::fs::write(&path, text).expect("writing the fedora-messaging config");
        path
    }

    fn publisher_command(&self, jsonl: Option<&Path>, opts: &PublishOptions) -> Command {
        let mut cmd = Command::new(fedora_messaging_python());
        cmd.arg(repo_root().join("tests/fedora-messaging-publisher/publish.py"))
            .arg("--config")
            .arg(self.fedora_messaging_config(opts.identity))
            .arg("--timeout")
            .arg(opts.timeout_secs.to_string());
        if opts.skip > 0 {
            cmd.args(["--skip", &opts.skip.to_string()]);
        }
        if let Some(limit) = opts.limit {
            cmd.args(["--limit", &limit.to_string()]);
        }
        if let Some(count) = opts.count {
            cmd.args(["--count", &count.to_string()]);
        }
        if let Some(rate) = opts.rate {
            cmd.args(["--rate", &rate.to_string()]);
        }
        if let Some(queue) = &opts.declare_queue {
            cmd.args(["--declare-queue", queue]);
            for key in &opts.bind {
                cmd.args(["--bind", key]);
            }
        }
        if opts.raw {
            cmd.arg("--raw");
        }
        if let Some(file) = jsonl {
            cmd.arg(file);
        }
        cmd.stdin(Stdio::null());
        cmd
    }

    /// Publishes every line of `jsonl` (corpus form) with the real fedora-messaging library
    /// over TLS as `fedora`; returns the published message ids, in order.
    pub fn publish_with_fedora_messaging(&self, jsonl: &Path) -> anyhow::Result<Vec<String>> {
        self.publish_with(Some(jsonl), &PublishOptions::default())
    }

    /// [`Self::publish_with_fedora_messaging`] with options (and no file: only the queue
    /// declaration).
    pub fn publish_with(
        &self,
        jsonl: Option<&Path>,
        opts: &PublishOptions,
    ) -> anyhow::Result<Vec<String>> {
        let out = self
            .publisher_command(jsonl, opts)
            .output()
            .context("running publish.py")?;
        if !out.status.success() {
            bail!(
                "publish.py failed ({}); stderr:\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect())
    }

    /// Starts the publisher in the background (e.g. to publish while a consumer runs); its
    /// stdout (one id per line) is piped. Kill or wait for it yourself.
    pub fn spawn_publisher(&self, jsonl: &Path, opts: &PublishOptions) -> Child {
        self.publisher_command(Some(jsonl), opts)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting publish.py")
    }

    /// Declares the durable queue `name` in `/public_pubsub` and binds it to `amq.topic` with
    /// `routing_keys` (default `#`), as `fedora` over TLS.
    pub fn declare_queue(&self, name: &str, routing_keys: &[&str]) -> anyhow::Result<()> {
        self.publish_with(
            None,
            &PublishOptions {
                declare_queue: Some(name.to_string()),
                bind: routing_keys.iter().map(|s| s.to_string()).collect(),
                ..PublishOptions::default()
            },
        )
        .map(drop)
    }

    /// Opens one connection as `identity` the way the library does and reports whether the
    /// broker let it in.
    pub fn check_login(&self, identity: Identity) -> Login {
        let mut cmd = Command::new(fedora_messaging_python());
        cmd.arg(repo_root().join("tests/fedora-messaging-publisher/publish.py"))
            .arg("--config")
            .arg(self.fedora_messaging_config(identity))
            .arg("--check-login")
            .stdin(Stdio::null());
        let out = cmd.output().expect("running publish.py --check-login");
        let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
        match out.status.code() {
            Some(0) => Login::Accepted,
            Some(3) => Login::Refused(text),
            _ => panic!(
                "publish.py --check-login failed ({}): {text}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ),
        }
    }

    fn env(&self, cmd: &mut Command) {
        let dir = self.root.path();
        cmd.env("HOME", dir.join("home"))
            .env("RABBITMQ_NODENAME", &self.node)
            .env("RABBITMQ_USE_LONGNAME", "false")
            .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_NODE_PORT", self.port.to_string())
            .env("RABBITMQ_DIST_PORT", self.dist_port.to_string())
            .env("ERL_EPMD_PORT", self.epmd_port.to_string())
            .env("RABBITMQ_MNESIA_BASE", dir.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", dir.join("log"))
            .env("RABBITMQ_LOGS", dir.join("log/rabbit.log"))
            .env("RABBITMQ_CONFIG_FILE", dir.join("rabbitmq.conf"))
            .env("RABBITMQ_ADVANCED_CONFIG_FILE", dir.join("advanced.config"))
            .env("RABBITMQ_CONF_ENV_FILE", dir.join("rabbitmq-env.conf"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", dir.join("enabled_plugins"))
            .env("RABBITMQ_PID_FILE", dir.join("rabbit.pid"))
            .env("ERL_CRASH_DUMP", dir.join("log/erl_crash.dump"))
            .env_remove("RABBITMQ_ALLOW_INPUT")
            .env_remove("NOTIFY_SOCKET");
    }

    fn write_config(&self) {
        let dir = self.root.path();
        for sub in ["home", "mnesia", "log"] {
            std::fs::create_dir_all(dir.join(sub)).expect("creating the broker's directories");
        }
        let cookie = dir.join("home/.erlang.cookie");
        if !cookie.exists() {
            std::fs::write(
                &cookie,
                format!("FMN{}", uuid::Uuid::new_v4().simple()).to_uppercase(),
            )
            .expect("writing the Erlang cookie");
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&cookie, std::fs::Permissions::from_mode(0o400))
                .expect("chmod the Erlang cookie");
        }
        let pki = &self.pki;
        let conf = format!(
            "# written by tests/support/rabbitmq.rs: Fedora's public broker in small\n\
             listeners.tcp.1 = 127.0.0.1:{port}\n\
             listeners.ssl.1 = 127.0.0.1:{tls_port}\n\
             ssl_options.cacertfile = {ca}\n\
             ssl_options.certfile = {cert}\n\
             ssl_options.keyfile = {key}\n\
             ssl_options.verify = verify_peer\n\
             ssl_options.fail_if_no_peer_cert = true\n\
             auth_mechanisms.1 = EXTERNAL\n\
             auth_mechanisms.2 = PLAIN\n\
             auth_mechanisms.3 = AMQPLAIN\n\
             ssl_cert_login_from = common_name\n\
             load_definitions = {defs}\n\
             log.file = {log}\n\
             log.file.level = info\n\
             log.console = false\n\
             # a test machine's disk may be nearly full; do not block publishers for it\n\
             disk_free_limit.absolute = 1MB\n",
            port = self.port,
            tls_port = self.tls_port,
            ca = pki.ca_file.display(),
            cert = pki.server_cert.display(),
            key = pki.server_key.display(),
            defs = dir.join("definitions.json").display(),
            log = dir.join("log/rabbit.log").display(),
        );
        std::fs::write(dir.join("rabbitmq.conf"), conf).expect("writing rabbitmq.conf");
        std::fs::write(dir.join("advanced.config"), "[].\n").expect("writing advanced.config");
        std::fs::write(dir.join("rabbitmq-env.conf"), "").expect("writing rabbitmq-env.conf");
        std::fs::write(
            dir.join("enabled_plugins"),
            "[rabbitmq_auth_mechanism_ssl].\n",
        )
        .expect("writing enabled_plugins");
        let all = serde_json::json!({"configure": ".*", "write": ".*", "read": ".*"});
        let perm = |user: &str| {
            let mut p = all.clone();
            p["user"] = user.into();
            p["vhost"] = VHOST.into();
            p
        };
        let defs = serde_json::json!({
            "vhosts": [{"name": VHOST}],
            "users": [
                // No password: only EXTERNAL (a client certificate with CN=fedora) logs in.
                {"name": "fedora", "password_hash": "",
                 "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": []},
                {"name": PLAIN_USER, "password_hash": PLAIN_PASSWORD_HASH,
                 "hashing_algorithm": "rabbit_password_hashing_sha256",
                 "tags": ["administrator"]},
            ],
            "permissions": [perm("fedora"), perm(PLAIN_USER)],
        });
        std::fs::write(
            dir.join("definitions.json"),
            serde_json::to_string_pretty(&defs).unwrap(),
        )
        .expect("writing definitions.json");
    }

    fn start_epmd(&mut self) -> anyhow::Result<()> {
        if let Some(e) = self.epmd.as_mut() {
            if let Ok(None) = e.try_wait() {
                return Ok(());
            }
        }
        use std::os::unix::process::CommandExt;
        let log = std::fs::File::create(self.root.path().join("log/epmd.log"))?;
        let child = Command::new("epmd")
            .args([
                "-port",
                &self.epmd_port.to_string(),
                "-address",
                "127.0.0.1",
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0)
            .spawn()
            .context("starting epmd (Debian package erlang-base)")?;
        self.epmd = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !tcp_answers(self.epmd_port) {
            if Instant::now() > deadline {
                bail!(
                    "epmd did not listen on {}: {}",
                    self.epmd_port,
                    tail(&self.root.path().join("log/epmd.log"), 20)
                );
            }
            if let Some(Ok(Some(status))) = self.epmd.as_mut().map(|c| c.try_wait()) {
                bail!(
                    "epmd exited ({status}): {}",
                    tail(&self.root.path().join("log/epmd.log"), 20)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    fn stop_epmd(&mut self) {
        if let Some(mut e) = self.epmd.take() {
            let _ = e.kill();
            let _ = e.wait();
        }
    }

    /// Starts the broker process and waits until it answers.
    fn boot(&mut self) -> anyhow::Result<()> {
        use std::os::unix::process::CommandExt;
        self.start_epmd()?;
        let started = Instant::now();
        // Only what this boot logs counts (a restart appends to the same log).
        let log_offset = std::fs::metadata(self.log_file())
            .map(|m| m.len())
            .unwrap_or(0);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.startup_log_file())?;
        let mut cmd = Command::new(RABBITMQ_SERVER);
        self.env(&mut cmd);
        cmd.current_dir(self.root.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            // Its own process group: kill() reaches the VM and its helpers (erl_child_setup,
            // inet_gethost, os_mon's port programs) at once.
            .process_group(0);
        let child = cmd.spawn().context("starting rabbitmq-server")?;
        self.broker = Some(child);
        let deadline = started + START_TIMEOUT;
        loop {
            if let Some(Ok(Some(status))) = self.broker.as_mut().map(|c| c.try_wait()) {
                self.broker = None;
                bail!(
                    "rabbitmq-server exited ({status}) while starting; see {} and {}\n\
                     --- startup log (tail) ---\n{}\n--- broker log (tail) ---\n{}",
                    self.startup_log_file().display(),
                    self.log_file().display(),
                    tail(&self.startup_log_file(), 30),
                    tail(&self.log_file(), 30)
                );
            }
            if tcp_answers(self.tls_port)
                && amqp_answers(self.port)
                && self
                    .log_since(log_offset)
                    .contains("Server startup complete")
            {
                self.last_start = started.elapsed();
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "rabbitmq-server {} did not answer on 127.0.0.1:{} (AMQP) and :{} (AMQPS) \
                     within {START_TIMEOUT:?}; see {} and {}\n\
                     --- startup log (tail) ---\n{}\n--- broker log (tail) ---\n{}",
                    self.node,
                    self.port,
                    self.tls_port,
                    self.startup_log_file().display(),
                    self.log_file().display(),
                    tail(&self.startup_log_file(), 30),
                    tail(&self.log_file(), 30)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn wait_ports_closed(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while (tcp_answers(self.port) || tcp_answers(self.tls_port)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for RabbitMq {
    fn drop(&mut self) {
        self.kill();
        self.stop_epmd();
        // Keep the directory (logs) of a failing test when asked to.
        if std::thread::panicking() && std::env::var_os("FMN_KEEP_RABBITMQ").is_some() {
            let path = self.root.path().to_path_buf();
            eprintln!("rabbitmq: keeping {}", path.display());
            std::mem::forget(std::mem::replace(
                &mut self.root,
                tempfile::tempdir().expect("a temporary directory"),
            ));
        }
    }
}
