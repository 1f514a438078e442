//! `/healthz` (JSON; 200, or 503 while SQS fails) and `/metrics` (Prometheus text).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

pub fn router(metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(prometheus))
        .with_state(metrics)
}

async fn healthz(State(m): State<Arc<Metrics>>) -> impl IntoResponse {
    let doc = m.health();
    let status = if doc["sqs_failing"].as_bool() == Some(true) {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (status, axum::Json(doc))
}

async fn prometheus(State(m): State<Arc<Metrics>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        m.render(),
    )
}

/// Serves until `shutdown`; returns the bound address (port 0 picks a free one). A port in use
/// is an error for the caller to report: the bridge keeps forwarding without it.
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        let served = axum::serve(listener, router(metrics))
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "health/metrics server stopped");
        }
    });
    tracing::info!("bridge health on http://{bound}/healthz, metrics on http://{bound}/metrics");
    Ok(bound)
}
