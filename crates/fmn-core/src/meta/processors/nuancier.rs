//! Nuancier, the supplemental wallpaper elections (`nuancier.*`).

use crate::meta::ctx::Ctx;
use crate::meta::model::{Metadata, Processor};

/// Nuancier.
pub struct Nuancier;

impl Processor for Nuancier {
    fn services(&self) -> &'static [&'static str] {
        &["nuancier"]
    }

    fn app(&self) -> &'static str {
        "nuancier"
    }

    fn extract(&self, m: &Ctx<'_>, out: &mut Metadata) {
        let f = |p: &str| m.fmt_or_none(p);
        let (agent, name) = (f("agent"), f("election.name"));
        out.subtitle = Some(if m.has("election.update") {
            let details: Vec<String> = m.arr("updated").iter().map(crate::meta::py::str).collect();
            format!(
                "{agent} changed the following details on the \"{name}\" election: {}",
                details.join(", ")
            )
        } else if m.has("election.new") {
            format!("{agent} created a new election \"{name}\"")
        } else if m.has("candidate.new") {
            format!("{agent} uploaded a new candidate for the \"{name}\" wallpaper election")
        } else if m.has("candidate.denied") || m.has("candidate.approved") {
            let verb = if m.has("candidate.denied") {
                "denied"
            } else {
                "approved"
            };
            format!(
                "{agent} {verb} {}'s \"{}\" submission to the \"{name}\" wallpaper election",
                f("candidate.submitter"),
                f("candidate.name")
            )
        } else {
            String::new()
        });
        out.link = match m.fmt("candidate.original_url") {
            Some(url) => Some(url),
            None => {
                let kind = m.topic_str().split('.').nth(4).unwrap_or_default();
                Some(format!(
                    "https://apps.fedoraproject.org/nuancier/{kind}/{}",
                    f("election.id")
                ))
            }
        };
        if let Some(agent) = m.fmt("agent") {
            out.set_agent(agent);
        }
        if m.contains("candidate") {
            if let Some(submitter) = m.fmt("candidate.submitter") {
                out.user(submitter);
            }
        }
    }
}
