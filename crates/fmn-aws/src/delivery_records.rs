//! Delivery records: what makes a delivery happen once although SQS delivers at least once and
//! a digest run may be repeated.
//!
//! One item per delivery in the delivery-records table, `pk = <channel>#<id>` ([`Channel::key`]:
//! `email#<job id>`, `irc#<job id>`, `matrix#<job id>`, `digest#<digest id>`), expiring after [`RECORD_TTL_SECS`] (longer than SQS keeps a message,
//! so a redelivery always finds its record). A sender:
//!
//! 1. [`DeliveryRecords::claim`]s the delivery: a conditional write that succeeds only when no
//!    record exists, or the previous attempt failed in a way worth retrying (`retry`), or it is
//!    `sending` but its claim is older than the lease (the sender died mid-send). The record
//!    then says `sending`, with the claim's time and a random claim token.
//! 2. sends;
//! 3. marks the record `sent` (or `rejected` with the reason, or `retry`), conditional on still
//!    holding the claim.
//!
//! A repeat that finds `sent` is acknowledged without sending; one that finds a fresh
//! `sending` is retried later. The trade-off: a sender that dies after the mail service
//! accepted the mail and before step 3 leaves `sending`; after the lease the delivery is made
//! again, so a crash in that window (milliseconds) can duplicate one mail, never lose it. The
//! duplicate carries the same `Message-ID`, which most mail clients fold into one. SES has no
//! idempotency key, so no scheme can do better than "at most one duplicate per crash" without
//! risking a loss instead.
//!
//! [`DeliveryRecords::deliver_once`] is the whole sequence for a sender that sends one thing at
//! a time (mail); the IRC bot, which confirms a batch of lines at once, uses the steps.

use std::future::Future;

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};

use crate::dynamo::{get_n, get_s, n, s, DynamoError, Item};
use crate::ses::SesError;

/// What a delivery goes through: the first part of its record's key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channel {
    /// An immediate mail, keyed by its job id.
    Email,
    /// An IRC line, keyed by its job id.
    Irc,
    /// A digest mail, keyed by its digest id.
    Digest,
    /// A Matrix message, keyed by its job id.
    Matrix,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Irc => "irc",
            Channel::Digest => "digest",
            Channel::Matrix => "matrix",
        }
    }

    /// The delivery-record key of `id` on this channel.
    pub fn key(self, id: &str) -> String {
        format!("{}#{id}", self.as_str())
    }
}

/// The SES message tag naming a mail's delivery record: SES's event publishing hands it back
/// (`mail.tags`), so a `Send` event confirms the record even when the sender died before
/// marking it (see [`DeliveryRecords::confirm_sent`]).
pub const RECORD_TAG: &str = "fmn-record";

/// A record key as an SES tag value (letters, digits, `_` and `-` only): `email-<id>`.
pub fn record_tag_value(key: &str) -> String {
    key.replacen('#', "-", 1)
}

/// The SES tags naming the records of a mail that makes several deliveries at once (a burst):
/// [`RECORD_TAG`] for the first, `fmn-record-2`, `fmn-record-3`… for the others (SES wants
/// each tag name once).
pub fn record_tags(keys: &[&str]) -> Vec<(String, String)> {
    keys.iter()
        .enumerate()
        .map(|(i, key)| {
            let name = match i {
                0 => RECORD_TAG.to_string(),
                _ => format!("{RECORD_TAG}-{}", i + 1),
            };
            (name, record_tag_value(key))
        })
        .collect()
}

