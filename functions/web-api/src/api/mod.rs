//! The JSON API under `/api/v1` (see `API.md`; each handler's `utoipa::path` feeds the OpenAPI
//! document).

pub mod admin;
pub mod confirm;

use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, patch, post, put};
use axum::{Json, Router};
use fmn_aws::prefs_store::PrefsStoreError;
use fmn_core::defaults::new_account;
use fmn_core::prefs::{
    validate_account_name, validate_email, validate_nick, Delivery, Destination, DestinationKind,
    Filter, UserPrefs,
};
use fmn_core::rules::Rule;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::openapi::{DeliveryDoc, DestinationDoc, FilterDoc, MeDoc, PrefsDoc, RuleDoc};
use crate::AppState;

/// Entries of the activity feed returned by `/me/recent`.
pub const RECENT_LIMIT: i32 = 100;
/// The longest message id accepted by `/me/explain`.
pub const MAX_MSG_ID: usize = 200;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/openapi.json", get(crate::openapi::serve))
        .route("/config", get(config))
        .route("/rules", get(rules))
        .route("/dev/login", post(dev_login))
        .route("/me", get(me))
        .route("/me/destinations", post(add_destination))
        .route(
            "/me/destinations/{id}",
            patch(patch_destination).delete(delete_destination),
        )
        .route("/me/destinations/{id}/resend", post(resend))
        .route("/me/filters", post(create_filter))
        .route(
            "/me/filters/{id}",
            get(get_filter).put(put_filter).delete(delete_filter),
        )
        .route("/me/export", get(export))
        .route("/me/import", put(import))
        .route("/me/explain/{msg_id}", get(explain))
        .route("/me/recent", get(recent))
        .route("/confirm/{token}", get(confirm::show).post(confirm::answer))
        .route("/unsubscribe/{token}", post(confirm::unsubscribe))
        .route("/admin/users", get(admin::list).post(admin::create))
        .route("/admin/users/{name}/disable", post(admin::disable))
        .route("/admin/users/{name}/enable", post(admin::enable))
        .route(
            "/admin/users/{name}/prefs",
            get(admin::get_prefs).put(admin::put_prefs),
        )
        .fallback(not_found)
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such API endpoint")
}

/// A JSON body whose rejections are API errors (with the field at fault).
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let Json(value) = Json::<T>::from_request(req, state).await?;
        Ok(Body(value))
    }
}

/// A path parameter whose rejections are API errors.
pub struct P<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for P<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let axum::extract::Path(value) =
            axum::extract::Path::<T>::from_request_parts(parts, state).await?;
        Ok(P(value))
    }
}

/// Applies `f` to `name`'s preferences in one conditional write (retried on a lost race),
/// after validating the result. Errors of `f` come back as they are.
pub async fn change<F>(state: &AppState, name: &str, mut f: F) -> Result<UserPrefs, ApiError>
where
    F: FnMut(&mut UserPrefs) -> Result<(), ApiError>,
{
    let mut failure: Option<ApiError> = None;
    let result = state
        .prefs
        .update(name, |p| match f(p) {
            Ok(()) => Ok(p.validate()?),
            Err(e) => {
                failure = Some(e);
                Err(PrefsStoreError::NotFound(String::new()))
            }
        })
        .await;
    match result {
        Ok(p) => Ok(p),
        Err(e) => Err(failure.take().unwrap_or_else(|| e.into())),
    }
}

/// The caller's preferences, created on first use (enabled, default filters, no destination).
pub async fn load_or_create(state: &AppState, name: &str) -> Result<UserPrefs, ApiError> {
    if let Some(p) = state.prefs.get(name).await? {
        return Ok(p);
    }
    let fresh = new_account(name, false, &[], false, true)?;
    match state.prefs.create(&fresh).await {
        Ok(p) => {
            tracing::info!(user = name, "account created on first visit");
            Ok(p)
        }
        // Created concurrently by another request.
        Err(PrefsStoreError::Exists(_)) => state
            .prefs
            .get(name)
            .await?
            .ok_or_else(|| ApiError::conflict("the account is being created; try again")),
        Err(e) => Err(e.into()),
    }
}

