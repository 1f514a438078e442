//! Who is calling: OpenID Connect bearer tokens (RS256 JWTs) checked against the issuer's
//! keys, or, in development mode, tokens the web-api issues itself and checks the same way.
//!
//! Real issuers: the keys come from the JWKS named by `<issuer>/.well-known/openid-configuration`,
//! are cached, and are fetched again when a token names a key id not in the cache (a key
//! rotation). At most one fetch starts per [`REFETCH_INTERVAL`], failed or not (a failure is
//! remembered and answered from memory until then), and it runs outside the cache's lock:
//! tokens with known keys are checked while a slow issuer is being asked. Development mode: a 2048-bit RSA key made
//! at start; its public half is the only key, and `POST /api/v1/dev/login` signs tokens with it.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use fmn_aws::clock::Clock;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::Value;

/// Clock skew accepted on `exp` and `nbf`.
pub const LEEWAY_SECS: u64 = 60;
/// The least time between two JWKS fetches caused by unknown key ids.
pub const REFETCH_INTERVAL: Duration = Duration::from_secs(10);
/// How long development tokens last.
pub const DEV_TOKEN_SECS: u64 = 12 * 3600;

/// Why a token was refused (all but the last are the caller's fault: 401).
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("no bearer token (Authorization: Bearer <token>)")]
    Missing,
    #[error("the token is not a well-formed JWT: {0}")]
    Malformed(String),
    #[error("the token is signed with `{0}`; only RS256 is accepted")]
    Algorithm(String),
    #[error("the token's key `{0}` is not one of the issuer's")]
    UnknownKey(String),
    #[error("the token's signature is invalid")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token was issued by someone else")]
    WrongIssuer,
    #[error("the token is meant for another audience")]
    WrongAudience,
    #[error("the token was issued to another client (`azp`)")]
    WrongParty,
    #[error("the token has no usable `{0}` claim")]
    Claim(String),
    #[error("the issuer's keys cannot be fetched: {0}")]
    KeysUnavailable(String),
}

/// Settings of token checking.
#[derive(Clone, Debug)]
pub struct AuthSettings {
    /// `iss` of accepted tokens (`FMN_OIDC_ISSUER`).
    pub issuer: String,
    /// `aud` required when set (`FMN_OIDC_AUDIENCE`; the settings require it outside
    /// development mode); a token's `azp`, when present, must be it too.
    pub audience: Option<String>,
    /// The claim holding the account name (`FMN_OIDC_USERNAME_CLAIM`).
    pub username_claim: String,
    /// The claim holding the groups (`FMN_OIDC_GROUPS_CLAIM`).
    pub groups_claim: String,
    /// Members of this group are admins (`FMN_ADMIN_GROUP`).
    pub admin_group: String,
}

/// The authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub name: String,
    pub groups: Vec<String>,
    pub admin: bool,
}

#[derive(Default)]
struct JwksCache {
    keys: HashMap<String, DecodingKey>,
    /// When the last fetch started (epoch seconds), successful or not.
    attempted: Option<u64>,
    /// Why the last fetch failed, if it did.
    failure: Option<String>,
}

enum Keys {
    /// Development mode: our own key.
    Fixed(HashMap<String, DecodingKey>),
    /// A real issuer's JWKS, discovered and cached.
    Jwks {
        http: reqwest::Client,
        /// Held only to read or swap, never across a fetch.
        cache: RwLock<JwksCache>,
        /// Held by the one fetch in progress; others with unknown keys wait for its result.
        fetching: tokio::sync::Mutex<()>,
        clock: Clock,
    },
}

