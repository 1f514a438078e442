//! Rendering notifications as complete RFC 5322 / MIME messages, ready for SES's raw send.
//!
//! Every message is `multipart/alternative` with a `text/plain` and a `text/html` part, both
//! UTF-8 and quoted-printable (so any content survives 7-bit transport and no line exceeds
//! 76 characters). Header values are built only here, and every one goes through
//! [`clean_header_text`]: control characters (CR and LF above all) become spaces, so nothing a
//! message carries can add a header or end the header block. Non-ASCII values become RFC 2047
//! encoded-words; long values are folded at 78 columns.

pub mod confirmation;
pub mod digest;
pub mod email;

use std::fmt::Write as _;

use sha2::{Digest, Sha256};

use crate::prefs::DestinationKind;

/// Longest subject kept, in characters (an ellipsis replaces the rest).
pub const MAX_SUBJECT_CHARS: usize = 200;
/// Longest value kept for any other free-text header, in characters.
pub const MAX_HEADER_CHARS: usize = 500;
/// The folding column (RFC 5322 §2.1.1 "SHOULD be no more than 78").
pub const FOLD_COLUMN: usize = 78;
/// Packages listed in `X-Fedmsg-Package` headers at most, as the old FMN (fmn#273); the total
/// goes in `X-Fedmsg-Num-Packages`.
pub const MAX_PACKAGE_HEADERS: usize = 10;

/// What rendering needs besides the job: who sends, and where the web-api is.
#[derive(Clone, Debug)]
pub struct MailContext {
    /// The sender address (a verified SES identity).
    pub from_address: String,
    /// The sender's display name.
    pub from_name: String,
    /// The web-api's public base URL (preferences page, unsubscribe links).
    pub public_url: String,
    /// The key of unsubscribe tokens (see [`crate::unsubscribe`]).
    pub unsubscribe_secret: Vec<u8>,
}

impl MailContext {
    /// The domain of the sender address, used in Message-IDs and the List-Id.
    pub fn domain(&self) -> &str {
        self.from_address
            .rsplit_once('@')
            .map(|(_, d)| d)
            .filter(|d| !d.is_empty())
            .unwrap_or("localhost")
    }

    /// The page where people change their preferences.
    pub fn preferences_url(&self) -> String {
        format!("{}/", self.public_url.trim_end_matches('/'))
    }
}

/// A message ready to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenderedMail {
    /// The recipient address (the envelope recipient).
    pub to: String,
    /// The subject, before encoding.
    pub subject: String,
    /// The `Message-ID` without angle brackets.
    pub message_id: String,
    /// The whole message, CRLF line ends.
    pub raw: Vec<u8>,
}

/// Why a job cannot be rendered as mail. Never worth retrying.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("destination {0} is not an e-mail destination")]
    NotEmail(String),
    #[error("`{0}` is not a usable e-mail address")]
    BadAddress(String),
    #[error("a digest needs at least one item")]
    EmptyDigest,
}

/// A header value with every control character (CR, LF, TAB, NUL, DEL, C1, line and paragraph
/// separators) turned into a space, runs of white space collapsed, ends trimmed.
pub fn clean_header_text(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut space = false;
    for c in value.chars() {
        let blank = c.is_control() || c.is_whitespace();
        if blank {
            space = true;
        } else {
            if space && !out.is_empty() {
                out.push(' ');
            }
            space = false;
            out.push(c);
        }
    }
    out
}

/// Cuts `text` to at most `max` characters, ending with an ellipsis when cut.
pub fn truncate_chars(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.truncate(out.trim_end().len());
    out.push('…');
    out
}

/// Checks an address for use in a header and as the SES recipient: one `local@domain`,
/// printable ASCII, none of the characters that would make it a list, a group or a comment.
pub fn check_address(address: &str) -> Result<&str, RenderError> {
    let bad = || RenderError::BadAddress(clean_header_text(address));
    if address.is_empty()
        || address.len() > 254
        || !address
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"<>()[],;:\"\\".contains(&b))
        || address.matches('@').count() != 1
        || address.starts_with('@')
    {
        return Err(bad());
    }
    Ok(address)
}

/// What every mail render checks of its destination first: an e-mail destination with a
/// usable address (the only reasons a job cannot be rendered as mail).
pub fn require_email(kind: DestinationKind, id: &str, address: &str) -> Result<(), RenderError> {
    if kind != DestinationKind::Email {
        return Err(RenderError::NotEmail(id.to_string()));
    }
    check_address(address).map(|_| ())
}

