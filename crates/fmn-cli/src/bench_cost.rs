//! What a message costs on AWS: the requests a bench run made, counted by the clients'
//! interceptor (`fmn_aws::request_count`), per message and stage, and the monthly bill they
//! come to at Fedora's volume, from AWS's public list prices written here with their date.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use fmn_aws::request_count::{Key, Tally};

/// When and where the prices below were read: AWS's public pricing pages, us-east-1, list
/// prices (no free tier, no savings plan). Check the pages before budgeting.
pub const PRICES_AS_OF: &str = "2025-06 list prices, us-east-1";
/// SQS, per million requests (a request is each 64 KiB chunk of a payload).
pub const SQS_STANDARD_PER_MILLION: f64 = 0.40;
pub const SQS_FIFO_PER_MILLION: f64 = 0.50;
/// DynamoDB on demand, per million write / read request units.
pub const DYNAMODB_WRITE_PER_MILLION: f64 = 0.625;
pub const DYNAMODB_READ_PER_MILLION: f64 = 0.125;
/// SES, per 1,000 mails (outbound, no attachments).
pub const SES_PER_THOUSAND: f64 = 0.10;
/// Lambda on arm64: per million requests, per GB-second.
pub const LAMBDA_PER_MILLION: f64 = 0.20;
pub const LAMBDA_ARM_PER_GB_SECOND: f64 = 0.000_013_333_4;

/// Fedora's volume (assumptions, as in the README's cost table): bus messages a month
/// (60,000 a day), immediate mails a month, for ~80,000 accounts.
pub const FEDORA_MESSAGES_PER_MONTH: f64 = 60_000.0 * 30.0;
pub const FEDORA_MAILS_PER_MONTH: f64 = 1_000_000.0;
pub const FEDORA_USERS: u64 = 80_000;
const MINUTES_PER_MONTH: f64 = 30.0 * 24.0 * 60.0;

/// What drives a stage's requests, hence how it scales to a month.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Driver {
    /// Per bus message: the bridge, the match function and its event source.
    Message,
    /// Per immediate mail: deliver-email and its event source.
    Mail,
    /// Per minute of running: the digest schedule, whatever the traffic.
    Minute,
    /// Anything else (the IRC and Matrix senders, the web-api): per message.
    Other,
}

fn driver(stage: &str) -> Driver {
    let function = stage.trim_end_matches(" event source");
    match function {
        "fmn-ingest-bridge" | "fmn-match" => Driver::Message,
        "fmn-deliver-email" => Driver::Mail,
        "fmn-digest" => Driver::Minute,
        _ => Driver::Other,
    }
}

/// What one run measured.
pub struct Measured<'a> {
    pub counts: &'a BTreeMap<Key, Tally>,
    /// Resource-name prefix, cut from table and queue names.
    pub prefix: &'a str,
    pub messages: usize,
    pub mails: usize,
    pub elapsed: Duration,
    /// `MemorySize` (MB) by function binary, from the template.
    pub memory_mb: &'a BTreeMap<String, u32>,
}

impl Measured<'_> {
    fn per(&self, stage: &str) -> f64 {
        match driver(stage) {
            Driver::Mail => self.mails.max(1) as f64,
            Driver::Minute => (self.elapsed.as_secs_f64() / 60.0).max(1e-9),
            _ => self.messages.max(1) as f64,
        }
    }

    fn monthly(&self, stage: &str) -> f64 {
        match driver(stage) {
            Driver::Mail => FEDORA_MAILS_PER_MONTH,
            Driver::Minute => MINUTES_PER_MONTH,
            _ => FEDORA_MESSAGES_PER_MONTH,
        }
    }

    fn resource(&self, resource: &str) -> String {
        resource
            .split('+')
            .map(|r| {
                r.strip_prefix(self.prefix)
                    .map_or(r, |r| r.trim_start_matches('-'))
            })
            .collect::<Vec<_>>()
            .join("+")
    }
}

/// The per-unit table: each stage's requests per message (per mail for the mail sender, per
/// minute for the digest schedule).
pub fn per_message_table(m: &Measured) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nAWS requests per unit of work (counted by the SDK clients' interceptor; {} messages, {} mails, {:.0} s)",
        m.messages,
        m.mails,
        m.elapsed.as_secs_f64()
    );
    let _ = writeln!(
        out,
        "{:<34} {:<30} {:<22} {:>9} {:>8} {:>8}  per",
        "stage", "operation", "resource", "requests", "RCU", "WCU"
    );
    for (k, t) in m.counts {
        let per = m.per(&k.stage);
        let unit = match driver(&k.stage) {
            Driver::Mail => "mail",
            Driver::Minute => "minute",
            _ => "message",
        };
        let busy = if k.service == "lambda" {
            format!(
                " ({:.0} ms each)",
                t.busy.as_secs_f64() * 1000.0 / t.requests.max(1) as f64
            )
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "{:<34} {:<30} {:<22} {:>9.3} {:>8.3} {:>8.3}  {unit}{busy}",
            k.stage,
            format!("{}:{}", k.service, k.operation),
            m.resource(&k.resource),
            t.billed_requests as f64 / per,
            t.read_units / per,
            t.write_units / per,
        );
    }
    out
}

