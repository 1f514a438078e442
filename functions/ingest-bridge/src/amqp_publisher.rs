//! A fedora-messaging publisher for load (the bench and the fault tests): what the Python
//! library puts on the wire (topic exchange, routing key = topic, `message_id`, JSON body,
//! persistent, the `fedora_messaging_*` and `sent-at` headers), with publisher confirms, so a
//! message counts as published only once the broker has it. The integration tests also use
//! the real Python `fedora-messaging` library (`tests/fedora-messaging-publisher`).

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use serde_json::Value;

use crate::amqp::{connect_url, tls_config, AmqpError};
use crate::config::AmqpConfig;

pub struct AmqpPublisher {
    conn: Connection,
    channel: Channel,
    exchange: String,
}

/// One message as fedora-messaging would publish it.
#[derive(Clone, Debug)]
pub struct OutgoingMessage {
    pub id: String,
    pub topic: String,
    /// The AMQP headers (JSON scalars: strings, integers, booleans).
    pub headers: serde_json::Map<String, Value>,
    pub body: Value,
}

fn broker(config: &AmqpConfig, error: lapin::Error) -> AmqpError {
    AmqpError::Broker {
        source_name: config.source_name(),
        error,
    }
}

fn json_to_amqp(value: &Value) -> AMQPValue {
    match value {
        Value::Bool(b) => AMQPValue::Boolean(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => AMQPValue::LongLongInt(i),
            None => AMQPValue::Double(n.as_f64().unwrap_or_default()),
        },
        Value::String(s) => AMQPValue::LongString(LongString::from(s.as_str())),
        Value::Null => AMQPValue::Void,
        other => AMQPValue::LongString(LongString::from(other.to_string())),
    }
}

impl AmqpPublisher {
    /// Connects with the same settings the bridge uses (URL, CA, client certificate).
    pub async fn connect(config: &AmqpConfig) -> Result<Self, AmqpError> {
        let tls = tls_config(config)?;
        let runtime = lapin::runtime::default_runtime().map_err(|e| broker(config, e))?;
        let conn = Connection::connect_with_config(
            &connect_url(config),
            ConnectionProperties::default(),
            tls,
            runtime,
        )
        .await
        .map_err(|e| broker(config, e))?;
        let channel = conn.create_channel().await.map_err(|e| broker(config, e))?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(|e| broker(config, e))?;
        Ok(Self {
            conn,
            channel,
            exchange: config.exchange.clone(),
        })
    }

    /// Publishes `messages` and waits until the broker confirms every one. With `window`
    /// confirmations outstanding at most.
    pub async fn publish_all(
        &self,
        messages: &[OutgoingMessage],
        window: usize,
    ) -> Result<(), lapin::Error> {
        for chunk in messages.chunks(window.max(1)) {
            let mut confirms = Vec::with_capacity(chunk.len());
            for m in chunk {
                confirms.push(self.send(m).await?);
            }
            for c in confirms {
                let confirmation = c.await?;
                if confirmation.is_nack() {
                    return Err(lapin::Error::from(lapin::ErrorKind::InvalidChannelState(
                        lapin::ChannelState::Error,
                        "basic.publish",
                    )));
                }
            }
        }
        Ok(())
    }

    /// Publishes arbitrary bytes as a message body (malformed ones, for tests), confirmed.
    pub async fn publish_raw(
        &self,
        topic: &str,
        id: &str,
        data: &[u8],
    ) -> Result<(), lapin::Error> {
        let properties = BasicProperties::default()
            .with_message_id(id.into())
            .with_delivery_mode(2);
        self.channel
            .basic_publish(
                self.exchange.as_str().into(),
                topic.into(),
                BasicPublishOptions::default(),
                data,
                properties,
            )
            .await?
            .await?;
        Ok(())
    }

    async fn send(&self, m: &OutgoingMessage) -> Result<lapin::PublisherConfirm, lapin::Error> {
        let mut headers = FieldTable::default();
        for (k, v) in &m.headers {
            if let Ok(key) = ShortString::try_new(k.as_str()) {
                headers.insert(key, json_to_amqp(v));
            }
        }
        let body = serde_json::to_vec(&m.body).unwrap_or_default();
        let properties = BasicProperties::default()
            .with_message_id(m.id.as_str().into())
            .with_content_type("application/json".into())
            .with_content_encoding("utf-8".into())
            .with_delivery_mode(2)
            .with_headers(headers);
        self.channel
            .basic_publish(
                self.exchange.as_str().into(),
                m.topic.as_str().into(),
                BasicPublishOptions::default(),
                &body,
                properties,
            )
            .await
    }

    pub async fn close(self) {
        let _ = self.channel.close(200, "done".into()).await;
        let _ = self.conn.close(200, "done".into()).await;
    }
}

/// `n` small messages on `topic`, with fresh UUIDs, as a load publisher sends them.
pub fn load_messages(topic: &str, n: usize) -> Vec<OutgoingMessage> {
    (0..n)
        .map(|i| {
            let mut headers = serde_json::Map::new();
            headers.insert("fedora_messaging_schema".into(), "base.message".into());
            headers.insert("fedora_messaging_severity".into(), 20.into());
            headers.insert(
                "sent-at".into(),
                time::OffsetDateTime::now_utc()
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default()
                    .into(),
            );
            OutgoingMessage {
                id: uuid::Uuid::new_v4().to_string(),
                topic: topic.to_owned(),
                headers,
                body: serde_json::json!({"n": i, "agent": "loadtest"}),
            }
        })
        .collect()
}
