//! Matrix messages: what the deliver-matrix bot sends to a user's direct-message room.
//!
//! Pure: no I/O. A Matrix destination's address is a full user id, `@localpart:server`
//! ([`normalize_user_id`] turns a bare Fedora account name into `@name:fedora.im`, where
//! Fedora's contributors are). Every message is an `m.room.message` of msgtype `m.notice`
//! (a bot's message: clients do not answer notices) with a plain-text `body` and an HTML
//! `formatted_body` (`org.matrix.custom.html`), content escaped, only http(s) links as anchors.
//!
//! The Matrix queue carries two kinds of jobs ([`MatrixJob`]): a [`DeliveryJob`] from the
//! match function (rendered here by the bot), and a message already rendered
//! (`{"kind": "message", …}`): a confirmation request from the web-api, or a digest from the
//! digest run.

use serde::{Deserialize, Serialize};

use crate::jobs::DeliveryJob;
use crate::prefs::DestinationKind;
use crate::render::{html_escape, html_link, truncate_chars, utc_time};

/// The homeserver of a bare account name: Fedora's (`@name:fedora.im`).
pub const DEFAULT_SERVER: &str = "fedora.im";
/// The longest user id the Matrix specification allows (`@`, localpart, `:`, server).
pub const MAX_USER_ID: usize = 255;
/// Bytes of `body` and `formatted_body` each at most: an event is limited to 65,536 bytes in
/// all (the specification), so each text keeps well inside half of it.
pub const MAX_TEXT: usize = 24 * 1024;

/// `input` as a full Matrix user id: `@name:server` as it is (checked), or a bare account name
/// (`name`, `@name`) on [`DEFAULT_SERVER`]. The localpart is lower-cased (Matrix user ids are
/// lower case; servers refuse upper case at registration), the server name kept.
pub fn normalize_user_id(input: &str) -> Result<String, String> {
    let input = input.trim();
    let bare = input.strip_prefix('@').unwrap_or(input);
    let (local, server) = match bare.split_once(':') {
        Some((local, server)) => (local, server),
        None => (bare, DEFAULT_SERVER),
    };
    let id = format!("@{}:{server}", local.to_lowercase());
    validate_user_id(&id)?;
    Ok(id)
}

/// A Matrix user id as the specification's grammar has it today: `@localpart:server_name`,
/// the localpart of `a-z 0-9 . _ = - / +`, the server a DNS name or IP literal with an
/// optional port, at most [`MAX_USER_ID`] bytes.
pub fn validate_user_id(id: &str) -> Result<(), String> {
    const EXPECTED: &str =
        "a Matrix user id `@name:server` (name of a-z, 0-9 and ._=-/+), or a Fedora account name";
    if id.len() > MAX_USER_ID {
        return Err(format!("{EXPECTED}; at most {MAX_USER_ID} characters"));
    }
    let Some((local, server)) = id.strip_prefix('@').and_then(|r| r.split_once(':')) else {
        return Err(EXPECTED.into());
    };
    let local_ok = !local.is_empty()
        && local
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._=-/+".contains(c));
    if !local_ok || !valid_server_name(server) {
        return Err(EXPECTED.into());
    }
    Ok(())
}

/// `host[:port]`: a DNS name, an IPv4 address or a bracketed IPv6 literal.
fn valid_server_name(server: &str) -> bool {
    let (host, port) = match server.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((v6, tail)) => {
                if v6.is_empty()
                    || !v6
                        .chars()
                        .all(|c| c.is_ascii_hexdigit() || ":.".contains(c))
                {
                    return false;
                }
                (None, tail)
            }
            None => return false,
        },
        None => match server.split_once(':') {
            Some((h, p)) => (Some(h), &server[h.len()..][..p.len() + 1]),
            None => (Some(server), ""),
        },
    };
    let port_ok = port.is_empty()
        || port
            .strip_prefix(':')
            .is_some_and(|p| (1..=5).contains(&p.len()) && p.chars().all(|c| c.is_ascii_digit()));
    let host_ok = host.is_none_or(|host| {
        !host.is_empty()
            && host.len() <= 230
            && host.split('.').all(|label| {
                !label.is_empty()
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            })
    });
    port_ok && host_ok
}

/// A message's content: `body` in plain text, `formatted_body` in HTML.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatrixText {
    pub body: String,
    pub html: String,
}

impl MatrixText {
    /// The `m.room.message` content to send.
    pub fn content(&self) -> serde_json::Value {
        serde_json::json!({
            "msgtype": "m.notice",
            "body": self.body,
            "format": "org.matrix.custom.html",
            "formatted_body": self.html,
        })
    }
}

