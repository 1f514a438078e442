//! The web-api on a random local port, on a test's own resources, in development mode (its
//! own issuer), with a small HTTP client for the tests.

use fmn_web_api::settings::Settings;
use fmn_web_api::AppState;
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::TestEnv;

/// A running web-api.
pub struct WebApi {
    pub base: String,
    pub state: AppState,
    pub http: reqwest::Client,
}

/// An answer: status, headers and body (JSON, or `Null` when empty or not JSON).
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Answer {
    /// The error code of an error answer.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    /// The field of an error answer.
    pub fn field(&self) -> &str {
        self.body["error"]["field"].as_str().unwrap_or("")
    }
}

/// The settings the tests use: development mode, everything else the local defaults.
pub fn dev_settings() -> Settings {
    Settings::from_lookup(
        |_| None,
        true,
        fmn_aws::mail::MailSettings::from_env().unwrap(),
    )
    .expect("development settings")
}

impl WebApi {
    /// Serves the router for `env` on 127.0.0.1 (a free port) until the test ends.
    pub async fn start(env: &TestEnv) -> WebApi {
        Self::start_with(env, dev_settings()).await
    }

    /// Serves the router for `env` with `settings`.
    pub async fn start_with(env: &TestEnv, settings: Settings) -> WebApi {
        Self::start_with_clock(env, settings, fmn_aws::clock::Clock::system()).await
    }

    /// Serves the router for `env` with `settings`, confirmations telling time by `clock`.
    pub async fn start_with_clock(
        env: &TestEnv,
        settings: Settings,
        clock: fmn_aws::clock::Clock,
    ) -> WebApi {
        fmn_aws::ses::ensure_email_identity(
            &env.clients.sesv2,
            &settings.mail.context.from_address,
        )
        .await
        .expect("the sender identity");
        let state = AppState::with_clock(settings, env.clients.clone(), clock);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let router = fmn_web_api::router(state.clone());
        tokio::spawn(async move { axum_serve(listener, router).await });
        WebApi {
            base,
            state,
            http: reqwest::Client::new(),
        }
    }

    /// A development token for `name` (admin when `admin`).
    pub fn token(&self, name: &str, admin: bool) -> String {
        let groups = if admin {
            vec![self.state.settings.auth.admin_group.clone()]
        } else {
            vec!["packager".to_string()]
        };
        self.state.dev.as_ref().expect("development mode").token(
            &self.state.settings.auth,
            name,
            &groups,
        )
    }

    /// `method` on `path` (under the base URL) with an optional bearer token and JSON body.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Answer {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.expect("the web-api answers");
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap_or_default();
        Answer {
            status,
            headers,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
        }
    }

    /// Adds a destination of `kind` (`email`, `irc`) at `address` for `token`'s caller.
    pub async fn add_destination(&self, token: &str, kind: &str, address: &str) -> Answer {
        let body = serde_json::json!({ "kind": kind, "address": address });
        self.call(
            Method::POST,
            "/api/v1/me/destinations",
            Some(token),
            Some(&body),
        )
        .await
    }

    /// Asks for a fresh confirmation of `token`'s caller's destination `id`.
    pub async fn resend(&self, token: &str, id: &str) -> Answer {
        let path = format!("/api/v1/me/destinations/{id}/resend");
        self.call(Method::POST, &path, Some(token), None).await
    }

    /// `method` on `path` with `token` (if any) and the JSON `body`.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Value,
    ) -> Answer {
        self.call(method, path, token, Some(&body)).await
    }

    /// `GET path` with `token`.
    pub async fn get(&self, path: &str, token: &str) -> Answer {
        self.call(Method::GET, path, Some(token), None).await
    }

    /// What the confirmation link with `token` is about (`GET /api/v1/confirm/{token}`).
    pub async fn confirmation(&self, token: &str) -> Answer {
        let path = format!("/api/v1/confirm/{token}");
        self.call(Method::GET, &path, None, None).await
    }

    /// Accepts or refuses the confirmation link with `token`.
    pub async fn answer_confirmation(&self, token: &str, accept: bool) -> Answer {
        let path = format!("/api/v1/confirm/{token}");
        let body = serde_json::json!({ "accept": accept });
        self.call(Method::POST, &path, None, Some(&body)).await
    }

    /// Whether `token`'s caller's first destination is confirmed.
    pub async fn first_destination_confirmed(&self, token: &str) -> Value {
        let me = self
            .call(Method::GET, "/api/v1/me", Some(token), None)
            .await;
        me.body["destinations"][0]["confirmed"].clone()
    }
}

/// A stand-in OpenID Connect issuer on a free port serving one fresh key (returned to sign
/// tokens with).
pub async fn fake_issuer() -> (String, fmn_web_api::auth::DevIssuer) {
    let issuer = fmn_web_api::testing::FakeIssuer::start().await;
    let key = fmn_web_api::auth::DevIssuer::generate(issuer.base.clone(), "issuer-key-1");
    issuer.set_jwks(key.jwks());
    (issuer.base, key)
}

async fn axum_serve(listener: tokio::net::TcpListener, router: axum::Router) {
    let _ = axum::serve(listener, router).await;
}
