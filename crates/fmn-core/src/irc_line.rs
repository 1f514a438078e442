//! IRC lines: what the deliver-irc bot says to a nick, one `PRIVMSG` per job.
//!
//! Pure: no I/O. Everything that reaches the wire is built here, and every line
//!
//! - is one line: control characters of the message's content (CR, LF, NUL, the C0 and C1
//!   controls, mIRC formatting codes, U+2028/U+2029) become spaces and runs of spaces fold
//!   into one; the only formatting codes in a line are the mIRC colours we add when the
//!   destination asked for colours;
//! - fits IRC's 512-byte line limit: `:<our prefix> PRIVMSG <nick> :<text>\r\n`, where the
//!   server adds our prefix (`:nick!user@host `) when it relays the line; we allow
//!   [`PREFIX_ALLOWANCE`] bytes for it and never use more than [`TEXT_BUDGET`] for the text;
//!   cuts fall on UTF-8 character boundaries;
//! - keeps its link whole: the summary is cut (with `…`), never the URL; a link too long to fit
//!   at all is left out rather than cut (a cut URL points somewhere else).
//!
//! Formats (the old FMN's, see `README.md`): terse `[<app>] <summary> <link>`; verbose adds
//! who did it, how late the line is (when more than 10 s late, so people can tell fmn is
//! behind) and the filter that matched: `[bodhi] alice commented on … (alice, 4 minutes ago)
//! https://… (filter: My packages)`.
//!
//! The IRC queue carries two kinds of jobs ([`IrcJob`]): a [`DeliveryJob`] from the match
//! function, and a [`ConfirmationJob`] (`{"kind": "confirmation", …}`) asking a nick to accept
//! being a destination.

use serde::{Deserialize, Serialize};

use crate::jobs::DeliveryJob;
use crate::prefs::{limits, DestinationKind};

/// The longest IRC line, CRLF included (RFC 1459 / 2812).
pub const MAX_LINE: usize = 512;
/// Room left for the prefix the server puts in front of our line when relaying it
/// (`:nick!user@host `: nick ≤ 30, user ≤ 10, host ≤ 63, punctuation).
pub const PREFIX_ALLOWANCE: usize = 110;
/// The most bytes of text a line carries, whatever the nick.
pub const TEXT_BUDGET: usize = 400;

/// What lines need besides the job.
#[derive(Clone, Debug)]
pub struct LineContext {
    /// The web-api's public base URL (not used in lines today; kept for links to filters).
    pub public_url: String,
    /// Now, epoch seconds (for "4 minutes ago").
    pub now_secs: i64,
}

/// Why a job cannot be said on IRC.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    #[error("malformed: {0}")]
    Malformed(String),
    #[error("destination is {0}, not irc")]
    NotIrc(&'static str),
    #[error("`{0}` is not a valid IRC nick")]
    BadNick(String),
    #[error("the job has no id")]
    NoJobId,
}

/// A confirmation request: the web-api asks a new nick whether it wants notifications.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfirmationJob {
    /// Unique per confirmation request (a repeat of it is said once).
    pub job_id: String,
    /// Who asked for the nick.
    pub user: String,
    /// The nick to ask.
    pub nick: String,
    /// Where the nick's owner accepts.
    pub accept_url: String,
    /// Where the nick's owner refuses (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reject_url: Option<String>,
    /// The user's destination being confirmed (`irc-2`): where a refusal of the nick is
    /// reported (its health, shown by the API).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
}

/// A job on the IRC queue.
#[derive(Debug, Clone, PartialEq)]
pub enum IrcJob {
    Delivery(Box<DeliveryJob>),
    Confirmation(ConfirmationJob),
}

#[derive(Serialize)]
struct TaggedConfirmation<'a> {
    kind: &'static str,
    #[serde(flatten)]
    job: &'a ConfirmationJob,
}

impl ConfirmationJob {
    /// The JSON the IRC queue carries for this job (`{"kind": "confirmation", …}`).
    pub fn to_json(&self) -> String {
        serde_json::to_string(&TaggedConfirmation {
            kind: "confirmation",
            job: self,
        })
        .expect("a confirmation job serialises")
    }
}

