//! Autocloud, automated cloud image testing (`autocloud.*`).

use crate::meta::ctx::Ctx;
use crate::meta::model::{Metadata, Processor};

/// Autocloud.
pub struct Autocloud;

fn subtitle(m: &Ctx) -> Option<String> {
    let status = m.fmt_or_none("status");
    let v2 = m.contains("compose_id") || m.contains("compose_job_id") || m.has("autocloud.compose");
    if m.has("autocloud.image") {
        let mut image = m.fmt_or_none("image_name");
        if let Some(release) = m.get("release").filter(|r| crate::meta::py::truthy(r)) {
            image = format!("{image} ({})", crate::meta::py::str(release));
        }
        let cid = if v2 {
            format!("({})", m.fmt_or_none("compose_id"))
        } else {
            String::new()
        };
        return Some(match status.as_str() {
            "queued" => format!("{image}{cid} is {status} for testing"),
            "running" => format!("The tests for the {image}{cid} have started {status}"),
            "aborted" => format!("The tests for the {image}{cid} have been {status}"),
            "failed" => format!("The tests for the {image}{cid} {status}"),
            "success" => format!("The tests for {image}{cid} were a {status}"),
            _ => return None,
        });
    }
    if v2 && m.has("autocloud.compose") {
        let cid = m
            .fmt("id")
            .or_else(|| m.fmt("compose_id"))
            .unwrap_or_else(|| "A compose".to_owned());
        return Some(match status.as_str() {
            "queued" => format!("{cid} is {status} for testing"),
            "running" => format!("{cid} tests have started {status}"),
            "completed" => format!("{cid} tests have {status}"),
            _ => return None,
        });
    }
    None
}

fn link(m: &Ctx) -> Option<String> {
    let v2 = m.contains("compose_id") || m.contains("compose_job_id") || m.has("autocloud.compose");
    let job = || match m.get("job_id").filter(|j| crate::meta::py::truthy(j)) {
        Some(j) => Some(format!(
            "https://apps.fedoraproject.org/autocloud/jobs/{}/output",
            crate::meta::py::str(j)
        )),
        None => m.fmt("image_url"),
    };
    if !v2 || m.has("autocloud.image") {
        return job();
    }
    if m.has("autocloud.compose") {
        if let Some(id) = m.get("compose_job_id").filter(|j| !j.is_null()) {
            return Some(format!(
                "https://apps.fedoraproject.org/autocloud/jobs/{}",
                crate::meta::py::str(id)
            ));
        }
    }
    Some("https://apps.fedoraproject.org/autocloud/".to_owned())
}

impl Processor for Autocloud {
    fn services(&self) -> &'static [&'static str] {
        &["autocloud"]
    }

    fn app(&self) -> &'static str {
        "autocloud"
    }

    fn extract(&self, m: &Ctx<'_>, out: &mut Metadata) {
        out.subtitle = subtitle(m);
        out.link = link(m);
    }
}