/// Whether `name` is one of [`record_tags`]' names.
pub fn is_record_tag(name: &str) -> bool {
    name == RECORD_TAG
        || name
            .strip_prefix(RECORD_TAG)
            .and_then(|rest| rest.strip_prefix('-'))
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// The record key a [`RECORD_TAG`] value names, if it names one of ours.
pub fn record_key_of_tag(value: &str) -> Option<String> {
    let (channel, id) = value.split_once('-')?;
    let channel = [Channel::Email, Channel::Irc, Channel::Digest]
        .into_iter()
        .find(|c| c.as_str() == channel)?;
    (!id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'))
    .then(|| channel.key(id))
}

/// What [`DeliveryRecords::confirm_sent`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Confirmed {
    /// The record said `sending` (its sender died, or has not marked it yet): now `sent`.
    Now,
    /// Already `sent`, or another state the event does not change, or no record.
    Unchanged,
}

/// How [`DeliveryRecords::deliver_once`] ended.
#[derive(Debug)]
pub enum Delivered {
    /// Sent now, as `message_id`, on the record's `attempts`th attempt.
    Sent { message_id: String, attempts: u64 },
    /// Sent before: nothing was sent now.
    AlreadySent { message_id: Option<String> },
    /// Refused for good before: nothing was sent now.
    AlreadyRejected { reason: String },
    /// Someone else is sending it (claimed at `since_ms`): try later.
    InFlight { since_ms: u64 },
    /// Refused for good now; `unrecorded` is why the record could not say so, if it could not.
    Rejected {
        reason: String,
        unrecorded: Option<DynamoError>,
    },
    /// Not sent now but worth another try; the record allows it at once.
    Unavailable { reason: String },
    /// Not sent now because the mail service refuses all mail (SES paused, suspended, sender
    /// not verified): not this delivery's fault, so the record allows it again at once and
    /// nothing is marked rejected.
    ServiceWide { reason: String },
}

/// `FMN_SEND_LEASE` default, seconds: a `sending` record older than this is sent again.
pub const DEFAULT_SEND_LEASE_SECS: u64 = 300;

/// The lease of a `sending` claim, from `FMN_SEND_LEASE` (seconds).
pub fn send_lease(
    vars: &crate::vars::Vars<'_>,
) -> Result<std::time::Duration, crate::vars::ConfigError> {
    let secs = vars.positive("FMN_SEND_LEASE", DEFAULT_SEND_LEASE_SECS)?;
    Ok(std::time::Duration::from_secs(secs))
}

/// How long a record is kept: 14 days, SQS's longest retention.
pub const RECORD_TTL_SECS: u64 = 14 * 24 * 3600;

/// The state of a delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Sending,
    Sent,
    Rejected,
    Retry,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Sending => "sending",
            State::Sent => "sent",
            State::Rejected => "rejected",
            State::Retry => "retry",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "sending" => State::Sending,
            "sent" => State::Sent,
            "rejected" => State::Rejected,
            "retry" => State::Retry,
            _ => return None,
        })
    }
}

/// A delivery we hold: only its holder may mark it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimToken {
    pub key: String,
    token: String,
    /// How many attempts were made, this one included.
    pub attempts: u64,
}

/// The outcome of a claim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    /// Ours to send.
    Claimed(ClaimToken),
    /// Already sent (SES message id when known): acknowledge, do not send.
    AlreadySent { message_id: Option<String> },
    /// Refused for good before, with this reason.
    AlreadyRejected { reason: String },
    /// Someone is sending it now (or died less than a lease ago): try later.
    InFlight { since_ms: u64 },
}

/// Who the delivery is for, kept in the record for the record's reader (and support).
#[derive(Clone, Debug, Default)]
pub struct RecordInfo<'a> {
    pub user: &'a str,
    pub destination: &'a str,
    pub address: &'a str,
    /// What is delivered, in words (the notification's title, "digest of 3"): shown as the
    /// destination's last delivery.
    pub what: &'a str,
}

/// The key of a destination's last-delivery item in the delivery-records table.
pub fn last_delivery_key(user: &str, destination: &str) -> String {
    format!("last#{user}#{destination}")
}

/// How long a last-delivery item is kept after the delivery.
pub const LAST_DELIVERY_TTL_SECS: u64 = 90 * 24 * 3600;

/// A destination's last delivery, as the page shows it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct LastDelivery {
    pub destination: String,
    /// Milliseconds since the epoch.
    pub at_ms: u64,
    /// `email`, `digest`, `irc` or `matrix`.
    pub channel: String,
    pub what: String,
}

#[derive(Clone, Debug)]
pub struct DeliveryRecords {
    client: aws_sdk_dynamodb::Client,
    table: String,
    lease_ms: u64,
}

/// Milliseconds since the epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

