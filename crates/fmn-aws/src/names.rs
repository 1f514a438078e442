//! The names of every resource, as the code knows them. `infra/template.yaml` must describe
//! exactly these (a test checks it); the physical name is `<prefix>-<suffix>`.

use std::fmt;

/// Environment variable holding the prefix of every physical resource name.
pub const PREFIX_VAR: &str = "FMN_RESOURCE_PREFIX";
/// Prefix used when `FMN_RESOURCE_PREFIX` is not set.
pub const DEFAULT_PREFIX: &str = "fmn";

/// A queue of the system.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum QueueName {
    Ingest,
    IngestDeadLetter,
    Email,
    EmailDeadLetter,
    Irc,
    IrcDeadLetter,
    Matrix,
    MatrixDeadLetter,
    /// What SES reports about sent mail (its event publishing, through SNS).
    MailEvents,
    MailEventsDeadLetter,
}

impl QueueName {
    pub const ALL: [QueueName; 10] = [
        QueueName::Ingest,
        QueueName::IngestDeadLetter,
        QueueName::Email,
        QueueName::EmailDeadLetter,
        QueueName::Irc,
        QueueName::IrcDeadLetter,
        QueueName::Matrix,
        QueueName::MatrixDeadLetter,
        QueueName::MailEvents,
        QueueName::MailEventsDeadLetter,
    ];

    /// The resource's logical id in the template.
    pub fn logical_id(self) -> &'static str {
        match self {
            QueueName::Ingest => "IngestQueue",
            QueueName::IngestDeadLetter => "IngestDeadLetterQueue",
            QueueName::Email => "EmailQueue",
            QueueName::EmailDeadLetter => "EmailDeadLetterQueue",
            QueueName::Irc => "IrcQueue",
            QueueName::IrcDeadLetter => "IrcDeadLetterQueue",
            QueueName::Matrix => "MatrixQueue",
            QueueName::MatrixDeadLetter => "MatrixDeadLetterQueue",
            QueueName::MailEvents => "MailEventsQueue",
            QueueName::MailEventsDeadLetter => "MailEventsDeadLetterQueue",
        }
    }

    pub fn suffix(self) -> &'static str {
        match self {
            QueueName::Ingest => "ingest",
            QueueName::IngestDeadLetter => "ingest-dlq",
            QueueName::Email => "email",
            QueueName::EmailDeadLetter => "email-dlq",
            // FIFO, one message group: IRC lines go out in order through one bot at a time.
            QueueName::Irc => "irc.fifo",
            QueueName::IrcDeadLetter => "irc-dlq.fifo",
            // FIFO, one message group: a user's messages arrive in order, and one bot at a
            // time creates a DM room (never two rooms for one user).
            QueueName::Matrix => "matrix.fifo",
            QueueName::MatrixDeadLetter => "matrix-dlq.fifo",
            QueueName::MailEvents => "mail-events",
            QueueName::MailEventsDeadLetter => "mail-events-dlq",
        }
    }

    /// Where SQS moves this queue's poison messages, if it has a dead-letter queue.
    pub fn dead_letter(self) -> Option<QueueName> {
        match self {
            QueueName::Ingest => Some(QueueName::IngestDeadLetter),
            QueueName::Email => Some(QueueName::EmailDeadLetter),
            QueueName::Irc => Some(QueueName::IrcDeadLetter),
            QueueName::Matrix => Some(QueueName::MatrixDeadLetter),
            QueueName::MailEvents => Some(QueueName::MailEventsDeadLetter),
            _ => None,
        }
    }

    /// The queue whose poison messages this dead-letter queue holds: where a redrive sends
    /// them back.
    pub fn dead_letter_source(self) -> Option<QueueName> {
        Self::ALL
            .into_iter()
            .find(|q| q.dead_letter() == Some(self))
    }

    /// Every dead-letter queue.
    pub fn dead_letter_queues() -> impl Iterator<Item = QueueName> {
        Self::ALL
            .into_iter()
            .filter(|q| q.dead_letter_source().is_some())
    }

    pub fn from_logical_id(id: &str) -> Option<QueueName> {
        Self::ALL.into_iter().find(|q| q.logical_id() == id)
    }

    /// The variable the template sets to this queue's URL (`!Ref` of the queue), so a function
    /// never asks SQS for it (`GetQueueUrl`) at cold start. Unset (local runs): asked once.
    pub fn url_variable(self) -> &'static str {
        match self {
            QueueName::Ingest => "FMN_INGEST_QUEUE_URL",
            QueueName::IngestDeadLetter => "FMN_INGEST_DLQ_URL",
            QueueName::Email => "FMN_EMAIL_QUEUE_URL",
            QueueName::EmailDeadLetter => "FMN_EMAIL_DLQ_URL",
            QueueName::Irc => "FMN_IRC_QUEUE_URL",
            QueueName::IrcDeadLetter => "FMN_IRC_DLQ_URL",
            QueueName::Matrix => "FMN_MATRIX_QUEUE_URL",
            QueueName::MatrixDeadLetter => "FMN_MATRIX_DLQ_URL",
            QueueName::MailEvents => "FMN_MAIL_EVENTS_QUEUE_URL",
            QueueName::MailEventsDeadLetter => "FMN_MAIL_EVENTS_DLQ_URL",
        }
    }
}

