//! The local runner: every function's handler in one process, driven against LocalStack the
//! way AWS drives them (SQS event source mappings, the digest schedule, the HTTP front).

pub mod demo;
pub mod esm;
pub mod stats;
pub mod system;