impl DeliveryRecords {
    /// Records in the delivery-records table; a `sending` claim older than `lease` is taken
    /// over.
    pub fn from_clients(clients: &crate::AwsClients, lease: std::time::Duration) -> Self {
        Self {
            client: clients.dynamodb.clone(),
            table: clients.table(crate::TableName::DeliveryRecords),
            lease_ms: lease.as_millis() as u64,
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Claims the delivery `key` (see the module's description).
    pub async fn claim(&self, key: &str, info: &RecordInfo<'_>) -> Result<Claim, DynamoError> {
        let now = now_ms();
        let token = uuid_like();
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(key))
            .update_expression(
                "SET #state = :sending, claim_token = :token, claimed_at = :now, \
                 created_at = if_not_exists(created_at, :now), expires_at = :expires, \
                 #user = :user, destination = :dest, address = :addr \
                 ADD attempts :one",
            )
            .condition_expression(
                "attribute_not_exists(pk) OR #state = :retry \
                 OR (#state = :sending AND claimed_at < :stale)",
            )
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#user", "user")
            .expression_attribute_values(":sending", s(State::Sending.as_str()))
            .expression_attribute_values(":retry", s(State::Retry.as_str()))
            .expression_attribute_values(":token", s(token.as_str()))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":stale", n(now.saturating_sub(self.lease_ms)))
            .expression_attribute_values(":expires", n(crate::dynamo::now_secs() + RECORD_TTL_SECS))
            .expression_attribute_values(":user", s(or_dash(info.user)))
            .expression_attribute_values(":dest", s(or_dash(info.destination)))
            .expression_attribute_values(":addr", s(or_dash(info.address)))
            .expression_attribute_values(":one", n(1))
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(|e| DynamoError::call("UpdateItem", &self.table, e));
        match out {
            Ok(out) => {
                let attempts = out
                    .attributes
                    .as_ref()
                    .and_then(|a| get_n(a, "attempts"))
                    .unwrap_or(1);
                Ok(Claim::Claimed(ClaimToken {
                    key: key.to_string(),
                    token,
                    attempts,
                }))
            }
            Err(e) if e.is_condition_failure() => {
                let item = self.get(key).await?.unwrap_or_default();
                let state = get_s(&item, "state").and_then(State::parse);
                Ok(match state {
                    Some(State::Sent) => Claim::AlreadySent {
                        message_id: get_s(&item, "message_id").map(str::to_string),
                    },
                    Some(State::Rejected) => Claim::AlreadyRejected {
                        reason: get_s(&item, "reason").unwrap_or_default().to_string(),
                    },
                    // Sending (fresh) — or the record changed between the two calls: later.
                    _ => Claim::InFlight {
                        since_ms: get_n(&item, "claimed_at").unwrap_or(now),
                    },
                })
            }
            Err(e) => Err(e),
        }
    }

    /// Claims `key`, runs `send` if the claim is ours, and marks the record with its result: the
    /// module's sequence in one call. A mark that fails after a send is logged: the delivery
    /// stands, and the record waits for the lease (see the module's description).
    pub async fn deliver_once<F, Fut>(
        &self,
        key: &str,
        info: &RecordInfo<'_>,
        send: F,
    ) -> Result<Delivered, DynamoError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<String, SesError>>,
    {
        self.deliver_together(&[(key, info.clone())], |_| send())
            .await
            .pop()
            .expect("one outcome per delivery")
    }

    /// [`DeliveryRecords::deliver_once`] for deliveries that go out in one send (a burst for
    /// one address in one mail): every record is claimed (at once), `send` gets the indices of
    /// those claimed (none claimed: no send) and sends them together, and each claimed record
    /// is marked with the send's result. The others end as their claim found them, so a
    /// delivery already made alone or in another bundle is not made again. One outcome per
    /// item, in order.
    pub async fn deliver_together<F, Fut>(
        &self,
        items: &[(&str, RecordInfo<'_>)],
        send: F,
    ) -> Vec<Result<Delivered, DynamoError>>
    where
        F: FnOnce(Vec<usize>) -> Fut,
        Fut: Future<Output = Result<String, SesError>>,
    {
        let claims =
            futures::future::join_all(items.iter().map(|(key, info)| self.claim(key, info))).await;
        let mut outcomes: Vec<Option<Result<Delivered, DynamoError>>> = Vec::new();
        let mut held: Vec<(usize, ClaimToken)> = Vec::new();
        for (i, claim) in claims.into_iter().enumerate() {
            outcomes.push(match claim {
                Ok(Claim::Claimed(token)) => {
                    held.push((i, token));
                    None
                }
                Ok(Claim::AlreadySent { message_id }) => {
                    Some(Ok(Delivered::AlreadySent { message_id }))
                }
                Ok(Claim::AlreadyRejected { reason }) => {
                    Some(Ok(Delivered::AlreadyRejected { reason }))
                }
                Ok(Claim::InFlight { since_ms }) => Some(Ok(Delivered::InFlight { since_ms })),
                Err(e) => Some(Err(e)),
            });
        }
        if held.is_empty() {
            return outcomes.into_iter().flatten().collect();
        }
        let result = send(held.iter().map(|(i, _)| *i).collect()).await;
        let marks = held.iter().map(|(_, claim)| {
            let result = &result;
            async move {
                match result {
                    Ok(message_id) => {
                        let marked = self.mark_sent(claim, message_id).await;
                        if let Err(e) = &marked {
                            tracing::error!(key = %claim.key, error = %e, "sent but its record could not be marked");
                        }
                        None
                    }
                    Err(SesError::Rejected(reason)) => self.mark_rejected(claim, reason).await.err(),
                    Err(SesError::Unavailable(reason) | SesError::ServiceWide(reason)) => {
                        if let Err(e) = self.mark_retry(claim, reason).await {
                            tracing::warn!(key = %claim.key, error = %e, "could not release the delivery record");
                        }
                        None
                    }
                }
            }
        });
        // The destination's last delivery goes out with the marks: one round trip after the
        // send instead of two, a quarter of a mail's time on the emulators.
        let note = async {
            if result.is_ok() {
                let (first, _) = &held[0];
                let (key, info) = &items[*first];
                let together = format!("{} notifications at once", held.len());
                let info = RecordInfo {
                    what: if held.len() > 1 { &together } else { info.what },
                    ..info.clone()
                };
                self.note_delivered(key, &info).await;
            }
        };
        let (unrecorded, ()) = tokio::join!(futures::future::join_all(marks), note);
        for ((i, claim), unrecorded) in held.iter().zip(unrecorded) {
            outcomes[*i] = Some(Ok(match &result {
                Ok(message_id) => Delivered::Sent {
                    message_id: message_id.clone(),
                    attempts: claim.attempts,
                },
                Err(SesError::Rejected(reason)) => Delivered::Rejected {
                    reason: reason.clone(),
                    unrecorded,
                },
                Err(SesError::Unavailable(reason)) => Delivered::Unavailable {
                    reason: reason.clone(),
                },
                Err(SesError::ServiceWide(reason)) => Delivered::ServiceWide {
                    reason: reason.clone(),
                },
            }));
        }
        outcomes.into_iter().flatten().collect()
    }

    /// Keeps `info` as its destination's last delivery (one small item per destination,
    /// overwritten only by a later one). A failure is logged: the delivery stands.
    pub async fn note_delivered(&self, key: &str, info: &RecordInfo<'_>) {
        if info.user.is_empty() || info.destination.is_empty() {
            return;
        }
        let now = now_ms();
        let channel = key.split('#').next().unwrap_or_default();
        let what: String = info.what.chars().take(300).collect();
        let out = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(last_delivery_key(info.user, info.destination)))
            .item("at", n(now))
            .item("channel", s(or_dash(channel)))
            .item("what", s(or_dash(&what)))
            .item("record", s(key))
            .item(
                "expires_at",
                n(crate::dynamo::now_secs() + LAST_DELIVERY_TTL_SECS),
            )
            .condition_expression("attribute_not_exists(pk) OR #at < :at")
            .expression_attribute_names("#at", "at")
            .expression_attribute_values(":at", n(now))
            .send()
            .await
            .map_err(|e| DynamoError::call("PutItem", &self.table, e));
        match out {
            Ok(_) => {}
            Err(e) if e.is_condition_failure() => {}
            Err(e) => tracing::warn!(key, error = %e, "the last delivery could not be noted"),
        }
    }

    /// The last deliveries of `user`'s `destinations` (one `BatchGetItem`; those never
    /// delivered to are absent).
    pub async fn last_deliveries(
        &self,
        user: &str,
        destinations: &[String],
    ) -> Result<Vec<LastDelivery>, DynamoError> {
        if destinations.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<Item> = destinations
            .iter()
            .take(100)
            .map(|d| Item::from([("pk".to_string(), s(last_delivery_key(user, d)))]))
            .collect();
        let out = self
            .client
            .batch_get_item()
            .request_items(
                &self.table,
                aws_sdk_dynamodb::types::KeysAndAttributes::builder()
                    .set_keys(Some(keys))
                    .build()
                    .expect("keys set"),
            )
            .send()
            .await
            .map_err(|e| DynamoError::call("BatchGetItem", &self.table, e))?;
        let prefix = format!("last#{user}#");
        let mut found: Vec<LastDelivery> = out
            .responses
            .and_then(|mut r| r.remove(&self.table))
            .unwrap_or_default()
            .iter()
            .filter_map(|item| {
                Some(LastDelivery {
                    destination: get_s(item, "pk")?.strip_prefix(&prefix)?.to_string(),
                    at_ms: get_n(item, "at")?,
                    channel: get_s(item, "channel").unwrap_or_default().to_string(),
                    what: get_s(item, "what").unwrap_or_default().to_string(),
                })
            })
            .collect();
        found.sort_by(|a, b| a.destination.cmp(&b.destination));
        Ok(found)
    }

    /// The record of `key`, if any.
    pub async fn get(&self, key: &str) -> Result<Option<Item>, DynamoError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| DynamoError::call("GetItem", &self.table, e))?;
        Ok(out.item)
    }

