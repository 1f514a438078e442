//! The web-api's settings, from `FMN_` variables; every one has a default that works locally.

use fmn_aws::confirmations::Limits;
use fmn_aws::mail::MailSettings;
use fmn_aws::{ConfigError, Vars};

use crate::auth::AuthSettings;

/// `FMN_OIDC_ISSUER` default: Fedora's account system.
pub const DEFAULT_ISSUER: &str = "https://id.fedoraproject.org/openidc";
/// `FMN_OIDC_CLIENT_ID` default.
pub const DEFAULT_CLIENT_ID: &str = "fmn";
/// `FMN_ADMIN_GROUP` default.
pub const DEFAULT_ADMIN_GROUP: &str = "sysadmin-main";

/// Why the web-api refuses to start.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("FMN_DEV_AUTH=true inside Lambda (AWS_LAMBDA_FUNCTION_NAME is set): development login is for local runs only")]
    DevAuthInLambda,
    /// Without an audience any token the issuer signed for any of its clients would do.
    #[error("FMN_OIDC_AUDIENCE is not set: outside development mode the web-api only accepts tokens issued for its own client (set it to the OIDC client id)")]
    NoAudience,
    #[error(transparent)]
    Invalid(#[from] ConfigError),
}

/// Everything the web-api reads from the environment.
#[derive(Clone, Debug)]
pub struct Settings {
    /// `FMN_DEV_AUTH`: the web-api issues its own tokens (`POST /api/v1/dev/login`).
    pub dev_auth: bool,
    pub auth: AuthSettings,
    /// `FMN_OIDC_CLIENT_ID`: the page's public client (authorization code + PKCE).
    pub client_id: String,
    /// Sender, public URL (links), unsubscribe secret, SES attempts.
    pub mail: MailSettings,
    /// `FMN_CONFIRM_PER_USER_HOUR`, `FMN_CONFIRM_PER_ADDRESS_DAY`, `FMN_CONFIRM_GLOBAL_HOUR`.
    pub confirmations: Limits,
}

impl Settings {
    /// From the environment. `dev_by_default` is what an unset `FMN_DEV_AUTH` means: true for
    /// the local runner, false for the Lambda.
    pub fn from_env(dev_by_default: bool) -> Result<Self, SettingsError> {
        let mail = MailSettings::from_env()?;
        Self::from_lookup(|k| std::env::var(k).ok(), dev_by_default, mail)
    }

    /// From `lookup` (the environment, or a test's map), with these mail settings.
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
        dev_by_default: bool,
        mail: MailSettings,
    ) -> Result<Self, SettingsError> {
        let vars = Vars::from_lookup(lookup);
        let dev_auth = vars.flag("FMN_DEV_AUTH", dev_by_default)?;
        if dev_auth && vars.is_set("AWS_LAMBDA_FUNCTION_NAME") {
            return Err(SettingsError::DevAuthInLambda);
        }
        let issuer = if dev_auth {
            format!("{}/dev", mail.context.public_url.trim_end_matches('/'))
        } else {
            vars.text_or("FMN_OIDC_ISSUER", DEFAULT_ISSUER)
        };
        let audience = vars.text("FMN_OIDC_AUDIENCE");
        if !dev_auth && audience.is_none() {
            return Err(SettingsError::NoAudience);
        }
        Ok(Self {
            dev_auth,
            auth: AuthSettings {
                issuer,
                audience,
                username_claim: vars.text_or("FMN_OIDC_USERNAME_CLAIM", "preferred_username"),
                groups_claim: vars.text_or("FMN_OIDC_GROUPS_CLAIM", "groups"),
                admin_group: vars.text_or("FMN_ADMIN_GROUP", DEFAULT_ADMIN_GROUP),
            },
            client_id: vars.text_or("FMN_OIDC_CLIENT_ID", DEFAULT_CLIENT_ID),
            confirmations: {
                let d = Limits::default();
                Limits {
                    per_user_hour: vars.positive("FMN_CONFIRM_PER_USER_HOUR", d.per_user_hour)?,
                    per_address_day: vars
                        .positive("FMN_CONFIRM_PER_ADDRESS_DAY", d.per_address_day)?,
                    global_hour: vars.positive("FMN_CONFIRM_GLOBAL_HOUR", d.global_hour)?,
                }
            },
            mail,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(vars: &[(&str, &str)], dev_by_default: bool) -> Result<Settings, SettingsError> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(
            |k| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()),
            dev_by_default,
            MailSettings::from_env().unwrap(),
        )
    }

    #[test]
    fn dev_mode_is_refused_inside_lambda() {
        let lambda = ("AWS_LAMBDA_FUNCTION_NAME", "fmn-web-api");
        assert!(matches!(
            with(&[("FMN_DEV_AUTH", "true"), lambda], false),
            Err(SettingsError::DevAuthInLambda)
        ));
        // The local runner's default does not leak into Lambda either.
        assert!(matches!(
            with(&[lambda], true),
            Err(SettingsError::DevAuthInLambda)
        ));
        assert!(
            !with(&[lambda, ("FMN_OIDC_AUDIENCE", "fmn")], false)
                .unwrap()
                .dev_auth
        );
    }

    #[test]
    fn outside_dev_mode_the_audience_is_required() {
        let lambda = ("AWS_LAMBDA_FUNCTION_NAME", "fmn-web-api");
        assert!(matches!(
            with(&[lambda], false),
            Err(SettingsError::NoAudience)
        ));
        // A blank one is no audience either.
        assert!(matches!(
            with(&[lambda, ("FMN_OIDC_AUDIENCE", " ")], false),
            Err(SettingsError::NoAudience)
        ));
        assert!(matches!(
            with(&[("FMN_DEV_AUTH", "false")], true),
            Err(SettingsError::NoAudience)
        ));
        let s = with(&[lambda, ("FMN_OIDC_AUDIENCE", "fmn")], false).unwrap();
        assert_eq!(s.auth.audience.as_deref(), Some("fmn"));
        // Development mode issues its own tokens: no audience needed.
        assert!(with(&[], true).unwrap().auth.audience.is_none());
    }

    #[test]
    fn defaults_and_overrides() {
        let s = with(&[("FMN_OIDC_AUDIENCE", "fmn")], false).unwrap();
        assert_eq!(s.auth.issuer, DEFAULT_ISSUER);
        assert_eq!(s.auth.username_claim, "preferred_username");
        let s = with(
            &[
                ("FMN_OIDC_ISSUER", "https://id.example.org"),
                ("FMN_OIDC_GROUPS_CLAIM", "roles"),
                ("FMN_ADMIN_GROUP", "admins"),
                ("FMN_OIDC_AUDIENCE", "fmn"),
            ],
            false,
        )
        .unwrap();
        assert_eq!(
            (
                s.auth.issuer.as_str(),
                s.auth.groups_claim.as_str(),
                s.auth.admin_group.as_str()
            ),
            ("https://id.example.org", "roles", "admins")
        );
        assert!(with(&[], true).unwrap().dev_auth);
        assert!(matches!(
            with(&[("FMN_DEV_AUTH", "yes please")], false),
            Err(SettingsError::Invalid(..))
        ));
    }
}
