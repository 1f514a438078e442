//! `bugzilla2fedmsg-schema`: Red Hat Bugzilla bugs of Fedora components.

use super::facts::{opt, text, Facts};
use crate::meta::ctx::Ctx;
use crate::meta::py;

/// Components that are no package.
const NOT_PACKAGES: [&str; 8] = [
    "distribution",
    "LiveCD",
    "LiveCD - FEL",
    "LiveCD - Games",
    "LiveCD - KDE",
    "LiveCD - LXDE",
    "LiveCD - Xfce",
    "Package Review",
];

/// bugzilla2fedmsg's `comma_join`: `'a'`, `'a' and 'b'`, `'a', 'b', and 'c'`.
fn comma_join(fields: &[String]) -> String {
    let quoted: Vec<String> = fields.iter().map(|f| format!("'{f}'")).collect();
    match quoted.as_slice() {
        [] => "something unknown".into(),
        [one] => one.clone(),
        [a, b] => format!("{a} and {b}"),
        [init @ .., last] => format!("{}, and {last}", init.join(", ")),
    }
}

pub(super) fn describe(schema: &str, m: &Ctx<'_>) -> Option<Facts> {
    // V1 has objects for people, component and product; the BZ4 form has plain strings.
    let component = match schema {
        "bugzilla2fedmsg.messageV1" => text(m, "bug.component.name"),
        "bugzilla2fedmsg.messageV1bz4" => text(m, "bug.component"),
        _ => return None,
    };
    let agent = opt(m, "agent_name");
    let user = agent
        .clone()
        .filter(|a| !a.is_empty())
        .unwrap_or_else(|| text(m, "event.user.login"));
    let id = text(m, "bug.id");
    let mut title = text(m, "bug.summary");
    if py::len(&title) > 40 {
        title = format!("{}...", py::head(&title, 40));
    }
    let (action, target) = (text(m, "event.action"), text(m, "event.target"));
    let summary = if action == "create" && target == "bug" {
        format!("{user} filed a new bug RHBZ#{id} '{title}'")
    } else if action == "create" {
        format!("{user} added {target} on RHBZ#{id} '{title}'")
    } else {
        let fields: Vec<String> = m
            .arr("event.changes")
            .iter()
            .map(|c| py::str(&c["field"]))
            .collect();
        let fields = comma_join(&fields);
        if target == "bug" {
            format!("{user} updated {fields} on RHBZ#{id} '{title}'")
        } else {
            format!("{user} updated {fields} for {target} on RHBZ#{id} '{title}'")
        }
    };
    let packages = (!NOT_PACKAGES.contains(&component.as_str())).then_some(component);
    Some(
        Facts::short("Bugzilla", summary)
            .url(Some(format!(
                "https://bugzilla.redhat.com/show_bug.cgi?id={id}"
            )))
            .users(m.strs("usernames"))
            .packages(packages)
            .agent(agent),
    )
}
