use anyhow::Context;
use fmn_aws::{telemetry, AwsClients, QueueName};
use fmn_ingest_bridge::{replay, BridgeConfig};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init();
    let config = BridgeConfig::from_env()?;
    let clients = AwsClients::from_env().await;
    let queue_url = clients
        .queue_url(QueueName::Ingest)
        .await
        .context("finding the ingest queue")?;
    let shutdown = CancellationToken::new();
    let signal = shutdown.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        signal.cancel();
    });
    if config.endpoints.is_empty() {
        replay::replay(
            &clients.sqs,
            &queue_url,
            replay::SAMPLE,
            config.replay_interval(),
            &shutdown,
        )
        .await?;
        return Ok(());
    }
    anyhow::bail!("subscribing to fedmsg endpoints is not available in this build")
}
