//! Why a user did or did not get a recent message, per filter and rule: the message from the
//! recent-messages table, the ownership and accounts from their table (names resolved with the
//! synced aliases, as the match function does), the verdict from
//! [`fmn_core::matching::explain`] and where the facts came from
//! ([`fmn_core::matching::provenance`]). Shared by `fmn explain` and the web-api.

use std::sync::Arc;

use fmn_core::matching::{explain, provenance, Explanation, MessageFacts};
use fmn_core::message::Envelope;
use fmn_core::meta::Registry;
use fmn_core::prefs::UserPrefs;
use tokio::sync::RwLock;

use crate::dynamo::DynamoError;
use crate::ownership_store::{Loaded, OwnershipStore};
use crate::recent::RecentMessages;

#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    #[error(transparent)]
    Dynamo(#[from] DynamoError),
    #[error("the stored envelope of `{msg_id}` is unreadable: {reason}")]
    Envelope { msg_id: String, reason: String },
}

/// What an explanation needs of the ownership table: the facts and the extraction that
/// resolves names with the synced aliases.
#[derive(Debug)]
pub struct KnownFacts {
    pub loaded: Loaded,
    pub registry: Registry,
}

impl KnownFacts {
    pub fn new(loaded: Loaded) -> Self {
        let registry = Registry::default().with_aliases(loaded.directory.aliases());
        Self { loaded, registry }
    }
}

/// The ownership table in memory, read again only when its version counter moved (one small
/// read per use instead of a scan of the whole table).
#[derive(Debug, Default)]
pub struct OwnershipCache {
    cached: RwLock<Option<Arc<KnownFacts>>>,
}

impl OwnershipCache {
    /// The current facts.
    pub async fn get(&self, store: &OwnershipStore) -> Result<Arc<KnownFacts>, DynamoError> {
        let version = store.current_version().await?;
        if let Some(known) = self.cached.read().await.as_ref() {
            if known.loaded.version == version {
                return Ok(Arc::clone(known));
            }
        }
        let known = Arc::new(KnownFacts::new(store.load_everything().await?));
        *self.cached.write().await = Some(Arc::clone(&known));
        Ok(known)
    }
}

/// The explanation for `prefs` and the recent message `msg_id`; `None` when the message is not
/// among the recent messages (kept 14 days).
pub async fn explain_recent(
    recent: &RecentMessages,
    known: &KnownFacts,
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
    let ownership = &known.loaded.ownership;
    let meta = known.registry.extract(&envelope);
    let facts = MessageFacts::new(&envelope, &meta, ownership);
    let mut explanation = explain(prefs, &facts, ownership);
    explanation.provenance = provenance(
        &prefs.name,
        &facts,
        ownership,
        &known.loaded.directory,
        known.loaded.synced_at,
    );
    Ok(Some(explanation))
}
