use fmn_aws::telemetry;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    telemetry::init();
    fmn_aws::secrets::load_into_env().await?;
    let state = fmn_web_api::AppState::from_env(false).await?;
    lambda_http::run(fmn_web_api::router(state)).await
}
