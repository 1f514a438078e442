//! The caller's own preferences: destinations, filters, export and import, explain, recent.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use fmn_core::directory::SuggestedAddresses;
use fmn_core::prefs::{
    validate_email, validate_nick, Delivery, Destination, DestinationKind, Filter, UserPrefs,
};
use fmn_core::rules::Rule;
use fmn_core::schedule::QuietHours;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::account::{change, load_or_create};
use super::confirm;
use super::extract::{Body, P};
use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::schema::{
    DeliveryDoc, DestinationDoc, FilterDoc, FilterNameDoc, IdDoc, ImportDoc, Kind, MeDoc,
    NewDestinationDoc, PrefsDoc, QuietHoursDoc, RuleDoc, TimeZoneDoc,
};
use crate::state::AppState;

/// Entries of the activity feed returned by `/me/recent`.
pub const RECENT_LIMIT: i32 = 100;
/// The longest message id accepted by `/me/explain`.
pub const MAX_MSG_ID: usize = 200;

/// The caller's preferences as `/api/v1/me` shows them (`MeDoc`): with whether the caller is an
/// admin and the addresses a new destination starts from.
async fn me_doc(state: &AppState, prefs: &UserPrefs, caller: &Caller) -> Result<Value, ApiError> {
    let mut v = serde_json::to_value(prefs).expect("preferences serialise");
    v["admin"] = caller.admin.into();
    v["suggested_addresses"] =
        serde_json::to_value(suggested_addresses(state, &caller.name).await?)
            .expect("suggestions serialise");
    Ok(v)
}

/// What a new destination of each kind starts from: the caller's FAS account as the sync
/// stored it.
async fn suggested_addresses(state: &AppState, name: &str) -> Result<SuggestedAddresses, ApiError> {
    let account = state.ownership.account(name).await?;
    Ok(SuggestedAddresses::of(name, account.as_ref()))
}

#[utoipa::path(get, path = "/api/v1/me", tag = "me", security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's preferences (created on first call)", body = MeDoc),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "A bot account: bots cannot sign in", body = ErrorBody)))]
pub async fn me(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>, ApiError> {
    let prefs = load_or_create(&state, &caller.name).await?;
    Ok(Json(me_doc(&state, &prefs, &caller).await?))
}

/// `Some(None)` for an explicit `null`, `None` when the field is absent.
fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

/// Changes to the caller's account settings (absent fields stay).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MePatch {
    /// The time zone quiet hours and digest schedules are read in; `null`: UTC. Only set
    /// here for now (FAS's time zone is not read yet).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<TimeZoneDoc>, nullable)]
    pub time_zone: Option<Option<String>>,
}

#[utoipa::path(patch, path = "/api/v1/me", tag = "me", security(("bearer" = [])),
    request_body = MePatch,
    responses(
        (status = 200, description = "The caller's preferences, changed", body = MeDoc),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 422, description = "Not a time zone of the tz database", body = ErrorBody)))]
pub async fn patch_me(
    State(state): State<AppState>,
    caller: Caller,
    Body(body): Body<MePatch>,
) -> Result<Json<Value>, ApiError> {
    load_or_create(&state, &caller.name).await?;
    let prefs = change(&state, &caller.name, |p| {
        if let Some(tz) = &body.time_zone {
            p.time_zone = tz.as_deref().map(str::trim).map(str::to_string);
        }
        Ok(())
    })
    .await?;
    Ok(Json(me_doc(&state, &prefs, &caller).await?))
}

#[utoipa::path(post, path = "/api/v1/me/reset", tag = "me", security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's preferences with their filters replaced by the default filters, feeding every destination; destinations and settings stay", body = MeDoc),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn reset_filters(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    load_or_create(&state, &caller.name).await?;
    let prefs = change(&state, &caller.name, |p| {
        let all: Vec<String> = p.destinations.iter().map(|d| d.id.clone()).collect();
        // Made before the old filters go, so the new ids are fresh.
        p.filters = fmn_core::defaults::default_filters(p, &all);
        Ok(())
    })
    .await?;
    Ok(Json(me_doc(&state, &prefs, &caller).await?))
}

