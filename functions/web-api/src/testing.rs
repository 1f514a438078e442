//! For tests (the unit tests here and the integration tests): a stand-in OpenID Connect
//! issuer on a free local port serving its discovery document and a JWKS that the test sets
//! (and may rotate), counting JWKS fetches.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::routing::get;
use serde_json::Value;

/// A running stand-in issuer.
#[derive(Clone, Debug)]
pub struct FakeIssuer {
    /// Its URL (the `iss` of its tokens).
    pub base: String,
    /// The JWK set it serves (`{"keys": []}` at first).
    pub jwks: Arc<Mutex<Value>>,
    /// How many times its JWKS was fetched.
    pub fetches: Arc<AtomicUsize>,
    /// While set, JWKS requests wait for a notification before answering (a slow issuer).
    held: Arc<Mutex<Option<Arc<tokio::sync::Notify>>>>,
    fetched: Arc<tokio::sync::Notify>,
}

impl FakeIssuer {
    /// Serves until the runtime ends.
    pub async fn start() -> FakeIssuer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free port");
        let base = format!("http://{}", listener.local_addr().expect("bound"));
        let issuer = FakeIssuer {
            base: base.clone(),
            jwks: Arc::new(Mutex::new(serde_json::json!({ "keys": [] }))),
            fetches: Arc::default(),
            held: Arc::default(),
            fetched: Arc::default(),
        };
        let discovery = serde_json::json!({ "issuer": base, "jwks_uri": format!("{base}/jwks") });
        let (jwks, fetches) = (Arc::clone(&issuer.jwks), Arc::clone(&issuer.fetches));
        let (held, fetched) = (Arc::clone(&issuer.held), Arc::clone(&issuer.fetched));
        let app = axum::Router::new()
            .route(
                "/.well-known/openid-configuration",
                get(move || async move { axum::Json(discovery) }),
            )
            .route(
                "/jwks",
                get(move || {
                    fetches.fetch_add(1, Ordering::SeqCst);
                    fetched.notify_waiters();
                    let gate = held.lock().expect("not poisoned").clone();
                    let jwks = Arc::clone(&jwks);
                    async move {
                        if let Some(gate) = gate {
                            gate.notified().await;
                        }
                        let body = jwks.lock().expect("not poisoned").clone();
                        axum::Json(body)
                    }
                }),
            );
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        issuer
    }

    /// Serves `jwks` from now on.
    pub fn set_jwks(&self, jwks: Value) {
        *self.jwks.lock().expect("not poisoned") = jwks;
    }

    pub fn fetch_count(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }

    /// From now on JWKS requests wait until the returned handle is notified (once per
    /// request: `notify_one`).
    pub fn hold_jwks(&self) -> Arc<tokio::sync::Notify> {
        let gate = Arc::new(tokio::sync::Notify::new());
        *self.held.lock().expect("not poisoned") = Some(Arc::clone(&gate));
        gate
    }

    /// Returns once the JWKS has been asked for `n` times in all.
    pub async fn wait_for_fetches(&self, n: usize) {
        loop {
            let notified = self.fetched.notified();
            if self.fetch_count() >= n {
                return;
            }
            notified.await;
        }
    }
}
