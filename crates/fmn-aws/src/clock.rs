//! Where "now" comes from: the system clock, or in tests a clock set by hand (so a test of a
//! per-hour allowance need not wait for an hour to turn).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The system clock by default; [`Clock::fixed`] for tests.
#[derive(Clone, Debug, Default)]
pub struct Clock(Option<Arc<AtomicU64>>);

impl Clock {
    pub fn system() -> Self {
        Self(None)
    }

    /// A clock standing at `secs` (epoch seconds) until [`Clock::set`] moves it.
    pub fn fixed(secs: u64) -> Self {
        Self(Some(Arc::new(AtomicU64::new(secs))))
    }

    /// Moves a fixed clock (and every copy of it); a system clock ignores it.
    pub fn set(&self, secs: u64) {
        if let Some(at) = &self.0 {
            at.store(secs, Ordering::Relaxed);
        }
    }

    /// Seconds since the epoch.
    pub fn now_secs(&self) -> u64 {
        match &self.0 {
            Some(at) => at.load(Ordering::Relaxed),
            None => crate::dynamo::now_secs(),
        }
    }
}
