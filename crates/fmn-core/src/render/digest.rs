//! A digest: one mail listing a destination's pending items, grouped by service (the app), the
//! services in the order of their first item, the items of each in time order, each with its
//! link. Subject `Fedora Notifications Digest (N updates)` as the old FMN's. A digest of one
//! item is sent as that item's ordinary mail (the old FMN did the same).

use std::fmt::Write as _;

use super::{
    assemble, common_headers, html_escape, html_link, require_email, utc_time, MailContext,
    RenderError, RenderedMail,
};
use crate::jobs::DeliveryJob;

/// The services and their items, in the order described above.
pub fn group_by_service(jobs: &[DeliveryJob]) -> Vec<(String, Vec<&DeliveryJob>)> {
    let mut sorted: Vec<&DeliveryJob> = jobs.iter().collect();
    sorted.sort_by(|a, b| {
        let ta = a.notification.timestamp.unwrap_or(0.0);
        let tb = b.notification.timestamp.unwrap_or(0.0);
        ta.total_cmp(&tb).then_with(|| a.job_id.cmp(&b.job_id))
    });
    let mut groups: Vec<(String, Vec<&DeliveryJob>)> = Vec::new();
    for job in sorted {
        match groups
            .iter_mut()
            .find(|(app, _)| *app == job.notification.app)
        {
            Some((_, items)) => items.push(job),
            None => groups.push((job.notification.app.clone(), vec![job])),
        }
    }
    groups
}

/// The digest mail of `jobs` (all for the same user and destination, taken from the first),
/// identified by `digest_id`, dated `now_secs`.
pub fn render(
    jobs: &[DeliveryJob],
    digest_id: &str,
    ctx: &MailContext,
    now_secs: i64,
) -> Result<RenderedMail, RenderError> {
    render_list(jobs, digest_id, ctx, now_secs, List::Digest)
}

/// The mail of a burst (`crate::jobs::JobBundle`: jobs for one address that one match batch
/// made together), in the digest's layout: `Fedora Notifications (N updates at once)`,
/// `Message-ID` `fmn.burst.<bundle id>`, header `X-Fmn-Burst-Count`. One job is its ordinary
/// mail.
pub fn render_burst(
    jobs: &[DeliveryJob],
    bundle_id: &str,
    ctx: &MailContext,
    now_secs: i64,
) -> Result<RenderedMail, RenderError> {
    render_list(jobs, bundle_id, ctx, now_secs, List::Burst)
}

/// The header of a burst's mail listing the bus messages it carries (space-separated).
pub const BURST_IDS_HEADER: &str = "X-Fmn-Burst-Ids";

/// What a list of notifications in one mail is.
#[derive(Clone, Copy)]
enum List {
    Digest,
    Burst,
}

