//! Making a bus message fit in SQS. A body within SQS's limit goes as it is. A larger one is
//! gzip-compressed and base64-encoded (attribute `fmn-encoding: gzip+base64`); one still too
//! large is stored, compressed, in the recent-messages table and the SQS message is a small
//! JSON reference to it (`fmn-encoding: dynamodb`). `decode` undoes the first two, and says
//! where to fetch the third; consumers of the ingest queue use it.

use std::io::{Read, Write};

use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// Message attribute naming how the body is encoded (absent: the envelope as it is).
pub const ENCODING_ATTRIBUTE: &str = "fmn-encoding";
/// Message attribute holding the envelope's `msg_id`.
pub const MSG_ID_ATTRIBUTE: &str = "fmn-msg-id";
/// A DynamoDB item is at most 400 KB; leave room for the key and the other attributes.
pub const MAX_STORED_BYTES: usize = 380 * 1024;

/// How a body travels in SQS.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Encoding {
    /// The envelope, byte for byte.
    Plain,
    /// base64 of the gzip-compressed envelope.
    #[serde(rename = "gzip+base64")]
    GzipBase64,
    /// A `StoredRef` JSON document; the envelope (gzip) is in the recent-messages table.
    #[serde(rename = "dynamodb")]
    Stored,
}

impl Encoding {
    pub fn label(self) -> &'static str {
        match self {
            Encoding::Plain => "plain",
            Encoding::GzipBase64 => "gzip+base64",
            Encoding::Stored => "dynamodb",
        }
    }

    pub fn from_label(label: &str) -> Option<Self> {
        [Encoding::Plain, Encoding::GzipBase64, Encoding::Stored]
            .into_iter()
            .find(|e| e.label() == label)
    }
}

/// The SQS body of a stored message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredRef {
    /// The recent-messages table and the item's key (`pk`).
    pub fmn_stored_body: StoredKey,
    pub msg_id: String,
    pub topic: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredKey {
    pub table: String,
    pub pk: String,
}

/// The key under which an oversized body is stored.
pub fn stored_pk(msg_id: &str) -> String {
    format!("ingest-body#{msg_id}")
}

/// SQS counts a message's attributes (name, type, value) in its size.
pub fn attributes_size(msg_id: &str, encoding: Encoding) -> usize {
    let id = MSG_ID_ATTRIBUTE.len() + "String".len() + msg_id.len();
    let enc = match encoding {
        Encoding::Plain => 0,
        e => ENCODING_ATTRIBUTE.len() + "String".len() + e.label().len(),
    };
    id + enc
}

/// What to do with a body of this size.
#[derive(Debug, PartialEq, Eq)]
pub enum Fit {
    Plain,
    Compressed(String),
    /// Store these gzip bytes and send a reference.
    Store(Vec<u8>),
    /// Too large even for the table (compressed size given).
    TooLarge(usize),
}

/// Decides how `body` travels, for an SQS limit of `max_sqs` bytes per message.
pub fn fit(msg_id: &str, body: &str, max_sqs: usize) -> Fit {
    if body.len() + attributes_size(msg_id, Encoding::Plain) <= max_sqs {
        return Fit::Plain;
    }
    let gz = gzip(body.as_bytes());
    let b64_len = gz.len().div_ceil(3) * 4;
    if b64_len + attributes_size(msg_id, Encoding::GzipBase64) <= max_sqs {
        return Fit::Compressed(base64::engine::general_purpose::STANDARD.encode(&gz));
    }
    if gz.len() <= MAX_STORED_BYTES {
        return Fit::Store(gz);
    }
    Fit::TooLarge(gz.len())
}

/// Base64 of the gzip of `body` (also used when SQS refuses a body's characters).
pub fn compress(body: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(gzip(body.as_bytes()))
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).expect("writing to a Vec cannot fail");
    enc.finish().expect("writing to a Vec cannot fail")
}

pub fn gunzip(data: &[u8]) -> std::io::Result<String> {
    let mut out = String::new();
    flate2::read::GzDecoder::new(data).read_to_string(&mut out)?;
    Ok(out)
}

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("unknown {ENCODING_ATTRIBUTE} `{0}`")]
    UnknownEncoding(String),
    #[error("body is not base64: {0}")]
    Base64(#[from] base64::DecodeError),
    #[error("body is not gzip of UTF-8: {0}")]
    Gzip(#[from] std::io::Error),
    #[error("body is not a stored-body reference: {0}")]
    Reference(#[from] serde_json::Error),
}

/// What an ingest-queue message holds.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    Envelope(String),
    /// Fetch the gzip bytes from this table item (attribute `body`) and `gunzip` them.
    Stored(StoredRef),
}

/// Undoes `fit` given the body and the `fmn-encoding` attribute (None when absent).
pub fn decode(body: &str, encoding: Option<&str>) -> Result<Decoded, DecodeError> {
    match encoding.map(|e| Encoding::from_label(e).ok_or_else(|| e.to_string())) {
        None | Some(Ok(Encoding::Plain)) => Ok(Decoded::Envelope(body.to_string())),
        Some(Ok(Encoding::GzipBase64)) => {
            let gz = base64::engine::general_purpose::STANDARD.decode(body)?;
            Ok(Decoded::Envelope(gunzip(&gz)?))
        }
        Some(Ok(Encoding::Stored)) => Ok(Decoded::Stored(serde_json::from_str(body)?)),
        Some(Err(e)) => Err(DecodeError::UnknownEncoding(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn big_json(n: usize) -> String {
        let items: Vec<String> = (0..n).map(|k| format!("\"file-{k}.txt\"")).collect();
        format!("{{\"msg\":{{\"files\":[{}]}}}}", items.join(","))
    }

    #[test]
    fn small_bodies_go_plain() {
        assert_eq!(fit("id", "{}", 1000), Fit::Plain);
    }

    #[test]
    fn large_bodies_are_compressed_and_decode_back() {
        let body = big_json(5000);
        assert!(body.len() > 50_000);
        let Fit::Compressed(b) = fit("id", &body, 50_000) else {
            panic!("expected compression")
        };
        assert!(b.len() < 50_000);
        assert_eq!(
            decode(&b, Some("gzip+base64")).unwrap(),
            Decoded::Envelope(body)
        );
    }

    #[test]
    fn incompressible_bodies_are_stored_or_refused() {
        // Pseudo-random hex does not compress below half.
        let mut x: u64 = 1;
        let noise: String = (0..40_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                char::from_digit((x % 16) as u32, 16).unwrap()
            })
            .collect();
        match fit("id", &noise, 10_000) {
            Fit::Store(gz) => assert_eq!(gunzip(&gz).unwrap(), noise),
            other => panic!("{other:?}"),
        }
        let huge: String = noise.repeat(30);
        assert!(matches!(
            fit("id", &huge, 10_000),
            Fit::TooLarge(_) | Fit::Store(_)
        ));
    }

    #[test]
    fn references_round_trip() {
        let r = StoredRef {
            fmn_stored_body: StoredKey {
                table: "t".into(),
                pk: stored_pk("2024-x"),
            },
            msg_id: "2024-x".into(),
            topic: "a.b".into(),
        };
        let text = serde_json::to_string(&r).unwrap();
        assert_eq!(decode(&text, Some("dynamodb")).unwrap(), Decoded::Stored(r));
        assert!(decode("x", Some("rot13")).is_err());
    }
}
