//! Message metadata: who and what a bus message is about.
//!
//! [`Registry::extract`] finds the [`Processor`] registered for the message's service (the
//! fourth label of its topic) and lets it fill a [`Metadata`]. Processors live one per
//! service in [`processors`]; adding a service is one small file plus one line in
//! [`processors::all`].
//!
//! A message that names its fedora-messaging schema (the `fedora_messaging_schema` header,
//! whichever bus brought it) is described by that schema instead: the schema layer
//! (`schemas`, one module per schema package) computes what the Python class does (`app_name`,
//! `agent_name`, `summary` as the subtitle, `__str__` as [`Metadata::long_text`], `url` as the
//! link, the user, group and artifact lists) and takes the severity from the
//! `fedora_messaging_severity` header.
//!
//! ```
//! use fmn_core::message::Envelope;
//! use fmn_core::meta::Registry;
//! let env = Envelope::from_json(r#"{"topic": "org.fedoraproject.prod.fas.user.create",
//!     "msg": {"agent": "ralph", "user": "bob"}}"#).unwrap();
//! let meta = Registry::default().extract(&env);
//! assert_eq!(meta.title, "fas.user.create");
//! assert_eq!(meta.subtitle.as_deref(), Some("New FAS account:  'bob'  (created by 'ralph')"));
//! assert!(meta.usernames.contains("bob"));
//! ```

mod aliases;
mod ctx;
pub mod processors;
mod py;
mod schemas;

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::message::Envelope;

pub use aliases::Aliases;
pub use ctx::Ctx;

/// How important a message is (FMN 3.x severities). No Fedora service sets one, so
/// processors default to [`Severity::Info`].
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Debugging chatter.
    Debug,
    /// The normal case.
    #[default]
    Info,
    /// Something may need attention.
    Warning,
    /// Something failed.
    Error,
}

impl Severity {
    /// fedora-messaging's numeric level: 10 debug, 20 info, 30 warning, 40 error.
    pub fn level(self) -> u8 {
        match self {
            Self::Debug => 10,
            Self::Info => 20,
            Self::Warning => 30,
            Self::Error => 40,
        }
    }

    /// The severity of a fedora-messaging numeric level, if it is one.
    pub fn from_level(level: f64) -> Option<Self> {
        [Self::Debug, Self::Info, Self::Warning, Self::Error]
            .into_iter()
            .find(|s| f64::from(s.level()) == level)
    }

    /// `debug`, `info`, `warning` or `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Debug => "debug",
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Error => "error",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a message is about. Lists are sorted and free of duplicates.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// The application that sent the message (`bodhi`, `koji`, `pagure`…).
    pub app: String,
    /// The user who caused the message, when known.
    pub agent: Option<String>,
    /// Every user (account name) the message concerns, the agent included.
    pub usernames: BTreeSet<String>,
    /// Every package (source package name) the message concerns.
    pub packages: BTreeSet<String>,
    /// Groups the message concerns, where the service says.
    pub groups: BTreeSet<String>,
    /// Container repositories the message concerns.
    pub containers: BTreeSet<String>,
    /// Modules the message concerns.
    pub modules: BTreeSet<String>,
    /// Flatpaks the message concerns.
    pub flatpaks: BTreeSet<String>,
    /// Service and event, e.g. `bodhi.update.comment`.
    pub title: String,
    /// One-line summary.
    pub subtitle: Option<String>,
    /// Where to read more.
    pub link: Option<String>,
    /// How important the message is.
    pub severity: Severity,
    /// The long, human-readable text of the message (a fedora-messaging schema's `__str__`,
    /// what FMN 3.x mailed), when the schema layer gives one.
    #[serde(default)]
    pub long_text: Option<String>,
}

impl Metadata {
    /// Adds a user name (ignoring empty ones).
    pub fn user(&mut self, name: impl Into<String>) {
        let name = name.into();
        if !name.is_empty() {
            self.usernames.insert(name);
        }
    }

