use fmn_aws::telemetry;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    telemetry::init();
    fmn_aws::lambda::exit_status(fmn_web_api::FUNCTION.binary(), run().await)
}

async fn run() -> Result<(), lambda_http::Error> {
    fmn_aws::secrets::load_into_env().await?;
    let state = fmn_web_api::AppState::from_env(false).await?;
    lambda_http::run(fmn_web_api::router(state)).await
}