/// A message rendered before it was queued (a confirmation request, a digest).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreparedMessage {
    /// Unique per message: the transaction id, and the delivery record's key.
    pub job_id: String,
    /// The account it is for.
    pub user: String,
    /// The destination's id (`confirmation` for a confirmation request).
    pub destination: String,
    /// The Matrix user to send to.
    pub user_id: String,
    pub text: MatrixText,
}

#[derive(Serialize)]
struct Tagged<'a> {
    kind: &'static str,
    #[serde(flatten)]
    job: &'a PreparedMessage,
}

impl PreparedMessage {
    /// The JSON the Matrix queue carries for it (`{"kind": "message", …}`).
    pub fn to_json(&self) -> String {
        serde_json::to_string(&Tagged {
            kind: "message",
            job: self,
        })
        .expect("a prepared message serialises")
    }
}

/// Why a job cannot be sent on Matrix. Never worth retrying.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MatrixJobError {
    #[error("malformed: {0}")]
    Malformed(String),
    #[error("destination is {0}, not matrix")]
    NotMatrix(&'static str),
    #[error("not a Matrix user id: {0}")]
    BadUserId(String),
    #[error("the job has no id")]
    NoJobId,
}

/// A job on the Matrix queue.
#[derive(Debug, Clone, PartialEq)]
pub enum MatrixJob {
    Delivery(Box<DeliveryJob>),
    Prepared(PreparedMessage),
}

impl MatrixJob {
    /// Parses and checks a job: `"kind": "message"` is a prepared message, anything else must
    /// be a delivery job to a Matrix destination.
    pub fn parse(body: &str) -> Result<MatrixJob, MatrixJobError> {
        let value: serde_json::Value =
            serde_json::from_str(body).map_err(|e| MatrixJobError::Malformed(e.to_string()))?;
        let job = match value.get("kind").and_then(|k| k.as_str()) {
            Some("message") => MatrixJob::Prepared(
                serde_json::from_value(value)
                    .map_err(|e| MatrixJobError::Malformed(format!("message job: {e}")))?,
            ),
            Some(other) => {
                return Err(MatrixJobError::Malformed(format!(
                    "unknown job kind `{other}`"
                )))
            }
            None => {
                let job: DeliveryJob = serde_json::from_value(value)
                    .map_err(|e| MatrixJobError::Malformed(format!("delivery job: {e}")))?;
                if job.destination.kind != DestinationKind::Matrix {
                    return Err(MatrixJobError::NotMatrix(job.destination.kind.as_str()));
                }
                MatrixJob::Delivery(Box::new(job))
            }
        };
        if job.job_id().trim().is_empty() {
            return Err(MatrixJobError::NoJobId);
        }
        validate_user_id(job.user_id())
            .map_err(|_| MatrixJobError::BadUserId(job.user_id().chars().take(64).collect()))?;
        Ok(job)
    }

    pub fn job_id(&self) -> &str {
        match self {
            MatrixJob::Delivery(j) => &j.job_id,
            MatrixJob::Prepared(j) => &j.job_id,
        }
    }

    /// The Matrix user the message goes to.
    pub fn user_id(&self) -> &str {
        match self {
            MatrixJob::Delivery(j) => &j.destination.address,
            MatrixJob::Prepared(j) => &j.user_id,
        }
    }

    /// The account the job is for.
    pub fn user(&self) -> &str {
        match self {
            MatrixJob::Delivery(j) => &j.user,
            MatrixJob::Prepared(j) => &j.user,
        }
    }

    pub fn destination_id(&self) -> &str {
        match self {
            MatrixJob::Delivery(j) => &j.destination.id,
            MatrixJob::Prepared(j) => &j.destination,
        }
    }

    /// The message to send.
    pub fn text(&self) -> MatrixText {
        match self {
            MatrixJob::Delivery(j) => delivery(j),
            MatrixJob::Prepared(j) => j.text.clone(),
        }
    }
}

/// One line of text: control characters (newlines included) become spaces.
fn one_line(text: &str) -> String {
    crate::irc_line::clean(text)
}

/// The summary of a notification: its subtitle, or its title.
fn summary(job: &DeliveryJob) -> String {
    let n = &job.notification;
    truncate_chars(&one_line(n.subtitle.as_deref().unwrap_or(&n.title)), 500)
}

/// A delivery: `[app] summary`, the link, and in the verbose form who did it, when, and the
/// filter that matched.
pub fn delivery(job: &DeliveryJob) -> MatrixText {
    let n = &job.notification;
    let app = truncate_chars(&one_line(&n.app), 40);
    let summary = summary(job);
    let link = n.link.as_deref().map(one_line).filter(|l| !l.is_empty());
    let mut body = format!("[{app}] {summary}");
    let mut html = format!("<b>[{}]</b> {}", html_escape(&app), html_escape(&summary));
    if let Some(link) = &link {
        body.push_str(&format!("\n{link}"));
        html.push_str(&format!("<br>{}", html_link(link)));
    }
    if job.destination.verbose {
        let mut details = Vec::new();
        if let Some(agent) = n.agent.as_deref().map(one_line).filter(|a| !a.is_empty()) {
            details.push(format!("by {agent}"));
        }
        if let Some(ts) = n.timestamp {
            details.push(utc_time(ts));
        }
        details.push(format!(
            "filter: {}",
            truncate_chars(&one_line(&job.filter_name), 64)
        ));
        let details = details.join(" · ");
        body.push_str(&format!("\n{details}"));
        html.push_str(&format!("<br><small>{}</small>", html_escape(&details)));
    }
    MatrixText { body, html }
}

