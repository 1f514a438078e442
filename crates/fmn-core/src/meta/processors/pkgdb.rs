//! The package database (`pkgdb.*`), retired in 2017 but in every archive.

use serde_json::Value;

use crate::meta::ctx::get;
use crate::meta::ctx::Ctx;
use crate::meta::model::{Metadata, Processor};
use crate::meta::py;

/// PkgDB. Packages are reported for the `rpms` namespace (and namespace-less messages).
pub struct Pkgdb;

const NAMESPACE: &str = "rpms";

/// `agent`, or its first element for legacy list-valued agents.
fn agent(m: &Ctx) -> Option<String> {
    match m.get("agent")? {
        Value::Array(a) => a.first().map(py::str),
        other => Some(py::str(other)),
    }
}

/// `obj.get('namespace', 'rpms')` rendered.
fn ns_of(obj: Option<&Value>) -> String {
    obj.and_then(|o| o.get("namespace"))
        .map_or_else(|| NAMESPACE.to_owned(), py::str)
}

/// (namespace, package) of `package_listing`, else of the top-level `package`.
fn listing_or_package(m: &Ctx) -> (String, String) {
    if let Some(name) = m.get("package_listing.package.name") {
        return (ns_of(m.get("package_listing.package")), py::str(name));
    }
    let mut ns = m.fmt("namespace").unwrap_or_else(|| NAMESPACE.to_owned());
    let package = match m.get("package") {
        Some(Value::Object(p)) => {
            if let Some(n) = p.get("namespace") {
                ns = py::str(n);
            }
            p.get("name").map(py::str).unwrap_or_default()
        }
        Some(other) => py::str(other),
        None => String::new(),
    };
    (ns, package)
}

