//! `fmn replay --since T [--until T] [--user U] [--dry-run]`: routes the stored messages
//! (recent-messages, kept 14 days) received in a window again, through the match function's
//! own code (`fmn_match::MatchHandler::replay`), so what was missed goes out and nothing goes
//! out twice: the jobs have the ids they had the first time, deliver-email and deliver-irc
//! drop a job whose delivery record says it was sent, and a digest takes a job once (its
//! `digest-item#<job id>` record, kept 14 days like the messages).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use fmn_aws::batch::RecordError;
use fmn_aws::names::REPLAY_TOOL_ACCESS;
use fmn_aws::recent::{MessageScan, StoredMessage, MESSAGE_TTL_SECS};
use fmn_match::MatchHandler;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Start of the window, by the time fmn received the message: RFC 3339
    /// (`2025-05-01T12:00:00Z`) or an age (`90s`, `30m`, `2h`, `3d`). At most 14 days ago
    /// (what recent-messages keeps).
    #[arg(long)]
    pub since: String,
    /// End of the window, as --since (default: now).
    #[arg(long)]
    pub until: Option<String>,
    /// Only this user's jobs.
    #[arg(long)]
    pub user: Option<String>,
    /// Match and print the jobs; send nothing, add nothing to digests.
    #[arg(long)]
    pub dry_run: bool,
    /// Parallel scan segments, each routing its messages in turn. The table has no index by
    /// time: the whole table is scanned (and read capacity spent on every item) whatever the
    /// window.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub segments: u32,
}

/// `text` as epoch seconds: RFC 3339, or an age before `now` (`90s`, `30m`, `2h`, `3d`).
pub fn parse_time(text: &str, now: u64) -> anyhow::Result<u64> {
    let text = text.trim();
    if let Ok(t) = OffsetDateTime::parse(text, &Rfc3339) {
        return u64::try_from(t.unix_timestamp())
            .with_context(|| format!("`{text}` is before 1970"));
    }
    let unit = text.chars().last().unwrap_or(' ');
    let scale = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86400,
        _ => bail!("`{text}` is neither an RFC 3339 time (2025-05-01T12:00:00Z) nor an age such as 90s, 30m, 2h or 3d"),
    };
    let amount: u64 = text[..text.len() - 1].parse().with_context(|| {
        format!("`{text}` is neither an RFC 3339 time nor an age such as 90s, 30m, 2h or 3d")
    })?;
    Ok(now.saturating_sub(amount.saturating_mul(scale)))
}

/// The window `--since`/`--until` name, checked against what the store keeps.
pub fn window(since: &str, until: Option<&str>, now: u64) -> anyhow::Result<(u64, u64)> {
    let since_at = parse_time(since, now).context("--since")?;
    let until_at = match until {
        Some(u) => parse_time(u, now).context("--until")?,
        None => now,
    };
    let oldest = now.saturating_sub(MESSAGE_TTL_SECS);
    if since_at < oldest {
        bail!(
            "--since {} is older than what recent-messages keeps ({} days): messages received before {} are gone",
            rfc3339(since_at),
            MESSAGE_TTL_SECS / 86400,
            rfc3339(oldest)
        );
    }
    if until_at < since_at {
        bail!(
            "--until {} is before --since {}",
            rfc3339(until_at),
            rfc3339(since_at)
        );
    }
    Ok((since_at, until_at.min(now)))
}

fn rfc3339(secs: u64) -> String {
    OffsetDateTime::from_unix_timestamp(secs as i64)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| secs.to_string())
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// What a replay did, counted as it goes.
#[derive(Default)]
struct Counters {
    /// Items the scan read (in the window or not).
    scanned: AtomicU64,
    /// Messages in the window.
    messages: AtomicU64,
    /// Messages with at least one job.
    matched: AtomicU64,
    jobs: AtomicU64,
    email: AtomicU64,
    irc: AtomicU64,
    digest_new: AtomicU64,
    digest_repeats: AtomicU64,
    failed: AtomicU64,
}

impl Counters {
    fn get(n: &AtomicU64) -> u64 {
        n.load(Ordering::Relaxed)
    }

    fn line(&self) -> String {
        format!(
            "scanned {} stored items; {} messages in the window, {} matched; {} jobs",
            Self::get(&self.scanned),
            Self::get(&self.messages),
            Self::get(&self.matched),
            Self::get(&self.jobs),
        )
    }
}

