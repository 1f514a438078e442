use fmn_aws::{lambda::run_sqs, telemetry, AwsClients};
use fmn_match::MatchHandler;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    telemetry::init();
    let clients = AwsClients::from_env().await?;
    run_sqs(MatchHandler::new(&clients).await?).await
}
