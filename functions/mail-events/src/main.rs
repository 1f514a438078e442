use fmn_aws::{lambda::run_sqs, telemetry, AwsClients};
use fmn_mail_events::{MailEventsHandler, FUNCTION};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    telemetry::init();
    fmn_aws::lambda::exit_status(FUNCTION.binary(), run().await)
}

async fn run() -> Result<(), lambda_runtime::Error> {
    let vars = fmn_aws::Vars::from_env();
    let lease = fmn_aws::delivery_records::send_lease(&vars)?;
    let policy = fmn_aws::health::policy_from(&vars)?;
    let retry = fmn_aws::batch::retry_schedule_from(&vars)?;
    let clients = AwsClients::from_env().await?;
    let handler = MailEventsHandler::new(&clients, lease, policy).await?;
    run_sqs(handler.with_retry_schedule(retry)).await
}
