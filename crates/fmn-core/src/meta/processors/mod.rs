//! One processor per service. To add a service: write `<service>.rs` with a unit struct
//! implementing [`crate::meta::Processor`], declare it below and list it in [`all`].

mod anitya;
mod autocloud;
mod bodhi;
mod buildsys;
mod ci;
mod compose;
mod fas;
mod git;
mod github;
mod hotness;
mod pagure;
mod pkgdb;
mod pungi;

pub use anitya::Anitya;
pub use autocloud::Autocloud;
pub use bodhi::Bodhi;
pub use buildsys::Buildsys;
pub use ci::CentosCi;
pub use compose::Compose;
pub use fas::Fas;
pub use git::Git;
pub use github::Github;
pub use hotness::Hotness;
pub use pagure::Pagure;
pub use pkgdb::Pkgdb;
pub use pungi::Pungi;

use super::Processor;

/// Every built-in processor.
pub fn all() -> Vec<Box<dyn Processor>> {
    vec![
        Box::new(Anitya),
        Box::new(Autocloud),
        Box::new(Bodhi),
        Box::new(Buildsys),
        Box::new(CentosCi),
        Box::new(Compose),
        Box::new(Fas),
        Box::new(Git),
        Box::new(Github),
        Box::new(Hotness),
        Box::new(Pagure),
        Box::new(Pkgdb),
        Box::new(Pungi),
    ]
}
