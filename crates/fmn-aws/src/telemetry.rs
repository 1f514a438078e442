//! Logging set-up: JSON lines in Lambda (CloudWatch parses them), compact text on a terminal.

use tracing_subscriber::{fmt, EnvFilter};

/// Installs the global subscriber once; later calls are no-ops. `RUST_LOG` sets the filter
/// (default `info`).
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let result = if in_lambda() || std::env::var("FMN_LOG_FORMAT").as_deref() == Ok("json") {
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

/// Whether this process is a Lambda function (its runtime sets the variable).
pub fn in_lambda() -> bool {
    std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some()
}

/// The namespace of fmn's CloudWatch metrics.
pub const METRIC_NAMESPACE: &str = "fmn";

/// A count in CloudWatch's embedded metric format: a JSON line with an `_aws` key, which
/// CloudWatch Logs turns into a data point of `metric` (namespace [`METRIC_NAMESPACE`], these
/// dimensions) when a Lambda function prints it. No API call and no IAM permission: the
/// function's log group carries it.
pub fn emf_count(metric: &str, dimensions: &[(&str, &str)], count: u64, at_ms: u64) -> String {
    let mut line = serde_json::Map::new();
    let names: Vec<&str> = dimensions.iter().map(|(k, _)| *k).collect();
    line.insert(
        "_aws".into(),
        serde_json::json!({
            "Timestamp": at_ms,
            "CloudWatchMetrics": [{
                "Namespace": METRIC_NAMESPACE,
                "Dimensions": [names],
                "Metrics": [{"Name": metric, "Unit": "Count"}],
            }],
        }),
    );
    for (k, v) in dimensions {
        line.insert((*k).into(), (*v).into());
    }
    line.insert(metric.into(), count.into());
    serde_json::Value::Object(line).to_string()
}

/// Prints [`emf_count`] on stdout when running in Lambda; elsewhere nothing reads it (the
/// caller's log line says the same).
pub fn emit_count(metric: &str, dimensions: &[(&str, &str)], count: u64) {
    if in_lambda() {
        println!(
            "{}",
            emf_count(metric, dimensions, count, crate::dynamo::now_millis())
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_count_is_an_embedded_metric_format_line() {
        let line = emf_count(
            "NoiseDropped",
            &[("Function", "fmn-match"), ("Reason", "junk-topic")],
            1,
            42,
        );
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["_aws"]["Timestamp"], 42);
        let m = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(m["Namespace"], "fmn");
        assert_eq!(m["Dimensions"], serde_json::json!([["Function", "Reason"]]));
        assert_eq!(
            m["Metrics"][0],
            serde_json::json!({"Name": "NoiseDropped", "Unit": "Count"})
        );
        assert_eq!(
            (&v["Function"], &v["Reason"], &v["NoiseDropped"]),
            (&"fmn-match".into(), &"junk-topic".into(), &1.into())
        );
        assert!(!line.contains('\n'), "one line");
    }
}
