//! Koschei, continuous rebuilds of Fedora packages (`koschei.*`).

use crate::meta::ctx::Ctx;
use crate::meta::model::{Metadata, Processor};

/// Koschei.
pub struct Koschei;

fn subtitle(m: &Ctx) -> Option<String> {
    let f = |p: &str| m.fmt_or_none(p);
    let (new, old) = (f("new"), f("old"));
    let instance = f("koji_instance");
    let suffix = if instance == "primary" {
        String::new()
    } else {
        format!(" ({instance})")
    };
    if m.has("koschei.package.state.change") {
        let name = f("name");
        let info = if new == "ok" && old == "ignored" {
            format!("{name} added to Koschei")
        } else {
            match new.as_str() {
                "failing" => format!("{name}'s builds started to fail"),
                "ok" => format!("{name}'s builds are back to normal"),
                "ignored" => format!("{name} became retired or ignored"),
                "unresolved" => format!("{name}'s dependencies failed to resolve"),
                _ => return None,
            }
        };
        let collection = m.fmt("collection_name").unwrap_or_else(|| f("repo"));
        return Some(format!("{info} in {collection}{suffix}"));
    }
    if m.has("koschei.collection.state.change") {
        let collection = f("collection_name");
        let info = if new == "ok" && old == "unknown" {
            format!("{collection} added to Koschei")
        } else {
            match new.as_str() {
                "ok" => format!("{collection} buildroot was fixed"),
                "unresolved" => format!("{collection} buildroot was broken"),
                _ => return None,
            }
        };
        return Some(format!("{info}{suffix}"));
    }
    None
}

impl Processor for Koschei {
    fn services(&self) -> &'static [&'static str] {
        &["koschei"]
    }

    fn app(&self) -> &'static str {
        "koschei"
    }

    fn extract(&self, m: &Ctx<'_>, out: &mut Metadata) {
        out.subtitle = subtitle(m);
        let base = "https://apps.fedoraproject.org/koschei";
        if m.has("koschei.package.state.change") {
            let name = m.fmt_or_none("name");
            let mut url = format!("{base}/package/{name}");
            if let Some(c) = m.fmt("collection") {
                url.push_str(&format!("?collection={c}"));
            }
            out.link = Some(url);
            out.package(name);
        } else if m.has("koschei.collection.state.change") {
            out.link = Some(format!("{base}/collection/{}", m.fmt_or_none("collection")));
        }
    }
}
