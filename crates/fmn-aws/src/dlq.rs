//! The operators' side of the dead-letter queues (`fmn dlq`): looking at what waits there
//! without consuming it, and moving it back to the queue it came from.
//!
//! Looking is receiving: a received message is held (invisible) for a while and then released
//! again (`ChangeMessageVisibility` 0), never deleted. A redrive sends a message to its source
//! queue and deletes it from the dead-letter queue only after the send succeeded, so nothing is
//! lost; a crash between the two leaves a copy in both, and the repeat is harmless (job ids are
//! deterministic and delivery records drop what went out already; a match repeats the same
//! jobs).

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, Message, MessageSystemAttributeName,
    QueueAttributeName,
};

use crate::batch::{ORIGINAL_ID_ATTRIBUTE, REASON_ATTRIBUTE};
use crate::names::{QueueName, DLQ_TOOL_ACCESS};
use crate::sqs::{is_fifo, send_all, OutgoingMessage, SqsError};
use crate::AwsClients;

/// The component name `fmn dlq`'s clients are scoped to.
pub const COMPONENT: &str = "fmn dlq";
/// How long `list` and `show` hold what they received before releasing it.
pub const LOOK_HOLD: Duration = Duration::from_secs(30);
/// How long a redrive holds what it received and leaves (not selected, newer than the run):
/// the whole run, released at its end.
pub const REDRIVE_HOLD: Duration = Duration::from_secs(300);

#[derive(Debug, thiserror::Error)]
pub enum DlqError {
    #[error(transparent)]
    Sqs(#[from] SqsError),
    #[error("{0:?} is not a dead-letter queue")]
    NotDeadLetter(QueueName),
}

/// A message waiting in a dead-letter queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadLetter {
    /// Its id in the dead-letter queue.
    pub message_id: String,
    /// Its id in the queue it failed in (`fmn-original-message-id`), when fmn dead-lettered it;
    /// a message SQS moved after `maxReceiveCount` keeps its id and has none.
    pub original_id: Option<String>,
    /// Why it was dead-lettered (`fmn-failure-reason`); none when SQS moved it.
    pub reason: Option<String>,
    /// When it was sent (SQS's `SentTimestamp`), ms since the epoch.
    pub sent_at_ms: Option<u64>,
    pub body: String,
    /// Its message attributes (string values), ours included.
    pub attributes: BTreeMap<String, String>,
    /// SQS's attributes (`SentTimestamp`, `ApproximateReceiveCount`, …).
    pub system_attributes: BTreeMap<String, String>,
    receipt_handle: String,
}

impl DeadLetter {
    fn from_message(m: Message) -> Option<DeadLetter> {
        let attributes: BTreeMap<String, String> = m
            .message_attributes
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(name, a)| Some((name, a.string_value?)))
            .collect();
        let system_attributes: BTreeMap<String, String> = m
            .attributes
            .unwrap_or_default()
            .into_iter()
            .map(|(name, value)| (name.as_str().to_string(), value))
            .collect();
        Some(DeadLetter {
            message_id: m.message_id?,
            receipt_handle: m.receipt_handle?,
            original_id: attributes.get(ORIGINAL_ID_ATTRIBUTE).cloned(),
            reason: attributes.get(REASON_ATTRIBUTE).cloned(),
            sent_at_ms: system_attributes
                .get("SentTimestamp")
                .and_then(|t| t.parse().ok()),
            body: m.body.unwrap_or_default(),
            attributes,
            system_attributes,
        })
    }

    /// How long it has waited since it was sent, at `now_ms`.
    pub fn age(&self, now_ms: u64) -> Option<Duration> {
        self.sent_at_ms
            .map(|sent| Duration::from_millis(now_ms.saturating_sub(sent)))
    }

    /// Whether `id` names it: its id here or its original id.
    pub fn is_named(&self, id: &str) -> bool {
        self.message_id == id || self.original_id.as_deref() == Some(id)
    }

    /// The message as it goes back to its source: its body and attributes without the two
    /// the dead-lettering added (`fmn-encoding`, `fmn-job-id` stay: they say how to read it).
    /// The entry id is its id here, which a FIFO source takes as the deduplication id: a
    /// redrive repeated after a crash within SQS's five minutes is dropped by SQS.
    pub fn redriven(&self) -> OutgoingMessage {
        let mut message = OutgoingMessage::new(&self.message_id, self.body.as_str());
        for (name, value) in &self.attributes {
            if name != REASON_ATTRIBUTE && name != ORIGINAL_ID_ATTRIBUTE {
                message = message.with_attribute(name.as_str(), value.as_str());
            }
        }
        message
    }
}

/// How many messages a queue holds, as SQS estimates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Depth {
    pub visible: u64,
    /// Received by someone and not yet deleted or released.
    pub in_flight: u64,
}

/// What a redrive does.
#[derive(Clone, Debug, Default)]
pub struct RedriveOptions {
    /// Only these messages (their id in the dead-letter queue or their original id); all when
    /// empty.
    pub ids: Vec<String>,
    /// Say what would move; move nothing.
    pub dry_run: bool,
}

