//! Pacing: a token bucket, `burst` sends at once after a quiet spell, then `rate` a second. The
//! clock is a parameter, so the arithmetic is tested without waiting; `fmn_aws::pacing` waits.

use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// Full at `now`. A rate at or below zero is taken as one a minute (never "never").
    pub fn new(rate: f64, burst: u32, now: Instant) -> Self {
        let burst = f64::from(burst.max(1));
        Self {
            rate: if rate > 0.0 { rate } else { 1.0 / 60.0 },
            burst,
            tokens: burst,
            last: now,
        }
    }

    /// Sends a second.
    pub fn rate(&self) -> f64 {
        self.rate
    }

    fn refill(&mut self, now: Instant) {
        let gained = now.saturating_duration_since(self.last).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + gained).min(self.burst);
        self.last = self.last.max(now);
    }

    /// How long after `now` a token is available (zero: at once).
    pub fn wait_at(&mut self, now: Instant) -> Duration {
        self.refill(now);
        if self.tokens >= 1.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64((1.0 - self.tokens) / self.rate)
        }
    }

    /// Takes a token at `now`, or says how long to wait first.
    pub fn try_take_at(&mut self, now: Instant) -> Result<(), Duration> {
        match self.wait_at(now) {
            wait if wait.is_zero() => {
                self.tokens -= 1.0;
                Ok(())
            }
            wait => Err(wait),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Takes `n` tokens starting at `at`, each as soon as the bucket allows; returns when the
    /// last one was taken.
    fn take_n(bucket: &mut TokenBucket, mut at: Instant, n: usize) -> Instant {
        for _ in 0..n {
            while let Err(wait) = bucket.try_take_at(at) {
                at += wait;
            }
        }
        at
    }

    #[test]
    fn the_bucket_allows_a_burst_then_the_rate() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(2.0, 5, start);
        assert_eq!(
            take_n(&mut bucket, start, 5),
            start,
            "the burst goes at once"
        );
        // Ten more at two a second: five seconds (up to float rounding).
        let after = take_n(&mut bucket, start, 10);
        let elapsed = (after - start).as_secs_f64();
        assert!((elapsed - 5.0).abs() < 0.01, "{elapsed}");
        // A quiet spell refills the burst, no more.
        let again = after + Duration::from_secs(60);
        assert_eq!(take_n(&mut bucket, again, 5), again);
        let sixth = take_n(&mut bucket, again, 1);
        let gap = sixth - again;
        assert!(
            gap >= Duration::from_millis(499) && gap <= Duration::from_millis(501),
            "{gap:?}"
        );
    }

    #[test]
    fn a_clock_read_out_of_order_takes_nothing_back() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(1.0, 1, start + Duration::from_secs(1));
        assert_eq!(bucket.try_take_at(start + Duration::from_secs(1)), Ok(()));
        // An earlier reading (another task's) neither refills nor panics.
        assert!(bucket.try_take_at(start).is_err());
        assert_eq!(bucket.try_take_at(start + Duration::from_secs(2)), Ok(()));
    }

    #[test]
    fn no_rate_is_slow_not_stuck() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(0.0, 1, start);
        assert_eq!(bucket.try_take_at(start), Ok(()));
        assert_eq!(bucket.try_take_at(start), Err(Duration::from_secs(60)));
    }
}