    /// The mail service reports (SES event publishing, a `Send` or `Delivery` event) that it
    /// accepted the delivery of `key` as `message_id`: a record still `sending` becomes `sent`,
    /// whoever holds the claim. This closes the window the module's description admits: a
    /// sender killed after SES accepted its mail leaves `sending`, and without this the mail
    /// would be sent again after the lease.
    pub async fn confirm_sent(
        &self,
        key: &str,
        message_id: &str,
    ) -> Result<Confirmed, DynamoError> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(key))
            .update_expression(
                "SET #state = :sent, finished_at = :now, message_id = :id, confirmed_by = :by",
            )
            .condition_expression("#state = :sending")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":sent", s(State::Sent.as_str()))
            .expression_attribute_values(":sending", s(State::Sending.as_str()))
            .expression_attribute_values(":now", n(now_ms()))
            .expression_attribute_values(":id", s(message_id))
            .expression_attribute_values(":by", s("ses-event"))
            .send()
            .await
            .map_err(|e| DynamoError::call("UpdateItem", &self.table, e));
        match out {
            Ok(_) => Ok(Confirmed::Now),
            Err(e) if e.is_condition_failure() => Ok(Confirmed::Unchanged),
            Err(e) => Err(e),
        }
    }

    /// The delivery was accepted by the mail service as `message_id`.
    pub async fn mark_sent(&self, claim: &ClaimToken, message_id: &str) -> Result<(), DynamoError> {
        self.finish(claim, State::Sent, "message_id", message_id)
            .await
    }

    /// The delivery was refused for good, for `reason`.
    pub async fn mark_rejected(&self, claim: &ClaimToken, reason: &str) -> Result<(), DynamoError> {
        let reason: String = reason.chars().take(1000).collect();
        self.finish(claim, State::Rejected, "reason", &reason).await
    }

    /// The attempt failed in a way worth retrying: the next claim may start at once.
    pub async fn mark_retry(&self, claim: &ClaimToken, reason: &str) -> Result<(), DynamoError> {
        let reason: String = reason.chars().take(1000).collect();
        self.finish(claim, State::Retry, "reason", &reason).await
    }

    async fn finish(
        &self,
        claim: &ClaimToken,
        state: State,
        attribute: &str,
        value: &str,
    ) -> Result<(), DynamoError> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(claim.key.as_str()))
            .update_expression("SET #state = :state, finished_at = :now, #attr = :value")
            .condition_expression("claim_token = :token")
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#attr", attribute)
            .expression_attribute_values(":state", s(state.as_str()))
            .expression_attribute_values(":now", n(now_ms()))
            .expression_attribute_values(":value", AttributeValue::S(value.to_string()))
            .expression_attribute_values(":token", s(claim.token.as_str()))
            .send()
            .await
            .map_err(|e| DynamoError::call("UpdateItem", &self.table, e));
        match out {
            Ok(_) => Ok(()),
            // Our lease ran out and another sender took over: its outcome stands.
            Err(e) if e.is_condition_failure() => {
                tracing::warn!(key = %claim.key, state = state.as_str(), "delivery record was taken over by another sender; not marked");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }
}

