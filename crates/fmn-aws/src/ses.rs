//! Sending mail through SES v2 (the API production uses; locally moto emulates it).

use aws_sdk_sesv2::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_sesv2::primitives::Blob;
use aws_sdk_sesv2::types::{Destination, EmailContent, RawMessage};

use crate::retry::{classify, Classify, ErrorClass};

#[derive(Debug, thiserror::Error)]
pub enum SesError {
    /// SES refused this mail for good (rejected address, bad content).
    #[error("SES rejected the mail: {0}")]
    Rejected(String),
    /// Throttled or unavailable: worth another try later.
    #[error("SES is unavailable: {0}")]
    Unavailable(String),
    /// SES refuses all mail until someone acts (sending paused, account suspended, sending
    /// identity not verified or gone): not this mail's fault, so it must be kept for later.
    #[error("SES is not sending any mail: {0}")]
    ServiceWide(String),
}

impl SesError {
    fn from_sdk<E>(err: aws_sdk_sesv2::error::SdkError<E>) -> Self
    where
        E: std::error::Error + ProvideErrorMetadata + 'static,
    {
        let detail = DisplayErrorContext(&err).to_string();
        match classify(&err) {
            ErrorClass::Permanent => SesError::Rejected(detail),
            ErrorClass::Retryable => SesError::Unavailable(detail),
            ErrorClass::ServiceWide => SesError::ServiceWide(detail),
        }
    }
}

impl Classify for SesError {
    fn class(&self) -> ErrorClass {
        match self {
            SesError::Rejected(_) => ErrorClass::Permanent,
            SesError::Unavailable(_) => ErrorClass::Retryable,
            SesError::ServiceWide(_) => ErrorClass::ServiceWide,
        }
    }
}

/// Sends one raw MIME message (headers and body as the caller built them) to `to`. Returns
/// the SES message id.
/// What SES is told besides the mail: the configuration set whose event destination publishes
/// what happens to it, and the tags those events carry back.
#[derive(Clone, Debug, Default)]
pub struct SendOptions {
    pub configuration_set: Option<String>,
    pub tags: Vec<(String, String)>,
}

pub async fn send_raw(
    client: &aws_sdk_sesv2::Client,
    from: &str,
    to: &[String],
    raw_mime: Vec<u8>,
    options: &SendOptions,
) -> Result<String, SesError> {
    let raw = RawMessage::builder()
        .data(Blob::new(raw_mime))
        .build()
        .map_err(|e| SesError::Rejected(e.to_string()))?;
    let out = client
        .send_email()
        .from_email_address(from)
        .destination(
            Destination::builder()
                .set_to_addresses(Some(to.to_vec()))
                .build(),
        )
        .content(EmailContent::builder().raw(raw).build())
        .set_configuration_set_name(options.configuration_set.clone())
        .set_email_tags(if options.tags.is_empty() {
            None
        } else {
            Some(
                options
                    .tags
                    .iter()
                    .map(|(name, value)| {
                        aws_sdk_sesv2::types::MessageTag::builder()
                            .name(name)
                            .value(value)
                            .build()
                            .map_err(|e| SesError::Rejected(e.to_string()))
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            )
        })
        .send()
        .await
        .map_err(SesError::from_sdk)?;
    Ok(out.message_id.unwrap_or_default())
}

/// Makes `address` a sending identity if it is not one yet. Local set-ups only: in AWS the
/// identity is verified once by an administrator (DNS or a confirmation mail).
pub async fn ensure_email_identity(
    client: &aws_sdk_sesv2::Client,
    address: &str,
) -> Result<(), SesError> {
    match client
        .create_email_identity()
        .email_identity(address)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if e.code() == Some("AlreadyExistsException") => Ok(()),
        Err(e) => Err(SesError::from_sdk(e)),
    }
}
