//! The pure domain of fmn: messages and their metadata, preferences and rules, matching,
//! rendering and digest policy. No AWS and no I/O here: adapters live in `fmn-aws`.

pub mod message;
pub mod meta;
