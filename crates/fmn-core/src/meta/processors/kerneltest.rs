//! The kernel testing initiative (`kerneltest.*`).

use crate::meta::ctx::Ctx;
use crate::meta::model::{Metadata, Processor};

/// kerneltest.
pub struct Kerneltest;

impl Processor for Kerneltest {
    fn services(&self) -> &'static [&'static str] {
        &["kerneltest"]
    }

    fn app(&self) -> &'static str {
        "kerneltest"
    }

    fn extract(&self, m: &Ctx<'_>, out: &mut Metadata) {
        let f = |p: &str| m.fmt_or_none(p);
        let user = f("agent");
        out.subtitle = if m.contains("test") {
            Some(format!(
                "{user} ran a test of {} ({})",
                f("test.kernel_version"),
                f("test.result")
            ))
        } else if m.has("release.edit") {
            Some(format!(
                "{user} edited the {}-{} release for kerneltest",
                f("release.releasenum"),
                f("release.support")
            ))
        } else if m.has("release.new") {
            Some(format!(
                "{user} added a new release for kerneltest: {} {}",
                f("release.releasenum"),
                f("release.support")
            ))
        } else {
            None
        };
        out.link = Some(match m.fmt("test.kernel_version") {
            Some(v) => format!("https://apps.fedoraproject.org/kerneltest/kernel/{v}"),
            None => "https://apps.fedoraproject.org/kerneltest/stats".to_owned(),
        });
        if let Some(agent) = m.fmt("agent") {
            out.set_agent(agent);
        }
        out.package("kernel");
    }
}