fn or_dash(v: &str) -> &str {
    if v.is_empty() {
        "-"
    } else {
        v
    }
}

/// A random claim token (128 bits, hex).
fn uuid_like() -> String {
    use rand::Rng;
    let v: u128 = rand::rng().random();
    format!("{v:032x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_tags_round_trip_and_refuse_strangers() {
        for key in [Channel::Email.key("0123abcd"), Channel::Digest.key("ff00")] {
            let tag = record_tag_value(&key);
            assert!(tag
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'));
            assert_eq!(record_key_of_tag(&tag), Some(key));
        }
        for stranger in ["", "email", "email-", "sms-1234", "email-a#b", "digest-a b"] {
            assert_eq!(record_key_of_tag(stranger), None, "{stranger:?}");
        }
        let keys = [Channel::Email.key("a1"), Channel::Email.key("b2")];
        let tags = record_tags(&[&keys[0], &keys[1]]);
        assert_eq!(
            tags,
            [
                ("fmn-record".to_string(), "email-a1".to_string()),
                ("fmn-record-2".to_string(), "email-b2".to_string()),
            ]
        );
        assert!(tags.iter().all(|(name, _)| is_record_tag(name)));
        for stranger in ["fmn-records", "fmn-record-", "fmn-record-x", "other"] {
            assert!(!is_record_tag(stranger), "{stranger}");
        }
    }
}
