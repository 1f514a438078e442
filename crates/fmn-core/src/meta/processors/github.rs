//! GitHub webhooks relayed onto the bus (`github.*`).

use serde_json::Value;

use crate::meta::ctx::Ctx;
use crate::meta::model::{Metadata, Processor};
use crate::meta::processors::long;
use crate::meta::py;

/// GitHub.
pub struct Github;

/// A GitHub login mapped to its Fedora account where the message says.
fn fas<'a>(m: &Ctx<'a>, login: &'a str) -> String {
    m.get("fas_usernames")
        .and_then(|map| map.get(login))
        .map_or_else(|| login.to_owned(), py::str)
}

fn present<'a>(m: &Ctx<'a>, key: &str) -> Option<&'a Value> {
    m.get(key).filter(|v| py::truthy(v))
}

fn user(m: &Ctx) -> Option<String> {
    if let Some(commit) = present(m, "commit") {
        if let Some(login) = commit
            .get("author")
            .filter(|a| py::truthy(a))
            .and_then(|a| a.get("login"))
            .and_then(Value::as_str)
            .filter(|l| !l.is_empty())
        {
            return Some(fas(m, login));
        }
    }
    for (key, path) in [
        ("pusher", "pusher.name"),
        ("sender", "sender.login"),
        ("forkee", "forkee.owner.login"),
    ] {
        if present(m, key).is_some() {
            return m.str(path).map(|l| fas(m, l));
        }
    }
    None
}

fn repo(m: &Ctx) -> Option<String> {
    let repo = m.get("repository")?;
    let owner = repo.get("owner")?;
    let who = owner.get("login").or_else(|| owner.get("name"))?;
    Some(format!("{}/{}", py::str(who), py::str(repo.get("name")?)))
}

fn link(m: &Ctx) -> Option<String> {
    let url = |path: &str| m.get(path).map(py::str);
    if m.has("github.deployment_status") {
        return url("deployment_status.target_url");
    }
    if m.has("github.watch") {
        return url("repository.html_url").map(|u| u + "/watchers");
    }
    if m.has("github.star") {
        return url("repository.html_url").map(|u| u + "/stargazers");
    }
    if m.has("github.page_build") {
        let html = url("repository.html_url")?;
        let parts: Vec<&str> = html.split('/').collect();
        let n = parts.len();
        if n < 2 {
            return None;
        }
        return Some(format!(
            "http://{}.github.io/{}/",
            parts[n - 2],
            parts[n - 1]
        ));
    }
    for (key, path) in [
        ("release", "release.html_url"),
        ("target_url", "target_url"),
        ("compare", "compare"),
        ("comment", "comment.html_url"),
        ("review", "review.html_url"),
        ("pull_request", "pull_request.html_url"),
        ("issue", "issue.html_url"),
        ("forkee", "forkee.html_url"),
        ("repository", "repository.html_url"),
    ] {
        if m.contains(key) {
            return url(path);
        }
    }
    None
}

