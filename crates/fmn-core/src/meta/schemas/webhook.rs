//! `webhook-to-fedora-messaging-messages`: Forgejo, GitHub, GitLab and Pretix webhooks
//! relayed to the bus. The webhook's payload is in `body.body`, its HTTP headers in
//! `body.headers`.

use serde_json::Value;

use super::facts::{base_str, lookup, opt, text, Facts};
use crate::meta::ctx::Ctx;
use crate::meta::py;

/// Python `a or b or ...` over body values: the first truthy one, `str()`-ed.
fn either(m: &Ctx<'_>, paths: &[&str]) -> String {
    paths
        .iter()
        .filter_map(|p| lookup(m.body, p))
        .find(|v| py::truthy(v))
        .or_else(|| paths.last().and_then(|p| lookup(m.body, p)))
        .map_or_else(|| "None".into(), py::str)
}

/// `', '.join(item[key] or item[fallback] for item in list)` over the list at `path`.
fn names(m: &Ctx<'_>, path: &str, keys: &[&str]) -> String {
    m.arr(path)
        .iter()
        .map(|item| {
            keys.iter()
                .map(|k| &item[*k])
                .find(|v| py::truthy(v))
                .map_or_else(|| py::str(&item[keys[keys.len() - 1]]), py::str)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The commit lines of a push: `- abcdef1: first line of message by Author (url)`.
fn commits(m: &Ctx<'_>) -> String {
    m.arr("body.commits")
        .iter()
        .map(|c| {
            let id = py::head(c["id"].as_str().unwrap_or_default(), 7).to_owned();
            let message = c["message"].as_str().unwrap_or_default();
            let first = message.lines().next().unwrap_or_default();
            format!(
                "- {id}: {first} by {} ({})",
                py::str(&c["author"]["name"]),
                py::str(&c["url"])
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The last `/` part of `body.ref` (the branch of a push).
fn branch(m: &Ctx<'_>) -> String {
    text(m, "body.ref")
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// Which forge: its name keys differ.
#[derive(Clone, Copy, PartialEq)]
enum Forge {
    Forgejo,
    GitHub,
}

/// The long text of a Forgejo or GitHub repository event.
fn forge_event(m: &Ctx<'_>, forge: Forge, event: &str) -> String {
    let person = |path: &str| match forge {
        Forge::Forgejo => either(m, &[&format!("{path}.full_name"), &format!("{path}.login")]),
        Forge::GitHub => text(m, &format!("{path}.login")),
    };
    let repo = format!(
        "Repository: {} ({})",
        text(m, "body.repository.full_name"),
        text(m, "body.repository.html_url")
    );
    match event {
        "push" => {
            let (pusher, url) = match forge {
                Forge::Forgejo => (either(m, &["body.pusher.full_name", "body.pusher.login"]), text(m, "body.pusher.html_url")),
                Forge::GitHub => {
                    let name = text(m, "body.pusher.name");
                    let url = format!("https://github.com/{name}");
                    (name, url)
                }
            };
            format!("Event: Push\n{repo}\nPusher: {pusher} ({url})\nBranch: {}\nCommits:\n{}", branch(m), commits(m))
        }
        "fork" => format!(
            "Event: Fork\n{repo}\nForkee: {} ({})\nOwner: {} ({})",
            text(m, "body.forkee.full_name"),
            text(m, "body.forkee.html_url"),
            person("body.forkee.owner"),
            text(m, "body.forkee.owner.html_url"),
        ),
        "pull_request" => {
            let reviewer_keys: &[&str] = if forge == Forge::Forgejo { &["full_name", "login"] } else { &["login"] };
            format!(
                "Event: Pull Request\n{repo}\nTitle: {}\nURL: {}\nAuthor: {}\nStatus: {}\nSource Branch: {}\nDestination Branch: {}\nRequested Reviewers: {}",
                text(m, "body.pull_request.title"),
                text(m, "body.pull_request.html_url"),
                person("body.pull_request.user"),
                text(m, "body.action"),
                text(m, "body.pull_request.head.ref"),
                text(m, "body.pull_request.base.ref"),
                names(m, "body.pull_request.requested_reviewers", reviewer_keys),
            )
        }
        "issues" => format!(
            "Event: Issue\n{repo}\nTitle: {}\nURL: {}\nAuthor: {}\nStatus: {}\nLabels: {}",
            text(m, "body.issue.title"),
            text(m, "body.issue.html_url"),
            person("body.issue.user"),
            text(m, "body.action"),
            names(m, "body.issue.labels", &["name"]),
        ),
        "issue_comment" => format!(
            "Event: Issue Comment\n{repo}\nIssue: {} ({})\nComment Author: {}\nComment: {}\nComment URL: {}",
            text(m, "body.issue.title"),
            text(m, "body.issue.html_url"),
            person("body.comment.user"),
            text(m, "body.comment.body"),
            text(m, "body.comment.html_url"),
        ),
        "action_run_success" | "action_run_failure" | "action_run_recover" | "action_run_cancelled"
            if forge == Forge::Forgejo =>
        {
            action_run(m)
        }
        _ => "Event type not supported".into(),
    }
}

/// Forgejo's action-run events.
fn action_run(m: &Ctx<'_>) -> String {
    let action = text(m, "body.action");
    let mut status = format!(
        "Status: {} → {}",
        text(m, "body.prior_status"),
        text(m, "body.run.status")
    );
    if action == "recover" {
        status.push_str(" (recovered)");
    }
    let mut out = format!(
        "Event: Action Run {}\nRepository: {} ({})\nWorkflow: {}\nRun: {} ({})\n{status}\nCommit: {}\nBranch: {}",
        title_case(&action),
        text(m, "body.run.repository.full_name"),
        text(m, "body.run.repository.html_url"),
        text(m, "body.run.workflow_id"),
        text(m, "body.run.title"),
        text(m, "body.run.html_url"),
        py::head(&text(m, "body.run.commit_sha"), 7),
        text(m, "body.run.prettyref"),
    );
    if action == "recover" && m.contains("body.last_run") {
        out.push_str(&format!(
            "\nPrevious Run: {} (failed)",
            text(m, "body.last_run.id")
        ));
    }
    out
}

/// Python's `str.title()`: each run of letters capitalised.
fn title_case(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev_letter = false;
    for c in s.chars() {
        if c.is_alphabetic() {
            if prev_letter {
                out.extend(c.to_lowercase());
            } else {
                out.extend(c.to_uppercase());
            }
            prev_letter = true;
        } else {
            out.push(c);
            prev_letter = false;
        }
    }
    out
}

/// GitLab's long text.
fn gitlab_event(m: &Ctx<'_>, event: &str) -> String {
    let repo = format!(
        "Repository: {} ({})",
        text(m, "body.repository.name"),
        text(m, "body.repository.homepage")
    );
    let titles = |path: &str| names(m, path, &["title"]);
    match event {
        "push" => {
            let pusher = text(m, "body.user_username");
            format!("Event: Push\n{repo}\nPusher: {pusher} (https://gitlab.com/{pusher})\nBranch: {}\nCommits:\n{}", branch(m), commits(m))
        }
        "merge_request" => format!(
            "Event: Merge Request\n{repo}\nTitle: {}\nURL: {}\nAuthor: {}\nStatus: {}\nSource Branch: {}\nDestination Branch: {}\nRequested Reviewers: {}",
            text(m, "body.object_attributes.title"),
            text(m, "body.object_attributes.url"),
            text(m, "body.user.username"),
            text(m, "body.object_attributes.state"),
            text(m, "body.object_attributes.source_branch"),
            text(m, "body.object_attributes.target_branch"),
            names(m, "body.reviewers", &["username"]),
        ),
        "issue" => format!(
            "Event: Issue\n{repo}\nTitle: {}\nURL: {}\nAuthor: {}\nStatus: {}\nLabels: {}",
            text(m, "body.object_attributes.title"),
            text(m, "body.object_attributes.url"),
            text(m, "body.user.username"),
            text(m, "body.object_attributes.state"),
            titles("body.object_attributes.labels"),
        ),
        "note" => format!(
            "Event: Note\n{repo}\nIssue: {} ({})\nComment Author: {}\nComment: {}\nComment URL: {}",
            text(m, "body.issue.title"),
            text(m, "body.issue.url"),
            text(m, "body.user.username"),
            text(m, "body.object_attributes.description"),
            text(m, "body.object_attributes.url"),
        ),
        _ => "Event type not supported".into(),
    }
}

/// `'{agent} created {event}'`, plus ` on {repo}` when the repository has a name.
fn created(m: &Ctx<'_>, event: &str, repo: &Value) -> String {
    let mut out = format!("{} created {event}", text(m, "agent"));
    if !repo.is_null() {
        out.push_str(&format!(" on {}", py::str(repo)));
    }
    out
}

pub(super) fn describe(schema: &str, m: &Ctx<'_>) -> Option<Facts> {
    let kind = schema.strip_prefix("webhook_to_fedora_messaging.")?;
    let (app, summary, long) = match kind {
        "forgejo.message_v1" => {
            let event = text(m, "headers.x-forgejo-event");
            let repo_path = if m.contains("body.run.repository") {
                "body.run.repository"
            } else {
                "body.repository"
            };
            let repo = m.val(&format!("{repo_path}.full_name"));
            (
                "Forgejo",
                created(m, &event, repo),
                forge_event(m, Forge::Forgejo, &event),
            )
        }
        "github.message_v1" => {
            let event = text(m, "headers.x-github-event");
            let long =
                if m.str("headers.x-github-hook-installation-target-type") == Some("repository") {
                    forge_event(m, Forge::GitHub, &event)
                } else {
                    "Event type not supported".into()
                };
            (
                "GitHub",
                created(m, &event, m.val("body.repository.full_name")),
                long,
            )
        }
        "gitlab.message_v1" => {
            let event = text(m, "headers.x-gitlab-event")
                .replace(" Hook", "")
                .replace(' ', "_")
                .to_lowercase();
            (
                "GitLab",
                created(m, &event, m.val("body.repository.name")),
                gitlab_event(m, &event),
            )
        }
        "pretix.message_v1" => ("Pretix", pretix_summary(m), base_str(m)),
        _ => return None,
    };
    let agent = opt(m, "agent");
    Some(
        Facts::short(app, summary)
            .long(long)
            .users(agent.clone())
            .groups(opt(m, "group").filter(|g| !g.is_empty()))
            .agent(agent),
    )
}

/// Pretix's summary: who did what to which event.
fn pretix_summary(m: &Ctx<'_>) -> String {
    let mut agent = opt(m, "body.attendee_name")
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "A user".into());
    if let Some(login) = opt(m, "agent").filter(|s| !s.is_empty()) {
        agent = format!("{agent} ({login})");
    }
    let full_action = text(m, "body.action");
    let action = full_action.get("pretix.".len()..).unwrap_or_default();
    let action = match (action, m.str("body.type")) {
        ("event.checkin", Some("entry")) => "entered".to_owned(),
        ("event.checkin", Some("exit")) => "exited".to_owned(),
        _ => format!("caused {action} in"),
    };
    let instance = match m.str("body.instance_url") {
        Some("https://rsvp.fedoraproject.org") => "Fedora ticket system",
        Some("https://rsvp.stg.fedoraproject.org") => "Fedora ticket system (staging)",
        _ => "Pretix",
    };
    format!("{agent} {action} {} on {instance}", text(m, "body.event"))
}
