//! A real IRC server for tests: Debian's ngIRCd (installed by `make deps`), started on
//! 127.0.0.1 on a free port with a configuration in a temporary directory, in the foreground
//! (`ngircd -n -f <conf>`), with the flood protection of a normal ngIRCd (its default command
//! penalties: a client that sends faster than the server reads is throttled, the server's
//! read buffer is bounded). Stopped when dropped. [`IrcServer::start_tls`] adds a TLS port
//! (ngIRCd's GnuTLS) with a server certificate for 127.0.0.1 signed by a CA made for the test
//! by the `openssl` command.
//!
//! [`ServicesNetwork`]: an IRC network with services, for SASL and NickServ: Debian's InspIRCd
//! 3 (`m_sasl`, `m_services_account`, `m_spanningtree`) with Atheme 7.2 linked to it as its
//! services server (NickServ, SaslServ with PLAIN), both plain processes on 127.0.0.1 with
//! configurations and Atheme's database in a temporary directory.
//!
//! [`IrcReader`] is a second client, on a raw TCP stream, that registers as the target nick
//! and collects the PRIVMSGs it receives.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Where ngIRCd is: on the PATH, or Debian's `/usr/sbin` (not on a normal user's PATH).
pub fn ngircd_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join("ngircd");
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    let debian = PathBuf::from("/usr/sbin/ngircd");
    assert!(
        debian.is_file(),
        "ngircd is not installed: run `make deps` (Debian package `ngircd`)"
    );
    debian
}

pub struct IrcServer {
    child: Child,
    pub port: u16,
    /// The TLS port, with [`IrcServer::start_tls`].
    pub tls_port: Option<u16>,
    dir: tempfile::TempDir,
}

/// Where a Debian binary is: on the PATH, or in one of `dirs`.
fn binary(name: &str, dirs: &[&str]) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(dirs.iter().map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| panic!("{name} is not installed: run `make deps`"))
}

/// A test CA and a server certificate for 127.0.0.1 it signed, made by the `openssl` command
/// in `dir`. Returns (CA certificate, server certificate, server key) paths, all PEM.
pub fn make_test_certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("running openssl (installed by `make deps`)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    run(&[
        &["req", "-x509"][..],
        &ec,
        &[
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=fmn test CA",
        ],
    ]
    .concat());
    run(&[
        &["req"][..],
        &ec,
        &[
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    ]
    .concat());
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .expect("writing the extensions");
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "server.ext",
    ]);
    (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    )
}

/// Lets the servers (which drop root privileges to `nobody`) read and write in `dir`.
fn open_to_all(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    for entry in std::fs::read_dir(dir).expect("the directory").flatten() {
        let _ = std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(0o666));
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).expect("chmod");
}

fn config(port: u16, dir: &Path, tls: Option<u16>) -> String {
    let ssl = match tls {
        Some(tls_port) => format!(
            "[SSL]\n\tCertFile = {}\n\tKeyFile = {}\n\tPorts = {tls_port}\n",
            dir.join("server.pem").display(),
            dir.join("server.key").display()
        ),
        None => String::new(),
    };
    format!(
        "[Global]\n\
         \tName = irc.fmn.test\n\
         \tInfo = fmn test server\n\
         \tAdminInfo1 = fmn tests\n\
         \tAdminInfo2 = 127.0.0.1\n\
         \tAdminEMail = root@localhost\n\
         \tListen = 127.0.0.1\n\
         \tPorts = {port}\n\
         \tMotdPhrase = \"fmn test server\"\n\
         \tPidFile = {pid}\n\
         [Limits]\n\
         \tMaxNickLength = 30\n\
         \tPingTimeout = 120\n\
         \tPongTimeout = 20\n\
         [Options]\n\
         \tDNS = no\n\
         \tIdent = no\n\
         \tPAM = no\n\
         {ssl}",
        pid = dir.join("ngircd.pid").display(),
    )
}

impl IrcServer {
    /// Starts ngIRCd and waits until it accepts connections.
    pub fn start() -> IrcServer {
        Self::start_with(false)
    }

    /// Starts ngIRCd with a TLS port too ([`IrcServer::tls_port`]); its certificate's CA is
    /// [`IrcServer::ca_file`].
    pub fn start_tls() -> IrcServer {
        Self::start_with(true)
    }

