//! The few client-server API calls the bot makes (Matrix spec v1.x, `/_matrix/client/v3`),
//! over reqwest with rustls. Every failure is classified once ([`MatrixError::class`]).

use std::time::Duration;

use fmn_aws::retry::ErrorClass;
use reqwest::{Method, StatusCode, Url};
use serde_json::{json, Value};

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum MatrixError {
    /// `M_LIMIT_EXCEEDED` (HTTP 429): try again after `retry_after` (when the server says).
    #[error("rate limited by the homeserver (retry after {retry_after:?}): {message}")]
    RateLimited {
        retry_after: Option<Duration>,
        message: String,
    },
    /// The access token is missing, unknown or revoked: nothing can be sent until an operator
    /// acts.
    #[error("the homeserver refused the bot's access token ({code}): {message}")]
    Unauthorized { code: String, message: String },
    /// Refused for good for this request (an unknown user, a forbidden room, a bad request).
    #[error("refused by the homeserver ({status} {code}): {message}")]
    Refused {
        status: u16,
        code: String,
        message: String,
    },
    /// The homeserver could not be reached or failed (5xx, timeout, connection).
    #[error("homeserver unavailable: {0}")]
    Unavailable(String),
}

impl MatrixError {
    pub fn class(&self) -> ErrorClass {
        match self {
            MatrixError::RateLimited { .. } | MatrixError::Unavailable(_) => ErrorClass::Retryable,
            MatrixError::Unauthorized { .. } => ErrorClass::ServiceWide,
            MatrixError::Refused { .. } => ErrorClass::Permanent,
        }
    }

    /// Matrix's error code, when the server gave one.
    pub fn code(&self) -> Option<&str> {
        match self {
            MatrixError::Unauthorized { code, .. } | MatrixError::Refused { code, .. } => {
                Some(code)
            }
            MatrixError::RateLimited { .. } => Some("M_LIMIT_EXCEEDED"),
            MatrixError::Unavailable(_) => None,
        }
    }
}

/// The error of an answer with `status` and body `body` (a Matrix error object, or not).
pub fn error_of(status: StatusCode, body: &Value, retry_after_header: Option<&str>) -> MatrixError {
    let code = body["errcode"].as_str().unwrap_or("").to_string();
    let message = body["error"]
        .as_str()
        .unwrap_or_else(|| status.canonical_reason().unwrap_or(""))
        .chars()
        .take(300)
        .collect::<String>();
    if code == "M_LIMIT_EXCEEDED" || status == StatusCode::TOO_MANY_REQUESTS {
        let retry_after = body["retry_after_ms"]
            .as_u64()
            .map(Duration::from_millis)
            .or_else(|| {
                retry_after_header
                    .and_then(|h| h.trim().parse::<u64>().ok())
                    .map(Duration::from_secs)
            });
        return MatrixError::RateLimited {
            retry_after,
            message,
        };
    }
    if status == StatusCode::UNAUTHORIZED || code == "M_UNKNOWN_TOKEN" || code == "M_MISSING_TOKEN"
    {
        return MatrixError::Unauthorized { code, message };
    }
    if status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT {
        return MatrixError::Unavailable(format!("{status} {code}: {message}"));
    }
    MatrixError::Refused {
        status: status.as_u16(),
        code,
        message,
    }
}

/// A logged-in client of one homeserver.
#[derive(Clone, Debug)]
pub struct MatrixClient {
    http: reqwest::Client,
    base: Url,
    token: String,
}

impl MatrixClient {
    pub fn new(homeserver: &str, token: &str, timeout: Duration) -> Result<Self, MatrixError> {
        let base = Url::parse(homeserver)
            .map_err(|e| MatrixError::Unavailable(format!("homeserver URL: {e}")))?;
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .user_agent(concat!("fmn-deliver-matrix/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| MatrixError::Unavailable(e.to_string()))?;
        Ok(Self {
            http,
            base,
            token: token.to_string(),
        })
    }

    /// `/_matrix/client/v3/<segments…>`, each segment percent-encoded (room and user ids
    /// carry `!`, `@`, `:`).
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        {
            let mut path = url.path_segments_mut().expect("an http(s) URL has a path");
            path.pop_if_empty().extend(["_matrix", "client", "v3"]);
            path.extend(segments);
        }
        url
    }

    async fn call(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
    ) -> Result<Value, MatrixError> {
        let mut request = self.http.request(method, url).bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| MatrixError::Unavailable(e.without_url().to_string()))?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let text = response
            .text()
            .await
            .map_err(|e| MatrixError::Unavailable(e.without_url().to_string()))?;
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status.is_success() {
            Ok(value)
        } else {
            Err(error_of(status, &value, retry_after.as_deref()))
        }
    }