impl IrcJob {
    /// Parses and checks a job from the IRC queue: a JSON object with `"kind": "confirmation"`
    /// is a confirmation, anything else must be a delivery job to an IRC destination.
    pub fn parse(body: &str) -> Result<IrcJob, LineError> {
        let value: serde_json::Value =
            serde_json::from_str(body).map_err(|e| LineError::Malformed(e.to_string()))?;
        let job = match value.get("kind").and_then(|k| k.as_str()) {
            Some("confirmation") => IrcJob::Confirmation(
                serde_json::from_value(value)
                    .map_err(|e| LineError::Malformed(format!("confirmation job: {e}")))?,
            ),
            Some(other) => {
                return Err(LineError::Malformed(format!("unknown job kind `{other}`")));
            }
            None => {
                let job: DeliveryJob = serde_json::from_value(value)
                    .map_err(|e| LineError::Malformed(format!("delivery job: {e}")))?;
                if job.destination.kind != DestinationKind::Irc {
                    return Err(LineError::NotIrc(job.destination.kind.as_str()));
                }
                IrcJob::Delivery(Box::new(job))
            }
        };
        if job.job_id().trim().is_empty() {
            return Err(LineError::NoJobId);
        }
        if !valid_nick(job.nick()) {
            return Err(LineError::BadNick(
                clean(job.nick()).chars().take(64).collect(),
            ));
        }
        Ok(job)
    }

    pub fn job_id(&self) -> &str {
        match self {
            IrcJob::Delivery(j) => &j.job_id,
            IrcJob::Confirmation(j) => &j.job_id,
        }
    }

    /// The nick the line goes to.
    pub fn nick(&self) -> &str {
        match self {
            IrcJob::Delivery(j) => &j.destination.address,
            IrcJob::Confirmation(j) => &j.nick,
        }
    }

    /// The user the job is for.
    pub fn user(&self) -> &str {
        match self {
            IrcJob::Delivery(j) => &j.user,
            IrcJob::Confirmation(j) => &j.user,
        }
    }

    /// The destination id (`confirmation` for a confirmation request).
    pub fn destination_id(&self) -> &str {
        match self {
            IrcJob::Delivery(j) => &j.destination.id,
            IrcJob::Confirmation(_) => "confirmation",
        }
    }

    /// The text of the job's line (see the module's description).
    pub fn text(&self, ctx: &LineContext) -> String {
        match self {
            IrcJob::Delivery(j) => delivery_text(j, ctx),
            IrcJob::Confirmation(j) => confirmation_text(j),
        }
    }
}

/// An IRC nick as the old FMN accepted them (RFC 2812 letters, digits and specials), at most
/// [`limits::MAX_NICK`] bytes. Anything else could smuggle a second target (`a,b`), a channel
/// or a space into the `PRIVMSG`. A network service's nick is not one either: a line to it
/// would be a command.
pub fn valid_nick(nick: &str) -> bool {
    if crate::prefs::is_service_nick(nick) {
        return false;
    }
    let special = |c: char| "_-[]\\^{}|`".contains(c);
    let mut chars = nick.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || special(c) => {}
        _ => return false,
    }
    nick.len() <= limits::MAX_NICK && chars.all(|c| c.is_ascii_alphanumeric() || special(c))
}

/// The byte budget of the text of a line to `nick`.
pub fn text_budget(nick: &str) -> usize {
    let fixed = PREFIX_ALLOWANCE + "PRIVMSG ".len() + nick.len() + " :".len() + "\r\n".len();
    TEXT_BUDGET.min(MAX_LINE.saturating_sub(fixed))
}

/// The command line (without CRLF) saying `text` to `nick`.
pub fn privmsg(nick: &str, text: &str) -> String {
    format!("PRIVMSG {nick} :{text}")
}