/// Checks tokens.
pub struct Authenticator {
    settings: AuthSettings,
    keys: Keys,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// Tokens of a real OpenID Connect issuer (keys fetched when first needed).
    pub fn oidc(settings: AuthSettings) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .expect("an HTTP client");
        Self {
            settings,
            keys: Keys::Jwks {
                http,
                cache: RwLock::default(),
                fetching: tokio::sync::Mutex::new(()),
                clock: Clock::system(),
            },
        }
    }

    /// The same, timing the refetch interval by `clock`.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        if let Keys::Jwks { clock: c, .. } = &mut self.keys {
            *c = clock;
        }
        self
    }

    /// Tokens signed by `issuer`'s key only (development mode, tests).
    pub fn fixed(settings: AuthSettings, issuer: &DevIssuer) -> Self {
        let mut keys = HashMap::new();
        keys.insert(issuer.kid.clone(), issuer.decoding_key());
        Self {
            settings,
            keys: Keys::Fixed(keys),
        }
    }

    pub fn settings(&self) -> &AuthSettings {
        &self.settings
    }

    /// The caller a token stands for.
    pub async fn verify(&self, token: &str) -> Result<Caller, AuthError> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| AuthError::Malformed(e.to_string()))?;
        if header.alg != Algorithm::RS256 {
            return Err(AuthError::Algorithm(format!("{:?}", header.alg)));
        }
        let key = self.key(header.kid.as_deref()).await?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        validation.set_issuer(&[self.settings.issuer.as_str()]);
        match &self.settings.audience {
            Some(aud) => {
                validation.set_audience(&[aud.as_str()]);
                // Without this a token with no `aud` at all would pass the audience check.
                validation.set_required_spec_claims(&["exp", "iss", "aud"]);
            }
            None => {
                validation.validate_aud = false;
                validation.set_required_spec_claims(&["exp", "iss"]);
            }
        }
        let data = jsonwebtoken::decode::<serde_json::Map<String, Value>>(token, &key, &validation)
            .map_err(|e| match e.kind() {
                ErrorKind::InvalidSignature => AuthError::BadSignature,
                ErrorKind::ExpiredSignature => AuthError::Expired,
                ErrorKind::ImmatureSignature => AuthError::NotYetValid,
                ErrorKind::InvalidIssuer => AuthError::WrongIssuer,
                ErrorKind::InvalidAudience => AuthError::WrongAudience,
                ErrorKind::MissingRequiredClaim(c) => AuthError::Claim(c.clone()),
                _ => AuthError::Malformed(e.to_string()),
            })?;
        self.check_party(&data.claims)?;
        self.caller(&data.claims)
    }

    /// OpenID Connect Core 3.1.3.7: a token for several audiences must name the client it was
    /// issued to in `azp`, and an `azp` present must be our client.
    fn check_party(&self, claims: &serde_json::Map<String, Value>) -> Result<(), AuthError> {
        let Some(audience) = &self.settings.audience else {
            return Ok(());
        };
        let several = claims
            .get("aud")
            .and_then(Value::as_array)
            .is_some_and(|a| a.len() > 1);
        match claims.get("azp") {
            None if several => Err(AuthError::WrongParty),
            None => Ok(()),
            Some(Value::String(azp)) if azp == audience => Ok(()),
            Some(_) => Err(AuthError::WrongParty),
        }
    }

    fn caller(&self, claims: &serde_json::Map<String, Value>) -> Result<Caller, AuthError> {
        let s = &self.settings;
        let name = claims
            .get(&s.username_claim)
            .and_then(Value::as_str)
            .filter(|n| fmn_core::prefs::validate_account_name("name", n).is_ok())
            .ok_or_else(|| AuthError::Claim(s.username_claim.clone()))?
            .to_string();
        let groups: Vec<String> = match claims.get(&s.groups_claim) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|g| g.as_str().map(str::to_string))
                .collect::<Option<_>>()
                .ok_or_else(|| AuthError::Claim(s.groups_claim.clone()))?,
            Some(_) => return Err(AuthError::Claim(s.groups_claim.clone())),
        };
        let admin = groups.contains(&s.admin_group);
        Ok(Caller {
            name,
            groups,
            admin,
        })
    }

    async fn key(&self, kid: Option<&str>) -> Result<DecodingKey, AuthError> {
        let unknown = || AuthError::UnknownKey(kid.unwrap_or("(none)").to_string());
        match &self.keys {
            Keys::Fixed(keys) => pick(keys, kid).ok_or_else(unknown),
            Keys::Jwks {
                http,
                cache,
                fetching,
                clock,
            } => {
                // Known, or fetched too recently: answered from the cache.
                let cached = |cache: &RwLock<JwksCache>| {
                    let c = cache.read().expect("not poisoned");
                    if let Some(k) = pick(&c.keys, kid) {
                        return Some(Ok(k));
                    }
                    let recent = c
                        .attempted
                        .is_some_and(|t| clock.now_secs() < t + REFETCH_INTERVAL.as_secs());
                    recent.then(|| {
                        Err(match &c.failure {
                            Some(why) => AuthError::KeysUnavailable(why.clone()),
                            None => unknown(),
                        })
                    })
                };
                if let Some(answer) = cached(cache) {
                    return answer;
                }
                let _fetch = fetching.lock().await;
                // A fetch that finished while we waited answers us too.
                if let Some(answer) = cached(cache) {
                    return answer;
                }
                // `attempted` is set only once the answer is known, so nobody is answered from a
                // fetch still in flight: they wait for it on `fetching`.
                let fetched = fetch_jwks(http, &self.settings.issuer).await;
                let mut c = cache.write().expect("not poisoned");
                c.attempted = Some(clock.now_secs());
                match fetched {
                    Ok(keys) => {
                        tracing::info!(
                            keys = keys.len(),
                            issuer = %self.settings.issuer,
                            "fetched the issuer's keys"
                        );
                        c.keys = keys;
                        c.failure = None;
                        pick(&c.keys, kid).ok_or_else(unknown)
                    }
                    Err(e) => {
                        // The keys we had stay: a failed refetch does not log everybody out.
                        tracing::warn!(issuer = %self.settings.issuer, error = %e, "fetching the issuer's keys failed");
                        c.failure = Some(match &e {
                            AuthError::KeysUnavailable(why) => why.clone(),
                            other => other.to_string(),
                        });
                        Err(e)
                    }
                }
            }
        }
    }
}

