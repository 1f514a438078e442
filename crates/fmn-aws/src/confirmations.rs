//! Pending confirmations of destinations, in the preferences table (its TTL attribute
//! `expires_at` removes them a while after they expire; reads check the time themselves).
//!
//! Items (`pk`, `sk`):
//! - `confirm#<sha256 of the token, hex>`, `token`: `user`, `destination` (id), `kind`,
//!   `address`, `expires_at`. Only the hash is stored: whoever reads the table cannot confirm.
//! - `confirm-dest#<user>`, `<destination id>`: `hash` of the one token that is valid for that
//!   destination now, so a fresh confirmation voids the previous one.
//!
//! - `confirm-rate#<user>`, `<hour, epoch>`: `sent`, how many confirmations that user caused in
//!   that hour (kept two hours): at most [`MAX_PER_HOUR`], so nobody can use confirmations to
//!   flood an address or a nick.
//!
//! A token is used once: [`Confirmations::consume`] deletes both items in one conditional
//! transaction, and only the caller whose delete succeeded goes on.

use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use fmn_core::prefs::{Destination, DestinationKind};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::clock::Clock;
use crate::dynamo::{get_n, get_s, n, s, DynamoError};

/// How long a confirmation link works.
pub const TOKEN_TTL_SECS: u64 = 24 * 3600;
/// Confirmations one user may cause per clock hour.
pub const MAX_PER_HOUR: u32 = 20;

#[derive(Debug, thiserror::Error)]
pub enum ConfirmError {
    #[error(transparent)]
    Dynamo(#[from] DynamoError),
    #[error("at most {MAX_PER_HOUR} confirmations per hour; try again later")]
    TooMany,
}

/// A confirmation waiting for an answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pending {
    pub user: String,
    pub destination: String,
    pub kind: DestinationKind,
    pub address: String,
    /// Epoch seconds.
    pub expires_at: u64,
}

/// The pending confirmations.
#[derive(Clone, Debug)]
pub struct Confirmations {
    client: aws_sdk_dynamodb::Client,
    table: String,
    clock: Clock,
}

fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn token_pk(hash: &str) -> String {
    format!("confirm#{hash}")
}

fn dest_pk(user: &str) -> String {
    format!("confirm-dest#{user}")
}

