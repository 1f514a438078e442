//! One processor per service. To add a service: write `<service>.rs` with a unit struct
//! implementing [`crate::meta::Processor`], declare it below and list it in [`all`].

mod anitya;
mod ansible;
mod askbot;
mod autocloud;
mod badges;
mod bodhi;
mod bugzilla;
mod buildsys;
mod ci;
mod compose;
mod copr;
mod elections;
mod fas;
mod fedimg;
mod fedocal;
mod fmn;
mod git;
mod github;
mod greenwave;
mod hotness;
mod infragit;
mod jenkins;
mod kerneltest;
mod koschei;
mod mailman;
mod meetbot;
mod mirrormanager;
mod nagios;
mod nuancier;
mod openqa;
mod pagure;
mod pkgdb;
mod planet;
mod pungi;
mod rats;
mod summershum;
mod tagger;
mod trac;
mod waiverdb;
mod wiki;

pub use anitya::Anitya;
pub use ansible::Ansible;
pub use askbot::Askbot;
pub use autocloud::Autocloud;
pub use badges::Badges;
pub use bodhi::Bodhi;
pub use bugzilla::Bugzilla;
pub use buildsys::Buildsys;
pub use ci::CentosCi;
pub use compose::Compose;
pub use copr::Copr;
pub use elections::Elections;
pub use fas::Fas;
pub use fedimg::Fedimg;
pub use fedocal::Fedocal;
pub use fmn::Fmn;
pub use git::Git;
pub use github::Github;
pub use greenwave::Greenwave;
pub use hotness::Hotness;
pub use infragit::Infragit;
pub use jenkins::Jenkins;
pub use kerneltest::Kerneltest;
pub use koschei::Koschei;
pub use mailman::Mailman;
pub use meetbot::Meetbot;
pub use mirrormanager::Mirrormanager;
pub use nagios::Nagios;
pub use nuancier::Nuancier;
pub use openqa::Openqa;
pub use pagure::Pagure;
pub use pkgdb::Pkgdb;
pub use planet::Planet;
pub use pungi::Pungi;
pub use rats::Rats;
pub use summershum::Summershum;
pub use tagger::Tagger;
pub use trac::Trac;
pub use waiverdb::Waiverdb;
pub use wiki::Wiki;

use crate::meta::model::Processor;

/// Every built-in processor.
pub fn all() -> Vec<Box<dyn Processor>> {
    vec![
        Box::new(Anitya),
        Box::new(Ansible),
        Box::new(Askbot),
        Box::new(Autocloud),
        Box::new(Badges),
        Box::new(Bodhi),
        Box::new(Bugzilla),
        Box::new(Buildsys),
        Box::new(CentosCi),
        Box::new(Compose),
        Box::new(Copr),
        Box::new(Elections),
        Box::new(Fas),
        Box::new(Fedimg),
        Box::new(Fedocal),
        Box::new(Fmn),
        Box::new(Git),
        Box::new(Github),
        Box::new(Greenwave),
        Box::new(Hotness),
        Box::new(Infragit),
        Box::new(Jenkins),
        Box::new(Kerneltest),
        Box::new(Koschei),
        Box::new(Mailman),
        Box::new(Meetbot),
        Box::new(Mirrormanager),
        Box::new(Nagios),
        Box::new(Nuancier),
        Box::new(Openqa),
        Box::new(Pagure),
        Box::new(Pkgdb),
        Box::new(Planet),
        Box::new(Pungi),
        Box::new(Rats),
        Box::new(Summershum),
        Box::new(Tagger),
        Box::new(Trac),
        Box::new(Waiverdb),
        Box::new(Wiki),
    ]
}

/// Shared pieces of the long forms.
pub(crate) mod long {
    use serde_json::Value;

    use crate::meta::ctx::Ctx;
    use crate::meta::py;

    /// `text` with its subtitle on top, when there is text.
    pub fn under(subtitle: Option<&str>, text: impl AsRef<str>) -> Option<String> {
        let text = text.as_ref().trim_end();
        if text.trim().is_empty() {
            return None;
        }
        Some(match subtitle.filter(|s| !s.is_empty()) {
            Some(s) => format!("{s}\n\n{text}"),
            None => text.to_owned(),
        })
    }

    /// A git commit (`commit.message`, `commit.stats`) as `git show --stat` puts it: the
    /// message, then one line per file and the totals.
    pub fn commit(m: &Ctx, at: &str) -> Option<String> {
        let message = m.str(&format!("{at}.message"))?;
        let mut out = String::new();
        if let Some(rev) = m.str(&format!("{at}.rev")) {
            out.push_str(&format!("commit {rev}\n"));
        }
        let who = m
            .str(&format!("{at}.name"))
            .or_else(|| m.str(&format!("{at}.username")));
        match (who, m.str(&format!("{at}.email"))) {
            (Some(n), Some(e)) => out.push_str(&format!("Author: {n} <{e}>\n")),
            (Some(n), None) => out.push_str(&format!("Author: {n}\n")),
            _ => {}
        }
        if !out.is_empty() {
            out.push('\n');
        }
        for line in message.trim_end().lines() {
            out.push_str(&format!("    {line}\n"));
        }
        if let Some(Value::Object(files)) = m.get(&format!("{at}.stats.files")) {
            out.push('\n');
            let width = files.keys().map(|f| f.chars().count()).max().unwrap_or(0);
            for (file, stats) in files {
                let n = |k: &str| stats.get(k).and_then(Value::as_i64).unwrap_or(0);
                // Some hooks say `insertions` where others say `additions`.
                out.push_str(&format!(
                    " {file:<width$} | {} (+{}, -{})\n",
                    n("lines"),
                    n("additions").max(n("insertions")),
                    n("deletions")
                ));
            }
            let t = |k: &str| {
                m.get(&format!("{at}.stats.total.{k}"))
                    .and_then(Value::as_i64)
                    .unwrap_or(0)
            };
            let added = t("additions").max(t("insertions"));
            out.push_str(&format!(
                " {} file{} changed, {added} insertion{}(+), {} deletion{}(-)\n",
                t("files"),
                if t("files") == 1 { "" } else { "s" },
                if added == 1 { "" } else { "s" },
                t("deletions"),
                if t("deletions") == 1 { "" } else { "s" },
            ));
        }
        Some(out)
    }

    /// `Label: value` lines for the fields present.
    pub fn fields(m: &Ctx, fields: &[(&str, &str)]) -> String {
        let mut out = String::new();
        for (label, path) in fields {
            if let Some(v) = m.get(path).filter(|v| py::truthy(v)) {
                out.push_str(&format!("{label}: {}\n", py::str(v)));
            }
        }
        out
    }
}
