use fmn_aws::{lambda::run_sqs, telemetry, AwsClients};
use fmn_match::MatchHandler;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    telemetry::init();
    let retry = fmn_aws::batch::retry_schedule_from_env()?;
    let clients = AwsClients::from_env().await?;
    run_sqs(
        MatchHandler::new(&clients)
            .await?
            .with_retry_schedule(retry),
    )
    .await
}