/// A destination to add (documented per kind as `NewDestinationDoc`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewDestination {
    pub kind: Kind,
    /// An e-mail address, an IRC nick or a Matrix user; for IRC and Matrix, absent or empty:
    /// the caller's own from FAS ([`SuggestedAddresses`]).
    #[serde(default)]
    pub address: String,
    pub delivery: Option<Delivery>,
    pub irc_colour: Option<bool>,
    pub verbose: Option<bool>,
    pub quiet_hours: Option<QuietHours>,
}

/// Changes to a destination (absent fields stay).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DestinationPatch {
    #[schema(value_type = Option<DeliveryDoc>)]
    pub delivery: Option<Delivery>,
    pub irc_colour: Option<bool>,
    pub verbose: Option<bool>,
    /// `true`: resume delivery stopped by bounces, a complaint or failures (`health.stopped`),
    /// once the address works again. `false` is refused: stops are made by delivery only.
    pub resume: Option<bool>,
    /// `true` pauses the destination (nothing is sent, filters keep it); `false` resumes it.
    /// A pause is the owner's and independent of a stop by delivery (`resume`).
    pub paused: Option<bool>,
    /// `null` removes them.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<QuietHoursDoc>, nullable)]
    pub quiet_hours: Option<Option<QuietHours>>,
}

/// The address as it is stored: checked, and for Matrix a full user id (a bare account name
/// is on `fedora.im`).
fn checked_address(kind: DestinationKind, address: &str) -> Result<String, ApiError> {
    let address = address.trim();
    match kind {
        DestinationKind::Email => validate_email("address", address)?,
        DestinationKind::Irc => validate_nick("address", address)?,
        DestinationKind::Matrix => {
            return fmn_core::matrix::normalize_user_id(address)
                .map_err(|reason| ApiError::invalid("address", reason));
        }
    }
    Ok(address.to_string())
}

fn destination_of(p: &UserPrefs, id: &str) -> Destination {
    p.destination(id)
        .cloned()
        .expect("the destination was just written")
}

#[utoipa::path(post, path = "/api/v1/me/destinations", tag = "me", security(("bearer" = [])),
    request_body = NewDestinationDoc,
    responses(
        (status = 201, description = "Added, unconfirmed; a confirmation was sent", body = DestinationDoc,
            links(
                ("PatchDestination" = (operation_id = "patch_destination", parameters(("id" = "$response.body#/id")))),
                ("ResendConfirmation" = (operation_id = "resend", parameters(("id" = "$response.body#/id")))),
                ("DeleteDestination" = (operation_id = "delete_destination", parameters(("id" = "$response.body#/id")))),
            )),
        (status = 401, body = ErrorBody), (status = 409, description = "Already a destination", body = ErrorBody),
        (status = 422, description = "Bad address, delivery or too many destinations", body = ErrorBody),
        (status = 429, description = "Too many confirmations: this caller's this hour, this address's today, or everybody's this hour", body = ErrorBody)))]
pub async fn add_destination(
    State(state): State<AppState>,
    caller: Caller,
    Body(body): Body<NewDestination>,
) -> Result<impl IntoResponse, ApiError> {
    let kind = DestinationKind::from(body.kind);
    let given = body.address.trim();
    let address = if given.is_empty() && kind != DestinationKind::Email {
        let suggested = suggested_addresses(&state, &caller.name).await?;
        let own = match kind {
            DestinationKind::Irc => suggested.irc.ok_or_else(|| {
                ApiError::invalid("address", "FAS lists no IRC nick for you: give one")
            })?,
            _ => suggested.matrix,
        };
        checked_address(kind, &own)?
    } else {
        checked_address(kind, given)?
    };
    let current = load_or_create(&state, &caller.name).await?;
    let new = Destination {
        delivery: body.delivery.unwrap_or_default(),
        irc_colour: body.irc_colour.unwrap_or(false),
        verbose: body.verbose.unwrap_or(true),
        quiet_hours: body.quiet_hours,
        ..Destination::new(String::new(), kind, address.clone())
    };
    // Refused input (a duplicate, a bad delivery, too many) is refused before the allowances
    // are counted: it would spend the address's allowance without sending anything.
    let mut trial = current.clone();
    trial.add_destination(new.clone())?;
    trial.validate().map_err(|e| {
        ApiError::from(e).rebase(&format!("destinations[{}]", current.destinations.len()))
    })?;
    // The allowances before the write, so a refused confirmation adds nothing.
    state
        .confirmations
        .reserve(&caller.name, kind, &address)
        .await?;
    let mut id = String::new();
    let mut index = 0;
    let result = change(&state, &caller.name, |p| {
        index = p.destinations.len();
        id = p.add_destination(new.clone())?;
        Ok(())
    })
    .await;
    let prefs = result.map_err(|e| e.rebase(&format!("destinations[{index}]")))?;
    let destination = destination_of(&prefs, &id);
    confirm::deliver_confirmation(&state, &caller.name, &destination).await?;
    Ok((StatusCode::CREATED, Json(destination)))
}

