//! The JSON API under `/api/v1` (see `API.md`; each handler's `utoipa::path` feeds the OpenAPI
//! document, `crate::openapi`).

pub mod account;
pub mod admin;
pub mod confirm;
pub mod extract;
pub mod feed;
pub mod me;
pub mod meta;
pub mod preview;

use axum::routing::{get, patch, post, put};
use axum::Router;

use crate::error::ApiError;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/config", get(meta::config))
        .route("/rules", get(meta::rules))
        .route("/dev/login", post(meta::dev_login))
        .route("/me", get(me::me).patch(me::patch_me))
        .route("/me/destinations", post(me::add_destination))
        .route(
            "/me/destinations/{id}",
            patch(me::patch_destination).delete(me::delete_destination),
        )
        .route("/me/destinations/{id}/resend", post(me::resend))
        .route("/me/filters", post(me::create_filter))
        .route("/me/filters/preview", post(preview::preview))
        .route(
            "/me/filters/{id}",
            get(me::get_filter)
                .put(me::put_filter)
                .delete(me::delete_filter),
        )
        .route("/me/export", get(me::export))
        .route("/me/reset", post(me::reset_filters))
        .route("/me/import", put(me::import))
        .route("/me/explain/{msg_id}", get(me::explain))
        .route("/me/recent", get(me::recent))
        .route("/me/deliveries", get(preview::deliveries))
        // Feed and live updates (`feed`).
        .route("/me/feed-token", post(feed::rotate_token))
        .route("/me/latest", get(feed::latest))
        .route("/confirm/{token}", get(confirm::show).post(confirm::answer))
        .route("/unsubscribe/{token}", post(confirm::unsubscribe))
        .route("/admin/users", get(admin::list).post(admin::create))
        .route("/admin/users/{name}/disable", post(admin::disable))
        .route("/admin/users/{name}/enable", post(admin::enable))
        .route(
            "/admin/users/{name}/prefs",
            get(admin::get_prefs).put(admin::put_prefs),
        )
        .route("/admin/account-defaults", get(admin::account_defaults))
        .route(
            "/admin/account-defaults/{group}",
            put(admin::set_account_defaults),
        )
        .fallback(not_found)
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such API endpoint")
}
