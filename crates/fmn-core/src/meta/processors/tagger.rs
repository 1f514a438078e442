//! Fedora Tagger, package tags and ratings (`fedoratagger.*`).

use serde_json::Value;

use crate::meta::ctx::Ctx;
use crate::meta::model::{Metadata, Processor};
use crate::meta::py;

/// Fedora Tagger.
pub struct Tagger;

/// The vote's package: a name, or (old messages) an object keyed by the name.
fn vote_package(m: &Ctx) -> Option<String> {
    match m.get("vote.tag.package")? {
        Value::Object(o) => o.keys().next().cloned(),
        Value::Null => None,
        other => Some(py::str(other)),
    }
}

/// `An anonymous user` or the user's name.
fn display_user(user: Option<&Value>) -> String {
    let user = user.unwrap_or(&Value::Null);
    if user.get("anonymous").is_some_and(py::truthy) {
        "An anonymous user".to_owned()
    } else {
        user.get("username")
            .map_or_else(|| "None".to_owned(), py::str)
    }
}

fn subtitle(m: &Ctx) -> Option<String> {
    let f = |p: &str| m.fmt_or_none(p);
    let package = || vote_package(m).unwrap_or_else(|| "None".to_owned());
    Some(if m.has("fedoratagger.tag.update") {
        let verb = if m.truthy("vote.like") { "up" } else { "down" };
        format!(
            "{} {verb}voted \"{}\" on {}",
            f("vote.user.username"),
            f("vote.tag.tag"),
            package()
        )
    } else if m.has("fedoratagger.rating.update") {
        format!(
            "{} gave {} a rating of {}",
            display_user(m.get("rating.user")),
            f("rating.package.name"),
            f("rating.rating")
        )
    } else if m.has("fedoratagger.tag.create") {
        format!(
            "{} added tag \"{}\" to {}",
            f("vote.user.username"),
            f("vote.tag.tag"),
            package()
        )
    } else if m.has("fedoratagger.user.rank.update") {
        format!(
            "{}'s rank changed to {}",
            f("user.username"),
            f("user.rank")
        )
    } else if m.has("fedoratagger.usage.toggle") {
        let user = display_user(m.get("user"));
        let package = f("package.name");
        if m.truthy("usage") {
            format!("{user} declared that they use {package}")
        } else {
            format!("{user} declared that they no longer use {package}")
        }
    } else {
        return None;
    })
}

impl Processor for Tagger {
    fn services(&self) -> &'static [&'static str] {
        &["fedoratagger"]
    }

    fn app(&self) -> &'static str {
        "fedoratagger"
    }

    fn extract(&self, m: &Ctx<'_>, out: &mut Metadata) {
        out.subtitle = subtitle(m);

        let mut package = vote_package(m);
        if package.is_none() && m.contains("rating") {
            package = m.fmt("rating.package.name");
        }
        if m.contains("package") {
            package = m.fmt("package.name");
        }
        out.link = Some(package.map_or_else(String::new, |p| {
            format!("https://apps.fedoraproject.org/tagger/{p}")
        }));

        let user = if m.has("fedoratagger.tag.") {
            m.fmt("vote.user.username")
        } else if m.has("fedoratagger.user.rank.update") || m.has("fedoratagger.usage.toggle") {
            m.fmt("user.username")
        } else if m.has("fedoratagger.rating.update") {
            m.fmt("rating.user.username")
        } else {
            None
        };
        if let Some(user) = user.filter(|u| u != "anonymous") {
            out.set_agent(user);
        }

        let package = if m.has("fedoratagger.tag.") {
            vote_package(m)
        } else if m.has("fedoratagger.rating.update") {
            m.fmt("rating.package.name")
        } else if m.has("fedoratagger.usage.toggle") {
            m.fmt("package.name")
        } else {
            None
        };
        if let Some(p) = package {
            out.package(p);
        }
    }
}
