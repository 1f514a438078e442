//! Secrets are not environment variables on AWS: a Lambda's environment is readable by anyone
//! who may read its configuration. Each secret setting `FMN_X` is instead named by
//! `FMN_X_PARAMETER`, an SSM Parameter Store SecureString the template lets the function read
//! (and nothing else), fetched once per cold start with decryption, before the settings are
//! read. Locally (no `_PARAMETER` variable) the plain `FMN_X` is used, as before.

use std::collections::BTreeMap;

use crate::retry::{classify, ErrorClass};

/// A secret setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Secret {
    /// The HMAC key of one-click unsubscribe links (mail senders and the web-api).
    UnsubscribeKey,
    /// The IRC bot's NickServ password.
    IrcPassword,
    /// The Matrix bot's access token.
    MatrixToken,
    /// The sync function's Kerberos keytab for FASJSON (the file in base64).
    FasjsonKeytab,
}

impl Secret {
    pub const ALL: [Secret; 4] = [
        Secret::UnsubscribeKey,
        Secret::IrcPassword,
        Secret::MatrixToken,
        Secret::FasjsonKeytab,
    ];

    /// The setting the code reads.
    pub fn variable(self) -> &'static str {
        match self {
            Secret::UnsubscribeKey => "FMN_UNSUBSCRIBE_SECRET",
            Secret::IrcPassword => "FMN_IRC_PASSWORD",
            Secret::MatrixToken => "FMN_MATRIX_ACCESS_TOKEN",
            Secret::FasjsonKeytab => "FMN_FASJSON_KEYTAB",
        }
    }

    /// The variable naming the parameter that holds it on AWS.
    pub fn parameter_variable(self) -> &'static str {
        match self {
            Secret::UnsubscribeKey => "FMN_UNSUBSCRIBE_SECRET_PARAMETER",
            Secret::IrcPassword => "FMN_IRC_PASSWORD_PARAMETER",
            Secret::MatrixToken => "FMN_MATRIX_ACCESS_TOKEN_PARAMETER",
            Secret::FasjsonKeytab => "FMN_FASJSON_KEYTAB_PARAMETER",
        }
    }

    /// The template parameter holding the parameter's name (without its leading `/`).
    pub fn template_parameter(self) -> &'static str {
        match self {
            Secret::UnsubscribeKey => "UnsubscribeSecretParameter",
            Secret::IrcPassword => "IrcPasswordParameter",
            Secret::MatrixToken => "MatrixAccessTokenParameter",
            Secret::FasjsonKeytab => "FasjsonKeytabParameter",
        }
    }

    pub fn from_template_parameter(name: &str) -> Option<Secret> {
        Self::ALL
            .into_iter()
            .find(|s| s.template_parameter() == name)
    }

    /// Whether running without it is normal (a bot nick without NickServ registration; a
    /// FASJSON that needs no Kerberos, where FMN_FASJSON_PRINCIPAL is unset and a missing
    /// keytab with it set is a settings error naming FMN_FASJSON_KEYTAB): then a parameter
    /// that does not exist means "none", said in the log.
    pub fn optional(self) -> bool {
        matches!(self, Secret::IrcPassword | Secret::FasjsonKeytab)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("{variable}: SSM parameter `{parameter}` could not be read ({class:?}): {detail}")]
    Unreadable {
        variable: &'static str,
        parameter: String,
        class: ErrorClass,
        detail: String,
    },
    #[error("{variable}: SSM parameter `{parameter}` has no value")]
    Empty {
        variable: &'static str,
        parameter: String,
    },
}

/// Fetches every secret whose `_PARAMETER` variable `lookup` gives: secret variable → value.
pub async fn fetch(
    ssm: &aws_sdk_ssm::Client,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<BTreeMap<&'static str, String>, SecretError> {
    let mut values = BTreeMap::new();
    for secret in Secret::ALL {
        let Some(parameter) = lookup(secret.parameter_variable()).filter(|p| !p.trim().is_empty())
        else {
            continue;
        };
        let out = ssm
            .get_parameter()
            .name(&parameter)
            .with_decryption(true)
            .send()
            .await;
        let out = match out {
            Err(e)
                if secret.optional()
                    && e.as_service_error()
                        .is_some_and(|s| s.is_parameter_not_found()) =>
            {
                tracing::info!(
                    parameter,
                    variable = secret.variable(),
                    "no such SSM parameter: running without this optional secret"
                );
                continue;
            }
            other => other,
        }
        .map_err(|e| SecretError::Unreadable {
            variable: secret.parameter_variable(),
            parameter: parameter.clone(),
            class: classify(&e),
            detail: aws_sdk_ssm::error::DisplayErrorContext(&e).to_string(),
        })?;
        let value = out
            .parameter
            .and_then(|p| p.value)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| SecretError::Empty {
                variable: secret.parameter_variable(),
                parameter: parameter.clone(),
            })?;
        values.insert(secret.variable(), value);
    }
    Ok(values)
}

/// [`fetch`] from the process environment, then each secret set as its plain variable for the
/// settings to read. Call at the start of `main`, before anything reads settings.
pub async fn load_into_env() -> Result<usize, SecretError> {
    let wanted = Secret::ALL
        .iter()
        .any(|s| std::env::var_os(s.parameter_variable()).is_some());
    if !wanted {
        return Ok(0);
    }
    let ssm = aws_sdk_ssm::Client::new(&aws_config::load_from_env().await);
    let values = fetch(&ssm, |k| std::env::var(k).ok()).await?;
    for (variable, value) in &values {
        std::env::set_var(variable, value);
    }
    Ok(values.len())
}
