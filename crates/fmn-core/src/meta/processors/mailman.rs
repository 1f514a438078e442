//! Mailing lists, via mailman 3 (`mailman.*`).

use crate::meta::ctx::Ctx;
use crate::meta::model::{Metadata, Processor};

/// Mailman.
pub struct Mailman;

/// The address in a `From:` header (`Name <addr>` or a bare address).
fn address(from: &str) -> &str {
    match (from.rfind('<'), from.rfind('>')) {
        (Some(open), Some(close)) if open < close => from[open + 1..close].trim(),
        _ => from.trim(),
    }
}

impl Processor for Mailman {
    fn services(&self) -> &'static [&'static str] {
        &["mailman"]
    }

    fn app(&self) -> &'static str {
        "mailman"
    }

    fn extract(&self, m: &Ctx<'_>, out: &mut Metadata) {
        let from = m.str("msg.from").unwrap_or_default();
        let user = m.email(address(from));
        if m.has("receive") {
            let list = m.fmt_or_none("mlist.list_name");
            let subject = m.fmt_or_none("msg.subject").replace('\n', " ");
            let who = if user.is_empty() { "someone" } else { user };
            let reply = m.truthy("msg.references") || m.truthy("msg.in-reply-to");
            out.subtitle = Some(if reply {
                format!("On the {list} list, {who} replied to '{subject}'")
            } else {
                format!("{who} wrote '{subject}' to the {list} list")
            });
        }
        let archived = m.str("msg.archived-at").unwrap_or_default();
        let archived = archived.strip_prefix('<').unwrap_or(archived);
        let archived = archived.strip_suffix('>').unwrap_or(archived);
        out.link = if archived.starts_with("http") {
            Some(archived.to_owned())
        } else if !archived.is_empty() {
            Some(format!(
                "https://lists.fedoraproject.org/archives{archived}"
            ))
        } else {
            None
        };
        if !user.is_empty() && !user.contains('@') {
            out.set_agent(user);
        }
    }
}