/// Tries of one message when a service fails on the way (every step is idempotent).
const TRIES: u32 = 3;

pub fn run(args: ReplayArgs) -> anyhow::Result<()> {
    let (since, until) = window(&args.since, args.until.as_deref(), now_secs())?;
    let progress_every = fmn_aws::Vars::from_env()
        .seconds("FMN_PROGRESS_INTERVAL")?
        .unwrap_or(Duration::from_secs(10));
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let clients = fmn_aws::AwsClients::from_env().await?;
        if let Some(user) = &args.user {
            let prefs = fmn_aws::prefs_store::PrefsStore::from_clients(&clients);
            if prefs.get(user).await?.is_none() {
                bail!("no user `{user}`");
            }
        }
        let handler = Arc::new(
            MatchHandler::new(&clients)
                .await
                .context("setting up the match function's code")?,
        );
        handler
            .refresh_preferences()
            .await
            .context("loading the preferences")?;
        let scan = MessageScan::from_clients(&clients.scoped_to("fmn replay", REPLAY_TOOL_ACCESS));
        eprintln!(
            "replaying messages received {} – {}{}{} (scan of {}, {} segments)",
            rfc3339(since),
            rfc3339(until),
            args.user
                .as_ref()
                .map(|u| format!(", user {u}"))
                .unwrap_or_default(),
            if args.dry_run { ", dry run" } else { "" },
            scan.table(),
            args.segments
        );
        let started = Instant::now();
        let counters = Arc::new(Counters::default());
        let failures: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
        let ticker = {
            let counters = Arc::clone(&counters);
            tokio::spawn(async move {
                let mut every = tokio::time::interval(progress_every);
                every.tick().await;
                loop {
                    every.tick().await;
                    eprintln!("progress: {}", counters.line());
                }
            })
        };
        let mut segments = tokio::task::JoinSet::new();
        for segment in 0..args.segments {
            let job = Segment {
                scan: scan.clone(),
                handler: Arc::clone(&handler),
                counters: Arc::clone(&counters),
                failures: Arc::clone(&failures),
                user: args.user.clone(),
                dry_run: args.dry_run,
                window: (since, until),
                segment,
                segments: args.segments,
            };
            segments.spawn(job.run());
        }
        let mut outcome = Ok(());
        while let Some(done) = segments.join_next().await {
            let result = done.context("a scan segment panicked").and_then(|r| r);
            if let Err(e) = result {
                // Nothing more can succeed (a service-wide condition, the scan failing).
                segments.abort_all();
                outcome = Err(e);
            }
        }
        ticker.abort();
        let elapsed = started.elapsed().as_secs_f64();
        let c = &counters;
        let get = Counters::get;
        println!(
            "{}replayed {} – {}{}: {}",
            if args.dry_run { "dry run: " } else { "" },
            rfc3339(since),
            rfc3339(until),
            args.user
                .as_ref()
                .map(|u| format!(" for {u}"))
                .unwrap_or_default(),
            c.line()
        );
        if args.dry_run {
            println!("  jobs not sent (dry run)");
        } else {
            println!(
                "  {} email and {} IRC jobs queued (delivery drops those sent before); digest items {} new, {} there before",
                get(&c.email),
                get(&c.irc),
                get(&c.digest_new),
                get(&c.digest_repeats)
            );
        }
        println!(
            "  {} failed; {:.1} s ({:.0} messages/s)",
            get(&c.failed),
            elapsed,
            get(&c.messages) as f64 / elapsed.max(0.001)
        );
        for (msg_id, why) in failures.lock().expect("not poisoned").iter() {
            println!("  failed {msg_id}: {why}");
        }
        outcome?;
        if get(&c.failed) > 0 {
            bail!(
                "{} message(s) could not be replayed; run again for them",
                get(&c.failed)
            );
        }
        Ok(())
    })
}

/// One scan segment's work.
struct Segment {
    scan: MessageScan,
    handler: Arc<MatchHandler>,
    counters: Arc<Counters>,
    failures: Arc<Mutex<Vec<(String, String)>>>,
    user: Option<String>,
    dry_run: bool,
    window: (u64, u64),
    segment: u32,
    segments: u32,
}