/// The key `kid` names; a token without `kid` is accepted when there is only one key.
fn pick(keys: &HashMap<String, DecodingKey>, kid: Option<&str>) -> Option<DecodingKey> {
    match kid {
        Some(kid) => keys.get(kid).cloned(),
        None if keys.len() == 1 => keys.values().next().cloned(),
        None => None,
    }
}

async fn fetch_jwks(
    http: &reqwest::Client,
    issuer: &str,
) -> Result<HashMap<String, DecodingKey>, AuthError> {
    let fail = |e: &dyn std::fmt::Display| AuthError::KeysUnavailable(e.to_string());
    let discovery = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let config: Value = http
        .get(&discovery)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| fail(&e))?
        .json()
        .await
        .map_err(|e| fail(&e))?;
    let jwks_uri = config["jwks_uri"]
        .as_str()
        .ok_or_else(|| fail(&format!("{discovery} has no jwks_uri")))?;
    let set: JwkSet = http
        .get(jwks_uri)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| fail(&e))?
        .json()
        .await
        .map_err(|e| fail(&e))?;
    Ok(set
        .keys
        .iter()
        .filter_map(|jwk| {
            let kid = jwk.common.key_id.clone().unwrap_or_default();
            DecodingKey::from_jwk(jwk).ok().map(|k| (kid, k))
        })
        .collect())
}

/// A signing key of our own: development mode's issuer, and the tests'.
pub struct DevIssuer {
    issuer: String,
    kid: String,
    encoding: EncodingKey,
    /// Base64url modulus and exponent of the public key.
    n: String,
    e: String,
}