#[utoipa::path(patch, path = "/api/v1/me/destinations/{id}", tag = "me", security(("bearer" = [])),
    params(("id" = String, Path, description = "Destination id")),
    request_body = DestinationPatch,
    responses(
        (status = 200, description = "The changed destination", body = DestinationDoc),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn patch_destination(
    State(state): State<AppState>,
    caller: Caller,
    P(id): P<String>,
    Body(body): Body<DestinationPatch>,
) -> Result<Json<Destination>, ApiError> {
    if body.resume == Some(false) {
        return Err(ApiError::invalid(
            "resume",
            "only `true` (resume delivery) is accepted: delivery stops a destination, you resume it",
        ));
    }
    load_or_create(&state, &caller.name).await?;
    let mut index = 0;
    let result = change(&state, &caller.name, |p| {
        index = p.destinations.iter().position(|d| d.id == id).unwrap_or(0);
        let d = p.destination_mut(&id)?;
        if let Some(delivery) = body.delivery {
            d.delivery = delivery;
        }
        if let Some(c) = body.irc_colour {
            d.irc_colour = c;
        }
        if let Some(v) = body.verbose {
            d.verbose = v;
        }
        if body.resume == Some(true) {
            d.health.resume();
        }
        if let Some(paused) = body.paused {
            d.paused = paused;
        }
        if let Some(q) = body.quiet_hours {
            d.quiet_hours = q;
        }
        Ok(())
    })
    .await;
    let prefs = result.map_err(|e| e.rebase(&format!("destinations[{index}]")))?;
    Ok(Json(destination_of(&prefs, &id)))
}

#[utoipa::path(delete, path = "/api/v1/me/destinations/{id}", tag = "me", security(("bearer" = [])),
    params(("id" = String, Path, description = "Destination id")),
    responses((status = 204, description = "Removed, and from every filter"),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_destination(
    State(state): State<AppState>,
    caller: Caller,
    P(id): P<String>,
) -> Result<StatusCode, ApiError> {
    load_or_create(&state, &caller.name).await?;
    change(&state, &caller.name, |p| Ok(p.remove_destination(&id)?)).await?;
    state.confirmations.void(&caller.name, &id).await?;
    purge_digest(&state, &caller.name, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Drops the pending digest items of `user`'s removed destination `id`.
async fn purge_digest(state: &AppState, user: &str, id: &str) -> Result<(), ApiError> {
    let dropped = state.digests.purge(user, id).await?;
    if dropped > 0 {
        tracing::info!(
            user,
            destination = id,
            dropped,
            "pending digest items of a removed destination dropped"
        );
    }
    Ok(())
}

/// When the confirmation sent expires.
#[derive(Debug, Serialize, ToSchema)]
pub struct Sent {
    /// Epoch seconds.
    pub expires: u64,
}

#[utoipa::path(post, path = "/api/v1/me/destinations/{id}/resend", tag = "me", security(("bearer" = [])),
    params(("id" = String, Path, description = "Destination id")),
    responses((status = 202, description = "A fresh confirmation was sent (the previous link no longer works)", body = Sent),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "Already confirmed", body = ErrorBody),
        (status = 429, description = "Too many confirmations this hour", body = ErrorBody)))]
pub async fn resend(
    State(state): State<AppState>,
    caller: Caller,
    P(id): P<String>,
) -> Result<impl IntoResponse, ApiError> {
    let prefs = load_or_create(&state, &caller.name).await?;
    let d = prefs
        .destination(&id)
        .ok_or_else(|| ApiError::not_found(format!("no destination `{id}`")))?;
    if d.confirmed {
        return Err(ApiError::conflict("this destination is already confirmed"));
    }
    let expires = confirm::send_confirmation(&state, &caller.name, d).await?;
    Ok((StatusCode::ACCEPTED, Json(Sent { expires })))
}

// ----------------------------------------------------------------- filters

/// A filter as written by the caller (the id is the store's).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FilterBody {
    #[schema(value_type = FilterNameDoc)]
    pub name: String,
    pub enabled: Option<bool>,
    pub oneshot: Option<bool>,
    /// Destination ids.
    #[schema(value_type = Option<Vec<IdDoc>>)]
    pub destinations: Option<Vec<String>>,
    /// Rules (see `/api/v1/rules` for the kinds and their arguments).
    #[schema(value_type = Option<Vec<RuleDoc>>)]
    pub rules: Option<Vec<Rule>>,
    /// Goes through quiet hours.
    pub urgent: Option<bool>,
    /// At most this many immediate notifications an hour; the rest wait for the next digest.
    #[schema(minimum = 1, maximum = 1000)]
    pub max_per_hour: Option<u32>,
}

