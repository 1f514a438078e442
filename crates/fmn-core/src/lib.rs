//! The pure domain of fmn: messages and their metadata, preferences and rules, matching,
//! rendering and digest policy. No AWS and no I/O here: adapters live in `fmn-aws`.

pub mod accounts;
pub mod atom;
pub mod defaults;
pub mod digest;
pub mod directory;
pub mod fact_changes;
pub mod health;
pub mod irc_line;
pub mod jobs;
pub mod matching;
pub mod matrix;
pub mod message;
pub mod meta;
pub mod noise;
pub mod ownership;
pub mod prefs;
pub mod preview;
pub mod rate;
pub mod render;
pub mod retry_schedule;
pub mod rules;
pub mod schedule;
pub mod unsubscribe;
