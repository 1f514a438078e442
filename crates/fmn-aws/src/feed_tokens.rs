//! The secret tokens of users' Atom feeds (`/feed/<token>.atom`), in the preferences table.
//!
//! Items (`pk`, `sk`):
//! - `feed#<sha256 of the token, hex>`, `token`: `user`. Only the hash is stored: whoever reads
//!   the table cannot read anyone's feed.
//! - `feed-user#<user>`, `current`: `hash` of the user's one valid token, so a new token voids
//!   the previous one.
//!
//! A token is 16 random bytes (128 bits), base64url without padding. [`FeedTokens::rotate`]
//! writes the new lookup item and the pointer and deletes the old lookup item in one
//! transaction, conditional on the pointer being what was read: two concurrent rotations
//! cannot both leave a working token.

use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::dynamo::{get_s, s, DynamoError};

/// Random bytes in a feed token.
pub const TOKEN_BYTES: usize = 16;

fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn token_pk(hash: &str) -> String {
    format!("feed#{hash}")
}
const TOKEN_SK: &str = "token";

fn user_pk(user: &str) -> String {
    format!("feed-user#{user}")
}
const USER_SK: &str = "current";

/// Whether `token` has the shape of a feed token (checked before any table read).
pub fn well_formed(token: &str) -> bool {
    token.len() == (TOKEN_BYTES * 4).div_ceil(3)
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[derive(Clone, Debug)]
pub struct FeedTokens {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl FeedTokens {
    pub fn from_clients(clients: &crate::AwsClients) -> Self {
        Self {
            client: clients.dynamodb.clone(),
            table: clients.table(crate::TableName::Preferences),
        }
    }

    /// Makes a new token for `user`, voiding the previous one; returns the token (shown once).
    /// A concurrent rotation that won the race is rotated over (a few tries).
    pub async fn rotate(&self, user: &str) -> Result<String, DynamoError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.rotate_once(user).await {
                Err(e) if attempt < 3 && e.condition_failed_at(1) => continue,
                other => return other,
            }
        }
    }

    async fn rotate_once(&self, user: &str) -> Result<String, DynamoError> {
        let current = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(user_pk(user)))
            .key("sk", s(USER_SK))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| DynamoError::call("GetItem", &self.table, e))?
            .item
            .and_then(|item| get_s(&item, "hash").map(str::to_string));

        let mut bytes = [0u8; TOKEN_BYTES];
        rand::rng().fill_bytes(&mut bytes);
        let token = URL_SAFE_NO_PAD.encode(bytes);
        let new_hash = hash(&token);

        let lookup = Put::builder()
            .table_name(&self.table)
            .item("pk", s(token_pk(&new_hash)))
            .item("sk", s(TOKEN_SK))
            .item("user", s(user))
            .build()
            .expect("table and item set");
        let mut pointer = Put::builder()
            .table_name(&self.table)
            .item("pk", s(user_pk(user)))
            .item("sk", s(USER_SK))
            .item("hash", s(new_hash.as_str()));
        pointer = match &current {
            Some(old) => pointer
                .condition_expression("#hash = :old")
                .expression_attribute_names("#hash", "hash")
                .expression_attribute_values(":old", s(old.as_str())),
            None => pointer.condition_expression("attribute_not_exists(pk)"),
        };
        let mut tx = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(lookup).build())
            .transact_items(
                TransactWriteItem::builder()
                    .put(pointer.build().expect("table and item set"))
                    .build(),
            );
        if let Some(old) = &current {
            let void = Delete::builder()
                .table_name(&self.table)
                .key("pk", s(token_pk(old)))
                .key("sk", s(TOKEN_SK))
                .build()
                .expect("table and key set");
            tx = tx.transact_items(TransactWriteItem::builder().delete(void).build());
        }
        tx.send()
            .await
            .map_err(|e| DynamoError::transaction(&self.table, e))?;
        Ok(token)
    }

    /// The user whose feed `token` opens, if it is a current token.
    pub async fn user_of(&self, token: &str) -> Result<Option<String>, DynamoError> {
        if !well_formed(token) {
            return Ok(None);
        }
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(token_pk(&hash(token))))
            .key("sk", s(TOKEN_SK))
            .send()
            .await
            .map_err(|e| DynamoError::call("GetItem", &self.table, e))?;
        Ok(out
            .item
            .and_then(|item| get_s(&item, "user").map(str::to_string)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_tokens_of_the_right_shape_are_looked_up() {
        let token = URL_SAFE_NO_PAD.encode([7u8; TOKEN_BYTES]);
        assert!(well_formed(&token));
        assert!(!well_formed(&token[1..]));
        assert!(!well_formed(&format!("{}.", &token[1..])));
        assert!(!well_formed(""));
    }
}
