//! `fedora-messaging-the-new-hotness-schema`: the-new-hotness, which files bugs for new
//! upstream releases.

use super::facts::{base_str, opt, text, Facts};
use crate::meta::ctx::Ctx;

const APP: &str = "The New Hotness";

pub(super) fn describe(schema: &str, m: &Ctx<'_>) -> Option<Facts> {
    match schema {
        "hotness.update.drop" => Some(drop(m)),
        "hotness.update.bug.file" => {
            let packages: Vec<String> = if m
                .str("trigger.topic")
                .is_some_and(|t| t.ends_with(".project.map.new"))
            {
                vec![text(m, "trigger.msg.message.new")]
            } else {
                m.arr("trigger.msg.message.packages")
                    .iter()
                    .filter(|p| p["distro"] == "Fedora")
                    .map(|p| crate::meta::py::str(&p["package_name"]))
                    .collect()
            };
            let names = packages.join(", ");
            let url = format!("https://bugzilla.redhat.com/{}", text(m, "bug.bug_id"));
            Some(
                Facts::short(APP, format!("the-new-hotness filed a bug on '{names}'"))
                    .long(format!("The New Hotness filed a bug on '{names}'\n{url}\n"))
                    .url(Some(url))
                    .packages(packages),
            )
        }
        _ => None,
    }
}

/// `UpdateDrop`: why no bug was filed.
fn drop(m: &Ctx<'_>) -> Facts {
    let reason = text(m, "reason");
    let packages: Vec<String> = if reason == "anitya" {
        Vec::new()
    } else if m.contains("trigger.msg.package_listing") {
        vec![text(m, "trigger.msg.package_listing.package.name")]
    } else if m
        .str("trigger.topic")
        .is_some_and(|t| t.contains("buildsys.build"))
    {
        vec![text(m, "trigger.msg.name")]
    } else if m.contains("trigger.msg.package") {
        vec![text(m, "trigger.msg.package.name")]
    } else {
        Vec::new()
    };
    let why = match reason.as_str() {
        "anitya" => {
            "but release-monitoring.org doesn't know what that project is called in Fedora land"
                .to_owned()
        }
        "rawhide" => "but no rawhide version of the package could be found yet".to_owned(),
        "pkgdb" => {
            "but pkgdb says the maintainers are not interested in bugs being filed".to_owned()
        }
        "bugzilla" => "but the bugzilla issue couldn't be updated".to_owned(),
        other => format!("but it got dropped for reason: '{other}'"),
    };
    let summary = format!(
        "the-new-hotness saw an update for '{}', {why}",
        packages.join(", ")
    );
    let agent = opt(m, "agent_name");
    Facts::short(APP, summary)
        .long(base_str(m))
        .packages(packages)
        .users(agent.clone())
        .agent(agent)
}