fn subtitle(m: &Ctx) -> Option<String> {
    let f = |p: &str| m.fmt_or_none(p);
    let agent = agent(m).unwrap_or_else(|| "None".to_owned());
    let pl_ns = || ns_of(m.get("package_listing.package"));
    let pl_pkg = || f("package_listing.package.name");
    let pl_branch = || f("package_listing.collection.branchname");
    let pkg_ns = || ns_of(m.get("package"));
    let pkg_name = || f("package.name");
    Some(if m.has("pkgdb.acl.update") {
        format!(
            "{agent} changed {}'s '{}' permission on {}/{} ({}) to '{}'",
            f("username"),
            f("acl"),
            pl_ns(),
            pl_pkg(),
            pl_branch(),
            f("status")
        )
    } else if m.has("pkgdb.branch.clone") {
        format!(
            "{agent} branched {}/{} {} from {}",
            m.fmt("namespace").unwrap_or_else(|| NAMESPACE.to_owned()),
            f("package"),
            f("branch"),
            f("master")
        )
    } else if m.has("pkgdb.package.update.status") {
        let extra = match m.get("package_listing.collection.branchname") {
            Some(b) if m.contains("package_listing") => format!(" in {}", py::str(b)),
            _ => String::new(),
        };
        let prev = m.get("prev_status").map(py::str);
        let status = m.get("status").map(py::str);
        let mut verb = "made some updates to";
        for (key, left, right) in [
            ("Orphaned", "unorphaned", "orphaned"),
            ("Retired", "unretired", "retired"),
        ] {
            let was = prev.as_deref() == Some(key);
            let is = status.as_deref() == Some(key);
            if was && !is {
                verb = left;
            } else if !was && is {
                verb = right;
            }
        }
        let (ns, package) = listing_or_package(m);
        format!("{agent} {verb} {ns}/{package}{extra}")
    } else if m.ends("pkgdb.package.update") {
        let (ns, package) = listing_or_package(m);
        if m.contains("fields") {
            let fields: Vec<String> = m.arr("fields").iter().map(py::str).collect();
            format!("{agent} updated: {} of {ns}/{package}", fields.join(", "))
        } else {
            format!("{agent} made some updates to {ns}/{package}")
        }
    } else if m.has("pkgdb.critpath.update") {
        format!("{agent} altered the critpath status for some packages")
    } else if m.ends("pkgdb.package.new") {
        format!(
            "{agent} added a new package '{}/{}' ({})",
            pl_ns(),
            pl_pkg(),
            pl_branch()
        )
    } else if m.has("pkgdb.acl.request.toggle") {
        format!(
            "{agent} has {} '{}' on {}/{} ({})",
            f("acl_action"),
            f("acl"),
            pl_ns(),
            pl_pkg(),
            pl_branch()
        )
    } else if m.has("pkgdb.package.retire") {
        format!(
            "{agent} {} {}/{} ({})!",
            f("retirement"),
            pl_ns(),
            pl_pkg(),
            pl_branch()
        )
    } else if m.has("pkgdb.owner.update") {
        let owner = m
            .get("package_listing.point_of_contact")
            .or_else(|| m.get("package_listing.owner"))
            .map_or_else(|| "None".to_owned(), py::str);
        format!(
            "{agent} changed owner of {}/{} ({}) to '{owner}'",
            pl_ns(),
            pl_pkg(),
            pl_branch()
        )
    } else if m.has("pkgdb.acl.user.remove") {
        let listings = m.arr("package_listings");
        let first = listings.first();
        let branches: Vec<String> = listings
            .iter()
            .filter_map(|p| get(p, "collection.branchname").map(py::str))
            .collect();
        format!(
            "{agent} removed {} from {}/{} ({})",
            f("username"),
            ns_of(first.and_then(|p| p.get("package"))),
            first
                .and_then(|p| get(p, "package.name"))
                .map(py::str)
                .unwrap_or_default(),
            branches.join(", ")
        )
    } else if m.has("pkgdb.branch.start") {
        format!(
            "{agent} started a branch of {} from {}",
            f("collection_to.branchname"),
            f("collection_from.branchname")
        )
    } else if m.has("pkgdb.branch.complete") {
        format!(
            "{agent}'s branch of {} from {} completed",
            f("collection_to.branchname"),
            f("collection_from.branchname")
        )
    } else if m.has("pkgdb.collection.new") {
        format!(
            "{agent} created a new collection for {} {}",
            f("collection.name"),
            f("collection.version")
        )
    } else if m.has("pkgdb.collection.update") {
        let fields: Vec<String> = m.arr("fields").iter().map(py::str).collect();
        format!(
            "{agent} updated the following fields of the {} {} collection: {}",
            f("collection.name"),
            f("collection.version"),
            fields.join(", ")
        )
    } else if m.has("pkgdb.package.delete") {
        format!(
            "{agent} deleted the '{}/{}' package from the pkgdb",
            pkg_ns(),
            pkg_name()
        )
    } else if m.has("pkgdb.package.branch.delete") {
        format!(
            "{agent} deleted the {} branch of the '{}/{}' package",
            pl_branch(),
            pl_ns(),
            pl_pkg()
        )
    } else if m.ends("pkgdb.package.branch.new") {
        format!(
            "{agent} created the branch '{}' for the package '{}/{}'",
            pl_branch(),
            pkg_ns(),
            pkg_name()
        )
    } else if m.has("pkgdb.acl.delete") {
        format!(
            "{} deleted {}'s {} rights from {}/{} ({})",
            f("agent"),
            f("acl.fas_name"),
            f("acl.acl"),
            ns_of(m.get("acl.packagelist.package")),
            f("acl.packagelist.package.name"),
            f("acl.packagelist.collection.branchname")
        )
    } else if m.ends("pkgdb.package.branch.request") {
        format!(
            "{} requested branch {} for package {}/{}",
            f("agent"),
            f("collection_to.branchname"),
            pkg_ns(),
            pkg_name()
        )
    } else if m.ends("pkgdb.package.new.request") {
        format!(
            "{} requested package {}/{} on branch {}",
            f("agent"),
            ns_of(m.get("info")),
            f("info.pkg_name"),
            f("collection.branchname")
        )
    } else if m.ends("pkgdb.admin.action.status.update") {
        let (ns, package) = match m.get("action.info.pkg_name") {
            Some(name) => (ns_of(m.get("action.info")), py::str(name)),
            None => (ns_of(m.get("action.package")), f("action.package.name")),
        };
        let action = f("action.action");
        let action = match action.as_str() {
            "request.package" => "package request".to_owned(),
            "request.branch" => "branch request".to_owned(),
            _ => action,
        };
        let mut text = format!(
            "{} changed {}'s {action} for {ns}/{package} in {} from {} to {}",
            f("agent"),
            f("action.user"),
            f("action.collection.branchname"),
            f("old_status"),
            f("new_status")
        );
        if let Some(message) = m.get("action.message").filter(|v| py::truthy(v)) {
            text.push_str(&format!(" with message: {}", py::str(message)));
        }
        text
    } else if m.ends("pkgdb.package.critpath.update") {
        let action = if m.truthy("critpath") { "set" } else { "unset" };
        let branches: Vec<String> = m.arr("branches").iter().map(py::str).collect();
        format!(
            "{} {action} the critpath flag on the {}/{} package ({})",
            f("agent"),
            pkg_ns(),
            pkg_name(),
            branches.join(", ")
        )
    } else if m.ends("pkgdb.package.monitor.update") {
        format!(
            "{} set the monitor flag of {}/{} to {}",
            f("agent"),
            pkg_ns(),
            pkg_name(),
            f("status")
        )
    } else if m.ends("pkgdb.package.unretire.request") {
        format!(
            "{} asks that {}/{} be unretired on {}",
            f("agent"),
            pkg_ns(),
            pkg_name(),
            f("collection.branchname")
        )
    } else if m.ends("pkgdb.package.koschei.update") {
        format!(
            "{} set the koschei monitoring flag of {}/{} to {}",
            f("agent"),
            pkg_ns(),
            pkg_name(),
            f("status")
        )
    } else {
        return None;
    })
}

