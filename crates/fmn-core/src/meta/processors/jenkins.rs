//! Fedora Infrastructure's Jenkins (`jenkins.*`).

use crate::meta::ctx::Ctx;
use crate::meta::model::{Metadata, Processor};

/// Jenkins.
pub struct Jenkins;

impl Processor for Jenkins {
    fn services(&self) -> &'static [&'static str] {
        &["jenkins"]
    }

    fn app(&self) -> &'static str {
        "jenkins"
    }

    fn extract(&self, m: &Ctx<'_>, out: &mut Metadata) {
        let project = m.fmt_or_none("project");
        let what = match m.last() {
            "failed" => "failed to build",
            "passed" => "built successfully",
            "unstable" => "built with warnings",
            "notbuilt" => "did not build",
            "aborted" => "build aborted",
            "start" => "started building",
            "unknown" => "entered an unknown state",
            _ => "",
        };
        if !what.is_empty() && m.has("jenkins.build.") {
            out.subtitle = Some(format!("Jenkins project '{project}' {what}"));
        }
        let build = m.get("build").filter(|b| !b.is_null());
        let has_project = m.get("project").is_some_and(|p| !p.is_null());
        if let (Some(build), true) = (build, has_project) {
            out.link = Some(format!(
                "http://jenkins.cloud.fedoraproject.org/job/{project}/{}/",
                crate::meta::py::str(build)
            ));
        }
    }
}
