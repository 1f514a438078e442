//! Release engineering composes (`compose.*`): rawhide, branched and numbered releases.

use crate::meta::ctx::Ctx;
use crate::meta::model::{Metadata, Processor};
use crate::meta::py;

/// Composes.
pub struct Compose;

/// Old `make-updates` events: "post-release Cloud/Atomic/Docker respin compose".
const MAKEUP_EVENTS: &[(&str, &str)] = &[
    (".make-updates.", ""),
    (".cloudimg-build.", " building images for"),
    (".mash-atomic", " Atomic updates mash for"),
    (".atomic-lorax", " Atomic lorax run for"),
    (".cloudimg-checksum.", " image checksum generation for"),
    (".cloudimg-staging.", " master mirror publication for"),
];

/// Events that only existed before pungi 4 (always plain "Fedora").
const OLD_EVENTS: &[(&str, &str)] = &[
    (".mash.", " mashing"),
    (".pungify.", " building boot.iso for"),
    (".image.", " building other images for"),
];

/// Events in the order the upstream library tries them.
fn event(m: &Ctx) -> Option<(&'static str, &'static str)> {
    OLD_EVENTS
        .iter()
        .chain(MAKEUP_EVENTS)
        .chain(&[(".rsync.", " master mirror publication for")])
        .find(|(needle, _)| m.has(needle))
        .copied()
}

fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first
            .to_uppercase()
            .chain(chars.flat_map(char::to_lowercase))
            .collect(),
        None => String::new(),
    }
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_digit())
}

fn subtitle(m: &Ctx) -> String {
    let found = event(m);
    let evtext = found.map_or("", |(_, text)| text);
    let is_makeup = found.is_some_and(|(n, _)| MAKEUP_EVENTS.iter().any(|(e, _)| *e == n));
    let is_old =
        found.is_some_and(|(n, _)| OLD_EVENTS.iter().chain(MAKEUP_EVENTS).any(|(e, _)| *e == n));

    let branch = m.get("branch").map(py::str);
    let release = match &branch {
        Some(b) => capitalize(b.rsplit("Modular-").next().unwrap_or_default()),
        None => {
            let labels: Vec<&str> = m.topic_str().split('.').collect();
            if labels.contains(&"rawhide") {
                "Rawhide".to_owned()
            } else if labels.contains(&"epelbeta") {
                "EPEL Beta".to_owned()
            } else {
                labels
                    .iter()
                    .find(|l| l.len() == 2 && is_digits(l))
                    .map_or_else(|| "(unknown release)".to_owned(), |l| (*l).to_owned())
            }
        }
    };

    let arch = m
        .get("arch")
        .filter(|a| py::truthy(a))
        .map_or_else(String::new, |a| format!(" ({})", py::str(a)));

    let mut comptext = if is_makeup {
        "post-release Cloud/Atomic/Docker respin compose".to_owned()
    } else {
        "compose".to_owned()
    };
    if let Some(cid) = m.get("compose_id").filter(|c| py::truthy(c)) {
        comptext.push(' ');
        comptext.push_str(&py::str(cid));
    }

    let short = match m.get("short") {
        Some(s) => py::str(s),
        None => {
            let mut short = "Fedora";
            if branch
                .as_deref()
                .unwrap_or_default()
                .to_lowercase()
                .contains("modular")
            {
                short = "Fedora-Modular";
            }
            if is_digits(&release)
                && !is_old
                && !m.contains("compose_id")
                && arch.is_empty()
                && !m.has("branched")
            {
                short = "Fedora, Fedora-Atomic, Fedora-Cloud or Fedora-Docker";
            }
            short.to_owned()
        }
    };

    let action = match m.last() {
        "start" => "Started",
        "complete" | "done" | "stop" => "Completed",
        _ => "Did something to do with",
    };
    format!("{action}{evtext} {short} {release}{arch} {comptext}")
}

impl Processor for Compose {
    fn services(&self) -> &'static [&'static str] {
        &["compose"]
    }

    fn app(&self) -> &'static str {
        "compose"
    }

    fn extract(&self, m: &Ctx<'_>, out: &mut Metadata) {
        out.subtitle = Some(subtitle(m));
        out.link = Some(
            m.fmt("location")
                .unwrap_or_else(|| "https://kojipkgs.fedoraproject.org/compose/".to_owned()),
        );
    }
}
