use fmn_aws::{lambda::run_sqs, telemetry, AwsClients};
use fmn_deliver_irc::DeliverIrcHandler;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    telemetry::init();
    fmn_aws::secrets::load_into_env().await?;
    let clients = AwsClients::from_env().await?;
    let settings = fmn_deliver_irc::IrcSettings::from_env()?;
    run_sqs(DeliverIrcHandler::with_settings(&clients, settings).await?).await
}
