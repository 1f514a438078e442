//! Administration: accounts, bot accounts' preferences, and what auto-created accounts start
//! with per group. Admins only (403 for others).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use std::collections::{BTreeMap, BTreeSet};

use fmn_aws::prefs_store::PrefsStoreError;
use fmn_core::accounts::{AccountDefaults, DefaultFilter, GroupDefaults};
use fmn_core::defaults::{new_account, NewAccount};
use fmn_core::prefs::{validate_account_name, validate_email, DestinationKind, UserPrefs};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::account::change;
use super::extract::{Body, P};
use super::me::import_into;
use crate::error::{ApiError, ErrorBody};
use crate::schema::{EmailDoc, ImportDoc, PrefsDoc};
use crate::state::{Admin, AppState};

/// One account in the admin's list.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountSummary {
    pub name: String,
    pub enabled: bool,
    pub bot: bool,
    /// How many destinations.
    pub destinations: usize,
    /// How many filters.
    pub filters: usize,
}

impl From<&UserPrefs> for AccountSummary {
    fn from(p: &UserPrefs) -> Self {
        Self {
            name: p.name.clone(),
            enabled: p.enabled,
            bot: p.bot,
            destinations: p.destinations.len(),
            filters: p.filters.len(),
        }
    }
}

fn check_name(name: &str) -> Result<(), ApiError> {
    validate_account_name("name", name)
        .map_err(|_| ApiError::not_found(format!("no user `{name}`")))
}

#[utoipa::path(get, path = "/api/v1/admin/users", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = Vec<AccountSummary>),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    _admin: Admin,
) -> Result<Json<Vec<AccountSummary>>, ApiError> {
    let mut all = state.prefs.load_all().await?;
    all.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Json(all.iter().map(AccountSummary::from).collect()))
}

/// An account to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    #[schema(example = "scm-commits-list", pattern = "^[a-z0-9][a-z0-9._-]{0,63}$")]
    pub name: String,
    /// An admin-managed bot account (a mailing list), not a person.
    pub bot: Option<bool>,
    /// An address to deliver to (it gets a confirmation mail).
    #[schema(value_type = Option<EmailDoc>)]
    pub email: Option<String>,
    /// The default filters (default true).
    pub create_defaults: Option<bool>,
}

#[utoipa::path(post, path = "/api/v1/admin/users", tag = "admin", security(("bearer" = [])),
    request_body = NewUser,
    responses((status = 201, description = "Created", body = AccountSummary,
            links(
                ("Disable" = (operation_id = "disable", parameters(("name" = "$response.body#/name")))),
                ("Enable" = (operation_id = "enable", parameters(("name" = "$response.body#/name")))),
                ("GetPrefs" = (operation_id = "get_prefs", parameters(("name" = "$response.body#/name")), description = "A bot account's")),
                ("PutPrefs" = (operation_id = "put_prefs", parameters(("name" = "$response.body#/name")), description = "A bot account's")),
            )),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, description = "The account exists", body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Body(body): Body<NewUser>,
) -> Result<impl IntoResponse, ApiError> {
    validate_account_name("name", &body.name)?;
    let mut destinations = Vec::new();
    if let Some(email) = &body.email {
        let email = email.trim().to_string();
        validate_email("email", &email)?;
        destinations.push((DestinationKind::Email, email));
    }
    let options = NewAccount {
        bot: body.bot.unwrap_or(false),
        destinations,
        confirmed: false,
        with_defaults: body.create_defaults.unwrap_or(true),
    };
    let prefs = new_account(&body.name, &options)?;
    let stored = match state.prefs.create(&prefs).await {
        Ok(p) => p,
        Err(PrefsStoreError::Exists(name)) => {
            return Err(ApiError::conflict(format!("user `{name}` already exists")))
        }
        Err(e) => return Err(e.into()),
    };
    tracing::info!(admin = %admin.name, user = %stored.name, bot = stored.bot, "account created");
    for d in &stored.destinations {
        super::confirm::send_confirmation(&state, &stored.name, d).await?;
    }
    Ok((StatusCode::CREATED, Json(AccountSummary::from(&stored))))
}

async fn set_enabled(
    state: &AppState,
    admin: &str,
    name: &str,
    enabled: bool,
) -> Result<Json<AccountSummary>, ApiError> {
    check_name(name)?;
    let prefs = change(state, name, |p| {
        p.enabled = enabled;
        Ok(())
    })
    .await?;
    tracing::info!(admin, user = name, enabled, "account state changed");
    Ok(Json(AccountSummary::from(&prefs)))
}

