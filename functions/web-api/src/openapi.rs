//! The OpenAPI document served at `/api/v1/openapi.json`, generated from the handlers'
//! `utoipa::path` annotations and the schemas below (`crate::schema`).

use axum::Json;
use serde_json::Value;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::api::{admin, confirm, feed, me, meta, preview};
use crate::error::{ErrorBody, ErrorDetail};
use crate::schema::{
    DeliveryDoc, DestinationDoc, EmailDoc, FilterDoc, FilterNameDoc, IdDoc, ImmediateDoc,
    LocalTimeDoc, MatrixIdDoc, MeDoc, NewDestinationDoc, NewMatrixIdDoc, NickDoc, PrefsDoc,
    QuietHoursDoc, RuleDoc, ScheduleDoc, SuggestedAddressesDoc, TimeZoneDoc,
};

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
        meta::config, meta::rules, meta::dev_login, me::me, me::patch_me,
        me::add_destination, me::patch_destination, me::delete_destination, me::resend,
        me::create_filter, me::get_filter, me::put_filter, me::delete_filter,
        me::export, me::import, me::reset_filters, me::explain, me::recent, preview::preview, preview::deliveries,
        confirm::show, confirm::answer, confirm::unsubscribe,
        admin::list, admin::create, admin::disable, admin::enable, admin::get_prefs, admin::put_prefs,
        admin::account_defaults, admin::set_account_defaults,
        feed::rotate_token, feed::latest, feed::atom_feed,
    ),
    components(schemas(ErrorBody, ErrorDetail, PrefsDoc, MeDoc, SuggestedAddressesDoc, DestinationDoc, NewDestinationDoc, FilterDoc, RuleDoc, DeliveryDoc,
        EmailDoc, NickDoc, MatrixIdDoc, NewMatrixIdDoc, IdDoc, FilterNameDoc, ImmediateDoc, LocalTimeDoc, TimeZoneDoc, QuietHoursDoc, ScheduleDoc,
        feed::FeedTokenDoc, feed::LatestDoc, preview::PreviewBody, preview::PreviewDoc, preview::PreviewMatchDoc, preview::LastDeliveryDoc,
        admin::DefaultFilterDoc, admin::GroupDefaultsBody)),
    modifiers(&BearerAuth),
    tags(
        (name = "meta", description = "Login configuration, rule catalogue"),
        (name = "me", description = "The caller's own preferences"),
        (name = "confirmation", description = "Confirming destinations and unsubscribing (no login)"),
        (name = "admin", description = "Accounts and bot accounts (members of FMN_ADMIN_GROUP)"),
        (name = "feed", description = "A user's Atom feed at its secret URL (no login)"),
    )
)]
pub struct ApiDoc;

/// The document as served. utoipa 5.5 serialises a response link's fields in snake case
/// (`operation_id`, `operation_ref`, `request_body`), which OpenAPI readers such as
/// schemathesis do not know; they are renamed here.
pub fn document() -> Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).expect("the OpenAPI document serialises");
    let links = doc["paths"]
        .as_object_mut()
        .into_iter()
        .flat_map(|paths| paths.values_mut())
        .filter_map(Value::as_object_mut)
        .flat_map(|operations| operations.values_mut())
        .filter_map(|operation| operation.get_mut("responses")?.as_object_mut())
        .flat_map(|responses| responses.values_mut())
        .filter_map(|response| response.get_mut("links")?.as_object_mut())
        .flat_map(|links| links.values_mut())
        .filter_map(Value::as_object_mut);
    for link in links {
        for (from, to) in [
            ("operation_id", "operationId"),
            ("operation_ref", "operationRef"),
            ("request_body", "requestBody"),
        ] {
            if let Some(v) = link.remove(from) {
                link.insert(to.into(), v);
            }
        }
    }
    doc
}

/// `GET /api/v1/openapi.json`.
pub async fn serve() -> Json<Value> {
    Json(document())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every link names an operation of the document by `operationId` and only path
    /// parameters that operation has: a dangling link is silently never followed.
    #[test]
    fn links_resolve() {
        let doc = document();
        let mut operations = std::collections::HashMap::new();
        for (path, ops) in doc["paths"].as_object().unwrap() {
            for op in ops.as_object().unwrap().values() {
                operations.insert(op["operationId"].as_str().unwrap().to_string(), (path, op));
            }
        }
        let mut checked = 0;
        for (_, op) in operations.values() {
            for response in op["responses"].as_object().unwrap().values() {
                let Some(links) = response.get("links") else {
                    continue;
                };
                for (name, link) in links.as_object().unwrap() {
                    assert!(link.get("operation_id").is_none(), "{name}: {link}");
                    let target = link["operationId"].as_str().expect("operationId");
                    let (path, _) = operations
                        .get(target)
                        .unwrap_or_else(|| panic!("{name}: no operation `{target}`"));
                    for (param, value) in link["parameters"].as_object().unwrap() {
                        assert!(
                            path.contains(&format!("{{{param}}}")),
                            "{name}: {path} has no `{param}`"
                        );
                        assert!(value.as_str().unwrap().starts_with("$response.body#/"));
                    }
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, 10, "the create operations' links");
    }
}
