//! `anitya_schema`: release-monitoring.org.

use super::facts::Facts;
use crate::meta::ctx::Ctx;

/// The Python `', '.join(...)` of the strings at `path`.
fn joined(m: &Ctx<'_>, path: &str) -> String {
    m.arr(path)
        .iter()
        .map(crate::meta::py::str)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Package names of the Fedora mappings in `message.packages`.
fn fedora_mappings<'a>(m: &Ctx<'a>) -> Vec<&'a str> {
    m.arr("message.packages")
        .iter()
        .filter(|p| p["distro"] == "Fedora")
        .filter_map(|p| p["package_name"].as_str())
        .collect()
}

pub(super) fn describe(schema: &str, m: &Ctx<'_>) -> Option<Facts> {
    let distro = || m.fmt_or_none("distro.name");
    let project = || m.fmt_or_none("project.name");
    let mut packages: Vec<String> = Vec::new();
    let summary = match schema.strip_prefix("anitya.")? {
        "distro.add" => format!(
            "A new distribution, {}, was added to release-monitoring.",
            distro()
        ),
        "distro.edit" => format!(
            "The name of the {} distribution changed to {}.",
            m.fmt_or_none("message.old"),
            m.fmt_or_none("message.new")
        ),
        "distro.remove" => format!(
            "The {} distribution was removed from release-monitoring.",
            distro()
        ),
        "project.add" => format!(
            "A new project, {}, was added to release-monitoring.",
            project()
        ),
        "project.edit" => format!(
            "A project, {}, was edited in release-monitoring.",
            project()
        ),
        "project.remove" => format!(
            "A project, {}, was deleted in release-monitoring.",
            project()
        ),
        "project.flag" => format!(
            "A flag was created on project {} in release-monitoring.",
            project()
        ),
        "project.flag.set" => format!(
            "A flag '{}' was {} in release-monitoring.",
            m.fmt_or_none("message.flag"),
            m.fmt_or_none("message.state")
        ),
        "project.map.new" => {
            if m.str("distro.name") == Some("Fedora") {
                packages.push(m.fmt_or_none("message.new"));
            }
            format!(
                "A new mapping was created for project {} in release-monitoring.",
                project()
            )
        }
        "project.map.update" => {
            if m.str("distro.name") == Some("Fedora") {
                packages.push(m.fmt_or_none("message.prev"));
                packages.push(m.fmt_or_none("message.new"));
            }
            format!(
                "A mapping for project {} was edited in release-monitoring.",
                project()
            )
        }
        "project.map.remove" => {
            format!(
                "A mapping for project {} was deleted in release-monitoring.",
                project()
            )
        }
        "project.version.update" => format!(
            "A new version '{}' was found for project {} in release-monitoring.",
            m.fmt_or_none("message.upstream_version"),
            project()
        ),
        "project.version.update.v2" => {
            packages.extend(fedora_mappings(m).into_iter().map(str::to_owned));
            format!(
                "A new versions '{}' were found for project {} in release-monitoring.",
                joined(m, "message.upstream_versions"),
                project()
            )
        }
        "project.version.remove" => format!(
            "A version '{}' was deleted in project {} in release-monitoring.",
            m.fmt_or_none("message.version"),
            project()
        ),
        "project.version.remove.v2" => {
            let versions = m.arr("message.versions");
            match versions.len() {
                1 => format!(
                    "A version '{}' was deleted in project {} in release-monitoring.",
                    crate::meta::py::str(&versions[0]),
                    project()
                ),
                0..=5 => format!(
                    "A versions '{}' were deleted in project {} in release-monitoring.",
                    joined(m, "message.versions"),
                    project()
                ),
                n => format!(
                    "{n} versions entries were deleted in project {} in release-monitoring.",
                    project()
                ),
            }
        }
        _ => return None,
    };
    Some(
        Facts::short("anitya", summary)
            .agent(m.str("message.agent"))
            .packages(packages),
    )
}
