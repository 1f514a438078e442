//! Pagure (`io.pagure.*.pagure.*`) and Pagure over dist-git (`org.fedoraproject.*.pagure.*`).

use serde_json::Value;

use crate::meta::ctx::get;
use crate::meta::ctx::Ctx;
use crate::meta::model::{Metadata, Processor};
use crate::meta::processors::long;
use crate::meta::py::{self, list_to_series};

/// Pagure.
pub struct Pagure;

/// `foo`, `ns/foo`, or `fork/user/ns/foo` for the project object at `obj[key]`.
pub(crate) fn project_of(obj: &Value, key: &str) -> Option<String> {
    let p = obj.get(key)?;
    let mut project = py::str(p.get("name")?);
    if let Some(ns) = p.get("namespace").filter(|n| py::truthy(n)) {
        project = format!("{}/{project}", py::str(ns));
    }
    if py::truthy(p.get("parent")?) {
        let user = py::str(get(p, "user.name")?);
        project = format!("fork/{user}/{project}");
    }
    Some(project)
}

fn project(m: &Ctx) -> String {
    project_of(m.body, "project")
        .or_else(|| {
            m.get("pullrequest")
                .and_then(|pr| project_of(pr, "project"))
        })
        .unwrap_or_else(|| "(unknown)".to_owned())
}

fn base_url(m: &Ctx) -> &'static str {
    let stg = m.has(".stg.");
    if m.topic().prefix() == "io.pagure" {
        if stg {
            "https://stg.pagure.io"
        } else {
            "https://pagure.io"
        }
    } else if stg {
        "https://src.stg.fedoraproject.org"
    } else {
        "https://src.fedoraproject.org"
    }
}

fn strip_heads(branch: &str) -> String {
    branch.replace("refs/heads/", "")
}

fn last_id(list: Option<&Value>) -> Option<String> {
    list?.as_array()?.last()?.get("id").map(py::str)
}

fn link(m: &Ctx) -> Option<String> {
    let base = base_url(m);
    let project = project(m);
    let f = |p: &str| m.fmt_or_none(p);
    if m.has("pagure.issue") {
        let id = f("issue.id");
        if m.has("comment.edited") {
            let comment_id = m.get("comment.id").filter(|c| py::truthy(c));
            return Some(match comment_id {
                Some(c) if project != "(unknown)" => {
                    format!("{base}/{project}/issue/{id}#comment-{}", py::str(c))
                }
                _ if project != "(unknown)" => format!("{base}/{project}/issue/{id}"),
                _ => base.to_owned(),
            });
        }
        if m.has("comment.added") {
            return Some(match last_id(m.get("issue.comments")) {
                Some(c) => format!("{base}/{project}/issue/{id}#comment-{c}"),
                None => format!("{base}/{project}/issue/{id}"),
            });
        }
        return Some(format!("{base}/{project}/issue/{id}"));
    }
    if m.has("pagure.pull-request") {
        let key = ["pullrequest", "pull_request", "pull-request"]
            .into_iter()
            .find(|k| m.contains(k))
            .unwrap_or("pullrequest");
        let id = f(&format!("{key}.id"));
        if m.has("comment") {
            if let Some(c) = last_id(m.get("pullrequest.comments")) {
                return Some(format!("{base}/{project}/pull-request/{id}#comment-{c}"));
            }
            if m.truthy("comment") {
                return Some(format!(
                    "{base}/{project}/pull-request/{id}#comment-{}",
                    f("comment.id")
                ));
            }
        }
        return Some(format!("{base}/{project}/pull-request/{id}"));
    }
    if m.has("pagure.request") {
        return Some(format!("{base}/{project}/pull-request/{}", f("request.id")));
    }
    if m.has("pagure.project.deleted") {
        return Some(base.to_owned());
    }
    if m.has("pagure.project") {
        return Some(format!("{base}/{project}"));
    }
    if m.has("pagure.commit.flag") {
        let project = project_of(m.body, "repo").unwrap_or_default();
        return Some(format!("{base}/{project}/c/{}", f("flag.commit_hash")));
    }
    if m.has("pagure.git.receive") {
        return Some(if let Some(commit) = m.get("commit") {
            let project = project_of(commit, "repo").unwrap_or_default();
            format!("{base}/{project}/{}", f("commit.rev"))
        } else {
            let project = project_of(m.body, "repo").unwrap_or_default();
            format!("{base}/{project}/tree/{}", strip_heads(&f("branch")))
        });
    }
    Some(base.to_owned())
}

fn tags(m: &Ctx) -> String {
    let tags: Vec<String> = m.arr("tags").iter().map(py::str).collect();
    list_to_series(&tags)
}