    /// The PEM certificate of the CA that signed the server's certificate.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    fn start_with(tls: bool) -> IrcServer {
        let binary = ngircd_binary();
        for _attempt in 0..5 {
            let dir = tempfile::tempdir().expect("a temporary directory");
            let port = crate::free_port();
            let tls_port = tls.then(crate::free_port);
            if tls {
                make_test_certificates(dir.path());
                open_to_all(dir.path());
            }
            let conf = dir.path().join("ngircd.conf");
            std::fs::write(&conf, config(port, dir.path(), tls_port)).expect("writing ngircd.conf");
            // ngIRCd drops root privileges to `nobody` once it has read its configuration.
            let log = std::fs::File::create(dir.path().join("ngircd.log")).expect("log file");
            let child = Command::new(&binary)
                .arg("-n")
                .arg("-f")
                .arg(&conf)
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log file"))
                .stderr(log)
                .spawn()
                .expect("starting ngircd");
            let mut server = IrcServer {
                child,
                port,
                tls_port,
                dir,
            };
            for _ in 0..100 {
                let listening = |p: u16| std::net::TcpStream::connect(("127.0.0.1", p)).is_ok();
                if listening(port) && tls_port.is_none_or(listening) {
                    return server;
                }
                if let Ok(Some(_)) = server.child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            eprintln!(
                "ngircd did not listen on {port}; retrying. Its log:\n{}",
                server.log()
            );
        }
        panic!("ngircd did not start");
    }

    /// What ngIRCd logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("ngircd.log")).unwrap_or_default()
    }

    /// Lines of the log that mean a client was thrown out for flooding or killed.
    pub fn flood_disconnects(&self) -> Vec<String> {
        self.log()
            .lines()
            .filter(|l| {
                let l = l.to_ascii_lowercase();
                l.contains("flood") || l.contains("buffer space exhausted") || l.contains("kill")
            })
            .map(str::to_string)
            .collect()
    }
}

impl Drop for IrcServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A PRIVMSG the reader received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Privmsg {
    /// The sender's nick.
    pub from: String,
    pub text: String,
}

/// A client registered as one nick, collecting what is said to it.
pub struct IrcReader {
    pub nick: String,
    received: Arc<Mutex<Vec<Privmsg>>>,
    task: tokio::task::JoinHandle<()>,
}

impl IrcReader {
    /// Connects to `port` on 127.0.0.1 and registers as `nick` (waits for the welcome).
    pub async fn connect(port: u16, nick: &str) -> IrcReader {
        let stream = TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connecting to the IRC server");
        let (read, mut write) = stream.into_split();
        write
            .write_all(format!("NICK {nick}\r\nUSER reader 0 * :fmn test reader\r\n").as_bytes())
            .await
            .expect("registering");
        let mut lines = BufReader::new(read).lines();
        loop {
            let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
                .await
                .expect("the server welcomes the reader")
                .expect("reading")
                .expect("the server closed the connection during registration");
            if let Some(token) = line.strip_prefix("PING ") {
                let _ = write
                    .write_all(format!("PONG {token}\r\n").as_bytes())
                    .await;
            }
            if line.split(' ').nth(1) == Some("001") {
                break;
            }
            assert!(
                line.split(' ').nth(1) != Some("433"),
                "nick {nick} is in use"
            );
        }
        let received = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&received);
        let task = tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(token) = line.strip_prefix("PING ") {
                    let _ = write
                        .write_all(format!("PONG {token}\r\n").as_bytes())
                        .await;
                    continue;
                }
                if let Some(msg) = parse_privmsg(&line) {
                    sink.lock().unwrap().push(msg);
                }
            }
        });
        IrcReader {
            nick: nick.to_string(),
            received,
            task,
        }
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Privmsg> {
        self.received.lock().unwrap().clone()
    }

    /// Waits (up to `timeout`) until `count` PRIVMSGs arrived; returns what arrived.
    pub async fn wait_for(&self, count: usize, timeout: Duration) -> Vec<Privmsg> {
        let deadline = tokio::time::Instant::now() + timeout;
        while self.received.lock().unwrap().len() < count && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.received()
    }
}