/// `text` on one line: control characters and line/paragraph separators become spaces, runs of
/// white space fold into one, ends trimmed.
pub fn clean(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut space = false;
    for c in text.chars() {
        let c = if c.is_control() || c == '\u{2028}' || c == '\u{2029}' {
            ' '
        } else {
            c
        };
        if c.is_whitespace() {
            space = !out.is_empty();
        } else {
            if space {
                out.push(' ');
                space = false;
            }
            out.push(c);
        }
    }
    out
}

/// What services' answer to `INFO <nick>` says about `nick`: `Some(true)` registered,
/// `Some(false)` not registered, `None` for any other notice (another line of the answer, or
/// about another nick). Atheme answers `Information on <nick> (account <account>):` or
/// `<nick> is not registered.`; Anope `Nick <nick> isn't registered.`; bold and colour codes
/// around the nick are ignored, and case (IRC nicks are case-insensitive).
pub fn nickserv_info_verdict(nick: &str, notice: &str) -> Option<bool> {
    let plain: String = notice
        .chars()
        .filter(|c| !matches!(c, '\x02' | '\x03' | '\x0f' | '\x16' | '\x1d' | '\x1f'))
        .collect::<String>()
        .to_lowercase();
    let nick = nick.to_lowercase();
    let words: Vec<&str> = plain.split_whitespace().collect();
    let at = words.iter().position(|w| *w == nick)?;
    let (before, after) = (&words[..at], &words[at + 1..]);
    if before.ends_with(&["information", "on"]) {
        return Some(true);
    }
    if after.starts_with(&["is", "not", "registered."])
        || after.starts_with(&["isn't", "registered."])
    {
        return Some(false);
    }
    None
}

/// A link fit for a line: cleaned, inner spaces percent-encoded (a URL has none).
fn clean_link(link: &str) -> String {
    clean(link).replace(' ', "%20")
}

/// The longest prefix of `s` of at most `max` bytes, on a character boundary.
pub fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// `s` in at most `max` bytes, ending in `…` when cut.
fn ellipsize(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    const DOTS: &str = "…";
    if max < DOTS.len() {
        return String::new();
    }
    let mut out = cut(s, max - DOTS.len()).trim_end().to_string();
    out.push_str(DOTS);
    out
}

/// mIRC colour codes.
mod colour {
    pub const RESET: &str = "\x0f";
    pub const GREEN: u8 = 3;
    pub const RED: u8 = 4;
    pub const BROWN: u8 = 5;
    pub const PURPLE: u8 = 6;
    pub const ORANGE: u8 = 7;
    pub const YELLOW: u8 = 8;
    pub const LIGHT_GREEN: u8 = 9;
    pub const TEAL: u8 = 10;
    pub const LIGHT_CYAN: u8 = 11;
    pub const LIGHT_BLUE: u8 = 12;
    pub const GREY: u8 = 14;
    pub const LIGHT_GREY: u8 = 15;

    /// The old FMN's colour of an app (`irc_color_lookup`).
    pub fn of_app(app: &str) -> u8 {
        match app.to_ascii_lowercase().as_str() {
            "fas" | "fmn" | "fedora account system" => LIGHT_BLUE,
            "bodhi" => GREEN,
            "git" | "distgit" | "pagure" => RED,
            "tagger" => BROWN,
            "wiki" => PURPLE,
            "logger" => ORANGE,
            "pkgdb" => TEAL,
            "buildsys" | "koji" => YELLOW,
            "planet" | "hotness" | "the-new-hotness" => LIGHT_GREEN,
            "anitya" => LIGHT_CYAN,
            _ => LIGHT_GREY,
        }
    }

    /// `text` in colour `code`. Two-digit code and a reset after: text starting with a digit
    /// or a comma is never read as part of the code.
    pub fn paint(code: u8, text: &str) -> String {
        if text.is_empty() {
            return String::new();
        }
        format!("\x03{code:02}{text}{RESET}")
    }
}

/// Humanised age: "12 seconds", "4 minutes", "3 hours", "2 days".
fn humanise(secs: i64) -> String {
    let (n, unit) = match secs {
        s if s < 60 => (s, "second"),
        s if s < 3600 => (s / 60, "minute"),
        s if s < 86_400 => (s / 3600, "hour"),
        s => (s / 86_400, "day"),
    };
    format!("{n} {unit}{} ago", if n == 1 { "" } else { "s" })
}