fn subtitle(m: &Ctx) -> Option<String> {
    let project = project(m);
    let user = m.fmt_or_none("agent");
    let f = |p: &str| m.fmt_or_none(p);
    let issue = || f("issue.id");
    Some(if m.has("pagure.project.new") {
        format!("{user} created a new project \"{project}\"")
    } else if m.has("pagure.issue.new") {
        format!(
            "{user} opened a new ticket {project}#{}: \"{}\"",
            issue(),
            f("issue.title")
        )
    } else if m.has("pagure.issue.drop") {
        format!(
            "{user} deleted ticket {project}#{}: \"{}\"",
            issue(),
            f("issue.title")
        )
    } else if m.has("pagure.issue.comment.edited") {
        format!(
            "{user} edited a comment on ticket {project}#{}: \"{}\"",
            issue(),
            f("issue.title")
        )
    } else if m.has("pagure.issue.comment.added") {
        format!(
            "{user} commented on ticket {project}#{}: \"{}\"",
            issue(),
            f("issue.title")
        )
    } else if m.has("pagure.issue.tag.added") {
        format!("{user} tagged ticket {project}#{}: {}", issue(), tags(m))
    } else if m.has("pagure.issue.tag.removed") {
        format!(
            "{user} removed the {} tags from ticket {project}#{}",
            tags(m),
            issue()
        )
    } else if m.has("pagure.pull-request.tag.added") {
        format!(
            "{user} tagged pull-request {project}#{}: {}",
            f("pull_request.id"),
            tags(m)
        )
    } else if m.has("pagure.pull-request.tag.removed") {
        format!(
            "{user} removed the {} tags from pull-request {project}#{}",
            tags(m),
            f("pull_request.id")
        )
    } else if m.has("pagure.issue.assigned.added") {
        let assignee = match m.get("issue.assignee") {
            Some(a) if py::truthy(a) => format!(" to {}", f("issue.assignee.name")),
            _ => String::new(),
        };
        format!("{user} assigned ticket {project}#{}{assignee}", issue())
    } else if m.has("pagure.issue.assigned.reset") {
        format!("{user} reset the assignee of ticket {project}#{}", issue())
    } else if m.has("pagure.issue.dependency.added") {
        format!(
            "{user} added ticket {project}#{} as a dependency of ticket {project}#{}",
            issue(),
            f("added_dependency")
        )
    } else if m.has("pagure.issue.dependency.removed") {
        format!(
            "{user} removed ticket {project}#{} as a dependency of ticket {project}#{}",
            issue(),
            f("removed_dependency")
        )
    } else if m.has("pagure.issue.edit") {
        let fields: Vec<String> = m.arr("fields").iter().map(py::str).collect();
        if fields == ["status"] {
            format!(
                "{user} set the status of ticket {project}#{} to: {}",
                issue(),
                f("issue.status")
            )
        } else {
            format!(
                "{user} edited the {} fields of ticket {project}#{}",
                list_to_series(&fields),
                issue()
            )
        }
    } else if m.has("pagure.project.edit") {
        let fields: Vec<String> = m.arr("fields").iter().map(py::str).collect();
        format!(
            "{user} edited the {} fields of project {project}",
            list_to_series(&fields)
        )
    } else if m.has("pagure.project.group.added") {
        let group = f("new_group");
        match m.get("access").filter(|a| py::truthy(a)) {
            Some(a) => format!(
                "{user} added group \"{group}\" to project {project} with {} access",
                py::str(a)
            ),
            None => format!("{user} added group \"{group}\" to project {project}"),
        }
    } else if m.has("pagure.project.group.access.updated") {
        format!(
            "{user} updated access of group \"{}\" to {} on project {project}",
            f("new_group"),
            f("new_access")
        )
    } else if m.has("pagure.project.user.added") {
        let new_user = f("new_user");
        match m.get("access").filter(|a| py::truthy(a)) {
            Some(a) => format!(
                "{user} added \"{new_user}\" to project {project} with {} access",
                py::str(a)
            ),
            None => format!("{user} added \"{new_user}\" to project {project}"),
        }
    } else if m.has("pagure.project.user.access.updated") {
        format!(
            "{user} updated access of \"{}\" to {} in project {project}",
            f("new_user"),
            f("new_access")
        )
    } else if m.has("pagure.project.tag.removed") {
        format!("{user} removed tags \"{}\" from project {project}", tags(m))
    } else if m.has("pagure.project.tag.edited") {
        format!(
            "{user} altered tags on project {project} from \"{}\" to \"{}\"",
            f("old_tag"),
            f("new_tag")
        )
    } else if m.has("pagure.project.forked") {
        format!("{user} forked {} to {project}", f("project.parent.name"))
    } else if m.has("pagure.pull-request.comment.added") {
        format!(
            "{user} commented on PR #{} on {project}",
            f("pullrequest.id")
        )
    } else if m.has("pagure.pull-request.comment.edited") {
        format!(
            "{user} edited a comment on PR #{} on {project}",
            f("pullrequest.id")
        )
    } else if m.has("pagure.pull-request.closed") {
        if m.truthy("merged") {
            format!(
                "{user} merged pull request #{} on {project}",
                f("pullrequest.id")
            )
        } else {
            format!(
                "{user} closed (without merging) pull request #{} on {project}",
                f("pullrequest.id")
            )
        }
    } else if m.has("pagure.pull-request.new") {
        format!(
            "{user} opened pull request #{} on {project}: {}",
            f("pullrequest.id"),
            f("pullrequest.title")
        )
    } else if m.has("pagure.pull-request.updated") {
        format!("Pull-request #{} has been updated", f("pullrequest.id"))
    } else if m.has("pagure.pull-request.rebased") {
        format!("Pull-request #{} has been rebased", f("pullrequest.id"))
    } else if m.has("pagure.pull-request.flag.added") {
        format!(
            "{} flagged {project}#{} with \"{}\"",
            f("flag.username"),
            f("pullrequest.id"),
            f("flag.comment")
        )
    } else if m.has("pagure.pull-request.flag.updated") {
        format!(
            "{} updated the flags on {project}#{} with: \"{}\"",
            f("flag.username"),
            f("pullrequest.id"),
            f("flag.comment")
        )
    } else if m.has("pagure.request.assigned.added") {
        let assignee = match m.get("request.assignee") {
            Some(a) if py::truthy(a) => format!(" to {}", f("request.assignee.name")),
            _ => String::new(),
        };
        format!("{user} assigned PR {project}#{}{assignee}", f("request.id"))
    } else if m.has("pagure.request.assigned.reset") {
        format!(
            "{user} reset the assignee of PR {project}#{}",
            f("request.id")
        )
    } else if m.has("pagure.git.receive") {
        if let Some(commit) = m.get("commit") {
            let repo = project_of(commit, "repo").unwrap_or_default();
            let email = m.str("commit.email").unwrap_or_default();
            let who = m.email(email);
            let who = if who.is_empty() { email } else { who };
            let mut summary = f("commit.summary");
            if summary.trim() != f("commit.message").trim() {
                summary.push_str(" (..more)");
            }
            format!(
                "{who} pushed to {repo} ({}). \"{summary}\"",
                strip_heads(&f("commit.branch"))
            )
        } else {
            let repo = project_of(m.body, "repo").unwrap_or_default();
            let n = f("total_commits");
            let label = if n == "1" { "commit" } else { "commits" };
            format!(
                "{user} pushed {n} {label} to {repo} ({})",
                strip_heads(&f("branch"))
            )
        }
    } else if m.has("pagure.project.deleted") {
        format!("{user} deleted the project \"{project}\"")
    } else if m.has("pagure.commit.flag.added") || m.has("pagure.commit.flag.updated") {
        let verb = if m.has("pagure.commit.flag.added") {
            "added a flag"
        } else {
            "updated its flag"
        };
        format!(
            "{} {verb} on the commit {} of the project {}",
            f("flag.username"),
            py::head(&f("flag.commit_hash"), 8),
            project_of(m.body, "repo").unwrap_or_default()
        )
    } else if m.has("pagure.project.user.removed") {
        format!(
            "{user} removed \"{}\" from the project {project}",
            f("removed_user")
        )
    } else {
        return None;
    })
}

