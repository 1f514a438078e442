use anyhow::Context;
use fmn_aws::{telemetry, AwsClients, QueueName};
use fmn_ingest_bridge::{replay, BridgeConfig};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init();
    let config = BridgeConfig::from_env()?;
    let clients = AwsClients::from_env()
        .await?
        .scoped_to("fmn-ingest-bridge", fmn_aws::names::INGEST_BRIDGE_ACCESS);
    let shutdown = CancellationToken::new();
    let signal = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("stop signal received");
        signal.cancel();
    });
    if !config.has_sources() && !config.replay_sample {
        anyhow::bail!(
            "no bus configured: set FMN_AMQP_URL (fedora-messaging) or FMN_FEDMSG_ENDPOINTS \
             (fedmsg); FMN_REPLAY_SAMPLE=true replays the bundled sample instead (a demo)"
        );
    }
    if !config.has_sources() {
        let queue_url = clients
            .queue_url(QueueName::Ingest)
            .await
            .context("finding the ingest queue")?;
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
    fmn_ingest_bridge::run(config, &clients, shutdown)
        .await
        .context("ingest bridge")?;
    Ok(())
}

/// SIGTERM (how a service manager or container runtime stops us) or Ctrl-C.
async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
