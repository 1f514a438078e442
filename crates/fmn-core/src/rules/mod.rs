//! The rule kinds a filter is made of, and the catalogue that describes them.
//!
//! Three families, from the two earlier systems: the old FMN's generic rules (a user, not these
//! users, a package, a package regex, a user's packages, a regex anywhere, a group's members),
//! FMN 3.x's tracking rules (artifacts owned by users or groups, followed artifacts, events
//! related to me, users I follow) and its narrowing filters (applications, severities, topic
//! glob, not my own actions). "Me" is always the filter's owner, so the same rule in two
//! users' filters is the same value (which lets the matcher share and cache it).

mod catalog;
mod error;
mod glob;
mod rule;
mod services;

pub use catalog::{catalog, examples, full_catalogue, ArgKind, RuleArg, RuleInfo};
pub use error::{RuleError, MAX_LIST, MAX_PATTERN, MAX_REGEX_PROGRAM};
pub use glob::Glob;
pub use rule::{compile_regex, Artifact, ArtifactKind, Rule, RuleKind, MAX_REGEX_SCAN};
pub use services::{service_catalogue, Entry, FieldTest, Service, ServiceCatalogue, TopicPattern};