impl std::fmt::Debug for DevIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevIssuer")
            .field("issuer", &self.issuer)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl DevIssuer {
    /// A fresh 2048-bit RSA key for `issuer` with key id `kid`.
    pub fn generate(issuer: impl Into<String>, kid: impl Into<String>) -> Self {
        use rsa::pkcs1::EncodeRsaPrivateKey;
        use rsa::traits::PublicKeyParts;
        let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048)
            .expect("generating an RSA key");
        let pem = key
            .to_pkcs1_pem(rsa::pkcs8::LineEnding::LF)
            .expect("encoding the RSA key");
        Self {
            issuer: issuer.into(),
            kid: kid.into(),
            encoding: EncodingKey::from_rsa_pem(pem.as_bytes()).expect("our own PEM parses"),
            n: URL_SAFE_NO_PAD.encode(key.n().to_bytes_be()),
            e: URL_SAFE_NO_PAD.encode(key.e().to_bytes_be()),
        }
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key for checking.
    pub fn decoding_key(&self) -> DecodingKey {
        DecodingKey::from_rsa_components(&self.n, &self.e).expect("our own key's components")
    }

    /// The public key as a JWK set (what an issuer serves at its `jwks_uri`).
    pub fn jwks(&self) -> Value {
        serde_json::json!({"keys": [{
            "kty": "RSA", "use": "sig", "alg": "RS256", "kid": self.kid, "n": self.n, "e": self.e
        }]})
    }

    /// Signs arbitrary claims (RS256, our `kid`).
    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).expect("signing with our own key")
    }

    /// A token for `name` in `groups`, valid [`DEV_TOKEN_SECS`], with the claims `settings`
    /// reads.
    pub fn token(&self, settings: &AuthSettings, name: &str, groups: &[String]) -> String {
        let now = fmn_aws::dynamo::now_secs();
        let mut claims = serde_json::Map::new();
        claims.insert("iss".into(), self.issuer.clone().into());
        claims.insert("sub".into(), name.into());
        claims.insert("iat".into(), now.into());
        claims.insert("nbf".into(), now.into());
        claims.insert("exp".into(), (now + DEV_TOKEN_SECS).into());
        if let Some(aud) = &settings.audience {
            claims.insert("aud".into(), aud.clone().into());
        }
        claims.insert(settings.username_claim.clone(), name.into());
        claims.insert(settings.groups_claim.clone(), groups.to_vec().into());
        self.sign(&Value::Object(claims))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::OnceLock;

    fn settings(issuer: &str) -> AuthSettings {
        AuthSettings {
            issuer: issuer.into(),
            audience: None,
            username_claim: "preferred_username".into(),
            groups_claim: "groups".into(),
            admin_group: "sysadmin-main".into(),
        }
    }

    /// One key for the whole test binary: generating RSA keys takes a moment.
    fn key() -> &'static DevIssuer {
        static KEY: OnceLock<DevIssuer> = OnceLock::new();
        KEY.get_or_init(|| DevIssuer::generate("https://id.example.org", "k1"))
    }

    fn claims(exp_offset: i64) -> Value {
        let now = fmn_aws::dynamo::now_secs() as i64;
        serde_json::json!({
            "iss": "https://id.example.org",
            "exp": now + exp_offset,
            "preferred_username": "alice",
            "groups": ["packager", "sysadmin-main"],
        })
    }

    fn fixed() -> Authenticator {
        Authenticator::fixed(settings("https://id.example.org"), key())
    }

    #[tokio::test]
    async fn a_valid_token_names_the_caller_and_groups() {
        let c = fixed().verify(&key().sign(&claims(600))).await.unwrap();
        assert_eq!(c.name, "alice");
        assert!(c.admin);
        assert_eq!(c.groups, ["packager", "sysadmin-main"]);
        let mut s = settings("https://id.example.org");
        s.admin_group = "other".into();
        let c = Authenticator::fixed(s, key())
            .verify(&key().token(&settings("https://id.example.org"), "bob", &[]))
            .await
            .unwrap();
        assert_eq!((c.name.as_str(), c.admin), ("bob", false));
    }

    #[tokio::test]
    async fn a_token_signed_by_another_key_is_refused() {
        let other = DevIssuer::generate("https://id.example.org", "k1");
        let e = fixed().verify(&other.sign(&claims(600))).await.unwrap_err();
        assert!(matches!(e, AuthError::BadSignature), "{e:?}");
        // A tampered payload fails the same way.
        let good = key().sign(&claims(600));
        let mut parts: Vec<String> = good.split('.').map(str::to_string).collect();
        let mut payload: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&parts[1]).unwrap()).unwrap();
        payload["preferred_username"] = "mallory".into();
        parts[1] = URL_SAFE_NO_PAD.encode(payload.to_string());
        let e = fixed().verify(&parts.join(".")).await.unwrap_err();
        assert!(matches!(e, AuthError::BadSignature), "{e:?}");
    }

    #[tokio::test]
    async fn expired_tokens_are_refused_beyond_the_leeway() {
        let e = fixed()
            .verify(&key().sign(&claims(-120)))
            .await
            .unwrap_err();
        assert!(matches!(e, AuthError::Expired), "{e:?}");
        // Within the 60 s leeway it still passes.
        fixed().verify(&key().sign(&claims(-30))).await.unwrap();
    }

    #[tokio::test]
    async fn the_wrong_issuer_is_refused() {
        let mut c = claims(600);
        c["iss"] = "https://evil.example.org".into();
        let e = fixed().verify(&key().sign(&c)).await.unwrap_err();
        assert!(matches!(e, AuthError::WrongIssuer), "{e:?}");
    }

    #[tokio::test]
    async fn missing_or_bad_claims_are_refused() {
        for (claim, value) in [
            ("preferred_username", Value::Null),
            ("preferred_username", "Not A Name".into()),
            ("groups", "sysadmin-main".into()),
            ("exp", Value::Null),
        ] {
            let mut c = claims(600);
            if value.is_null() {
                c.as_object_mut().unwrap().remove(claim);
            } else {
                c[claim] = value;
            }
            let e = fixed().verify(&key().sign(&c)).await.unwrap_err();
            assert!(matches!(e, AuthError::Claim(_)), "{claim}: {e:?}");
        }
        // No groups claim at all is fine: no groups.
        let mut c = claims(600);
        c.as_object_mut().unwrap().remove("groups");
        assert!(!fixed().verify(&key().sign(&c)).await.unwrap().admin);
    }

    #[tokio::test]
    async fn audience_is_checked_when_configured() {
        let mut s = settings("https://id.example.org");
        s.audience = Some("fmn".into());
        let auth = Authenticator::fixed(s, key());
        let mut c = claims(600);
        c["aud"] = "other".into();
        let e = auth.verify(&key().sign(&c)).await.unwrap_err();
        assert!(matches!(e, AuthError::WrongAudience), "{e:?}");
        c["aud"] = "fmn".into();
        auth.verify(&key().sign(&c)).await.unwrap();
        // No audience at all is not ours either.
        c.as_object_mut().unwrap().remove("aud");
        let e = auth.verify(&key().sign(&c)).await.unwrap_err();
        assert!(matches!(e, AuthError::Claim(ref c) if c == "aud"), "{e:?}");
    }

    #[tokio::test]
    async fn other_algorithms_and_garbage_are_refused() {
        let hs = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims(600),
            &EncodingKey::from_secret(b"secret"),
        )
        .unwrap();
        assert!(matches!(
            fixed().verify(&hs).await.unwrap_err(),
            AuthError::Algorithm(_)
        ));
        assert!(matches!(
            fixed().verify("not.a.jwt").await.unwrap_err(),
            AuthError::Malformed(_)
        ));
    }

    #[tokio::test]
    async fn jwks_is_discovered_cached_and_refetched_for_a_new_key() {
        let issuer = crate::testing::FakeIssuer::start().await;
        let base = issuer.base.clone();
        let first = DevIssuer::generate(base.as_str(), "k1");
        issuer.set_jwks(first.jwks());
        let clock = Clock::fixed(1_000_000);
        let auth = Authenticator::oidc(settings(&base)).with_clock(clock.clone());
        let sign = |k: &DevIssuer| {
            let mut c = claims(600);
            c["iss"] = base.clone().into();
            k.sign(&c)
        };
        auth.verify(&sign(&first)).await.unwrap();
        auth.verify(&sign(&first)).await.unwrap();
        assert_eq!(issuer.fetch_count(), 1, "keys are cached");

        // The issuer rotates to a new key: the unknown kid causes one more fetch.
        let second = DevIssuer::generate(base.as_str(), "k2");
        issuer.set_jwks(second.jwks());
        // ... once the refetch interval allows it.
        let e = auth.verify(&sign(&second)).await.unwrap_err();
        assert!(matches!(e, AuthError::UnknownKey(_)), "{e:?}");
        assert_eq!(issuer.fetch_count(), 1);
        clock.set(1_000_000 + REFETCH_INTERVAL.as_secs());
        auth.verify(&sign(&second)).await.unwrap();
        assert_eq!(issuer.fetch_count(), 2);
    }

    /// Tokens with `kid`s nobody knows (forged, or a flood) cost the issuer one fetch per
    /// interval, whether the fetches succeed or fail.
    #[tokio::test]
    async fn unknown_kids_cause_at_most_one_fetch_per_interval_even_when_fetches_fail() {
        let issuer = crate::testing::FakeIssuer::start().await;
        let base = issuer.base.clone();
        let known = DevIssuer::generate(base.as_str(), "k1");
        let clock = Clock::fixed(1_000_000);
        let auth =
            std::sync::Arc::new(Authenticator::oidc(settings(&base)).with_clock(clock.clone()));
        let token = |kid: &str| {
            let mut c = claims(600);
            c["iss"] = base.clone().into();
            let mut header = Header::new(Algorithm::RS256);
            header.kid = Some(kid.into());
            jsonwebtoken::encode(&header, &c, &known.encoding).unwrap()
        };
        // The issuer is broken: its JWKS is not a JWK set.
        issuer.set_jwks(serde_json::json!("not a key set"));
        let burst: Vec<_> = (0..20)
            .map(|i| {
                let (auth, t) = (auth.clone(), token(&format!("forged-{i}")));
                tokio::spawn(async move { auth.verify(&t).await })
            })
            .collect();
        for b in burst {
            let e = b.await.unwrap().unwrap_err();
            assert!(matches!(e, AuthError::KeysUnavailable(_)), "{e:?}");
        }
        assert_eq!(issuer.fetch_count(), 1, "one fetch, the failure remembered");
        clock.set(1_000_000 + REFETCH_INTERVAL.as_secs() - 1);
        auth.verify(&token("k1")).await.unwrap_err();
        assert_eq!(issuer.fetch_count(), 1);

        // Mended, and the interval over: one fetch, then the known key works and unknown
        // ones are refused from the cache.
        issuer.set_jwks(known.jwks());
        clock.set(1_000_000 + REFETCH_INTERVAL.as_secs());
        auth.verify(&token("k1")).await.unwrap();
        for i in 0..20 {
            let e = auth
                .verify(&token(&format!("other-{i}")))
                .await
                .unwrap_err();
            assert!(matches!(e, AuthError::UnknownKey(_)), "{e:?}");
        }
        assert_eq!(issuer.fetch_count(), 2);
    }

    #[tokio::test]
    async fn a_slow_fetch_does_not_hold_up_tokens_with_known_keys() {
        use futures::FutureExt;
        let issuer = crate::testing::FakeIssuer::start().await;
        let base = issuer.base.clone();
        let first = DevIssuer::generate(base.as_str(), "k1");
        let second = DevIssuer::generate(base.as_str(), "k2");
        issuer.set_jwks(first.jwks());
        let clock = Clock::fixed(1_000_000);
        let auth =
            std::sync::Arc::new(Authenticator::oidc(settings(&base)).with_clock(clock.clone()));
        let sign = |k: &DevIssuer| {
            let mut c = claims(600);
            c["iss"] = base.clone().into();
            k.sign(&c)
        };
        auth.verify(&sign(&first)).await.unwrap();
        clock.set(1_000_000 + REFETCH_INTERVAL.as_secs());

        // The issuer now answers its JWKS only when released.
        issuer.set_jwks(second.jwks());
        let release = issuer.hold_jwks();
        let slow = {
            let (auth, t) = (auth.clone(), sign(&second));
            tokio::spawn(async move { auth.verify(&t).await })
        };
        issuer.wait_for_fetches(2).await;
        // A known key is checked at once, without waiting for the fetch (one poll).
        let quick = auth.verify(&sign(&first)).now_or_never();
        assert!(
            matches!(quick, Some(Ok(ref c)) if c.name == "alice"),
            "{quick:?}"
        );
        release.notify_one();
        slow.await.unwrap().unwrap();
        assert_eq!(issuer.fetch_count(), 2);
    }

    #[tokio::test]
    async fn azp_must_be_our_client_and_is_required_with_several_audiences() {
        let mut s = settings("https://id.example.org");
        s.audience = Some("fmn".into());
        let auth = Authenticator::fixed(s, key());
        let verify = |f: &dyn Fn(&mut Value)| {
            let mut c = claims(600);
            c["aud"] = "fmn".into();
            f(&mut c);
            let t = key().sign(&c);
            let auth = &auth;
            async move { auth.verify(&t).await }
        };
        verify(&|_| {}).await.unwrap();
        verify(&|c| c["azp"] = "fmn".into()).await.unwrap();
        let e = verify(&|c| c["azp"] = "another-client".into())
            .await
            .unwrap_err();
        assert!(matches!(e, AuthError::WrongParty), "{e:?}");
        let e = verify(&|c| c["aud"] = serde_json::json!(["fmn", "other"]))
            .await
            .unwrap_err();
        assert!(matches!(e, AuthError::WrongParty), "{e:?}");
        verify(&|c| {
            c["aud"] = serde_json::json!(["fmn", "other"]);
            c["azp"] = "fmn".into();
        })
        .await
        .unwrap();
        // A token for another audience altogether.
        let e = verify(&|c| c["aud"] = "other".into()).await.unwrap_err();
        assert!(matches!(e, AuthError::WrongAudience), "{e:?}");
    }

    #[tokio::test]
    async fn an_unreachable_issuer_is_not_the_callers_fault() {
        let auth = Authenticator::oidc(settings("http://127.0.0.1:9"));
        let e = auth.verify(&key().sign(&claims(600))).await.unwrap_err();
        assert!(matches!(e, AuthError::KeysUnavailable(_)), "{e:?}");
    }
}
