//! The CentOS CI pipelines (`org.centos.*.ci.pipeline.*`, and the older
//! `allpackages.pipeline.*` / `container.pipeline.*` topics).

use crate::meta::ctx::Ctx;
use crate::meta::model::{Metadata, Processor};
use crate::meta::py;

/// CentOS CI.
pub struct CentosCi;

/// (event after the pipeline name, template). `{status}` templates get a verdict.
const EVENTS: &[(&str, &str)] = &[
    (".package.ignore", "{revtype} \"{rev}\" of package {ns}/{pkg} is being ignored by the {pipeline_name} pipeline on branch {branch}"),
    (".complete", "{revtype} \"{rev}\" of {kind} {ns}/{pkg} {status} the {pipeline_name} pipeline on branch {branch}"),
    (".package.complete", "{revtype} {rev} of package {ns}/{pkg} {status} building in the {pipeline_name} pipeline on branch {branch}"),
    (".package.queued", "{revtype} {rev} of package {ns}/{pkg} is queued to be built in the {pipeline_name} pipeline on branch {branch}"),
    (".package.running", "{revtype} {rev} of package {ns}/{pkg} is being built in the {pipeline_name} pipeline on branch {branch}"),
    (".package.test.functional.complete", "{revtype} {rev} of package {ns}/{pkg} {status} its functional tests in the {pipeline_name} pipeline on branch {branch}"),
    (".package.test.functional.queued", "{revtype} {rev} of package {ns}/{pkg} is queued for functional testing in the {pipeline_name} pipeline on branch {branch}"),
    (".package.test.functional.running", "{revtype} {rev} of package {ns}/{pkg} is running its functional tests in the {pipeline_name} pipeline on branch {branch}"),
    (".container.test.functional.complete", "{revtype} {rev} of container {ns}/{pkg} {status} its functional tests in the {pipeline_name} pipeline on branch {branch}"),
    (".container.test.functional.queued", "{revtype} {rev} of container {ns}/{pkg} is queued for functional testing in the {pipeline_name} pipeline on branch {branch}"),
    (".container.test.functional.running", "{revtype} {rev} of container {ns}/{pkg} is running its functional tests in the {pipeline_name} pipeline on branch {branch}"),
    (".compose.complete", "{revtype} {rev} of package {ns}/{pkg} {status} a compose in the {pipeline_name} pipeline on branch {branch}"),
    (".compose.queued", "{revtype} {rev} of package {ns}/{pkg} is queued for a compose in the {pipeline_name} pipeline on branch {branch}"),
    (".compose.running", "{revtype} {rev} of package {ns}/{pkg} is being part of a compose in the {pipeline_name} pipeline on branch {branch}"),
    (".compose.test.integration.complete", "{revtype} {rev} of package {ns}/{pkg} {status} its tests as part of a compose in the {pipeline_name} pipeline on branch {branch}"),
    (".compose.test.integration.queued", "{revtype} {rev} of package {ns}/{pkg} is queued for tests as part of a compose in the {pipeline_name} pipeline on branch {branch}"),
    (".compose.test.integration.running", "{revtype} {rev} of package {ns}/{pkg} is being tested as part of a compose in the {pipeline_name} pipeline on branch {branch}"),
    (".image.complete", "{revtype} {rev} of package {ns}/{pkg} {status} being built in an image in the {pipeline_name} pipeline on branch {branch}"),
    (".image.queued", "{revtype} {rev} of package {ns}/{pkg} is queued to be built in an image in the {pipeline_name} pipeline on branch {branch}"),
    (".image.running", "{revtype} {rev} of package {ns}/{pkg} is being built in an image in the {pipeline_name} pipeline on branch {branch}"),
    (".image.test.smoke.complete", "{revtype} {rev} of package {ns}/{pkg} {status} its tests in an image in the {pipeline_name} pipeline on branch {branch}"),
    (".image.test.smoke.queued", "{revtype} {rev} of package {ns}/{pkg} is queued to be tested in an image in the {pipeline_name} pipeline on branch {branch}"),
    (".image.test.smoke.running", "{revtype} {rev} of package {ns}/{pkg} is being tested in an image in the {pipeline_name} pipeline on branch {branch}"),
];

fn verdict(status: &str) -> &'static str {
    match status.to_lowercase().as_str() {
        "success" => "passed",
        "aborted" => "was aborted on",
        "unstable" => "errored",
        _ => "failed",
    }
}

/// A body string, or `default` when absent, null or empty.
fn or<'a>(m: &Ctx<'a>, key: &str, default: &'a str) -> String {
    match m.get(key) {
        Some(v) if py::truthy(v) => py::str(v),
        _ => default.to_owned(),
    }
}

fn subtitle(m: &Ctx) -> String {
    let rev = or(m, "rev", "");
    let (revtype, rev) = if let Some(r) = rev.strip_prefix("kojitask-") {
        ("Koji task", r.to_owned())
    } else if let Some(r) = rev.strip_prefix("PR-") {
        ("Pull request", r.to_owned())
    } else {
        ("Commit", py::head(&rev, 8).to_owned())
    };
    let branch = or(m, "branch", "unknown_branch");
    let pkg = or(m, "repo", "unknown_repo");
    let ns = or(m, "namespace", "unknown_namespace");
    let status = or(m, "status", "unknown_status");

    // The processor's own name: `ci.pipeline`, or the old `<x>.pipeline` services.
    let service = m.topic().service();
    let (mut name, mut pipeline) = match service {
        "allpackages" => ("allpackages.pipeline".to_owned(), "All Packages CI"),
        "container" => ("container.pipeline".to_owned(), "Container CI"),
        _ => ("ci.pipeline".to_owned(), "Atomic CI"),
    };
    for (sub, label) in [
        (".allpackages-build", "All Packages (Build) CI"),
        (".allpackages-pr", "All Packages (PR) CI"),
        (".allpackages", "All Packages CI"),
        (".container", "Container CI"),
    ] {
        if m.has(&format!("{name}{sub}")) {
            name = match sub {
                ".container" => "ci.pipeline.container-pr".to_owned(),
                _ => format!("ci.pipeline{sub}"),
            };
            pipeline = label;
            break;
        }
    }
    let Some((_, tmpl)) = EVENTS
        .iter()
        .find(|(event, _)| m.has(&format!("{name}{event}")))
    else {
        return String::new();
    };
    let kind = if pipeline == "Container CI" {
        "container"
    } else {
        "package"
    };
    py::format(
        tmpl,
        &[
            ("revtype", revtype),
            ("rev", &rev),
            ("ns", &ns),
            ("pkg", &pkg),
            ("branch", &branch),
            ("status", verdict(&status)),
            ("pipeline_name", pipeline),
            ("kind", kind),
        ],
    )
}

impl Processor for CentosCi {
    fn services(&self) -> &'static [&'static str] {
        &["ci", "allpackages", "container"]
    }

    fn app(&self) -> &'static str {
        "ci"
    }

    fn extract(&self, m: &Ctx<'_>, out: &mut Metadata) {
        out.subtitle = Some(subtitle(m));
        out.link = match m.get("build_url") {
            Some(serde_json::Value::Null) => None,
            Some(url) => Some(py::str(url)),
            None => Some("http://ci.centos.org/".to_owned()),
        };
        if let Some(user) = m.get("username").filter(|u| py::truthy(u)) {
            out.set_agent(py::str(user));
        }
    }
}
