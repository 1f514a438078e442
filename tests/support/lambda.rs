//! The functions' real binaries under a Lambda runtime: the `bootstrap` files `cargo lambda
//! build` packages (`make lambda-debug`, which `make test` runs; `make lambda` for release),
//! each started the way Lambda starts it (a clean environment: the Lambda variables, the
//! template's variables for the function, the AWS credentials and region), polling the
//! runtime API of cargo-lambda's emulator (`cargo lambda watch --only-lambda-apis`), which the
//! tests invoke through Lambda's Invoke API and function URLs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime};

use fmn_aws::template::{FunctionSpec, Template};
use fmn_aws::{FunctionName, QueueName, TableName};

use crate::{repo_root, TestEnv};

/// What a test says when cargo-lambda is missing.
const INSTALL_HINT: &str =
    "run tools/cargo-lambda/install.sh (`make deps` does) to install the pinned cargo-lambda";

/// The `cargo-lambda` binary: the pinned venv's (`tools/cargo-lambda/install.sh`), else one
/// on the PATH. Fails, naming the installer, when there is none.
pub fn cargo_lambda() -> PathBuf {
    let local = std::env::var_os("FMN_LOCAL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".local"));
    let venv = local.join("venv-cargo-lambda/bin/cargo-lambda");
    if venv.is_file() {
        return venv;
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join("cargo-lambda");
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    panic!(
        "cargo-lambda is not installed ({} is missing): {INSTALL_HINT}",
        venv.display()
    );
}

/// The build's target directory (`CARGO_TARGET_DIR` or `target/`): the test executable is
/// `<target>/<profile>/deps/<test>-<hash>`.
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's path");
    exe.parent()
        .and_then(Path::parent)
        .and_then(Path::parent)
        .expect("<target>/<profile>/deps")
        .to_path_buf()
}

/// The newest modification time of what the function binaries are built from: the crates they
/// link (their `src/`, every file: the web-api embeds its page; and manifests), the template
/// (compiled in) and the workspace's manifest and lock file. Not the crates' tests: a test
/// writing a file there (proptest's regressions) changes no binary.
fn newest_source() -> (SystemTime, PathBuf) {
    fn consider(path: PathBuf, newest: &mut (SystemTime, PathBuf)) {
        if path.is_dir() {
            for entry in std::fs::read_dir(&path).into_iter().flatten().flatten() {
                consider(entry.path(), newest);
            }
        } else if let Ok(modified) = std::fs::metadata(&path).and_then(|m| m.modified()) {
            if modified > newest.0 {
                *newest = (modified, path);
            }
        }
    }
    let root = repo_root();
    let mut newest = (SystemTime::UNIX_EPOCH, root.join("Cargo.lock"));
    let mut inputs = vec![
        "infra/template.yaml".to_string(),
        "Cargo.lock".to_string(),
        "Cargo.toml".to_string(),
    ];
    let crates = [
        "crates/fmn-core",
        "crates/fmn-aws",
        "crates/fmn-sources",
        "crates/fmn-workspace-hack",
    ]
    .map(String::from)
    .into_iter()
    .chain(
        FunctionName::ALL
            .iter()
            .map(|f| format!("functions/{}", f.suffix())),
    );
    for dir in crates {
        inputs.push(format!("{dir}/src"));
        inputs.push(format!("{dir}/Cargo.toml"));
    }
    for input in inputs {
        consider(root.join(input), &mut newest);
    }
    newest
}

/// `<target>/lambda/<binary>/bootstrap`, as `cargo lambda build` left it. Fails when it is
/// missing or older than a source file (a test must not pass on yesterday's binary).
pub fn bootstrap(function: FunctionName) -> PathBuf {
    let path = target_dir()
        .join("lambda")
        .join(function.binary())
        .join("bootstrap");
    let build = "run `make lambda-debug` (cargo lambda build --compiler cargo for the five \
                 functions; `make test` does)";
    let built = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .unwrap_or_else(|_| panic!("{} is missing: {build}", path.display()));
    let (newest, source) = newest_source();
    assert!(
        built >= newest,
        "{} is older than {}: {build}",
        path.display(),
        source.display()
    );
    path
}

/// Stops (SIGKILL) and reaps a child process when dropped.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn log_file(dir: &Path, name: &str) -> std::fs::File {
    std::fs::File::create(dir.join(name)).expect("creating a log file")
}

/// cargo-lambda's Lambda emulator (`cargo lambda watch --only-lambda-apis`) on a free port of
/// 127.0.0.1: the runtime API the binaries poll, Lambda's Invoke API and function URLs.
/// Stopped when dropped.
pub struct Emulator {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Reaped,
}

