//! The caller's notifications outside the page: an Atom feed at a secret per-user URL
//! (`/feed/<token>.atom`, no sign-in: the token is the credential, rotated by
//! `POST /api/v1/me/feed-token`), and `GET /api/v1/me/latest`, which the page polls with
//! `If-None-Match` for live updates (Lambda response streaming, hence Server-Sent Events, is
//! not available through the `lambda_http` adapter this function runs behind).
//!
//! Both read the activity table (what the match function queued for the user, kept 30 days).

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use fmn_core::atom;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::account::load_or_create;
use super::extract::P;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

/// Entries in the Atom feed.
pub const FEED_LIMIT: i32 = 50;
/// Entries `/me/latest` returns.
pub const LATEST_LIMIT: i32 = 10;
/// The feed's media type.
pub const ATOM_TYPE: &str = "application/atom+xml";

/// A new feed URL.
#[derive(Debug, Serialize, ToSchema)]
pub struct FeedTokenDoc {
    /// The secret token (shown once: only its hash is kept).
    pub token: String,
    /// The feed's URL, `<public URL>/feed/<token>.atom`.
    pub url: String,
}

/// The caller's latest notifications.
#[derive(Debug, Serialize, ToSchema)]
pub struct LatestDoc {
    /// Newest first, as in `/api/v1/me/recent`.
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<Value>,
}

/// A strong entity tag of `body`.
fn etag_of(body: &[u8]) -> String {
    format!("\"{}\"", &hex::encode(Sha256::digest(body))[..32])
}

/// Whether `If-None-Match` names `etag` (or is `*`); weak tags compare by their value.
fn not_modified(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim())
        .any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t) == etag)
}

/// `body` as `content_type` with its ETag, or 304 when the client has it already.
fn conditional(headers: &HeaderMap, content_type: &'static str, body: Vec<u8>) -> Response {
    let etag = etag_of(&body);
    let etag_value = HeaderValue::from_str(&etag).expect("hex in quotes");
    // Per user and changing: caches must ask again every time.
    let cache = HeaderValue::from_static("private, no-cache");
    if not_modified(headers, &etag) {
        return (
            StatusCode::NOT_MODIFIED,
            [(header::ETAG, etag_value), (header::CACHE_CONTROL, cache)],
        )
            .into_response();
    }
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::ETAG, etag_value),
            (header::CACHE_CONTROL, cache),
        ],
        body,
    )
        .into_response()
}

fn text<'a>(entry: &'a Value, field: &str) -> Option<&'a str> {
    entry[field].as_str().filter(|s| !s.is_empty())
}

/// An activity entry as a feed entry.
fn feed_entry(entry: &Value, page: &str) -> atom::Entry {
    let id = text(entry, "job_id")
        .or_else(|| text(entry, "msg_id"))
        .unwrap_or("unknown");
    let title = text(entry, "subtitle")
        .or_else(|| text(entry, "title"))
        .or_else(|| text(entry, "topic"))
        .unwrap_or("notification");
    let link = text(entry, "link")
        .filter(|l| atom::is_web_link(l))
        .unwrap_or(page);
    let to = text(entry, "address").map(|a| {
        if entry["digest"].as_bool() == Some(true) {
            format!("to {a} (digest)")
        } else {
            format!("to {a}")
        }
    });
    let summary = [
        text(entry, "app").map(str::to_string),
        text(entry, "filter").map(|f| format!("filter “{f}”")),
        to,
        text(entry, "topic").map(str::to_string),
        text(entry, "msg_id").map(|m| format!("message {m}")),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(" · ");
    atom::Entry {
        id: format!("urn:fmn:notification:{id}"),
        title: title.to_string(),
        link: link.to_string(),
        summary,
        updated: entry["time"].as_f64().unwrap_or(0.0),
    }
}

fn public_url(state: &AppState) -> &str {
    state.settings.mail.context.public_url.trim_end_matches('/')
}

#[utoipa::path(post, path = "/api/v1/me/feed-token", tag = "me", security(("bearer" = [])),
    responses(
        (status = 200, description = "A new secret feed URL; the previous one stops working", body = FeedTokenDoc),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "A bot account", body = ErrorBody)))]
