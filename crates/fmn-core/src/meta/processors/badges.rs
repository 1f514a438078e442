//! Fedora Badges (`fedbadges.*`).

use crate::meta::ctx::Ctx;
use crate::meta::model::{Metadata, Processor};

/// Badges.
pub struct Badges;

impl Processor for Badges {
    fn services(&self) -> &'static [&'static str] {
        &["fedbadges"]
    }

    fn app(&self) -> &'static str {
        "fedbadges"
    }

    fn extract(&self, m: &Ctx<'_>, out: &mut Metadata) {
        let user = if m.contains("user") {
            m.fmt_or_none("user.username")
        } else {
            m.fmt_or_none("person.nickname")
        };
        out.subtitle = if m.has("badge.award") {
            Some(format!(
                "{user} has been awarded the \"{}\" badge",
                m.fmt_or_none("badge.name")
            ))
        } else if m.has("person.rank.advance") {
            Some(format!(
                "{user} moved to position {} on the badges leaderboard",
                m.fmt_or_none("person.rank")
            ))
        } else if m.has("person.login.first") {
            Some(format!(
                "{user} logged in to badges.fedoraproject.org for the first time"
            ))
        } else {
            None
        };
        out.link = Some(format!("https://badges.fedoraproject.org/user/{user}"));
        out.user(user);
    }
}
