//! `pagure-messages`: pagure.io (and src.fedoraproject.org, which runs Pagure).

use super::facts::{fill, lookup, opt, strings, text, Facts};
use crate::meta::ctx::Ctx;

/// Per schema: `summary` template, `__str__` template, `url` template (empty: none, or the
/// issue's or pull-request's own `full_url` for those schemas).
const TABLE: &[(&str, &str, &str, &str)] = &[
    ("commit.flag.added", "Commit {flag.commit_hash} of project {repo.fullname} was flagged as {flag.status} by {flag.username}", "New commit flag: {flag.username} {flag.status}\nBy: {agent}", "{repo.full_url}/c/{flag.commit_hash}"),
    ("commit.flag.updated", "{flag.username} updated flag on commit {flag.commit_hash} of project {repo.fullname} to {flag.status}", "New commit flag: {flag.username} {flag.status}\nBy: {agent}", "{repo.full_url}/c/{flag.commit_hash}"),
    ("group.edit", "{agent} edited the fields {fields|, } of the group {group.name}", "Group edit: {group.name}\nBy: {agent}", "{group.full_url}"),
    ("git.branch.deletion", "{agent} deleted the branch {branch} on {repo.fullname}", "Git branch: {branch} deleted\nBy: {agent}", "{repo.full_url}"),
    ("git.branch.creation", "{agent} created the branch {branch} on {repo.fullname}", "Git branch: {branch} created\nBy: {agent}", ""),
    ("git.tag.creation", "{agent} tagged the commit {rev} on {repo.fullname} as {tag}", "Git tag: {tag} created\nBy: {agent}", "{repo.full_url}/commits/{tag}"),
    ("git.tag.deletion", "{agent} deleted the tag {tag} of commit {rev} on {repo.fullname}", "Git tag: {tag} deleted\nBy: {agent}", "{repo.full_url}/releases"),
    ("issue.assigned.added", "{agent} assigned issue {project.fullname}#{issue.id} to {issue.assignee.name}", "Issue: {project.fullname}#{issue.id} assigned to {issue.assignee.name}\nBy: {agent}", "{issue.full_url}"),
    ("issue.assigned.reset", "{agent} reset the assignee on issue {project.fullname}#{issue.id}", "Issue un-assigned: {project.fullname}#{issue.id}\nBy: {agent}", "{issue.full_url}"),
    ("issue.comment.added", "{agent} commented on the issue {project.fullname}#{issue.id}", "Issue: {project.fullname}#{issue.id} has a new comment\nBy: {agent}", "{issue.full_url}#comment-{issue.comments.-1.id}"),
    ("issue.dependency.added", "{agent} set the issue {project.fullname}#{issue.id} as depending on #{added_dependency}", "Issue: {project.fullname}#{issue.id} depends on #{added_dependency}\nBy: {agent}", "{issue.full_url}"),
    ("issue.dependency.removed", "{agent} removed the dependency on #{removed_dependency|, #} on the issue {project.fullname}#{issue.id}", "Issue: {project.fullname}#{issue.id} no longer depending on #{removed_dependency|, #}\nBy: {agent}", "{issue.full_url}"),
    ("issue.drop", "{agent} deleted issue {project.fullname}#{issue.id}: {issue.title}", "Issue deleted: {project.fullname}#{issue.id}\nBy: {agent}", "{project.full_url}/issues"),
    ("issue.edit", "{agent} edited fields {fields|, } of issue {project.fullname}#{issue.id}: {issue.title}", "Edited Issue: {project.fullname}#{issue.id}\nBy: {agent}", "{issue.full_url}"),
    ("issue.new", "{agent} created issue {project.fullname}#{issue.id}: {issue.title}", "New Issue: {project.fullname}#{issue.id}\nBy: {agent}", "{issue.full_url}"),
    ("issue.tag.added", "{agent} tagged the issue {project.fullname}#{issue.id} with: {tags|, }", "Issue: {project.fullname}#{issue.id} tagged with {tags|, }\nBy: {agent}", "{issue.full_url}"),
    ("issue.tag.removed", "{agent} removed tags {tags|, } from issue {project.fullname}#{issue.id}", "Issue: {project.fullname}#{issue.id} un-tagged with {tags|, }\nBy: {agent}", "{issue.full_url}"),
    ("project.new", "{agent} created project \"{project.fullname}\"", "New Project: {project.fullname}\nBy: {agent}", "{project.full_url}"),
    ("project.edit", "{agent} edited the fields {fields|, } of project \"{project.fullname}\"", "Project Edited: {project.fullname}\nBy: {agent}", "{project.full_url}"),
    ("project.forked", "{agent} forked project \"{project.parent.fullname}\" to {project.fullname}", "Project: {project.parent.fullname}\nForked by: {agent}", "{project.full_url}"),
    ("project.deleted", "{agent} deleted project \"{project.fullname}\"", "Project: {project.fullname}\nDeleted by: {agent}", "{project.full_url}"),
    ("project.group.added", "{agent} added the group {new_group} to the project \"{project.fullname}\" at the {access} level", "Group: {new_group} added to {project.fullname} as {access}\nBy: {agent}", "{project.full_url}"),
    ("project.group.removed", "{agent} removed the group(s) {removed_groups|, } from the project \"{project.fullname}\"", "Group(s) {removed_groups|, } removed from {project.fullname}\nBy: {agent}", "{project.full_url}"),
    ("project.group.access.updated", "{agent} updated the access of group {new_group} to {new_access} on the project \"{project.fullname}\"", "Group: {new_group} access updated to {new_access} on {project.fullname}\nBy: {agent}", "{project.full_url}"),
    ("project.tag.edited", "{agent} edited the tag {new_tag} on the project \"{project.fullname}\"", "Tag: {new_tag} edited on {project.fullname}\nBy: {agent}", "{project.full_url}"),
    ("project.tag.removed", "{agent} removed the tag(s) {tags|, } of project \"{project.fullname}\"", "Tag(s): {tags|, } removed from {project.fullname}\nBy: {agent}", "{project.full_url}"),
    ("project.user.access.updated", "{agent} updated the access of {new_user} to {new_access} on the project \"{project.fullname}\"", "User: {new_user} access edited to {new_access} on {project.fullname}\nBy: {agent}", "{project.full_url}"),
    ("project.user.added", "{agent} added the {new_user} to the project \"{project.fullname}\"", "User: {new_user} added to {project.fullname}\nBy: {agent}", "{project.full_url}"),
    ("project.user.removed", "{agent} removed the {removed_user} from the project \"{project.fullname}\"", "User: {removed_user} removed from {project.fullname}\nBy: {agent}", "{project.full_url}"),
    ("pull-request.assigned.reset", "{agent} reset the assignee of the pull-request {pullrequest.project.fullname}#{pullrequest.id}", "Pull-request {pullrequest.project.fullname}#{pullrequest.id} was un-assigned\nBy: {agent}", "{pullrequest.full_url}"),
    ("pull-request.comment.added", "{agent} commented on the pull-request {pullrequest.project.fullname}#{pullrequest.id}", "Pull-Request: {pullrequest.project.fullname}#{pullrequest.id} has a new comment\nBy: {agent}", "{pullrequest.full_url}#comment-{pullrequest.comments.-1.id}"),
    ("pull-request.flag.added", "Pull-request {pullrequest.project.fullname}#{pullrequest.id} was flagged as {flag.status} by {flag.username}", "New pull-request flag: {flag.username} {flag.status}\nBy: {agent}", "{pullrequest.full_url}"),
    ("pull-request.flag.updated", "{flag.username} updated flag on pull-request {pullrequest.project.fullname}#{pullrequest.id} to {flag.status}", "Pull-request flag updated: {flag.username} {flag.status}\nBy: {agent}", "{pullrequest.full_url}"),
    ("pull-request.initial_comment.edited", "{agent} has edited the description of the pull-request {pullrequest.project.fullname}#{pullrequest.id}", "Description of pull-request {pullrequest.project.fullname}#{pullrequest.id} edited\nBy: {agent}", "{pullrequest.full_url}"),
    ("pull-request.new", "{agent} opened a pull-request {pullrequest.project.fullname}#{pullrequest.id}: {pullrequest.title}", "New Pull-Request: {pullrequest.project.fullname}#{pullrequest.id}\nBy: {agent}", "{pullrequest.full_url}"),
    ("pull-request.rebased", "{agent} rebased the pull-request {pullrequest.project.fullname}#{pullrequest.id}", "Pull-request {pullrequest.project.fullname}#{pullrequest.id} was rebased\nBy: {agent}", "{pullrequest.full_url}"),
    ("pull-request.reopened", "{agent} re-opened the pull-request {pullrequest.project.fullname}#{pullrequest.id}", "Pull-request {pullrequest.project.fullname}#{pullrequest.id} was re-opened\nBy: {agent}", "{pullrequest.full_url}"),
    ("pull-request.tag.added", "{agent} tagged the pull-request {pullrequest.project.fullname}#{pullrequest.id} with {tags|, }", "Pull-request {pullrequest.project.fullname}#{pullrequest.id} was tagged\nBy: {agent}", "{pullrequest.full_url}"),
    ("pull-request.tag.removed", "{agent} un-tagged the pull-request {pullrequest.project.fullname}#{pullrequest.id} with: {tags|, }", "Pull-request {pullrequest.project.fullname}#{pullrequest.id} was un-tagged\nBy: {agent}", "{pullrequest.full_url}"),
    ("pull-request.updated", "{agent} updated the pull-request {pullrequest.project.fullname}#{pullrequest.id}", "Pull-request {pullrequest.project.fullname}#{pullrequest.id} was updated\nBy: {agent}", "{pullrequest.full_url}"),
    ("pull-request.assigned.added", "", "Pull-request {pullrequest.project.fullname}#{pullrequest.id} was assigned\nBy: {agent}", "{pullrequest.full_url}"),
    ("pull-request.closed", "", "", "{pullrequest.full_url}"),
    ("pull-request.comment.edited", "{agent} edited comment on the pull-request {pullrequest.project.fullname}#{pullrequest.id}", "Edited comment on Pull-Request: {pullrequest.project.fullname}#{pullrequest.id}\nBy: {agent}", ""),
    ("git.receive", "", "", ""),
    ("Test.notification", "Test notification", "Test notification", ""),
];

