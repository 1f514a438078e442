//! The real Python `fedmsg` publisher (`tests/fedmsg-publisher/publisher.py`, in the venv made
//! by `tests/fedmsg-publisher/install.sh`), driven over its stdin/stdout JSON protocol.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::repo_root;

const WAIT: Duration = Duration::from_secs(120);

static VENV: Mutex<()> = Mutex::new(());

/// The venv's interpreter, creating the venv first if needed (under a lock shared by every
/// test process).
pub fn fedmsg_python() -> PathBuf {
    let _guard = VENV.lock().unwrap_or_else(|p| p.into_inner());
    let root = repo_root();
    let run = root.join(".local/run");
    std::fs::create_dir_all(&run).unwrap();
    let status = std::process::Command::new("flock")
        .arg(run.join("fedmsg-venv.lock"))
        .arg(root.join("tests/fedmsg-publisher/install.sh"))
        .status()
        .expect("running tests/fedmsg-publisher/install.sh");
    assert!(status.success(), "tests/fedmsg-publisher/install.sh failed");
    let local = std::env::var_os("FMN_LOCAL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join(".local"));
    local.join("venv-fedmsg/bin/python")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A running `publisher.py`, bound on a free local port. Killed when dropped.
pub struct PyPublisher {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    stdout: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    pub endpoint: String,
    log: PathBuf,
}

impl PyPublisher {
    /// Starts the publisher; every envelope it sends is appended to `dir/published.jsonl`.
    pub async fn start(dir: &Path) -> PyPublisher {
        Self::start_with(dir, &[]).await
    }

    /// [`PyPublisher::start`] with more `publisher.py` arguments (e.g. signing settings).
    pub async fn start_with(dir: &Path, extra: &[&str]) -> PyPublisher {
        let python = fedmsg_python();
        let endpoint = format!("tcp://127.0.0.1:{}", free_port());
        let log = dir.join("published.jsonl");
        let mut child = tokio::process::Command::new(python)
            .arg(repo_root().join("tests/fedmsg-publisher/publisher.py"))
            .args(["--endpoint", &endpoint, "--log"])
            .arg(&log)
            .args(extra)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("starting the fedmsg publisher");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut p = PyPublisher {
            child,
            stdin,
            stdout,
            endpoint,
            log,
        };
        let ready = p.answer().await;
        assert_eq!(ready["ready"], true, "{ready}");
        p
    }

    async fn answer(&mut self) -> Value {
        let line = tokio::time::timeout(WAIT, self.stdout.next_line())
            .await
            .expect("the publisher answers")
            .unwrap()
            .expect("the publisher is running");
        serde_json::from_str(&line).unwrap()
    }

    /// Sends one command and returns its answer.
    pub async fn cmd(&mut self, cmd: Value) -> Value {
        self.stdin
            .write_all(format!("{cmd}\n").as_bytes())
            .await
            .unwrap();
        self.stdin.flush().await.unwrap();
        self.answer().await
    }

    /// Publishes `msg` on the full `topic` through `fedmsg.publish`; returns the new msg_id.
    pub async fn message(&mut self, topic: &str, msg: &Value) -> String {
        let answer = self
            .cmd(json!({"cmd": "message", "topic": topic, "msg": msg}))
            .await;
        answer["msg_id"]
            .as_str()
            .unwrap_or_else(|| panic!("no msg_id in {answer}"))
            .to_string()
    }

    /// Every envelope sent so far: (msg_id, body as sent).
    pub fn published(&self) -> Vec<(String, String)> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l).unwrap();
                let body = v["body"].as_str().unwrap().to_string();
                let env: Value = serde_json::from_str(&body).unwrap();
                (env["msg_id"].as_str().unwrap().to_string(), body)
            })
            .collect()
    }

    pub async fn quit(mut self) {
        let _ = self.stdin.write_all(b"{\"cmd\": \"quit\"}\n").await;
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
    }
}
