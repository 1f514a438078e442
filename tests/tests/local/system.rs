//! The whole local system comes up, answers, and stops cleanly.

use std::time::Duration;

use fmn_aws::{AwsClients, ResourceNames};
use fmn_integration_tests::system::RunningSystem;
use fmn_integration_tests::{free_port, init, unique_prefix};
use fmn_local::system::{self, RunOptions};
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread")]
async fn the_local_system_serves_healthz_and_stops_on_request() {
    init();
    let clients = AwsClients::with_names(ResourceNames::new(unique_prefix("system"))).await;
    let mut options = RunOptions::from_env().unwrap();
    options.web_addr = ([127, 0, 0, 1], free_port()).into();
    options.bridge.endpoints.clear();
    options.bridge.replay_rate = 200.0;
    let mut running = RunningSystem::start(&clients, options);
    assert_eq!(running.healthz().await["status"], "ok");
    running.stop(Duration::from_secs(40)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_busy_web_port_is_a_clear_error() {
    init();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let clients = AwsClients::with_names(ResourceNames::new(unique_prefix("busy"))).await;
    let mut options = RunOptions::from_env().unwrap();
    options.web_addr = taken.local_addr().unwrap();
    let err = system::run(clients, options, CancellationToken::new())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("cannot listen on"), "{err}");
}