fn delivery_text(job: &DeliveryJob, ctx: &LineContext) -> String {
    let n = &job.notification;
    let colours = job.destination.irc_colour;
    let paint = |code: u8, text: &str| {
        if colours {
            colour::paint(code, text)
        } else {
            text.to_string()
        }
    };
    let budget = text_budget(&job.destination.address);

    let app = ellipsize(&clean(&n.app), 40);
    let tag = if app.is_empty() {
        String::new()
    } else {
        paint(colour::of_app(&app), &format!("[{app}]"))
    };
    let summary = clean(n.subtitle.as_deref().unwrap_or(&n.title));
    let summary = if summary.is_empty() {
        clean(&n.title)
    } else {
        summary
    };
    let link = n.link.as_deref().map(clean_link).unwrap_or_default();
    let link = paint(colour::TEAL, &link);

    // Verbose: who and how late, and the filter that matched.
    let mut detail = Vec::new();
    let mut filter = String::new();
    if job.destination.verbose {
        if let Some(agent) = n.agent.as_deref().map(clean).filter(|a| !a.is_empty()) {
            detail.push(ellipsize(&agent, 40));
        }
        if let Some(ts) = n.timestamp {
            let age = ctx.now_secs - ts as i64;
            if age > 10 {
                detail.push(humanise(age));
            }
        }
        let name = ellipsize(&clean(&job.filter_name), 64);
        if !name.is_empty() {
            filter = paint(colour::GREY, &format!("(filter: {name})"));
        }
    }
    let detail = if detail.is_empty() {
        String::new()
    } else {
        paint(colour::GREY, &format!("({})", detail.join(", ")))
    };

    assemble(budget, &tag, &summary, &[&detail], &link, &[&filter])
}

/// Every confirmation line starts with this, before any text a user chose: a line to a
/// service or a bot never begins with something an attacker wrote (a command, say).
pub const CONFIRMATION_PREFIX: &str = "Fedora Notifications: account ";

fn confirmation_text(job: &ConfirmationJob) -> String {
    let budget = text_budget(&job.nick);
    let user = ellipsize(&clean(&job.user), 64);
    let accept = clean_link(&job.accept_url);
    let reject = job
        .reject_url
        .as_deref()
        .map(clean_link)
        .filter(|r| !r.is_empty());
    let mut text = format!(
        "{CONFIRMATION_PREFIX}{user} has requested that notifications be sent to this nick; to accept visit {accept}"
    );
    if let Some(reject) = &reject {
        let with_reject = format!("{text}; to reject visit {reject}");
        if with_reject.len() <= budget {
            text = with_reject;
        }
    }
    if text.len() > budget {
        // Only a huge user name or link gets here: keep the link whole if it fits at all.
        let tail = format!(" to accept visit {accept}");
        if tail.len() + 10 <= budget {
            let head = ellipsize(
                &format!("{CONFIRMATION_PREFIX}{user} has requested notifications on this nick;"),
                budget - tail.len(),
            );
            text = format!("{head}{tail}");
        } else {
            text = ellipsize(
                &format!("{CONFIRMATION_PREFIX}{user} has requested that notifications be sent to this nick"),
                budget,
            );
        }
    }
    text
}

