//! A user's notifications as an Atom feed (RFC 4287): pure rendering, the caller supplies the
//! entries (the activity log) and the URLs.

use jiff::Timestamp;

/// One notification in the feed.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// A stable IRI (the same notification keeps its id).
    pub id: String,
    pub title: String,
    /// Where the entry points (the event's page, else the preferences page).
    pub link: String,
    pub summary: String,
    /// Epoch seconds.
    pub updated: f64,
}

/// The feed as a whole.
#[derive(Clone, Debug, PartialEq)]
pub struct Feed<'a> {
    pub id: &'a str,
    pub title: &'a str,
    /// The feed's own URL (`rel="self"`).
    pub self_link: &'a str,
    /// The page the feed belongs to (`rel="alternate"`).
    pub page_link: &'a str,
    /// Newest first.
    pub entries: &'a [Entry],
}

/// Escapes text for XML content and attribute values (the HTML escaping, whose entities XML
/// reads the same); drops the characters XML 1.0 cannot carry at all (control characters
/// other than tab and line breaks).
pub fn xml_escape(text: &str) -> String {
    let carried: String = text
        .chars()
        .filter(|&c| {
            matches!(c, '\t' | '\n' | '\r')
                || !(c.is_control() || c == '\u{FFFE}' || c == '\u{FFFF}')
        })
        .collect();
    crate::render::html_escape(&carried)
}

/// An RFC 3339 date (UTC) of epoch seconds; out-of-range values are the epoch.
pub fn rfc3339(epoch_secs: f64) -> String {
    let ms = (epoch_secs * 1000.0) as i64;
    Timestamp::from_millisecond(ms)
        .unwrap_or(Timestamp::UNIX_EPOCH)
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Whether `url` may be a link (http or https only: nothing else from message content).
pub fn is_web_link(url: &str) -> bool {
    let lower = url.trim().to_ascii_lowercase();
    lower.starts_with("https://") || lower.starts_with("http://")
}

/// The feed document.
pub fn render(feed: &Feed<'_>) -> String {
    // A feed's `updated` is its newest entry's; an empty feed says the epoch, so the
    // document (and its ETag) depend on the entries alone.
    let updated = feed.entries.first().map_or(0.0, |e| e.updated);
    let mut out = String::with_capacity(512 + feed.entries.len() * 512);
    out.push_str("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n");
    out.push_str("<feed xmlns=\"http://www.w3.org/2005/Atom\">\n");
    out.push_str(&format!("  <id>{}</id>\n", xml_escape(feed.id)));
    out.push_str(&format!("  <title>{}</title>\n", xml_escape(feed.title)));
    out.push_str(&format!("  <updated>{}</updated>\n", rfc3339(updated)));
    out.push_str("  <author><name>Fedora Notifications</name></author>\n");
    out.push_str("  <generator>fmn</generator>\n");
    out.push_str(&format!(
        "  <link rel=\"self\" type=\"application/atom+xml\" href=\"{}\"/>\n",
        xml_escape(feed.self_link)
    ));
    out.push_str(&format!(
        "  <link rel=\"alternate\" type=\"text/html\" href=\"{}\"/>\n",
        xml_escape(feed.page_link)
    ));
    for e in feed.entries {
        out.push_str("  <entry>\n");
        out.push_str(&format!("    <id>{}</id>\n", xml_escape(&e.id)));
        out.push_str(&format!("    <title>{}</title>\n", xml_escape(&e.title)));
        out.push_str(&format!("    <updated>{}</updated>\n", rfc3339(e.updated)));
        out.push_str(&format!(
            "    <link rel=\"alternate\" href=\"{}\"/>\n",
            xml_escape(&e.link)
        ));
        out.push_str(&format!(
            "    <summary>{}</summary>\n",
            xml_escape(&e.summary)
        ));
        out.push_str("  </entry>\n");
    }
    out.push_str("</feed>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_control_characters_dropped() {
        assert_eq!(
            xml_escape("a<b>&\"c'\u{1}\u{7}d\n"),
            "a&lt;b&gt;&amp;&quot;c&#39;d\n"
        );
    }

    #[test]
    fn dates_are_rfc3339_utc() {
        assert_eq!(rfc3339(0.0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000.5), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn a_feed_has_its_entries_newest_first() {
        let entries = [Entry {
            id: "urn:fmn:notification:j1".into(),
            title: "koji build <failed>".into(),
            link: "https://koji.fedoraproject.org/koji/taskinfo?taskID=1&x=2".into(),
            summary: "filter “mine”".into(),
            updated: 1_700_000_000.0,
        }];
        let xml = render(&Feed {
            id: "urn:fmn:feed:ralph",
            title: "ralph's notifications",
            self_link: "https://n.example/feed/t.atom",
            page_link: "https://n.example/",
            entries: &entries,
        });
        assert!(xml.contains("<updated>2023-11-14T22:13:20Z</updated>"));
        assert!(xml.contains("<title>koji build &lt;failed&gt;</title>"));
        assert!(xml.contains("taskID=1&amp;x=2"));
        assert!(xml.contains("ralph&#39;s"));
        assert_eq!(xml.matches("<entry>").count(), 1);
    }
}
