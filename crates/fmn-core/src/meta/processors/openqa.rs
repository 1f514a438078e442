//! openQA, distribution-level automated testing (`openqa.*`).

use crate::meta::ctx::Ctx;
use crate::meta::model::{Metadata, Processor};
use crate::meta::py;

/// openQA.
pub struct Openqa;

fn job_subtitle(m: &Ctx) -> Option<String> {
    let or = |p: &str, d: &str| m.fmt(p).unwrap_or_else(|| d.to_owned());
    let job = or("id", "");
    let build = m.fmt("BUILD").unwrap_or_else(|| or("build", ""));
    let mut text = String::new();
    if m.has(".stg") {
        text.push_str("staging ");
    }
    text.push_str(&format!("job {job} "));
    if let Some(test) = m.get("TEST").filter(|t| py::truthy(t)) {
        text.push_str(&format!(
            "(test {} on {}",
            py::str(test),
            m.fmt_or_none("MACHINE")
        ));
        if let Some(iso) = m.get("ISO").filter(|v| py::truthy(v)) {
            text.push_str(&format!(" for iso {}) ", py::str(iso)));
        } else if let Some(hdd) = m.get("HDD_1").filter(|v| py::truthy(v)) {
            text.push_str(&format!(" for disk {}) ", py::str(hdd)));
        } else {
            text.push_str(") ");
        }
    }
    let result = m.fmt_or_none("result");
    if m.ends("job.duplicate") {
        let auto = match or("auto", "").as_str() {
            "0" => "manually ".to_owned(),
            "1" => "automatically ".to_owned(),
            other => other.to_owned(),
        };
        return Some(format!("{text}{auto}duplicated as {result} for {build}"));
    }
    if m.ends("job.restart") {
        return Some(format!("{text}restarted as {result} for {build}"));
    }
    if m.ends("job.done") {
        return Some(format!(
            "{text}completed for {build}, {} remaining jobs",
            or("remaining", "")
        ));
    }
    if m.ends("job.create") {
        return Some(format!("{text}created for {build}"));
    }
    None
}

fn comment_subtitle(m: &Ctx) -> String {
    let mut extract = m.fmt("text").unwrap_or_default();
    if py::len(&extract) > 30 {
        extract = format!("{}...", py::head(&extract, 30));
    }
    let user = m.fmt("user").unwrap_or_else(|| "someone".to_owned());
    let action = match m.last() {
        "create" => "created",
        "update" => "updated",
        "delete" => "deleted",
        _ => "did something to",
    };
    let mut text = format!("{user} {action} comment #{} on openQA", m.fmt_or_none("id"));
    if let Some(job) = m.get("job_id").filter(|v| py::truthy(v)) {
        text.push_str(&format!(" job {}", py::str(job)));
    } else if let Some(group) = m.get("group_id").filter(|v| py::truthy(v)) {
        text.push_str(&format!(" group {}", py::str(group)));
    }
    if !extract.is_empty() {
        text.push_str(&format!(", text: {extract}"));
    }
    text
}

impl Processor for Openqa {
    fn services(&self) -> &'static [&'static str] {
        &["openqa"]
    }

    fn app(&self) -> &'static str {
        "openqa"
    }

    fn extract(&self, m: &Ctx<'_>, out: &mut Metadata) {
        let base = if m.has(".stg") {
            "https://openqa.stg.fedoraproject.org"
        } else {
            "https://openqa.fedoraproject.org"
        };
        if m.has(".job.") {
            out.subtitle = job_subtitle(m);
            out.link = Some(format!("{base}/tests/{}", m.fmt_or_none("id")));
        } else if m.has(".comment.") {
            out.subtitle = Some(comment_subtitle(m));
            out.link = Some(
                if let Some(job) = m.get("job_id").filter(|v| py::truthy(v)) {
                    format!("{base}/tests/{}#comments", py::str(job))
                } else if let Some(group) = m.get("group_id").filter(|v| py::truthy(v)) {
                    format!("{base}/group_overview/{}", py::str(group))
                } else {
                    base.to_owned()
                },
            );
        }
        if let Some(user) = m.get("user").filter(|v| py::truthy(v)) {
            out.set_agent(py::str(user));
        }
    }
}
