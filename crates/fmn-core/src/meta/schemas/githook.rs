//! `fedora-messaging-git-hook-messages`: pushes to Fedora's dist-git and other git hosts.

use super::facts::{opt, text, Facts};
use crate::meta::ctx::Ctx;

pub(super) fn describe(schema: &str, m: &Ctx<'_>) -> Option<Facts> {
    if schema != "fedora_messaging_git_hook.commit.v1" {
        return None;
    }
    let repo = text(m, "commit.repo");
    let namespace = m
        .get("commit.namespace")
        .filter(|v| crate::meta::py::truthy(v));
    let shown = namespace.map_or_else(
        || repo.clone(),
        |ns| format!("{}/{repo}", crate::meta::py::str(ns)),
    );
    let summary = format!(
        "{} pushed to {shown} ({}). \"{}\"",
        text(m, "agent"),
        text(m, "commit.branch"),
        text(m, "commit.summary")
    );
    let long = format!(
        "From {} Mon Sep 17 00:00:00 2001\nFrom: {} <{}>\nDate: {}\nSubject: {}\n\n{}\n---\n\n{}\n",
        text(m, "commit.rev"),
        text(m, "commit.name"),
        text(m, "commit.email"),
        text(m, "commit.date"),
        text(m, "commit.summary"),
        text(m, "commit.message"),
        text(m, "commit.patch"),
    );
    let agent = opt(m, "agent");
    let facts = Facts::short("Git", summary)
        .long(long)
        .url(opt(m, "commit.url"))
        .users(agent.clone())
        .groups(opt(m, "group").filter(|g| !g.is_empty()))
        .agent(agent);
    Some(facts.repository(m.str("commit.namespace"), "container", Some(repo)))
}
