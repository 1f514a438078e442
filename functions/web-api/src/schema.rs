//! The API's documents as the OpenAPI document describes them: `fmn-core`'s types as the API
//! serialises them (`*Doc`, schema only), and the API's own small input types.

#![allow(dead_code)] // schema-only types

use fmn_core::prefs::limits;
use fmn_core::prefs::{Destination, DestinationKind, Filter};
use fmn_core::rules::{catalog, ArgKind, ArtifactKind, MAX_LIST, MAX_PATTERN};
use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{
    AdditionalProperties, AllOfBuilder, AnyOfBuilder, ArrayBuilder, ObjectBuilder, OneOfBuilder,
    Ref, Schema, SchemaFormat, Type,
};
use utoipa::openapi::RefOr;
use utoipa::ToSchema;

/// `email`, `irc` or `matrix`.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Email,
    Irc,
    Matrix,
}

impl From<DestinationKind> for Kind {
    fn from(k: DestinationKind) -> Self {
        match k {
            DestinationKind::Email => Kind::Email,
            DestinationKind::Irc => Kind::Irc,
            DestinationKind::Matrix => Kind::Matrix,
        }
    }
}

impl From<Kind> for DestinationKind {
    fn from(k: Kind) -> Self {
        match k {
            Kind::Email => DestinationKind::Email,
            Kind::Irc => DestinationKind::Irc,
            Kind::Matrix => DestinationKind::Matrix,
        }
    }
}

/// A string schema with `pattern`: the attribute form takes only literals, and these are
/// shared by several documents.
fn pattern_schema(pattern: &str, max_length: usize, description: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(max_length))
        .pattern(Some(pattern))
        .description(Some(description))
        .into()
}

/// Declares a schema-only string type with `pattern` (what `fmn_core::prefs` accepts), so
/// generated input (schemathesis, clients) can be valid.
macro_rules! pattern_type {
    ($name:ident, $description:literal, $pattern:literal, $max:literal) => {
        #[doc = $description]
        pub struct $name;

        impl utoipa::PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                pattern_schema($pattern, $max, $description)
            }
        }

        impl ToSchema for $name {}
    };
}

pattern_type!(
    EmailDoc,
    "A plain `local@domain` address (`validate_email`).",
    r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$",
    254
);
pattern_type!(
    NickDoc,
    "An IRC nick: RFC 2812 characters, not starting with a digit or `-`; network services' nicks (NickServ, any ending in `serv`) are refused (`validate_nick`).",
    r"^[A-Za-z\[\]\\`_^{|}][A-Za-z0-9\[\]\\`_^{|}-]{0,31}$",
    32
);
pattern_type!(
    MatrixIdDoc,
    "A Matrix user id, `@name:server` (`fmn_core::matrix::validate_user_id`).",
    r"^@[a-z0-9._=/+-]+:[A-Za-z0-9.:\[\]-]+$",
    255
);
pattern_type!(
    NewMatrixIdDoc,
    "A Matrix user id `@name:server`, or a Fedora account name (`name` is `@name:fedora.im`); the name is lower-cased (`fmn_core::matrix::normalize_user_id`).",
    r"^@?[A-Za-z0-9._=/+-]+(:[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*(:[0-9]{1,5})?)?$",
    255
);
pattern_type!(
    IdDoc,
    "A destination or filter id (`validate_id`).",
    "^[A-Za-z0-9_-]+$",
    64
);
pattern_type!(
    FilterNameDoc,
    "A filter's name: not blank, no control characters (`validate_name`).",
    r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$",
    64
);

pattern_type!(
    LocalTimeDoc,
    "A time of day, `HH:MM` (24-hour), in the user's time zone.",
    r"^([01][0-9]|2[0-3]):[0-5][0-9]$",
    5
);
pattern_type!(
    TimeZoneDoc,
    "An IANA time zone name such as `Europe/Prague` (one the tz database knows; others are refused).",
    r"^[A-Za-z0-9_+./-]+$",
    64
);

/// Local hours (in the user's time zone) during which immediate notifications are held and
/// sent together when they end; severity error and urgent filters go through. `from` after
/// `to` wraps midnight.
#[derive(ToSchema)]
pub struct QuietHoursDoc {
    #[schema(value_type = LocalTimeDoc)]
    from: String,
    #[schema(value_type = LocalTimeDoc)]
    to: String,
}

/// When a scheduled digest goes out, in the user's time zone: every day, or every week on a
/// day, at a local time.
pub struct ScheduleDoc;

