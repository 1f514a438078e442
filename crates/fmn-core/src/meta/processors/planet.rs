//! Fedora Planet, the blog aggregator (`planet.*`).

use crate::meta::ctx::Ctx;
use crate::meta::model::{Metadata, Processor};

/// Planet.
pub struct Planet;

impl Processor for Planet {
    fn services(&self) -> &'static [&'static str] {
        &["planet"]
    }

    fn app(&self) -> &'static str {
        "planet"
    }

    fn extract(&self, m: &Ctx<'_>, out: &mut Metadata) {
        let title = m
            .fmt("post.title")
            .unwrap_or_else(|| "(no title found)".to_owned());
        out.subtitle = Some(match m.fmt("username") {
            Some(user) => format!("{user} posted \"{title}\""),
            None => format!("New post: \"{title}\""),
        });
        out.link = m.fmt("post.link");
        if let Some(user) = m.fmt("username") {
            out.set_agent(user);
        }
    }
}
