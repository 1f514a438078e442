//! The Fedora wiki (`wiki.*`).

use crate::meta::ctx::Ctx;
use crate::meta::model::{Metadata, Processor};
use crate::meta::py;

/// MediaWiki.
pub struct Wiki;

impl Processor for Wiki {
    fn services(&self) -> &'static [&'static str] {
        &["wiki"]
    }

    fn app(&self) -> &'static str {
        "wiki"
    }

    fn extract(&self, m: &Ctx<'_>, out: &mut Metadata) {
        let f = |p: &str| m.fmt_or_none(p);
        if m.has("wiki.article.edit") {
            out.subtitle = Some(format!(
                "{} made a wiki edit to \"{}\"",
                f("user"),
                f("title")
            ));
            out.link = m.fmt("url").map(|u| u.replace("http://", "https://"));
        } else if m.has("wiki.upload.complete") {
            let description = f("description");
            out.subtitle = Some(format!(
                "{} uploaded {} to the wiki: \"{}...\"",
                f("user_text"),
                f("title.mPrefixedText"),
                py::head(&description, 35)
            ));
        }
        let user = m
            .get("user")
            .or_else(|| m.get("user_text"))
            .map(py::str)
            .unwrap_or_default();
        out.set_agent(user.to_lowercase());
    }
}