impl utoipa::PartialSchema for ScheduleDoc {
    fn schema() -> RefOr<Schema> {
        let every = |what: &str| {
            ObjectBuilder::new()
                .schema_type(Type::Object)
                .property(
                    "every",
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .enum_values(Some([what])),
                )
                .property("at", Ref::from_schema_name(LocalTimeDoc::name()))
                .required("every")
                .required("at")
                .additional_properties(Some(AdditionalProperties::FreeForm(false)))
        };
        let weekdays = fmn_core::schedule::Weekday::ALL.map(|d| {
            serde_json::to_value(d)
                .expect("weekdays serialise")
                .as_str()
                .expect("as strings")
                .to_string()
        });
        OneOfBuilder::new()
            .item(every("day"))
            .item(
                every("week")
                    .property(
                        "on",
                        ObjectBuilder::new()
                            .schema_type(Type::String)
                            .enum_values(Some(weekdays)),
                    )
                    .required("on"),
            )
            .description(Some(
                "`{\"every\": \"day\", \"at\": \"08:00\"}` or `{\"every\": \"week\", \"on\": \"monday\", \"at\": \"08:00\"}`",
            ))
            .into()
    }
}

impl ToSchema for ScheduleDoc {}

/// A name in a rule's argument (user, package, group, application): no spaces, commas or
/// control characters, at most 128 bytes (`Rule::validate`).
const RULE_NAME_PATTERN: &str = r"^[^\s,\x00-\x1f\x7f-\x9f]+$";

/// How a destination receives: `immediate`, or a `digest` sent when the oldest item waited
/// `batch_delta` seconds (60..604800) or `batch_count` items (1..1000) are pending (at least
/// one of them). IRC destinations are immediate. Written out by hand: the derive cannot say
/// "at least one of" (and utoipa 5.5's `min_properties` attribute emits `maxProperties`).
pub struct DeliveryDoc;

fn delivery_mode(mode: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .property(
            "mode",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some([mode])),
        )
        .required("mode")
}

/// An IRC destination's delivery: `immediate` only (`validate` refuses digests on IRC).
pub struct ImmediateDoc;

impl utoipa::PartialSchema for ImmediateDoc {
    fn schema() -> RefOr<Schema> {
        delivery_mode("immediate")
            .description(Some("IRC destinations are delivered immediately"))
            .into()
    }
}

impl ToSchema for ImmediateDoc {}

impl utoipa::PartialSchema for DeliveryDoc {
    fn schema() -> RefOr<Schema> {
        let bounded = |min: u64, max: u64| {
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(min))
                .maximum(Some(max))
        };
        let immediate = delivery_mode("immediate");
        let digest = delivery_mode("digest")
            .property(
                "batch_delta",
                bounded(limits::MIN_BATCH_DELTA, limits::MAX_BATCH_DELTA),
            )
            .property(
                "batch_count",
                bounded(1, u64::from(limits::MAX_BATCH_COUNT)),
            )
            .property("schedule", Ref::from_schema_name(ScheduleDoc::name()));
        let either = |field: &str| {
            ObjectBuilder::new()
                .schema_type(Type::Object)
                .required(field)
        };
        let digest = AllOfBuilder::new().item(digest).item(
            AnyOfBuilder::new()
                .item(either("batch_delta"))
                .item(either("batch_count"))
                .item(either("schedule")),
        );
        OneOfBuilder::new()
            .item(immediate)
            .item(digest)
            .description(Some(
                "`immediate`, or a `digest` sent when the oldest item waited `batch_delta` \
                 seconds, `batch_count` items are pending or the `schedule` comes round in the \
                 user's time zone, whichever first (at least one of them); IRC destinations \
                 are immediate; Matrix destinations may be digests too (one message)",
            ))
            .into()
    }
}

impl ToSchema for DeliveryDoc {}

