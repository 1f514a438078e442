//! Counters per function and the periodic progress line.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

#[derive(Debug, Default)]
pub struct FunctionStats {
    pub invocations: AtomicU64,
    pub records: AtomicU64,
    pub failed: AtomicU64,
}

impl FunctionStats {
    pub fn record_batch(&self, records: usize, failed: usize) {
        self.invocations.fetch_add(1, Ordering::Relaxed);
        self.records.fetch_add(records as u64, Ordering::Relaxed);
        self.failed.fetch_add(failed as u64, Ordering::Relaxed);
    }

    fn snapshot(&self) -> (u64, u64, u64) {
        (
            self.invocations.load(Ordering::Relaxed),
            self.records.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }
}

/// Logs one line with every function's totals each `every`, when something changed.
pub async fn progress(
    functions: Vec<(String, Arc<FunctionStats>)>,
    every: Duration,
    shutdown: CancellationToken,
) {
    let mut last = Vec::new();
    let mut ticker = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let now: Vec<_> = functions.iter().map(|(_, s)| s.snapshot()).collect();
        if now != last {
            let line = functions
                .iter()
                .zip(&now)
                .map(|((name, _), (inv, rec, failed))| {
                    format!("{name}: {rec} records in {inv} batches ({failed} failed)")
                })
                .collect::<Vec<_>>()
                .join(" | ");
            tracing::info!("progress: {line}");
            last = now;
        }
    }
}
