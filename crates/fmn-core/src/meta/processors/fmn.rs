//! FMN itself: preference, rule and filter changes (`fmn.*`).

use crate::meta::ctx::Ctx;
use crate::meta::model::{Metadata, Processor};

/// FMN.
pub struct Fmn;

impl Processor for Fmn {
    fn services(&self) -> &'static [&'static str] {
        &["fmn"]
    }

    fn app(&self) -> &'static str {
        "fmn"
    }

    fn extract(&self, m: &Ctx<'_>, out: &mut Metadata) {
        let openid = m.fmt_or_none("openid");
        let user = openid.split('.').next().unwrap_or_default().to_owned();
        let ctx = m.fmt_or_none("context");
        let changed = m.fmt_or_none("changed");
        out.subtitle = Some(if m.has("fmn.confirmation.update") {
            format!("the {changed} of one of {user}'s pending confirmations changed")
        } else if m.has("fmn.rule.update") {
            format!("{user} updated the {changed} on a fmn {ctx} rule")
        } else if m.has("fmn.filter.update") {
            format!("{user} updated the {changed} on a fmn {ctx} filter")
        } else if m.has("fmn.preference.update") {
            match changed.as_str() {
                "enabled" => format!("{user} toggled their flow of {ctx} messages"),
                "batch_values" => format!("{user} updated their {ctx} digest options"),
                "details" => format!("{user} updated their {ctx} delivery details"),
                other => format!("{user} updated their {ctx} {other}"),
            }
        } else {
            String::new()
        });
        out.link = Some("https://apps.fedoraproject.org/notifications/".to_owned());
        out.set_agent(user);
    }
}
