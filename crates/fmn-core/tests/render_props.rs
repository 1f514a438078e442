//! Property tests on what fmn writes from outside input (issue 13's attack suite): for any
//! message fields (topic, ids, names, summaries, long text, links, package lists) a mail parses
//! as MIME with only the headers fmn writes (no injected header, no header line over RFC 5322's
//! 998 characters), and an IRC line holds no CR, LF or NUL.

use fmn_core::irc_line::{privmsg, IrcJob, LineContext};
use fmn_core::jobs::{job_id, DeliveryJob, Notification};
use fmn_core::prefs::Destination;
use fmn_core::render::email::render;
use fmn_core::render::MailContext;
use proptest::prelude::*;

/// Text with the characters that break mail and IRC: CR, LF, NUL, colons, unicode line
/// separators, header-looking runs.
fn nasty() -> impl Strategy<Value = String> {
    let pieces = prop_oneof![
        Just("\r\n".to_string()),
        Just("\n".to_string()),
        Just("\r".to_string()),
        Just("\0".to_string()),
        Just("\u{2028}".to_string()),
        Just("Bcc: victim@example.org".to_string()),
        Just(": ".to_string()),
        Just("=?utf-8?q?x?=".to_string()),
        "[ -~]{0,12}",
        "\\PC{0,8}",
    ];
    proptest::collection::vec(pieces, 0..8).prop_map(|v| v.concat())
}

fn long_or_nasty() -> impl Strategy<Value = String> {
    prop_oneof![nasty(), "[a-z ]{900,1200}"]
}

prop_compose! {
    fn notifications()(
        topic in nasty(), msg_id in nasty(), app in nasty(), agent in proptest::option::of(nasty()),
        title in nasty(), subtitle in proptest::option::of(long_or_nasty()),
        link in proptest::option::of(nasty()), long_text in proptest::option::of(long_or_nasty()),
        usernames in proptest::collection::vec(nasty(), 0..4),
        packages in proptest::collection::vec(nasty(), 0..14),
    ) -> Notification {
        Notification {
            msg_id, topic, app, agent, title, subtitle, link, usernames, packages,
            usernames_total: None,
            packages_total: None,
            timestamp: Some(1_700_000_000.0),
            severity: Default::default(),
            origin: Default::default(),
            long_text,
        }
    }
}

fn job(notification: Notification, destination: Destination) -> DeliveryJob {
    DeliveryJob {
        job_id: job_id(&notification.msg_id, "alice", &destination),
        user: "alice".into(),
        filter_id: "filter-1".into(),
        filter_name: "My packages".into(),
        reason: "package owned".into(),
        reason_code: "own-package".into(),
        destination,
        notification,
    }
}

/// Header names fmn writes.
fn known_header(name: &str) -> bool {
    const FIXED: &[&str] = &[
        "From",
        "To",
        "Subject",
        "Date",
        "Message-ID",
        "MIME-Version",
        "Content-Type",
        "Content-Transfer-Encoding",
        "List-Id",
        "List-Unsubscribe",
        "List-Unsubscribe-Post",
        "Precedence",
        "Auto-Submitted",
    ];
    FIXED.contains(&name)
        || ["X-Fedmsg-", "X-Fmn-", "X-Fedora-Messaging-"]
            .iter()
            .any(|p| name.starts_with(p))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn mail_from_any_message_has_only_our_headers(n in notifications()) {
        let ctx = MailContext {
            from_address: "notifications@fedoraproject.org".into(),
            from_name: "Fedora Notifications".into(),
            public_url: "http://127.0.0.1:8080".into(),
            unsubscribe_secret: b"secret".to_vec(),
        };
        let j = job(n, Destination::email("email-1", "alice@example.org").confirmed(true));
        // Refusing to render is fine (a typed error); a rendered mail must be sound.
        if let Ok(mail) = render(&j, &ctx, 1_700_000_000) {
            let raw = String::from_utf8(mail.raw.clone()).expect("mail is UTF-8 text");
            let (head, _) = raw.split_once("\r\n\r\n").expect("a header block ends");
            for line in head.split("\r\n") {
                prop_assert!(!line.contains('\r') && !line.contains('\n') && !line.contains('\0'));
                prop_assert!(line.len() <= 998, "header line over 998: {}", line.len());
                if line.starts_with([' ', '\t']) {
                    continue; // a folded continuation
                }
                let name = line.split_once(':').map(|(n, _)| n).unwrap_or(line);
                prop_assert!(known_header(name), "unexpected header {name:?} in {head}");
            }
            let parsed = mail_parser::MessageParser::new().parse(&mail.raw);
            prop_assert!(parsed.is_some(), "MIME parses");
            let parsed = parsed.unwrap();
            prop_assert!(parsed.header("Bcc").is_none());
            prop_assert_eq!(
                parsed.to().and_then(|a| a.first()).and_then(|a| a.address()),
                Some("alice@example.org")
            );
        }
    }

    #[test]
    fn an_irc_line_from_any_message_is_one_line(n in notifications()) {
        let j = IrcJob::Delivery(Box::new(job(n, Destination::irc("irc-1", "alice").confirmed(true))));
        let ctx = LineContext { public_url: "http://127.0.0.1:8080".into(), now_secs: 1_700_000_100 };
        let line = privmsg(j.nick(), &j.text(&ctx));
        prop_assert!(!line.contains(['\r', '\n', '\0']), "{line:?}");
        prop_assert!(line.starts_with("PRIVMSG alice :"));
    }
}
