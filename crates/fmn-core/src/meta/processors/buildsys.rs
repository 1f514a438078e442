//! Koji, the build system (`buildsys.*`).

use serde_json::Value;

use crate::meta::ctx::Ctx;
use crate::meta::model::{Metadata, Processor};
use crate::meta::processors::long;
use crate::meta::py::{self, list_to_series};

/// Koji.
pub struct Buildsys;

const BUILD_STATES: [&str; 5] = [
    "started building",
    "completed",
    "was deleted",
    "failed to build",
    "was cancelled",
];

fn subtitle(m: &Ctx) -> Option<String> {
    let f = |p: &str| m.fmt_or_none(p);
    let inst = match m.str("instance").unwrap_or("primary") {
        "primary" => String::new(),
        other => format!(" ({other})"),
    };
    let nvr = |base: &str| {
        format!(
            "{}-{}-{}",
            f(&format!("{base}name")),
            f(&format!("{base}version")),
            f(&format!("{base}release"))
        )
    };
    let owner_prefix = || {
        if m.truthy("owner") {
            format!("{}'s ", f("owner"))
        } else {
            String::new()
        }
    };
    Some(if m.has("buildsys.tag") {
        format!(
            "{}'s {} tagged into {} by {}{inst}",
            f("owner"),
            nvr(""),
            f("tag"),
            f("user")
        )
    } else if m.has("buildsys.untag") {
        format!(
            "{}'s {} untagged from {} by {}{inst}",
            f("owner"),
            nvr(""),
            f("tag"),
            f("user")
        )
    } else if m.has("buildsys.repo.init") {
        format!(
            "Repo initialized:  {}{inst}",
            m.fmt("tag").unwrap_or_else(|| "unknown".into())
        )
    } else if m.has("buildsys.repo.done") {
        format!(
            "Repo done:  {}{inst}",
            m.fmt("tag").unwrap_or_else(|| "unknown".into())
        )
    } else if m.has("buildsys.package.list.change") {
        format!(
            "Package list change for {}:  '{}'{inst}",
            f("package"),
            f("tag")
        )
    } else if m.has("buildsys.rpm.sign") {
        let (base, sigkey) = if m.contains("info") {
            ("info.", f("info.sigkey"))
        } else {
            ("rpm.", f("sigkey"))
        };
        format!(
            "Koji build {}.{}.rpm signed with sigkey '{sigkey}'",
            nvr(base),
            f(&format!("{base}arch"))
        )
    } else if m.has("buildsys.build.state.change") {
        let state = m.get("new").and_then(Value::as_u64)?;
        let what = BUILD_STATES.get(usize::try_from(state).ok()?)?;
        format!("{}{} {what}{inst}", owner_prefix(), nvr(""))
    } else if m.has("buildsys.task.state.change") {
        let mut target = String::new();
        if let Some(request) = m.get("info.request").and_then(Value::as_array) {
            let targets: Vec<String> = request
                .iter()
                .filter(|item| !item.is_object() && !item.is_array())
                .map(py::str)
                .filter(|s| !s.ends_with(".rpm"))
                .collect();
            if !targets.is_empty() {
                target = format!(" for {}", list_to_series(&targets));
            }
        }
        let what = match f("new").as_str() {
            "OPEN" => "started",
            "FAILED" => "failed",
            "CLOSED" => "completed",
            "CANCELED" => "was cancelled",
            _ => "changed",
        };
        format!(
            "{}scratch build of {}{target} {what}{inst}",
            owner_prefix(),
            f("srpm")
        )
    } else {
        return None;
    })
}

fn link(m: &Ctx) -> Option<String> {
    let mut base = match m.str("instance").unwrap_or("primary") {
        "primary" => "http://koji.fedoraproject.org/koji",
        "ppc" => "http://ppc.koji.fedoraproject.org/koji",
        "s390" => "http://s390.koji.fedoraproject.org/koji",
        "arm" => "http://arm.koji.fedoraproject.org/koji",
        _ => return None,
    };
    if m.has(".stg.") {
        base = "http://koji.stg.fedoraproject.org/koji";
    }
    let id = |p: &str| m.fmt_or_none(p);
    let tag_topics = [
        "buildsys.tag",
        "buildsys.untag",
        "buildsys.repo.init",
        "buildsys.repo.done",
    ];
    if tag_topics.iter().any(|t| m.has(t)) && m.contains("tag_id") {
        return Some(format!("{base}/taginfo?tagID={}", id("tag_id")));
    }
    if m.has("buildsys.build.state.change") {
        return Some(format!("{base}/buildinfo?buildID={}", id("build_id")));
    }
    if m.has("buildsys.task.state.change") {
        return Some(format!("{base}/taskinfo?taskID={}", id("id")));
    }
    if m.has("buildsys.package.list.change") {
        return None;
    }
    if m.has("buildsys.rpm.sign") {
        let idx = if m.contains("info") {
            id("info.build_id")
        } else {
            id("rpm.build_id")
        };
        return Some(format!("{base}/buildinfo?buildID={idx}"));
    }
    Some(base.to_owned())
}

impl Processor for Buildsys {
    fn services(&self) -> &'static [&'static str] {
        &["buildsys"]
    }

    fn app(&self) -> &'static str {
        "koji"
    }

    fn long_form(&self, m: &Ctx<'_>, meta: &Metadata) -> Option<String> {
        // A build: its NVR, who, and where its logs are.
        if !m.has("buildsys.build.state.change") {
            return None;
        }
        let f = |p: &str| m.fmt_or_none(p);
        let (name, version, release) = (f("name"), f("version"), f("release"));
        let mut text = format!("Build: {name}-{version}-{release}\n");
        text.push_str(&long::fields(
            m,
            &[
                ("Owner", "owner"),
                ("Instance", "instance"),
                ("Task", "task_id"),
            ],
        ));
        if m.str("instance").unwrap_or("primary") == "primary" {
            text.push_str(&format!(
                "Build logs: https://kojipkgs.fedoraproject.org/packages/{name}/{version}/{release}/data/logs/\n"
            ));
        }
        if let Some(link) = &meta.link {
            text.push_str(&format!("Build page: {link}\n"));
        }
        long::under(meta.subtitle.as_deref(), text)
    }

    fn extract(&self, m: &Ctx<'_>, out: &mut Metadata) {
        out.subtitle = subtitle(m);
        out.link = link(m);
        let s = |p: &str| m.get(p).filter(|v| !v.is_null()).map(py::str);
        if m.has("buildsys.tag") || m.has("buildsys.untag") {
            out.user(s("owner").unwrap_or_default());
            if let Some(user) = s("user") {
                out.set_agent(user);
            }
            out.package(s("name").unwrap_or_default());
        } else if m.has("buildsys.package.list.change") {
            out.package(s("package").unwrap_or_default());
        } else if m.has("buildsys.rpm.sign") {
            let name = if m.contains("info") {
                s("info.name")
            } else {
                s("rpm.name")
            };
            out.package(name.unwrap_or_default());
        } else if m.has("buildsys.build.state.change") {
            if m.truthy("owner") {
                out.set_agent(s("owner").unwrap_or_default());
            }
            out.package(s("name").unwrap_or_default());
        } else if m.has("buildsys.task.state.change") && m.truthy("owner") {
            out.set_agent(s("owner").unwrap_or_default());
        }
    }
}
