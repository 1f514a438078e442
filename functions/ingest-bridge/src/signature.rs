//! fedmsg x509 signatures (`crypto: "x509"`): the publisher signs, with RSA PKCS#1 v1.5 over
//! SHA-1, the canonical JSON of the envelope without `signature` and `certificate`, and sends
//! its certificate (base64 of the PEM) along. A message is accepted when the certificate was
//! issued by the configured CA, is within its validity period, and the signature verifies with
//! its key. Not done (as noted in the README): CRL checks and fedmsg's topic→CN routing policy.

use base64::Engine as _;
use x509_parser::prelude::*;

use crate::canonical::python_dumps;

#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    #[error("message is not signed (no `signature`/`certificate`)")]
    Unsigned,
    #[error("envelope is not a JSON object: {0}")]
    NotJson(String),
    #[error("unsupported crypto backend `{0}`")]
    Backend(String),
    #[error("bad certificate: {0}")]
    Certificate(String),
    #[error("certificate `{0}` was not issued by the configured CA")]
    Untrusted(String),
    #[error("certificate `{0}` is outside its validity period")]
    Expired(String),
    #[error("signature does not verify")]
    Mismatch,
    #[error("CA file {path}: {reason}")]
    Ca { path: String, reason: String },
}

/// Trusted CA certificates (DER), from a PEM bundle.
#[derive(Debug)]
pub struct Verifier {
    cas: Vec<Vec<u8>>,
}

fn unwrap_base64(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    let clean: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD.decode(clean)
}

fn pem_blocks(pem: &[u8]) -> Vec<Vec<u8>> {
    x509_parser::pem::Pem::iter_from_buffer(pem)
        .filter_map(Result::ok)
        .filter(|p| p.label == "CERTIFICATE")
        .map(|p| p.contents)
        .collect()
}

impl Verifier {
    pub fn from_pem(pem: &[u8]) -> Result<Self, String> {
        let cas = pem_blocks(pem);
        for der in &cas {
            X509Certificate::from_der(der).map_err(|e| e.to_string())?;
        }
        if cas.is_empty() {
            return Err("no CERTIFICATE in it".into());
        }
        Ok(Self { cas })
    }

    pub fn from_file(path: &std::path::Path) -> Result<Self, SignatureError> {
        let err = |reason: String| SignatureError::Ca {
            path: path.display().to_string(),
            reason,
        };
        let pem = std::fs::read(path).map_err(|e| err(e.to_string()))?;
        Self::from_pem(&pem).map_err(err)
    }

    /// Verifies a signed envelope as received (JSON text).
    pub fn verify_envelope(&self, body: &str) -> Result<(), SignatureError> {
        let value: serde_json::Value =
            serde_json::from_str(body).map_err(|e| SignatureError::NotJson(e.to_string()))?;
        let serde_json::Value::Object(mut obj) = value else {
            return Err(SignatureError::NotJson("not an object".into()));
        };
        let (Some(sig), Some(cert)) = (obj.remove("signature"), obj.remove("certificate")) else {
            return Err(SignatureError::Unsigned);
        };
        let (Some(sig), Some(cert)) = (sig.as_str(), cert.as_str()) else {
            return Err(SignatureError::Unsigned);
        };
        match obj.get("crypto").and_then(serde_json::Value::as_str) {
            Some("x509") | None => {}
            Some(other) => return Err(SignatureError::Backend(other.to_string())),
        }
        let signed_text = python_dumps(&serde_json::Value::Object(obj));
        let signature = unwrap_base64(sig)
            .map_err(|e| SignatureError::Certificate(format!("signature is not base64: {e}")))?;
        let cert_pem = unwrap_base64(cert)
            .map_err(|e| SignatureError::Certificate(format!("certificate is not base64: {e}")))?;
        let der = pem_blocks(&cert_pem)
            .into_iter()
            .next()
            .ok_or_else(|| SignatureError::Certificate("no PEM certificate".into()))?;
        self.verify(signed_text.as_bytes(), &signature, &der)
    }

    fn verify(&self, data: &[u8], signature: &[u8], cert_der: &[u8]) -> Result<(), SignatureError> {
        let (_, cert) = X509Certificate::from_der(cert_der)
            .map_err(|e| SignatureError::Certificate(e.to_string()))?;
        let subject = cert.subject().to_string();
        let trusted = self.cas.iter().any(|ca_der| {
            X509Certificate::from_der(ca_der).is_ok_and(|(_, ca)| {
                ca.subject() == cert.issuer()
                    && cert.verify_signature(Some(ca.public_key())).is_ok()
            })
        });
        if !trusted {
            return Err(SignatureError::Untrusted(subject));
        }
        if !cert.validity().is_valid() {
            return Err(SignatureError::Expired(subject));
        }
        let key = &cert.public_key().subject_public_key.data;
        ring::signature::UnparsedPublicKey::new(
            &ring::signature::RSA_PKCS1_1024_8192_SHA1_FOR_LEGACY_USE_ONLY,
            key.as_ref(),
        )
        .verify(data, signature)
        .map_err(|_| SignatureError::Mismatch)
    }
}