    /// Adds a package name (ignoring empty ones).
    pub fn package(&mut self, name: impl Into<String>) {
        let name = name.into();
        if !name.is_empty() {
            self.packages.insert(name);
        }
    }

    /// Sets the agent and adds it to the user names.
    pub fn set_agent(&mut self, name: impl Into<String>) {
        let name = name.into();
        if !name.is_empty() {
            self.usernames.insert(name.clone());
            self.agent = Some(name);
        }
    }
}

/// Extracts [`Metadata`] for the messages of one service.
///
/// Implementations are stateless and read the message through [`Ctx`]. Missing or oddly
/// typed fields never panic: the processor just leaves that piece of metadata out.
pub trait Processor: Send + Sync {
    /// The topic service labels (fourth label of the topic) this processor handles.
    fn services(&self) -> &'static [&'static str];

    /// The application name reported in [`Metadata::app`].
    fn app(&self) -> &'static str;

    /// Fills `out`, which arrives with `title`, `app` and `severity` set.
    fn extract(&self, m: &Ctx<'_>, out: &mut Metadata);
}

/// The processors by service, and the alias map they resolve user names with.
pub struct Registry {
    by_service: HashMap<&'static str, Arc<dyn Processor>>,
    aliases: Aliases,
}

impl Default for Registry {
    /// Every built-in processor, no aliases.
    fn default() -> Self {
        let mut registry = Self::empty();
        for processor in processors::all() {
            registry.register(processor);
        }
        registry
    }
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut services: Vec<_> = self.by_service.keys().collect();
        services.sort();
        f.debug_struct("Registry")
            .field("services", &services)
            .field("aliases", &self.aliases)
            .finish()
    }
}

impl Registry {
    /// A registry without processors: every message gets only its title and app.
    pub fn empty() -> Self {
        Self {
            by_service: HashMap::new(),
            aliases: Aliases::default(),
        }
    }

    /// Uses `aliases` to turn IRC nicknames and e-mail addresses into account names.
    pub fn with_aliases(mut self, aliases: Aliases) -> Self {
        self.aliases = aliases;
        self
    }

    /// The alias map in use.
    pub fn aliases(&self) -> &Aliases {
        &self.aliases
    }

    /// Registers `processor` for its services, replacing any earlier one.
    pub fn register(&mut self, processor: Box<dyn Processor>) {
        let processor: Arc<dyn Processor> = processor.into();
        for service in processor.services() {
            self.by_service.insert(service, processor.clone());
        }
    }

    /// The processor for a service label, if any.
    pub fn processor(&self, service: &str) -> Option<&dyn Processor> {
        self.by_service.get(service).map(|p| &**p)
    }

    /// The services with a processor, sorted.
    pub fn services(&self) -> Vec<&'static str> {
        let mut services: Vec<_> = self.by_service.keys().copied().collect();
        services.sort_unstable();
        services
    }

    /// Extracts the metadata of a message.
    pub fn extract(&self, envelope: &Envelope) -> Metadata {
        let topic = envelope.topic();
        let service = topic.service();
        let processor = self.processor(service);
        let mut out = Metadata {
            app: processor.map_or(service, |p| p.app()).to_owned(),
            title: topic.title().to_owned(),
            ..Metadata::default()
        };
        let ctx = Ctx::new(envelope, &self.aliases);
        // A message naming its fedora-messaging schema is described by that schema, whichever
        // bus it came over.
        if let Some(schema) = schemas::schema_name(&ctx) {
            schemas::extract(schema, &ctx, &mut out);
            return out;
        }
        if let Some(processor) = processor {
            processor.extract(&ctx, &mut out);
        }
        if out.agent.is_none() {
            if let Some(agent) = ctx.str("agent") {
                if !agent.is_empty() {
                    out.agent = Some(agent.to_owned());
                }
            }
        }
        out
    }
}