/// Joins `tag summary details link extras` into at most `budget` bytes. While the summary
/// would be cut below `MIN_SUMMARY` bytes the extras go, then the details; the link goes only
/// when it cannot fit whole at all. The summary is cut to what is left.
fn assemble(
    budget: usize,
    tag: &str,
    summary: &str,
    details: &[&str],
    link: &str,
    extras: &[&str],
) -> String {
    let join = |parts: &[&str]| -> String {
        parts
            .iter()
            .filter(|p| !p.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join(" ")
    };
    // The smallest summary worth keeping extras for.
    const MIN_SUMMARY: usize = 40;
    let mut details: Vec<&str> = details.to_vec();
    let mut extras: Vec<&str> = extras.to_vec();
    let mut link = link;
    loop {
        let mut fixed: Vec<&str> = vec![tag];
        fixed.extend(details.iter().copied());
        fixed.push(link);
        fixed.extend(extras.iter().copied());
        let others = join(&fixed);
        let sep = if others.is_empty() { 0 } else { 1 };
        let room = budget.saturating_sub(others.len() + sep);
        // Extras and details give way to a summary of MIN_SUMMARY bytes; the link only to
        // the budget itself.
        let fits = others.len() + sep <= budget
            && (summary.len() <= room
                || room >= MIN_SUMMARY
                || (extras.is_empty() && details.is_empty()));
        let nothing_to_drop = extras.is_empty() && details.is_empty() && link.is_empty();
        if fits || nothing_to_drop {
            let summary = ellipsize(summary, room);
            let mut parts: Vec<&str> = vec![tag, &summary];
            parts.extend(details.iter().copied());
            parts.push(link);
            parts.extend(extras.iter().copied());
            let line = join(&parts);
            if line.len() <= budget {
                return line;
            }
            // Unreachable with a tag of at most 46 bytes; plain summary as a last resort.
            return ellipsize(&summary, budget);
        }
        if extras.pop().is_some() {
            continue;
        }
        if details.pop().is_some() {
            continue;
        }
        link = "";
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::Notification;
    use crate::meta::Severity;
    use crate::prefs::Destination;
    use proptest::prelude::*;

    fn job(
        nick: &str,
        subtitle: &str,
        link: Option<&str>,
        colour: bool,
        verbose: bool,
    ) -> DeliveryJob {
        let destination = Destination {
            irc_colour: colour,
            verbose,
            ..Destination::irc("irc-1", nick).confirmed(true)
        };
        DeliveryJob {
            job_id: "j1".into(),
            user: "alice".into(),
            filter_id: "filter-1".into(),
            filter_name: "My packages".into(),
            reason: "package owned".into(),
            reason_code: "own-package".into(),
            destination,
            notification: Notification {
                msg_id: "m1".into(),
                topic: "org.fedoraproject.prod.bodhi.update.comment".into(),
                app: "bodhi".into(),
                agent: Some("bob".into()),
                title: "bodhi.update.comment".into(),
                subtitle: Some(subtitle.into()),
                link: link.map(str::to_string),
                usernames: vec![],
                packages: vec![],
                usernames_total: None,
                packages_total: None,
                timestamp: Some(1_000.0),
                severity: Severity::default(),
                origin: Default::default(),
                long_text: None,
            },
        }
    }

    fn ctx(now: i64) -> LineContext {
        LineContext {
            public_url: "http://127.0.0.1:8080".into(),
            now_secs: now,
        }
    }

    fn text(j: &DeliveryJob, now: i64) -> String {
        IrcJob::Delivery(Box::new(j.clone())).text(&ctx(now))
    }

    #[test]
    fn terse_line() {
        let j = job(
            "alice",
            "bob commented on FEDORA-1",
            Some("https://b.org/1"),
            false,
            false,
        );
        assert_eq!(
            text(&j, 5_000),
            "[bodhi] bob commented on FEDORA-1 https://b.org/1"
        );
    }

    #[test]
    fn verbose_line_names_agent_age_and_filter() {
        let j = job(
            "alice",
            "bob commented",
            Some("https://b.org/1"),
            false,
            true,
        );
        assert_eq!(
            text(&j, 1_000 + 240),
            "[bodhi] bob commented (bob, 4 minutes ago) https://b.org/1 (filter: My packages)"
        );
        // On time: no age.
        assert_eq!(
            text(&j, 1_005),
            "[bodhi] bob commented (bob) https://b.org/1 (filter: My packages)"
        );
    }

    #[test]
    fn colours_only_ours() {
        let j = job(
            "alice",
            "evil \x0304red\x03 \x02bold\x02",
            Some("https://b.org/1"),
            true,
            false,
        );
        let t = text(&j, 1_000);
        assert_eq!(
            t,
            "\x0303[bodhi]\x0f evil 04red bold \x0310https://b.org/1\x0f"
        );
        let plain = job("alice", "evil \x0304red\x03", None, false, false);
        assert_eq!(text(&plain, 1_000), "[bodhi] evil 04red");
    }

    #[test]
    fn control_characters_and_newlines_become_spaces() {
        let j = job(
            "alice",
            "line one\r\nPRIVMSG #chan :pwned\0 \u{2028}x\u{85}y\ttab",
            None,
            false,
            false,
        );
        assert_eq!(
            text(&j, 1_000),
            "[bodhi] line one PRIVMSG #chan :pwned x y tab"
        );
    }

    #[test]
    fn long_summary_is_cut_but_the_link_is_whole() {
        let link = format!(
            "https://bodhi.fedoraproject.org/updates/{}",
            "x".repeat(150)
        );
        let j = job("alice", &"é".repeat(600), Some(&link), true, true);
        let t = text(&j, 100_000);
        assert!(t.len() <= text_budget("alice"), "{}", t.len());
        assert!(t.contains(&link));
        assert!(t.contains('…'));
    }

    #[test]
    fn a_link_too_long_to_fit_is_left_out_not_cut() {
        let link = format!("https://example.org/{}", "x".repeat(500));
        let j = job("alice", "summary", Some(&link), false, false);
        let t = text(&j, 1_000);
        assert_eq!(t, "[bodhi] summary");
    }

    #[test]
    fn confirmation_line() {
        let c = ConfirmationJob {
            job_id: "c1".into(),
            user: "alice".into(),
            nick: "alice_irc".into(),
            accept_url: "https://n.example/confirm/accept/abc".into(),
            reject_url: Some("https://n.example/confirm/reject/abc".into()),
            destination: Some("irc-2".into()),
        };
        let job = IrcJob::parse(&c.to_json()).unwrap();
        assert_eq!(job, IrcJob::Confirmation(c));
        assert_eq!(
            job.text(&ctx(0)),
            "Fedora Notifications: account alice has requested that notifications be sent to \
             this nick; to accept visit https://n.example/confirm/accept/abc; to reject visit \
             https://n.example/confirm/reject/abc"
        );
        // However long the user's part, the line starts with the fixed text.
        let long = ConfirmationJob {
            user: "QUIT".repeat(200),
            ..c_clone(&job)
        };
        assert!(IrcJob::Confirmation(long)
            .text(&ctx(0))
            .starts_with(CONFIRMATION_PREFIX));
    }

    #[test]
    fn services_answers_to_info() {
        let v = |notice: &str| nickserv_info_verdict("Alice", notice);
        assert_eq!(
            v("Information on \x02alice\x02 (account \x02alice\x02):"),
            Some(true)
        );
        assert_eq!(v("\x02ALICE\x02 is not registered."), Some(false));
        assert_eq!(v("Nick \x02Alice\x02 isn't registered."), Some(false));
        // Other lines of the answer, and answers about other nicks, settle nothing.
        assert_eq!(v("Registered : Dec 01 10:00:00 2026 (1m ago)"), None);
        assert_eq!(v("\x02bob\x02 is not registered."), None);
        assert_eq!(
            v("Information on \x02alice2\x02 (account \x02alice2\x02):"),
            None
        );
        assert_eq!(v("*** \x02End of Info\x02 ***"), None);
    }

    fn c_clone(job: &IrcJob) -> ConfirmationJob {
        match job {
            IrcJob::Confirmation(c) => c.clone(),
            _ => unreachable!("a confirmation"),
        }
    }

    #[test]
    fn parsing_checks_kind_and_nick() {
        let j = job("alice", "s", None, false, false);
        let body = serde_json::to_string(&j).unwrap();
        assert!(matches!(IrcJob::parse(&body), Ok(IrcJob::Delivery(_))));
        let mut email = j.clone();
        email.destination.kind = DestinationKind::Email;
        assert_eq!(
            IrcJob::parse(&serde_json::to_string(&email).unwrap()),
            Err(LineError::NotIrc("email"))
        );
        for nick in ["a,b", "#chan", "a b", "", "1abc", "a\r\nQUIT"] {
            let mut bad = j.clone();
            bad.destination.address = nick.into();
            assert!(
                matches!(
                    IrcJob::parse(&serde_json::to_string(&bad).unwrap()),
                    Err(LineError::BadNick(_))
                ),
                "{nick:?}"
            );
        }
        assert!(matches!(IrcJob::parse("{"), Err(LineError::Malformed(_))));
        assert!(matches!(
            IrcJob::parse(r#"{"kind":"other"}"#),
            Err(LineError::Malformed(_))
        ));
        assert!(valid_nick("fedora-notif[m]`_^{}|\\"));
        assert!(!valid_nick("NickServ"));
    }

    #[test]
    fn cut_respects_character_boundaries() {
        assert_eq!(cut("aé", 2), "a");
        assert_eq!(ellipsize("abcdef", 4), "a…");
        assert_eq!(humanise(1), "1 second ago");
        assert_eq!(humanise(7200), "2 hours ago");
    }

    fn nick() -> impl Strategy<Value = String> {
        "[a-zA-Z_\\[\\]{}|`^-][a-zA-Z0-9_\\[\\]{}|`^-]{0,31}"
    }

    proptest! {
        #[test]
        fn lines_never_exceed_the_limit_nor_break(
            nick in nick(),
            subtitle in any::<String>(),
            title in any::<String>(),
            app in any::<String>(),
            agent in proptest::option::of(any::<String>()),
            link in proptest::option::of(any::<String>()),
            filter in any::<String>(),
            colour in any::<bool>(),
            verbose in any::<bool>(),
            age in 0i64..10_000_000,
        ) {
            let mut j = job(&nick, &subtitle, link.as_deref(), colour, verbose);
            j.notification.title = title;
            j.notification.app = app;
            j.notification.agent = agent;
            j.filter_name = filter;
            let t = text(&j, 1_000 + age);
            let line = format!("{}\r\n", privmsg(&nick, &t));
            prop_assert!(PREFIX_ALLOWANCE + line.len() <= MAX_LINE, "{} bytes", line.len());
            prop_assert!(t.len() <= TEXT_BUDGET);
            prop_assert!(!t.contains(['\r', '\n', '\0']));
            // The only control characters are our colour codes.
            prop_assert!(t.chars().all(|c| !c.is_control() || (colour && (c == '\x03' || c == '\x0f'))));
            // A link that fits is whole.
            if let Some(link) = &link {
                let l = clean_link(link);
                if !l.is_empty() && l.len() + 30 < text_budget(&nick) {
                    prop_assert!(t.contains(&l), "link {l:?} missing from {t:?}");
                }
            }
        }

        #[test]
        fn confirmations_never_exceed_the_limit(
            nick in nick(),
            user in any::<String>(),
            accept in any::<String>(),
            reject in proptest::option::of(any::<String>()),
        ) {
            let c = ConfirmationJob { job_id: "c".into(), user, nick: nick.clone(), accept_url: accept, reject_url: reject, destination: None };
            let t = IrcJob::Confirmation(c).text(&ctx(0));
            let line = format!("{}\r\n", privmsg(&nick, &t));
            prop_assert!(PREFIX_ALLOWANCE + line.len() <= MAX_LINE);
            prop_assert!(!t.chars().any(char::is_control));
        }

        #[test]
        fn long_text_fits(nick in nick(), n in 0usize..2000, link_len in 0usize..600, colour in any::<bool>()) {
            let link = format!("https://e.org/{}", "y".repeat(link_len));
            let j = job(&nick, &"ü".repeat(n), Some(&link), colour, true);
            let t = text(&j, 1_000_000);
            prop_assert!(PREFIX_ALLOWANCE + privmsg(&nick, &t).len() + 2 <= MAX_LINE);
            if link.len() + 40 < text_budget(&nick) {
                prop_assert!(t.contains(&link));
            }
        }
    }
}
