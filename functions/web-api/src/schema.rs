//! The API's documents as the OpenAPI document describes them: `fmn-core`'s types as the API
//! serialises them (`*Doc`, schema only), and the API's own small input types.

#![allow(dead_code)] // schema-only types

use fmn_core::prefs::{Destination, DestinationKind, Filter};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `email` or `irc`.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Email,
    Irc,
}

impl From<Kind> for DestinationKind {
    fn from(k: Kind) -> Self {
        match k {
            Kind::Email => DestinationKind::Email,
            Kind::Irc => DestinationKind::Irc,
        }
    }
}

/// How a destination receives: `immediate`, or a `digest` sent when the oldest item waited
/// `batch_delta` seconds (60..604800) or `batch_count` items (1..1000) are pending.
#[derive(ToSchema)]
#[serde(tag = "mode", rename_all = "lowercase")]
pub enum DeliveryDoc {
    Immediate,
    Digest {
        batch_delta: Option<u64>,
        batch_count: Option<u32>,
    },
}

/// Where notifications go.
#[derive(ToSchema)]
pub struct DestinationDoc {
    #[schema(example = "email-1")]
    id: String,
    kind: Kind,
    address: String,
    /// Only confirmed destinations receive anything.
    confirmed: bool,
    delivery: DeliveryDoc,
    irc_colour: bool,
    verbose: bool,
}

/// A rule: `kind` (see `/api/v1/rules`), its arguments, and `negated`.
#[derive(ToSchema)]
pub struct RuleDoc {
    #[schema(example = "package")]
    kind: String,
    negated: Option<bool>,
}

/// A named set of rules (all must hold) feeding destinations.
#[derive(ToSchema)]
pub struct FilterDoc {
    #[schema(example = "filter-3")]
    id: String,
    name: String,
    enabled: bool,
    oneshot: bool,
    destinations: Vec<String>,
    rules: Vec<RuleDoc>,
}

/// A user's whole preferences.
#[derive(ToSchema)]
pub struct PrefsDoc {
    name: String,
    enabled: bool,
    bot: bool,
    destinations: Vec<DestinationDoc>,
    filters: Vec<FilterDoc>,
    /// Bumped by every write.
    version: u64,
}

/// The caller's preferences and whether the caller is an admin.
#[derive(ToSchema)]
pub struct MeDoc {
    #[serde(flatten)]
    prefs: PrefsDoc,
    admin: bool,
}

/// Preferences to import: destinations and filters (other fields of an export are ignored:
/// the account's name, state and version are the store's).
#[derive(Debug, Deserialize, ToSchema)]
pub struct ImportDoc {
    #[serde(default)]
    #[schema(value_type = Vec<DestinationDoc>)]
    pub destinations: Vec<Destination>,
    #[serde(default)]
    #[schema(value_type = Vec<FilterDoc>)]
    pub filters: Vec<Filter>,
}
