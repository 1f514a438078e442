//! One GET-JSON helper for both services: timeouts, retries of what may succeed later, and
//! errors classified once.

use std::sync::Arc;
use std::time::Duration;

use fmn_aws::retry::{Classify, ErrorClass, RetryPolicy};
use fmn_aws::vars::{ConfigError, Vars};
use serde::de::DeserializeOwned;

use crate::kerberos::{KerberosError, KerberosSettings, Negotiator};

/// A call to FASJSON or Pagure that failed.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The thing asked for does not exist (HTTP 404): a user, group or project gone.
    #[error("{service}: {url} not found: {message}")]
    NotFound {
        service: &'static str,
        url: String,
        message: String,
    },
    /// Our credentials were refused (HTTP 401/403): nothing will succeed until someone acts.
    #[error("{service}: {url} refused us (HTTP {status}): {message}")]
    Refused {
        service: &'static str,
        url: String,
        status: u16,
        message: String,
    },
    /// Another HTTP error status (5xx and 429 may pass; other 4xx will not).
    #[error("{service}: {url} answered HTTP {status}: {message}")]
    Status {
        service: &'static str,
        url: String,
        status: u16,
        message: String,
    },
    /// No answer: connection refused or reset, timeout.
    #[error("{service}: {url} unreachable: {detail}")]
    Transport {
        service: &'static str,
        url: String,
        detail: String,
    },
    /// An answer that is not what the service documents.
    #[error("{service}: {url} answered something unexpected: {detail}")]
    Malformed {
        service: &'static str,
        url: String,
        detail: String,
    },
    /// No Kerberos credentials to present (KDC unreachable, wrong keytab...).
    #[error("{service}: {url}: {source}")]
    Kerberos {
        service: &'static str,
        url: String,
        source: KerberosError,
    },
}

impl Classify for SourceError {
    fn class(&self) -> ErrorClass {
        match self {
            Self::Transport { .. } => ErrorClass::Retryable,
            Self::Status { status, .. } if *status == 429 || *status >= 500 => {
                ErrorClass::Retryable
            }
            Self::Refused { .. } => ErrorClass::ServiceWide,
            Self::NotFound { .. } | Self::Status { .. } | Self::Malformed { .. } => {
                ErrorClass::Permanent
            }
            Self::Kerberos { source, .. } => source.class(),
        }
    }
}

impl SourceError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound { .. })
    }
}

/// Where the services are and how patiently to ask them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceSettings {
    /// `FMN_FASJSON_URL`: FASJSON's base URL (without `/v1`).
    pub fasjson_url: String,
    /// `FMN_PAGURE_URL`: dist-git's base URL.
    pub pagure_url: String,
    /// `FMN_SOURCE_TIMEOUT`: seconds per request.
    pub timeout: Duration,
    /// `FMN_SOURCE_CONCURRENCY`: requests in flight at most (per service).
    pub concurrency: usize,
    /// `FMN_FASJSON_PAGE_SIZE`: users or members per FASJSON page.
    pub page_size: u32,
    /// `FMN_FASJSON_PRINCIPAL` and the rest: FASJSON asked with `Authorization: Negotiate`.
    pub kerberos: Option<KerberosSettings>,
}

pub const FASJSON_URL_VAR: &str = "FMN_FASJSON_URL";
pub const PAGURE_URL_VAR: &str = "FMN_PAGURE_URL";
pub const TIMEOUT_VAR: &str = "FMN_SOURCE_TIMEOUT";
pub const CONCURRENCY_VAR: &str = "FMN_SOURCE_CONCURRENCY";
pub const PAGE_SIZE_VAR: &str = "FMN_FASJSON_PAGE_SIZE";

impl SourceSettings {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(&Vars::from_env())
    }

    pub fn from_vars(vars: &Vars<'_>) -> Result<Self, ConfigError> {
        let fasjson_url = vars
            .text_or(FASJSON_URL_VAR, "https://fasjson.fedoraproject.org")
            .trim_end_matches('/')
            .to_string();
        Ok(Self {
            kerberos: KerberosSettings::from_vars(vars, &fasjson_url)?,
            fasjson_url,
            pagure_url: vars
                .text_or(PAGURE_URL_VAR, "https://src.fedoraproject.org")
                .trim_end_matches('/')
                .to_string(),
            timeout: Duration::from_secs(vars.positive(TIMEOUT_VAR, 30u64)?),
            concurrency: vars.positive(CONCURRENCY_VAR, 8usize)?,
            page_size: vars.positive(PAGE_SIZE_VAR, 1000u32)?,
        })
    }

    /// Both services at one base URL (the stand-ins in tests).
    pub fn local(base: &str) -> Self {
        Self {
            fasjson_url: base.trim_end_matches('/').to_string(),
            pagure_url: base.trim_end_matches('/').to_string(),
            timeout: Duration::from_secs(30),
            concurrency: 8,
            page_size: 1000,
            kerberos: None,
        }
    }
}

