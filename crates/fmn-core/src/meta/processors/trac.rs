//! Trac instances on fedorahosted.org (`trac.*`).

use crate::meta::ctx::Ctx;
use crate::meta::model::{Metadata, Processor};
use crate::meta::processors::long;
use crate::meta::py;

/// Trac.
pub struct Trac;

/// Repositories whose cgit URL has no `.git` suffix.
const SHORT_REPOS: &[&str] = &[
    "389",
    "aeolus",
    "bluecurve",
    "bluecurve-classic-metacity-theme",
    "bluecurve-gdm-theme",
    "bluecurve-gnome-theme",
    "bluecurve-gtk-themes",
    "bluecurve-icon-theme",
    "bluecurve-kde-theme",
    "bluecurve-kdm-theme",
    "bluecurve-kwin-theme",
    "bluecurve-metacity-theme",
    "bluecurve-qt-engine",
    "bluecurve-xmms-skin",
    "cobbler",
    "deltacloud",
    "docs",
    "echo-icon-theme",
    "fedorabubbles-gdm-theme",
    "fedoradna-gdm-theme",
    "fedoradna-kdm-theme",
    "fedoraflyinghigh-gdm-theme",
    "fedoraflyinghigh-kdm-theme",
    "fedora-gnome-theme",
    "fedora-icon-theme",
    "fedorainfinity-gdm-theme",
    "fedorainfinity-screensaver-theme",
    "fedora-screensaver-theme",
    "freeotp",
    "grid",
    "koji",
    "l10n",
    "livecd",
    "mash",
    "mirrormanager",
    "mkinitrd",
    "nodoka",
    "opyum",
    "ovirt",
    "presto",
    "readahead",
    "redhat-rpm-config",
    "releng",
    "revisor",
    "rhq",
    "snake",
    "thetango",
    "thincrust",
    "umltester",
    "updatinator",
    "webauthinfra",
    "wevisor",
];

/// The repository of a push: from `commit.path` (`/srv/git/<name>.git`) or `commit.repo`.
fn repo_name(m: &Ctx) -> String {
    match m.str("commit.path") {
        Some(path) => {
            let before = path.split(".git").next().unwrap_or_default();
            before.chars().skip(9).collect()
        }
        None => m.fmt_or_none("commit.repo"),
    }
}

fn subtitle(m: &Ctx) -> Option<String> {
    let f = |p: &str| m.fmt_or_none(p);
    if m.contains("page") {
        let (user, name, project) = (f("agent"), f("page.name"), f("instance.project_name"));
        return Some(if m.has("page.version.delete") {
            format!(
                "{user} deleted a version of the '{name}' wiki page on the {project} trac instance"
            )
        } else if m.has("page.delete") {
            format!(
                "{user} straight-up deleted the '{name}' wiki page on the {project} trac instance"
            )
        } else if m.has("page.rename") {
            format!(
                "{user} renamed the wiki page '{}' to '{name}' on the {project} trac instance",
                f("old_name")
            )
        } else if m.has("page.update") {
            format!("{user} updated the '{name}' wiki page on the {project} trac instance")
        } else if m.has("page.new") {
            format!("{user} created a new '{name}' wiki page on the {project} trac instance")
        } else {
            return None;
        });
    }
    if m.contains("ticket") {
        let (user, project) = (f("agent"), f("instance.project_name"));
        return Some(if m.has("ticket.delete") {
            format!("{user} straight-up deleted a ticket on the {project} trac instance")
        } else if m.has("ticket.new") {
            format!("{user} opened a new ticket on the {project} trac instance")
        } else if m.has("ticket.update") {
            let status = f("ticket.status");
            let changed = m.get("old_values").and_then(|o| o.get("status")).is_some();
            if status == "reopened" && changed {
                format!("{user} reopened a ticket on the {project} trac instance")
            } else if status == "closed" && changed {
                format!(
                    "{user} closed a ticket on the {project} trac instance as '{}'",
                    f("ticket.resolution")
                )
            } else {
                format!("{user} updated a ticket on the {project} trac instance")
            }
        } else {
            return None;
        });
    }
    if m.has("git.receive") {
        return Some(format!(
            "{} pushed some commits to the '{}' fedorahosted git repository",
            f("commit.username"),
            repo_name(m)
        ));
    }
    None
}

fn link(m: &Ctx) -> Option<String> {
    let f = |p: &str| m.fmt_or_none(p);
    if m.has("trac.wiki.") {
        let base = f("instance.base_url");
        let mut url = format!("{}/wiki/{}", base.trim_matches('/'), f("page.name"));
        let version = m.get("page.version").filter(|v| py::truthy(v));
        if let Some(v) = version {
            if !m.has(".rename") && !m.has(".new") {
                url.push_str(&format!("?action=diff&version={}", py::str(v)));
            }
        }
        return Some(url);
    }
    if m.has("trac.ticket.") {
        let base = f("instance.base_url");
        return Some(format!(
            "{}/ticket/{}",
            base.trim_matches('/'),
            f("ticket.id")
        ));
    }
    if m.has(".git.receive") {
        let name = repo_name(m);
        let suffix = if SHORT_REPOS.contains(&name.as_str()) {
            ""
        } else {
            ".git"
        };
        return Some(format!(
            "https://git.fedorahosted.org/cgit/{name}{suffix}/commit/?id={}",
            f("commit.rev")
        ));
    }
    None
}

impl Processor for Trac {
    fn services(&self) -> &'static [&'static str] {
        &["trac"]
    }

    fn app(&self) -> &'static str {
        "trac"
    }

    fn long_form(&self, m: &Ctx<'_>, meta: &Metadata) -> Option<String> {
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
        }
        for path in [
            "page.author",
            "ticket.owner",
            "ticket.reporter",
            "commit.username",
        ] {
            if let Some(user) = m.str(path) {
                out.user(user.trim());
            }
        }
        if let Some(cc) = m.str("ticket.cc") {
            for user in cc.split(',') {
                out.user(user.trim());
            }
        }
        // The pusher, when the commit names one: a null username is nobody (not "None"), and
        // the agent is the same text as the user entry above.
        if out.agent.is_none() {
            out.agent = m.str("commit.username").map(|u| u.trim().to_string());
        }
    }
}
