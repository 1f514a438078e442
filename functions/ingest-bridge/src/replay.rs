//! Replays the bundled sample of real bus messages into the ingest queue.

use std::time::Duration;

use fmn_aws::sqs::{send_all, OutgoingMessage, SqsError};
use tokio_util::sync::CancellationToken;

/// Real fedmsg messages (see `tests/data/README.md` for origin and licence).
pub const SAMPLE: &str = include_str!("../../../tests/data/fedmsg-examples.jsonl");

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("sample line {line}: {reason}")]
    BadLine { line: usize, reason: String },
    #[error(transparent)]
    Sqs(#[from] SqsError),
}

/// The envelopes of a JSON Lines sample: each line is an envelope, or an object holding one
/// under `message`. An envelope without `msg_id` gets one derived from its content, so a
/// replay of the same sample always carries the same ids. The bundled sample comes from test
/// fixtures that reuse some ids for different messages; a repeated id gets a `-N` suffix, so
/// downstream de-duplication does not hide those examples.
pub fn envelopes(sample: &str) -> Result<Vec<(String, String)>, ReplayError> {
    let mut out = Vec::new();
    let mut seen = std::collections::HashMap::<String, usize>::new();
    for (n, line) in sample
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let bad = |reason: String| ReplayError::BadLine {
            line: n + 1,
            reason,
        };
        let value: serde_json::Value =
            serde_json::from_str(line).map_err(|e| bad(e.to_string()))?;
        let mut envelope = match value.get("message") {
            Some(m) if m.is_object() => m.clone(),
            _ => value,
        };
        let obj = envelope
            .as_object_mut()
            .ok_or_else(|| bad("not a JSON object".into()))?;
        if !obj.get("topic").is_some_and(serde_json::Value::is_string) {
            return Err(bad("no `topic`".into()));
        }
        let mut id = match obj.get("msg_id").and_then(serde_json::Value::as_str) {
            Some(id) => id.to_string(),
            None => format!("sample-{}", content_id(line)),
        };
        let repeats = seen.entry(id.clone()).or_default();
        *repeats += 1;
        if *repeats > 1 {
            id = format!("{id}-{repeats}");
        }
        obj.insert("msg_id".into(), serde_json::Value::String(id.clone()));
        out.push((id, envelope.to_string()));
    }
    Ok(out)
}

fn content_id(text: &str) -> String {
    // FNV-1a: stable across runs and platforms, no dependency for a sample id.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// Sends the sample to `queue_url` at `interval` per message, logging progress every 50
/// messages. Returns how many were sent; stops early (without losing a sent one) on shutdown.
pub async fn replay(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    sample: &str,
    interval: Duration,
    shutdown: &CancellationToken,
) -> Result<usize, ReplayError> {
    let envelopes = envelopes(sample)?;
    let total = envelopes.len();
    tracing::info!(
        total,
        per_second = 1.0 / interval.as_secs_f64(),
        "replaying the bundled sample of real bus messages"
    );
    let mut ticker = tokio::time::interval(interval);
    for (n, (id, body)) in envelopes.iter().enumerate() {
        tokio::select! {
            _ = shutdown.cancelled() => {
                tracing::info!(sent = n, total, "replay stopped by shutdown");
                return Ok(n);
            }
            _ = ticker.tick() => {}
        }
        send_all(sqs, queue_url, &[OutgoingMessage::new(id, body.as_str())]).await?;
        let sent = n + 1;
        if sent % 50 == 0 || sent == total {
            tracing::info!("replay: {sent}/{total} messages sent");
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_sample_is_all_envelopes_with_ids() {
        let envelopes = envelopes(SAMPLE).unwrap();
        assert!(envelopes.len() > 400);
        let ids: std::collections::HashSet<_> = envelopes.iter().map(|(id, _)| id).collect();
        assert_eq!(ids.len(), envelopes.len(), "ids are unique");
        for (id, body) in &envelopes {
            let v: serde_json::Value = serde_json::from_str(body).unwrap();
            assert_eq!(v["msg_id"].as_str(), Some(id.as_str()));
            assert!(v["topic"].is_string());
        }
    }

    #[test]
    fn bare_envelopes_and_wrapped_ones_are_read_alike() {
        let bare = r#"{"topic":"org.fedoraproject.prod.x","msg_id":"1","msg":{}}"#;
        let wrapped = format!(r#"{{"message":{bare}}}"#);
        assert_eq!(envelopes(bare).unwrap(), envelopes(&wrapped).unwrap());
    }

    #[test]
    fn bad_lines_name_their_number() {
        let err = envelopes("{\"topic\":\"a\"}\nnope\n").unwrap_err();
        assert!(err.to_string().starts_with("sample line 2"), "{err}");
    }
}
