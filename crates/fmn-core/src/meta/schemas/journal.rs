//! `journal-to-fedora-messaging-messages`: FreeIPA account changes read from the journal.

use serde_json::Value;

use super::facts::{text, Facts};
use crate::meta::ctx::Ctx;
use crate::meta::py;

/// `IPA_API_PARAMS` (a JSON text), with the publisher's redaction of mail addresses.
fn params(m: &Ctx<'_>) -> Value {
    static MAIL: std::sync::OnceLock<Option<regex::Regex>> = std::sync::OnceLock::new();
    let raw = text(m, "IPA_API_PARAMS");
    let mail = MAIL.get_or_init(|| regex::Regex::new(r#", \\?"mail\\?": \[[^\]]*\]"#).ok());
    let redacted = match mail {
        Some(re) => re.replace_all(&raw, "").into_owned(),
        None => raw,
    };
    serde_json::from_str(&redacted).unwrap_or(Value::Null)
}

fn strs(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|items| items.iter().map(py::str).collect())
        .unwrap_or_default()
}

pub(super) fn describe(schema: &str, m: &Ctx<'_>) -> Option<Facts> {
    let event = schema.strip_prefix("journal.ipa.")?;
    let agent = text(m, "IPA_API_ACTOR")
        .split('@')
        .next()
        .unwrap_or_default()
        .to_owned();
    let params = params(m);
    let facts = match event {
        "user_add.v1" => {
            let user = py::str(&params["uid"]);
            Facts::short("IPA", format!("{agent} created user \"{user}\""))
                .long(format!(
                    "A new user has been created: {user}\nBy: {agent}\n"
                ))
                .users([user, agent.clone()])
        }
        "group_add_member.v1" | "group_remove_member.v1" => {
            let adding = event == "group_add_member.v1";
            let (users, groups) = (strs(&params["user"]), strs(&params["group"]));
            let group = py::str(&params["cn"]);
            let mut words = vec![format!(
                "User {agent} has {}",
                if adding { "added" } else { "removed" }
            )];
            let summary_of = |items: &[String], name: &str| {
                format!(
                    "{name}{} {}",
                    if items.len() == 1 { "" } else { "s" },
                    items.join(", ")
                )
            };
            if !users.is_empty() {
                words.push(summary_of(&users, "user"));
                if !groups.is_empty() {
                    words.push("and".into());
                }
            }
            if !groups.is_empty() {
                words.push(summary_of(&groups, "group"));
            }
            words.push(format!(
                "{} group \"{group}\"",
                if adding { "to" } else { "from" }
            ));
            let text_of = |items: &[String], name: &str| {
                let head = match (adding, items.len()) {
                    (true, 1) => format!("Group {group} has a new {name}:"),
                    (true, _) => format!("Group {group} has new {name}s:"),
                    (false, 1) => format!("The following {name} was removed from group {group}:"),
                    (false, _) => format!("The following {name}s were removed from group {group}:"),
                };
                std::iter::once(head)
                    .chain(items.iter().map(|e| format!("- {e}")))
                    .collect::<Vec<_>>()
                    .join("\n")
            };
            let mut lines = Vec::new();
            if !users.is_empty() {
                lines.push(text_of(&users, "user"));
            }
            if !groups.is_empty() {
                lines.push(text_of(&groups, "group"));
            }
            lines.push(format!(
                "\n{} by: {agent}\n",
                if adding { "Added" } else { "Removed" }
            ));
            let all_groups: Vec<String> = std::iter::once(group.clone()).chain(groups).collect();
            Facts::short("IPA", words.join(" "))
                .long(lines.join("\n"))
                .users(std::iter::once(agent.clone()).chain(users))
                .groups(all_groups)
        }
        _ => return None,
    };
    // Every IPA class is debugging chatter.
    Some(facts.agent(Some(agent)).debug())
}
