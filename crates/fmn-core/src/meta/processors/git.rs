//! Dist-git (`git.*`): pushes, branches, lookaside uploads, pkgdb2branch and mass branching.

use crate::meta::ctx::Ctx;
use crate::meta::model::{Metadata, Processor};
use crate::meta::processors::long;
use crate::meta::py;

/// Dist-git.
pub struct Git;

/// Legacy topics carry the repo in the topic: `git.receive.<repo>.<branch>`.
fn topic_repo(m: &Ctx) -> String {
    let labels: Vec<&str> = m.topic_str().split('.').collect();
    if labels.len() > 6 {
        labels[5..labels.len() - 1].join(".")
    } else {
        String::new()
    }
}

fn receive_repo(m: &Ctx) -> String {
    m.fmt("commit.repo").unwrap_or_else(|| topic_repo(m))
}

/// (repo, branch) of a branch creation.
fn branch_info(m: &Ctx) -> (String, String) {
    match (m.fmt("name"), m.fmt("branch")) {
        (Some(name), Some(branch)) => (name, branch),
        _ => (topic_repo(m), m.last().to_owned()),
    }
}

fn subtitle(m: &Ctx) -> Option<String> {
    let f = |p: &str| m.fmt_or_none(p);
    if m.has(".git.receive") {
        let user = m
            .fmt("commit.username")
            .unwrap_or_else(|| f("commit.email"));
        let mut summary = f("commit.summary");
        if summary.trim() != f("commit.message").trim() {
            summary.push_str(" (..more)");
        }
        let repo = match m.fmt("commit.namespace") {
            Some(ns) => format!("{ns}/{}", receive_repo(m)),
            None => receive_repo(m),
        };
        return Some(format!(
            "{user} pushed to {repo} ({}).  \"{summary}\"",
            f("commit.branch")
        ));
    }
    if m.has(".git.branch") {
        let (mut repo, branch) = branch_info(m);
        if let Some(ns) = m.fmt("namespace") {
            repo = format!("{ns}/{repo}");
        }
        return Some(format!(
            "{} created branch '{branch}' for the '{repo}' package",
            f("agent")
        ));
    }
    if m.has(".git.lookaside") {
        return Some(format!(
            "{} uploaded {} for {}",
            f("agent"),
            f("filename"),
            f("name")
        ));
    }
    let agent = m.fmt("agent").unwrap_or_else(|| "(somebody)".to_owned());
    Some(if m.has(".git.mass_branch.start") {
        format!("{agent} started a mass branch")
    } else if m.has(".git.mass_branch.complete") {
        format!("mass branch started by {agent} completed")
    } else if m.has(".git.pkgdb2branch.start") {
        format!("{agent} started a run of pkgdb2branch")
    } else if m.has(".git.pkgdb2branch.complete") {
        let errors = m.arr("unbranchedPackages").len();
        match errors {
            0 => format!("run of pkgdb2branch started by {agent} completed"),
            1 => format!("run of pkgdb2branch started by {agent} completed with 1 error"),
            n => format!("run of pkgdb2branch started by {agent} completed with {n} errors"),
        }
    } else {
        return None;
    })
}

fn link(m: &Ctx) -> Option<String> {
    let prefix = "https://src.fedoraproject.org";
    let f = |p: &str| m.fmt_or_none(p);
    if m.has(".git.receive") {
        let ns = m.fmt("commit.namespace").unwrap_or_else(|| "rpms".into());
        return Some(format!(
            "{prefix}/{ns}/{}/c/{}?branch={}",
            receive_repo(m),
            f("commit.rev"),
            f("commit.branch")
        ));
    }
    if m.has(".git.branch") {
        let (repo, branch) = branch_info(m);
        let ns = m.fmt("namespace").unwrap_or_else(|| "rpms".into());
        return Some(format!("{prefix}/{ns}/{repo}/commits/{branch}"));
    }
    if m.has(".git.lookaside") {
        let path = m.fmt("path").unwrap_or_else(|| {
            let file = f("filename");
            format!("{}/{file}/{}/{file}", f("name"), f("md5sum"))
        });
        return Some(format!("{prefix}/lookaside/pkgs/{path}"));
    }
    None
}

impl Processor for Git {
    fn services(&self) -> &'static [&'static str] {
        &["git"]
    }

    fn app(&self) -> &'static str {
        "git"
    }

    fn long_form(&self, m: &Ctx<'_>, meta: &Metadata) -> Option<String> {
        // A push: the commit message with its diffstat.
        if m.has(".git.receive") {
            return long::under(meta.subtitle.as_deref(), long::commit(m, "commit")?);
        }
        None
    }

    fn extract(&self, m: &Ctx<'_>, out: &mut Metadata) {
        out.subtitle = subtitle(m);
        out.link = link(m);
        if let Some(agent) = m.get("agent") {
            out.set_agent(py::str(agent));
        } else if let Some(user) = m.fmt("commit.username") {
            out.set_agent(user);
        }

        // Only the rpms namespaces hold packages.
        if let Some(ns) = m.str("namespace") {
            if ns != "rpms" && ns != "rpms-checks" {
                return;
            }
        }
        if m.has("git.receive") {
            out.package(receive_repo(m));
        } else if m.has("git.branch") {
            out.package(m.fmt("name").unwrap_or_else(|| topic_repo(m)));
        } else if m.has(".git.pkgdb2branch.complete") {
            for key in ["unbranchedPackages", "branchedPackages"] {
                for p in m.strs(key) {
                    out.package(p);
                }
            }
        } else if m.has(".git.lookaside") {
            out.package(m.fmt_or_none("name"));
        }
    }
}