impl FilterBody {
    fn into_filter(self, id: String) -> Filter {
        Filter {
            id,
            name: self.name,
            enabled: self.enabled.unwrap_or(true),
            oneshot: self.oneshot.unwrap_or(false),
            destinations: self.destinations.unwrap_or_default(),
            rules: self.rules.unwrap_or_default(),
            urgent: self.urgent.unwrap_or(false),
            max_per_hour: self.max_per_hour,
        }
    }
}

fn no_filter(id: &str) -> ApiError {
    ApiError::not_found(format!("no filter `{id}`"))
}

#[utoipa::path(post, path = "/api/v1/me/filters", tag = "me", security(("bearer" = [])),
    request_body = FilterBody,
    responses((status = 201, description = "The new filter", body = FilterDoc,
            links(
                ("GetFilter" = (operation_id = "get_filter", parameters(("id" = "$response.body#/id")))),
                ("PutFilter" = (operation_id = "put_filter", parameters(("id" = "$response.body#/id")))),
                ("DeleteFilter" = (operation_id = "delete_filter", parameters(("id" = "$response.body#/id")))),
            )),
        (status = 401, body = ErrorBody),
        (status = 422, description = "Bad name, rule, destination, or too many filters", body = ErrorBody)))]
pub async fn create_filter(
    State(state): State<AppState>,
    caller: Caller,
    Body(body): Body<FilterBody>,
) -> Result<impl IntoResponse, ApiError> {
    load_or_create(&state, &caller.name).await?;
    let template = body.into_filter(String::new());
    let mut id = String::new();
    let mut index = 0;
    let result = change(&state, &caller.name, |p| {
        index = p.filters.len();
        id = p.add_filter(template.clone());
        Ok(())
    })
    .await;
    let prefs = result.map_err(|e| e.rebase(&format!("filters[{index}]")))?;
    let filter = prefs.filter(&id).cloned().expect("just written");
    Ok((StatusCode::CREATED, Json(filter)))
}

