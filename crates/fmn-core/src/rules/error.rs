//! Why a rule is refused, and the limits it is checked against.

/// Longest regex or glob pattern accepted, in bytes.
pub const MAX_PATTERN: usize = 256;
/// Most values in one rule's list argument.
pub const MAX_LIST: usize = 100;
/// Compiled-program size limit for a regex (the `regex` crate's limit), so a pattern like
/// `(a{1000}){1000}` is refused rather than eating memory.
pub const MAX_REGEX_PROGRAM: usize = 256 * 1024;

/// Why a rule is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("`{arg}`: {reason}")]
    BadArgument { arg: &'static str, reason: String },
}

pub(crate) fn bad(arg: &'static str, reason: impl Into<String>) -> RuleError {
    RuleError::BadArgument {
        arg,
        reason: reason.into(),
    }
}
