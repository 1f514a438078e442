//! Schema packages with one or two small classes each: `fedora-planet-messages`,
//! `fedorainfra_ansible-messages`, `mediawiki-messages`, `meetbot-messages` and
//! `noggin-messages`.

use super::facts::{base_str, fill, opt, strings, text, Facts};
use crate::meta::ctx::Ctx;
use crate::meta::py;

pub(super) fn describe(schema: &str, m: &Ctx<'_>) -> Option<Facts> {
    let facts = match schema {
        "planet.build" => {
            let title = m
                .get("title")
                .map_or_else(|| "The planet".to_owned(), py::str);
            Facts::without_app(format!("{title} has been rebuilt"))
        }
        "planet.post.new" => {
            let agent = opt(m, "username");
            let summary = format!(
                "A new post '{}' was published on planet by '{}'.",
                m.get("post.title").map_or_else(|| "None".into(), py::str),
                text(m, "username")
            );
            Facts::without_app(summary)
                .users(agent.clone())
                .agent(agent)
        }
        "ansible.playbook.start" | "ansible.playbook.complete" => {
            let template = if schema.ends_with("start") {
                "{userid} started an ansible run of {playbook}"
            } else {
                "{userid}'s {playbook} playbook run completed"
            };
            Facts::short("ansible", fill(m, template))
                .long(base_str(m))
                .users(opt(m, "userid"))
        }
        "git.receive" => Facts::short(
            "distgit",
            fill(
                m,
                "{commit.username} pushed to {commit.repo} ({commit.branch}). \"{commit.summary}\"",
            ),
        )
        .long(base_str(m))
        .users(opt(m, "commit.agent")),
        "wiki.article.edit.v1" => wiki(m),
        "meetbot.meeting.start" => {
            let agent = opt(m, "start_user");
            Facts::short(
                "meetbot",
                fill(m, "Meeting '{meeting_name}' started in {location}"),
            )
            .long(fill(
                m,
                "{start_user} started meeting '{meeting_name}' in {location} at {start_time}",
            ))
            .url(opt(m, "url"))
            .users(agent.clone())
            .agent(agent)
        }
        "meetbot.meeting.complete" => meeting_complete(m),
        _ => return noggin(schema, m),
    };
    Some(facts)
}

/// `mediawiki-messages`' `ArticleEditV1`.
fn wiki(m: &Ctx<'_>) -> Facts {
    let agent = opt(m, "user");
    let mut users: Vec<String> = agent.iter().cloned().collect();
    if let Some(page_user) = m.str("title").and_then(|t| t.strip_prefix("User:")) {
        users.push(page_user.to_lowercase());
    }
    Facts::short("Wiki", fill(m, "Wiki page {title} was edited by {user}"))
        .long(fill(m, "Wiki page {title} was edited by {user}\nSummary: {summary}\nPage: {page_url}\nDiff: {diff_url}\n"))
        .url(opt(m, "diff_url"))
        .users(users)
        .agent(agent)
}

/// `meetbot-messages`' `MeetingCompleteV1`: attendees and logs as Markdown lists.
fn meeting_complete(m: &Ctx<'_>) -> Facts {
    let agent = opt(m, "end_user");
    let logs: String = m
        .arr("logs")
        .iter()
        .map(|l| {
            format!(
                "* [{}]({})\n",
                py::str(&l["log_type"]),
                py::str(&l["log_url"])
            )
        })
        .collect();
    let attendees: String = m
        .arr("attendees")
        .iter()
        .map(|a| {
            format!(
                "* {}: {} lines said\n",
                py::str(&a["name"]),
                py::str(&a["lines_said"])
            )
        })
        .collect();
    let long = format!(
        "{} ended meeting '{}' in {} at {}\n\n# Attendees\n\n{attendees}\n# Logs\n\n{logs}",
        text(m, "end_user"),
        text(m, "meeting_name"),
        text(m, "location"),
        text(m, "end_time")
    );
    let users = m
        .strs("chairs")
        .map(str::to_owned)
        .chain(agent.clone())
        .chain(
            m.arr("attendees")
                .iter()
                .filter_map(|a| a["name"].as_str().map(str::to_owned)),
        );
    Facts::short(
        "meetbot",
        fill(m, "Meeting '{meeting_name}' in {location} finished"),
    )
    .long(long)
    .url(opt(m, "url"))
    .users(users.collect::<Vec<_>>())
    .agent(agent)
}

/// `noggin-messages`: Fedora account (FAS) changes, under `msg`.
fn noggin(schema: &str, m: &Ctx<'_>) -> Option<Facts> {
    let event = schema.strip_prefix("noggin.")?;
    let (agent, user) = (text(m, "msg.agent"), text(m, "msg.user"));
    let own = agent == user;
    let fields = m.arr("msg.fields");
    let summary = match event {
        "group.member.sponsor.v1" => fill(
            m,
            "Sponsor {msg.agent} added {msg.user} to the group{msg.group}",
        ),
        "group.member.removed.v1" => fill(
            m,
            "User {msg.agent} removed user {msg.user} from the group{msg.group}",
        ),
        "user.create.v1" if own => format!("{agent} created a new Fedora Account"),
        "user.create.v1" => format!("{agent} created a new Fedora Account for {user}"),
        "user.update.v1" if own => format!(
            "{agent} edited {} details of their Fedora Account",
            fields.len()
        ),
        "user.update.v1" => format!(
            "{agent} edited {} details of {user}'s Fedora Account",
            fields.len()
        ),
        _ => return None,
    };
    let long = if event == "user.update.v1" {
        let changed: Vec<String> = fields.iter().map(py::str).collect();
        format!("{summary}\n\nDetails changed: \n\n{} ", changed.join("\n"))
    } else {
        summary.clone()
    };
    let groups = if event.starts_with("group.") {
        strings(m, &["msg.group"])
    } else {
        Vec::new()
    };
    Some(
        Facts::short("FAS", summary)
            .long(long)
            .users(strings(m, &["msg.agent", "msg.user"]))
            .groups(groups)
            .agent(opt(m, "msg.agent")),
    )
}
