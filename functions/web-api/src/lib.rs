//! The web-api: the preferences page and the JSON API under `/api/v1`. The same router runs
//! in Lambda (through `lambda_http`) and in the local runner on 127.0.0.1:8080.

use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::{Json, Router};
use fmn_aws::FunctionName;

pub const FUNCTION: FunctionName = FunctionName::WebApi;

/// The application's routes.
pub fn router() -> Router {
    Router::new()
        .route("/", get(index))
        .route("/healthz", get(healthz))
}

async fn healthz() -> impl IntoResponse {
    Json(serde_json::json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION") }))
}

async fn index() -> Html<&'static str> {
    Html(include_str!("page/index.html"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt;

    #[tokio::test]
    async fn healthz_answers_ok() {
        let response = router()
            .oneshot(Request::get("/healthz").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn unknown_paths_are_404() {
        let response = router()
            .oneshot(Request::get("/nope").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
    }
}
