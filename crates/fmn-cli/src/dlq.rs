//! `fmn dlq list|show|redrive`: the dead-letter queues for operators (`fmn_aws::dlq`).

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Subcommand, ValueEnum};
use fmn_aws::dlq::{DeadLetter, DeadLetters, RedriveOptions, RedriveReport, RedriveStep};
use fmn_aws::ingest_wire::{decode, Decoded, ENCODING_ATTRIBUTE};
use fmn_aws::QueueName;

#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// For each dead-letter queue (or the one named): how many messages wait, and each one's
    /// id, original id, age and reason. Nothing is consumed: what is read is held for 30 s and
    /// released at once. The IRC dead-letter queue is FIFO: only its first 10 can be seen.
    List {
        #[arg(long, value_enum)]
        queue: Option<Queue>,
        /// Messages listed per queue at most.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// One waiting message (by its id, or its original id): its body (pretty JSON when JSON;
    /// an ingest body decoded) and all its attributes. Nothing is consumed.
    Show {
        id: String,
        #[arg(long, value_enum)]
        queue: Option<Queue>,
        /// Messages looked through per queue at most.
        #[arg(long, default_value_t = 1000)]
        search: usize,
    },
    /// Move messages back to the queue they failed in (ingest-dlq → ingest, email-dlq → email,
    /// irc-dlq → irc.fifo, mail-events-dlq → mail-events), keeping their attributes except the
    /// failure reason and original id. Each is deleted from the dead-letter queue only after
    /// it was sent back, so nothing is lost; a crash between the two leaves a copy in both,
    /// which is harmless: job ids are deterministic and the delivery records drop a repeat.
    /// Messages dead-lettered while the redrive runs are left for the next one.
    Redrive {
        #[arg(long, value_enum)]
        queue: Option<Queue>,
        /// Only this message (its id in the dead-letter queue, or its original id);
        /// repeatable.
        #[arg(long = "id")]
        ids: Vec<String>,
        /// Say what would move; move nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

/// A dead-letter queue, by the queue it belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Queue {
    Ingest,
    Email,
    Irc,
    Matrix,
    MailEvents,
}

impl Queue {
    fn dead_letter_queue(self) -> QueueName {
        match self {
            Queue::Ingest => QueueName::IngestDeadLetter,
            Queue::Email => QueueName::EmailDeadLetter,
            Queue::Irc => QueueName::IrcDeadLetter,
            Queue::Matrix => QueueName::MatrixDeadLetter,
            Queue::MailEvents => QueueName::MailEventsDeadLetter,
        }
    }
}

fn selected(queue: Option<Queue>) -> Vec<QueueName> {
    match queue {
        Some(q) => vec![q.dead_letter_queue()],
        None => QueueName::dead_letter_queues().collect(),
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

/// `45s`, `3m12s`, `2h05m`, `3d04h`.
pub fn age_text(age: Duration) -> String {
    let s = age.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        3600..86400 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{:02}h", s / 86400, s % 86400 / 3600),
    }
}

fn age_of(letter: &DeadLetter) -> String {
    letter
        .age(now_ms())
        .map(age_text)
        .unwrap_or_else(|| "?".into())
}

/// The reason shown for a message: fmn's, or what a message without one means.
fn reason_of(letter: &DeadLetter) -> &str {
    letter
        .reason
        .as_deref()
        .unwrap_or("(none: moved by SQS after maxReceiveCount receives)")
}

fn suffix(queue: QueueName) -> &'static str {
    queue.suffix()
}

pub fn run(command: DlqCommand) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let clients = fmn_aws::AwsClients::from_env().await?;
        match command {
            DlqCommand::List { queue, limit } => {
                for q in selected(queue) {
                    let dlq = DeadLetters::open(&clients, q).await?;
                    list(&dlq, limit).await?;
                }
                Ok(())
            }
            DlqCommand::Show { id, queue, search } => {
                for q in selected(queue) {
                    let dlq = DeadLetters::open(&clients, q).await?;
                    if let Some(letter) = dlq.find(&id, search).await? {
                        show(&dlq, &letter);
                        return Ok(());
                    }
                }
                bail!(
                    "no message `{id}` waits in {} (looked at up to {search} per queue)",
                    selected(queue)
                        .into_iter()
                        .map(suffix)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
            DlqCommand::Redrive {
                queue,
                ids,
                dry_run,
            } => redrive(&clients, selected(queue), ids, dry_run).await,
        }
    })
}

async fn list(dlq: &DeadLetters, limit: usize) -> anyhow::Result<()> {
    let depth = dlq.depth().await?;
    println!(
        "{} (back to {}): {} waiting, {} in flight",
        suffix(dlq.queue),
        suffix(dlq.source),
        depth.visible,
        depth.in_flight
    );
    if depth.visible == 0 || limit == 0 {
        return Ok(());
    }
    let letters = dlq.peek(limit).await?;
    if letters.is_empty() {
        println!("  (none could be received: held by someone else?)");
        return Ok(());
    }
    println!(
        "  {:<36}  {:<36}  {:>7}  reason",
        "message id", "original id", "age"
    );
    for l in &letters {
        println!(
            "  {:<36}  {:<36}  {:>7}  {}",
            l.message_id,
            l.original_id.as_deref().unwrap_or("-"),
            age_of(l),
            reason_of(l)
        );
    }
    let shown = letters.len() as u64;
    if shown < depth.visible {
        let why = if dlq.is_fifo() {
            " (FIFO: the rest show once these are moved)"
        } else {
            ""
        };
        println!("  … {} more{why}", depth.visible - shown);
    }
    Ok(())
}