impl Processor for Pagure {
    fn services(&self) -> &'static [&'static str] {
        &["pagure"]
    }

    fn app(&self) -> &'static str {
        "pagure"
    }

    fn long_form(&self, m: &Ctx<'_>, meta: &Metadata) -> Option<String> {
        let sub = meta.subtitle.as_deref();
        // The last comment of an issue or pull request, else its first text.
        let last_comment = |at: &str| {
            m.arr(&format!("{at}.comments"))
                .last()
                .and_then(|c| c.get("comment"))
                .and_then(serde_json::Value::as_str)
        };
        if m.has("pagure.issue.comment") {
            return long::under(sub, last_comment("issue")?);
        }
        if m.has("pagure.pull-request.comment") {
            return long::under(sub, last_comment("pullrequest")?);
        }
        if m.has("pagure.issue.new") {
            return long::under(sub, m.str("issue.content")?);
        }
        if m.has("pagure.pull-request.new") {
            return long::under(sub, m.str("pullrequest.initial_comment")?);
        }
        if m.has("pagure.git.receive") {
            return long::under(sub, long::commit(m, "commit")?);
        }
        None
    }

    fn extract(&self, m: &Ctx<'_>, out: &mut Metadata) {
        out.subtitle = subtitle(m);
        out.link = link(m);
        match m.get("agent").filter(|a| py::truthy(a)) {
            Some(agent) => out.set_agent(py::str(agent)),
            None if m.has("pagure.git.receive") => {
                if let Some(email) = m.str("commit.email") {
                    out.user(m.email(email));
                }
            }
            None => {}
        }
    }
}
