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
//!   that hour (kept two hours): at most [`Limits::per_user_hour`].
//! - `confirm-rate-to#<sha256 of kind:address, lower case>`, `<day, epoch>`: how many that
//!   address or nick was sent that day, whoever asked (kept two days): at most
//!   [`Limits::per_address_day`], so many accounts together cannot flood one address.
//! - `confirm-rate-all`, `<hour, epoch>`: how many everybody caused that hour: at most
//!   [`Limits::global_hour`], so many accounts cannot mail many addresses (whose bounces and
//!   complaints would pause SES for everyone).
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
/// Confirmations one user may cause per clock hour (default of [`Limits::per_user_hour`]).
pub const MAX_PER_HOUR: u32 = 20;
/// Confirmations one address or nick may receive per UTC day, whoever asks (default).
pub const MAX_PER_ADDRESS_PER_DAY: u32 = 5;
/// Confirmations all users together may cause per clock hour (default).
pub const MAX_GLOBAL_PER_HOUR: u32 = 200;

/// The allowances of confirmations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub per_user_hour: u32,
    pub per_address_day: u32,
    pub global_hour: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            per_user_hour: MAX_PER_HOUR,
            per_address_day: MAX_PER_ADDRESS_PER_DAY,
            global_hour: MAX_GLOBAL_PER_HOUR,
        }
    }
}

/// Which allowance was used up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    /// This user's, this hour.
    User(u32),
    /// This address's, today.
    Address(u32),
    /// Everybody's, this hour.
    Global(u32),
}

impl std::fmt::Display for Limit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Limit::User(n) => write!(f, "at most {n} confirmations per hour; try again later"),
            Limit::Address(n) => write!(
                f,
                "this address was sent {n} confirmations today, the most it gets; try again tomorrow"
            ),
            Limit::Global(n) => write!(
                f,
                "the service sends at most {n} confirmations an hour and has reached that; try again later"
            ),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfirmError {
    #[error(transparent)]
    Dynamo(#[from] DynamoError),
    #[error("{0}")]
    TooMany(Limit),
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
    limits: Limits,
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
            limits: Limits::default(),
        }
    }

    /// The same, with these allowances.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
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

    /// Counts one confirmation `user` is about to cause to `kind` `address`, against the
    /// user's hourly, the address's daily and everybody's hourly allowance, refusing when any
    /// is used up. A refusal leaves every counter as it was. Call before
    /// [`Confirmations::issue`].
    pub async fn reserve(
        &self,
        user: &str,
        kind: DestinationKind,
        address: &str,
    ) -> Result<(), ConfirmError> {
        let now = self.clock.now_secs();
        let (hour, day) = (now - now % 3600, now - now % 86_400);
        let to = hash(&format!("{}:{}", kind.as_str(), address.to_lowercase()));
        let counters = [
            (
                format!("confirm-rate#{user}"),
                hour,
                hour + 2 * 3600,
                Limit::User(self.limits.per_user_hour),
            ),
            (
                format!("confirm-rate-to#{to}"),
                day,
                day + 2 * 86_400,
                Limit::Address(self.limits.per_address_day),
            ),
            (
                "confirm-rate-all".to_string(),
                hour,
                hour + 2 * 3600,
                Limit::Global(self.limits.global_hour),
            ),
        ];
        // One counter after the other rather than one transaction: the global counter is one
        // hot item, and transactions on it would cancel each other. A refusal takes back the
        // counts already made.
        for (i, (pk, window, expires, limit)) in counters.iter().enumerate() {
            let max = match limit {
                Limit::User(n) | Limit::Address(n) | Limit::Global(n) => *n,
            };
            match self.count(pk, *window, *expires, max).await {
                Ok(true) => {}
                Ok(false) => {
                    self.uncount(&counters[..i]).await;
                    return Err(ConfirmError::TooMany(*limit));
                }
                Err(e) => {
                    self.uncount(&counters[..i]).await;
                    return Err(e.into());
                }
            }
        }
        Ok(())
    }

    /// Adds one to a counter below `max`; false when it is at `max` already.
    async fn count(
        &self,
        pk: &str,
        window: u64,
        expires: u64,
        max: u32,
    ) -> Result<bool, DynamoError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(window.to_string()))
            .update_expression("ADD sent :one SET expires_at = :expires")
            .condition_expression("attribute_not_exists(sent) OR sent < :max")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":max", n(max))
            .expression_attribute_values(":expires", n(expires))
            .send()
            .await
            .map_err(|e| DynamoError::call("UpdateItem", &self.table, e));
        match result {
            Ok(_) => Ok(true),
            Err(e) if e.is_condition_failure() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Takes back counts of a refused reservation. A failure leaves a counter one too high
    /// for the rest of its window: stricter, never looser, so it is only logged.
    async fn uncount(&self, counters: &[(String, u64, u64, Limit)]) {
        for (pk, window, _, _) in counters {
            let result = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("pk", s(pk.as_str()))
                .key("sk", s(window.to_string()))
                .update_expression("ADD sent :minus")
                .condition_expression("sent > :zero")
                .expression_attribute_values(":minus", n(-1))
                .expression_attribute_values(":zero", n(0))
                .send()
                .await;
            if let Err(e) = result {
                tracing::warn!(counter = %pk, error = %aws_sdk_dynamodb::error::DisplayErrorContext(&e), "could not take back a confirmation count");
            }
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
                    "matrix" => DestinationKind::Matrix,
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
