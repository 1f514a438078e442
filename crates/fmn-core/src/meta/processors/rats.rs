//! RATS, "Run Another Test System" (`rats.*`).

use crate::meta::ctx::Ctx;
use crate::meta::model::{Metadata, Processor};
use crate::meta::py;

use super::pagure::project_of;

/// RATS.
pub struct Rats;

fn subtitle(m: &Ctx) -> Option<String> {
    let user = m.fmt_or_none("agent");
    let f = |p: &str| m.fmt_or_none(p);
    let target = m.get("identifier").filter(|t| py::truthy(t)).map(py::str);
    if m.has("test.simple-koji-ci") {
        let project = m
            .get("pull_request")
            .and_then(|pr| project_of(pr, "project"))
            .unwrap_or_default();
        return Some(format!(
            "{user} requested a run of simple-koji-ci on \"{project}/pull-request/{}\"",
            f("pull_request.id")
        ));
    }
    let what = if m.has("test.taskotron") {
        format!("taskotron's {}", f("test"))
    } else if m.has("test.atomic-ci") {
        "atomic-ci".to_owned()
    } else {
        return None;
    };
    Some(match target {
        Some(target) => format!("{user} requested a run of {what} on \"{target}\""),
        None => {
            let what = if m.has("test.taskotron") {
                "taskotron"
            } else {
                "atomic-ci"
            };
            format!(
                "{user} requested a run of {what} on resultsdb's result id: \"{}\"",
                f("result_id")
            )
        }
    })
}

impl Processor for Rats {
    fn services(&self) -> &'static [&'static str] {
        &["rats"]
    }

    fn app(&self) -> &'static str {
        "rats"
    }

    fn extract(&self, m: &Ctx<'_>, out: &mut Metadata) {
        out.subtitle = subtitle(m);
        if m.has("test.simple-koji-ci") {
            // The pull request on dist-git that the run is for.
            let base = if m.has(".stg.") {
                "https://src.stg.fedoraproject.org"
            } else {
                "https://src.fedoraproject.org"
            };
            let project = m
                .get("pull_request")
                .and_then(|pr| project_of(pr, "project"))
                .unwrap_or_else(|| "(unknown)".to_owned());
            out.link = Some(format!(
                "{base}/{project}/pull-request/{}",
                m.fmt_or_none("pull_request.id")
            ));
        }
        if let Some(agent) = m.get("agent").filter(|a| py::truthy(a)) {
            out.set_agent(py::str(agent));
        }
    }
}
