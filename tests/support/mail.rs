//! Mail that the SES v2 emulator (moto) recorded, read from its state API.

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
