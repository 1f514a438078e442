//! The FASJSON and Pagure stand-ins (`tests/stand-ins/fedora_services.py`): neither service can
//! run here, so a small Python server serves their documented answers (paths, paging, error
//! bodies) from a data file the test edits, on 127.0.0.1 and a free port.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use serde_json::{json, Value};

/// A running stand-in; killed when dropped.
pub struct FedoraServices {
    child: Child,
    /// `http://127.0.0.1:PORT`: FASJSON's `/v1/…` and Pagure's `/api/0/…` both live here.
    pub url: String,
    data_file: Option<PathBuf>,
    _dir: tempfile::TempDir,
}

impl FedoraServices {
    /// Serves `data` (see the script's description for its shape).
    pub fn start(data: &Value) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let file = dir.path().join("fedora-services.json");
        std::fs::write(&file, serde_json::to_vec_pretty(data).unwrap()).unwrap();
        let mut command = script();
        command.arg("--data").arg(&file);
        Self::spawn(command, Some(file), dir)
    }

    /// Serves `data` with FASJSON behind Kerberos: its paths require a Negotiate token that
    /// the service keytab `keytab` verifies (MIT krb5 configured by `krb5_conf`).
    pub fn start_kerberos(
        data: &Value,
        keytab: &std::path::Path,
        krb5_conf: &std::path::Path,
    ) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let file = dir.path().join("fedora-services.json");
        std::fs::write(&file, serde_json::to_vec_pretty(data).unwrap()).unwrap();
        // Debian's python3-gssapi is a module of the system interpreter, which a venv's
        // `python3` first on PATH would not see.
        let mut command = Command::new("/usr/bin/python3");
        command
            .arg(crate::repo_root().join("tests/stand-ins/fedora_services.py"))
            .arg("--data")
            .arg(&file)
            .arg("--kerberos-keytab")
            .arg(keytab)
            .env("KRB5_CONFIG", krb5_conf);
        Self::spawn(command, Some(file), dir)
    }

    /// Serves a generated world: `users=N,packages=N,groups=N`.
    pub fn synthetic(spec: &str) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut command = script();
        command.arg("--synthetic").arg(spec);
        Self::spawn(command, None, dir)
    }

    fn spawn(mut command: Command, data_file: Option<PathBuf>, dir: tempfile::TempDir) -> Self {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting python3 tests/stand-ins/fedora_services.py");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .expect("the stand-in's first line");
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("the stand-in said {line:?}"))
            .to_string();
        Self {
            child,
            url,
            data_file,
            _dir: dir,
        }
    }

    /// Replaces the data (the stand-in reads the file again on its next request).
    pub fn set_data(&self, data: &Value) {
        let file = self.data_file.as_ref().expect("a data-file stand-in");
        // A new mtime even within the file system's timestamp granularity: write elsewhere, rename.
        let tmp = file.with_extension("new");
        std::fs::write(&tmp, serde_json::to_vec_pretty(data).unwrap()).unwrap();
        std::fs::rename(&tmp, file).unwrap();
    }

    /// Source settings pointing both clients at this stand-in, with small pages so paging is
    /// exercised.
    pub fn settings(&self, page_size: u32) -> fmn_sources::SourceSettings {
        fmn_sources::SourceSettings {
            page_size,
            ..fmn_sources::SourceSettings::local(&self.url)
        }
    }

    /// Requests served so far, by path prefix (`/v1/users/`, `/api/0/`…).
    pub async fn requests(&self) -> Value {
        reqwest::get(format!("{}/_stand-in/requests", self.url))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

impl Drop for FedoraServices {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn script() -> Command {
    let mut c = Command::new("python3");
    c.arg(crate::repo_root().join("tests/stand-ins/fedora_services.py"));
    c
}

/// A user entry of the data file.
pub fn user(emails: &[&str], ircnicks: &[&str], locked: bool) -> Value {
    json!({"emails": emails, "ircnicks": ircnicks, "locked": locked})
}
