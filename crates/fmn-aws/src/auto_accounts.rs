//! Creating accounts nobody asked for yet (`fmn_core::accounts`): on first sign-in (the
//! web-api), on joining the packager group and on a first Fedora Badges login (the match
//! function, from the bus). Idempotent: an existing account is never touched (the write is
//! conditional on there being none), so a repeated message or two racing requests create one
//! account, and a user's own changes are never overwritten.

use fmn_core::accounts::{auto_account, AutoCreateReason};
use fmn_core::directory::Account;
use fmn_core::prefs::UserPrefs;

use crate::ownership_store::OwnershipStore;
use crate::prefs_store::{PrefsStore, PrefsStoreError};

/// What [`AccountCreator::ensure`] found or did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ensured {
    /// Made now.
    Created(UserPrefs),
    /// There already (left as it was).
    Existed(UserPrefs),
    /// Not made: the FAS account is locked.
    Locked,
}

/// Makes auto-created accounts from the synced FAS record, the stored group membership and
/// the admin's per-group settings.
#[derive(Clone, Debug)]
pub struct AccountCreator {
    prefs: PrefsStore,
    ownership: OwnershipStore,
}

impl AccountCreator {
    pub fn from_clients(clients: &crate::AwsClients) -> Self {
        Self::new(
            PrefsStore::from_clients(clients),
            OwnershipStore::from_clients(clients),
        )
    }

    pub fn new(prefs: PrefsStore, ownership: OwnershipStore) -> Self {
        Self { prefs, ownership }
    }

    /// `name`'s account, created for `reason` if there is none. `fas`: the FAS record when
    /// the caller has it (read from the ownership table's synced accounts otherwise).
    pub async fn ensure(
        &self,
        name: &str,
        reason: AutoCreateReason,
        fas: Option<Account>,
    ) -> Result<Ensured, PrefsStoreError> {
        if let Some(p) = self.prefs.get(name).await? {
            return Ok(Ensured::Existed(p));
        }
        let fas = match fas {
            Some(a) => Some(a),
            None => self.ownership.account(name).await?,
        };
        let defaults = self.prefs.account_defaults().await?;
        let mut member_of = Vec::new();
        for group in defaults.groups.keys() {
            if self
                .ownership
                .members(group)
                .await?
                .iter()
                .any(|m| m == name)
            {
                member_of.push(group.clone());
            }
        }
        let on = defaults.switched_on(|g| member_of.iter().any(|m| m == g));
        let Some(fresh) = auto_account(name, fas.as_ref(), &on) else {
            return Ok(Ensured::Locked);
        };
        match self.prefs.create(&fresh).await {
            Ok(created) => {
                tracing::info!(
                    user = name,
                    reason = reason.as_str(),
                    fas_email = created.destinations.first().map(|d| d.address.as_str()),
                    switched_on = ?on,
                    "account created"
                );
                Ok(Ensured::Created(created))
            }
            // Created meanwhile (another request or message): theirs stands.
            Err(PrefsStoreError::Exists(_)) => match self.prefs.get(name).await? {
                Some(p) => Ok(Ensured::Existed(p)),
                None => Err(PrefsStoreError::Conflict(name.to_string())),
            },
            Err(e) => Err(e),
        }
    }
}