fn subtitle(m: &Ctx) -> Option<String> {
    let user = user(m).unwrap_or_else(|| "None".to_owned());
    let repo = repo(m).unwrap_or_else(|| "None".to_owned());
    let f = |p: &str| m.fmt_or_none(p);
    Some(if m.has("github.webhook") {
        "A new github repository has been added to fedmsg".to_owned()
    } else if m.has("github.deployment_status") {
        format!(
            "{user}'s deployment status for {repo} updated to \"{}\"",
            f("deployment_status.state")
        )
    } else if m.has("github.push") {
        format!(
            "{user} pushed {} commit(s) to {repo}",
            m.arr("commits").len()
        )
    } else if m.has("github.pull_request.") {
        let mut action = f("action");
        if action == "synchronize" {
            action = "synchronized".to_owned();
        }
        let n = f("number");
        if action == "opened" {
            format!(
                "{user} {action} pull request #{n} on {repo}: {}",
                f("pull_request.title")
            )
        } else {
            format!("{user} {action} pull request #{n} on {repo}")
        }
    } else if m.has("github.issue.") {
        let action = if m.contains("comment") {
            "commented on".to_owned()
        } else {
            f("action")
        };
        let n = m
            .get("number")
            .or_else(|| m.get("issue.number"))
            .map_or_else(|| "None".to_owned(), py::str);
        match action.as_str() {
            "opened" => format!("{user} {action} issue #{n} on {repo}: {}", f("issue.title")),
            "labeled" => format!(
                "{user} added label {} to issue #{n} on {repo}",
                f("label.name")
            ),
            _ => format!("{user} {action} issue #{n} on {repo}"),
        }
    } else if m.has("github.pull_request_review") && !m.has("github.pull_request_review_comment") {
        let n = f("pull_request.number");
        let state = f("review.state");
        match state.as_str() {
            "pending" => format!("{user} commented on PR #{n} on {repo} which is in {state} state"),
            "approved" => format!("{user} {state} the changes on PR #{n} on {repo}"),
            "changes_requested" => format!("{user} requested changes on PR #{n} on {repo}"),
            "commented" => format!("{user} {state} on PR #{n} on {repo}"),
            _ => return None,
        }
    } else if m.has("github.pull_request_review_comment") {
        format!(
            "{user} commented on PR #{} on {repo}",
            f("pull_request.number")
        )
    } else if m.has("github.commit_comment") {
        format!("{user} commented on a commit on {repo}")
    } else if m.has("github.create") {
        format!(
            "{user} created a new {} \"{}\" at {repo}",
            f("ref_type"),
            f("ref")
        )
    } else if m.has("github.delete") {
        format!(
            "{user} deleted the \"{}\" {} at {repo}",
            f("ref"),
            f("ref_type")
        )
    } else if m.has("github.fork") {
        format!("{user} forked {repo}")
    } else if m.has("github.status") {
        format!("{} for {repo} {}", f("description"), py::head(&f("sha"), 8))
    } else if m.has("github.watch") {
        format!("{user} {} watching {repo}", f("action"))
    } else if m.has("github.star") {
        let action = if f("action") == "started" {
            "starred"
        } else {
            "unstarred"
        };
        format!("{user} {action} {repo}")
    } else if m.has("github.release") {
        let short = repo.split_once('/').map_or(repo.as_str(), |(_, r)| r);
        format!(
            "{user} cut a release of {short}, version {}",
            f("release.tag_name")
        )
    } else if m.has("github.page_build") {
        format!("{user} rebuilt the github.io page for {repo}")
    } else if m.has("github.team_add") {
        format!(
            "The '{}' team was added to the {repo} repository",
            f("team.slug")
        )
    } else if m.has("github.member") {
        let member = f("member.login");
        if f("action") == "added" {
            format!("{user} added {member} as a member of {repo}")
        } else {
            format!("{user} removed member {member} from {repo}")
        }
    } else {
        return None;
    })
}

impl Processor for Github {
    fn services(&self) -> &'static [&'static str] {
        &["github"]
    }

    fn app(&self) -> &'static str {
        "github"
    }

    fn long_form(&self, m: &Ctx<'_>, meta: &Metadata) -> Option<String> {
        let sub = meta.subtitle.as_deref();
        if let Some(body) = m.str("comment.body") {
            return long::under(sub, body);
        }
        if m.has("github.issue.opened") {
            return long::under(sub, m.str("issue.body")?);
        }
        if m.has("github.pull_request.opened") {
            return long::under(sub, m.str("pull_request.body")?);
        }
        None
    }

    fn extract(&self, m: &Ctx<'_>, out: &mut Metadata) {
        out.subtitle = subtitle(m);
        out.link = link(m);
        if let Some(Value::Object(map)) = m.get("fas_usernames") {
            for name in map.values().filter_map(Value::as_str) {
                if !name.starts_with("github_org_") {
                    out.user(name);
                }
            }
        }
        // The agent is the acting GitHub user when they have a Fedora account.
        if let Some(user) = user(m) {
            if out.usernames.contains(&user) {
                out.agent = Some(user);
            }
        }
    }
}
