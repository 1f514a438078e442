//! Bus messages: the envelope (fedmsg or fedora-messaging) and its topic.
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

pub(crate) use envelope::{parse_iso8601, IsoTime};
pub use envelope::{Envelope, EnvelopeError, Origin, MAX_MSG_ID_LEN};
pub use topic::{Environment, Topic, TopicError};
