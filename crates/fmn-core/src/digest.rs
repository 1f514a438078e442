//! Digest policy: when a destination's pending items are due, and how a batch is named.
//!
//! The old FMN's semantics: a destination with `batch_delta` and/or `batch_count` is due when
//! the oldest pending item has waited at least `batch_delta` seconds, or when at least
//! `batch_count` items are pending, whichever comes first. With neither set nothing is held
//! back: the items are due at the next run.
//!
//! Besides, a pending marker may carry `hold_until`: the instant a scheduled digest comes round
//! ("daily at 08:00" in the user's time zone), or when held notifications of an immediate
//! destination (quiet hours, a throttled filter) are released. It is worked out when an item
//! is added (`crate::schedule`), with the user's time zone; the run only compares it with now.

use sha2::{Digest, Sha256};

/// Items in one digest mail at most; the rest wait for the next run (the old FMN refused
/// digests of 1000 items or more).
pub const MAX_DIGEST_ITEMS: usize = 500;

/// What the digest table knows about one destination's pending items.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pending {
    /// When the oldest pending item arrived, epoch seconds.
    pub first_at: u64,
    /// How many items are pending.
    pub count: u64,
    pub batch_delta: Option<u64>,
    pub batch_count: Option<u32>,
    /// Not before this instant (epoch seconds) unless the window or count says so first: the
    /// schedule's next occurrence, or the end of a hold.
    pub hold_until: Option<u64>,
}

/// Why a digest is due.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Due {
    /// The oldest item waited `batch_delta`.
    Age,
    /// `batch_count` items are pending.
    Count,
    /// The destination has no window: send what there is.
    Unbatched,
    /// The schedule came round, or the hold (quiet hours, throttling) ended.
    Scheduled,
}

impl Due {
    pub fn as_str(self) -> &'static str {
        match self {
            Due::Age => "age",
            Due::Count => "count",
            Due::Unbatched => "unbatched",
            Due::Scheduled => "scheduled",
        }
    }
}

/// Whether `pending` is due at `now` (epoch seconds), and why.
pub fn due(pending: &Pending, now: u64) -> Option<Due> {
    if pending.count == 0 {
        return None;
    }
    if let Some(limit) = pending.batch_count {
        if pending.count >= u64::from(limit.max(1)) {
            return Some(Due::Count);
        }
    }
    if let Some(delta) = pending.batch_delta {
        if now.saturating_sub(pending.first_at) >= delta {
            return Some(Due::Age);
        }
    }
    if let Some(at) = pending.hold_until {
        return (now >= at).then_some(Due::Scheduled);
    }
    if pending.batch_count.is_none() && pending.batch_delta.is_none() {
        return Some(Due::Unbatched);
    }
    None
}

/// The id of a digest made of these items (their job ids, in any order): the same items always
/// make the same id, so a retried digest is recognised.
pub fn digest_id<'a>(job_ids: impl IntoIterator<Item = &'a str>) -> String {
    let mut ids: Vec<&str> = job_ids.into_iter().collect();
    ids.sort_unstable();
    ids.dedup();
    let mut h = Sha256::new();
    for id in ids {
        h.update(id.as_bytes());
        h.update([0u8]);
    }
    hex::encode(&h.finalize()[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(first_at: u64, count: u64, delta: Option<u64>, limit: Option<u32>) -> Pending {
        Pending {
            first_at,
            count,
            batch_delta: delta,
            batch_count: limit,
            hold_until: None,
        }
    }

    #[test]
    fn due_by_age_or_count_whichever_first() {
        // Age only.
        assert_eq!(due(&p(1000, 3, Some(300), None), 1299), None);
        assert_eq!(due(&p(1000, 3, Some(300), None), 1300), Some(Due::Age));
        // Count only.
        assert_eq!(due(&p(1000, 4, None, Some(5)), 999_999), None);
        assert_eq!(due(&p(1000, 5, None, Some(5)), 1000), Some(Due::Count));
        assert_eq!(due(&p(1000, 9, None, Some(5)), 1000), Some(Due::Count));
        // Both: whichever comes first.
        assert_eq!(due(&p(1000, 2, Some(60), Some(10)), 1030), None);
        assert_eq!(due(&p(1000, 2, Some(60), Some(10)), 1060), Some(Due::Age));
        assert_eq!(
            due(&p(1000, 10, Some(60), Some(10)), 1001),
            Some(Due::Count)
        );
        // Neither: no holding back; nothing pending: never due.
        assert_eq!(due(&p(1000, 1, None, None), 1000), Some(Due::Unbatched));
        assert_eq!(due(&p(1000, 0, Some(1), Some(1)), 5000), None);
        // A clock behind first_at is not an overflow.
        assert_eq!(due(&p(5000, 1, Some(60), None), 1000), None);
    }

    #[test]
    fn held_and_scheduled_digests_wait_for_their_instant() {
        let held = |hold, delta, count| Pending {
            hold_until: Some(hold),
            ..p(1000, 3, delta, count)
        };
        // Held items of an immediate destination: exactly at the instant.
        assert_eq!(due(&held(5000, None, None), 4999), None);
        assert_eq!(due(&held(5000, None, None), 5000), Some(Due::Scheduled));
        // A schedule with a count: whichever first.
        assert_eq!(due(&held(5000, None, Some(3)), 1001), Some(Due::Count));
        assert_eq!(due(&held(5000, Some(60), None), 1060), Some(Due::Age));
        assert_eq!(due(&held(5000, Some(6000), Some(9)), 4000), None);
    }

    #[test]
    fn digest_ids_ignore_order_and_repeats() {
        let a = digest_id(["b", "a", "c"]);
        assert_eq!(a, digest_id(["c", "b", "a", "a"]));
        assert_ne!(a, digest_id(["a", "b"]));
        assert_ne!(digest_id(["ab", "c"]), digest_id(["a", "bc"]));
        assert_eq!(a.len(), 32);
    }
}