/// Where notifications go: an e-mail address, an IRC nick or a Matrix user id.
#[derive(ToSchema)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum DestinationDoc {
    Email {
        #[schema(value_type = IdDoc)]
        id: String,
        #[schema(value_type = EmailDoc)]
        address: String,
        /// Only confirmed destinations receive anything.
        confirmed: bool,
        delivery: DeliveryDoc,
        irc_colour: bool,
        verbose: bool,
        health: Option<HealthDoc>,
        quiet_hours: Option<QuietHoursDoc>,
        /// Paused by its owner (absent: false): receives nothing until resumed.
        paused: Option<bool>,
        /// Who vouched for the address instead of a confirmation message (`fas`: it is the
        /// account's FAS e-mail); absent: confirmed by its owner, or not yet.
        #[schema(inline)]
        verified_by: Option<VerifierDoc>,
    },
    Irc {
        #[schema(value_type = IdDoc)]
        id: String,
        #[schema(value_type = NickDoc)]
        address: String,
        /// Only confirmed destinations receive anything.
        confirmed: bool,
        #[schema(value_type = ImmediateDoc)]
        delivery: DeliveryDoc,
        irc_colour: bool,
        verbose: bool,
        health: Option<HealthDoc>,
        quiet_hours: Option<QuietHoursDoc>,
        /// Paused by its owner (absent: false): receives nothing until resumed.
        paused: Option<bool>,
    },
    Matrix {
        #[schema(value_type = IdDoc)]
        id: String,
        #[schema(value_type = MatrixIdDoc)]
        address: String,
        /// Only confirmed destinations receive anything.
        confirmed: bool,
        delivery: DeliveryDoc,
        irc_colour: bool,
        verbose: bool,
        health: Option<HealthDoc>,
        quiet_hours: Option<QuietHoursDoc>,
    },
}

/// Who vouched for a destination's address.
#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum VerifierDoc {
    /// Fedora's account system: the account's FAS e-mail.
    Fas,
}

/// What delivery has shown about a destination (absent: nothing). A `stopped` destination
/// receives nothing until it is resumed (`PATCH` with `"resume": true`).
#[derive(ToSchema)]
pub struct HealthDoc {
    stopped: Option<StoppedDoc>,
    /// Temporary bounces since the last delivery.
    soft_bounces: Option<u32>,
    /// Since when deliveries have been given up (Unix seconds).
    failing_since: Option<i64>,
    last_problem: Option<ProblemDoc>,
}

/// Why and when delivery was stopped.
#[derive(ToSchema)]
pub struct StoppedDoc {
    #[schema(inline)]
    cause: StopCauseDoc,
    reason: String,
    /// Unix seconds.
    at: i64,
}

#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StopCauseDoc {
    HardBounce,
    Complaint,
    SoftBounces,
    Failing,
}

/// The last problem seen.
#[derive(ToSchema)]
pub struct ProblemDoc {
    reason: String,
    /// Unix seconds.
    at: i64,
}

/// A destination to add (`POST /me/destinations`), one alternative per kind. Written out by
/// hand: utoipa does not carry `deny_unknown_fields` into an enum's variants, and the handler
/// refuses unknown fields.
pub struct NewDestinationDoc;

impl utoipa::PartialSchema for NewDestinationDoc {
    fn schema() -> RefOr<Schema> {
        // A chat destination's address may be left out: the caller's own, from FAS
        // (`suggested_addresses` of `/api/v1/me`).
        let variant = |kind: &str, address: RefOr<Schema>, delivery: Ref| {
            let object = ObjectBuilder::new()
                .schema_type(Type::Object)
                .property(
                    "kind",
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .enum_values(Some([kind])),
                )
                .property("address", address)
                .property("delivery", delivery)
                .property(
                    "irc_colour",
                    ObjectBuilder::new().schema_type(Type::Boolean),
                )
                .property("verbose", ObjectBuilder::new().schema_type(Type::Boolean))
                .property("quiet_hours", Ref::from_schema_name(QuietHoursDoc::name()))
                .required("kind")
                .additional_properties(Some(AdditionalProperties::FreeForm(false)));
            if kind == "email" {
                object.required("address")
            } else {
                object
            }
        };
        OneOfBuilder::new()
            .item(variant(
                "email",
                Ref::from_schema_name(EmailDoc::name()).into(),
                Ref::from_schema_name(DeliveryDoc::name()),
            ))
            .item(variant(
                "irc",
                Ref::from_schema_name(NickDoc::name()).into(),
                Ref::from_schema_name(ImmediateDoc::name()),
            ))
            .item(variant(
                "matrix",
                Ref::from_schema_name(NewMatrixIdDoc::name()).into(),
                Ref::from_schema_name(DeliveryDoc::name()),
            ))
            .description(Some(
                "A destination to add; it is confirmed by a link sent to it",
            ))
            .into()
    }
}

impl ToSchema for NewDestinationDoc {}

/// A rule: `kind` (see `/api/v1/rules`), its arguments, and `negated`. The schema is built
/// from the rule catalogue (`fmn_core::rules::catalog`), one alternative per kind.
pub struct RuleDoc;

