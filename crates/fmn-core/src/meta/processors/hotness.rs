//! the-new-hotness, which files bugs for new upstream releases (`hotness.*`).

use serde_json::Value;

use crate::meta::ctx::get;
use crate::meta::ctx::Ctx;
use crate::meta::model::{Metadata, Processor};
use crate::meta::py;

/// the-new-hotness.
pub struct Hotness;

fn packages(m: &Ctx) -> Vec<String> {
    let trigger_topic = m.str("trigger.topic").unwrap_or_default();
    let original = m.val("trigger.msg");
    if trigger_topic.contains("anitya") {
        let list = get(original, "message.packages")
            .or_else(|| original.get("packages"))
            .and_then(Value::as_array);
        if let Some(list) = list.filter(|l| !l.is_empty()) {
            return list
                .iter()
                .filter(|p| p.get("distro").and_then(Value::as_str) == Some("Fedora"))
                .filter_map(|p| p.get("package_name").map(py::str))
                .collect();
        }
    }
    if let Some(name) = get(original, "package_listing.package.name") {
        return vec![py::str(name)];
    }
    if trigger_topic.contains("buildsys.build") {
        return original.get("name").map(py::str).into_iter().collect();
    }
    if let Some(name) = get(original, "package.name") {
        return vec![py::str(name)];
    }
    Vec::new()
}

fn subtitle(m: &Ctx) -> Option<String> {
    let original = m.val("trigger.msg");
    let o = |p: &str| get(original, p).map_or_else(|| "None".to_owned(), py::str);
    if m.has("hotness.update.bug.file") {
        let packages: Vec<String> = if m
            .str("trigger.topic")
            .unwrap_or_default()
            .ends_with(".project.map.new")
        {
            vec![o("message.new")]
        } else {
            get(original, "message.packages")
                .and_then(Value::as_array)
                .map(|l| {
                    l.iter()
                        .filter(|p| p.get("distro").and_then(Value::as_str) == Some("Fedora"))
                        .filter_map(|p| p.get("package_name").map(py::str))
                        .collect()
                })
                .unwrap_or_default()
        };
        return Some(format!(
            "the-new-hotness filed a bug on {}",
            packages.join(", ")
        ));
    }
    if m.has("hotness.update.bug.followup") {
        let bug = m.fmt_or_none("bug.bug_id");
        if original.get("srpm").is_some() {
            let status = match o("new").as_str() {
                "FAILED" => "failed",
                "FREE" => "submitted",
                "ASSIGNED" => "assigned",
                "CANCELLED" => "cancelled",
                "CLOSED" => "completed",
                "OPEN" => "started",
                _ => "unknown",
            };
            return Some(format!(
                "scratch build of {} for RHBZ#{bug} {status}",
                o("srpm")
            ));
        }
        let status = ["started", "completed", "deleted", "cancelled", "failed"]
            .get(original.get("new").and_then(Value::as_u64).unwrap_or(99) as usize)
            .copied()?;
        return Some(format!(
            "{}'s real build of {}-{}-{} for RHBZ#{bug} {status}",
            o("owner"),
            o("name"),
            o("version"),
            o("release")
        ));
    }
    if m.has("hotness.update.drop") {
        let thing = packages(m)
            .into_iter()
            .next()
            .unwrap_or_else(|| o("project.name"));
        let why = match m.str("reason").unwrap_or_default() {
            "anitya" => {
                "release-monitoring.org doesn't know what that project is called in Fedora land"
            }
            "bugzilla" => "a bugzilla ticket had already been filed",
            "pkgdb" => "pkgdb says the maintainers are not interested in bugs being filed",
            "rawhide" => "no rawhide version of the package could be found yet",
            _ => ".... I dunno.  Whatever.",
        };
        return Some(format!(
            "the-new-hotness saw an update for {thing}, but {why}"
        ));
    }
    if m.has("hotness.project.map") {
        let package = if original.get("package_listing").is_some() {
            o("package_listing.package.name")
        } else {
            o("package.name")
        };
        return Some(if let Some(reason) = m.get("reason") {
            format!(
                "hotness tried to map {package} to an upstream project, but failed:  \"{}\"",
                py::str(reason)
            )
        } else if let Some(total) = m.get("total") {
            format!(
                "hotness tried to map {package} to an upstream project, but failed due to ambiguity.  {} other projects share the same homepage",
                py::str(total)
            )
        } else if m.contains("project") {
            let project = m.fmt_or_none("project.name");
            if m.truthy("success") {
                format!("hotness mapped {package} to the pre-existing upstream project {project}")
            } else {
                format!(
                    "hotness tried to map {package} to the pre-existing upstream project {project}, but failed for unknown reasons"
                )
            }
        } else if m.truthy("success") {
            format!("hotness mapped {package} to a brand-new upstream project")
        } else {
            format!(
                "hotness tried to map {package} to a brand-new upstream project, but failed for unknown reasons"
            )
        });
    }
    None
}

fn link(m: &Ctx) -> Option<String> {
    if m.contains("bug") {
        let base = if m.has(".stg.") {
            "partner-bugzilla.redhat.com"
        } else {
            "bugzilla.redhat.com"
        };
        return Some(format!(
            "https://{base}/show_bug.cgi?id={}",
            m.fmt_or_none("bug.bug_id")
        ));
    }
    if m.contains("trigger") {
        let original = m.val("trigger.msg");
        if let Some(id) = get(original, "project.id") {
            return Some(format!(
                "https://release-monitoring.org/project/{}/",
                py::str(id)
            ));
        }
        if let Some(id) = m.get("project.id") {
            return Some(format!(
                "https://release-monitoring.org/project/{}/",
                py::str(id)
            ));
        }
        if original.get("package_listing").is_some() {
            return get(original, "package_listing.package.review_url").map(py::str);
        }
        if original.get("package").is_some() {
            return get(original, "package.upstream_url").map(py::str);
        }
    }
    None
}

impl Processor for Hotness {
    fn services(&self) -> &'static [&'static str] {
        &["hotness"]
    }

    fn app(&self) -> &'static str {
        "the-new-hotness"
    }

    fn extract(&self, m: &Ctx<'_>, out: &mut Metadata) {
        out.subtitle = subtitle(m);
        out.link = link(m);
        for p in packages(m) {
            out.package(p);
        }
        if m.str("trigger.topic")
            .unwrap_or_default()
            .contains("buildsys.build")
        {
            if let Some(owner) = m.get("trigger.msg.owner").filter(|o| !o.is_null()) {
                out.user(py::str(owner));
            }
        }
    }
}