/// A DynamoDB table of the system.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TableName {
    Preferences,
    DigestItems,
    DeliveryRecords,
    RecentMessages,
    Ownership,
    Activity,
}

impl TableName {
    pub const ALL: [TableName; 6] = [
        TableName::Preferences,
        TableName::DigestItems,
        TableName::DeliveryRecords,
        TableName::RecentMessages,
        TableName::Ownership,
        TableName::Activity,
    ];

    pub fn logical_id(self) -> &'static str {
        match self {
            TableName::Preferences => "PreferencesTable",
            TableName::DigestItems => "DigestItemsTable",
            TableName::DeliveryRecords => "DeliveryRecordsTable",
            TableName::RecentMessages => "RecentMessagesTable",
            TableName::Ownership => "OwnershipTable",
            TableName::Activity => "ActivityTable",
        }
    }

    pub fn suffix(self) -> &'static str {
        match self {
            TableName::Preferences => "preferences",
            TableName::DigestItems => "digest-items",
            TableName::DeliveryRecords => "delivery-records",
            TableName::RecentMessages => "recent-messages",
            TableName::Ownership => "ownership",
            TableName::Activity => "activity",
        }
    }

    pub fn from_logical_id(id: &str) -> Option<TableName> {
        Self::ALL.into_iter().find(|t| t.logical_id() == id)
    }

    /// The variable the template sets to this table's name (`!Ref` of the table). Unset
    /// (local runs): `<prefix>-<suffix>`.
    pub fn name_variable(self) -> &'static str {
        match self {
            TableName::Preferences => "FMN_PREFERENCES_TABLE",
            TableName::DigestItems => "FMN_DIGEST_ITEMS_TABLE",
            TableName::DeliveryRecords => "FMN_DELIVERY_RECORDS_TABLE",
            TableName::RecentMessages => "FMN_RECENT_MESSAGES_TABLE",
            TableName::Ownership => "FMN_OWNERSHIP_TABLE",
            TableName::Activity => "FMN_ACTIVITY_TABLE",
        }
    }
}

/// A global secondary index of a table (the template declares exactly these; a test compares
/// them). Both serve filter previews (`crate::preview`): stored messages by topic and UTC day,
/// and by day alone, each ordered by arrival (`time_id` = `<ms since the epoch, 15 digits>#<id>`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IndexName {
    /// `topic_day` = `<full topic>#<days since the epoch>`.
    MessagesByTopicDay,
    /// `msg_day` = `<days since the epoch>`.
    MessagesByDay,
}

impl IndexName {
    pub const ALL: [IndexName; 2] = [IndexName::MessagesByTopicDay, IndexName::MessagesByDay];

    pub fn table(self) -> TableName {
        TableName::RecentMessages
    }