impl Emulator {
    /// Starts the emulator; `timeout` is how long an invocation may take.
    pub fn start(timeout: Duration) -> Emulator {
        let binary = cargo_lambda();
        let dir = tempfile::tempdir().expect("a temporary directory");
        let port = crate::free_port();
        let log = log_file(dir.path(), "emulator.log");
        let child = Command::new(&binary)
            .args(["lambda", "watch", "--only-lambda-apis", "--ignore-changes"])
            .args(["--invoke-address", "127.0.0.1"])
            .args(["--invoke-port", &port.to_string()])
            .args(["--timeout", &timeout.as_secs().to_string()])
            .arg("--manifest-path")
            .arg(repo_root().join("Cargo.toml"))
            .current_dir(repo_root())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}; {INSTALL_HINT}", binary.display()));
        let mut emulator = Emulator {
            port,
            dir,
            child: Reaped(child),
        };
        for _ in 0..300 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return emulator;
            }
            if let Ok(Some(status)) = emulator.child.0.try_wait() {
                panic!(
                    "cargo lambda watch exited ({status}). Its log:\n{}",
                    emulator.log()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "cargo lambda watch did not listen on {port} in 30 s. Its log:\n{}",
            emulator.log()
        );
    }

    /// What the emulator logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("emulator.log")).unwrap_or_default()
    }

    /// The base URL the runtime of `binary` polls (`AWS_LAMBDA_RUNTIME_API`).
    pub fn runtime_api(&self, binary: &str) -> String {
        format!("http://127.0.0.1:{}/.rt/{binary}", self.port)
    }

    /// Invokes `binary` with `event` (Lambda's Invoke API, synchronous): the status and the
    /// function's response.
    pub async fn invoke(
        &self,
        binary: &str,
        event: &serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let url = format!(
            "http://127.0.0.1:{}/2015-03-31/functions/{binary}/invocations",
            self.port
        );
        let response = reqwest::Client::new()
            .post(url)
            .json(event)
            .send()
            .await
            .expect("invoking the function through the emulator");
        let status = response.status().as_u16();
        let text = response.text().await.expect("the invocation's response");
        let body = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
        (status, body)
    }

    /// The function URL of `binary` (`/lambda-url/<binary>`), to which `path` is appended.
    pub fn function_url(&self, binary: &str, path: &str) -> String {
        format!("http://127.0.0.1:{}/lambda-url/{binary}{path}", self.port)
    }
}

/// The template for the test's resources, as a stack deployed with `NamePrefix` = the test's
/// prefix and its secrets' parameters under `/<prefix>/` (see [`store_secrets`]).
pub fn template(env: &TestEnv) -> Template {
    let prefix = env.clients.names.prefix();
    let overrides = std::collections::HashMap::from([
        ("NamePrefix".to_string(), prefix.to_string()),
        (
            "UnsubscribeSecretParameter".to_string(),
            format!("{prefix}/unsubscribe-secret"),
        ),
        // Not stored: the bot runs without NickServ, as the template allows.
        (
            "IrcPasswordParameter".to_string(),
            format!("{prefix}/irc-password"),
        ),
        (
            "MatrixAccessTokenParameter".to_string(),
            format!("{prefix}/matrix-access-token"),
        ),
    ]);
    Template::parse(fmn_aws::template::TEMPLATE_YAML, &overrides).expect("the template parses")
}

/// What EventBridge sends `function` for its first schedule (a `rate(...)` rule) of the
/// test's template.
pub fn scheduled_event(env: &TestEnv, function: FunctionName) -> serde_json::Value {
    let rule = template(env)
        .function(function.logical_id())
        .unwrap_or_else(|| panic!("{} is in the template", function.logical_id()))
        .schedules[0]
        .name
        .clone();
    serde_json::json!({
        "version": "0",
        "id": uuid::Uuid::new_v4().to_string(),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "000000000000",
        "time": "2026-12-01T00:00:00Z",
        "region": std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into()),
        "resources": [format!("arn:aws:events:us-east-1:000000000000:rule/{rule}")],
        "detail": {}
    })
}

/// The test stack's unsubscribe key as the README's deploy steps store it: an SSM SecureString
/// (LocalStack), which the functions read at cold start.
pub async fn store_secrets(env: &TestEnv) {
    let ssm = aws_sdk_ssm::Client::new(&aws_config::load_from_env().await);
    ssm.put_parameter()
        .name(format!(
            "/{}/unsubscribe-secret",
            env.clients.names.prefix()
        ))
        .value(uuid::Uuid::new_v4().simple().to_string().repeat(2))
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .overwrite(true)
        .send()
        .await
        .expect("PutParameter on LocalStack");
}

/// The environment Lambda gives `function` in a stack made from the template for the test's
/// resources: its scalar variables, then each resource variable set to the provisioned queue's
/// URL or table's name.
pub fn function_environment(env: &TestEnv, function: FunctionName) -> BTreeMap<String, String> {
    let template = template(env);
    let spec: &FunctionSpec = template
        .function(function.logical_id())
        .unwrap_or_else(|| panic!("the template has no {}", function.logical_id()));
    let mut vars = spec.environment.clone();
    for (variable, logical_id) in &spec.resource_variables {
        let value = if let Some(queue) = QueueName::from_logical_id(logical_id) {
            env.queue_url(queue).to_string()
        } else if let Some(table) = TableName::from_logical_id(logical_id) {
            env.clients.names.table(table)
        } else if let Some(name) = template.configuration_sets.get(logical_id) {
            name.clone()
        } else {
            panic!("{variable} names {logical_id}, neither a queue nor a table");
        };
        vars.insert(variable.clone(), value);
    }
    vars
}

