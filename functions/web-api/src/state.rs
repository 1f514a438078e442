//! What every request handler shares, and the extractors for who is calling.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use fmn_aws::auto_accounts::AccountCreator;
use fmn_aws::clock::Clock;
use fmn_aws::confirmations::Confirmations;
use fmn_aws::digest_store::DigestStore;
use fmn_aws::explain::OwnershipCache;
use fmn_aws::feed_tokens::FeedTokens;
use fmn_aws::mail::Mailer;
use fmn_aws::ownership_store::OwnershipStore;
use fmn_aws::prefs_store::PrefsStore;
use fmn_aws::recent::RecentMessages;
use fmn_aws::AwsClients;

use crate::auth::{self, Authenticator, Caller, DevIssuer};
use crate::error::ApiError;
use crate::settings::{Settings, SettingsError};

/// What every request handler shares.
#[derive(Clone, Debug)]
pub struct AppState(Arc<Inner>);

#[derive(Debug)]
pub struct Inner {
    pub settings: Settings,
    pub clients: AwsClients,
    pub prefs: PrefsStore,
    pub recent: RecentMessages,
    /// Each destination's last delivery (written by the deliver functions).
    pub records: fmn_aws::delivery_records::DeliveryRecords,
    pub ownership: OwnershipStore,
    /// Makes an account on first sign-in (FAS e-mail verified, filters per the admin's
    /// group settings).
    pub accounts: AccountCreator,
    pub confirmations: Confirmations,
    /// Pending digest items, purged with their destination.
    pub digests: DigestStore,
    /// Sends confirmation mail.
    pub mailer: Mailer,
    /// The ownership `explain` consults, reloaded when it changes.
    pub ownership_cache: OwnershipCache,
    pub auth: Authenticator,
    /// The secret tokens of the users' Atom feeds.
    pub feed_tokens: FeedTokens,
    /// Development mode's own issuer.
    pub dev: Option<DevIssuer>,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// The state for `settings` (in dev mode a signing key is generated here).
    pub fn new(settings: Settings, clients: AwsClients) -> Self {
        Self::with_clock(settings, clients, Clock::system())
    }

    /// The same, with confirmations telling time by `clock`.
    pub fn with_clock(settings: Settings, clients: AwsClients, clock: Clock) -> Self {
        let clients = clients.scoped(crate::FUNCTION);
        let dev = settings
            .dev_auth
            .then(|| DevIssuer::generate(settings.auth.issuer.clone(), "fmn-dev"));
        let auth = match &dev {
            Some(issuer) => Authenticator::fixed(settings.auth.clone(), issuer),
            None => Authenticator::oidc(settings.auth.clone()).with_clock(clock.clone()),
        };
        if settings.dev_auth {
            tracing::warn!(
                "web-api in development mode: POST /api/v1/dev/login hands out tokens for any user"
            );
        }
        Self(Arc::new(Inner {
            prefs: PrefsStore::from_clients(&clients),
            recent: RecentMessages::from_clients(&clients),
            // Only read here: the lease is the deliver functions' concern.
            records: fmn_aws::delivery_records::DeliveryRecords::from_clients(
                &clients,
                std::time::Duration::from_secs(300),
            ),
            ownership: OwnershipStore::from_clients(&clients),
            digests: DigestStore::from_clients(&clients),
            accounts: AccountCreator::from_clients(&clients),
            confirmations: Confirmations::from_clients(&clients)
                .with_clock(clock)
                .with_limits(settings.confirmations),
            mailer: Mailer::new(clients.sesv2.clone(), &settings.mail),
            ownership_cache: OwnershipCache::default(),
            feed_tokens: FeedTokens::from_clients(&clients),
            settings,
            clients,
            auth,
            dev,
        }))
    }

    /// Settings and clients from the environment. `dev_by_default`: what an unset
    /// `FMN_DEV_AUTH` means (the local runner: true; the Lambda: false).
    pub async fn from_env(dev_by_default: bool) -> Result<Self, SettingsError> {
        let settings = Settings::from_env(dev_by_default)?;
        Ok(Self::new(settings, AwsClients::from_env().await?))
    }
}

/// The caller, from the bearer token; 401 without a valid one.
impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ApiError::from(auth::AuthError::Missing))?;
        Ok(state.auth.verify(token).await?)
    }
}

/// An admin caller; 403 for anyone else.
#[derive(Clone, Debug)]
pub struct Admin(pub Caller);

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        if !caller.admin {
            return Err(ApiError::forbidden(format!(
                "only members of `{}` may do this",
                state.settings.auth.admin_group
            )));
        }
        Ok(Admin(caller))
    }
}
