//! The OpenAPI document served at `/api/v1/openapi.json`, generated from the handlers'
//! `utoipa::path` annotations and the schemas below (`crate::schema`).

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::api::{admin, confirm, me, meta};
use crate::error::{ErrorBody, ErrorDetail};
use crate::schema::{DeliveryDoc, DestinationDoc, FilterDoc, MeDoc, PrefsDoc, RuleDoc};

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
        meta::config, meta::rules, meta::dev_login, me::me,
        me::add_destination, me::patch_destination, me::delete_destination, me::resend,
        me::create_filter, me::get_filter, me::put_filter, me::delete_filter,
        me::export, me::import, me::explain, me::recent,
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
