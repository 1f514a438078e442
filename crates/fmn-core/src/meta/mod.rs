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
mod model;
pub mod processors;
mod py;
mod schemas;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use crate::message::Envelope;

pub use aliases::Aliases;
pub use ctx::Ctx;
pub use model::{Metadata, Processor, Severity};

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
            out.long_text = processor.long_form(&ctx, &out);
        }
        if out.agent.is_none() {
            if let Some(agent) = ctx.str("agent") {
                if !agent.is_empty() {
                    out.agent = Some(agent.to_owned());
                }
            }
        }
        // The agent is one of the message's users (see `Metadata::usernames`), even when the
        // part that would have listed it (a meeting's attendees, say) is missing or damaged.
        if let Some(agent) = &out.agent {
            if !out.usernames.contains(agent) {
                out.usernames.insert(agent.clone());
            }
        }
        out
    }
}
