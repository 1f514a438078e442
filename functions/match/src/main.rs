use fmn_aws::{lambda::run_sqs, telemetry, AwsClients};
use fmn_match::{MatchHandler, FUNCTION};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    telemetry::init();
    fmn_aws::lambda::exit_status(FUNCTION.binary(), run().await)
}

async fn run() -> Result<(), lambda_runtime::Error> {
    let retry = fmn_aws::batch::retry_schedule_from_env()?;
    let vars = fmn_aws::vars::Vars::from_env();
    let noise = fmn_aws::config::noise_policy_from(&vars)?;
    let email_burst = fmn_aws::config::email_burst_from(&vars)?;
    let clients = AwsClients::from_env().await?;
    let sources = fmn_sources::SourceSettings::from_env()?;
    let handler = MatchHandler::new(&clients).await?.with_fasjson(&sources);
    run_sqs(
        handler
            .with_retry_schedule(retry)
            .with_noise_policy(noise)
            .with_email_burst(email_burst),
    )
    .await
}
