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
    let first = jobs.first().ok_or(RenderError::EmptyDigest)?;
    if jobs.len() == 1 {
        return super::email::render(first, ctx, now_secs);
    }
    let d = &first.destination;
    require_email(d.kind, &d.id, &d.address)?;
    let subject = format!("Fedora Notifications Digest ({} updates)", jobs.len());
    let message_id = format!("fmn.digest.{digest_id}@{}", ctx.domain());
    let mut h = common_headers(
        ctx,
        &d.address,
        &subject,
        &message_id,
        now_secs,
        &first.user,
        &d.id,
    );
    h.raw("X-Fmn-Digest-Count", &jobs.len().to_string());

    let groups = group_by_service(jobs);
    let prefs = ctx.preferences_url();
    let mut text = format!("Digest of {} notifications.\n", jobs.len());
    let mut html = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"></head><body>\n<p>Digest of {} notifications.</p>\n",
        jobs.len()
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
        raw: assemble(h, digest_id, &text, &html),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::email::tests::{ctx, job};

    fn item(id: &str, app: &str, ts: f64) -> DeliveryJob {
        let mut j = job(&format!("{app} event {id}"));
        j.job_id = id.into();
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
    fn one_item_is_an_ordinary_mail_and_none_is_an_error() {
        let jobs = vec![item("a", "bodhi", 1.0)];
        let mail = render(&jobs, "d", &ctx(), 0).unwrap();
        assert_eq!(mail.subject, "[bodhi] bodhi event a");
        assert_eq!(render(&[], "d", &ctx(), 0), Err(RenderError::EmptyDigest));
    }
}