/// One step of a redrive, for progress output.
#[derive(Debug)]
pub enum RedriveStep<'a> {
    Moved(&'a DeadLetter),
    WouldMove(&'a DeadLetter),
    Failed(&'a DeadLetter, &'a str),
}

/// What a redrive did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RedriveReport {
    pub moved: usize,
    pub would_move: usize,
    /// Message id and why.
    pub failed: Vec<(String, String)>,
    /// Messages dead-lettered after the run started, left alone (a message that fails again
    /// at once must not cycle between the queues within one run).
    pub left_newer: usize,
    /// Messages seen and not selected by `--id`.
    pub not_selected: usize,
    /// Ids asked for and not found.
    pub not_found: Vec<String>,
}

/// One dead-letter queue and its source.
#[derive(Clone, Debug)]
pub struct DeadLetters {
    sqs: aws_sdk_sqs::Client,
    pub queue: QueueName,
    pub url: String,
    pub source: QueueName,
    pub source_url: String,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

impl DeadLetters {
    /// The dead-letter queue `queue` and its source, through clients scoped to
    /// [`DLQ_TOOL_ACCESS`].
    pub async fn open(clients: &AwsClients, queue: QueueName) -> Result<Self, DlqError> {
        let source = queue
            .dead_letter_source()
            .ok_or(DlqError::NotDeadLetter(queue))?;
        let clients = clients.scoped_to(COMPONENT, DLQ_TOOL_ACCESS);
        Ok(Self {
            sqs: clients.sqs.clone(),
            queue,
            url: clients.queue_url(queue).await?,
            source,
            source_url: clients.queue_url(source).await?,
        })
    }

    /// A FIFO queue hands out its one message group's next messages only once the ones before
    /// are deleted: looking reaches its first ten.
    pub fn is_fifo(&self) -> bool {
        is_fifo(&self.url)
    }

    pub async fn depth(&self) -> Result<Depth, DlqError> {
        let out = self
            .sqs
            .get_queue_attributes()
            .queue_url(&self.url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .map_err(|e| SqsError::call("GetQueueAttributes", &self.url, e))?;
        let attrs = out.attributes.unwrap_or_default();
        let get = |a: QueueAttributeName| {
            attrs
                .get(&a)
                .and_then(|v| v.parse().ok())
                .unwrap_or_default()
        };
        Ok(Depth {
            visible: get(QueueAttributeName::ApproximateNumberOfMessages),
            in_flight: get(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        })
    }

    /// One `ReceiveMessage` of at most `max` (≤ 10), holding them for `hold`.
    async fn receive(&self, max: usize, hold: Duration) -> Result<Vec<DeadLetter>, DlqError> {
        let out = self
            .sqs
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(max.clamp(1, 10) as i32)
            .visibility_timeout(hold.as_secs().max(1) as i32)
            // A short long-poll: asks every SQS server, so an empty answer means empty.
            .wait_time_seconds(1)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(|e| SqsError::call("ReceiveMessage", &self.url, e))?;
        Ok(out
            .messages
            .unwrap_or_default()
            .into_iter()
            .filter_map(DeadLetter::from_message)
            .collect())
    }

    /// Makes held messages visible again at once. A failure is logged, not returned: the
    /// message comes back by itself when its hold ends.
    pub async fn release(&self, letters: &[DeadLetter]) {
        for chunk in letters.chunks(10) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, l)| {
                    ChangeMessageVisibilityBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(&l.receipt_handle)
                        .visibility_timeout(0)
                        .build()
                        .expect("id and receipt handle are set")
                })
                .collect();
            let result = self
                .sqs
                .change_message_visibility_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await;
            match result {
                Ok(out) if out.failed.is_empty() => {}
                Ok(out) => {
                    tracing::warn!(queue = %self.url, failed = out.failed.len(), "some messages were not released; they come back when their hold ends")
                }
                Err(e) => {
                    tracing::warn!(queue = %self.url, error = %aws_sdk_sqs::error::DisplayErrorContext(&e), "releasing messages failed; they come back when their hold ends")
                }
            }
        }
    }

    /// Up to `limit` waiting messages, oldest first as SQS hands them out; none is consumed
    /// (each is held for [`LOOK_HOLD`] while the queue is read, then released).
    pub async fn peek(&self, limit: usize) -> Result<Vec<DeadLetter>, DlqError> {
        let mut held: Vec<DeadLetter> = Vec::new();
        let result = self.peek_into(limit, &mut held).await;
        self.release(&held).await;
        result?;
        held.sort_by_key(|l| l.sent_at_ms);
        Ok(held)
    }

    async fn peek_into(&self, limit: usize, held: &mut Vec<DeadLetter>) -> Result<(), DlqError> {
        let mut seen = HashSet::new();
        while held.len() < limit {
            let got = self.receive(limit - held.len(), LOOK_HOLD).await?;
            let mut fresh = 0;
            for letter in got {
                if seen.insert(letter.message_id.clone()) {
                    fresh += 1;
                    held.push(letter);
                } else {
                    // Seen already (its hold ran out): release this copy too.
                    self.release(std::slice::from_ref(&letter)).await;
                }
            }
            if fresh == 0 {
                break;
            }
        }
        Ok(())
    }

