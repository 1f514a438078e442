//! Bus messages: the fedmsg envelope and its topic.
//!
//! ```
//! use fmn_core::message::Envelope;
//! let env = Envelope::from_json(
//!     r#"{"topic": "org.fedoraproject.prod.bodhi.update.comment", "msg": {}}"#,
//! ).unwrap();
//! assert_eq!(env.topic().service(), "bodhi");
//! assert_eq!(env.msg_id().len(), 64 + "sha256:".len());
//! ```

mod envelope;
mod topic;

pub use envelope::{Envelope, EnvelopeError};
pub use topic::{Environment, Topic, TopicError};