fn show(dlq: &DeadLetters, l: &DeadLetter) {
    println!(
        "queue: {} (back to {})",
        suffix(dlq.queue),
        suffix(dlq.source)
    );
    println!("message id: {}", l.message_id);
    println!("original id: {}", l.original_id.as_deref().unwrap_or("-"));
    println!("age: {}", age_of(l));
    println!("reason: {}", reason_of(l));
    println!("attributes:");
    for (name, value) in &l.attributes {
        println!("  {name}: {value}");
    }
    println!("system attributes:");
    for (name, value) in &l.system_attributes {
        println!("  {name}: {value}");
    }
    // An ingest body may be compressed or stored aside: shown as the match function reads it.
    let encoding = l.attributes.get(ENCODING_ATTRIBUTE).map(String::as_str);
    let body = match (encoding, decode(&l.body, encoding)) {
        (Some(e), Ok(Decoded::Envelope(text))) => {
            println!("body (decoded from {ENCODING_ATTRIBUTE} {e}):");
            text
        }
        _ => {
            println!("body:");
            l.body.clone()
        }
    };
    match serde_json::from_str::<serde_json::Value>(&body) {
        Ok(json) => println!(
            "{}",
            serde_json::to_string_pretty(&json).unwrap_or(body.clone())
        ),
        Err(_) => println!("{body}"),
    }
}

async fn redrive(
    clients: &fmn_aws::AwsClients,
    queues: Vec<QueueName>,
    ids: Vec<String>,
    dry_run: bool,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let options = RedriveOptions {
        ids: ids.clone(),
        dry_run,
    };
    let mut total = RedriveReport::default();
    let mut found_anywhere: Vec<String> = Vec::new();
    for q in queues {
        let dlq = DeadLetters::open(clients, q).await?;
        let (from, to) = (suffix(dlq.queue), suffix(dlq.source));
        let report = dlq
            .redrive(&options, |step| match step {
                RedriveStep::Moved(l) => eprintln!(
                    "moved {} (original {}) {from} → {to}",
                    l.message_id,
                    l.original_id.as_deref().unwrap_or("-")
                ),
                RedriveStep::WouldMove(l) => eprintln!(
                    "would move {} (original {}, {}) {from} → {to}: {}",
                    l.message_id,
                    l.original_id.as_deref().unwrap_or("-"),
                    age_of(l),
                    reason_of(l)
                ),
                RedriveStep::Failed(l, why) => {
                    eprintln!("failed {} ({from} → {to}): {why}", l.message_id)
                }
            })
            .await
            .with_context(|| format!("redriving {from}"))?;
        let verb = if dry_run { "would move" } else { "moved" };
        let n = if dry_run {
            report.would_move
        } else {
            report.moved
        };
        println!(
            "{from} → {to}: {verb} {n}, failed {}{}",
            report.failed.len(),
            if report.left_newer > 0 {
                format!(", left {} dead-lettered during the run", report.left_newer)
            } else {
                String::new()
            }
        );
        found_anywhere.extend(
            ids.iter()
                .filter(|id| !report.not_found.contains(id))
                .cloned(),
        );
        total.moved += report.moved;
        total.would_move += report.would_move;
        total.left_newer += report.left_newer;
        total.failed.extend(report.failed);
    }
    let missing: Vec<&String> = ids
        .iter()
        .filter(|id| !found_anywhere.contains(id))
        .collect();
    if dry_run {
        println!(
            "dry run: would move {} ({:.1} s)",
            total.would_move,
            started.elapsed().as_secs_f64()
        );
    } else {
        println!(
            "moved {}, failed {} ({:.1} s)",
            total.moved,
            total.failed.len(),
            started.elapsed().as_secs_f64()
        );
    }
    for (id, why) in &total.failed {
        println!("  failed {id}: {why}");
    }
    if !missing.is_empty() {
        bail!(
            "not found in the dead-letter queues: {}",
            missing
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if !total.failed.is_empty() {
        bail!("{} message(s) not moved", total.failed.len());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_at_a_glance() {
        assert_eq!(age_text(Duration::from_secs(45)), "45s");
        assert_eq!(age_text(Duration::from_secs(192)), "3m12s");
        assert_eq!(age_text(Duration::from_secs(7500)), "2h05m");
        assert_eq!(age_text(Duration::from_secs(3 * 86400 + 4 * 3600)), "3d04h");
    }

    #[test]
    fn every_dead_letter_queue_is_selectable() {
        let all: Vec<_> = [
            Queue::Ingest,
            Queue::Email,
            Queue::Irc,
            Queue::Matrix,
            Queue::MailEvents,
        ]
        .into_iter()
        .map(Queue::dead_letter_queue)
        .collect();
        assert_eq!(all, selected(None));
    }
}
