//! The web-api: the preferences page and the JSON API under `/api/v1` (contract: `API.md`;
//! the OpenAPI document at `/api/v1/openapi.json` is generated from this code). The same
//! router runs in Lambda (through `lambda_http`) and in the local runner on 127.0.0.1:8080.

pub mod api;
pub mod auth;
pub mod error;
pub mod openapi;
pub mod schema;
pub mod security;
pub mod settings;
pub mod state;
pub mod testing;

use axum::http::{header, HeaderValue};
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::{Json, Router};
use fmn_aws::FunctionName;

pub use crate::state::{Admin, AppState};

pub const FUNCTION: FunctionName = FunctionName::WebApi;

/// The application's routes: the page, `/healthz`, and the API; every answer carries the
/// security headers of [`security`].
pub fn router(state: AppState) -> Router {
    let headers = security::SecurityHeaders::for_issuer(&state.settings.auth.issuer);
    Router::new()
        .route("/", get(index))
        .route("/confirm/{token}", get(index))
        .route("/app.js", get(app_js))
        .route("/app.css", get(app_css))
        .route("/healthz", get(healthz))
        .route("/api/v1/openapi.json", get(openapi::serve))
        // A user's Atom feed: `/feed/<token>.atom` (the token is the credential).
        .route("/feed/{file}", get(api::feed::atom_feed))
        .nest("/api/v1", api::routes())
        .with_state(state)
        .layer(axum::middleware::map_response(
            move |response: axum::response::Response| {
                let headers = headers.clone();
                async move { headers.apply(response) }
            },
        ))
}

async fn healthz() -> impl IntoResponse {
    Json(serde_json::json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION") }))
}

async fn index() -> Html<&'static str> {
    Html(include_str!("page/index.html"))
}

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        body,
    )
}

async fn app_js() -> impl IntoResponse {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("page/app.js"),
    )
}

async fn app_css() -> impl IntoResponse {
    asset("text/css; charset=utf-8", include_str!("page/app.css"))
}
