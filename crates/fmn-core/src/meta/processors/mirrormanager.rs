//! MirrorManager (`mirrormanager.*`).

use serde_json::Value;

use crate::meta::ctx::Ctx;
use crate::meta::model::{Metadata, Processor};

/// MirrorManager.
pub struct Mirrormanager;

impl Processor for Mirrormanager {
    fn services(&self) -> &'static [&'static str] {
        &["mirrormanager"]
    }

    fn app(&self) -> &'static str {
        "mirrormanager"
    }

    fn extract(&self, m: &Ctx<'_>, out: &mut Metadata) {
        out.link = Some("https://mirrors.fedoraproject.org".to_owned());
        out.subtitle = if m.has("mirrormanager.crawler.complete") {
            let results = m.arr("results");
            let ok = results
                .iter()
                .filter(|r| r.get("rc").and_then(Value::as_i64) == Some(0))
                .count();
            Some(format!(
                "mirrormanager's crawler finished a crawl of {} mirrors ({ok} succeeded, {} failed)",
                results.len(),
                results.len() - ok
            ))
        } else if m.has("mirrormanager.crawler.start") {
            Some(format!(
                "mirrormanager's crawler started a crawl of {} mirrors",
                m.arr("hosts").len()
            ))
        } else if m.has("mirrormanager.netblocks.get") {
            let status = if m.truthy("success") {
                "successfully updated"
            } else {
                "failed to update"
            };
            Some(format!(
                "mirrormanager's backend {status} its {} netblocks file",
                m.fmt_or_none("type")
            ))
        } else {
            None
        };
    }
}
