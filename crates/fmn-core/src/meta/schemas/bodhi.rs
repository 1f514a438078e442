//! `bodhi-messages`: Bodhi, Fedora's update system.

use super::facts::{fill, opt, text, Facts};
use crate::meta::ctx::Ctx;
use crate::meta::py;

const UPDATES: &str = "https://bodhi.fedoraproject.org/updates/";

/// Bodhi's `truncate`: 40 characters or more are cut to 40 and get an ellipsis.
fn truncate(title: &str) -> String {
    if py::len(title) >= 40 {
        format!("{}…", py::head(title, 40))
    } else {
        title.to_owned()
    }
}

/// The `nvr` of each build in the list at `path`.
fn nvrs<'a>(m: &Ctx<'a>, path: &str) -> Vec<&'a str> {
    m.arr(path)
        .iter()
        .filter_map(|b| b["nvr"].as_str())
        .collect()
}

/// `nvr.rsplit('-', 2)[0]`.
fn package(nvr: &str) -> String {
    py::nvr_name(nvr).to_owned()
}

/// The `@name` mentions of a comment (Bodhi's `(?<!\S)(@\w+)`).
fn mentions(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut prev: Option<char> = None;
    let chars: Vec<char> = text.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if c == '@' && prev.is_none_or(char::is_whitespace) {
            let name: String = chars[i + 1..]
                .iter()
                .take_while(|c| c.is_alphanumeric() || **c == '_')
                .collect();
            if !name.is_empty() {
                out.push(name);
            }
        }
        prev = Some(c);
    }
    out
}

/// Bodhi's `past_tense`.
fn past_tense(verb: &str) -> String {
    format!("{verb}{}", if verb.ends_with('e') { "d" } else { "ed" })
}

pub(super) fn describe(schema: &str, m: &Ctx<'_>) -> Option<Facts> {
    let event = schema.strip_prefix("bodhi.")?;
    let event = event.rsplit_once(".v").map_or(event, |(e, _)| e);
    let agent = opt(m, "agent");
    let base_users = || {
        let mut users: Vec<String> = agent.iter().cloned().collect();
        if let Some(text) = m.str("comment.text") {
            users.extend(mentions(text));
        }
        users
    };
    let short = |summary: String| Facts::short("bodhi", summary);
    let facts = match event {
        "buildroot_override.tag" | "buildroot_override.untag" => {
            let verb = if event.ends_with(".tag") {
                "submitted"
            } else {
                "expired"
            };
            let nvr = text(m, "override.nvr");
            let submitter = text(m, "override.submitter.name");
            short(format!("{submitter} {verb} a buildroot override for {nvr}"))
                .url(Some(format!(
                    "https://bodhi.fedoraproject.org/overrides/{nvr}"
                )))
                .packages([package(&nvr)])
                .users([submitter.clone()])
                .agent(Some(submitter))
        }
        "compose.complete" => {
            let done = if m.truthy("success") {
                "successfully composed"
            } else {
                "failed to compose"
            };
            short(format!("bodhi composer {done} {}", text(m, "repo")))
                .users(base_users())
                .agent(agent.clone())
        }
        "compose.composing" | "compose.start" | "compose.sync.done" | "compose.sync.wait"
        | "repo.done" => {
            let template = match event {
                "compose.composing" => "bodhi composer started composing {repo}",
                "compose.start" => "bodhi composer started a push",
                "compose.sync.done" => {
                    "bodhi composer finished waiting for {repo} to hit the master mirror"
                }
                "compose.sync.wait" => {
                    "bodhi composer is waiting for {repo} to hit the master mirror"
                }
                _ => "bodhi composer is finished building {repo}",
            };
            short(fill(m, template))
                .users(base_users())
                .agent(agent.clone())
        }
        "errata.publish" => short(text(m, "subject"))
            .long(text(m, "body"))
            .agent(opt(m, "update.user.name"))
            .url(Some(fill(m, &format!("{UPDATES}{{update.alias}}"))))
            .packages(nvrs(m, "update.builds").into_iter().map(package))
            // `usernames` is the base class's, around this class's agent.
            .users(opt(m, "update.user.name")),
        "update.status.testing" if schema_version(m) != Some("v3") => ready_for_testing(m, agent),
        _ => update(event, m, agent.clone(), base_users())?,
    };
    // "Ready for testing" (all three versions) is debugging chatter.
    Some(if event == "update.status.testing" {
        facts.debug()
    } else {
        facts
    })
}

