//! One-click unsubscribe tokens (RFC 8058): `List-Unsubscribe` points at
//! `<public_url>/api/v1/unsubscribe/<token>`, and the web-api verifies the token with the same
//! secret. A token names a user and one of their destinations and is signed with HMAC-SHA256,
//! so nobody can unsubscribe somebody else without having received their mail.
//!
//! Format: `<base64url(user)>.<base64url(destination id)>.<base64url(first 16 bytes of the MAC)>`
//! (URL-safe, no padding). The MAC covers a domain tag, the user and the destination id, each
//! preceded by its length so no two pairs collide.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::hmac;

/// The MAC is cut to this many bytes (128 bits): plenty against forgery, short in a URL.
const MAC_BYTES: usize = 16;
const DOMAIN: &[u8] = b"fmn-unsubscribe-v1";

fn mac(secret: &[u8], user: &str, destination_id: &str) -> hmac::Tag {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let mut ctx = hmac::Context::with_key(&key);
    for part in [DOMAIN, user.as_bytes(), destination_id.as_bytes()] {
        ctx.update(&(part.len() as u64).to_be_bytes());
        ctx.update(part);
    }
    ctx.sign()
}

/// The token that unsubscribes `user`'s destination `destination_id`.
pub fn make_token(secret: &[u8], user: &str, destination_id: &str) -> String {
    let tag = mac(secret, user, destination_id);
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(user),
        URL_SAFE_NO_PAD.encode(destination_id),
        URL_SAFE_NO_PAD.encode(&tag.as_ref()[..MAC_BYTES])
    )
}

/// The (user, destination id) a token was made for, if it was made with `secret`.
pub fn verify_token(secret: &[u8], token: &str) -> Option<(String, String)> {
    let mut parts = token.split('.');
    let (user, dest, sig) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let user = String::from_utf8(URL_SAFE_NO_PAD.decode(user).ok()?).ok()?;
    let dest = String::from_utf8(URL_SAFE_NO_PAD.decode(dest).ok()?).ok()?;
    let sig = URL_SAFE_NO_PAD.decode(sig).ok()?;
    let expected = mac(secret, &user, &dest);
    // Constant-time comparison of the truncated MAC.
    let same = sig.len() == MAC_BYTES
        && expected.as_ref()[..MAC_BYTES]
            .iter()
            .zip(&sig)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if same {
        Some((user, dest))
    } else {
        None
    }
}

/// The one-click unsubscribe URL under the web-api's public URL.
pub fn unsubscribe_url(public_url: &str, token: &str) -> String {
    format!(
        "{}/api/v1/unsubscribe/{token}",
        public_url.trim_end_matches('/')
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_resist_tampering() {
        let t = make_token(b"secret", "alice", "email-1");
        assert!(t
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)));
        assert_eq!(
            verify_token(b"secret", &t),
            Some(("alice".to_string(), "email-1".to_string()))
        );
        assert_eq!(verify_token(b"other", &t), None);
        // Another user's name with alice's signature.
        let parts: Vec<&str> = t.split('.').collect();
        let forged = format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode("bob"),
            parts[1],
            parts[2]
        );
        assert_eq!(verify_token(b"secret", &forged), None);
        assert_eq!(verify_token(b"secret", "garbage"), None);
        assert_eq!(verify_token(b"secret", &format!("{t}.x")), None);
        // Unambiguous: ("a.b", "c") and ("a", "b.c") differ.
        assert_ne!(
            make_token(b"s", "a\0b", "c").split('.').nth(2),
            make_token(b"s", "a", "b\0c").split('.').nth(2)
        );
    }

    #[test]
    fn urls_join_cleanly() {
        assert_eq!(
            unsubscribe_url("http://127.0.0.1:8080/", "tok"),
            "http://127.0.0.1:8080/api/v1/unsubscribe/tok"
        );
    }
}
