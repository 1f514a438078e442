//! The OpenAPI document served at `/api/v1/openapi.json`, generated from the handlers'
//! `utoipa::path` annotations and the schemas below (which describe `fmn-core`'s documents
//! as the API serialises them).

#![allow(dead_code)] // schema-only types

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::api::{self, admin, confirm};
use crate::error::{ErrorBody, ErrorDetail};

/// How a destination receives: `immediate`, or a `digest` sent when the oldest item waited
/// `batch_delta` seconds (60..604800) or `batch_count` items (1..1000) are pending.
#[derive(ToSchema)]
#[serde(tag = "mode", rename_all = "lowercase")]
pub enum DeliveryDoc {
    Immediate,
    Digest {
        batch_delta: Option<u64>,
        batch_count: Option<u32>,
    },
}

/// Where notifications go.
#[derive(ToSchema)]
pub struct DestinationDoc {
    #[schema(example = "email-1")]
    id: String,
    kind: api::Kind,
    address: String,
    /// Only confirmed destinations receive anything.
    confirmed: bool,
    delivery: DeliveryDoc,
    irc_colour: bool,
    verbose: bool,
}

/// A rule: `kind` (see `/api/v1/rules`), its arguments, and `negated`.
#[derive(ToSchema)]
pub struct RuleDoc {
    #[schema(example = "package")]
    kind: String,
    negated: Option<bool>,
}

/// A named set of rules (all must hold) feeding destinations.
#[derive(ToSchema)]
pub struct FilterDoc {
    #[schema(example = "filter-3")]
    id: String,
    name: String,
    enabled: bool,
    oneshot: bool,
    destinations: Vec<String>,
    rules: Vec<RuleDoc>,
}

/// A user's whole preferences.
#[derive(ToSchema)]
pub struct PrefsDoc {
    name: String,
    enabled: bool,
    bot: bool,
    destinations: Vec<DestinationDoc>,
    filters: Vec<FilterDoc>,
    /// Bumped by every write.
    version: u64,
}

/// The caller's preferences and whether the caller is an admin.
#[derive(ToSchema)]
pub struct MeDoc {
    #[serde(flatten)]
    prefs: PrefsDoc,
    admin: bool,
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "An OpenID Connect RS256 token of FMN_OIDC_ISSUER (or, in development mode, from POST /api/v1/dev/login)",
                    ))
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "fmn web-api", version = "1", description = "Fedora Notifications: preferences, confirmations, administration. Errors are always `{\"error\": {\"code\", \"message\", \"field\"}}`."),
    paths(
        api::config, api::rules, api::dev_login, api::me,
        api::add_destination, api::patch_destination, api::delete_destination, api::resend,
        api::create_filter, api::get_filter, api::put_filter, api::delete_filter,
        api::export, api::import, api::explain, api::recent,
        confirm::show, confirm::answer, confirm::unsubscribe,
        admin::list, admin::create, admin::disable, admin::enable, admin::get_prefs, admin::put_prefs,
    ),
    components(schemas(ErrorBody, ErrorDetail, PrefsDoc, MeDoc, DestinationDoc, FilterDoc, RuleDoc, DeliveryDoc)),
    modifiers(&BearerAuth),
    tags(
        (name = "meta", description = "Login configuration, rule catalogue"),
        (name = "me", description = "The caller's own preferences"),
        (name = "confirmation", description = "Confirming destinations and unsubscribing (no login)"),
        (name = "admin", description = "Accounts and bot accounts (members of FMN_ADMIN_GROUP)"),
    )
)]
pub struct ApiDoc;

/// `GET /api/v1/openapi.json`.
pub async fn serve() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
