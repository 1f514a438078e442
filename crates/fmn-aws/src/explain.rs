//! Why a user did or did not get a recent message, per filter and rule: the message from the
//! recent-messages table, the ownership from its table, the verdict from
//! [`fmn_core::matching::explain`]. Shared by `fmn explain` and the web-api.

use std::sync::Arc;

use fmn_core::matching::{explain, Explanation, MessageFacts};
use fmn_core::message::Envelope;
use fmn_core::meta::Registry;
use fmn_core::ownership::Ownership;
use fmn_core::prefs::UserPrefs;
use tokio::sync::RwLock;

use crate::dynamo::DynamoError;
use crate::ownership_store::OwnershipStore;
use crate::recent::RecentMessages;

#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    #[error(transparent)]
    Dynamo(#[from] DynamoError),
    #[error("the stored envelope of `{msg_id}` is unreadable: {reason}")]
    Envelope { msg_id: String, reason: String },
}

/// The ownership table in memory, read again only when its import counter moved (one small
/// read per use instead of a scan of the whole table).
#[derive(Debug, Default)]
pub struct OwnershipCache {
    cached: RwLock<Option<(u64, Arc<Ownership>)>>,
}

impl OwnershipCache {
    /// The current ownership.
    pub async fn get(&self, store: &OwnershipStore) -> Result<Arc<Ownership>, DynamoError> {
        let version = store.current_version().await?;
        if let Some((v, o)) = self.cached.read().await.as_ref() {
            if *v == version {
                return Ok(Arc::clone(o));
            }
        }
        let (ownership, version) = store.load().await?;
        let ownership = Arc::new(ownership);
        *self.cached.write().await = Some((version, Arc::clone(&ownership)));
        Ok(ownership)
    }
}

/// The explanation for `prefs` and the recent message `msg_id`; `None` when the message is not
/// among the recent messages (kept 14 days).
pub async fn explain_recent(
    recent: &RecentMessages,
    ownership: &Ownership,
    prefs: &UserPrefs,
    msg_id: &str,
) -> Result<Option<Explanation>, ExplainError> {
    let Some(stored) = recent.get(msg_id).await? else {
        return Ok(None);
    };
    let envelope = Envelope::from_json(&stored.envelope).map_err(|e| ExplainError::Envelope {
        msg_id: msg_id.to_string(),
        reason: e.to_string(),
    })?;
    let meta = Registry::default().extract(&envelope);
    let facts = MessageFacts::new(&envelope, &meta, ownership);
    Ok(Some(explain(prefs, &facts, ownership)))
}
