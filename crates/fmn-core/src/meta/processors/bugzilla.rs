//! Red Hat Bugzilla, via bugzilla2fedmsg (`bugzilla.*`).

use crate::meta::ctx::Ctx;
use crate::meta::model::{Metadata, Processor};
use crate::meta::py;

/// Bugzilla.
pub struct Bugzilla;

/// Components that are not packages.
const NOT_PACKAGES: [&str; 1] = ["Package Review"];

/// `'a'`, `'a' and 'b'`, `'a', 'b', and 'c'`.
fn comma_join(fields: &[String]) -> String {
    let quoted: Vec<String> = fields.iter().map(|f| format!("'{f}'")).collect();
    match quoted.len() {
        0 => "nothing".to_owned(),
        1 => quoted[0].clone(),
        2 => quoted.join(" and "),
        n => format!("{}, and {}", quoted[..n - 1].join(", "), quoted[n - 1]),
    }
}

/// The e-mail of whoever acted.
fn actor_email(m: &Ctx) -> String {
    if m.truthy("comment") {
        return m.fmt_or_none("comment.author");
    }
    if let Some(who) = m.get("event.who").filter(|w| py::truthy(w)) {
        return py::str(who);
    }
    m.fmt_or_none("bug.creator")
}

fn subtitle(m: &Ctx) -> Option<String> {
    let user = m.email(&actor_email(m)).to_owned();
    let idx = m.fmt_or_none("bug.id");
    let mut title = m.fmt_or_none("bug.summary");
    if py::len(&title) > 40 {
        title = format!("{}...", py::head(&title, 40));
    }
    let created = m.str("event.action") == Some("create");
    if m.has("bug.new") || (m.has("bug.update") && created && !m.truthy("comment")) {
        Some(format!("{user} filed a new bug RHBZ#{idx} '{title}'"))
    } else if m.has("bug.update") {
        Some(if m.truthy("comment") {
            format!("{user} commented on RHBZ#{idx} '{title}'")
        } else if m.truthy("event") {
            let fields: Vec<String> = m
                .arr("event.changes")
                .iter()
                .filter_map(|c| c.get("field_name").map(py::str))
                .collect();
            let fields = if fields.is_empty() {
                "nothing? (likely bugzilla sent us a buggy message)".to_owned()
            } else {
                comma_join(&fields)
            };
            format!("{user} updated {fields} on RHBZ#{idx} '{title}'")
        } else {
            format!("{user} updated RHBZ#{idx} '{title}'")
        })
    } else {
        None
    }
}

impl Processor for Bugzilla {
    fn services(&self) -> &'static [&'static str] {
        &["bugzilla"]
    }

    fn app(&self) -> &'static str {
        "bugzilla"
    }

    fn extract(&self, m: &Ctx<'_>, out: &mut Metadata) {
        out.subtitle = subtitle(m);
        // Newer messages have no `weburl`; the bug's URL follows from its id.
        out.link = match m.get("bug.weburl").filter(|u| py::truthy(u)) {
            Some(url) => Some(py::str(url)),
            None => m
                .fmt("bug.id")
                .map(|id| format!("https://bugzilla.redhat.com/show_bug.cgi?id={id}")),
        };
        if let Some(component) = m.fmt("bug.component") {
            if !NOT_PACKAGES.contains(&component.as_str()) {
                out.package(component);
            }
        }

        let mut emails: Vec<String> = Vec::new();
        if m.truthy("comment") {
            emails.extend(m.fmt("comment.author"));
        }
        if m.truthy("event") {
            emails.extend(m.get("event.who").filter(|w| py::truthy(w)).map(py::str));
        }
        for key in ["bug.creator", "bug.assigned_to"] {
            emails.extend(m.get(key).filter(|w| py::truthy(w)).map(py::str));
        }
        emails.extend(m.strs("bug.cc").map(str::to_owned));
        for email in emails {
            if email.is_empty() || email.ends_with("lists.fedoraproject.org") {
                continue;
            }
            let user = m.email(&email);
            if !user.contains('@') {
                out.user(user);
            }
        }
        let actor = actor_email(m);
        let actor = m.email(&actor);
        if !actor.contains('@') && out.usernames.contains(actor) {
            out.agent = Some(actor.to_owned());
        }
    }
}