impl Drop for IrcReader {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `:nick!user@host PRIVMSG target :text` → the sender and the text.
fn parse_privmsg(line: &str) -> Option<Privmsg> {
    let rest = line.strip_prefix(':')?;
    let (prefix, rest) = rest.split_once(' ')?;
    let rest = rest.strip_prefix("PRIVMSG ")?;
    let (_target, text) = rest.split_once(" :")?;
    Some(Privmsg {
        from: prefix.split('!').next().unwrap_or(prefix).to_string(),
        text: text.to_string(),
    })
}

/// True when the tests run as root (the servers then run as `nobody`, or are told to run as
/// root: Atheme refuses root, InspIRCd needs `--runasroot`).
fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

const LINK_PASSWORD: &str = "fmn-test-link";

fn inspircd_config(dir: &Path, port: u16, link_port: u16) -> String {
    let d = dir.display();
    // High command rates and no fake lag: the tests' bot keeps its own pace.
    format!(
        r#"<config format="xml">
<server name="irc.fmn.test" description="fmn test server" network="fmntest">
<admin name="fmn tests" nick="fmn" email="root@localhost">
<bind address="127.0.0.1" port="{port}" type="clients">
<bind address="127.0.0.1" port="{link_port}" type="servers">
<connect name="main" allow="*" timeout="60" pingfreq="120" sendq="1048576" recvq="8192" localmax="1000" globalmax="1000" threshold="1000" commandrate="1000000" fakelag="no" limit="5000" resolvehostnames="no" useident="no">
<files motd="{d}/motd.txt">
<pid file="{d}/inspircd.pid">
<log method="file" type="* -USERINPUT -USEROUTPUT" level="default" target="{d}/inspircd.log">
<module name="spanningtree">
<module name="services_account">
<module name="sasl">
<module name="cap">
<link name="services.fmn.test" ipaddr="127.0.0.1" port="{link_port}" allowmask="127.0.0.0/8" timeout="60" sendpass="{LINK_PASSWORD}" recvpass="{LINK_PASSWORD}">
<uline server="services.fmn.test" silent="yes">
<sasl target="services.fmn.test">
<options prefixquit="Quit: " syntaxhints="no" defaultmodes="">
"#
    )
}

fn atheme_config(link_port: u16) -> String {
    // NickServ's and SaslServ's modules only; no mail (auth = none), no registration limits.
    format!(
        r#"loadmodule "modules/protocol/inspircd";
loadmodule "modules/backend/opensex";
loadmodule "modules/crypto/pbkdf2v2";
loadmodule "modules/nickserv/main";
loadmodule "modules/nickserv/identify";
loadmodule "modules/nickserv/info";
loadmodule "modules/nickserv/register";
loadmodule "modules/nickserv/status";
loadmodule "modules/saslserv/main";
loadmodule "modules/saslserv/plain";
serverinfo {{
	name = "services.fmn.test"; desc = "fmn test services"; numeric = "00A";
	recontime = 1; netname = "fmntest"; hidehostsuffix = "users.fmn.test";
	adminname = "fmn tests"; adminemail = "root@localhost"; registeremail = "root@localhost";
	loglevel = {{ error; info; admin; network; }};
	maxlogins = 5; maxusers = 5; mdlimit = 30; emaillimit = 10; emailtime = 300;
	auth = none; casemapping = rfc1459;
}};
uplink "irc.fmn.test" {{ host = "127.0.0.1"; password = "{LINK_PASSWORD}"; port = {link_port}; }};
nickserv {{ nick = "NickServ"; user = "NickServ"; host = "services.fmn.test"; real = "Nickname Services"; maxnicks = 5; expire = 30; }};
saslserv {{ nick = "SaslServ"; user = "SaslServ"; host = "services.fmn.test"; real = "SASL Authentication Agent"; }};
general {{
	ratelimit_uses = 1000; ratelimit_period = 1; flood_msgs = 1000; flood_time = 1;
	commit_interval = 5; uplink_sendq_limit = 1048576; language = "en"; immune_level = immune;
}};
"#
    )
}

/// InspIRCd with Atheme as its services. Stopped when dropped.
pub struct ServicesNetwork {
    inspircd: Child,
    atheme: Child,
    /// The client port.
    pub port: u16,
    dir: tempfile::TempDir,
}

impl ServicesNetwork {
    /// Starts InspIRCd, then Atheme, and waits until NickServ answers.
    pub async fn start() -> ServicesNetwork {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let d = dir.path();
        let (port, link_port) = (crate::free_port(), crate::free_port());
        std::fs::write(d.join("inspircd.conf"), inspircd_config(d, port, link_port))
            .expect("writing inspircd.conf");
        std::fs::write(d.join("motd.txt"), "fmn test server\n").expect("motd");
        std::fs::write(d.join("atheme.conf"), atheme_config(link_port)).expect("atheme.conf");
        let root = running_as_root();
        let log = |name: &str| std::fs::File::create(d.join(name)).expect("log file");
        let mut inspircd = Command::new(binary("inspircd", &["/usr/sbin"]));
        inspircd
            .arg("--nofork")
            .arg(format!("--config={}", d.join("inspircd.conf").display()));
        if root {
            inspircd.arg("--runasroot");
        }
        let inspircd = inspircd
            .stdin(Stdio::null())
            .stdout(log("inspircd.out"))
            .stderr(log("inspircd.err"))
            .spawn()
            .expect("starting inspircd");
        let atheme_bin = binary("atheme-services", &["/usr/bin", "/usr/sbin"]);
        let mut atheme = if root {
            open_to_all(d);
            let mut c = Command::new("setpriv");
            c.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"])
                .arg(atheme_bin);
            c
        } else {
            Command::new(atheme_bin)
        };
        let atheme = atheme
            .arg("-n")
            .arg("-c")
            .arg(d.join("atheme.conf"))
            .arg("-D")
            .arg(d)
            .arg("-l")
            .arg(d.join("atheme.log"))
            .arg("-p")
            .arg(d.join("atheme.pid"))
            .stdin(Stdio::null())
            .stdout(log("atheme.out"))
            .stderr(log("atheme.err"))
            .spawn()
            .expect("starting atheme-services");
        let network = ServicesNetwork {
            inspircd,
            atheme,
            port,
            dir,
        };
        // Atheme retries its link every second until InspIRCd listens.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if network.nickserv_answers().await {
                return network;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "NickServ did not answer. Logs:\n{}",
                network.logs()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Everything the servers logged.
    pub fn logs(&self) -> String {
        [
            "inspircd.out",
            "inspircd.err",
            "inspircd.log",
            "atheme.out",
            "atheme.err",
            "atheme.log",
        ]
        .iter()
        .map(|f| {
            format!(
                "== {f}\n{}",
                std::fs::read_to_string(self.dir.path().join(f)).unwrap_or_default()
            )
        })
        .collect()
    }

    async fn nickserv_answers(&self) -> bool {
        let Ok(mut c) =
            RawClient::connect(self.port, &format!("probe{}", crate::free_port())).await
        else {
            return false;
        };
        c.send("PRIVMSG NickServ :INFO nobody-at-all").await;
        let answered = c
            .wait_for(Duration::from_secs(2), |l| {
                l.contains("NOTICE") || l.contains(" 401 ")
            })
            .await
            .is_some_and(|l| l.contains("NOTICE"));
        c.send("QUIT").await;
        answered
    }

    /// Registers `nick` with NickServ (password `password`), as its owner would.
    pub async fn register_nick(&self, nick: &str, password: &str) {
        let mut c = RawClient::connect(self.port, nick)
            .await
            .expect("connecting to register a nick");
        c.send(&format!(
            "PRIVMSG NickServ :REGISTER {password} {nick}@example.org"
        ))
        .await;
        let answer = c
            .wait_for(Duration::from_secs(10), |l| l.contains("NickServ"))
            .await;
        assert!(
            answer
                .as_deref()
                .is_some_and(|l| l.contains("is now registered")),
            "registering {nick}: {answer:?}"
        );
        c.send("QUIT").await;
        c.closed().await;
    }
}

impl Drop for ServicesNetwork {
    fn drop(&mut self) {
        for child in [&mut self.atheme, &mut self.inspircd] {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A registered client on a raw TCP stream, for the harness's own questions.
struct RawClient {
    lines: tokio::io::Lines<BufReader<tokio::net::tcp::OwnedReadHalf>>,
    write: tokio::net::tcp::OwnedWriteHalf,
}

impl RawClient {
    async fn connect(port: u16, nick: &str) -> std::io::Result<RawClient> {
        let stream = TcpStream::connect(("127.0.0.1", port)).await?;
        let (read, write) = stream.into_split();
        let mut c = RawClient {
            lines: BufReader::new(read).lines(),
            write,
        };
        c.send(&format!(
            "NICK {nick}\r\nUSER harness 0 * :fmn test harness"
        ))
        .await;
        match c
            .wait_for(Duration::from_secs(10), |l| {
                l.split(' ')
                    .nth(1)
                    .is_some_and(|code| code == "001" || code == "433")
            })
            .await
        {
            Some(l) if l.split(' ').nth(1) == Some("001") => Ok(c),
            other => Err(std::io::Error::other(format!("not welcomed: {other:?}"))),
        }
    }

    async fn send(&mut self, line: &str) {
        let _ = self.write.write_all(format!("{line}\r\n").as_bytes()).await;
    }

    /// The first line matching `wanted` within `timeout` (answering PINGs meanwhile).
    async fn wait_for(
        &mut self,
        timeout: Duration,
        wanted: impl Fn(&str) -> bool,
    ) -> Option<String> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let line = tokio::time::timeout_at(deadline, self.lines.next_line())
                .await
                .ok()?
                .ok()??;
            if let Some(token) = line.strip_prefix("PING ") {
                self.send(&format!("PONG {token}")).await;
            } else if wanted(&line) {
                return Some(line);
            }
        }
    }

    /// Waits for the server to close the connection (after a QUIT).
    async fn closed(&mut self) {
        let _ = self.wait_for(Duration::from_secs(5), |_| false).await;
    }
}