impl Segment {
    async fn run(self) -> anyhow::Result<()> {
        let mut cursor = None;
        loop {
            let page = self
                .scan
                .page(
                    self.window.0,
                    self.window.1,
                    self.segment,
                    self.segments,
                    cursor,
                )
                .await
                .with_context(|| format!("scanning {}", self.scan.table()))?;
            self.counters
                .scanned
                .fetch_add(page.scanned as u64, Ordering::Relaxed);
            for message in page.messages {
                self.counters.messages.fetch_add(1, Ordering::Relaxed);
                match message {
                    Ok(m) => self.route(&m).await?,
                    Err((msg_id, why)) => self.failed(msg_id, why),
                }
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => return Ok(()),
            }
        }
    }

    fn failed(&self, msg_id: String, why: String) {
        self.counters.failed.fetch_add(1, Ordering::Relaxed);
        self.failures
            .lock()
            .expect("not poisoned")
            .push((msg_id, why));
    }

    /// Routes one message; a service-wide condition stops the replay.
    async fn route(&self, m: &StoredMessage) -> anyhow::Result<()> {
        let mut tries = 0;
        let routed = loop {
            tries += 1;
            match self
                .handler
                .replay(&m.envelope, self.user.as_deref(), self.dry_run)
                .await
            {
                Ok(routed) => break routed,
                Err(RecordError::Retry(why)) if tries < TRIES => {
                    tracing::warn!(msg_id = %m.msg_id, %why, "replaying a message failed; trying again");
                    fmn_aws::retry::backoff(tries).await;
                }
                Err(RecordError::Halt(why)) => {
                    bail!("stopped at {}: {why}", m.msg_id)
                }
                Err(
                    RecordError::Retry(why)
                    | RecordError::Reject(why)
                    | RecordError::RetryAfter { reason: why, .. },
                ) => {
                    self.failed(m.msg_id.clone(), why);
                    return Ok(());
                }
            }
        };
        let c = &self.counters;
        if !routed.jobs.is_empty() {
            c.matched.fetch_add(1, Ordering::Relaxed);
            c.jobs
                .fetch_add(routed.jobs.len() as u64, Ordering::Relaxed);
        }
        let f = routed.fan_out;
        c.email.fetch_add(f.email as u64, Ordering::Relaxed);
        c.irc.fetch_add(f.irc as u64, Ordering::Relaxed);
        c.digest_new.fetch_add(f.digest as u64, Ordering::Relaxed);
        c.digest_repeats
            .fetch_add(f.digest_repeats as u64, Ordering::Relaxed);
        if self.dry_run {
            for job in &routed.jobs {
                println!(
                    "{}\t{}\t{}\t{} {}{}",
                    m.msg_id,
                    rfc3339(m.received_at),
                    job.user,
                    job.destination.kind.as_str(),
                    job.destination.address,
                    if job.destination.is_digest() {
                        " (digest)"
                    } else {
                        ""
                    }
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_750_000_000;

    #[test]
    fn times_are_rfc3339_or_ages() {
        assert_eq!(parse_time("2h", NOW).unwrap(), NOW - 7200);
        assert_eq!(parse_time("3d", NOW).unwrap(), NOW - 3 * 86400);
        assert_eq!(parse_time("90s", NOW).unwrap(), NOW - 90);
        assert_eq!(parse_time("30m", NOW).unwrap(), NOW - 1800);
        assert_eq!(
            parse_time("2025-06-15T15:06:40Z", NOW).unwrap(),
            1_750_000_000
        );
        assert_eq!(
            parse_time("2025-06-15T17:06:40+02:00", NOW).unwrap(),
            1_750_000_000
        );
        for bad in ["yesterday", "2x", "h", "", "2025-06-15"] {
            assert!(parse_time(bad, NOW).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_window_older_than_the_store_is_refused() {
        let e = window("15d", None, NOW).unwrap_err();
        assert!(format!("{e:#}").contains("older than what recent-messages keeps (14 days)"));
        assert_eq!(window("14d", None, NOW).unwrap(), (NOW - 14 * 86400, NOW));
        assert_eq!(
            window("2h", Some("1h"), NOW).unwrap(),
            (NOW - 7200, NOW - 3600)
        );
        let e = window("1h", Some("2h"), NOW).unwrap_err();
        assert!(format!("{e:#}").contains("before --since"));
    }
}