impl Confirmations {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            clock: Clock::system(),
        }
    }

    /// The same, telling time by `clock` (the hourly allowance, expiry).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    pub fn from_clients(clients: &crate::AwsClients) -> Self {
        Self::new(
            clients.dynamodb.clone(),
            clients.table(crate::TableName::Preferences),
        )
    }

    /// A fresh token for `user`'s `destination` (any earlier one stops working). Returns the
    /// token (32 random bytes, base64url) and when it expires. See [`Confirmations::reserve`].
    pub async fn issue(
        &self,
        user: &str,
        destination: &Destination,
    ) -> Result<(String, u64), DynamoError> {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let token = URL_SAFE_NO_PAD.encode(bytes);
        let h = hash(&token);
        let expires_at = self.clock.now_secs() + TOKEN_TTL_SECS;
        let token_item = Put::builder()
            .table_name(&self.table)
            .item("pk", s(token_pk(&h)))
            .item("sk", s("token"))
            .item("user", s(user))
            .item("destination", s(destination.id.as_str()))
            .item("kind", s(destination.kind.as_str()))
            .item("address", s(destination.address.as_str()))
            .item("expires_at", n(expires_at))
            .build()
            .expect("table, item set");
        let pointer = Put::builder()
            .table_name(&self.table)
            .item("pk", s(dest_pk(user)))
            .item("sk", s(destination.id.as_str()))
            .item("hash", s(h))
            .item("expires_at", n(expires_at))
            .build()
            .expect("table, item set");
        self.client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(token_item).build())
            .transact_items(TransactWriteItem::builder().put(pointer).build())
            .send()
            .await
            .map_err(|e| DynamoError::call("TransactWriteItems", &self.table, e))?;
        Ok((token, expires_at))
    }

    /// Counts one confirmation `user` is about to cause in this hour, refusing beyond
    /// [`MAX_PER_HOUR`]. Call before [`Confirmations::issue`].
    pub async fn reserve(&self, user: &str) -> Result<(), ConfirmError> {
        let now = self.clock.now_secs();
        let hour = now - now % 3600;
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(format!("confirm-rate#{user}")))
            .key("sk", s(hour.to_string()))
            .update_expression("ADD sent :one SET expires_at = :expires")
            .condition_expression("attribute_not_exists(sent) OR sent < :max")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":max", n(MAX_PER_HOUR))
            .expression_attribute_values(":expires", n(hour + 2 * 3600))
            .send()
            .await
            .map_err(|e| DynamoError::call("UpdateItem", &self.table, e));
        match result {
            Ok(_) => Ok(()),
            Err(e) if e.is_condition_failure() => Err(ConfirmError::TooMany),
            Err(e) => Err(e.into()),
        }
    }

    /// The confirmation `token` stands for, if it is still valid (not used, not replaced, not
    /// expired).
    pub async fn lookup(&self, token: &str) -> Result<Option<Pending>, DynamoError> {
        let h = hash(token);
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(token_pk(&h)))
            .key("sk", s("token"))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| DynamoError::call("GetItem", &self.table, e))?;
        let Some(item) = out.item else {
            return Ok(None);
        };
        let pending = (|| {
            Some(Pending {
                user: get_s(&item, "user")?.to_string(),
                destination: get_s(&item, "destination")?.to_string(),
                kind: match get_s(&item, "kind")? {
                    "email" => DestinationKind::Email,
                    "irc" => DestinationKind::Irc,
                    _ => return None,
                },
                address: get_s(&item, "address")?.to_string(),
                expires_at: get_n(&item, "expires_at")?,
            })
        })();
        let Some(pending) = pending.filter(|p| p.expires_at > self.clock.now_secs()) else {
            return Ok(None);
        };
        let pointer = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(dest_pk(&pending.user)))
            .key("sk", s(pending.destination.as_str()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| DynamoError::call("GetItem", &self.table, e))?;
        let current = pointer
            .item
            .as_ref()
            .and_then(|i| get_s(i, "hash"))
            .is_some_and(|current| current == h);
        Ok(current.then_some(pending))
    }

    /// Uses `token` up: true for the one caller that removed it, false when it was already
    /// used or replaced.
    pub async fn consume(&self, token: &str, pending: &Pending) -> Result<bool, DynamoError> {
        let h = hash(token);
        let token_item = Delete::builder()
            .table_name(&self.table)
            .key("pk", s(token_pk(&h)))
            .key("sk", s("token"))
            .condition_expression("attribute_exists(pk)")
            .build()
            .expect("table, key set");
        let pointer = Delete::builder()
            .table_name(&self.table)
            .key("pk", s(dest_pk(&pending.user)))
            .key("sk", s(pending.destination.as_str()))
            .condition_expression("#h = :h")
            .expression_attribute_names("#h", "hash")
            .expression_attribute_values(":h", s(h))
            .build()
            .expect("table, key set");
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().delete(token_item).build())
            .transact_items(TransactWriteItem::builder().delete(pointer).build())
            .send()
            .await
            .map_err(|e| DynamoError::call("TransactWriteItems", &self.table, e));
        match result {
            Ok(_) => Ok(true),
            Err(e) if e.is_condition_failure() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Voids whatever token is pending for `user`'s destination (it was removed).
    pub async fn void(&self, user: &str, destination: &str) -> Result<(), DynamoError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(dest_pk(user)))
            .key("sk", s(destination))
            .send()
            .await
            .map_err(|e| DynamoError::call("DeleteItem", &self.table, e))?;
        Ok(())
    }
}