pub(super) fn describe(schema: &str, m: &Ctx<'_>) -> Option<Facts> {
    let event = schema.strip_prefix("pagure.")?;
    let &(_, summary, long, url) = TABLE.iter().find(|row| row.0 == event)?;
    let mut summary = fill(m, summary);
    let mut long = fill(m, long);
    let mut url = (!url.is_empty()).then(|| fill(m, url));
    let pr = "{pullrequest.project.fullname}#{pullrequest.id}";
    match event {
        "pull-request.assigned.added" => {
            let assignee = opt(m, "pullrequest.assignee.name").unwrap_or_else(|| "someone".into());
            summary = fill(
                m,
                &format!("{{agent}} assigned the pull-request {pr} to {assignee}"),
            );
        }
        "pull-request.closed" => {
            let action = if lookup(m.body, "merged").is_some_and(crate::meta::py::truthy) {
                "merged"
            } else {
                "closed without merging"
            };
            summary = fill(m, &format!("{{agent}} {action} the pull-request {pr}"));
            long = fill(
                m,
                &format!("Pull-Request: {pr} has been {action}\nBy: {{agent}}"),
            );
        }
        "pull-request.comment.edited" => {
            let comments = m.arr("pullrequest.comments");
            url = Some(match comments.is_empty() {
                true => text(m, "pullrequest.full_url"),
                false => fill(
                    m,
                    "{pullrequest.full_url}#comment-{pullrequest.comments.-1.id}",
                ),
            });
        }
        "git.branch.creation" => {
            let branch = text(m, "branch").replace("refs/heads/", "");
            url = Some(format!("{}/tree/{branch}", text(m, "repo.full_url")));
        }
        "git.receive" => (summary, long, url) = git_receive(m),
        "Test.notification" => {
            let stg = m.topic_str().contains(".stg.");
            url = Some(
                if stg {
                    "https://stg.pagure.io"
                } else {
                    "https://pagure.io"
                }
                .into(),
            );
        }
        _ => {}
    }
    let object = ["issue", "pullrequest"]
        .into_iter()
        .find(|o| event.starts_with(&o.replace("pullrequest", "pull-request")));
    let users = match object {
        Some(object) => strings(
            m,
            &[
                "agent",
                &format!("{object}.user.name"),
                &format!("{object}.assignee.name"),
            ],
        ),
        None => strings(m, &["agent"]),
    };
    let facts = Facts::short("Pagure", summary)
        .long(long)
        .agent(opt(m, "agent"))
        .url(url)
        .users(users);
    if !event.starts_with("git.") {
        return Some(facts);
    }
    Some(facts.repository(m.str("repo.namespace"), "containers", opt(m, "repo.name")))
}

/// `GitReceiveV1`: its three texts depend on the number of commits.
fn git_receive(m: &Ctx<'_>) -> (String, String, Option<String>) {
    let branch = text(m, "branch").replace("refs/heads/", "");
    let total = m.val("total_commits");
    let one = total.as_f64() == Some(1.0);
    let summary = format!(
        "{} pushed {} commits on {} (branch: {branch})",
        text(m, "agent"),
        crate::meta::py::str(total),
        text(m, "repo.fullname")
    );
    let long = format!(
        "{} ({}) {}pushed {} commit{} on {}.\nBranch: {branch}\n",
        text(m, "authors.0.fullname"),
        text(m, "authors.0.name"),
        if m.truthy("forced") { "forced-" } else { "" },
        crate::meta::py::str(total),
        if total.as_f64().is_some_and(|n| n > 1.0) {
            "s"
        } else {
            ""
        },
        text(m, "repo.fullname"),
    );
    let url = if one {
        fill(m, "{repo.full_url}/c/{end_commit}")
    } else {
        fill(m, "{repo.full_url}/c/{old_commit}..{end_commit}")
    };
    (summary, long, Some(url))
}
