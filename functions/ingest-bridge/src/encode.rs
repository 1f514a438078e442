//! The ingest queue's wire format lives in `fmn-aws` (the match function reads what the bridge
//! writes); re-exported here under the name the bridge's modules use.

pub use fmn_aws::ingest_wire::*;
