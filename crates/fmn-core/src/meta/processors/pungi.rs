//! pungi-koji composes (`pungi.compose.*`).

use crate::meta::ctx::Ctx;
use crate::meta::model::{Metadata, Processor};
use crate::meta::py;

/// Pungi.
pub struct Pungi;

fn subtitle(m: &Ctx) -> Option<String> {
    let compose = m.fmt_or_none("compose_id");
    let f = |k: &str| m.fmt_or_none(k);
    let file = || {
        let file = f("file");
        file.rsplit("compose/")
            .next()
            .unwrap_or_default()
            .to_owned()
    };
    Some(if m.ends("pungi.compose.status.change") {
        let raw = f("status");
        let status = match raw.as_str() {
            "STARTED" => "started",
            "FINISHED" => "just finished",
            "DOOMED" => "failed in a horrible fire",
            "TERMINATED" => "was terminated",
            other => other,
        };
        format!("pungi-koji compose of {compose} {status}")
    } else if m.ends("pungi.compose.phase.start") {
        format!(
            "pungi-koji started the {} phase of the {compose} compose",
            f("phase_name")
        )
    } else if m.ends("pungi.compose.phase.stop") {
        format!(
            "pungi-koji finished the {} phase of the {compose} compose",
            f("phase_name")
        )
    } else if m.ends("pungi.compose.createiso.imagedone") {
        format!("pungi-koji finished createiso for {}", file())
    } else if m.ends("pungi.compose.createiso.imagefail") {
        format!("pungi-koji createiso for {} failed!", file())
    } else if m.ends("pungi.compose.createiso.targets") {
        format!(
            "pungi-koji assigned {} createiso targets",
            m.arr("deliverables").len()
        )
    } else if m.ends("pungi.compose.ostree") {
        format!(
            "pungi-koji ostree compose {compose} produced ostree commit {} for {} {}",
            f("commitid"),
            f("arch"),
            f("ref")
        )
    } else if m.ends("pungi.compose.fail.to.start") {
        format!(
            "failed to compose from {}: \"{}\"",
            f("config"),
            f("detail")
        )
    } else {
        return None;
    })
}

/// Python's `s.strip('/').strip('/compose')`: strips the characters `/compose` from both ends.
fn strip_location(s: &str) -> String {
    let chars: &[char] = &['/', 'c', 'o', 'm', 'p', 's', 'e'];
    s.trim_matches('/').trim_matches(chars).to_owned()
}

impl Processor for Pungi {
    fn services(&self) -> &'static [&'static str] {
        &["pungi"]
    }

    fn app(&self) -> &'static str {
        "pungi"
    }

    fn extract(&self, m: &Ctx<'_>, out: &mut Metadata) {
        out.subtitle = subtitle(m);
        out.link = m.get("location").map(|l| strip_location(&py::str(l)));
    }
}
