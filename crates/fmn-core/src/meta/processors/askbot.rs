//! Ask Fedora, the askbot forum (`askbot.*`).

use crate::meta::ctx::Ctx;
use crate::meta::model::{Metadata, Processor};

/// Askbot.
pub struct Askbot;

fn subtitle(m: &Ctx) -> Option<String> {
    let user = m.fmt_or_none("agent");
    let title = m.fmt("thread.title").unwrap_or_default();
    let question = |path: &str| m.str(path) == Some("question");
    Some(if m.has("askbot.post.edit") {
        match (m.truthy("created"), question("post.post_type")) {
            (true, true) => format!("{user} asked the question '{title}'"),
            (true, false) => format!("{user} suggested an answer to the question '{title}'"),
            (false, true) => format!("{user} updated the question '{title}'"),
            (false, false) => format!("{user} updated an answer to the question '{title}'"),
        }
    } else if m.has("askbot.tag.update") {
        format!("{user} altered tags on askbot question '{title}'")
    } else if m.has("askbot.post.flag_offensive.add") {
        if question("instance.post_type") {
            format!("{user} flagged a question as offensive!")
        } else {
            format!("{user} flagged an answer as offensive!")
        }
    } else if m.has("askbot.post.flag_offensive.delete") {
        if question("instance.post_type") {
            format!("{user} unflagged a question as offensive...")
        } else {
            format!("{user} unflagged an answer as offensive...")
        }
    } else if m.has("askbot.post.delete") {
        if question("instance.post_type") {
            format!("{user} deleted the question '{title}'")
        } else {
            format!("{user} deleted an answer on '{title}'")
        }
    } else {
        return None;
    })
}

impl Processor for Askbot {
    fn services(&self) -> &'static [&'static str] {
        &["askbot"]
    }

    fn app(&self) -> &'static str {
        "askbot"
    }

    fn extract(&self, m: &Ctx<'_>, out: &mut Metadata) {
        out.subtitle = subtitle(m);
        let host = if m.has("stg") {
            "ask.stg.fedoraproject.org"
        } else {
            "ask.fedoraproject.org"
        };
        out.link = m
            .fmt("topmost_post_id")
            .map(|pk| format!("https://{host}/question/{pk}/"));
        if let Some(agent) = m.fmt("agent") {
            out.set_agent(agent);
        }
        for user in m.strs("newly_mentioned_users") {
            out.user(user);
        }
    }
}
