//! What metadata is: [`Metadata`], its [`Severity`], and the [`Processor`] that fills it.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::meta::ctx::Ctx;

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

    /// The long, human-readable form of the message for mail (a comment's text, a commit
    /// message with its diffstat, an update's notes and karma…), given what [`extract`] found;
    /// `None` when the message says no more than its subtitle.
    ///
    /// [`extract`]: Processor::extract
    fn long_form(&self, _m: &Ctx<'_>, _meta: &Metadata) -> Option<String> {
        None
    }
}