/// The Matrix bot's access token where the template's deliver-matrix reads it (an SSM
/// SecureString, as the README's deploy steps store it).
pub async fn store_matrix_token(env: &TestEnv, token: &str) {
    let ssm = aws_sdk_ssm::Client::new(&aws_config::load_from_env().await);
    ssm.put_parameter()
        .name(format!(
            "/{}/matrix-access-token",
            env.clients.names.prefix()
        ))
        .value(token)
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .overwrite(true)
        .send()
        .await
        .expect("PutParameter on LocalStack");
}

/// One function's real binary, started as Lambda starts it, polling the emulator. Stopped when
/// dropped.
pub struct LambdaProcess {
    pub function: FunctionName,
    dir: tempfile::TempDir,
    child: Reaped,
}

impl LambdaProcess {
    /// Starts `function`'s bootstrap with the template's environment for it (`env`), the
    /// variables a Lambda runtime sets, the AWS credentials, region and endpoints of the
    /// emulators, and `overrides` last (e.g. the IRC server of the test).
    pub fn start(
        emulator: &Emulator,
        env: &TestEnv,
        function: FunctionName,
        overrides: &[(&str, String)],
    ) -> LambdaProcess {
        let bootstrap = bootstrap(function);
        let dir = tempfile::tempdir().expect("a temporary directory");
        let template = template(env);
        let spec = template
            .function(function.logical_id())
            .expect("the function");
        let memory = template_memory(function);
        let mut vars = function_environment(env, function);
        // What Lambda sets for a custom runtime (provided.al2023).
        let lambda_vars = [
            (
                "AWS_LAMBDA_RUNTIME_API",
                emulator.runtime_api(function.binary()),
            ),
            ("AWS_LAMBDA_FUNCTION_NAME", spec.name.clone()),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_string()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", memory.to_string()),
            (
                "AWS_LAMBDA_LOG_GROUP_NAME",
                format!("/aws/lambda/{}", spec.name),
            ),
            ("AWS_LAMBDA_LOG_STREAM_NAME", "fmn-test".to_string()),
            (
                "AWS_EXECUTION_ENV",
                "AWS_Lambda_provided.al2023".to_string(),
            ),
            ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".to_string()),
            ("_HANDLER", "bootstrap".to_string()),
            (
                "LAMBDA_TASK_ROOT",
                bootstrap.parent().unwrap().display().to_string(),
            ),
            ("LAMBDA_RUNTIME_DIR", "/var/runtime".to_string()),
            ("TZ", ":UTC".to_string()),
            ("LANG", "en_US.UTF-8".to_string()),
            ("PATH", "/usr/local/bin:/usr/bin/:/bin:/opt/bin".to_string()),
        ];
        for (k, v) in lambda_vars {
            vars.insert(k.to_string(), v);
        }
        // The role's credentials and the region (Lambda's), the emulators' endpoints (ours).
        for k in [
            "AWS_REGION",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_ENDPOINT_URL",
            "AWS_ENDPOINT_URL_DYNAMODB",
            "AWS_ENDPOINT_URL_SESV2",
        ] {
            let v = std::env::var(k).unwrap_or_else(|_| panic!("{k} is set by crate::init"));
            vars.insert(k.to_string(), v);
        }
        vars.insert(
            "AWS_DEFAULT_REGION".into(),
            std::env::var("AWS_REGION").unwrap(),
        );
        vars.insert("AWS_SESSION_TOKEN".into(), "test-session".into());
        for (k, v) in overrides {
            vars.insert(k.to_string(), v.clone());
        }
        let log = log_file(dir.path(), "function.log");
        let child = Command::new(&bootstrap)
            .env_clear()
            .envs(&vars)
            .current_dir(bootstrap.parent().unwrap())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", bootstrap.display()));
        LambdaProcess {
            function,
            dir,
            child: Reaped(child),
        }
    }

    /// What the function logged so far (JSON lines, as in CloudWatch).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("function.log")).unwrap_or_default()
    }

    /// Waits up to `timeout` for the process to exit (a refused configuration); its status.
    pub async fn wait_exit(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.0.try_wait().expect("the process's status") {
                return status;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} still runs after {timeout:?}. Its log:\n{}",
                self.function.binary(),
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Fails, with the function's log, if the process has exited.
    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.0.try_wait() {
            panic!(
                "{} exited ({status}). Its log:\n{}",
                self.function.binary(),
                self.log()
            );
        }
    }
}

/// `MemorySize` of `function` in the template (its own, else the `Globals`').
pub fn template_memory(function: FunctionName) -> u32 {
    let doc: serde_yaml::Value =
        serde_yaml::from_str(fmn_aws::template::TEMPLATE_YAML).expect("the template is YAML");
    let own = doc["Resources"][function.logical_id()]["Properties"]["MemorySize"].as_u64();
    let global = doc["Globals"]["Function"]["MemorySize"].as_u64();
    own.or(global).expect("a MemorySize") as u32
}
