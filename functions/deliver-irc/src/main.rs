use fmn_aws::{lambda::run_sqs, telemetry, AwsClients};
use fmn_deliver_irc::DeliverIrcHandler;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    telemetry::init();
    let clients = AwsClients::from_env().await;
    run_sqs(DeliverIrcHandler::new(&clients).await?).await
}