#[utoipa::path(get, path = "/api/v1/me/filters/{id}", tag = "me", security(("bearer" = [])),
    params(("id" = String, Path, description = "Filter id")),
    responses((status = 200, body = FilterDoc), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_filter(
    State(state): State<AppState>,
    caller: Caller,
    P(id): P<String>,
) -> Result<Json<Filter>, ApiError> {
    let prefs = load_or_create(&state, &caller.name).await?;
    prefs
        .filter(&id)
        .cloned()
        .map(Json)
        .ok_or_else(|| no_filter(&id))
}

#[utoipa::path(put, path = "/api/v1/me/filters/{id}", tag = "me", security(("bearer" = [])),
    params(("id" = String, Path, description = "Filter id")),
    request_body = FilterBody,
    responses((status = 200, description = "The replaced filter", body = FilterDoc),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn put_filter(
    State(state): State<AppState>,
    caller: Caller,
    P(id): P<String>,
    Body(body): Body<FilterBody>,
) -> Result<Json<Filter>, ApiError> {
    load_or_create(&state, &caller.name).await?;
    let replacement = body.into_filter(id.clone());
    let mut index = 0;
    let result = change(&state, &caller.name, |p| {
        index = p.replace_filter(replacement.clone())?;
        Ok(())
    })
    .await;
    let prefs = result.map_err(|e| e.rebase(&format!("filters[{index}]")))?;
    Ok(Json(prefs.filter(&id).cloned().expect("just written")))
}

#[utoipa::path(delete, path = "/api/v1/me/filters/{id}", tag = "me", security(("bearer" = [])),
    params(("id" = String, Path, description = "Filter id")),
    responses((status = 204, description = "Removed"), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_filter(
    State(state): State<AppState>,
    caller: Caller,
    P(id): P<String>,
) -> Result<StatusCode, ApiError> {
    load_or_create(&state, &caller.name).await?;
    change(&state, &caller.name, |p| Ok(p.remove_filter(&id)?)).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ----------------------------------------------------------------- export, import

#[utoipa::path(get, path = "/api/v1/me/export", tag = "me", security(("bearer" = [])),
    responses((status = 200, description = "The whole preferences, as a download", body = PrefsDoc),
        (status = 401, body = ErrorBody)))]
pub async fn export(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<impl IntoResponse, ApiError> {
    let prefs = load_or_create(&state, &caller.name).await?;
    let disposition = format!("attachment; filename=\"fmn-{}.json\"", prefs.name);
    Ok(([(header::CONTENT_DISPOSITION, disposition)], Json(prefs)))
}

/// Imports `doc` into `name`'s preferences and sends the confirmations it needs.
pub async fn import_into(
    state: &AppState,
    name: &str,
    doc: &ImportDoc,
) -> Result<UserPrefs, ApiError> {
    let mut to_confirm = Vec::new();
    let mut removed: Vec<String> = Vec::new();
    let prefs = change(state, name, |p| {
        let before: Vec<String> = p.destinations.iter().map(|d| d.id.clone()).collect();
        to_confirm = p.import(&doc.destinations, &doc.filters);
        // An id kept means the same kind and address (see `UserPrefs::import`).
        removed = before
            .into_iter()
            .filter(|id| p.destination(id).is_none())
            .collect();
        Ok(())
    })
    .await?;
    for id in &removed {
        state.confirmations.void(name, id).await?;
        purge_digest(state, name, id).await?;
    }
    for d in &to_confirm {
        confirm::send_confirmation(state, name, d).await?;
    }
    Ok(prefs)
}

#[utoipa::path(put, path = "/api/v1/me/import", tag = "me", security(("bearer" = [])),
    request_body = ImportDoc,
    responses((status = 200, description = "The new preferences; new addresses come in unconfirmed", body = PrefsDoc),
        (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn import(
    State(state): State<AppState>,
    caller: Caller,
    Body(doc): Body<ImportDoc>,
) -> Result<Json<UserPrefs>, ApiError> {
    load_or_create(&state, &caller.name).await?;
    Ok(Json(import_into(&state, &caller.name, &doc).await?))
}

// ----------------------------------------------------------------- explain, recent

#[utoipa::path(get, path = "/api/v1/me/explain/{msg_id}", tag = "me", security(("bearer" = [])),
    params(("msg_id" = String, Path, description = "A message id (kept 14 days)")),
    responses((status = 200, description = "Per filter and rule, why the message did or did not reach the caller", body = Object),
        (status = 401, body = ErrorBody), (status = 404, description = "Unknown or older message", body = ErrorBody)))]
pub async fn explain(
    State(state): State<AppState>,
    caller: Caller,
    P(msg_id): P<String>,
) -> Result<impl IntoResponse, ApiError> {
    if msg_id.is_empty() || msg_id.len() > MAX_MSG_ID || msg_id.chars().any(char::is_control) {
        return Err(ApiError::not_found("no such message"));
    }
    let prefs = load_or_create(&state, &caller.name).await?;
    let known = state.ownership_cache.get(&state.ownership).await?;
    let explained = fmn_aws::explain::explain_recent(&state.recent, &known, &prefs, &msg_id)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    explained.map(Json).ok_or_else(|| {
        ApiError::not_found(format!(
            "message `{msg_id}` is not among the recent messages (kept 14 days)"
        ))
    })
}

#[utoipa::path(get, path = "/api/v1/me/recent", tag = "me", security(("bearer" = [])),
    responses((status = 200, description = "The last 100 notifications, newest first", body = Vec<Object>),
        (status = 401, body = ErrorBody)))]
pub async fn recent(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<Value>>, ApiError> {
    // Also refuses bot accounts: their activity is not for whoever holds their FAS name.
    load_or_create(&state, &caller.name).await?;
    Ok(Json(
        state.recent.activity(&caller.name, RECENT_LIMIT).await?,
    ))
}
