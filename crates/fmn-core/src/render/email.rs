//! One notification, one mail.
//!
//! Subject: `[<app>] <subtitle, or the title when there is none>` (FMN 3's form). Body: the
//! message's long text when it has one (a fedora-messaging schema's `__str__`, as FMN 3 mailed
//! it) or else the subtitle, then the link, who did it, the topic and when it was published,
//! then a footer naming the filter that matched, a link to edit it and the preferences page.
//! Headers for filtering, as the old FMN sent them: `X-Fedmsg-Topic`, `X-Fedmsg-Category` (the
//! topic's fourth field), one `X-Fedmsg-Username` per user of the message (sorted),
//! `X-Fedmsg-Id`, one `X-Fedmsg-Package` for each of the first 10 packages and
//! `X-Fedmsg-Num-Packages`; ours: `X-Fmn-Filter` (name), `X-Fmn-Filter-Id`, `X-Fmn-Filter-Url`
//! and `X-Fmn-Reason` (a stable code: `own-package`, `catalogue:<entry>`…). A fedora-messaging message also gets FMN 3's: `Date` is when the
//! message was sent, and `X-Fedora-Messaging-Topic`, `X-Fedora-Messaging-Id` and
//! `X-Fedora-Messaging-Link` (the message in datagrepper).

use std::fmt::Write as _;

use super::{
    assemble, common_headers, html_escape, html_link, require_email, truncate_chars, utc_time,
    MailContext, RenderError, RenderedMail, MAX_HEADER_CHARS, MAX_PACKAGE_HEADERS,
    MAX_SUBJECT_CHARS,
};
use crate::jobs::{DeliveryJob, Notification};
use crate::message::Origin;

/// Where datagrepper shows one message, raw, whole.
const DATAGREPPER_ID_URL: &str = "https://apps.fedoraproject.org/datagrepper/v2/id";

/// The datagrepper page of a message id.
pub fn datagrepper_url(msg_id: &str) -> String {
    format!(
        "{DATAGREPPER_ID_URL}?id={}&is_raw=true&size=extra-large",
        percent_encode(msg_id)
    )
}

/// Percent-encoding of a query value: everything but RFC 3986 unreserved characters.
fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// A topic's category as the old FMN mailed it (`X-Fedmsg-Category`): its fourth
/// dot-separated field, `buildsys` in `org.fedoraproject.prod.buildsys.build.state.change`.
pub fn topic_category(topic: &str) -> Option<&str> {
    topic.split('.').nth(3).filter(|c| !c.is_empty())
}

/// Where the page opens on one filter (the mail's "edit this filter" link).
pub fn filter_url(ctx: &MailContext, filter_id: &str) -> String {
    format!(
        "{}#filter-{}",
        ctx.preferences_url(),
        percent_encode(filter_id)
    )
}

/// The one-line summary: `[bodhi] alice submitted foo-1.0 to testing`.
pub fn subject(n: &Notification) -> String {
    let what = n
        .subtitle
        .as_deref()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or(&n.title);
    // fedora-messaging schemas may name no application (`app_name` is None).
    let line = if n.app.is_empty() {
        super::clean_header_text(what)
    } else {
        super::clean_header_text(&format!("[{}] {}", n.app, what))
    };
    truncate_chars(&line, MAX_SUBJECT_CHARS)
}

/// The `Message-ID` of a job's mail: derived from the job id, so a resent copy carries the same
/// id and mail clients show it once.
pub fn message_id(job: &DeliveryJob, ctx: &MailContext) -> String {
    format!("fmn.{}@{}", job.job_id, ctx.domain())
}

