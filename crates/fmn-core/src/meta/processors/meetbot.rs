//! Meetbot, IRC meetings logged by zodbot (`meetbot.*`).

use crate::meta::ctx::Ctx;
use crate::meta::model::{Metadata, Processor};

/// Meetbot.
pub struct Meetbot;

/// Bots that attend every meeting.
const BLACKLISTED: [&str; 1] = ["zodbot"];

/// The first `http(s)://…` URL that is followed by a space or `$` (upstream's rule).
fn first_link(line: &str) -> Option<&str> {
    for (start, _) in line.match_indices("http") {
        let rest = &line[start + 4..];
        let rest = rest.strip_prefix('s').unwrap_or(rest);
        let Some(after) = rest.strip_prefix("://") else {
            continue;
        };
        let mut chars = after.chars();
        match chars.next() {
            Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == ':' => {}
            _ => continue,
        }
        let body_start = line.len() - after.len() + 1;
        if let Some(end) = line[body_start..].find([' ', '$']) {
            return Some(&line[start..body_start + end]);
        }
    }
    None
}

fn subtitle(m: &Ctx) -> Option<String> {
    let named = m.truthy("meeting_topic");
    let owner = m
        .str("owner")
        .map_or_else(|| m.fmt_or_none("owner"), |o| m.nick(o).to_owned());
    let name = m.fmt_or_none("meeting_topic");
    let channel = m.fmt_or_none("channel");
    let topic = m.fmt("topic").unwrap_or_else(|| "no topic".to_owned());
    Some(if m.has("meetbot.meeting.start") {
        if named {
            format!("{owner} started meeting \"{name}\" in {channel}")
        } else {
            format!("{owner} started a meeting in {channel}")
        }
    } else if m.has("meetbot.meeting.complete") {
        if named {
            format!("{owner}'s meeting titled \"{name}\" ended in {channel}")
        } else {
            format!("{owner}'s meeting ended in {channel}")
        }
    } else if m.has("meetbot.meeting.topic.update") {
        if named {
            format!("The topic of {owner}'s \"{name}\" meeting changed to \"{topic}\" in {channel}")
        } else {
            format!("The topic of {owner}'s meeting changed to \"{topic}\" in {channel}")
        }
    } else if m.has("meetbot.meeting.item.") {
        let action = match m.last() {
            "agreed" => "noted agreement",
            "accepted" => "accepted an item",
            "rejected" => "rejected an item",
            "action" => "noted an action",
            "info" => "raised a point of information",
            "idea" => "proposed an idea",
            "help" => "called for help",
            "link" => "linked to more information",
            _ => return None,
        };
        let agent = m
            .str("details.nick")
            .map_or_else(|| "None".to_owned(), |n| m.nick(n).to_owned());
        let line = m.fmt_or_none("details.line");
        if named {
            format!("{agent} {action} in the \"{name}\" meeting in {channel}: \"{line}\"")
        } else {
            format!("{agent} {action} in a meeting in {channel}: \"{line}\"")
        }
    } else {
        return None;
    })
}

impl Processor for Meetbot {
    fn services(&self) -> &'static [&'static str] {
        &["meetbot"]
    }

    fn app(&self) -> &'static str {
        "meetbot"
    }

    fn extract(&self, m: &Ctx<'_>, out: &mut Metadata) {
        out.subtitle = subtitle(m);
        out.link = if m.has("meetbot.meeting.complete") {
            m.fmt("url")
                .map(|u| format!("{}.html", u.replace("http://", "https://")))
        } else if m.has("meetbot.meeting.item.link") {
            m.str("details.line")
                .and_then(first_link)
                .map(str::to_owned)
        } else {
            None
        };
        // Attendees: a `{nick: lines}` object (or a plain list in some copies).
        let attendees: Vec<&str> = match m.get("attendees") {
            Some(serde_json::Value::Object(o)) => o.keys().map(String::as_str).collect(),
            _ => m.strs("attendees").collect(),
        };
        for nick in attendees {
            if !BLACKLISTED.contains(&nick) {
                out.user(m.nick(nick));
            }
        }
        let actor = m.str("details.nick").or_else(|| m.str("owner"));
        if let Some(actor) = actor {
            out.agent = Some(m.nick(actor).to_owned());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::first_link;

    #[test]
    fn links() {
        assert_eq!(
            first_link("#link http://example.com/a b"),
            Some("http://example.com/a")
        );
        assert_eq!(first_link("see https://x.org"), None);
        assert_eq!(first_link("nothing"), None);
    }
}