    pub fn name(self) -> &'static str {
        match self {
            IndexName::MessagesByTopicDay => "by-topic-day",
            IndexName::MessagesByDay => "by-day",
        }
    }

    pub fn hash_key(self) -> &'static str {
        match self {
            IndexName::MessagesByTopicDay => "topic_day",
            IndexName::MessagesByDay => "msg_day",
        }
    }

    pub fn range_key(self) -> &'static str {
        "time_id"
    }
}

/// What a function does with a resource. Each function's list ([`FunctionName::access`]) is
/// what the template grants it, exactly (a test compares them), and what its clients let it
/// touch ([`crate::AwsClients::scoped`]): the code's use, the template's policy and the
/// variables it is given are one list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Access {
    /// Receives and deletes (its event source mapping).
    Poll(QueueName),
    /// Sends messages to it.
    Send(QueueName),
    /// Reads items (get, query, scan).
    Read(TableName),
    /// Reads and writes items.
    ReadWrite(TableName),
    /// Puts items, reads none.
    Put(TableName),
    /// Sends mail through SES v2 from the configured identity.
    SendMail,
    /// Reads a secret from SSM Parameter Store at cold start (`crate::secrets`).
    ReadSecret(crate::secrets::Secret),
}

impl Access {
    pub fn queue(self) -> Option<QueueName> {
        match self {
            Access::Poll(q) | Access::Send(q) => Some(q),
            _ => None,
        }
    }

    pub fn table(self) -> Option<TableName> {
        match self {
            Access::Read(t) | Access::ReadWrite(t) | Access::Put(t) => Some(t),
            _ => None,
        }
    }
}

/// What the ingest bridge (a long-running process, not a Lambda) uses: the template's
/// `IngestBridgePolicy` grants exactly this (a test compares them).
pub const INGEST_BRIDGE_ACCESS: &[Access] = &[
    Access::Send(QueueName::Ingest),
    // Bodies too large for SQS (fmn_aws::ingest_wire).
    Access::Put(TableName::RecentMessages),
];

/// What `fmn dlq` (an operator's command, run with the operator's credentials: the template
/// has no role for it, so nothing to compare with) uses: it reads and deletes the dead-letter
/// queues and sends their messages back to their sources. Its clients are scoped to this list.
pub const DLQ_TOOL_ACCESS: &[Access] = &[
    Access::Poll(QueueName::IngestDeadLetter),
    Access::Send(QueueName::Ingest),
    Access::Poll(QueueName::EmailDeadLetter),
    Access::Send(QueueName::Email),
    Access::Poll(QueueName::IrcDeadLetter),
    Access::Send(QueueName::Irc),
    Access::Poll(QueueName::MatrixDeadLetter),
    Access::Send(QueueName::Matrix),
    Access::Poll(QueueName::MailEventsDeadLetter),
    Access::Send(QueueName::MailEvents),
];

/// What `fmn replay` reads itself (operator's credentials, as [`DLQ_TOOL_ACCESS`]): the stored
/// messages. It routes them with the match function's code, whose clients are scoped to
/// [`FunctionName::Match`]'s list; an operator policy for it is the union of the two.
pub const REPLAY_TOOL_ACCESS: &[Access] = &[Access::Read(TableName::RecentMessages)];

/// A Lambda function of the system (the ingest-bridge is a long-running process, not a Lambda).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FunctionName {
    Match,
    DeliverEmail,
    DeliverIrc,
    DeliverMatrix,
    Digest,
    WebApi,
    MailEvents,
    /// Copies ownership, groups and accounts from FASJSON and dist-git (hourly).
    Sync,
}

impl FunctionName {
    pub const ALL: [FunctionName; 8] = [
        FunctionName::Match,
        FunctionName::DeliverEmail,
        FunctionName::DeliverIrc,
        FunctionName::DeliverMatrix,
        FunctionName::Digest,
        FunctionName::WebApi,
        FunctionName::MailEvents,
        FunctionName::Sync,
    ];

