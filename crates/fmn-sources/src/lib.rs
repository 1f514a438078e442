//! Clients of the Fedora services fmn copies facts from: FASJSON (accounts, their e-mails and
//! chat nicks, groups and members) and dist-git's Pagure (who maintains which artifact, group
//! members, project ACLs). Responses are read into `fmn-core` types; every failure is a typed
//! [`SourceError`] that knows its class (retryable, permanent, service-wide).

pub mod fasjson;
pub mod http;
pub mod kerberos;
pub mod pagure;

pub use fasjson::{FasGroupMember, FasJson, FasUser};
pub use http::{SourceError, SourceSettings};
pub use kerberos::{KerberosError, KerberosSettings};
pub use pagure::{Pagure, PagureGroup, PagureProject};
