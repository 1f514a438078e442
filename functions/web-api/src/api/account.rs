//! Reading and changing an account's preferences from a handler.

use fmn_aws::auto_accounts::Ensured;
use fmn_core::accounts::AutoCreateReason;
use fmn_core::prefs::UserPrefs;

use crate::error::ApiError;
use crate::state::AppState;

/// Applies `f` to `name`'s preferences in one conditional write (retried on a lost race),
/// after validating the result. Errors of `f` come back as they are.
pub async fn change<F>(state: &AppState, name: &str, mut f: F) -> Result<UserPrefs, ApiError>
where
    F: FnMut(&mut UserPrefs) -> Result<(), ApiError>,
{
    state
        .prefs
        .update(name, |p| {
            f(p)?;
            Ok(p.validate()?)
        })
        .await
}

/// Bot accounts (mailing lists) are named by admins from the same name space as FAS users, so
/// whoever registers a bot's name in FAS (`devel-list`) would sign in as the bot: a signed-in
/// caller whose account is a bot is refused (403). Bots are only reached through `/admin`.
pub fn refuse_bot(prefs: &UserPrefs) -> Result<(), ApiError> {
    if prefs.bot {
        return Err(ApiError::forbidden(format!(
            "`{}` is a bot account, managed by the administrators; it cannot sign in",
            prefs.name
        )));
    }
    Ok(())
}

/// The caller's preferences, created on first use (`fmn_core::accounts`: the FAS e-mail as a
/// destination verified by FAS, the default filters off unless the admin's setting for one of
/// the caller's groups switches them on); 403 for a bot account ([`refuse_bot`]) or a locked
/// FAS account.
pub async fn load_or_create(state: &AppState, name: &str) -> Result<UserPrefs, ApiError> {
    if let Some(p) = state.prefs.get(name).await? {
        refuse_bot(&p)?;
        return Ok(p);
    }
    match state
        .accounts
        .ensure(name, AutoCreateReason::SignIn, None)
        .await?
    {
        Ensured::Created(p) => {
            tracing::info!(user = name, "account created on first visit");
            Ok(p)
        }
        // Created concurrently by another request.
        Ensured::Existed(p) => {
            refuse_bot(&p)?;
            Ok(p)
        }
        Ensured::Locked => Err(ApiError::forbidden(format!(
            "the FAS account `{name}` is locked"
        ))),
    }
}
