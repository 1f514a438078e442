//! `copr-messaging`: Copr build events (their `__str__` is the base class's dump).

use serde_json::Value;

use super::facts::{base_str, text, Facts};
use crate::meta::ctx::Ctx;
use crate::meta::py;

/// copr_common's `StatusEnum` names, by number.
const STATUSES: [&str; 11] = [
    "failed",
    "succeeded",
    "canceled",
    "running",
    "pending",
    "skipped",
    "starting",
    "importing",
    "forked",
    "waiting",
    "unknown",
];

fn status(value: &Value) -> String {
    let number = value
        .as_u64()
        .or_else(|| value.as_str().and_then(|s| s.parse().ok()));
    number
        .and_then(|n| STATUSES.get(usize::try_from(n).ok()?))
        .map_or_else(|| py::str(value), |s| (*s).to_owned())
}

pub(super) fn describe(schema: &str, m: &Ctx<'_>) -> Option<Facts> {
    let kind = schema.strip_prefix("copr.")?;
    // The stomp-era classes read other body fields.
    let (stomp, kind) = match kind.strip_prefix("unused.") {
        Some(kind) => (true, kind),
        None => (false, kind),
    };
    let facts = |summary: String| Facts::short("Copr", summary).long(base_str(m));
    if stomp && kind == "chroot.start" {
        return Some(facts("Unspecified Copr message".into()));
    }
    let (submitter_key, build) = if stomp {
        ("submitter", text(m, "build"))
    } else {
        ("user", text(m, "build"))
    };
    let prefix = format!(
        "Copr Message in project \"{}/{}\": build {build}",
        text(m, "owner"),
        text(m, "copr")
    );
    let raw_submitter = m.val(submitter_key);
    let submitter = match raw_submitter.as_str() {
        Some(s) if s.contains(':') => None,
        Some(s) => Some(s.to_owned()),
        None => None,
    };
    let users = [submitter.clone(), m.str("owner").map(str::to_owned)]
        .into_iter()
        .flatten()
        .filter(|u| !u.starts_with('@'));
    let chroot = text(m, "chroot");
    let (summary, agent) = match kind {
        "build.start" | "chroot.start" => {
            (format!("{prefix}: chroot \"{chroot}\" started."), submitter)
        }
        "build.end" => {
            let state = if stomp {
                status(m.val("status_int"))
            } else {
                status(m.val("status"))
            };
            (
                format!("{prefix}: chroot \"{chroot}\" ended as \"{state}\"."),
                None,
            )
        }
        _ => return None,
    };
    let facts = facts(summary).users(users).agent(agent);
    // The fedora-messaging `chroot.start` duplicate of `build.start` is debugging chatter.
    Some(if kind == "chroot.start" && !stomp {
        facts.debug()
    } else {
        facts
    })
}
