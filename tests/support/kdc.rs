//! A real MIT Kerberos KDC (Debian's krb5-kdc) for the FASJSON Kerberos tests: a test realm
//! created in a temporary directory (`kdb5_util create`), principals and keytabs made with
//! `kadmin.local`, and `krb5kdc` run in the foreground as a plain process on a free port of
//! 127.0.0.1. KRB5_CONFIG and KRB5_KDC_PROFILE point at generated files, so nothing of the
//! machine's own Kerberos set-up is read or changed.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SBIN: &str = "/usr/sbin";

/// A running KDC; stopped when dropped.
pub struct Kdc {
    child: Child,
    pub realm: String,
    /// `127.0.0.1:PORT` (UDP and TCP).
    pub address: String,
    dir: tempfile::TempDir,
}

impl Kdc {
    /// A new realm with its KDC running.
    pub fn start(realm: &str) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let port = crate::free_port();
        let d = dir.path().display();
        std::fs::write(
            dir.path().join("kdc.conf"),
            format!(
                "[kdcdefaults]\n kdc_listen = 127.0.0.1:{port}\n kdc_tcp_listen = 127.0.0.1:{port}\n\
                 [realms]\n {realm} = {{\n  database_name = {d}/principal\n  \
                 key_stash_file = {d}/stash\n  acl_file = {d}/kadm5.acl\n  max_life = 10h\n  \
                 supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal\n  \
                 default_principal_flags = +preauth\n }}\n\
                 [logging]\n kdc = FILE:{d}/kdc.log\n"
            ),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("krb5.conf"),
            format!(
                "[libdefaults]\n default_realm = {realm}\n dns_lookup_kdc = false\n \
                 dns_lookup_realm = false\n rdns = false\n\
                 [realms]\n {realm} = {{\n  kdc = 127.0.0.1:{port}\n }}\n"
            ),
        )
        .unwrap();
        let mut kdc = Self {
            child: Command::new("true").spawn().unwrap(),
            realm: realm.to_string(),
            address: format!("127.0.0.1:{port}"),
            dir,
        };
        kdc.run(
            "kdb5_util",
            &[
                "create",
                "-s",
                "-r",
                realm,
                "-P",
                "master key of a throw-away test realm",
            ],
        );
        kdc.child = kdc
            .command("krb5kdc")
            .args(["-n", "-r", realm])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting /usr/sbin/krb5kdc (Debian's krb5-kdc; `make deps` installs it)");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(&kdc.address).is_err() {
            if let Ok(Some(status)) = kdc.child.try_wait() {
                panic!("krb5kdc exited ({status}): {}", kdc.log());
            }
            assert!(Instant::now() < deadline, "krb5kdc never listened");
            std::thread::sleep(Duration::from_millis(50));
        }
        kdc
    }

    /// The krb5.conf naming this realm's KDC (for the stand-in's GSSAPI).
    pub fn krb5_conf(&self) -> PathBuf {
        self.dir.path().join("krb5.conf")
    }

    /// Creates `principal` (of this realm) with a random key.
    pub fn add_principal(&self, principal: &str) {
        self.run(
            "kadmin.local",
            &[
                "-r",
                &self.realm,
                "-q",
                &format!("addprinc -randkey {principal}"),
            ],
        );
    }

    /// Writes the principal's keys to a new keytab file and returns its bytes. Like `kadmin
    /// ktadd`, this gives the principal new random keys: an earlier keytab goes stale.
    pub fn keytab(&self, principal: &str, name: &str) -> (PathBuf, Vec<u8>) {
        let path = self.dir.path().join(name);
        let _ = std::fs::remove_file(&path);
        self.run(
            "kadmin.local",
            &[
                "-r",
                &self.realm,
                "-q",
                &format!("ktadd -k {} {principal}", path.display()),
            ],
        );
        let bytes = std::fs::read(&path).expect("the keytab kadmin.local wrote");
        (path, bytes)
    }

    /// A KDC proxy in front of this KDC: FreeIPA's own `kdcproxy` (MS-KKDCP; Debian's
    /// python3-kdcproxy) served over HTTP on a free port of 127.0.0.1 by Python's wsgiref,
    /// configured to forward this realm to the KDC over TCP and never to ask DNS.
    pub fn proxy(&self) -> KdcProxy {
        let port = crate::free_port();
        let config = self.dir.path().join("kdcproxy.conf");
        std::fs::write(
            &config,
            format!(
                "[global]\nuse_dns = false\n[{}]\nkerberos = kerberos+tcp://{}\n",
                self.realm, self.address
            ),
        )
        .unwrap();
        let child = Command::new("/usr/bin/python3")
            .arg("-c")
            .arg(
                "import sys, kdcproxy, wsgiref.simple_server as s\n\
                 class Quiet(s.WSGIRequestHandler):\n    def log_message(self, *a): pass\n\
                 s.make_server('127.0.0.1', int(sys.argv[1]), kdcproxy.Application(), \
                 handler_class=Quiet).serve_forever()",
            )
            .arg(port.to_string())
            .env("KDCPROXY_CONFIG", &config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect(
                "running /usr/bin/python3 with kdcproxy (`make deps` installs python3-kdcproxy)",
            );
        let mut proxy = KdcProxy {
            child,
            url: format!("http://127.0.0.1:{port}/KdcProxy"),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = proxy.child.try_wait() {
                panic!("the KDC proxy exited ({status})");
            }
            assert!(Instant::now() < deadline, "the KDC proxy never listened");
            std::thread::sleep(Duration::from_millis(50));
        }
        proxy
    }

    /// The KDC's log (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("kdc.log")).unwrap_or_default()
    }

    fn command(&self, program: &str) -> Command {
        let mut c = Command::new(Path::new(SBIN).join(program));
        c.env("KRB5_CONFIG", self.krb5_conf())
            .env("KRB5_KDC_PROFILE", self.dir.path().join("kdc.conf"))
            .stdin(Stdio::null());
        c
    }

    fn run(&self, program: &str, args: &[&str]) {
        let out = self
            .command(program)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("running {SBIN}/{program}: {e} (`make deps` installs it)"));
        let stderr = String::from_utf8_lossy(&out.stderr);
        // kadmin.local reports a failed query on stderr with a zero exit status.
        assert!(
            out.status.success() && !stderr.contains("while "),
            "{program} {args:?}: {}\n{stderr}",
            out.status
        );
    }
}

impl Drop for Kdc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running KDC proxy ([`Kdc::proxy`]); stopped when dropped.
pub struct KdcProxy {
    child: Child,
    /// Where clients POST their messages.
    pub url: String,
}

impl Drop for KdcProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
