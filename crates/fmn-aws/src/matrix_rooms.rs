//! The direct-message room of each Matrix user, remembered so the bot creates it once.
//!
//! Items in the delivery-records table (the Matrix sender's only table), one per bot and user,
//! without expiry: `pk = matrix-room#<bot user id>#<user id>` ([`room_key`]), `room_id`,
//! `created_at` (epoch ms). The Matrix queue is FIFO with one message group, so one bot at a
//! time looks a room up and creates it: never two rooms for one user.

use crate::dynamo::{get_s, n, s, DynamoError};

/// The key of the room of `bot` with `user`.
pub fn room_key(bot: &str, user: &str) -> String {
    format!("matrix-room#{bot}#{user}")
}

/// The remembered rooms.
#[derive(Clone, Debug)]
pub struct MatrixRooms {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl MatrixRooms {
    pub fn from_clients(clients: &crate::AwsClients) -> Self {
        Self {
            client: clients.dynamodb.clone(),
            table: clients.table(crate::TableName::DeliveryRecords),
        }
    }

    /// The room of `bot` with `user`, if one was made.
    pub async fn get(&self, bot: &str, user: &str) -> Result<Option<String>, DynamoError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(room_key(bot, user)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| DynamoError::call("GetItem", &self.table, e))?;
        Ok(out
            .item
            .as_ref()
            .and_then(|i| get_s(i, "room_id"))
            .map(str::to_string))
    }

    /// Remembers `room_id` as the room of `bot` with `user` (replacing one the user left).
    pub async fn put(&self, bot: &str, user: &str, room_id: &str) -> Result<(), DynamoError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(room_key(bot, user)))
            .item("room_id", s(room_id))
            .item("created_at", n(crate::delivery_records::now_ms()))
            .send()
            .await
            .map_err(|e| DynamoError::call("PutItem", &self.table, e))?;
        Ok(())
    }

    /// Forgets the room of `bot` with `user` (the user left it: a new one is made).
    pub async fn forget(&self, bot: &str, user: &str) -> Result<(), DynamoError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(room_key(bot, user)))
            .send()
            .await
            .map_err(|e| DynamoError::call("DeleteItem", &self.table, e))?;
        Ok(())
    }
}