/// The header block of a message under construction.
#[derive(Default)]
pub(crate) struct Headers {
    text: String,
}

impl Headers {
    /// A free-text header: cleaned, cut to `max` characters, encoded when not plain ASCII,
    /// folded. Nothing is written for an empty value.
    pub fn text(&mut self, name: &str, value: &str, max: usize) {
        let value = truncate_chars(&clean_header_text(value), max);
        if value.is_empty() {
            return;
        }
        let tokens = if needs_encoding(&value) {
            encoded_words(&value)
        } else {
            value.split(' ').map(str::to_string).collect()
        };
        self.fold(name, &tokens);
    }

    /// A header whose value the renderer built from checked parts (addresses, ids, dates,
    /// URLs): still cleaned, so a mistake cannot break the header block; folded at spaces.
    pub fn raw(&mut self, name: &str, value: &str) {
        let value = clean_header_text(value);
        let tokens: Vec<String> = value.split(' ').map(str::to_string).collect();
        self.fold(name, &tokens);
    }

    /// `Display Name <address>`, the name encoded as needed.
    pub fn mailbox(&mut self, name: &str, display: &str, address: &str) {
        let display = clean_header_text(display);
        let mut tokens: Vec<String> = if display.is_empty() {
            Vec::new()
        } else if needs_encoding(&display)
            || display
                .chars()
                .any(|c| "()<>[]:;@\\,.\"".contains(c) && c != ' ')
        {
            if needs_encoding(&display) {
                encoded_words(&display)
            } else {
                vec![format!(
                    "\"{}\"",
                    display.replace('\\', "\\\\").replace('"', "\\\"")
                )]
            }
        } else {
            display.split(' ').map(str::to_string).collect()
        };
        tokens.push(format!("<{}>", clean_header_text(address)));
        self.fold(name, &tokens);
    }

    fn fold(&mut self, name: &str, tokens: &[String]) {
        let mut line = format!("{name}:");
        for token in tokens.iter().filter(|t| !t.is_empty()) {
            if line.len() + 1 + token.len() > FOLD_COLUMN && line.len() > name.len() + 1 {
                self.text.push_str(&line);
                self.text.push_str("\r\n");
                line = String::new();
            }
            line.push(' ');
            line.push_str(token);
        }
        self.text.push_str(&line);
        self.text.push_str("\r\n");
    }

    pub fn finish(self) -> String {
        self.text
    }
}

/// Whether a cleaned value must be sent as encoded-words: non-ASCII, or text a decoder would
/// mistake for an encoded-word.
fn needs_encoding(value: &str) -> bool {
    !value.is_ascii() || value.contains("=?")
}

/// `value` as RFC 2047 `B` encoded-words of at most 30 bytes of UTF-8 each (52 characters
/// per word, so a word fits a folded line), never splitting a character.
fn encoded_words(value: &str) -> Vec<String> {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;
    const CHUNK: usize = 30;
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in value.chars() {
        if chunk.len() + c.len_utf8() > CHUNK {
            words.push(format!("=?UTF-8?B?{}?=", STANDARD.encode(&chunk)));
            chunk.clear();
        }
        chunk.push(c);
    }
    if !chunk.is_empty() {
        words.push(format!("=?UTF-8?B?{}?=", STANDARD.encode(&chunk)));
    }
    words
}

/// Quoted-printable (RFC 2045 §6.7) of UTF-8 text; `\n` or `\r\n` line ends become CRLF; no
/// output line is longer than 76 characters.
pub fn quoted_printable(text: &str) -> String {
    const MAX: usize = 76;
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    let normalised = text.replace("\r\n", "\n");
    for (i, line) in normalised.split('\n').enumerate() {
        if i > 0 {
            out.push_str("\r\n");
        }
        let bytes = line.as_bytes();
        let mut col = 0;
        for (j, &b) in bytes.iter().enumerate() {
            let last = j + 1 == bytes.len();
            let plain = (b.is_ascii_graphic() && b != b'=') || ((b == b' ' || b == b'\t') && !last);
            let token_len = if plain { 1 } else { 3 };
            // Keep room for the soft break's `=` unless this is the line's last token.
            let room = if last { MAX } else { MAX - 1 };
            if col + token_len > room {
                out.push_str("=\r\n");
                col = 0;
            }
            // A dot starting a line is encoded: some relays mangle it.
            if plain && !(col == 0 && b == b'.') {
                out.push(b as char);
                col += 1;
            } else {
                let _ = write!(out, "={b:02X}");
                col += 3;
            }
        }
    }
    out
}

