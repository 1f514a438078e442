//! fedimg, cloud image uploads (`fedimg.*`).

use crate::meta::ctx::Ctx;
use crate::meta::model::{Metadata, Processor};

/// fedimg.
pub struct Fedimg;

fn subtitle(m: &Ctx) -> Option<String> {
    let f = |p: &str| m.fmt_or_none(p);
    let (name, dest, status) = (f("image_name"), f("destination"), f("status"));
    let details = || {
        format!(
            "({}, {}, {})",
            f("extra.id"),
            f("extra.virt_type"),
            f("extra.vol_type")
        )
    };
    if m.has("image.upload") {
        return match status.as_str() {
            "started" => Some(format!("{name} started uploading to {dest}")),
            "completed" => Some(format!("{name} finished uploading to {dest} {}", details())),
            "failed" => Some(format!("{name} failed to upload to {dest}")),
            _ => None,
        };
    }
    if m.has("image.test") {
        let verb = match status.as_str() {
            "started" => "started testing on",
            "completed" => "finished testing on",
            "failed" => "failed testing on",
            _ => return Some(String::new()),
        };
        return Some(format!("{name} {verb} {dest} {}", details()));
    }
    if m.has("image.publish") {
        return Some(format!("{name} published in region, {dest} {}", details()));
    }
    if m.has("image.copy") {
        return Some(format!(
            "{name} copied to {dest} using source image, {} {}",
            f("extra.source_image_id"),
            details()
        ));
    }
    None
}

impl Processor for Fedimg {
    fn services(&self) -> &'static [&'static str] {
        &["fedimg"]
    }

    fn app(&self) -> &'static str {
        "fedimg"
    }

    fn extract(&self, m: &Ctx<'_>, out: &mut Metadata) {
        out.subtitle = subtitle(m);
    }
}