impl utoipa::PartialSchema for RuleDoc {
    fn schema() -> RefOr<Schema> {
        let mut one_of = OneOfBuilder::new();
        for info in catalog() {
            let mut rule = ObjectBuilder::new()
                .schema_type(Type::Object)
                .description(Some(info.title))
                .property(
                    "kind",
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .enum_values(Some([info.kind])),
                )
                .required("kind")
                .property("negated", ObjectBuilder::new().schema_type(Type::Boolean));
            for arg in &info.args {
                rule = rule.property(arg.name, arg_schema(arg.kind, arg.required));
                if arg.required {
                    rule = rule.required(arg.name);
                }
            }
            one_of = one_of.item(rule);
        }
        one_of.into()
    }
}

impl ToSchema for RuleDoc {}

/// A rule argument's schema, as `Rule::validate` checks it.
fn arg_schema(kind: ArgKind, required: bool) -> Schema {
    let name = || {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .max_length(Some(128))
            .pattern(Some(RULE_NAME_PATTERN))
    };
    // Optional lists (`artifacts-owned`'s users) may be empty: "the filter's owner".
    let list = |items: ObjectBuilder| {
        Schema::Array(
            ArrayBuilder::new()
                .items(items)
                .min_items(Some(usize::from(required)))
                .max_items(Some(MAX_LIST))
                .build(),
        )
    };
    match kind {
        ArgKind::Username | ArgKind::Group => name().into(),
        ArgKind::Usernames | ArgKind::Packages | ArgKind::Groups | ArgKind::Applications => {
            list(name())
        }
        ArgKind::Artifacts => list(
            ObjectBuilder::new()
                .schema_type(Type::Object)
                .property(
                    "type",
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .enum_values(Some(ArtifactKind::ALL.map(ArtifactKind::as_str))),
                )
                .property("name", name())
                .required("type")
                .required("name"),
        ),
        ArgKind::Severities => list(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(["debug", "info", "warning", "error"])),
        ),
        ArgKind::Regex => ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::Custom("regex".into())))
            .min_length(Some(1))
            .max_length(Some(MAX_PATTERN))
            .into(),
        ArgKind::TopicGlob => ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .max_length(Some(MAX_PATTERN))
            .into(),
        ArgKind::CatalogueEntry => ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(
                fmn_core::rules::service_catalogue()
                    .entries()
                    .map(|(_, e)| e.id.clone()),
            ))
            .into(),
        ArgKind::Values => list(name()),
    }
}

/// A named set of rules (all must hold) feeding destinations.
#[derive(ToSchema)]
pub struct FilterDoc {
    #[schema(value_type = IdDoc)]
    id: String,
    #[schema(value_type = FilterNameDoc)]
    name: String,
    enabled: bool,
    oneshot: bool,
    /// Ids of the caller's destinations.
    #[schema(value_type = Vec<IdDoc>)]
    destinations: Vec<String>,
    #[schema(max_items = 60)]
    rules: Vec<RuleDoc>,
    /// Goes through quiet hours (absent: false).
    #[serde(default)]
    urgent: bool,
    /// At most this many immediate notifications an hour; the rest of the hour's matches
    /// wait for the next digest.
    #[schema(minimum = 1, maximum = 1000)]
    max_per_hour: Option<u32>,
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
    /// The user's IANA time zone (absent: UTC).
    #[schema(value_type = Option<TimeZoneDoc>)]
    time_zone: Option<String>,
}

/// The caller's preferences and whether the caller is an admin.
#[derive(ToSchema)]
pub struct MeDoc {
    #[serde(flatten)]
    prefs: PrefsDoc,
    admin: bool,
    suggested_addresses: SuggestedAddressesDoc,
}

/// What a new destination of each kind starts from, from the caller's FAS account: a chat
/// destination added without an address gets it.
#[derive(ToSchema)]
pub struct SuggestedAddressesDoc {
    /// The first FAS e-mail address.
    email: Option<String>,
    /// The first IRC nick in FAS.
    irc: Option<String>,
    /// The first Matrix id in FAS, else `@<account>:fedora.im`.
    matrix: String,
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

#[cfg(test)]
mod tests {
    use fmn_core::prefs::{validate_email, validate_nick, Filter, UserPrefs};
    use fmn_core::rules::{Rule, RuleKind};
    use serde_json::Value;
    use utoipa::PartialSchema;

    use super::*;

    fn json(schema: RefOr<Schema>) -> Value {
        serde_json::to_value(schema).unwrap()
    }

    /// Whether `value` fits the string schema: pattern and length in characters.
    fn fits(schema: &Value, value: &str) -> bool {
        let pattern = regex::Regex::new(schema["pattern"].as_str().unwrap()).unwrap();
        let len = value.chars().count() as u64;
        pattern.is_match(value)
            && schema["minLength"].as_u64().is_none_or(|m| len >= m)
            && schema["maxLength"].as_u64().is_none_or(|m| len <= m)
    }

