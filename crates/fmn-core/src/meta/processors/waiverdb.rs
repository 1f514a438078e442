//! WaiverDB, waivers of test results (`waiverdb.*`).

use crate::meta::ctx::Ctx;
use crate::meta::model::{Metadata, Processor};
use crate::meta::py;

/// WaiverDB.
pub struct Waiverdb;

fn subtitle(m: &Ctx) -> String {
    let f = |p: &str| m.fmt_or_none(p);
    if m.truthy("result_id") {
        return format!(
            "{} waived result {} ({}): \"{}\"",
            f("username"),
            f("result_id"),
            f("product_version"),
            f("comment")
        );
    }
    let or = |p: &str, d: &str| m.fmt(p).unwrap_or_else(|| d.to_owned());
    let username = or("username", "unknown user");
    let comment = or("comment", "");
    let subject = m
        .fmt("subject_identifier")
        .unwrap_or_else(|| or("subject.item", ""));
    let subjtype = m
        .fmt("subject_type")
        .unwrap_or_else(|| or("subject.type", ""));
    let testcase = or("testcase", "(no testcase)");
    match m.get("scenario").filter(|s| py::truthy(s)) {
        Some(scenario) => format!(
            "{username} waived {testcase} (scenario {}) for {subjtype} {subject}: \"{comment}\"",
            py::str(scenario)
        ),
        None => format!("{username} waived {testcase} for {subjtype} {subject}: \"{comment}\""),
    }
}

impl Processor for Waiverdb {
    fn services(&self) -> &'static [&'static str] {
        &["waiverdb"]
    }

    fn app(&self) -> &'static str {
        "waiverdb"
    }

    fn extract(&self, m: &Ctx<'_>, out: &mut Metadata) {
        out.subtitle = Some(subtitle(m));
        out.link = m.fmt("id").map(|id| {
            format!("https://waiverdb-web-waiverdb.app.os.fedoraproject.org/api/v1.0/waivers/{id}")
        });
        if let Some(user) = m.fmt("username") {
            out.set_agent(user);
        }
    }
}