/// The whole mail for one job, dated `now_secs`.
pub fn render(
    job: &DeliveryJob,
    ctx: &MailContext,
    now_secs: i64,
) -> Result<RenderedMail, RenderError> {
    let d = &job.destination;
    require_email(d.kind, &d.id, &d.address)?;
    let n = &job.notification;
    let subject = subject(n);
    let message_id = message_id(job, ctx);
    // FMN 3 dates a fedora-messaging notification when the message was sent.
    let date = match (n.origin, n.timestamp) {
        (Origin::FedoraMessaging, Some(sent)) if sent.is_finite() => sent as i64,
        _ => now_secs,
    };
    let mut h = common_headers(
        ctx,
        &d.address,
        &subject,
        &message_id,
        date,
        &job.user,
        &d.id,
    );
    h.text("X-Fedmsg-Topic", &n.topic, MAX_HEADER_CHARS);
    if let Some(category) = topic_category(&n.topic) {
        h.text("X-Fedmsg-Category", category, MAX_HEADER_CHARS);
    }
    // Every user of the message, sorted, one header each (old FMN, fmn#281).
    let mut users: Vec<&str> = n.usernames.iter().map(String::as_str).collect();
    users.sort_unstable();
    users.dedup();
    for u in users {
        h.text("X-Fedmsg-Username", u, MAX_HEADER_CHARS);
    }
    h.text("X-Fedmsg-Id", &n.msg_id, MAX_HEADER_CHARS);
    let mut packages: Vec<&str> = n.packages.iter().map(String::as_str).collect();
    packages.sort_unstable();
    packages.dedup();
    for p in packages.iter().take(MAX_PACKAGE_HEADERS) {
        h.text("X-Fedmsg-Package", p, MAX_HEADER_CHARS);
    }
    // The message's count, also when the job carries only the first of its packages.
    let count = n.packages_total.unwrap_or(packages.len());
    h.raw("X-Fedmsg-Num-Packages", &count.to_string());
    if n.origin == Origin::FedoraMessaging {
        h.text("X-Fedora-Messaging-Topic", &n.topic, MAX_HEADER_CHARS);
        h.text("X-Fedora-Messaging-Id", &n.msg_id, MAX_HEADER_CHARS);
        h.raw("X-Fedora-Messaging-Link", &datagrepper_url(&n.msg_id));
    }
    h.text("X-Fmn-Filter", &job.filter_name, MAX_HEADER_CHARS);
    h.text("X-Fmn-Filter-Id", &job.filter_id, MAX_HEADER_CHARS);
    h.text(
        "X-Fmn-Filter-Url",
        &filter_url(ctx, &job.filter_id),
        MAX_HEADER_CHARS,
    );
    if !job.reason_code.is_empty() {
        h.text("X-Fmn-Reason", &job.reason_code, MAX_HEADER_CHARS);
    }

    let (text, html) = bodies(job, ctx);
    Ok(RenderedMail {
        to: d.address.clone(),
        subject,
        message_id: message_id.clone(),
        raw: assemble(h, &job.job_id, &text, &html),
    })
}