    /// A value the schema documents as valid must pass the API's own check, or generated
    /// "valid" input is refused; the examples must be documented as valid.
    fn agree(
        schema: RefOr<Schema>,
        valid: &[&str],
        samples: &[&str],
        check: impl Fn(&str) -> bool,
    ) {
        let schema = json(schema);
        for v in valid {
            assert!(fits(&schema, v) && check(v), "`{v}` should be valid");
        }
        for s in samples.iter().chain(valid) {
            assert!(
                !fits(&schema, s) || check(s),
                "`{s}` fits the schema but is refused"
            );
        }
    }

    #[test]
    fn email_pattern_accepts_only_addresses() {
        agree(
            EmailDoc::schema(),
            &["kalev@example.org", "a.b+c@mail.example-x.org", "x_y@a1.b2"],
            &[
                "",
                "kalev",
                "@example.org",
                "a@b",
                "a@-b.org",
                "a@b-.org",
                "a@b..org",
                ".a@b.org",
                "a.@b.org",
                "a..b@b.org",
                "a b@b.org",
                "a@b.org\r\nBcc: c@d.org",
                "a,b@c.org",
                "a@b.org>",
                "<a@b.org>",
                "a@b_c.org",
                "a@@b.org",
            ],
            |s| validate_email("address", s).is_ok(),
        );
    }

    #[test]
    fn nick_pattern_accepts_only_nicks() {
        agree(
            NickDoc::schema(),
            &["kalev", "[m]ary", "a-b_c^d", "\\`x|y{z}"],
            &[
                "",
                "1abc",
                "-abc",
                "a b",
                "a,b",
                "a\nb",
                "ä",
                &"a".repeat(33),
                "x:y",
            ],
            |s| validate_nick("address", s).is_ok(),
        );
    }

    /// Ids and filter names, through `UserPrefs::validate` (their checks are private to it).
    #[test]
    fn id_and_filter_name_patterns_accept_only_what_validate_does() {
        let with_filter = |id: &str, name: &str| {
            let mut p = UserPrefs::new("kalev");
            p.filters
                .push(Filter::new(id.into(), name.into(), vec![], vec![]));
            p.validate().is_ok()
        };
        agree(
            IdDoc::schema(),
            &["filter-3", "email_1", "A"],
            &["", "a b", "a.b", "a/b", &"a".repeat(65), "é"],
            |s| with_filter(s, "name"),
        );
        agree(
            FilterNameDoc::schema(),
            &["My builds", " x ", "é", "日本"],
            &[
                "",
                " ",
                "\t",
                "a\nb",
                "a\u{7f}",
                "a\u{85}b",
                &"é".repeat(65),
            ],
            |s| with_filter("f", s),
        );
    }

    #[test]
    fn rule_name_pattern_accepts_only_names() {
        let rules = json(RuleDoc::schema());
        let user = rules["oneOf"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["properties"]["kind"]["enum"][0] == "user")
            .unwrap();
        let name = &user["properties"]["users"]["items"];
        let check = |s: &str| {
            Rule::new(RuleKind::User {
                users: vec![s.into()],
            })
            .validate()
            .is_ok()
        };
        for v in ["ralph", "python-sig", "a.b_c"] {
            assert!(fits(name, v) && check(v), "`{v}`");
        }
        for s in ["", "a b", "a,b", "a\tb", "a\u{0}", &"a".repeat(129)] {
            assert!(
                !fits(name, s) || check(s),
                "`{s}` fits the schema but is refused"
            );
        }
    }

    /// One alternative per catalogue kind; every example rule carries its alternative's
    /// required fields and only fields it describes.
    #[test]
    fn rule_schema_covers_the_catalogue() {
        let schema = json(RuleDoc::schema());
        let alternatives = schema["oneOf"].as_array().unwrap();
        assert_eq!(alternatives.len(), catalog().len());
        for kind in fmn_core::rules::examples() {
            let rule = serde_json::to_value(Rule::new(kind)).unwrap();
            let alt = alternatives
                .iter()
                .find(|a| a["properties"]["kind"]["enum"][0] == rule["kind"])
                .unwrap_or_else(|| panic!("no alternative for {rule}"));
            for required in alt["required"].as_array().unwrap() {
                assert!(
                    rule.get(required.as_str().unwrap()).is_some(),
                    "{rule} lacks {required}"
                );
            }
            for field in rule.as_object().unwrap().keys() {
                assert!(
                    alt["properties"].get(field).is_some(),
                    "{rule}: `{field}` undocumented"
                );
            }
        }
    }
}
