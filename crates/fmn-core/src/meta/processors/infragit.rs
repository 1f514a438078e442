//! Fedora Infrastructure's own git repositories (`infragit.*`).

use crate::meta::ctx::Ctx;
use crate::meta::model::{Metadata, Processor};
use crate::meta::processors::long;

/// Infrastructure git.
pub struct Infragit;

impl Processor for Infragit {
    fn services(&self) -> &'static [&'static str] {
        &["infragit"]
    }

    fn app(&self) -> &'static str {
        "infragit"
    }

    fn long_form(&self, m: &Ctx<'_>, meta: &Metadata) -> Option<String> {
        long::under(meta.subtitle.as_deref(), long::commit(m, "commit")?)
    }

    fn extract(&self, m: &Ctx<'_>, out: &mut Metadata) {
        let f = |p: &str| m.fmt_or_none(p);
        let path = f("commit.path");
        let repo = path.rsplit('/').next().unwrap_or_default().to_owned();
        let user = f("commit.username");
        let mut summary = f("commit.summary");
        if summary.trim() != f("commit.message").trim() {
            summary.push_str(" (..more)");
        }
        let branch = f("commit.branch");
        out.subtitle = Some(format!(
            "{user} pushed a commit to the fedora-infra {repo} repo ({branch}):  \"{summary}\""
        ));
        out.link = Some(if repo == "puppet" {
            String::new()
        } else {
            format!(
                "https://infrastructure.fedoraproject.org/cgit/{repo}.git/commit/?h={branch}&id={}",
                f("commit.rev")
            )
        });
        if let Some(user) = m.fmt("commit.username") {
            out.set_agent(user);
        }
    }
}
