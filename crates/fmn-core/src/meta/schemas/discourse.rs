//! `discourse2fedmsg-messages`: posts, likes, topics and solutions on Fedora's Discourse
//! instances.

use serde_json::Value;

use super::facts::Facts;
use crate::meta::ctx::Ctx;
use crate::meta::py;

pub(super) fn describe(schema: &str, m: &Ctx<'_>) -> Option<Facts> {
    if schema != "discourse.event.v1"
        && schema != "webhook_to_fedora_messaging.discourse.message_v1"
    {
        return None;
    }
    Some(event(m))
}

/// `DiscourseMessageV1`, read from `webhook_headers` and `webhook_body`.
fn event(m: &Ctx<'_>) -> Facts {
    let header = |name: &str| {
        m.str(&format!("webhook_headers.X-Discourse-{name}"))
            .unwrap_or_default()
    };
    let (kind, event) = (header("Event-Type"), header("Event"));
    let contents = m
        .get("webhook_body")
        .and_then(|b| b.get(kind))
        .unwrap_or(&Value::Null);
    let post = if kind == "like" {
        &contents["post"]
    } else {
        contents
    };
    let instance = match header("Instance") {
        "https://discussion.fedoraproject.org" => "Fedora Discussion",
        "https://ask.fedoraproject.org" => "Ask Fedora",
        _ => "None",
    };
    let s = |v: &Value| py::str(v);
    let (user, title) = (s(&post["username"]), s(&post["topic_title"]));
    let creator = s(&contents["created_by"]["username"]);
    let topic = s(&contents["title"]);
    let summary = match (kind, event) {
        ("post", "post_created") => format!("New Post on {instance}: {user} posted in '{title}'"),
        ("post", "post_edited") => format!("Post Edited on {instance}: {user}'s post on '{title}'"),
        ("post", "post_recovered") => format!("Post Recovered on {instance}: {user}'s post on '{title}'"),
        ("post", "post_destroyed") => format!("Post Destroyed on {instance}: {user}'s post on '{title}'"),
        ("like", "post_liked") => format!(
            "Post Liked on {instance}: {} liked {user}'s post on '{title}'",
            s(&contents["user"]["username"])
        ),
        ("topic", "topic_created") => format!("New Topic on {instance}: {creator} created the topic '{topic}'"),
        ("topic", "topic_edited") => format!("Topic Edited on {instance}: {creator}'s topic '{topic}'"),
        ("topic", "topic_destroyed") => format!("Topic Destroyed on {instance}: {creator}'s topic '{topic}'"),
        ("topic", "topic_recovered") => format!("Topic Recovered on {instance}: {creator}'s topic '{topic}'"),
        ("solved", "accepted_solution") => format!(
            "Accepted Solution on {instance}: {user}'s post on topic '{title}' marked as the solution."
        ),
        _ => format!("{instance}: {kind}.{event}"),
    };
    let name = |v: &Value| v.as_str().map(str::to_owned);
    let agent = match (kind, event) {
        ("post", "post_created" | "post_destroyed" | "post_recovered" | "post_edited") => {
            name(&contents["username"])
        }
        ("like", "post_liked") => name(&contents["user"]["username"]),
        ("topic", "topic_created" | "topic_edited" | "topic_destroyed" | "topic_recovered") => {
            name(&contents["created_by"]["username"])
        }
        _ => None,
    };
    let mut users: Vec<String> = Vec::new();
    match kind {
        "solved" => users.extend(name(&contents["username"])),
        "like" => users.extend(name(&contents["post"]["username"])),
        _ => {}
    }
    Facts::short("Discourse", summary).users(users).agent(agent)
}
