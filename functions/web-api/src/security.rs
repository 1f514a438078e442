//! Headers on every answer: a Content-Security-Policy as strict as the page allows, no framing,
//! no MIME sniffing, no referrer (a `/confirm/<token>` address must not leak to linked sites).
//!
//! The page (`page/`) is one HTML file loading `/app.js` and `/app.css` from its own origin,
//! with no inline script, style or event handler; it calls the API on its own origin and, to
//! sign in with OpenID Connect, the issuer's discovery document and token endpoint (which
//! must therefore be on the issuer's origin). Its icon is `data:,`.

use axum::http::{header, HeaderName, HeaderValue};
use axum::response::Response;

/// The headers, built once from the settings.
#[derive(Clone, Debug)]
pub struct SecurityHeaders {
    csp: HeaderValue,
}

/// `scheme://host[:port]` of `url`, if it is a plain http(s) URL whose origin can stand in a
/// CSP source list as it is.
pub fn origin(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let host_len = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let host = &rest[..host_len];
    let plain = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c));
    plain.then(|| &url[..url.len() - rest.len() + host_len])
}

/// The policy for a page whose sign-in talks to `issuer`.
pub fn content_security_policy(issuer: &str) -> String {
    let connect = match origin(issuer) {
        Some(o) => format!("'self' {o}"),
        None => "'self'".to_string(),
    };
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src {connect}; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    )
}

impl SecurityHeaders {
    pub fn for_issuer(issuer: &str) -> Self {
        Self {
            csp: HeaderValue::from_str(&content_security_policy(issuer))
                .expect("the policy is visible ASCII"),
        }
    }

    /// `response` with the headers set (replacing any a handler set).
    pub fn apply(&self, mut response: Response) -> Response {
        let h = response.headers_mut();
        h.insert(header::CONTENT_SECURITY_POLICY, self.csp.clone());
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        h.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        h.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
        h.insert(
            HeaderName::from_static("cross-origin-opener-policy"),
            HeaderValue::from_static("same-origin"),
        );
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_scheme_host_and_port_only() {
        assert_eq!(
            origin("https://id.fedoraproject.org/openidc"),
            Some("https://id.fedoraproject.org")
        );
        assert_eq!(
            origin("http://127.0.0.1:4000"),
            Some("http://127.0.0.1:4000")
        );
        assert_eq!(origin("ftp://x.org"), None);
        // Nothing that could add a directive.
        assert_eq!(origin("https://x.org; script-src *"), None);
        let csp = content_security_policy("https://evil.org; script-src *");
        assert!(!csp.contains("evil"), "{csp}");
        assert!(
            content_security_policy("https://id.fedoraproject.org/openidc")
                .contains("connect-src 'self' https://id.fedoraproject.org;")
        );
    }
}