/// An HTTP client for one service.
#[derive(Debug, Clone)]
pub(crate) struct JsonClient {
    pub service: &'static str,
    pub base: String,
    http: reqwest::Client,
    retry: RetryPolicy,
    negotiator: Option<Arc<Negotiator>>,
}

impl JsonClient {
    /// `kerberos`: authenticate every request with `Authorization: Negotiate`.
    pub fn new(
        service: &'static str,
        base: &str,
        timeout: Duration,
        kerberos: Option<&KerberosSettings>,
    ) -> Self {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(concat!("fmn/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("a client with rustls and a timeout builds");
        Self {
            service,
            base: base.to_string(),
            http,
            retry: RetryPolicy::attempts(4),
            negotiator: kerberos.map(|k| Arc::new(Negotiator::new(k.clone(), timeout))),
        }
    }

    /// GETs `path` (with `query`) and reads the JSON answer, retrying what may pass later.
    pub async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T, SourceError> {
        let url = format!("{}{}", self.base, path);
        let what = format!("{} GET {path}", self.service);
        self.retry.run(&what, |_| self.get_once(&url, query)).await
    }

    async fn get_once<T: DeserializeOwned>(
        &self,
        url: &str,
        query: &[(&str, String)],
    ) -> Result<T, SourceError> {
        let service = self.service;
        let full = if query.is_empty() {
            url.to_string()
        } else {
            let q: Vec<String> = query
                .iter()
                .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
                .collect();
            format!("{url}?{}", q.join("&"))
        };
        let shown = || full.clone();
        let mut request = self.http.get(&full).header("accept", "application/json");
        if let Some(negotiator) = &self.negotiator {
            let value =
                negotiator
                    .authorization()
                    .await
                    .map_err(|source| SourceError::Kerberos {
                        service,
                        url: shown(),
                        source,
                    })?;
            request = request.header("authorization", value);
        }
        let response = request.send().await.map_err(|e| SourceError::Transport {
            service,
            url: shown(),
            detail: fmn_aws::retry::error_chain(&e),
        })?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(|e| SourceError::Transport {
            service,
            url: shown(),
            detail: fmn_aws::retry::error_chain(&e),
        })?;
        if status != 200 {
            if status == 401 {
                if let Some(negotiator) = &self.negotiator {
                    // The service's key may have changed since the ticket was issued.
                    negotiator.forget_ticket().await;
                }
            }
            let message = error_message(&body);
            let url = shown();
            return Err(match status {
                404 => SourceError::NotFound {
                    service,
                    url,
                    message,
                },
                401 | 403 => SourceError::Refused {
                    service,
                    url,
                    status,
                    message,
                },
                _ => SourceError::Status {
                    service,
                    url,
                    status,
                    message,
                },
            });
        }
        serde_json::from_slice(&body).map_err(|e| SourceError::Malformed {
            service,
            url: shown(),
            detail: e.to_string(),
        })
    }
}

/// Percent-encodes a query component (everything but RFC 3986's unreserved characters).
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The reason an error answer gives: FASJSON's `message`, Pagure's `error` (and
/// `error_code`), else the start of the body.
fn error_message(body: &[u8]) -> String {
    if let Ok(serde_json::Value::Object(o)) = serde_json::from_slice(body) {
        let text = |k: &str| o.get(k).and_then(|v| v.as_str()).map(str::to_string);
        if let Some(m) = text("message") {
            return m;
        }
        if let Some(e) = text("error") {
            return match text("error_code") {
                Some(code) => format!("{e} ({code})"),
                None => e,
            };
        }
    }
    String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_classes() {
        let status = |status| SourceError::Status {
            service: "x",
            url: "u".into(),
            status,
            message: String::new(),
        };
        assert_eq!(status(503).class(), ErrorClass::Retryable);
        assert_eq!(status(429).class(), ErrorClass::Retryable);
        assert_eq!(status(400).class(), ErrorClass::Permanent);
        let refused = SourceError::Refused {
            service: "x",
            url: "u".into(),
            status: 401,
            message: String::new(),
        };
        assert_eq!(refused.class(), ErrorClass::ServiceWide);
    }

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(encode("a+b@example.com"), "a%2Bb%40example.com");
        assert_eq!(encode("nick_1-x.y~"), "nick_1-x.y~");
    }

    #[test]
    fn error_messages_of_both_services() {
        assert_eq!(
            error_message(br#"{"message": "User not found", "name": "bob"}"#),
            "User not found"
        );
        assert_eq!(
            error_message(br#"{"error": "Group not found", "error_code": "ENOGROUP"}"#),
            "Group not found (ENOGROUP)"
        );
        assert_eq!(error_message(b"Bad Gateway"), "Bad Gateway");
    }
}
