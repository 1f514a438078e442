//! The Fedora Account System (`fas.*`).

use serde_json::Value;

use crate::meta::ctx::Ctx;
use crate::meta::model::{Metadata, Processor};
use crate::meta::py;

/// FAS.
pub struct Fas;

/// A field that is a name or a `{username|name: …}` object.
fn name(m: &Ctx, key: &str) -> Option<String> {
    match m.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("username").or_else(|| o.get("name")).map(py::str),
        Value::Null => None,
        other => Some(py::str(other)),
    }
}

fn subtitle(m: &Ctx) -> Option<String> {
    let n = |k: &str| name(m, k).unwrap_or_else(|| "None".to_owned());
    let fields = || {
        m.arr("fields")
            .iter()
            .map(py::str)
            .collect::<Vec<_>>()
            .join(", ")
    };
    Some(if m.has("fas.user.create") {
        format!(
            "New FAS account:  '{}'  (created by '{}')",
            n("user"),
            n("agent")
        )
    } else if m.has("fas.user.update") {
        format!(
            "{} edited the following fields of {}'s FAS profile:  {}",
            n("agent"),
            n("user"),
            fields()
        )
    } else if m.has("fas.group.member.") {
        let (agent, user, group) = (n("agent"), n("user"), n("group"));
        match m.last() {
            "apply" => format!("{agent} applied for {user}'s membership in the {group} group"),
            "sponsor" => format!("{agent} sponsored {user}'s membership in the {group} group"),
            "remove" => format!("{agent} removed {user} from the {group} group"),
            _ => "<unhandled action in fedmsg.meta.fas>".to_owned(),
        }
    } else if m.has("fas.group.create") {
        format!("{} created new FAS group {}", n("agent"), n("group"))
    } else if m.has("fas.group.update") {
        format!(
            "{} edited the following fields of the {} FAS group:  {}",
            n("agent"),
            n("group"),
            fields()
        )
    } else if m.has("fas.role.update") {
        let mut text = format!(
            "{} changed {}'s role in the {} group",
            n("agent"),
            n("user"),
            n("group")
        );
        if m.contains("status") {
            text.push_str(&format!(" to {}", n("status")));
        }
        text
    } else {
        return None;
    })
}

impl Processor for Fas {
    fn services(&self) -> &'static [&'static str] {
        &["fas"]
    }

    fn app(&self) -> &'static str {
        "fas"
    }

    fn extract(&self, m: &Ctx<'_>, out: &mut Metadata) {
        out.subtitle = subtitle(m);
        if let Some(agent) = name(m, "agent") {
            out.set_agent(agent);
        }
        if let Some(user) = name(m, "user") {
            out.user(user);
        }
        if let Some(group) = name(m, "group") {
            out.groups.insert(group);
        }
    }
}