/// The plain-text and HTML bodies.
fn bodies(job: &DeliveryJob, ctx: &MailContext) -> (String, String) {
    let n = &job.notification;
    let headline = n
        .subtitle
        .as_deref()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or(&n.title);
    let prefs = ctx.preferences_url();

    let mut text = String::new();
    let mut html =
        String::from("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"></head><body>\n");
    match n.long_text.as_deref().filter(|t| !t.trim().is_empty()) {
        // FMN 3's body: the long text, then the link.
        Some(long) => {
            let _ = writeln!(text, "{}\n", long.trim_end());
            let _ = writeln!(html, "<pre>{}</pre>", html_escape(long.trim_end()));
        }
        None => {
            let _ = writeln!(text, "{headline}\n");
            let _ = writeln!(html, "<p>{}</p>", html_escape(headline));
        }
    }
    if let Some(link) = n.link.as_deref().filter(|l| !l.is_empty()) {
        let _ = writeln!(text, "{link}\n");
        let _ = writeln!(html, "<p>{}</p>", html_link(link));
    }
    let mut facts: Vec<(&str, String)> = Vec::new();
    if let Some(agent) = n.agent.as_deref() {
        facts.push(("By", agent.to_string()));
    }
    facts.push(("Topic", n.topic.clone()));
    if let Some(ts) = n.timestamp {
        facts.push(("Published", utc_time(ts)));
    }
    if !n.packages.is_empty() {
        let mut list = n.packages.join(", ");
        if let Some(total) = n.packages_total {
            let _ = write!(list, " and {} more", total.saturating_sub(n.packages.len()));
        }
        facts.push(("Packages", list));
    }
    let _ = writeln!(html, "<table>");
    for (k, v) in &facts {
        let _ = writeln!(text, "{k}: {v}");
        let _ = writeln!(
            html,
            "<tr><th align=\"left\">{}</th><td>{}</td></tr>",
            html_escape(k),
            html_escape(v)
        );
    }
    let _ = writeln!(html, "</table>");
    let footer = format!(
        "You received this message because of your filter \"{}\" ({}).",
        job.filter_name, job.reason
    );
    let edit = filter_url(ctx, &job.filter_id);
    let _ = write!(
        text,
        "\n-- \n{footer}\nEdit this filter: {edit}\nChange your notification preferences at {prefs}\n"
    );
    let _ = write!(
        html,
        "<hr>\n<p><small>{}<br>\nEdit this filter: {}<br>\nChange your notification preferences at {}</small></p>\n</body></html>\n",
        html_escape(&footer),
        html_link(&edit),
        html_link(&prefs)
    );
    (text, html)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::meta::Severity;
    use crate::prefs::{Delivery, Destination, DestinationKind};

    pub(crate) fn ctx() -> MailContext {
        MailContext {
            from_address: "notifications@fedoraproject.org".into(),
            from_name: "Fedora Notifications".into(),
            public_url: "http://127.0.0.1:8080".into(),
            unsubscribe_secret: b"test-secret".to_vec(),
        }
    }

    pub(crate) fn job(subtitle: &str) -> DeliveryJob {
        DeliveryJob {
            job_id: "0123456789abcdef0123456789abcdef".into(),
            user: "alice".into(),
            filter_id: "filter-1".into(),
            filter_name: "My packages".into(),
            reason: "package owned".into(),
            reason_code: "own-package".into(),
            destination: Destination {
                id: "email-1".into(),
                kind: DestinationKind::Email,
                address: "alice@example.org".into(),
                confirmed: true,
                delivery: Delivery::Immediate,
                irc_colour: false,
                verbose: true,
                health: Default::default(),
                quiet_hours: None,
                paused: false,
                verified_by: None,
            },
            notification: Notification {
                msg_id: "2024-abc".into(),
                topic: "org.fedoraproject.prod.bodhi.update.comment".into(),
                app: "bodhi".into(),
                agent: Some("bob".into()),
                title: "bodhi.update.comment".into(),
                subtitle: Some(subtitle.into()),
                link: Some("https://bodhi.fedoraproject.org/updates/FEDORA-1?a=1&b=2".into()),
                usernames: vec!["bob".into()],
                packages: vec!["python-foo".into(), "foo".into()],
                usernames_total: None,
                packages_total: None,
                timestamp: Some(1_700_000_000.0),
                severity: Severity::default(),
                origin: Default::default(),
                long_text: None,
            },
        }
    }

    fn header_lines(raw: &str) -> Vec<String> {
        let head = raw.split("\r\n\r\n").next().unwrap();
        // Unfold.
        head.replace("\r\n ", " ")
            .split("\r\n")
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn a_job_renders_as_multipart_alternative_with_filtering_headers() {
        let mail = render(
            &job("bob commented on foo-1.0 <b>&</b>"),
            &ctx(),
            1_700_000_100,
        )
        .unwrap();
        let raw = String::from_utf8(mail.raw.clone()).unwrap();
        assert!(raw.is_ascii());
        let headers = header_lines(&raw);
        let has = |h: &str| headers.iter().any(|l| l == h);
        assert!(
            has("From: Fedora Notifications <notifications@fedoraproject.org>"),
            "{headers:#?}"
        );
        assert!(has("To: <alice@example.org>"));
        assert!(has("Subject: [bodhi] bob commented on foo-1.0 <b>&</b>"));
        assert!(has("Date: Tue, 14 Nov 2023 22:15:00 +0000"));
        assert!(has(
            "Message-ID: <fmn.0123456789abcdef0123456789abcdef@fedoraproject.org>"
        ));
        assert!(has("MIME-Version: 1.0"));
        assert!(has(
            "X-Fedmsg-Topic: org.fedoraproject.prod.bodhi.update.comment"
        ));
        assert!(has("X-Fedmsg-Category: bodhi"));
        assert!(has("X-Fedmsg-Username: bob"));
        assert!(has("X-Fedmsg-Id: 2024-abc"));
        assert!(has("X-Fedmsg-Package: foo"));
        assert!(has("X-Fedmsg-Package: python-foo"));
        assert!(has("X-Fedmsg-Num-Packages: 2"));
        assert!(has(
            "List-Id: Fedora Notifications <notifications.fedoraproject.org>"
        ));
        assert!(has("List-Unsubscribe-Post: List-Unsubscribe=One-Click"));
        let unsub = headers
            .iter()
            .find_map(|l| l.strip_prefix("List-Unsubscribe: <"))
            .unwrap()
            .trim_end_matches('>');
        let token = unsub
            .strip_prefix("http://127.0.0.1:8080/api/v1/unsubscribe/")
            .unwrap();
        assert_eq!(
            crate::unsubscribe::verify_token(b"test-secret", token),
            Some(("alice".into(), "email-1".into()))
        );
        // Structure: preamble, two parts, closing boundary.
        let boundary = raw
            .split("boundary=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        assert_eq!(raw.matches(&format!("\r\n--{boundary}\r\n")).count(), 2);
        assert!(raw.ends_with(&format!("\r\n--{boundary}--\r\n")));
        assert!(raw.contains("Content-Type: text/plain; charset=utf-8"));
        assert!(raw.contains("Content-Type: text/html; charset=utf-8"));
        // HTML is escaped; plain text is not.
        assert!(raw.contains("&lt;b&gt;&amp;&lt;/b&gt;"));
        assert!(raw.contains("bob commented on foo-1.0 <b>&</b>"));
        assert!(raw.contains("My packages"));
        assert!(raw.contains("http://127.0.0.1:8080/"));
        for line in raw.split("\r\n") {
            assert!(line.len() <= 998);
        }
    }

    #[test]
    fn old_fmn_headers_and_ours_are_pinned() {
        let mut j = job("koji built it");
        j.notification.topic = "org.fedoraproject.prod.buildsys.build.state.change".into();
        j.notification.app = "koji".into();
        j.notification.usernames = vec!["zed".into(), "amy".into(), "bob".into()];
        j.notification.packages = (0..12).map(|i| format!("pkg{i:02}")).collect();
        j.reason_code = "catalogue:koji_build_failed".into();
        j.filter_id = "f 1".into();
        let raw = String::from_utf8(render(&j, &ctx(), 0).unwrap().raw).unwrap();
        let headers = header_lines(&raw);
        let all = |name: &str| -> Vec<String> {
            headers
                .iter()
                .filter_map(|l| l.strip_prefix(&format!("{name}: ")))
                .map(str::to_string)
                .collect()
        };
        assert_eq!(all("X-Fedmsg-Category"), ["buildsys"]);
        assert_eq!(all("X-Fedmsg-Username"), ["amy", "bob", "zed"]);
        let packages: Vec<String> = (0..10).map(|i| format!("pkg{i:02}")).collect();
        assert_eq!(all("X-Fedmsg-Package"), packages);
        assert_eq!(all("X-Fedmsg-Num-Packages"), ["12"]);
        assert_eq!(all("X-Fmn-Reason"), ["catalogue:koji_build_failed"]);
        assert_eq!(all("X-Fmn-Filter"), ["My packages"]);
        assert_eq!(all("X-Fmn-Filter-Id"), ["f 1"]);
        assert_eq!(
            all("X-Fmn-Filter-Url"),
            ["http://127.0.0.1:8080/#filter-f%201"]
        );
        assert_eq!(all("Precedence"), ["bulk"]);
        assert_eq!(all("Auto-Submitted"), ["auto-generated"]);
        assert!(text_part(&raw).contains("Edit this filter: http://127.0.0.1:8080/#filter-f%201"));
        // No packages: still counted; no reason code: no header.
        j.notification.packages.clear();
        j.reason_code.clear();
        let raw = String::from_utf8(render(&j, &ctx(), 0).unwrap().raw).unwrap();
        let headers = header_lines(&raw);
        assert!(headers.contains(&"X-Fedmsg-Num-Packages: 0".to_string()));
        assert!(!headers.iter().any(|l| l.starts_with("X-Fmn-Reason")));
    }

    #[test]
    fn injection_through_message_content_adds_no_header() {
        let mut j = job("x\r\nBcc: victim@example.org\r\n\r\nfake body");
        j.notification.topic = "topic\nX-Injected: 1".into();
        j.notification.agent = Some("bob\r\nX-Injected: 2".into());
        j.notification.packages = vec!["p\rX-Injected: 3".into()];
        j.filter_name = "f\nX-Injected: 4".into();
        let raw = String::from_utf8(render(&j, &ctx(), 0).unwrap().raw).unwrap();
        let head = raw.split("\r\n\r\n").next().unwrap();
        assert!(
            !head.contains('\n')
                || head
                    .split("\r\n")
                    .all(|l| !l.contains('\r') && !l.contains('\n'))
        );
        for line in head.split("\r\n") {
            assert!(!line.starts_with("Bcc"), "{line}");
            assert!(!line.starts_with("X-Injected"), "{line}");
        }
        assert!(head.contains("Subject: [bodhi] x Bcc: victim@example.org fake body"));
    }

    #[test]
    fn bad_destinations_are_refused() {
        let mut j = job("s");
        j.destination.address = "a@example.org\r\nBcc: b@example.org".into();
        assert!(matches!(
            render(&j, &ctx(), 0),
            Err(RenderError::BadAddress(_))
        ));
        j.destination.kind = DestinationKind::Irc;
        assert!(matches!(
            render(&j, &ctx(), 0),
            Err(RenderError::NotEmail(_))
        ));
    }

    #[test]
    fn subjects_fall_back_to_the_title_and_are_cut() {
        let mut j = job("");
        assert_eq!(subject(&j.notification), "[bodhi] bodhi.update.comment");
        j.notification.subtitle = Some("y".repeat(1000));
        let s = subject(&j.notification);
        assert_eq!(s.chars().count(), MAX_SUBJECT_CHARS);
        assert!(s.ends_with('…'));
    }

    const FM_CORPUS: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/data/fedora-messaging-examples.jsonl"
    ));

    /// A job for a fedora-messaging corpus line, through the real parsing and metadata.
    fn corpus_job(line: &serde_json::Value) -> DeliveryJob {
        let envelope = crate::message::Envelope::from_fedora_messaging_value(line).unwrap();
        let meta = crate::meta::Registry::default().extract(&envelope);
        let mut j = job("unused");
        j.notification = Notification::new(&envelope, &meta);
        j
    }

    /// The plain-text part, decoded.
    fn text_part(raw: &str) -> String {
        let start = raw.find("Content-Type: text/plain").unwrap();
        let body = &raw[start..];
        let body = &body[body.find("\r\n\r\n").unwrap() + 4..];
        let end = body.find("\r\n--=_fmn_").unwrap();
        crate::render::decode_quoted_printable(&body[..end])
    }

    #[test]
    fn fedora_messaging_corpus_mails_carry_fmn3_headers_and_long_text() {
        let mut with_long_text = 0;
        for line in FM_CORPUS.lines().filter(|l| !l.trim().is_empty()) {
            let record: serde_json::Value = serde_json::from_str(line).unwrap();
            let expected = &record["expected"];
            let id = record["id"].as_str().unwrap();
            let j = corpus_job(&record);
            let mail = render(&j, &ctx(), 1_800_000_000).unwrap();
            let raw = String::from_utf8(mail.raw).unwrap();
            assert!(raw.is_ascii());
            let head = raw.split("\r\n\r\n").next().unwrap();
            for l in head.split("\r\n") {
                assert!(
                    !l.contains('\r') && !l.contains('\n') && l.len() <= 998,
                    "{l:?}"
                );
                // Every line is a header or a folded continuation.
                assert!(l.starts_with(' ') || l.contains(": "), "{id}: {l:?}");
            }
            let headers = header_lines(&raw);
            let has = |h: &str| headers.iter().any(|l| l == h);
            // `sent-at` is 2026-01-01T00:00:00+00:00 throughout the corpus.
            assert!(has("Date: Thu, 01 Jan 2026 00:00:00 +0000"), "{id}");
            assert!(has(&format!("X-Fedora-Messaging-Id: {id}")), "{id}");
            assert!(has(&format!(
                "X-Fedora-Messaging-Link: https://apps.fedoraproject.org/datagrepper/v2/id?id={id}&is_raw=true&size=extra-large"
            )));
            assert!(headers
                .iter()
                .any(|l| l.starts_with("X-Fedora-Messaging-Topic: org.")));
            // Subject: `[<app_name>] <summary>`, as FMN 3 (cleaned and cut like every subject).
            if let (Some(app), Some(summary)) =
                (expected["app_name"].as_str(), expected["summary"].as_str())
            {
                let want = crate::render::clean_header_text(&format!("[{app}] {summary}"));
                assert_eq!(
                    mail.subject,
                    truncate_chars(&want, MAX_SUBJECT_CHARS),
                    "{id}"
                );
            }
            // Body: the long text, then the link.
            let text = text_part(&raw);
            if let Some(long) = expected["__str__"].as_str() {
                if j.notification.long_text.as_deref() == Some(long) {
                    with_long_text += 1;
                    let mut want = format!("{}\r\n\r\n", long.trim_end().replace('\n', "\r\n"));
                    if let Some(url) = expected["url"].as_str() {
                        want.push_str(&format!("{url}\r\n"));
                    }
                    assert!(text.starts_with(&want), "{id}:\n{text}\n---\n{want}");
                }
            }
        }
        assert!(with_long_text > 250, "{with_long_text}");
    }

    #[test]
    fn fedora_messaging_content_cannot_inject_headers() {
        let mut j = job("s");
        j.notification.origin = Origin::FedoraMessaging;
        j.notification.msg_id = "id\r\nBcc: victim@example.org".into();
        j.notification.topic = "org.fedoraproject.prod.x\nX-Injected: 1".into();
        j.notification.long_text = Some("line\r\nX-Injected: 2\r\n\r\nbody".into());
        j.notification.timestamp = Some(f64::NAN);
        let raw = String::from_utf8(render(&j, &ctx(), 0).unwrap().raw).unwrap();
        let head = raw.split("\r\n\r\n").next().unwrap();
        for line in head.split("\r\n") {
            assert!(!line.starts_with("Bcc"), "{line}");
            assert!(!line.starts_with("X-Injected"), "{line}");
        }
        let headers = header_lines(&raw);
        assert!(headers.iter().any(|l| l
            == "X-Fedora-Messaging-Link: https://apps.fedoraproject.org/datagrepper/v2/id?id=id%0D%0ABcc%3A%20victim%40example.org&is_raw=true&size=extra-large"));
        // No usable `sent-at`: dated now.
        assert!(headers
            .iter()
            .any(|l| l == "Date: Thu, 01 Jan 1970 00:00:00 +0000"));
        assert!(text_part(&raw).starts_with("line\r\nX-Injected: 2\r\n\r\nbody\r\n"));
    }

    #[test]
    fn fedmsg_mails_keep_their_headers_and_use_a_long_text_when_there_is_one() {
        let mut j = job("bob commented");
        let raw = String::from_utf8(render(&j, &ctx(), 1_700_000_100).unwrap().raw).unwrap();
        assert!(!raw.contains("X-Fedora-Messaging"));
        assert!(text_part(&raw).starts_with("bob commented\r\n\r\nhttps://"));
        j.notification.long_text = Some("The long\nform".into());
        let raw = String::from_utf8(render(&j, &ctx(), 1_700_000_100).unwrap().raw).unwrap();
        assert!(text_part(&raw).starts_with("The long\r\nform\r\n\r\nhttps://"));
        assert!(raw.contains("<pre>The long"));
        assert!(header_lines(&raw).contains(&"Date: Tue, 14 Nov 2023 22:15:00 +0000".to_owned()));
    }
}
