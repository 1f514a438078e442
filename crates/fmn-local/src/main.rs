//! `fmn-local`: the whole of fmn in one process against LocalStack.

use clap::Parser;
use fmn_aws::provision::ProvisionOptions;
use fmn_aws::{config::apply_local_defaults, telemetry, AwsClients};
use fmn_local::system::{self, RunOptions};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(
    name = "fmn-local",
    version,
    about = "Run fmn locally against LocalStack, as AWS would"
)]
enum Command {
    /// Create the resources and run every function until Ctrl-C (the default).
    Run,
    /// Create the queues and tables of infra/template.yaml, then exit.
    Provision,
}

fn main() -> anyhow::Result<()> {
    // Before any thread exists: environment defaults for the local emulators.
    apply_local_defaults();
    let command = if std::env::args().len() > 1 {
        Command::parse()
    } else {
        Command::Run
    };
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(async move {
            telemetry::init();
            let clients = AwsClients::from_env().await?;
            match command {
                Command::Provision => {
                    system::preflight(&clients).await?;
                    system::provision_all(&clients, &ProvisionOptions::default()).await?;
                }
                Command::Run => {
                    let options = RunOptions::from_env()?;
                    let shutdown = CancellationToken::new();
                    tokio::spawn(stop_on_signal(shutdown.clone()));
                    system::run(clients, options, shutdown).await?;
                }
            }
            Ok(())
        })
}

async fn stop_on_signal(shutdown: CancellationToken) {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("signal received");
    shutdown.cancel();
}
