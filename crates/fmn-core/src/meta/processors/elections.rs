//! Fedora elections (`fedora_elections.*`).

use crate::meta::ctx::Ctx;
use crate::meta::model::{Metadata, Processor};

/// Elections.
pub struct Elections;

impl Processor for Elections {
    fn services(&self) -> &'static [&'static str] {
        &["fedora_elections"]
    }

    fn app(&self) -> &'static str {
        "elections"
    }

    fn extract(&self, m: &Ctx<'_>, out: &mut Metadata) {
        // Old messages nest the election and say `agent`; new ones are flat with `fas_user`.
        let name = if m.contains("election") {
            m.fmt_or_none("election.alias")
        } else {
            m.fmt_or_none("alias")
        };
        let agent = m.fmt("agent").or_else(|| m.fmt("fas_user"));
        let who = agent.clone().unwrap_or_else(|| "None".to_owned());
        let cand = || m.fmt_or_none("candidate.name");
        out.subtitle = Some(if m.has("election.new") {
            format!("{who} created election \"{name}\"")
        } else if m.has("election.edit") {
            format!("{who} edited election \"{name}\"")
        } else if m.has("candidate.new") {
            format!(
                "{who} added candidate \"{}\" to election \"{name}\"",
                cand()
            )
        } else if m.has("candidate.edit") {
            format!(
                "{who} edited candidate \"{}\" of election \"{name}\"",
                cand()
            )
        } else if m.has("candidate.delete") {
            format!(
                "{who} deleted candidate \"{}\" of election \"{name}\"",
                cand()
            )
        } else {
            String::new()
        });
        out.link = Some(format!(
            "https://admin.fedoraproject.org/voting/about/{name}"
        ));
        if let Some(agent) = agent {
            out.set_agent(agent);
        }
    }
}
