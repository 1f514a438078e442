//! Demo data for `make run`: when the sample is replayed into an empty system, a few of the
//! sample's real users get default filters and the bundled ownership sample is imported, so a
//! newcomer sees messages match and jobs flow. Never done when a bus is configured, when any
//! user exists, or with `FMN_DEMO=false`.

use fmn_aws::ownership_store::OwnershipStore;
use fmn_aws::prefs_store::PrefsStore;
use fmn_aws::AwsClients;
use fmn_core::defaults::default_filters;
use fmn_core::ownership::{parse_group_members, parse_owner_alias};
use fmn_core::prefs::{Delivery, Destination, UserPrefs};

const OWNER_ALIAS: &str = include_str!("../../../tests/data/ownership/pagure_owner_alias.json");
const GROUPS: &str = include_str!("../../../tests/data/ownership/groups.json");

/// Users of the sample messages; the first gets a digest instead of immediate mail.
const USERS: &[&str] = &["pingou", "ralph", "hadess", "kalev", "jforbes", "mjw"];

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("the bundled ownership sample is malformed: {0}")]
    Sample(#[from] fmn_core::ownership::OwnershipError),
    #[error(transparent)]
    Store(#[from] fmn_aws::prefs_store::PrefsStoreError),
    #[error(transparent)]
    Dynamo(#[from] fmn_aws::dynamo::DynamoError),
}

/// The demo users.
pub fn users() -> Vec<UserPrefs> {
    USERS
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let mut user = UserPrefs::new(*name);
            let delivery = if i == 0 {
                Delivery::Digest {
                    batch_delta: Some(300),
                    batch_count: Some(10),
                    schedule: None,
                }
            } else {
                Delivery::Immediate
            };
            user.destinations.push(
                Destination::email("email-1", format!("{name}@example.org"))
                    .confirmed(true)
                    .with_delivery(delivery),
            );
            user.filters = default_filters(&user, &["email-1".to_string()]);
            user
        })
        .collect()
}

/// Seeds the demo data if the preferences table has no user. Returns the users created.
pub async fn seed(clients: &AwsClients) -> Result<usize, DemoError> {
    let prefs = PrefsStore::from_clients(clients);
    if !prefs.load_all().await?.is_empty() {
        return Ok(0);
    }
    let alias = parse_owner_alias(OWNER_ALIAS)?;
    let groups = parse_group_members(GROUPS)?;
    OwnershipStore::from_clients(clients)
        .import(Some(&alias.artifacts), Some(&groups), |_, _| {})
        .await?;
    let users = users();
    for user in &users {
        match prefs.create(user).await {
            Ok(_) | Err(fmn_aws::prefs_store::PrefsStoreError::Exists(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(users.len())
}

#[cfg(test)]
mod tests {
    #[test]
    fn demo_users_are_valid() {
        for user in super::users() {
            user.validate().unwrap();
        }
    }
}
