//! Waiting for a [`TokenBucket`]'s tokens: one pace shared by every clone (a Lambda instance's
//! sends to SES, a batch's lines to IRC).

use std::sync::Arc;
use std::time::Instant;

pub use fmn_core::rate::TokenBucket;

#[derive(Clone, Debug)]
pub struct Pacer {
    bucket: Arc<std::sync::Mutex<TokenBucket>>,
}

impl Pacer {
    /// `rate` a second after a first `burst`.
    pub fn new(rate: f64, burst: u32) -> Self {
        Self {
            bucket: Arc::new(std::sync::Mutex::new(TokenBucket::new(
                rate,
                burst,
                Instant::now(),
            ))),
        }
    }

    /// Sends a second.
    pub fn rate(&self) -> f64 {
        self.lock().rate()
    }

    /// Waits until a token is available and takes it.
    pub async fn take(&self) {
        loop {
            let taken = self.lock().try_take_at(Instant::now());
            match taken {
                Ok(()) => return,
                Err(wait) => tokio::time::sleep(wait).await,
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, TokenBucket> {
        // The bucket is a few numbers; a panic elsewhere cannot leave it half-changed.
        self.bucket.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn take_sleeps_until_a_token_is_due() {
        let pacer = Pacer::new(20.0, 1);
        pacer.take().await;
        let before = Instant::now();
        pacer.clone().take().await;
        // One token at 20 a second: about 50 ms (a lower bound only; the machine may be slow).
        assert!(
            before.elapsed() >= Duration::from_millis(45),
            "{:?}",
            before.elapsed()
        );
    }
}
