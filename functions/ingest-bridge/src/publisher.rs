//! A fedmsg publisher speaking the exact wire format (PUB socket, frames `[topic, body]`, body
//! the compact sorted-key envelope with `i`, `msg`, `msg_id`, `timestamp`, `topic`,
//! `username`), for the bench and the tests. The integration tests also use the real Python
//! `fedmsg` package (`tests/fedmsg-publisher`).

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::canonical::python_dumps;

pub struct Publisher {
    _ctx: zmq::Context,
    sock: zmq::Socket,
    endpoint: String,
    i: u64,
}

impl Publisher {
    /// Binds a PUB socket; `tcp://127.0.0.1:*` picks a free port (see `endpoint`).
    pub fn bind(endpoint: &str) -> Result<Self, zmq::Error> {
        let ctx = zmq::Context::new();
        let sock = ctx.socket(zmq::PUB)?;
        sock.set_sndhwm(0)?; // never drop on our side: the bench measures the bridge
        sock.set_linger(1000)?;
        sock.bind(endpoint)?;
        let endpoint = sock
            .get_last_endpoint()?
            .unwrap_or_else(|_| endpoint.to_string());
        Ok(Self {
            _ctx: ctx,
            sock,
            endpoint,
            i: 0,
        })
    }

    /// Where subscribers connect.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The next envelope, as fedmsg's `publish` builds it; returns `(msg_id, body)`.
    pub fn envelope(&mut self, topic: &str, msg: Value) -> (String, String) {
        self.i += 1;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let msg_id = format!("{}-{}", year_of(now), uuid::Uuid::new_v4());
        let body = python_dumps(&json!({
            "i": self.i,
            "msg": msg,
            "msg_id": msg_id,
            "timestamp": now,
            "topic": topic,
            "username": "fmn-bench",
        }));
        (msg_id, body)
    }

    /// Publishes one message; returns `(msg_id, body)`.
    pub fn publish(&mut self, topic: &str, msg: Value) -> Result<(String, String), zmq::Error> {
        let (id, body) = self.envelope(topic, msg);
        self.send_raw(&[topic.as_bytes(), body.as_bytes()])?;
        Ok((id, body))
    }

    /// Sends arbitrary frames (malformed ones, for tests).
    pub fn send_raw(&self, frames: &[&[u8]]) -> Result<(), zmq::Error> {
        self.sock.send_multipart(frames, 0)
    }

    /// Skips `n` values of the counter `i` (simulates messages lost on the way).
    pub fn skip(&mut self, n: u64) {
        self.i += n;
    }
}

/// The calendar year of a Unix time (fedmsg ids start with it).
fn year_of(unix_secs: u64) -> i64 {
    // Howard Hinnant's civil_from_days.
    let z = (unix_secs / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    yoe + era * 400 + i64::from(month <= 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn years() {
        assert_eq!(year_of(0), 1970);
        assert_eq!(year_of(1_504_643_075), 2017);
        assert_eq!(year_of(1_704_067_199), 2023); // 2023-12-31T23:59:59Z
        assert_eq!(year_of(1_704_067_200), 2024);
    }

    #[test]
    fn envelopes_are_valid_fedmsg() {
        let mut p = Publisher::bind("tcp://127.0.0.1:*").unwrap();
        assert!(p.endpoint().starts_with("tcp://127.0.0.1:"));
        let topic = "org.fedoraproject.dev.fmntest.x";
        let (id, body) = p.envelope(topic, json!({"b": 1, "a": "é"}));
        let v =
            crate::validate::validate(vec![topic.into(), body.clone().into()], 1 << 20).unwrap();
        assert_eq!(v.msg_id, id);
        assert_eq!(v.i, Some(1));
        assert!(body.starts_with(r#"{"i":1,"msg":{"a":"\u00e9","b":1},"msg_id":""#));
    }
}