// ----------------------------------------------------------------- config, rules, dev login

/// How the page logs in.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuthConfig {
    /// `dev` (POST /api/v1/dev/login) or `oidc` (authorization code + PKCE).
    #[schema(example = "oidc")]
    pub auth: String,
    pub issuer: String,
    pub client_id: String,
}

#[utoipa::path(get, path = "/api/v1/config", tag = "meta",
    responses((status = 200, description = "How to log in", body = AuthConfig)))]
pub async fn config(State(state): State<AppState>) -> Json<AuthConfig> {
    Json(AuthConfig {
        auth: if state.settings.dev_auth {
            "dev"
        } else {
            "oidc"
        }
        .into(),
        issuer: state.settings.auth.issuer.clone(),
        client_id: state.settings.client_id.clone(),
    })
}

#[utoipa::path(get, path = "/api/v1/rules", tag = "meta",
    responses((status = 200, description = "The rule catalogue: kinds, families, descriptions, arguments", body = Vec<Object>)))]
pub async fn rules() -> impl IntoResponse {
    Json(fmn_core::rules::catalog())
}

/// Development login.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DevLogin {
    #[schema(example = "kalev", pattern = "^[a-z0-9][a-z0-9._-]{0,63}$")]
    pub username: String,
    #[serde(default)]
    #[schema(example = json!(["sysadmin-main"]), max_items = 100)]
    pub groups: Vec<String>,
}

/// A bearer token.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenAnswer {
    pub token: String,
}

#[utoipa::path(post, path = "/api/v1/dev/login", tag = "meta", request_body = DevLogin,
    responses(
        (status = 200, description = "A token signed by the development issuer", body = TokenAnswer),
        (status = 404, description = "Not in development mode", body = ErrorBody),
        (status = 422, description = "Bad user name or groups", body = ErrorBody)))]
pub async fn dev_login(
    State(state): State<AppState>,
    Body(body): Body<DevLogin>,
) -> Result<Json<TokenAnswer>, ApiError> {
    let Some(issuer) = &state.dev else {
        return Err(ApiError::not_found("development login is off"));
    };
    validate_account_name("username", &body.username)?;
    if body.groups.len() > 100 {
        return Err(ApiError::too_many("groups", "at most 100 groups"));
    }
    for (i, g) in body.groups.iter().enumerate() {
        if g.is_empty() || g.len() > 64 || g.chars().any(char::is_control) {
            return Err(ApiError::invalid(
                format!("groups[{i}]"),
                "1 to 64 characters, no control characters",
            ));
        }
    }
    let token = issuer.token(&state.settings.auth, &body.username, &body.groups);
    Ok(Json(TokenAnswer { token }))
}

// ----------------------------------------------------------------- me

fn with_admin(prefs: &UserPrefs, admin: bool) -> Value {
    let mut v = serde_json::to_value(prefs).expect("preferences serialise");
    v["admin"] = admin.into();
    v
}

#[utoipa::path(get, path = "/api/v1/me", tag = "me", security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's preferences (created on first call)", body = MeDoc),
        (status = 401, description = "No valid token", body = ErrorBody)))]
pub async fn me(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>, ApiError> {
    let prefs = load_or_create(&state, &caller.name).await?;
    Ok(Json(with_admin(&prefs, caller.admin)))
}

/// `email` or `irc`.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Email,
    Irc,
}

impl From<Kind> for DestinationKind {
    fn from(k: Kind) -> Self {
        match k {
            Kind::Email => DestinationKind::Email,
            Kind::Irc => DestinationKind::Irc,
        }
    }
}

/// A destination to add.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDestination {
    pub kind: Kind,
    /// An e-mail address or an IRC nick.
    #[schema(example = "kalev@example.org", min_length = 1, max_length = 254)]
    pub address: String,
    #[schema(value_type = Option<DeliveryDoc>)]
    pub delivery: Option<Delivery>,
    pub irc_colour: Option<bool>,
    pub verbose: Option<bool>,
}

