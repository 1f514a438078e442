//! Reading and changing an account's preferences from a handler.

use fmn_aws::prefs_store::PrefsStoreError;
use fmn_core::defaults::{new_account, NewAccount};
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

/// The caller's preferences, created on first use (enabled, default filters, no destination).
pub async fn load_or_create(state: &AppState, name: &str) -> Result<UserPrefs, ApiError> {
    if let Some(p) = state.prefs.get(name).await? {
        return Ok(p);
    }
    let options = NewAccount {
        with_defaults: true,
        ..NewAccount::default()
    };
    let fresh = new_account(name, &options)?;
    match state.prefs.create(&fresh).await {
        Ok(p) => {
            tracing::info!(user = name, "account created on first visit");
            Ok(p)
        }
        // Created concurrently by another request.
        Err(PrefsStoreError::Exists(_)) => state
            .prefs
            .get(name)
            .await?
            .ok_or_else(|| ApiError::conflict("the account is being created; try again")),
        Err(e) => Err(e.into()),
    }
}