fn link(m: &Ctx) -> String {
    let tmpl = |ns: String, pkg: String| {
        format!("https://admin.fedoraproject.org/pkgdb/package/{ns}/{pkg}/")
    };
    let f = |p: &str| m.fmt_or_none(p);
    if m.has("pkgdb.package.new.request") {
        return tmpl(ns_of(m.get("info")), f("info.pkg_name"));
    }
    if m.has("pkgdb.admin.action.status.update") {
        return match m.get("action.info.pkg_name") {
            Some(name) => tmpl(ns_of(m.get("action.info")), py::str(name)),
            None => tmpl(ns_of(m.get("action.package")), f("action.package.name")),
        };
    }
    if [
        "pkgdb.acl.update",
        "pkgdb.acl.request.toggle",
        "pkgdb.owner.update",
        "pkgdb.package.retire",
        "pkgdb.package.new",
        "pkgdb.package.branch.new",
    ]
    .iter()
    .any(|t| m.has(t))
    {
        return tmpl(
            ns_of(m.get("package_listing.package")),
            f("package_listing.package.name"),
        );
    }
    if m.has("pkgdb.acl.user.remove") {
        let first = m.arr("package_listings").first();
        return tmpl(
            ns_of(first.and_then(|p| p.get("package"))),
            first
                .and_then(|p| get(p, "package.name"))
                .map_or_else(|| "None".to_owned(), py::str),
        );
    }
    if [
        "pkgdb.package.update",
        "pkgdb.branch.clone",
        "package.branch.request",
    ]
    .iter()
    .any(|t| m.has(t))
    {
        let (ns, package) = listing_or_package(m);
        return tmpl(ns, package);
    }
    String::new()
}

/// Whether a package object belongs to the reported namespace.
fn in_namespace(package: &Value, key: &str) -> bool {
    package
        .get(key)
        .is_none_or(|ns| ns.as_str() == Some(NAMESPACE))
}

impl Processor for Pkgdb {
    fn services(&self) -> &'static [&'static str] {
        &["pkgdb"]
    }

    fn app(&self) -> &'static str {
        "pkgdb"
    }

    fn extract(&self, m: &Ctx<'_>, out: &mut Metadata) {
        out.subtitle = subtitle(m);
        let link = link(m);
        out.link = Some(link);

        if let Some(agent) = agent(m) {
            if agent != "orphan" {
                out.set_agent(agent);
            }
        }
        for path in ["acl.fas_name", "username"] {
            if let Some(user) = m.get(path).filter(|u| !u.is_null()) {
                let user = py::str(user);
                if user != "orphan" {
                    out.user(user);
                }
            }
        }

        let mut packages = Vec::new();
        let mut add = |package: Option<&Value>, key: &str, name_key: &str| {
            if let Some(p) = package.filter(|p| p.is_object()) {
                if in_namespace(p, key) {
                    if let Some(name) = p.get(name_key) {
                        packages.push(py::str(name));
                    }
                }
            }
        };
        add(m.get("package_listing.package"), "namespace", "name");
        for listing in m.arr("package_listings") {
            add(listing.get("package"), "namespace", "name");
        }
        let mut bare = None;
        match m.get("package") {
            Some(Value::String(name)) => {
                if m.get("namespace")
                    .is_none_or(|ns| ns.as_str() == Some(NAMESPACE))
                {
                    bare = Some(name.clone());
                }
            }
            other => add(other, "namespace", "name"),
        }
        add(m.get("acl.packagelist.package"), "namespace", "name");
        add(m.get("info"), "pkg_namespace", "pkg_name");
        add(m.get("action.info"), "pkg_namespace", "pkg_name");
        add(m.get("action.package"), "namespace", "name");
        for p in packages.into_iter().chain(bare) {
            out.package(p);
        }
    }
}