fn render_list(
    jobs: &[DeliveryJob],
    id: &str,
    ctx: &MailContext,
    now_secs: i64,
    list: List,
) -> Result<RenderedMail, RenderError> {
    let first = jobs.first().ok_or(RenderError::EmptyDigest)?;
    if jobs.len() == 1 {
        return super::email::render(first, ctx, now_secs);
    }
    let d = &first.destination;
    require_email(d.kind, &d.id, &d.address)?;
    let count = jobs.len();
    let (subject, message_id, count_header, intro) = match list {
        List::Digest => (
            format!("Fedora Notifications Digest ({count} updates)"),
            format!("fmn.digest.{id}@{}", ctx.domain()),
            "X-Fmn-Digest-Count",
            format!("Digest of {count} notifications."),
        ),
        List::Burst => (
            format!("Fedora Notifications ({count} updates at once)"),
            format!("fmn.burst.{id}@{}", ctx.domain()),
            "X-Fmn-Burst-Count",
            format!("{count} notifications came at once; here they are in one mail."),
        ),
    };
    let mut h = common_headers(
        ctx,
        &d.address,
        &subject,
        &message_id,
        now_secs,
        &first.user,
        &d.id,
    );
    h.raw(count_header, &count.to_string());
    if let List::Burst = list {
        // Which bus messages the mail carries, for mail filters and support (a single mail's
        // `X-Fedmsg-Id`).
        let ids: Vec<&str> = jobs
            .iter()
            .map(|j| j.notification.msg_id.as_str())
            .collect();
        h.raw(BURST_IDS_HEADER, &ids.join(" "));
    }

    let groups = group_by_service(jobs);
    let prefs = ctx.preferences_url();
    let mut text = format!("{intro}\n");
    let mut html = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"></head><body>\n<p>{}</p>\n",
        html_escape(&intro)
    );
    for (app, items) in &groups {
        let _ = writeln!(text, "\n{app} ({})\n{}", items.len(), "-".repeat(79));
        let _ = writeln!(
            html,
            "<h3>{} ({})</h3>\n<ul>",
            html_escape(app),
            items.len()
        );
        for job in items {
            let n = &job.notification;
            let what = n
                .subtitle
                .as_deref()
                .filter(|s| !s.trim().is_empty())
                .unwrap_or(&n.title);
            let when = n.timestamp.map(utc_time).unwrap_or_default();
            let _ = writeln!(text, "({when}) {what}");
            let _ = write!(html, "<li>{} {}", html_escape(&when), html_escape(what));
            if let Some(link) = n.link.as_deref().filter(|l| !l.is_empty()) {
                let _ = writeln!(text, "- {link}");
                let _ = write!(html, "<br>{}", html_link(link));
            }
            text.push('\n');
            let _ = writeln!(html, "</li>");
        }
        let _ = writeln!(html, "</ul>");
    }
    let _ = write!(
        text,
        "-- \nChange your notification preferences at {prefs}\n"
    );
    let _ = write!(
        html,
        "<hr>\n<p><small>Change your notification preferences at {}</small></p>\n</body></html>\n",
        html_link(&prefs)
    );
    Ok(RenderedMail {
        to: d.address.clone(),
        subject,
        message_id,
        raw: assemble(h, id, &text, &html),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::email::tests::{ctx, job};

    fn item(id: &str, app: &str, ts: f64) -> DeliveryJob {
        let mut j = job(&format!("{app} event {id}"));
        j.job_id = id.into();
        j.notification.msg_id = format!("msg-{id}");
        j.notification.app = app.into();
        j.notification.timestamp = Some(ts);
        j.notification.link = Some(format!("https://{app}.example.org/{id}"));
        j
    }

    #[test]
    fn items_are_grouped_by_service_in_time_order() {
        let jobs = vec![
            item("c", "koji", 30.0),
            item("a", "bodhi", 10.0),
            item("d", "bodhi", 40.0),
            item("b", "koji", 20.0),
        ];
        let groups = group_by_service(&jobs);
        let flat: Vec<(&str, Vec<&str>)> = groups
            .iter()
            .map(|(app, items)| {
                (
                    app.as_str(),
                    items.iter().map(|j| j.job_id.as_str()).collect(),
                )
            })
            .collect();
        assert_eq!(flat, [("bodhi", vec!["a", "d"]), ("koji", vec!["b", "c"])]);

        let mail = render(&jobs, "digest1", &ctx(), 100).unwrap();
        let raw = String::from_utf8(mail.raw).unwrap();
        assert_eq!(mail.subject, "Fedora Notifications Digest (4 updates)");
        assert!(raw.contains("Message-ID: <fmn.digest.digest1@fedoraproject.org>"));
        assert!(raw.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"));
        let plain = raw.split("text/html").next().unwrap();
        let pos = |s: &str| plain.find(s).unwrap_or_else(|| panic!("{s} missing"));
        assert!(pos("bodhi (2)") < pos("bodhi event a"));
        assert!(pos("bodhi event a") < pos("bodhi event d"));
        assert!(pos("bodhi event d") < pos("koji (2)"));
        assert!(pos("koji event b") < pos("koji event c"));
        assert!(plain.contains("- https://koji.example.org/c"));
    }

    #[test]
    fn a_burst_is_one_mail_in_the_digests_layout_with_its_own_subject_and_id() {
        let jobs = vec![
            item("a", "koji", 10.0),
            item("b", "koji", 20.0),
            item("c", "bodhi", 30.0),
        ];
        let mail = render_burst(&jobs, "b1", &ctx(), 100).unwrap();
        let raw = String::from_utf8(mail.raw).unwrap();
        assert_eq!(mail.subject, "Fedora Notifications (3 updates at once)");
        assert_eq!(mail.message_id, "fmn.burst.b1@fedoraproject.org");
        assert!(raw.contains("X-Fmn-Burst-Count: 3"));
        assert!(
            raw.contains("X-Fmn-Burst-Ids: msg-a msg-b msg-c\r\n"),
            "{raw}"
        );
        assert!(!raw.contains("X-Fmn-Digest-Count"));
        assert!(raw.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"));
        let plain = raw.split("text/html").next().unwrap();
        assert!(plain.contains("3 notifications came at once"));
        let pos = |s: &str| plain.find(s).unwrap_or_else(|| panic!("{s} missing"));
        assert!(pos("koji (2)") < pos("koji event a"));
        assert!(pos("koji event b") < pos("bodhi (1)"));
        assert!(plain.contains("- https://bodhi.example.org/c"));
        // One job alone is its ordinary mail.
        let one = render_burst(&jobs[..1], "b2", &ctx(), 0).unwrap();
        assert_eq!(one.subject, "[koji] koji event a");
    }

    #[test]
    fn one_item_is_an_ordinary_mail_and_none_is_an_error() {
        let jobs = vec![item("a", "bodhi", 1.0)];
        let mail = render(&jobs, "d", &ctx(), 0).unwrap();
        assert_eq!(mail.subject, "[bodhi] bodhi event a");
        assert_eq!(render(&[], "d", &ctx(), 0), Err(RenderError::EmptyDigest));
    }
}
