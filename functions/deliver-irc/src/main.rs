use fmn_aws::{lambda::run_sqs, telemetry, AwsClients};
use fmn_deliver_irc::DeliverIrcHandler;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    telemetry::init();
    fmn_aws::secrets::load_into_env().await?;
    let clients = AwsClients::from_env().await?;
    let settings = fmn_deliver_irc::IrcSettings::from_env()?;
    let retry = fmn_aws::batch::retry_schedule_from_env()?;
    let handler = DeliverIrcHandler::with_settings(&clients, settings).await?;
    run_sqs(handler.with_retry_schedule(retry)).await
}