/// The bill's lines: (service, what is counted, dollars a month).
pub fn monthly_bill(m: &Measured) -> Vec<(String, String, f64)> {
    let (mut sqs_std, mut sqs_fifo, mut rru, mut wru, mut ses) = (0.0, 0.0, 0.0, 0.0, 0.0);
    let (mut invocations, mut gb_seconds) = (0.0, 0.0);
    for (k, t) in m.counts {
        let scale = m.monthly(&k.stage) / m.per(&k.stage);
        match k.service.as_str() {
            "sqs" if k.resource.ends_with(".fifo") => sqs_fifo += t.billed_requests as f64 * scale,
            "sqs" => sqs_std += t.billed_requests as f64 * scale,
            "dynamodb" => {
                // A write refused by its condition is billed as one write unit at least, and
                // the error carries no consumed capacity.
                let refused = if k.operation.ends_with("Item") && k.operation != "GetItem" {
                    t.failed as f64
                } else {
                    0.0
                };
                rru += t.read_units * scale;
                wru += (t.write_units + refused) * scale;
            }
            "sesv2" if k.operation == "SendEmail" => ses += t.requests as f64 * scale,
            "lambda" => {
                invocations += t.requests as f64 * scale;
                let memory = m.memory_mb.get(k.resource.as_str()).copied().unwrap_or(256);
                gb_seconds += t.busy.as_secs_f64() * f64::from(memory) / 1024.0 * scale;
            }
            _ => {}
        }
    }
    vec![
        (
            "SES".into(),
            format!("{:.2} M mails × ${SES_PER_THOUSAND} per 1,000", ses / 1e6),
            ses / 1000.0 * SES_PER_THOUSAND,
        ),
        (
            "DynamoDB".into(),
            format!(
                "{:.2} M write units × ${DYNAMODB_WRITE_PER_MILLION}/M; {:.2} M read units × ${DYNAMODB_READ_PER_MILLION}/M",
                wru / 1e6,
                rru / 1e6
            ),
            wru / 1e6 * DYNAMODB_WRITE_PER_MILLION + rru / 1e6 * DYNAMODB_READ_PER_MILLION,
        ),
        (
            "SQS".into(),
            format!(
                "{:.2} M standard × ${SQS_STANDARD_PER_MILLION}/M; {:.2} M FIFO × ${SQS_FIFO_PER_MILLION}/M",
                sqs_std / 1e6,
                sqs_fifo / 1e6
            ),
            sqs_std / 1e6 * SQS_STANDARD_PER_MILLION + sqs_fifo / 1e6 * SQS_FIFO_PER_MILLION,
        ),
        (
            "Lambda".into(),
            format!(
                "{:.2} M invocations × ${LAMBDA_PER_MILLION}/M; {:.0} GB-s (handler time here, debug build: an upper bound) × ${LAMBDA_ARM_PER_GB_SECOND}",
                invocations / 1e6,
                gb_seconds
            ),
            invocations / 1e6 * LAMBDA_PER_MILLION + gb_seconds * LAMBDA_ARM_PER_GB_SECOND,
        ),
    ]
}

/// The bill as a table.
pub fn bill_table(m: &Measured) -> String {
    let lines = monthly_bill(m);
    let total: f64 = lines.iter().map(|(_, _, d)| d).sum();
    let mut out = format!(
        "\nmonthly AWS bill of the measured path at Fedora's volume ({} messages/day, {:.1} M immediate mails/month, ~{} users; {PRICES_AS_OF})\n",
        FEDORA_MESSAGES_PER_MONTH / 30.0,
        FEDORA_MAILS_PER_MONTH / 1e6,
        FEDORA_USERS
    );
    for (service, what, dollars) in &lines {
        let _ = writeln!(out, "  {service:<9} {dollars:>9.2} $  {what}");
    }
    let _ = writeln!(
        out,
        "  {:<9} {total:>9.2} $  (not measured here: digest items and mails, IRC, SES events via SNS, storage, CloudWatch, idle long polling: see the README)",
        "total"
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn key(stage: &str, service: &str, operation: &str, resource: &str) -> Key {
        Key {
            stage: Arc::from(stage),
            service: service.into(),
            operation: operation.into(),
            resource: resource.into(),
        }
    }

    #[test]
    fn the_bill_scales_each_stage_by_its_driver() {
        let mut counts = BTreeMap::new();
        // 10 messages: one 3-unit write each by match, one SES mail each by deliver-email.
        counts.insert(
            key("fmn-match", "dynamodb", "PutItem", "p-recent"),
            Tally {
                requests: 10,
                billed_requests: 10,
                write_units: 30.0,
                ..Tally::default()
            },
        );
        counts.insert(
            key("fmn-deliver-email", "sesv2", "SendEmail", ""),
            Tally {
                requests: 10,
                billed_requests: 10,
                ..Tally::default()
            },
        );
        counts.insert(
            key(
                "fmn-match event source",
                "sqs",
                "ReceiveMessage",
                "p-ingest",
            ),
            Tally {
                requests: 5,
                billed_requests: 5,
                ..Tally::default()
            },
        );
        let memory = BTreeMap::new();
        let m = Measured {
            counts: &counts,
            prefix: "p",
            messages: 10,
            mails: 10,
            elapsed: Duration::from_secs(60),
            memory_mb: &memory,
        };
        let bill = monthly_bill(&m);
        let dollars = |s: &str| bill.iter().find(|l| l.0 == s).unwrap().2;
        // 1 M mails × $0.10 / 1,000.
        assert!((dollars("SES") - 100.0).abs() < 1e-9);
        // 1.8 M messages × 3 units × $0.625 / M.
        assert!((dollars("DynamoDB") - 3.375).abs() < 1e-9);
        // 0.9 M receives × $0.40 / M.
        assert!((dollars("SQS") - 0.36).abs() < 1e-9);
        let table = per_message_table(&m);
        assert!(table.contains("recent"), "{table}");
        assert!(!table.contains("p-recent"), "{table}");
    }
}
