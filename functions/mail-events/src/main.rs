use fmn_aws::{lambda::run_sqs, telemetry, AwsClients};
use fmn_mail_events::MailEventsHandler;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    telemetry::init();
    let clients = AwsClients::from_env().await?;
    let lease = fmn_aws::delivery_records::send_lease(&fmn_aws::Vars::from_env())?;
    let retry = fmn_aws::batch::retry_schedule_from_env()?;
    run_sqs(
        MailEventsHandler::new(&clients, lease)
            .await?
            .with_retry_schedule(retry),
    )
    .await
}