    /// The bot's own user id (`GET /account/whoami`).
    pub async fn whoami(&self) -> Result<String, MatrixError> {
        let v = self
            .call(Method::GET, self.url(&["account", "whoami"]), None)
            .await?;
        v["user_id"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| MatrixError::Unavailable("whoami answered no user_id".into()))
    }

    /// A new direct-message room with `user`, invited (`POST /createRoom`, preset
    /// `trusted_private_chat`, `is_direct`): the room's id.
    pub async fn create_direct_room(&self, user: &str) -> Result<String, MatrixError> {
        let body = json!({
            "preset": "trusted_private_chat",
            "is_direct": true,
            "invite": [user],
            "name": "Fedora Notifications",
        });
        let v = self
            .call(Method::POST, self.url(&["createRoom"]), Some(&body))
            .await?;
        v["room_id"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| MatrixError::Unavailable("createRoom answered no room_id".into()))
    }

    /// Whether `user` exists: their profile is asked for (`GET /profile/{user}`); only a 404
    /// (`M_NOT_FOUND`) says no. A homeserver that does not show profiles (403) is given the
    /// benefit of the doubt.
    pub async fn user_exists(&self, user: &str) -> Result<bool, MatrixError> {
        match self
            .call(Method::GET, self.url(&["profile", user]), None)
            .await
        {
            Ok(_) => Ok(true),
            Err(MatrixError::Refused { status: 404, .. }) => Ok(false),
            Err(MatrixError::Refused { .. }) => Ok(true),
            Err(e) => Err(e),
        }
    }

    /// `user`'s membership of `room` (`join`, `invite`, `leave`, `ban`…), `None` when they
    /// have none.
    pub async fn membership(&self, room: &str, user: &str) -> Result<Option<String>, MatrixError> {
        let url = self.url(&["rooms", room, "state", "m.room.member", user]);
        match self.call(Method::GET, url, None).await {
            Ok(v) => Ok(v["membership"].as_str().map(str::to_string)),
            Err(MatrixError::Refused { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Sends `content` as an `m.room.message` to `room` with transaction id `txn_id`
    /// (`PUT /rooms/{room}/send/m.room.message/{txnId}`): a repeat of the same transaction is
    /// answered with the first event, not sent again. Returns the event id.
    pub async fn send_message(
        &self,
        room: &str,
        txn_id: &str,
        content: &Value,
    ) -> Result<String, MatrixError> {
        let url = self.url(&["rooms", room, "send", "m.room.message", txn_id]);
        let v = self.call(Method::PUT, url, Some(content)).await?;
        v["event_id"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| MatrixError::Unavailable("send answered no event_id".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_classified_once() {
        let limited = error_of(
            StatusCode::TOO_MANY_REQUESTS,
            &json!({"errcode": "M_LIMIT_EXCEEDED", "error": "Too many requests", "retry_after_ms": 1500}),
            None,
        );
        assert!(matches!(
            limited,
            MatrixError::RateLimited { retry_after: Some(d), .. } if d == Duration::from_millis(1500)
        ));
        assert_eq!(limited.class(), ErrorClass::Retryable);
        let header = error_of(StatusCode::TOO_MANY_REQUESTS, &Value::Null, Some("3"));
        assert!(matches!(
            header,
            MatrixError::RateLimited { retry_after: Some(d), .. } if d == Duration::from_secs(3)
        ));
        let token = error_of(
            StatusCode::UNAUTHORIZED,
            &json!({"errcode": "M_UNKNOWN_TOKEN", "error": "Invalid access token"}),
            None,
        );
        assert_eq!(token.class(), ErrorClass::ServiceWide);
        let forbidden = error_of(
            StatusCode::FORBIDDEN,
            &json!({"errcode": "M_FORBIDDEN", "error": "not in room"}),
            None,
        );
        assert_eq!(forbidden.class(), ErrorClass::Permanent);
        assert_eq!(forbidden.code(), Some("M_FORBIDDEN"));
        assert_eq!(
            error_of(StatusCode::BAD_GATEWAY, &Value::Null, None).class(),
            ErrorClass::Retryable
        );
    }

    #[test]
    fn ids_are_percent_encoded_in_paths() {
        let c = MatrixClient::new("http://127.0.0.1:8008/", "t", Duration::from_secs(1)).unwrap();
        let url = c.url(&[
            "rooms",
            "!abc:example.org",
            "send",
            "m.room.message",
            "job/1",
        ]);
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:8008/_matrix/client/v3/rooms/!abc:example.org/send/m.room.message/job%2F1"
        );
    }
}
