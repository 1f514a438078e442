use std::sync::Arc;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use fmn_aws::{telemetry, AwsClients};
use fmn_sources::SourceSettings;
use fmn_sync::{SyncHandler, FUNCTION};
use lambda_runtime::{service_fn, LambdaEvent};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    telemetry::init();
    fmn_aws::lambda::exit_status(FUNCTION.binary(), run().await)
}

async fn run() -> Result<(), lambda_runtime::Error> {
    // FASJSON's Kerberos keytab (FMN_FASJSON_KEYTAB) from SSM, before the settings are read.
    fmn_aws::secrets::load_into_env().await?;
    let settings = SourceSettings::from_env()?;
    let clients = AwsClients::from_env().await?;
    let handler = Arc::new(SyncHandler::new(&clients, &settings));
    lambda_runtime::run(service_fn(
        move |_: LambdaEvent<EventBridgeEvent<serde_json::Value>>| {
            let handler = Arc::clone(&handler);
            async move { handler.run().await.map_err(lambda_runtime::Error::from) }
        },
    ))
    .await
}
