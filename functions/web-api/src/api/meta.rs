//! Login configuration, the rule catalogue, development login.

use axum::extract::State;
use axum::response::IntoResponse;
use axum::Json;
use fmn_core::prefs::validate_account_name;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::extract::Body;
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

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
    responses((status = 200, description = "The rule catalogue: every rule kind (family, description, arguments), then every event of the service catalogue (family `service-entry`: its `entry` id for a `catalogue` rule, service, title, description, topics, field tests, `param`)", body = Vec<Object>)))]
pub async fn rules() -> impl IntoResponse {
    Json(fmn_core::rules::full_catalogue())
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