    pub fn logical_id(self) -> &'static str {
        match self {
            FunctionName::Match => "MatchFunction",
            FunctionName::DeliverEmail => "DeliverEmailFunction",
            FunctionName::DeliverIrc => "DeliverIrcFunction",
            FunctionName::DeliverMatrix => "DeliverMatrixFunction",
            FunctionName::Digest => "DigestFunction",
            FunctionName::WebApi => "WebApiFunction",
            FunctionName::MailEvents => "MailEventsFunction",
            FunctionName::Sync => "SyncFunction",
        }
    }

    /// The binary `cargo lambda build` packages for this function.
    pub fn binary(self) -> &'static str {
        match self {
            FunctionName::Match => "fmn-match",
            FunctionName::DeliverEmail => "fmn-deliver-email",
            FunctionName::DeliverIrc => "fmn-deliver-irc",
            FunctionName::DeliverMatrix => "fmn-deliver-matrix",
            FunctionName::Digest => "fmn-digest",
            FunctionName::WebApi => "fmn-web-api",
            FunctionName::MailEvents => "fmn-mail-events",
            FunctionName::Sync => "fmn-sync",
        }
    }

    pub fn suffix(self) -> &'static str {
        &self.binary()["fmn-".len()..]
    }

    /// Every resource the function uses, and how.
    pub fn access(self) -> &'static [Access] {
        use crate::secrets::Secret;
        use Access::*;
        match self {
            FunctionName::Match => &[
                Poll(QueueName::Ingest),
                Send(QueueName::IngestDeadLetter),
                Send(QueueName::Email),
                Send(QueueName::Irc),
                Send(QueueName::Matrix),
                // One-shot filters are switched off after they fire.
                ReadWrite(TableName::Preferences),
                // Ownership, membership and account changes announced on the bus are written.
                ReadWrite(TableName::Ownership),
                ReadWrite(TableName::DigestItems),
                // A digest add's idempotency item lives with the delivery records.
                ReadWrite(TableName::DeliveryRecords),
                ReadWrite(TableName::RecentMessages),
                ReadWrite(TableName::Activity),
            ],
            FunctionName::DeliverEmail => &[
                Poll(QueueName::Email),
                Send(QueueName::EmailDeadLetter),
                // Addresses SES refused are reported to the destination-health writer.
                Send(QueueName::MailEvents),
                ReadWrite(TableName::DeliveryRecords),
                SendMail,
                ReadSecret(Secret::UnsubscribeKey),
            ],
            FunctionName::DeliverIrc => &[
                Poll(QueueName::Irc),
                Send(QueueName::IrcDeadLetter),
                // Nicks refused as unregistered are reported to the destination-health writer.
                Send(QueueName::MailEvents),
                ReadWrite(TableName::DeliveryRecords),
                ReadSecret(Secret::IrcPassword),
            ],
            FunctionName::DeliverMatrix => &[
                Poll(QueueName::Matrix),
                Send(QueueName::MatrixDeadLetter),
                // Delivery records, and each user's direct-message room.
                ReadWrite(TableName::DeliveryRecords),
                ReadSecret(Secret::MatrixToken),
            ],
            FunctionName::Digest => &[
                // IRC lines held through quiet hours are queued when they end.
                Send(QueueName::Irc),
                // A Matrix digest is one message, sent by deliver-matrix.
                Send(QueueName::Matrix),
                ReadWrite(TableName::DigestItems),
                ReadWrite(TableName::DeliveryRecords),
                // The destination is re-read at send time (confirmed, same address).
                Read(TableName::Preferences),
                SendMail,
                ReadSecret(Secret::UnsubscribeKey),
            ],
            FunctionName::WebApi => &[
                ReadWrite(TableName::Preferences),
                Read(TableName::RecentMessages),
                Read(TableName::Activity),
                Read(TableName::Ownership),
                Read(TableName::DeliveryRecords),
                // Pending digest items are purged with their destination.
                ReadWrite(TableName::DigestItems),
                // IRC and Matrix confirmations go out as jobs of their queues.
                Send(QueueName::Irc),
                Send(QueueName::Matrix),
                SendMail,
                ReadSecret(Secret::UnsubscribeKey),
            ],
            FunctionName::MailEvents => &[
                Poll(QueueName::MailEvents),
                Send(QueueName::MailEventsDeadLetter),
                // SES's word that a mail went out settles its record.
                ReadWrite(TableName::DeliveryRecords),
                // Bounces, complaints and given-up deliveries go in the destination's health.
                ReadWrite(TableName::Preferences),
                // A stopped destination's notice goes to another of the user's addresses.
                Send(QueueName::Email),
                // A bouncing `@fedoraproject.org` alias falls back to the FAS address.
                Read(TableName::Ownership),
            ],
            FunctionName::Sync => &[
                ReadWrite(TableName::Ownership),
                // Accounts whose FAS account is locked are disabled.
                ReadWrite(TableName::Preferences),
                // FASJSON authenticates with Kerberos.
                ReadSecret(Secret::FasjsonKeytab),
            ],
        }
    }

    /// The queue this function consumes, if it is driven by SQS.
    pub fn source_queue(self) -> Option<QueueName> {
        match self {
            FunctionName::Match => Some(QueueName::Ingest),
            FunctionName::DeliverEmail => Some(QueueName::Email),
            FunctionName::DeliverIrc => Some(QueueName::Irc),
            FunctionName::DeliverMatrix => Some(QueueName::Matrix),
            FunctionName::MailEvents => Some(QueueName::MailEvents),
            FunctionName::Digest | FunctionName::WebApi | FunctionName::Sync => None,
        }
    }
}