    /// The waiting message `id` names (its id here or its original id), if found among the
    /// first `limit`; nothing is consumed.
    pub async fn find(&self, id: &str, limit: usize) -> Result<Option<DeadLetter>, DlqError> {
        Ok(self.peek(limit).await?.into_iter().find(|l| l.is_named(id)))
    }

    /// Moves messages back to the source queue, one at a time: send, then delete here. What
    /// it leaves (not selected, newer than the run, failed) is held during the run and
    /// released at its end. `step` is called for every message moved, that would move, or
    /// failed.
    pub async fn redrive(
        &self,
        options: &RedriveOptions,
        mut step: impl FnMut(RedriveStep<'_>),
    ) -> Result<RedriveReport, DlqError> {
        let started_ms = now_ms();
        let mut report = RedriveReport::default();
        let mut held: Vec<DeadLetter> = Vec::new();
        let mut seen = HashSet::new();
        let mut found: HashSet<&str> = HashSet::new();
        let result: Result<(), DlqError> = async {
            loop {
                if !options.ids.is_empty() && found.len() == options.ids.len() {
                    break;
                }
                let got = self.receive(10, REDRIVE_HOLD).await?;
                let mut fresh = 0;
                for letter in got {
                    if !seen.insert(letter.message_id.clone()) {
                        held.push(letter);
                        continue;
                    }
                    fresh += 1;
                    let wanted = options.ids.iter().find(|id| letter.is_named(id));
                    if !options.ids.is_empty() && wanted.is_none() {
                        report.not_selected += 1;
                        held.push(letter);
                        continue;
                    }
                    if let Some(id) = wanted {
                        found.insert(id.as_str());
                    }
                    if letter.sent_at_ms.is_some_and(|t| t > started_ms) {
                        report.left_newer += 1;
                        held.push(letter);
                        continue;
                    }
                    if options.dry_run {
                        report.would_move += 1;
                        step(RedriveStep::WouldMove(&letter));
                        held.push(letter);
                        continue;
                    }
                    match self.move_back(&letter).await {
                        Ok(()) => {
                            report.moved += 1;
                            step(RedriveStep::Moved(&letter));
                        }
                        Err(reason) => {
                            step(RedriveStep::Failed(&letter, &reason));
                            report.failed.push((letter.message_id.clone(), reason));
                            // A send that failed leaves the message here; one sent and not
                            // deleted is in both queues, and the delete is retried next time.
                            held.push(letter);
                        }
                    }
                }
                if fresh == 0 {
                    break;
                }
            }
            Ok(())
        }
        .await;
        self.release(&held).await;
        result?;
        report.not_found = options
            .ids
            .iter()
            .filter(|id| !found.contains(id.as_str()))
            .cloned()
            .collect();
        Ok(report)
    }

    /// Sends one message to the source queue, then deletes it here; the error says which step
    /// failed.
    async fn move_back(&self, letter: &DeadLetter) -> Result<(), String> {
        send_all(&self.sqs, &self.source_url, &[letter.redriven()])
            .await
            .map_err(|e| format!("not sent back: {e}"))?;
        self.sqs
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(&letter.receipt_handle)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                format!(
                    "sent back, but not deleted from the dead-letter queue (a later redrive sends it again, which is harmless): {}",
                    SqsError::call("DeleteMessage", &self.url, e)
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sqs::types::MessageAttributeValue;

    fn message() -> Message {
        let attr = |v: &str| {
            MessageAttributeValue::builder()
                .data_type("String")
                .string_value(v)
                .build()
                .unwrap()
        };
        Message::builder()
            .message_id("dlq-1")
            .receipt_handle("rh")
            .body("{}")
            .message_attributes(REASON_ATTRIBUTE, attr("refused"))
            .message_attributes(ORIGINAL_ID_ATTRIBUTE, attr("orig-1"))
            .message_attributes("fmn-encoding", attr("gzip+base64"))
            .attributes(MessageSystemAttributeName::SentTimestamp, "1000")
            .build()
    }

    #[test]
    fn a_dead_letter_reads_its_reason_and_original_id() {
        let l = DeadLetter::from_message(message()).unwrap();
        assert_eq!(l.reason.as_deref(), Some("refused"));
        assert_eq!(l.original_id.as_deref(), Some("orig-1"));
        assert_eq!(l.age(61_000), Some(Duration::from_secs(60)));
        assert!(l.is_named("dlq-1") && l.is_named("orig-1") && !l.is_named("x"));
    }

    #[test]
    fn a_redriven_message_keeps_its_own_attributes_only() {
        let out = DeadLetter::from_message(message()).unwrap().redriven();
        assert_eq!(out.id, "dlq-1");
        assert_eq!(
            out.attributes,
            [("fmn-encoding".to_string(), "gzip+base64".to_string())]
        );
    }
}
