//! Copr, the community build service (`copr.*`).

use crate::meta::ctx::Ctx;
use crate::meta::model::{Metadata, Processor};
use crate::meta::processors::long;
use crate::meta::py;

/// Copr.
pub struct Copr;

fn status(m: &Ctx) -> &'static str {
    match m.get("status").and_then(serde_json::Value::as_i64) {
        Some(0) => "failed",
        Some(1) => "success",
        Some(3) => "running",
        Some(5) => "skipped",
        _ => "unknown",
    }
}

fn subtitle(m: &Ctx) -> Option<String> {
    let user = m.get("user").filter(|u| !u.is_null()).map(py::str);
    let f = |p: &str| m.fmt_or_none(p);
    let copr = f("copr");
    let chroot = f("chroot");
    // Older messages split the NVR into `pkg` and `version`.
    let mut pkg = f("pkg");
    if let (Some(p), Some(v)) = (m.str("pkg"), m.str("version")) {
        if !p.is_empty() && !v.is_empty() && !p.contains(v) {
            pkg = format!("{p}-{v}");
        }
    }
    let status = status(m);
    let has_user = m.truthy("user");
    let user = user.unwrap_or_else(|| "None".to_owned());
    Some(if m.has("copr.build.start") {
        if has_user {
            format!("{user} started a new build of the {copr} copr")
        } else {
            format!("Automated build of the {copr} copr has been started")
        }
    } else if m.has("copr.build.end") {
        if has_user {
            format!("{user}'s {copr} copr build of {pkg} for {chroot} finished with '{status}'")
        } else {
            format!("Automated {copr} copr build of {pkg} for {chroot} finished with '{status}'")
        }
    } else if m.has("copr.chroot.start") {
        format!("{user}'s {copr} copr started a new {chroot} chroot")
    } else if m.has("copr.worker.create") {
        "a new worker was created".to_owned()
    } else {
        return None;
    })
}

fn link(m: &Ctx) -> String {
    let mut user = m
        .get("owner")
        .or_else(|| m.get("user"))
        .map_or_else(|| "None".to_owned(), py::str);
    if user.starts_with('@') {
        user = user.replacen('@', "g/", 1);
    }
    let f = |p: &str| m.fmt_or_none(p);
    if m.has("chroot") {
        format!(
            "https://copr-be.cloud.fedoraproject.org/results/{user}/{}/{}/",
            f("copr"),
            f("chroot")
        )
    } else if m.has("build") {
        format!(
            "https://copr.fedoraproject.org/coprs/{user}/{}/build/{}/",
            f("copr"),
            f("build")
        )
    } else {
        "https://copr.fedoraproject.org".to_owned()
    }
}

impl Processor for Copr {
    fn services(&self) -> &'static [&'static str] {
        &["copr"]
    }

    fn app(&self) -> &'static str {
        "copr"
    }

    fn long_form(&self, m: &Ctx<'_>, meta: &Metadata) -> Option<String> {
        // A finished build: where its log is.
        if !m.has("copr.build.end") {
            return None;
        }
        let owner = m.get("owner").or_else(|| m.get("user")).map(py::str)?;
        let f = |p: &str| m.fmt_or_none(p);
        let build = m.get("build").and_then(serde_json::Value::as_i64)?;
        let mut text = long::fields(
            m,
            &[
                ("Project", "copr"),
                ("Chroot", "chroot"),
                ("Package", "pkg"),
                ("Version", "version"),
            ],
        );
        text.push_str(&format!("Status: {}\n", status(m)));
        let pkg = m.str("pkg").unwrap_or_default();
        text.push_str(&format!(
            "Build log: https://download.copr.fedorainfracloud.org/results/{owner}/{}/{}/{build:08}-{pkg}/builder-live.log.gz\n",
            f("copr"),
            f("chroot"),
        ));
        long::under(meta.subtitle.as_deref(), text)
    }

    fn extract(&self, m: &Ctx<'_>, out: &mut Metadata) {
        out.subtitle = subtitle(m);
        out.link = Some(link(m));
        if let Some(user) = m.get("user").filter(|u| py::truthy(u)) {
            out.set_agent(py::str(user));
        }
        if let Some(owner) = m.get("owner").filter(|u| py::truthy(u)) {
            out.user(py::str(owner));
        }
    }
}
