//! summershum, hashes of source tarballs (`summershum.*`).

use crate::meta::ctx::Ctx;
use crate::meta::model::{Metadata, Processor};

/// summershum.
pub struct Summershum;

impl Processor for Summershum {
    fn services(&self) -> &'static [&'static str] {
        &["summershum"]
    }

    fn app(&self) -> &'static str {
        "summershum"
    }

    fn extract(&self, m: &Ctx<'_>, out: &mut Metadata) {
        let f = |p: &str| m.fmt_or_none(&format!("original.{p}"));
        let (file, name) = (f("filename"), f("name"));
        out.subtitle = Some(if m.ends("fail") {
            format!("yikes!  summershum failed to process {file} for {name}")
        } else if m.ends("complete") {
            format!("summershum ingested {file} for {name}")
        } else if m.ends("start") {
            format!("summershum started working on {file} for {name}")
        } else {
            "(unhandled)".to_owned()
        });
        let path = m
            .fmt("original.path")
            .unwrap_or_else(|| format!("{name}/{file}/{}/{file}", f("md5sum")));
        out.link = Some(format!(
            "http://pkgs.fedoraproject.org/lookaside/pkgs/{path}"
        ));
        if let Some(agent) = m.fmt("original.agent") {
            out.set_agent(agent);
        }
        if let Some(name) = m.fmt("original.name") {
            out.package(name);
        }
    }
}