/// Physical names of resources, derived from one prefix (tables: unless the template names
/// them, see [`TableName::name_variable`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceNames {
    prefix: String,
    tables: std::collections::BTreeMap<TableName, String>,
}

impl ResourceNames {
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
            tables: Default::default(),
        }
    }

    /// From `FMN_RESOURCE_PREFIX` (default `fmn`) and the table-name variables.
    pub fn from_env() -> Self {
        Self::from_vars(&crate::vars::Vars::from_env())
    }

    pub fn from_vars(vars: &crate::vars::Vars<'_>) -> Self {
        let mut names = Self::new(vars.text_or(PREFIX_VAR, DEFAULT_PREFIX));
        for table in TableName::ALL {
            if let Some(name) = vars.text(table.name_variable()) {
                names.tables.insert(table, name);
            }
        }
        names
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn queue(&self, queue: QueueName) -> String {
        format!("{}-{}", self.prefix, queue.suffix())
    }

    pub fn table(&self, table: TableName) -> String {
        match self.tables.get(&table) {
            Some(name) => name.clone(),
            None => format!("{}-{}", self.prefix, table.suffix()),
        }
    }

    pub fn function(&self, function: FunctionName) -> String {
        format!("{}-{}", self.prefix, function.suffix())
    }

    pub fn digest_schedule(&self) -> String {
        format!("{}-digest-schedule", self.prefix)
    }

    pub fn sync_schedule(&self) -> String {
        format!("{}-sync-schedule", self.prefix)
    }
}

impl Default for ResourceNames {
    fn default() -> Self {
        Self::new(DEFAULT_PREFIX)
    }
}

impl fmt::Display for ResourceNames {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn physical_names_carry_the_prefix() {
        let names = ResourceNames::new("t1");
        assert_eq!(names.queue(QueueName::IngestDeadLetter), "t1-ingest-dlq");
        assert_eq!(names.table(TableName::DigestItems), "t1-digest-items");
        assert_eq!(
            names.function(FunctionName::DeliverEmail),
            "t1-deliver-email"
        );
    }

    #[test]
    fn every_dead_letter_queue_leads_back_to_its_source() {
        let dlqs: Vec<_> = QueueName::dead_letter_queues().collect();
        assert_eq!(dlqs.len(), 5);
        for dlq in dlqs {
            let source = dlq.dead_letter_source().unwrap();
            assert_eq!(source.dead_letter(), Some(dlq));
            // `fmn dlq` may read the one and send to the other.
            assert!(DLQ_TOOL_ACCESS.contains(&Access::Poll(dlq)));
            assert!(DLQ_TOOL_ACCESS.contains(&Access::Send(source)));
        }
        assert_eq!(QueueName::Irc.dead_letter_source(), None);
    }

    #[test]
    fn every_source_queue_has_a_dead_letter_queue() {
        for f in FunctionName::ALL {
            if let Some(q) = f.source_queue() {
                assert!(q.dead_letter().is_some(), "{q:?} has no DLQ");
            }
        }
    }
}
