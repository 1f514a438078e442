use fmn_aws::{lambda::run_sqs, telemetry, AwsClients};
use fmn_deliver_matrix::{DeliverMatrixHandler, MatrixSettings, FUNCTION};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    telemetry::init();
    fmn_aws::lambda::exit_status(FUNCTION.binary(), run().await)
}

async fn run() -> Result<(), lambda_runtime::Error> {
    fmn_aws::secrets::load_into_env().await?;
    let settings = MatrixSettings::from_env()?;
    let retry = fmn_aws::batch::retry_schedule_from_env()?;
    let clients = AwsClients::from_env().await?;
    let handler = DeliverMatrixHandler::with_settings(&clients, settings).await?;
    run_sqs(handler.with_retry_schedule(retry)).await
}