/// The confirmation request sent to a new Matrix destination.
pub fn confirmation(user: &str, accept_url: &str, hours: u64) -> MatrixText {
    let user = one_line(user);
    let body = format!(
        "Fedora Notifications: account `{user}` has asked that notifications be sent to you \
         here. To accept, visit {accept_url} (valid for {hours} hours). If you did not ask, \
         ignore this message: nothing more is sent until it is accepted."
    );
    let html = format!(
        "<b>Fedora Notifications</b>: account <code>{}</code> has asked that notifications be \
         sent to you here. To accept, visit {} (valid for {hours} hours). If you did not ask, \
         ignore this message: nothing more is sent until it is accepted.",
        html_escape(&user),
        html_link(accept_url)
    );
    MatrixText { body, html }
}

/// A digest: one message listing `jobs` grouped by service (services in the order of their
/// first item, items in time order), each item with its link. The text stays within
/// [`MAX_TEXT`]: items beyond it are counted (`… and N more`), not listed.
pub fn digest(jobs: &[DeliveryJob], preferences_url: &str) -> MatrixText {
    let groups = crate::render::digest::group_by_service(jobs);
    let heading = format!(
        "Fedora Notifications Digest ({} update{})",
        jobs.len(),
        if jobs.len() == 1 { "" } else { "s" }
    );
    let mut body = heading.clone();
    let mut html = format!("<h4>{}</h4>", html_escape(&heading));
    let footer_body = format!("\nChange what you receive: {preferences_url}");
    let footer_html = format!(
        "<p>Change what you receive: {}</p>",
        html_link(preferences_url)
    );
    let reserve = 200 + footer_body.len().max(footer_html.len());
    let mut listed = 0;
    'groups: for (app, items) in &groups {
        let app = truncate_chars(&one_line(app), 40);
        let group_body = format!("\n\n{app}");
        let group_html = format!("<p><b>{}</b></p><ul>", html_escape(&app));
        if body.len() + group_body.len() + reserve > MAX_TEXT
            || html.len() + group_html.len() + reserve > MAX_TEXT
        {
            break;
        }
        body.push_str(&group_body);
        html.push_str(&group_html);
        for job in items {
            let summary = summary(job);
            let link = job.notification.link.as_deref().map(one_line);
            let item_body = match &link {
                Some(l) if !l.is_empty() => format!("\n- {summary} {l}"),
                _ => format!("\n- {summary}"),
            };
            let item_html = match &link {
                Some(l) if !l.is_empty() => {
                    format!("<li>{} {}</li>", html_escape(&summary), html_link(l))
                }
                _ => format!("<li>{}</li>", html_escape(&summary)),
            };
            if body.len() + item_body.len() + reserve > MAX_TEXT
                || html.len() + item_html.len() + "</ul>".len() + reserve > MAX_TEXT
            {
                html.push_str("</ul>");
                break 'groups;
            }
            body.push_str(&item_body);
            html.push_str(&item_html);
            listed += 1;
        }
        html.push_str("</ul>");
    }
    if listed < jobs.len() {
        let more = format!("… and {} more", jobs.len() - listed);
        body.push_str(&format!("\n\n{more}"));
        html.push_str(&format!("<p>{}</p>", html_escape(&more)));
    }
    body.push_str(&footer_body);
    html.push_str(&footer_html);
    MatrixText { body, html }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::Notification;
    use crate::prefs::Destination;

    fn job(id: &str, app: &str, subtitle: &str, ts: f64) -> DeliveryJob {
        DeliveryJob {
            job_id: id.into(),
            user: "alice".into(),
            filter_id: "filter-1".into(),
            filter_name: "My packages".into(),
            reason: "r".into(),
            reason_code: String::new(),
            destination: Destination::matrix("matrix-1", "@alice:fedora.im"),
            notification: Notification {
                msg_id: format!("msg-{id}"),
                topic: "org.fedoraproject.prod.bodhi.update.comment".into(),
                app: app.into(),
                agent: Some("bob".into()),
                title: "title".into(),
                subtitle: Some(subtitle.into()),
                link: Some(format!("https://example.org/{id}")),
                usernames: vec![],
                packages: vec![],
                usernames_total: None,
                packages_total: None,
                timestamp: Some(ts),
                severity: Default::default(),
                origin: Default::default(),
                long_text: None,
            },
        }
    }

    #[test]
    fn bare_names_are_on_fedora_im_and_ids_are_checked() {
        assert_eq!(normalize_user_id("alice").unwrap(), "@alice:fedora.im");
        assert_eq!(normalize_user_id(" @Alice ").unwrap(), "@alice:fedora.im");
        assert_eq!(
            normalize_user_id("@bob:matrix.org").unwrap(),
            "@bob:matrix.org"
        );
        assert_eq!(
            normalize_user_id("@bob:127.0.0.1:8448").unwrap(),
            "@bob:127.0.0.1:8448"
        );
        assert_eq!(
            normalize_user_id("@bob:[::1]:8448").unwrap(),
            "@bob:[::1]:8448"
        );
        for bad in [
            "",
            "@",
            "@:fedora.im",
            "@a b:fedora.im",
            "@a:",
            "@a:bad_host",
            "@a:host:port",
            "@a:-x.org",
            "#room:fedora.im",
            "@a:fedora.im\nb",
            "a,b",
        ] {
            assert!(normalize_user_id(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(validate_user_id("@Alice:fedora.im").is_err());
        assert!(validate_user_id(&format!("@{}:fedora.im", "a".repeat(250))).is_err());
    }

    #[test]
    fn a_delivery_has_plain_and_escaped_html_text() {
        let mut j = job("1", "bodhi", "bob <b>commented</b>\non it", 0.0);
        let t = delivery(&j);
        assert_eq!(
            t.body,
            "[bodhi] bob <b>commented</b> on it\nhttps://example.org/1\nby bob · 1970-01-01 00:00:00 UTC · filter: My packages"
        );
        assert!(t.html.contains("bob &lt;b&gt;commented&lt;/b&gt; on it"));
        assert!(t.html.contains("<a href=\"https://example.org/1\">"));
        j.destination.verbose = false;
        j.notification.link = Some("javascript:alert(1)".into());
        let t = delivery(&j);
        assert_eq!(
            t.body,
            "[bodhi] bob <b>commented</b> on it\njavascript:alert(1)"
        );
        assert!(!t.html.contains("href"));
        let c = t.content();
        assert_eq!(c["format"], "org.matrix.custom.html");
        assert_eq!(c["msgtype"], "m.notice");
    }

    #[test]
    fn jobs_parse_and_refuse_what_is_not_for_matrix() {
        let j = job("1", "bodhi", "s", 0.0);
        let parsed = MatrixJob::parse(&serde_json::to_string(&j).unwrap()).unwrap();
        assert_eq!(parsed.user_id(), "@alice:fedora.im");
        let mut irc = j.clone();
        irc.destination.kind = DestinationKind::Irc;
        assert_eq!(
            MatrixJob::parse(&serde_json::to_string(&irc).unwrap()),
            Err(MatrixJobError::NotMatrix("irc"))
        );
        let prepared = PreparedMessage {
            job_id: "confirm-1".into(),
            user: "alice".into(),
            destination: "confirmation".into(),
            user_id: "@alice:fedora.im".into(),
            text: confirmation("alice", "https://x/confirm/t", 24),
        };
        assert_eq!(
            MatrixJob::parse(&prepared.to_json()).unwrap(),
            MatrixJob::Prepared(prepared.clone())
        );
        let mut bad = prepared;
        bad.user_id = "@alice".into();
        assert!(matches!(
            MatrixJob::parse(&bad.to_json()),
            Err(MatrixJobError::BadUserId(_))
        ));
        assert!(MatrixJob::parse("{\"kind\":\"x\"}").is_err());
        assert!(MatrixJob::parse("nope").is_err());
    }

    #[test]
    fn a_digest_groups_by_service_and_stays_within_the_event_limit() {
        let jobs = vec![
            job("1", "koji", "build one", 3.0),
            job("2", "bodhi", "update two", 1.0),
            job("3", "koji", "build three", 2.0),
        ];
        let t = digest(&jobs, "https://n/");
        assert_eq!(
            t.body,
            "Fedora Notifications Digest (3 updates)\n\nbodhi\n- update two https://example.org/2\n\nkoji\n- build three https://example.org/3\n- build one https://example.org/1\nChange what you receive: https://n/"
        );
        assert!(t.html.contains("<p><b>bodhi</b></p><ul><li>update two"));
        let many: Vec<_> = (0..2000)
            .map(|i| job(&i.to_string(), "koji", &"x".repeat(200), i as f64))
            .collect();
        let t = digest(&many, "https://n/");
        assert!(t.body.len() <= MAX_TEXT && t.html.len() <= MAX_TEXT);
        assert!(
            t.body.contains(" more\n"),
            "{}",
            &t.body[t.body.len() - 100..]
        );
    }
}
