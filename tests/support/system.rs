//! The whole local system (`fmn_local::system::run`) in the test's process.

use std::time::Duration;

use fmn_aws::AwsClients;
use fmn_local::system::{self, RunError, RunOptions};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The system running until [`RunningSystem::stop`].
pub struct RunningSystem {
    running: Option<JoinHandle<Result<(), RunError>>>,
    shutdown: CancellationToken,
    /// Where its web-api listens.
    pub base: String,
}

impl RunningSystem {
    pub fn start(clients: &AwsClients, options: RunOptions) -> Self {
        let base = format!("http://{}", options.web_addr);
        let shutdown = CancellationToken::new();
        let running = tokio::spawn(system::run(clients.clone(), options, shutdown.clone()));
        Self {
            running: Some(running),
            shutdown,
            base,
        }
    }

    /// Fails the test, with the system's outcome, if the system has stopped.
    pub async fn assert_running(&mut self) {
        if self.running.as_ref().is_some_and(JoinHandle::is_finished) {
            let outcome = self.running.take().expect("checked above").await;
            panic!("the system stopped early: {outcome:?}");
        }
    }

    /// Waits (up to 60 s) for the web-api's `/healthz` to answer; returns its body.
    pub async fn healthz(&mut self) -> serde_json::Value {
        let http = reqwest::Client::new();
        let url = format!("{}/healthz", self.base);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            self.assert_running().await;
            if let Ok(r) = http.get(&url).send().await {
                if r.status().is_success() {
                    return r.json().await.expect("healthz answers JSON");
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no answer from {url} within 60 s"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Asks the system to stop and checks that it stops cleanly within `limit`.
    pub async fn stop(mut self, limit: Duration) {
        self.shutdown.cancel();
        let running = self.running.take().expect("still running");
        tokio::time::timeout(limit, running)
            .await
            .expect("the system stops in time")
            .expect("no panic")
            .expect("clean stop");
    }
}
