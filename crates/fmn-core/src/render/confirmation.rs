//! The mail asking an address's owner to accept being a destination (sent by the web-api when
//! someone adds the address). No `List-Unsubscribe`: the address is not subscribed yet, and
//! ignoring the mail is how one says no.

use std::fmt::Write as _;

use super::{
    assemble, check_address, html_escape, html_link, rfc2822_date, Headers, MailContext,
    RenderError, RenderedMail, MAX_SUBJECT_CHARS,
};

/// The confirmation mail to `to` for `user`'s new destination; `url` opens the page that
/// accepts or rejects; `expires_hours` is said in the text.
pub fn render(
    ctx: &MailContext,
    to: &str,
    user: &str,
    url: &str,
    expires_hours: u64,
    now_secs: i64,
) -> Result<RenderedMail, RenderError> {
    check_address(to)?;
    let subject = format!("Confirm notifications for {user}");
    let seed = format!("confirm.{user}.{to}.{now_secs}.{url}");
    let message_id = format!(
        "fmn.confirm.{}@{}",
        &hex::encode(<sha2::Sha256 as sha2::Digest>::digest(seed.as_bytes()))[..32],
        ctx.domain()
    );
    let mut h = Headers::default();
    h.mailbox("From", &ctx.from_name, &ctx.from_address);
    h.raw("To", &format!("<{to}>"));
    h.text("Subject", &subject, MAX_SUBJECT_CHARS);
    h.raw("Date", &rfc2822_date(now_secs));
    h.raw("Message-ID", &format!("<{message_id}>"));
    h.raw("Auto-Submitted", "auto-generated");

    let ask = format!(
        "The Fedora account {user} asked to receive its notifications at {to}. \
         If that is you and you agree, open the link below and choose Accept; \
         otherwise choose Reject or ignore this mail. The link works once and expires in \
         {expires_hours} hours."
    );
    let mut text = String::new();
    let _ = write!(text, "{ask}\n\n{url}\n");
    let html = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"></head><body>\n<p>{}</p>\n<p>{}</p>\n</body></html>\n",
        html_escape(&ask),
        html_link(url)
    );
    Ok(RenderedMail {
        to: to.to_string(),
        subject,
        message_id: message_id.clone(),
        raw: assemble(h, &message_id, &text, &html),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> MailContext {
        MailContext {
            from_address: "notifications@example.org".into(),
            from_name: "Fedora Notifications".into(),
            public_url: "http://127.0.0.1:8080".into(),
            unsubscribe_secret: b"k".to_vec(),
        }
    }

    #[test]
    fn carries_the_link_and_no_unsubscribe() {
        let url = "http://127.0.0.1:8080/confirm/abc_DEF-123";
        let m = render(&ctx(), "a@example.org", "alice", url, 24, 0).unwrap();
        let raw = String::from_utf8(m.raw).unwrap();
        assert!(raw.contains("abc_DEF-123"), "{raw}");
        assert!(!raw.contains("List-Unsubscribe"));
        assert!(raw.contains("Subject: Confirm notifications for alice"));
    }

    #[test]
    fn refuses_a_bad_address() {
        assert!(render(&ctx(), "a@b>, c@d", "alice", "u", 24, 0).is_err());
    }
}