/// Changes to a destination (absent fields stay).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DestinationPatch {
    #[schema(value_type = Option<DeliveryDoc>)]
    pub delivery: Option<Delivery>,
    pub irc_colour: Option<bool>,
    pub verbose: Option<bool>,
}

fn check_address(kind: DestinationKind, address: &str) -> Result<(), ApiError> {
    match kind {
        DestinationKind::Email => validate_email("address", address)?,
        DestinationKind::Irc => validate_nick("address", address)?,
    }
    Ok(())
}

fn find_destination<'a>(p: &'a mut UserPrefs, id: &str) -> Result<&'a mut Destination, ApiError> {
    p.destinations
        .iter_mut()
        .find(|d| d.id == id)
        .ok_or_else(|| ApiError::not_found(format!("no destination `{id}`")))
}

fn destination_of(p: &UserPrefs, id: &str) -> Destination {
    p.destination(id)
        .cloned()
        .expect("the destination was just written")
}

#[utoipa::path(post, path = "/api/v1/me/destinations", tag = "me", security(("bearer" = [])),
    request_body = NewDestination,
    responses(
        (status = 201, description = "Added, unconfirmed; a confirmation was sent", body = DestinationDoc),
        (status = 401, body = ErrorBody), (status = 409, description = "Already a destination", body = ErrorBody),
        (status = 422, description = "Bad address, delivery or too many destinations", body = ErrorBody),
        (status = 429, description = "Too many confirmations this hour", body = ErrorBody)))]
