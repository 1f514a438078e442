//! The one error shape of the API: `{"error": {"code", "message", "field"}}`.

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use fmn_aws::dynamo::DynamoError;
use fmn_aws::prefs_store::PrefsStoreError;
use fmn_core::prefs::PrefsError;
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::AuthError;

/// An error answer: the status and the body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
}

/// The body of every 4xx and 5xx answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// `unauthenticated`, `forbidden`, `not_found`, `invalid`, `conflict`, `gone`, `too_many`
    /// or `internal`.
    #[schema(example = "invalid")]
    pub code: String,
    /// For people.
    pub message: String,
    /// The JSON path of the offending input (`filters[0].rules[1]`), when one is at fault.
    pub field: Option<String>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
        }
    }

    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthenticated", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }

    pub fn gone(message: impl Into<String>) -> Self {
        Self::new(StatusCode::GONE, "gone", message)
    }

    /// Bad input in `field`.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        let mut e = Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message);
        e.field = Some(field.into());
        e
    }

    /// A limit reached (too many filters, destinations, rules).
    pub fn too_many(field: impl Into<String>, message: impl Into<String>) -> Self {
        let mut e = Self::new(StatusCode::UNPROCESSABLE_ENTITY, "too_many", message);
        e.field = Some(field.into());
        e
    }

    /// A failure of ours: logged in full, the caller only sees an id to quote.
    pub fn internal(error: &dyn std::fmt::Display) -> Self {
        let id = uuid::Uuid::new_v4().simple().to_string();
        tracing::error!(request_error = %id, error = %error, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("internal error (reference {id})"),
        )
    }

    /// The same error with its field seen from a sub-document: `filters[3].name` becomes
    /// `name` when `prefix` is `filters[3]`.
    pub fn rebase(mut self, prefix: &str) -> Self {
        if let Some(f) = &self.field {
            if let Some(rest) = f.strip_prefix(prefix) {
                let rest = rest.trim_start_matches('.');
                self.field = Some(if rest.is_empty() {
                    f.clone()
                } else {
                    rest.to_string()
                });
            }
        }
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message,
                field: self.field,
            },
        };
        (self.status, Json(body)).into_response()
    }
}

impl From<PrefsError> for ApiError {
    fn from(e: PrefsError) -> Self {
        let message = e.to_string();
        match &e {
            PrefsError::TooMany { field, .. } => ApiError::too_many(field.clone(), message),
            PrefsError::DuplicateAddress { .. } => ApiError::conflict(message),
            PrefsError::NoDestination(_) | PrefsError::NoFilter(_) => ApiError::not_found(message),
            PrefsError::Invalid { .. } | PrefsError::Rule { .. } | PrefsError::IrcDigest { .. } => {
                ApiError::invalid(e.field(), message)
            }
        }
    }
}

impl From<PrefsStoreError> for ApiError {
    fn from(e: PrefsStoreError) -> Self {
        match e {
            PrefsStoreError::Invalid(p) => p.into(),
            PrefsStoreError::Exists(name) => {
                ApiError::conflict(format!("user `{name}` already exists"))
            }
            PrefsStoreError::NotFound(name) => ApiError::not_found(format!("no user `{name}`")),
            PrefsStoreError::Conflict(_) => ApiError::conflict(
                "the preferences were changed concurrently; reload and try again",
            ),
            PrefsStoreError::TooLarge {
                bytes, limit_bytes, ..
            } => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!(
                    "the preferences would take {bytes} bytes, over the {limit_bytes}-byte limit \
                     of a stored item: remove filters or rules"
                ),
            ),
            other => ApiError::internal(&other),
        }
    }
}

impl From<fmn_aws::confirmations::ConfirmError> for ApiError {
    fn from(e: fmn_aws::confirmations::ConfirmError) -> Self {
        match e {
            fmn_aws::confirmations::ConfirmError::TooMany(_) => {
                let mut err =
                    ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too_many", e.to_string());
                err.field = None;
                err
            }
            fmn_aws::confirmations::ConfirmError::Dynamo(d) => d.into(),
        }
    }
}

impl From<DynamoError> for ApiError {
    fn from(e: DynamoError) -> Self {
        ApiError::internal(&e)
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::KeysUnavailable(_) => ApiError::internal(&e),
            other => ApiError::unauthenticated(other.to_string()),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        let text = rejection.body_text();
        match rejection {
            JsonRejection::JsonDataError(_) => {
                // "Failed to deserialize the JSON body into the target type: rules[1]: unknown
                // variant ..." — the path, when serde gave one, is the field.
                let detail = text
                    .split_once("target type: ")
                    .map(|(_, d)| d)
                    .unwrap_or(&text);
                let field = detail
                    .split_once(": ")
                    .map(|(path, _)| path)
                    .filter(|p| {
                        !p.contains(' ')
                            && p.chars()
                                .all(|c| c.is_ascii_alphanumeric() || "._[]-".contains(c))
                    })
                    .unwrap_or("body");
                ApiError::invalid(field, detail.to_string())
            }
            JsonRejection::MissingJsonContentType(_) => {
                let mut e = ApiError::invalid("body", text);
                e.status = StatusCode::UNSUPPORTED_MEDIA_TYPE;
                e
            }
            _ => {
                let mut e = ApiError::invalid("body", text);
                e.status = StatusCode::BAD_REQUEST;
                e
            }
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        let mut e = ApiError::invalid("path", rejection.body_text());
        e.status = StatusCode::BAD_REQUEST;
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preferences_over_the_item_limit_are_413_naming_it() {
        let e = ApiError::from(PrefsStoreError::TooLarge {
            user: "alice".into(),
            bytes: 500_000,
            limit_bytes: 409_600,
        });
        assert_eq!(e.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(e.code, "too_large");
        assert!(e.message.contains("409600-byte limit"), "{}", e.message);
    }

    #[test]
    fn limits_are_too_many_and_fields_rebase() {
        let e: ApiError = PrefsError::TooMany {
            field: "filters".into(),
            limit: 50,
        }
        .into();
        assert_eq!((e.status.as_u16(), e.code), (422, "too_many"));
        assert_eq!(e.message, "filters: at most 50 filters");
        let e: ApiError = PrefsError::Invalid {
            field: "filters[3].name".into(),
            reason: "must not be empty".into(),
        }
        .into();
        assert_eq!(e.code, "invalid");
        assert_eq!(e.rebase("filters[3]").field.as_deref(), Some("name"));
    }
}
