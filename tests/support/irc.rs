//! A real IRC server for tests: Debian's ngIRCd (installed by `make deps`), started on
//! 127.0.0.1 on a free port with a configuration in a temporary directory, in the foreground
//! (`ngircd -n -f <conf>`), with the flood protection of a normal ngIRCd (its default command
//! penalties: a client that sends faster than the server reads is throttled, the server's
//! read buffer is bounded). Stopped when dropped.
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
    dir: tempfile::TempDir,
}

fn config(port: u16, dir: &Path) -> String {
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
         \tPAM = no\n",
        pid = dir.join("ngircd.pid").display(),
    )
}

impl IrcServer {
    /// Starts ngIRCd and waits until it accepts connections.
    pub fn start() -> IrcServer {
        let binary = ngircd_binary();
        for _attempt in 0..5 {
            let dir = tempfile::tempdir().expect("a temporary directory");
            let port = crate::free_port();
            let conf = dir.path().join("ngircd.conf");
            std::fs::write(&conf, config(port, dir.path())).expect("writing ngircd.conf");
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
            let mut server = IrcServer { child, port, dir };
            for _ in 0..100 {
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
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