pub async fn add_destination(
    State(state): State<AppState>,
    caller: Caller,
    Body(body): Body<NewDestination>,
) -> Result<impl IntoResponse, ApiError> {
    let kind = DestinationKind::from(body.kind);
    let address = body.address.trim().to_string();
    check_address(kind, &address)?;
    load_or_create(&state, &caller.name).await?;
    // The allowance first, so a refused confirmation adds nothing.
    state.confirmations.reserve(&caller.name).await?;
    let mut id = String::new();
    let mut index = 0;
    let result = change(&state, &caller.name, |p| {
        if p.destinations
            .iter()
            .any(|d| d.kind == kind && d.address.eq_ignore_ascii_case(&address))
        {
            return Err(ApiError::conflict(format!(
                "`{address}` is already one of your destinations"
            )));
        }
        id = p.next_id(kind.as_str());
        index = p.destinations.len();
        p.destinations.push(Destination {
            id: id.clone(),
            kind,
            address: address.clone(),
            confirmed: false,
            delivery: body.delivery.unwrap_or_default(),
            irc_colour: body.irc_colour.unwrap_or(false),
            verbose: body.verbose.unwrap_or(true),
        });
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
    load_or_create(&state, &caller.name).await?;
    let mut index = 0;
    let result = change(&state, &caller.name, |p| {
        index = p.destinations.iter().position(|d| d.id == id).unwrap_or(0);
        let d = find_destination(p, &id)?;
        if let Some(delivery) = body.delivery {
            d.delivery = delivery;
        }
        if let Some(c) = body.irc_colour {
            d.irc_colour = c;
        }
        if let Some(v) = body.verbose {
            d.verbose = v;
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
    change(&state, &caller.name, |p| {
        find_destination(p, &id)?;
        p.destinations.retain(|d| d.id != id);
        for f in &mut p.filters {
            f.destinations.retain(|d| *d != id);
        }
        Ok(())
    })
    .await?;
    state.confirmations.void(&caller.name, &id).await?;
    Ok(StatusCode::NO_CONTENT)
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
    #[schema(example = "My builds", min_length = 1, max_length = 64)]
    pub name: String,
    pub enabled: Option<bool>,
    pub oneshot: Option<bool>,
    /// Destination ids.
    pub destinations: Option<Vec<String>>,
    /// Rules (see `/api/v1/rules` for the kinds and their arguments).
    #[schema(value_type = Option<Vec<RuleDoc>>)]
    pub rules: Option<Vec<Rule>>,
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
        }
    }
}

fn no_filter(id: &str) -> ApiError {
    ApiError::not_found(format!("no filter `{id}`"))
}

#[utoipa::path(post, path = "/api/v1/me/filters", tag = "me", security(("bearer" = [])),
    request_body = FilterBody,
    responses((status = 201, description = "The new filter", body = FilterDoc),
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
        id = p.next_id("filter");
        index = p.filters.len();
        p.filters.push(Filter {
            id: id.clone(),
            ..template.clone()
        });
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
        index = p
            .filters
            .iter()
            .position(|f| f.id == id)
            .ok_or_else(|| no_filter(&id))?;
        p.filters[index] = replacement.clone();
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
    change(&state, &caller.name, |p| {
        if p.filter(&id).is_none() {
            return Err(no_filter(&id));
        }
        p.filters.retain(|f| f.id != id);
        Ok(())
    })
    .await?;
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

/// Preferences to import: destinations and filters (other fields of an export are ignored:
/// the account's name, state and version are the store's).
#[derive(Debug, Deserialize, ToSchema)]
pub struct ImportDoc {
    #[serde(default)]
    #[schema(value_type = Vec<DestinationDoc>)]
    pub destinations: Vec<Destination>,
    #[serde(default)]
    #[schema(value_type = Vec<FilterDoc>)]
    pub filters: Vec<Filter>,
}

/// `current` with `doc`'s destinations and filters. A destination stays confirmed only if
/// `current` has it confirmed with the same kind and address. Returns the destinations that
/// need a confirmation sent.
pub fn merge_import(current: &mut UserPrefs, doc: &ImportDoc) -> Vec<Destination> {
    let before = current.destinations.clone();
    current.destinations = doc
        .destinations
        .iter()
        .cloned()
        .map(|mut d| {
            d.address = d.address.trim().to_string();
            d.confirmed = before.iter().any(|b| {
                b.confirmed && b.kind == d.kind && b.address.eq_ignore_ascii_case(&d.address)
            });
            d
        })
        .collect();
    current.filters = doc.filters.clone();
    current
        .destinations
        .iter()
        .filter(|d| {
            !d.confirmed
                && !before
                    .iter()
                    .any(|b| b.id == d.id && b.kind == d.kind && b.address == d.address)
        })
        .cloned()
        .collect()
}

/// Imports `doc` into `name`'s preferences and sends the confirmations it needs.
pub async fn import_into(
    state: &AppState,
    name: &str,
    doc: &ImportDoc,
) -> Result<UserPrefs, ApiError> {
    let mut to_confirm = Vec::new();
    let prefs = change(state, name, |p| {
        to_confirm = merge_import(p, doc);
        Ok(())
    })
    .await?;
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
    let ownership = state.ownership_cache.get(&state.ownership).await?;
    let explained = fmn_aws::explain::explain_recent(&state.recent, &ownership, &prefs, &msg_id)
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
    Ok(Json(
        state.recent.activity(&caller.name, RECENT_LIMIT).await?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dest(id: &str, address: &str, confirmed: bool) -> Destination {
        Destination {
            id: id.into(),
            kind: DestinationKind::Email,
            address: address.into(),
            confirmed,
            delivery: Delivery::Immediate,
            irc_colour: false,
            verbose: true,
        }
    }

    #[test]
    fn import_keeps_confirmation_only_for_the_same_address() {
        let mut p = UserPrefs::new("alice");
        p.destinations = vec![
            dest("email-1", "a@example.org", true),
            dest("email-2", "b@example.org", false),
        ];
        let doc = ImportDoc {
            destinations: vec![
                dest("email-1", "A@example.org", true),
                dest("email-2", "b@example.org", true),
                dest("email-3", "c@example.org", true),
            ],
            filters: vec![],
        };
        let sent = merge_import(&mut p, &doc);
        let confirmed: Vec<bool> = p.destinations.iter().map(|d| d.confirmed).collect();
        assert_eq!(confirmed, [true, false, false]);
        // b is still pending with its earlier link; only c needs a mail.
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].address, "c@example.org");
    }
}
