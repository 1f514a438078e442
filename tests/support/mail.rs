//! Mail that the SES v2 emulator (moto) recorded, read from its state API.

use std::time::Duration;

use mail_parser::MessageParser;
use serde_json::Value;

/// One sent mail as moto records it.
#[derive(Clone, Debug)]
pub struct SentMail {
    pub id: String,
    pub source: String,
    pub destinations: Vec<String>,
    /// The raw MIME message.
    pub raw: String,
}

/// Every raw mail the emulator has recorded (all tests share it: filter by a unique token).
pub async fn sent_mail() -> Vec<SentMail> {
    let endpoint = std::env::var("AWS_ENDPOINT_URL_SESV2")
        .unwrap_or_else(|_| fmn_aws::config::LOCAL_SESV2_ENDPOINT.to_string());
    let state: Value = reqwest::get(format!("{endpoint}/moto-api/data.json"))
        .await
        .expect("reading moto's state")
        .json()
        .await
        .expect("moto's state is JSON");
    state["ses"]["RawMessage"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| SentMail {
            id: m["id"].as_str().unwrap_or_default().to_string(),
            source: m["source"].as_str().unwrap_or_default().to_string(),
            destinations: m["destinations"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|d| d.as_str().map(str::to_string))
                .collect(),
            raw: m["raw_data"].as_str().unwrap_or_default().to_string(),
        })
        .collect()
}

/// The mail recorded for `address` (one of its recipients), oldest first.
pub async fn mail_to(address: &str) -> Vec<SentMail> {
    let mut all = sent_mail().await;
    all.retain(|m| m.destinations.iter().any(|d| d == address));
    all
}

/// The token of the confirmation link in the newest mail to `address`, waiting up to `timeout`
/// for one.
pub async fn confirmation_token(address: &str, timeout: Duration) -> String {
    let what = format!("a confirmation mail to {address}");
    crate::eventually(&what, timeout, || async {
        let mail = mail_to(address).await.pop()?;
        let parsed = MessageParser::default().parse(mail.raw.as_bytes())?;
        let text = parsed.body_text(0)?.to_string();
        let at = text.find("/confirm/")? + "/confirm/".len();
        let token: String = text[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect();
        (!token.is_empty()).then_some(token)
    })
    .await
}

/// The unsubscribe secret of [`mail_settings`], for checking the tokens its mail carries.
pub const UNSUBSCRIBE_SECRET: &[u8] = b"test-unsubscribe-secret";

/// Mail settings for a test: the default (verified) sender, a local public URL and a known
/// unsubscribe secret; the sender is verified on the emulator.
pub async fn mail_settings(env: &crate::TestEnv) -> fmn_aws::mail::MailSettings {
    let mut settings = fmn_aws::mail::MailSettings::from_env().expect("mail settings");
    settings.context.from_address = fmn_aws::mail::DEFAULT_FROM_ADDRESS.into();
    settings.context.public_url = "http://127.0.0.1:8080".into();
    settings.context.unsubscribe_secret = UNSUBSCRIBE_SECRET.to_vec();
    fmn_aws::ses::ensure_email_identity(&env.clients.sesv2, &settings.context.from_address)
        .await
        .expect("verifying the sender on the emulator");
    settings
}

/// deliver-email with `settings`, running on `env`'s email queue until the token is cancelled.
pub async fn start_deliver_email(
    env: &crate::TestEnv,
    settings: fmn_aws::mail::MailSettings,
) -> (
    tokio_util::sync::CancellationToken,
    std::sync::Arc<fmn_local::stats::FunctionStats>,
) {
    let handler = fmn_deliver_email::DeliverEmailHandler::with_settings(&env.clients, settings)
        .await
        .expect("deliver-email");
    crate::start_function(
        env,
        fmn_aws::FunctionName::DeliverEmail,
        std::sync::Arc::new(handler),
    )
}

/// The bus messages a recorded mail notifies of: its `X-Fedmsg-Id`, or a burst's
/// `X-Fmn-Burst-Ids` (`fmn_core::render::digest::BURST_IDS_HEADER`).
pub fn notified_ids(mail: &SentMail) -> Vec<String> {
    let Some(parsed) = MessageParser::default().parse(mail.raw.as_bytes()) else {
        return Vec::new();
    };
    ["X-Fedmsg-Id", fmn_core::render::digest::BURST_IDS_HEADER]
        .into_iter()
        .filter_map(|name| parsed.header_raw(name))
        .flat_map(str::split_whitespace)
        .map(str::to_string)
        .collect()
}

/// The `X-Fedmsg-Id` header of a recorded mail.
pub fn fedmsg_id(mail: &SentMail) -> Option<String> {
    let parsed = MessageParser::default().parse(mail.raw.as_bytes())?;
    parsed
        .header_raw("X-Fedmsg-Id")
        .map(|v| v.trim().to_string())
}
