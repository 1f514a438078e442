//! Anitya, upstream release monitoring (`org.release-monitoring.*.anitya.*`).

use serde_json::Value;

use crate::meta::ctx::Ctx;
use crate::meta::model::{Metadata, Processor};
use crate::meta::processors::long;
use crate::meta::py::{self, list_to_series};

/// Anitya.
pub struct Anitya;

/// The acting user: an OpenID URL, a Fedora e-mail, another e-mail (looked up), or a name;
/// without one, the envelope's publishing user (or `anitya`).
fn user(m: &Ctx) -> String {
    let Some(agent) = m.get("message.agent") else {
        return m
            .envelope
            .username
            .clone()
            .unwrap_or_else(|| "anitya".to_owned());
    };
    let agent = py::str(agent);
    if let Some(pos) = agent.find(".id.fedoraproject.org") {
        let before = &agent[..pos];
        return before
            .split_once("//")
            .map_or("", |(_, rest)| rest)
            .to_owned();
    }
    if let Some(name) = agent.strip_suffix("@fedoraproject.org") {
        return name.to_owned();
    }
    if agent.contains('@') {
        return m.aliases.email(&agent).to_owned();
    }
    agent
}

/// Fedora package names in a list of `{distro, package_name}` mappings.
fn fedora_packages(list: &[Value], exact: bool) -> Vec<String> {
    list.iter()
        .filter(|p| {
            let distro = p.get("distro").and_then(Value::as_str).unwrap_or_default();
            if exact {
                distro == "Fedora"
            } else {
                distro.eq_ignore_ascii_case("fedora")
            }
        })
        .filter_map(|p| p.get("package_name").map(py::str))
        .collect()
}

fn subtitle(m: &Ctx) -> Option<String> {
    let user = user(m);
    let f = |p: &str| m.fmt_or_none(p);
    let project = || f("project.name");
    Some(if m.has("project.map.new") {
        format!(
            "{user} mapped the name of \"{}\" in {} to \"{}\"",
            project(),
            f("distro.name"),
            f("message.new")
        )
    } else if m.has("project.map.update") {
        format!(
            "{user} updated the name of \"{}\" in \"{}\" from \"{}\" to \"{}\"",
            project(),
            f("distro.name"),
            f("message.prev"),
            f("message.new")
        )
    } else if m.has("distro.add") {
        format!(
            "{user} added the distro named \"{}\" to anitya",
            f("distro.name")
        )
    } else if m.has("distro.edit") {
        format!(
            "{user} changed a distro name from \"{}\" to \"{}\"",
            f("message.old"),
            f("message.new")
        )
    } else if m.has("project.add.tried") {
        format!(
            "{user} tried to add the project \"{}\" to anitya (but it already exists there)",
            project()
        )
    } else if m.has("project.add") {
        format!("{user} added the project \"{}\" to anitya", project())
    } else if m.has("project.edit") {
        let fields: Vec<String> = m.arr("message.fields").iter().map(py::str).collect();
        format!(
            "{user} edited the following fields of the \"{}\" project: {}",
            project(),
            fields.join(", ")
        )
    } else if m.has("project.remove") {
        format!("{user} deleted the \"{}\" project", project())
    } else if m.has("project.map.remove") {
        format!(
            "{user} deleted the mapping of \"{}\" project on \"{}\"",
            project(),
            f("message.distro")
        )
    } else if m.has("project.version.update") {
        let base = if m.contains("message") {
            "message."
        } else {
            ""
        };
        let packages = fedora_packages(m.arr(&format!("{base}packages")), true);
        let packages = list_to_series(&packages);
        let odd = m.truthy(&format!("{base}odd_change"));
        let old = m.get(&format!("{base}old_version"));
        let new = f(&format!("{base}upstream_version"));
        if old.is_some_and(py::truthy) && !odd {
            format!(
                "A new version of \"{}\" has been detected:  \"{new}\" newer than \"{}\", packaged as \"{packages}\"",
                project(),
                old.map(py::str).unwrap_or_default()
            )
        } else {
            format!(
                "A new version of \"{}\" has been detected:  \"{new}\", packaged as \"{packages}\"",
                project()
            )
        }
    } else if m.has("project.version.remove") {
        format!(
            "{user} deleted the version {} of \"{}\"",
            f("message.version"),
            project()
        )
    } else if m.has("distro.remove") {
        format!("{user} deleted the distro \"{}\"", f("distro.name"))
    } else if m.ends("project.flag.set") {
        format!(
            "{user} {} flag \"{}\"",
            f("message.state"),
            f("message.flag")
        )
    } else if m.ends("project.flag") {
        format!("{user} flagged the project \"{}\"", project())
    } else {
        return None;
    })
}

fn link(m: &Ctx) -> String {
    match m.get("project") {
        Some(p) if py::truthy(p) => format!(
            "https://release-monitoring.org/project/{}/",
            m.fmt_or_none("project.id")
        ),
        _ if m.ends("project.flag.set") => "https://release-monitoring.org/".to_owned(),
        _ => "https://release-monitoring.org/distros".to_owned(),
    }
}

impl Processor for Anitya {
    fn services(&self) -> &'static [&'static str] {
        &["anitya"]
    }

    fn app(&self) -> &'static str {
        "anitya"
    }

    fn long_form(&self, m: &Ctx<'_>, meta: &Metadata) -> Option<String> {
        // A new upstream version: the version, the ones before, the project.
        if !m.has("anitya.project.version.update") {
            return None;
        }
        let mut text = long::fields(
            m,
            &[
                ("New version", "upstream_version"),
                ("Previous version", "old_version"),
                ("Project", "project.name"),
                ("Homepage", "project.homepage"),
                ("Backend", "project.backend"),
            ],
        );
        let versions: Vec<String> = m.arr("versions").iter().take(10).map(py::str).collect();
        if !versions.is_empty() {
            text.push_str(&format!("Known versions: {}\n", versions.join(", ")));
        }
        let packages: Vec<String> = m
            .arr("packages")
            .iter()
            .filter_map(|p| {
                let name = p.get("package_name")?.as_str()?;
                let distro = p
                    .get("distro")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or("?");
                Some(format!("{name} ({distro})"))
            })
            .collect();
        if !packages.is_empty() {
            text.push_str(&format!("Packages: {}\n", packages.join(", ")));
        }
        long::under(meta.subtitle.as_deref(), text)
    }

    fn extract(&self, m: &Ctx<'_>, out: &mut Metadata) {
        out.subtitle = subtitle(m);
        out.link = Some(link(m));
        let user = user(m);
        if !user.contains('@') {
            if m.contains("message.agent") {
                out.set_agent(user);
            } else {
                out.user(user);
            }
        }
        let fedora = m
            .str("distro.name")
            .is_some_and(|d| d.eq_ignore_ascii_case("fedora"));
        if m.has("project.map.update") {
            if fedora {
                out.package(m.fmt_or_none("message.new"));
                out.package(m.fmt_or_none("message.prev"));
            }
        } else if m.has("project.map.new") {
            if fedora {
                out.package(m.fmt_or_none("message.new"));
            }
        } else if m.has("project.version.update") {
            let list = if m.contains("message") {
                m.arr("message.packages")
            } else {
                m.arr("packages")
            };
            for p in fedora_packages(list, false) {
                out.package(p);
            }
        } else if m.ends("project.flag") {
            for p in fedora_packages(m.arr("packages"), false) {
                out.package(p);
            }
        }
    }
}