#[utoipa::path(post, path = "/api/v1/admin/users/{name}/disable", tag = "admin", security(("bearer" = [])),
    params(("name" = String, Path, description = "Account name")),
    responses((status = 200, body = AccountSummary), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn disable(
    State(state): State<AppState>,
    Admin(admin): Admin,
    P(name): P<String>,
) -> Result<Json<AccountSummary>, ApiError> {
    set_enabled(&state, &admin.name, &name, false).await
}

#[utoipa::path(post, path = "/api/v1/admin/users/{name}/enable", tag = "admin", security(("bearer" = [])),
    params(("name" = String, Path, description = "Account name")),
    responses((status = 200, body = AccountSummary), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn enable(
    State(state): State<AppState>,
    Admin(admin): Admin,
    P(name): P<String>,
) -> Result<Json<AccountSummary>, ApiError> {
    set_enabled(&state, &admin.name, &name, true).await
}

/// A bot account's preferences; 403 for a person's account.
async fn bot(state: &AppState, name: &str) -> Result<UserPrefs, ApiError> {
    check_name(name)?;
    let prefs = state
        .prefs
        .get(name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no user `{name}`")))?;
    if !prefs.bot {
        return Err(ApiError::forbidden(
            "only bot accounts' preferences are edited by admins; people edit their own",
        ));
    }
    Ok(prefs)
}

#[utoipa::path(get, path = "/api/v1/admin/users/{name}/prefs", tag = "admin", security(("bearer" = [])),
    params(("name" = String, Path, description = "A bot account's name")),
    responses((status = 200, body = PrefsDoc), (status = 401, body = ErrorBody),
        (status = 403, description = "Not an admin, or not a bot account", body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn get_prefs(
    State(state): State<AppState>,
    _admin: Admin,
    P(name): P<String>,
) -> Result<Json<UserPrefs>, ApiError> {
    Ok(Json(bot(&state, &name).await?))
}

#[utoipa::path(put, path = "/api/v1/admin/users/{name}/prefs", tag = "admin", security(("bearer" = [])),
    params(("name" = String, Path, description = "A bot account's name")),
    request_body = ImportDoc,
    responses((status = 200, description = "The new preferences; new addresses come in unconfirmed", body = PrefsDoc),
        (status = 401, body = ErrorBody),
        (status = 403, description = "Not an admin, or not a bot account", body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn put_prefs(
    State(state): State<AppState>,
    Admin(admin): Admin,
    P(name): P<String>,
    Body(doc): Body<ImportDoc>,
) -> Result<Json<UserPrefs>, ApiError> {
    bot(&state, &name).await?;
    let prefs = import_into(&state, &name, &doc).await?;
    tracing::info!(admin = %admin.name, user = %name, "bot preferences replaced");
    Ok(Json(prefs))
}

/// One of the default filters an auto-created account starts with: `packages` ("Events on
/// packages I maintain") or `about-me` ("Events referring to me").
#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum DefaultFilterDoc {
    Packages,
    AboutMe,
}

/// What the auto-created accounts of a group's members start with: the default filters
/// switched on (the others are off until the user turns them on). Empty: everything off.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupDefaultsBody {
    #[schema(value_type = Vec<DefaultFilterDoc>)]
    pub on: BTreeSet<DefaultFilter>,
}

/// The settings of every group that has some, by FAS group name.
pub type AccountDefaultsDoc = BTreeMap<String, GroupDefaultsBody>;

fn defaults_doc(defaults: AccountDefaults) -> AccountDefaultsDoc {
    defaults
        .groups
        .into_iter()
        .map(|(group, d)| (group, GroupDefaultsBody { on: d.on }))
        .collect()
}

#[utoipa::path(get, path = "/api/v1/admin/account-defaults", tag = "admin", security(("bearer" = [])),
    responses((status = 200, description = "What members of each group start with when their account is created for them (groups not listed: every default filter off)", body = BTreeMap<String, GroupDefaultsBody>),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn account_defaults(
    State(state): State<AppState>,
    _admin: Admin,
) -> Result<Json<AccountDefaultsDoc>, ApiError> {
    Ok(Json(defaults_doc(state.prefs.account_defaults().await?)))
}

#[utoipa::path(put, path = "/api/v1/admin/account-defaults/{group}", tag = "admin", security(("bearer" = [])),
    params(("group" = String, Path, description = "A FAS group")),
    request_body = GroupDefaultsBody,
    responses((status = 200, description = "Every group's settings after the change (an empty `on` removes the group's)", body = BTreeMap<String, GroupDefaultsBody>),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, description = "Not a group name", body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn set_account_defaults(
    State(state): State<AppState>,
    Admin(admin): Admin,
    P(group): P<String>,
    Body(body): Body<GroupDefaultsBody>,
) -> Result<Json<AccountDefaultsDoc>, ApiError> {
    // FAS group names follow the account names' rules.
    validate_account_name("group", &group)
        .map_err(|_| ApiError::not_found(format!("no group `{group}`")))?;
    let on: Vec<&str> = body.on.iter().map(|f| f.as_str()).collect();
    let after = state
        .prefs
        .set_group_defaults(&group, GroupDefaults { on: body.on })
        .await?;
    tracing::info!(admin = %admin.name, group, ?on, "account defaults of a group set");
    Ok(Json(defaults_doc(after)))
}
