//! One processor per service. To add a service: write `<service>.rs` with a unit struct
//! implementing [`crate::meta::Processor`], declare it below and list it in [`all`].

mod bodhi;

pub use bodhi::Bodhi;

use super::Processor;

/// Every built-in processor.
pub fn all() -> Vec<Box<dyn Processor>> {
    vec![Box::new(Bodhi)]
}
