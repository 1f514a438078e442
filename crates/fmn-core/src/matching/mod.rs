//! Who gets a message: the indexed matcher, the naive reference matcher it must agree with,
//! and "explain".
//!
//! Semantics (the old FMN's): a disabled user gets nothing; a filter's rules are ANDed and a
//! filter with no rules never matches; a user's filters are tried in order and, for each
//! destination, the first matching filter that feeds it wins, so a message reaches a
//! destination at most once. Only confirmed destinations receive.

mod compiled;
mod explain;
mod facts;
mod index;
mod matched;
mod naive;
mod prefilter;

pub use compiled::{summary, CompiledRule};
pub use explain::{
    explain, provenance, DestinationOutcome, Explanation, FilterExplanation, RuleExplanation,
};
pub use facts::MessageFacts;
pub use index::{IndexStats, Matcher, SkippedFilter};
pub use matched::{reason_code, Match};
pub use naive::match_naive;
pub use prefilter::required_literals;