/// HTML-escapes text for element content and attribute values.
pub fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A link as HTML: an anchor for http(s) URLs, plain escaped text for anything else (no
/// `javascript:` hrefs from message content).
pub fn html_link(url: &str) -> String {
    let lower = url.trim().to_ascii_lowercase();
    if lower.starts_with("https://") || lower.starts_with("http://") {
        format!("<a href=\"{0}\">{0}</a>", html_escape(url.trim()))
    } else {
        html_escape(url)
    }
}

/// `Mon, 02 Jan 2006 15:04:05 +0000` for the `Date` header.
pub fn rfc2822_date(epoch_secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(epoch_secs)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .format(&time::format_description::well_known::Rfc2822)
        .unwrap_or_default()
}

/// `2006-01-02 15:04:05 UTC` for bodies.
pub fn utc_time(epoch_secs: f64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(epoch_secs as i64)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let fmt = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    format!("{} UTC", t.format(&fmt).unwrap_or_default())
}

/// Assembles headers and the two alternative bodies into the final message. `seed` makes the
/// MIME boundary (deterministic, and `=_` never occurs in quoted-printable).
pub(crate) fn assemble(headers: Headers, seed: &str, text: &str, html: &str) -> Vec<u8> {
    let boundary = format!(
        "=_fmn_{}",
        &hex::encode(Sha256::digest(seed.as_bytes()))[..24]
    );
    let mut h = headers;
    h.raw("MIME-Version", "1.0");
    h.raw(
        "Content-Type",
        &format!("multipart/alternative; boundary=\"{boundary}\""),
    );
    let mut out = h.finish();
    out.push_str("\r\nThis is a multi-part message in MIME format.\r\n");
    for (kind, body) in [("plain", text), ("html", html)] {
        let _ = write!(
            out,
            "\r\n--{boundary}\r\nContent-Type: text/{kind}; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n{}\r\n",
            quoted_printable(body)
        );
    }
    let _ = write!(out, "\r\n--{boundary}--\r\n");
    out.into_bytes()
}

/// The headers every notification mail carries: sender, recipient, subject, date, id, the
/// bulk-mail markers and the list headers with one-click unsubscribe (RFC 2369, RFC 8058).
pub(crate) fn common_headers(
    ctx: &MailContext,
    to: &str,
    subject: &str,
    message_id: &str,
    now_secs: i64,
    user: &str,
    destination_id: &str,
) -> Headers {
    let mut h = Headers::default();
    h.mailbox("From", &ctx.from_name, &ctx.from_address);
    h.raw("To", &format!("<{to}>"));
    h.text("Subject", subject, MAX_SUBJECT_CHARS);
    h.raw("Date", &rfc2822_date(now_secs));
    h.raw("Message-ID", &format!("<{message_id}>"));
    h.raw("Precedence", "bulk");
    h.raw("Auto-Submitted", "auto-generated");
    h.raw(
        "List-Id",
        &format!("Fedora Notifications <notifications.{}>", ctx.domain()),
    );
    let token = crate::unsubscribe::make_token(&ctx.unsubscribe_secret, user, destination_id);
    h.raw(
        "List-Unsubscribe",
        &format!(
            "<{}>",
            crate::unsubscribe::unsubscribe_url(&ctx.public_url, &token)
        ),
    );
    h.raw("List-Unsubscribe-Post", "List-Unsubscribe=One-Click");
    h
}

/// Quoted-printable decoding, for tests that read bodies back.
#[cfg(test)]
pub(crate) fn decode_quoted_printable(qp: &str) -> String {
    let mut bytes = Vec::new();
    let joined = qp.replace("=\r\n", "");
    let mut it = joined.bytes();
    while let Some(b) = it.next() {
        if b == b'=' {
            let hex = [it.next().unwrap_or(b'0'), it.next().unwrap_or(b'0')];
            let hex = std::str::from_utf8(&hex).unwrap_or("00");
            bytes.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
        } else {
            bytes.push(b);
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header_block(f: impl FnOnce(&mut Headers)) -> String {
        let mut h = Headers::default();
        f(&mut h);
        h.finish()
    }

    #[test]
    fn control_characters_never_reach_a_header() {
        let evil = "hello\r\nBcc: victim@example.org\r\n\r\nbody\u{0}\u{85}\u{2028}x";
        let block = header_block(|h| h.text("Subject", evil, 200));
        // One header, one line: no CR or LF other than the final CRLF.
        assert_eq!(block.matches("\r\n").count(), 1, "{block:?}");
        assert!(block.starts_with("Subject: hello Bcc: victim@example.org body"));
        assert!(!block.contains('\0'));
        // The same through raw and mailbox headers.
        let block = header_block(|h| {
            h.raw("X-Fedmsg-Id", "id\nX-Evil: 1");
            h.mailbox("From", "Name\r\nX-Evil: 2", "a@example.org");
        });
        assert!(!block.lines().any(|l| l.starts_with("X-Evil")), "{block}");
    }

    #[test]
    fn non_ascii_becomes_encoded_words_that_decode_back() {
        let block = header_block(|h| h.text("Subject", "Zdeněk Žák pushed ☃ to ß", 200));
        assert!(block.is_ascii());
        assert!(block.contains("=?UTF-8?B?"));
        for line in block.split("\r\n") {
            assert!(line.len() <= FOLD_COLUMN, "{line:?}");
        }
        // Decode with a tiny RFC 2047 reader.
        use base64::Engine;
        let decoded: String = block
            .split(|c: char| c.is_whitespace())
            .filter(|w| w.starts_with("=?UTF-8?B?"))
            .map(|w| {
                let b64 = &w["=?UTF-8?B?".len()..w.len() - 2];
                String::from_utf8(
                    base64::engine::general_purpose::STANDARD
                        .decode(b64)
                        .unwrap(),
                )
                .unwrap()
            })
            .collect();
        assert_eq!(decoded, "Zdeněk Žák pushed ☃ to ß");
        // ASCII that looks like an encoded-word is encoded too.
        let block = header_block(|h| h.text("Subject", "=?UTF-8?B?Zm9v?=", 200));
        assert!(block.contains("PT9VVEYtOD9CP1ptOXY/PQ"), "{block}");
    }

    #[test]
    fn long_values_fold_at_78_and_subjects_are_cut() {
        let words = "word ".repeat(100);
        let block = header_block(|h| h.text("X-Long", &words, 1000));
        assert!(block.lines().count() > 5);
        for line in block.split("\r\n").filter(|l| !l.is_empty()) {
            assert!(line.len() <= FOLD_COLUMN, "{line:?}");
        }
        // Unfolding gives the value back.
        let unfolded = block.trim_end().replace("\r\n", "");
        assert_eq!(unfolded, format!("X-Long: {}", words.trim_end()));

        let block = header_block(|h| h.text("Subject", &"x".repeat(5000), MAX_SUBJECT_CHARS));
        // 199 characters and an ellipsis, as encoded-words on short lines.
        assert!(block.len() < 450, "{}", block.len());
        let last = block.split_whitespace().last().unwrap();
        use base64::Engine;
        let tail = base64::engine::general_purpose::STANDARD
            .decode(&last["=?UTF-8?B?".len()..last.len() - 2])
            .unwrap();
        assert!(String::from_utf8(tail).unwrap().ends_with("x…"));
    }

    #[test]
    fn quoted_printable_round_trips_and_keeps_lines_short() {
        let text = format!(
            "plain line\nend space \ncafé = ☃\n.dot\n{}\n",
            "long ".repeat(40)
        );
        let qp = quoted_printable(&text);
        assert!(qp.is_ascii());
        for line in qp.split("\r\n") {
            assert!(line.len() <= 76, "{line:?}");
        }
        assert!(qp.contains("end space=20\r\n"));
        assert!(qp.contains("caf=C3=A9 =3D =E2=98=83"));
        assert!(qp.contains("=2Edot"));
        assert_eq!(decode_quoted_printable(&qp), text.replace('\n', "\r\n"));
    }

    #[test]
    fn addresses_are_checked() {
        assert!(check_address("alice@example.org").is_ok());
        for bad in [
            "",
            "alice",
            "a@b@c",
            "alice@example.org\r\nBcc: x@y",
            "alice <a@b>",
            "a,b@c",
            "älice@example.org",
            "@example.org",
        ] {
            assert!(check_address(bad).is_err(), "{bad:?}");
        }
        // A missing domain is the mail service's business (it rejects it), not a header risk.
        assert!(check_address("alice@").is_ok());
    }

    #[test]
    fn links_in_html_are_only_http() {
        assert_eq!(
            html_link("https://x.org/?a=1&b=<2>"),
            "<a href=\"https://x.org/?a=1&amp;b=&lt;2&gt;\">https://x.org/?a=1&amp;b=&lt;2&gt;</a>"
        );
        assert_eq!(html_link("javascript:alert(1)"), "javascript:alert(1)");
    }
}
