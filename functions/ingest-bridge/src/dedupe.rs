//! Remembers recently forwarded `msg_id`s, so a message seen twice within the window (the same
//! bus through two endpoints, a publisher replay) is sent once. Bounded in time and in count.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct Dedupe {
    window: Duration,
    capacity: usize,
    seen: HashMap<String, Instant>,
    order: VecDeque<(Instant, String)>,
}

impl Dedupe {
    pub fn new(window: Duration, capacity: usize) -> Self {
        Self {
            window,
            capacity: capacity.max(1),
            seen: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// True the first time `id` is offered within the window (the caller forwards it); false
    /// for a duplicate.
    pub fn first_time(&mut self, id: &str, now: Instant) -> bool {
        self.expire(now);
        if let Some(at) = self.seen.get(id) {
            if now.duration_since(*at) < self.window {
                return false;
            }
        }
        while self.order.len() >= self.capacity {
            self.evict_oldest();
        }
        self.seen.insert(id.to_string(), now);
        self.order.push_back((now, id.to_string()));
        true
    }

    /// Forgets `id`, so its next sighting is forwarded: for a message that could not be kept
    /// after all and that its source will deliver again.
    pub fn forget(&mut self, id: &str) {
        self.seen.remove(id);
    }

    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    fn expire(&mut self, now: Instant) {
        while let Some((at, _)) = self.order.front() {
            if now.duration_since(*at) < self.window {
                break;
            }
            self.evict_oldest();
        }
    }

    fn evict_oldest(&mut self) {
        if let Some((at, id)) = self.order.pop_front() {
            // Only forget the id if this entry is the one that recorded it.
            if self.seen.get(&id) == Some(&at) {
                self.seen.remove(&id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_sighting_within_the_window_is_a_duplicate() {
        let mut d = Dedupe::new(Duration::from_secs(60), 100);
        let t = Instant::now();
        assert!(d.first_time("a", t));
        assert!(!d.first_time("a", t + Duration::from_secs(59)));
        assert!(d.first_time("b", t));
    }

    #[test]
    fn after_the_window_an_id_is_new_again() {
        let mut d = Dedupe::new(Duration::from_secs(60), 100);
        let t = Instant::now();
        assert!(d.first_time("a", t));
        assert!(d.first_time("a", t + Duration::from_secs(61)));
        assert_eq!(d.len(), 1);
    }

    #[test]
    fn memory_is_bounded_by_capacity() {
        let mut d = Dedupe::new(Duration::from_secs(3600), 3);
        let t = Instant::now();
        for id in ["a", "b", "c", "d"] {
            assert!(d.first_time(id, t));
        }
        assert_eq!(d.len(), 3);
        assert!(d.first_time("a", t), "the oldest was evicted");
        assert!(!d.first_time("d", t));
    }
}