/// `UpdateReadyForTestingV1`/`V2` (V3 is an ordinary update message).
fn ready_for_testing(m: &Ctx<'_>, agent: Option<String>) -> Facts {
    let owner = if m.contains("update") {
        text(m, "update.user.name")
    } else {
        text(m, "contact.name")
    };
    let builds = nvrs(m, "artifact.builds");
    let mut users: Vec<String> = m
        .arr("artifact.builds")
        .iter()
        .filter_map(|b| b["issuer"].as_str())
        .map(str::to_owned)
        .collect();
    users.extend(agent.clone());
    Facts::short(
        "bodhi",
        format!(
            "{owner}'s {} bodhi update is ready for testing",
            truncate(&builds.join(" "))
        ),
    )
    .long(format!(
        "{owner}'s Bodhi update is ready for testing\nBuilds:\n{} ",
        builds.join("\n")
    ))
    .url(Some(fill(m, &format!("{UPDATES}{{artifact.id}}"))))
    .packages(
        m.arr("artifact.builds")
            .iter()
            .filter_map(|b| b["component"].as_str()),
    )
    .users(users)
    .agent(agent)
}

/// The `UpdateMessage` subclasses.
fn update(
    event: &str,
    m: &Ctx<'_>,
    agent: Option<String>,
    mut users: Vec<String>,
) -> Option<Facts> {
    let root = if event == "update.comment" {
        "comment.update"
    } else {
        "update"
    };
    let alias = text(m, &format!("{root}.alias"));
    let owner = text(m, &format!("{root}.user.name"));
    let status = text(m, &format!("{root}.status"));
    let builds = nvrs(m, &format!("{root}.builds"));
    let builds_summary = truncate(&builds.join(" "));
    let build_lines = builds.join("\n");
    let agent = if event == "update.comment" {
        opt(m, "comment.user.name")
    } else {
        agent
    };
    let agent_text = agent.clone().unwrap_or_else(|| "None".into());
    let owner_qual = if agent.as_deref() == Some(owner.as_str()) {
        "their".to_owned()
    } else {
        format!("{owner}'s")
    };
    let (summary, long) = match event {
        "update.comment" => {
            let karma = text(m, "comment.karma");
            (
                format!("{agent_text} commented on update {builds_summary} (karma: {karma})"),
                format!(
                    "{agent_text} commented on {owner}'s update {alias} with karma {karma}:\n\n{}\n\nBuilds:\n{build_lines}",
                    text(m, "comment.text")
                ),
            )
        }
        "update.complete.stable" | "update.complete.testing" => (
            format!("{owner}'s {builds_summary} bodhi update completed push to {status}"),
            format!("{owner}'s Bodhi update {alias} completed push to {status}\nBuilds:\n{build_lines} "),
        ),
        "update.edit" => {
            let summary = format!("{agent_text} edited {owner_qual} update {alias} ({builds_summary})");
            let count = |path: &str| m.arr(path).len();
            let long = if schema_version(m) == Some("v2") {
                format!(
                    "{agent_text} edited {alias} adding {} new bug(s), adding {} build(s), and removing {} build(s)",
                    count("new_bugs"),
                    count("new_builds"),
                    count("removed_builds")
                )
            } else {
                format!("{agent_text} edited {alias} adding {} new bugs", count("new_bugs"))
            };
            (summary, long)
        }
        "update.eject" => {
            let summary = format!(
                "{owner}'s {builds_summary} bodhi update was ejected from the {} mash. Reason: \"{}\"",
                text(m, "repo"),
                text(m, "reason")
            );
            (summary.clone(), summary)
        }
        "update.karma.threshold" => {
            let threshold = text(m, "status");
            (
                format!("{owner}'s {builds_summary} bodhi update has reached the {threshold} karma threshold"),
                format!("{owner}'s bodhi update {alias} has reached the {threshold} karma threshold.\nBuilds:\n{build_lines}"),
            )
        }
        "update.requirements_met.stable" => (
            format!("{owner}'s {builds_summary} bodhi update has met stable testing requirements"),
            format!("{owner}'s Bodhi update {alias} has met stable testing requirements.\nBuilds:\n{build_lines}"),
        ),
        "update.status.testing" => (
            format!("{owner}'s {builds_summary} bodhi update is ready for testing"),
            format!("{owner}'s Bodhi update {alias} is ready for testing\nBuilds:\n{build_lines} "),
        ),
        _ if event.starts_with("update.request.") => {
            let status = m.last();
            if ["unpush", "obsolete", "revoke"].contains(&status) {
                let action = past_tense(status);
                (
                    format!("{agent_text} {action} {owner_qual} update {alias} ({builds_summary})"),
                    format!("{agent_text} {action} {owner_qual} update {alias}.\nBuilds:\n{build_lines}"),
                )
            } else {
                (
                    format!("{agent_text} submitted {owner_qual} update {alias} ({builds_summary}) to {status}"),
                    format!("{agent_text} submitted {owner_qual} update {alias} to {status}.\nBuilds:\n{build_lines}"),
                )
            }
        }
        _ => return None,
    };
    users.extend(agent.clone().filter(|_| event == "update.comment"));
    users.push(owner);
    Some(
        Facts::short("bodhi", summary)
            .long(long)
            .agent(agent)
            .url(Some(format!("{UPDATES}{alias}")))
            .packages(builds.into_iter().map(package))
            .users(users),
    )
}

/// The `.vN` suffix of the schema name.
fn schema_version<'a>(m: &Ctx<'a>) -> Option<&'a str> {
    super::schema_name(m)?.rsplit('.').next()
}
