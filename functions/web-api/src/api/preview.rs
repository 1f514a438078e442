//! Filter previews (old FMN's "hints"): what an unsaved filter would have matched among the
//! stored messages of the last 14 days, and at what rate (`fmn_aws::preview`); and each
//! destination's last delivery.

use axum::extract::State;
use axum::Json;
use fmn_aws::preview::{preview as run_preview, Preview, PreviewLimits};
use fmn_core::prefs::Filter;
use fmn_core::rules::Rule;
use serde::Deserialize;
use utoipa::ToSchema;

use super::account::load_or_create;
use super::extract::Body;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::schema::RuleDoc;
use crate::state::AppState;

/// The rules of a filter being edited (not saved).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewBody {
    /// All must hold, as in a filter.
    #[schema(value_type = Vec<RuleDoc>, max_items = 60)]
    pub rules: Vec<Rule>,
}

/// One stored message the filter matches.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct PreviewMatchDoc {
    msg_id: String,
    topic: String,
    title: String,
    subtitle: Option<String>,
    link: Option<String>,
    /// The message's time, epoch seconds.
    time: f64,
    /// Maintained by the caller or one of their groups.
    about_your_packages: bool,
}

/// What the filter would have brought.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct PreviewDoc {
    /// Matches among the messages read.
    matched: u64,
    /// Messages read.
    read: u64,
    /// Expected matches a day.
    per_day: f64,
    /// Of those, about the caller's packages.
    about_your_packages_per_day: f64,
    /// Days the rate is over (up to 14).
    days: f64,
    /// The rate is extrapolated from part of the messages.
    sampled: bool,
    /// The rate in words ("about 12 a day, 3 of them about your packages").
    summary: String,
    /// `topics`, `sample` or `nothing`.
    mode: String,
    /// Index partitions read.
    partitions: u64,
    /// DynamoDB requests made on the recent-messages table.
    requests: u64,
    /// The newest matches (at most 20), newest first.
    matches: Vec<PreviewMatchDoc>,
}

#[utoipa::path(post, path = "/api/v1/me/filters/preview", tag = "me", security(("bearer" = [])),
    request_body = PreviewBody,
    responses((status = 200, description = "The stored messages of the last 14 days the rules match, and the expected rate", body = PreviewDoc),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn preview(
    State(state): State<AppState>,
    caller: Caller,
    Body(body): Body<PreviewBody>,
) -> Result<Json<Preview>, ApiError> {
    let prefs = load_or_create(&state, &caller.name).await?;
    let filter = Filter::new("preview".into(), "preview".into(), Vec::new(), body.rules);
    // The rules are checked as a saved filter's would be (alone: the preview is not saved).
    let mut probe = prefs.clone();
    probe.filters = vec![filter];
    probe
        .validate()
        .map_err(|e| ApiError::from(e).rebase("filters[0]"))?;
    let rules = &probe.filters[0].rules;
    let known = state.ownership_cache.get(&state.ownership).await?;
    let started = std::time::Instant::now();
    let found = run_preview(
        &state.recent,
        &known,
        &caller.name,
        rules,
        fmn_aws::dynamo::now_secs(),
        PreviewLimits::default(),
    )
    .await
    .map_err(|e| ApiError::internal(&e))?;
    tracing::info!(
        user = %caller.name,
        mode = found.mode,
        partitions = found.partitions,
        requests = found.requests,
        read = found.estimate.read,
        matched = found.estimate.matched,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "filter preview"
    );
    Ok(Json(found))
}

/// One destination's last delivery.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct LastDeliveryDoc {
    /// The destination's id.
    destination: String,
    /// When it was delivered, milliseconds since the epoch.
    at_ms: u64,
    /// `email`, `digest`, `irc` or `matrix`.
    channel: String,
    /// What was delivered (the notification's title, or the digest's size).
    what: String,
}

#[utoipa::path(get, path = "/api/v1/me/deliveries", tag = "me", security(("bearer" = [])),
    responses((status = 200, description = "Each destination's last delivery (kept 90 days; destinations never delivered to are absent)", body = Vec<LastDeliveryDoc>),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn deliveries(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<fmn_aws::delivery_records::LastDelivery>>, ApiError> {
    let prefs = load_or_create(&state, &caller.name).await?;
    let ids: Vec<String> = prefs.destinations.iter().map(|d| d.id.clone()).collect();
    Ok(Json(
        state.records.last_deliveries(&caller.name, &ids).await?,
    ))
}
