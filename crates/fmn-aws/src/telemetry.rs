//! Logging set-up: JSON lines in Lambda (CloudWatch parses them), compact text on a terminal.

use tracing_subscriber::{fmt, EnvFilter};

/// Installs the global subscriber once; later calls are no-ops. `RUST_LOG` sets the filter
/// (default `info`).
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let in_lambda = std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some();
    let result = if in_lambda || std::env::var("FMN_LOG_FORMAT").as_deref() == Ok("json") {
        fmt()
            .json()
            .with_env_filter(filter)
            .with_current_span(false)
            .without_time()
            .try_init()
    } else {
        fmt()
            .compact()
            .with_env_filter(filter)
            .with_target(false)
            .try_init()
    };
    // Already installed (tests, or a runner that links several functions): keep the first.
    let _ = result;
}

/// Logging for an operator's command (`fmn dlq`, `fmn replay`): text on stderr, so it stays
/// out of the command's own output, and `warn` unless `RUST_LOG` says otherwise, so the
/// per-message lines of the functions' code it runs do not bury its progress.
pub fn init_for_command() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    let _ = fmt()
        .compact()
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        .with_target(false)
        .try_init();
}