pub async fn rotate_token(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<FeedTokenDoc>, ApiError> {
    load_or_create(&state, &caller.name).await?;
    let token = state.feed_tokens.rotate(&caller.name).await?;
    tracing::info!(user = caller.name, "feed token rotated");
    let url = format!("{}/feed/{token}.atom", public_url(&state));
    Ok(Json(FeedTokenDoc { token, url }))
}

#[utoipa::path(get, path = "/api/v1/me/latest", tag = "me", security(("bearer" = [])),
    params(("If-None-Match" = Option<String>, Header, description = "The `ETag` of the last answer")),
    responses(
        (status = 200, description = "The last 10 notifications, newest first, with an `ETag`", body = LatestDoc),
        (status = 304, description = "Nothing new since the answer with that `ETag`"),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "A bot account", body = ErrorBody)))]
pub async fn latest(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    load_or_create(&state, &caller.name).await?;
    let items = state.recent.activity(&caller.name, LATEST_LIMIT).await?;
    let body = serde_json::to_vec(&LatestDoc { items }).expect("JSON serialises");
    Ok(conditional(&headers, "application/json", body))
}

#[utoipa::path(get, path = "/feed/{file}", tag = "feed",
    params(("file" = String, Path, description = "`<token>.atom`, the token from `POST /api/v1/me/feed-token`"),
        ("If-None-Match" = Option<String>, Header, description = "The `ETag` of the last answer")),
    responses(
        (status = 200, description = "The owner's last 50 notifications as an Atom feed", content_type = "application/atom+xml", body = String),
        (status = 304, description = "Nothing new since the answer with that `ETag`"),
        (status = 404, description = "No such feed (never was, or its token was rotated)", body = ErrorBody)))]
pub async fn atom_feed(
    State(state): State<AppState>,
    P(file): P<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::not_found("no such feed (its URL may have been replaced)");
    let token = file.strip_suffix(".atom").ok_or_else(not_found)?;
    let user = state
        .feed_tokens
        .user_of(token)
        .await?
        .ok_or_else(not_found)?;
    let page = format!("{}/", public_url(&state));
    let activity = state.recent.activity(&user, FEED_LIMIT).await?;
    let entries: Vec<atom::Entry> = activity.iter().map(|e| feed_entry(e, &page)).collect();
    let feed_id = format!("urn:fmn:feed:{user}");
    let title = format!("Fedora Notifications for {user}");
    let self_link = format!("{}/feed/{file}", public_url(&state));
    let xml = atom::render(&atom::Feed {
        id: &feed_id,
        title: &title,
        self_link: &self_link,
        page_link: &page,
        entries: &entries,
    });
    Ok(conditional(&headers, ATOM_TYPE, xml.into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_lists_and_weak_tags_match() {
        let etag = etag_of(b"x");
        let mut h = HeaderMap::new();
        assert!(!not_modified(&h, &etag));
        h.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_str(&format!("\"other\", W/{etag}")).unwrap(),
        );
        assert!(not_modified(&h, &etag));
        assert!(!not_modified(&h, &etag_of(b"y")));
    }

    #[test]
    fn entries_link_to_the_event_or_the_page() {
        let page = "https://n.example/";
        let e = serde_json::json!({"job_id": "j1", "title": "t", "link": "javascript:alert(1)",
            "filter": "mine", "address": "a@b.org", "digest": true, "time": 5.0});
        let entry = feed_entry(&e, page);
        assert_eq!(entry.link, page);
        assert_eq!(entry.id, "urn:fmn:notification:j1");
        assert_eq!(entry.summary, "filter “mine” · to a@b.org (digest)");
        let e = serde_json::json!({"job_id": "j2", "subtitle": "s", "link": "https://x.org/1"});
        assert_eq!(feed_entry(&e, page).link, "https://x.org/1");
        assert_eq!(feed_entry(&e, page).title, "s");
    }
}
