//! Gap detection on the publishers' sequence counter `i`.
//!
//! `i` counts per publishing process: it starts at 1, grows by one per message and starts over
//! when the process restarts. So, per stream, a JUMP (`i` > last + 1) means messages were lost
//! (we were disconnected, or the publisher's high-water mark dropped them), while a DROP
//! (`i` <= last) means the publisher restarted: nothing is counted as missed then. The same `i`
//! again is a repeat (a replay or a second path), not a restart.
//!
//! One stream per endpoint: a service's publisher binds its own endpoint. A gateway that
//! re-broadcasts many publishers interleaves their counters, so its streams are told apart by
//! the publisher's identity we can see (`username` and the topic's service); see `stream_key`.

use std::collections::HashMap;

/// What one message tells about its stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gap {
    /// First message of a stream, or the next one in sequence.
    InOrder,
    /// `missed` messages were never received before this one.
    Jump { missed: u64, expected: u64 },
    /// The counter went back: the publisher restarted.
    Restart { last: u64 },
    /// The same `i` as the previous message.
    Repeat,
}

#[derive(Debug, Default)]
pub struct GapTracker {
    last: HashMap<String, u64>,
}

/// Streams kept at most (a gateway's publishers are a few hundred; this bounds memory).
const MAX_STREAMS: usize = 10_000;

impl GapTracker {
    pub fn observe(&mut self, stream: &str, i: u64) -> Gap {
        if self.last.len() >= MAX_STREAMS && !self.last.contains_key(stream) {
            self.last.clear();
        }
        match self.last.insert(stream.to_string(), i) {
            None => Gap::InOrder,
            Some(last) if i == last + 1 => Gap::InOrder,
            Some(last) if i == last => Gap::Repeat,
            Some(last) if i > last => Gap::Jump {
                missed: i - last - 1,
                expected: last + 1,
            },
            Some(last) => Gap::Restart { last },
        }
    }
}

/// The stream a message belongs to: its topic's service (`modname`, the 4th field) and the
/// publisher's Unix user, which tell most publishers on a gateway apart. On an endpoint bound
/// by one publisher this is one stream per service, which is the same thing.
pub fn stream_key(topic: &str, username: Option<&str>) -> String {
    let modname = topic.split('.').nth(3).unwrap_or("");
    format!("{modname}/{}", username.unwrap_or(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_jump_restart_repeat() {
        let mut g = GapTracker::default();
        assert_eq!(g.observe("s", 5), Gap::InOrder);
        assert_eq!(g.observe("s", 6), Gap::InOrder);
        assert_eq!(
            g.observe("s", 10),
            Gap::Jump {
                missed: 3,
                expected: 7
            }
        );
        assert_eq!(g.observe("s", 10), Gap::Repeat);
        assert_eq!(g.observe("s", 1), Gap::Restart { last: 10 });
        assert_eq!(g.observe("s", 2), Gap::InOrder);
    }

    #[test]
    fn streams_are_independent() {
        let mut g = GapTracker::default();
        assert_eq!(g.observe("a", 1), Gap::InOrder);
        assert_eq!(g.observe("b", 100), Gap::InOrder);
        assert_eq!(g.observe("a", 2), Gap::InOrder);
    }

    #[test]
    fn stream_keys_use_service_and_user() {
        assert_eq!(
            stream_key(
                "org.fedoraproject.prod.bodhi.update.comment",
                Some("apache")
            ),
            "bodhi/apache"
        );
        assert_eq!(stream_key("x", None), "/");
    }
}
