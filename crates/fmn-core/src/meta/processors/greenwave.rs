//! Greenwave, the gating service (`greenwave.*`).

use serde_json::Value;

use crate::meta::ctx::Ctx;
use crate::meta::model::{Metadata, Processor};
use crate::meta::py::{self, nvr_name};

/// Greenwave.
pub struct Greenwave;

/// Python's `urlencode` (with `quote_plus`) of key/value pairs.
fn urlencode(pairs: &[(String, String)]) -> String {
    let quote = |s: &str| {
        let mut out = String::new();
        for b in s.bytes() {
            match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' | b'~' => {
                    out.push(b as char)
                }
                b' ' => out.push('+'),
                other => out.push_str(&format!("%{other:02X}")),
            }
        }
        out
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", quote(k), quote(v)))
        .collect::<Vec<_>>()
        .join("&")
}

impl Processor for Greenwave {
    fn services(&self) -> &'static [&'static str] {
        &["greenwave"]
    }

    fn app(&self) -> &'static str {
        "greenwave"
    }

    fn extract(&self, m: &Ctx<'_>, out: &mut Metadata) {
        let satisfied = m
            .get("policies_satisfied")
            .or_else(|| m.get("policies_satisified"))
            .is_some_and(py::truthy);
        let decision = if satisfied { "is a GO" } else { "says NO-GO" };
        let subject = m.arr("subject");
        let item = match m.get("subject_identifier").filter(|v| py::truthy(v)) {
            Some(item) => py::str(item),
            None => subject
                .iter()
                .filter_map(|e| e.get("item").filter(|v| py::truthy(v)))
                .map(py::str)
                .next()
                .unwrap_or_else(|| "\"something\"".to_owned()),
        };
        out.subtitle = Some(format!(
            "greenwave {decision} on {item} for \"{}\" ({})",
            m.fmt_or_none("decision_context"),
            m.fmt_or_none("product_version")
        ));
        if let Some(Value::Object(first)) = subject.first() {
            let mut pairs: Vec<(String, String)> =
                first.iter().map(|(k, v)| (k.clone(), py::str(v))).collect();
            pairs.sort();
            out.link = Some(format!(
                "https://taskotron.fedoraproject.org/resultsdb/results?{}",
                urlencode(&pairs)
            ));
        }
        for entry in subject {
            if entry.get("type").and_then(Value::as_str) == Some("koji_build") {
                if let Some(item) = entry.get("item").filter(|v| py::truthy(v)) {
                    out.package(nvr_name(&py::str(item)));
                }
            }
        }
    }
}
