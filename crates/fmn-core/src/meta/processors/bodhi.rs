//! Bodhi, the update system (`bodhi.*`), plus the update-sync script's `bodhi.updates.*.sync`.

use serde_json::Value;

use crate::meta::ctx::Ctx;
use crate::meta::model::{Metadata, Processor};
use crate::meta::processors::long;
use crate::meta::py::{self, nvr_name, truncate40};

/// Bodhi.
pub struct Bodhi;

const BASE: &str = "https://bodhi.fedoraproject.org";

/// Topic families that concern one update.
const UPDATE_TOPICS: [&str; 8] = [
    "bodhi.update.comment",
    "bodhi.update.complete",
    "bodhi.update.request",
    "bodhi.update.edit",
    "bodhi.update.eject",
    "bodhi.update.karma.threshold",
    "bodhi.update.requirements_met",
    "bodhi.errata.publish",
];

/// A user field that is either a name or a `{name: …}` object.
fn name_of(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::Object(o) => o.get("name").and_then(Value::as_str).map(str::to_owned),
        Value::Null => None,
        other => Some(py::str(other)),
    }
}

fn comment_author(m: &Ctx) -> Option<String> {
    let c = m.get("comment")?;
    name_of(c.get("user").or_else(|| c.get("author")))
}

fn update_author(m: &Ctx) -> Option<String> {
    let u = m.get("update")?;
    name_of(u.get("user").or_else(|| u.get("submitter")))
}

fn override_author(m: &Ctx) -> Option<String> {
    let o = m.get("override").filter(|o| py::truthy(o))?;
    name_of(o.get("submitter"))
}

fn override_nvr(m: &Ctx) -> Option<String> {
    match m.get("override.build")? {
        Value::Object(o) => o.get("nvr").map(py::str),
        other => Some(py::str(other)),
    }
}

/// The update's title, or its builds' NVRs joined by spaces.
fn titlestring(m: &Ctx) -> String {
    let update = m.get("update").or_else(|| m.get("comment.update"));
    match update {
        Some(u) if py::truthy(u) => {
            if let Some(t) = u.get("title").filter(|t| py::truthy(t)) {
                return py::str(t);
            }
            let builds = u.get("builds").and_then(Value::as_array);
            builds
                .map(|b| {
                    b.iter()
                        .filter_map(|b| b.get("nvr").and_then(Value::as_str))
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_default()
        }
        _ => m.str("comment.update_title").unwrap_or_default().to_owned(),
    }
}

fn title_or_alias(m: &Ctx) -> String {
    let update = m.get("update").or_else(|| m.get("comment.update"));
    let pick = |v: Option<&Value>| v.filter(|v| py::truthy(v)).map(py::str);
    update
        .and_then(|u| pick(u.get("alias")).or_else(|| pick(u.get("title"))))
        .or_else(|| pick(m.get("comment.update_alias")))
        .or_else(|| pick(m.get("comment.update_title")))
        .unwrap_or_default()
}

/// Package names of a space- or comma-separated list of NVRs.
fn u2p(nvrs: &str) -> impl Iterator<Item = &str> {
    nvrs.split([' ', ',']).map(nvr_name)
}

fn is_ftp_sync(m: &Ctx) -> bool {
    m.has("bodhi.updates.") && m.ends(".sync")
}

fn sync_product(m: &Ctx) -> &'static str {
    let labels: Vec<&str> = m.topic_str().rsplit('.').take(2).collect();
    match labels.get(1).copied() {
        Some("fedora") => "Fedora",
        Some("epel") => "EPEL",
        _ => "",
    }
}

fn sync_product_raw<'a>(m: &Ctx<'a>) -> &'a str {
    m.topic_str().rsplit('.').nth(1).unwrap_or_default()
}

/// `(release, modular)`: modular releases end with `m`.
fn sync_release(m: &Ctx) -> (String, bool) {
    let release = m.fmt_or_none("release");
    match release.strip_suffix('m') {
        Some(r) => (r.trim_end_matches('m').to_owned(), true),
        None => (release, false),
    }
}

fn subtitle(m: &Ctx) -> Option<String> {
    let f = |p: &str| m.fmt_or_none(p);
    if is_ftp_sync(m) {
        let product = match sync_product(m) {
            "" => sync_product_raw(m),
            p => p,
        };
        let (release, modular) = sync_release(m);
        let modular = if modular { " modular" } else { "" };
        return Some(format!(
            "New {product} {release} {}{modular} content synced out ({} changed with {} files deleted)",
            f("repo"),
            f("bytes"),
            f("deleted")
        ));
    }
    if m.has("bodhi.masher.start") || m.has("bodhi.composer.start") {
        let agent = f("agent");
        return Some(match m.get("updates") {
            Some(u) => format!(
                "{agent} requested a mash of {} updates",
                u.as_array().map_or(0, Vec::len)
            ),
            None => format!("{agent} requested a mash of some updates"),
        });
    }
    if m.has("bodhi.update.comment") {
        let author = comment_author(m).unwrap_or_else(|| "None".into());
        let title = m
            .str("comment.update_title")
            .or_else(|| m.str("comment.update.title"))
            .unwrap_or_default();
        return Some(format!(
            "{author} commented on bodhi update {} (karma: {})",
            truncate40(title),
            f("comment.karma")
        ));
    }
    let author = || update_author(m).unwrap_or_else(|| "None".into());
    let pkgs = || truncate40(&titlestring(m));
    if m.has("bodhi.update.complete.") {
        return Some(format!(
            "{}'s {} bodhi update completed push to {}",
            author(),
            pkgs(),
            f("update.status")
        ));
    }
    if m.has("bodhi.update.eject") {
        return Some(format!(
            "{}'s {} bodhi update was ejected from the {} mash.  Reason: \"{}\"",
            author(),
            pkgs(),
            f("repo"),
            f("reason")
        ));
    }
    if m.has("bodhi.update.edit") {
        return Some(format!("{} edited {}", f("agent"), pkgs()));
    }
    if m.has("bodhi.update.request") {
        let status = m.last();
        let agent = f("agent");
        return Some(match status {
            "unpush" | "obsolete" | "revoke" => {
                let past = if status.ends_with('e') { "d" } else { "ed" };
                format!("{agent} {status}{past} {}", pkgs())
            }
            _ => format!("{agent} submitted {} to {status}", pkgs()),
        });
    }
    let repo = || f("repo");
    if m.has("bodhi.mashtask.start") {
        return Some("bodhi masher started a push".into());
    }
    if m.has("bodhi.mashtask.mashing") {
        return Some(format!("bodhi masher started mashing {}", repo()));
    }
    if m.has("bodhi.mashtask.complete") {
        return Some(if m.truthy("success") {
            format!("bodhi masher successfully mashed {}", repo())
        } else {
            format!("bodhi masher failed to mash {}", repo())
        });
    }
    if m.has("bodhi.mashtask.sync.wait") {
        return Some(format!(
            "bodhi masher is waiting for {} to hit the master mirror",
            repo()
        ));
    }
    if m.has("bodhi.mashtask.sync.done") {
        return Some(format!(
            "bodhi masher finished waiting for {} to hit the master mirror",
            repo()
        ));
    }
    let or = |p: &str, d: &str| m.fmt(p).unwrap_or_else(|| d.to_owned());
    if m.has("bodhi.compose.start") {
        return Some("bodhi composer started a run".into());
    }
    if m.has("bodhi.compose.composing") {
        return Some(format!(
            "bodhi {} compose of repo {} started",
            or("ctype", "unknown type"),
            or("repo", "unknown repo")
        ));
    }
    if m.has("bodhi.repo.done") {
        return Some(format!("bodhi repo {} created", or("repo", "unknown repo")));
    }
    if m.has("bodhi.compose.complete") {
        let result = match m.get("success") {
            Some(Value::Bool(true)) => "succeeded".to_owned(),
            Some(Value::Bool(false)) => "failed".to_owned(),
            Some(v) => py::str(v),
            None => "completed".to_owned(),
        };
        return Some(format!(
            "bodhi {} compose of repo {} {result}",
            or("ctype", "unknown type"),
            or("repo", "unknown repo")
        ));
    }
    if m.has("bodhi.compose.sync.wait") {
        return Some(format!(
            "bodhi composer is waiting for {} to hit the master mirror",
            repo()
        ));
    }
    if m.has("bodhi.compose.sync.done") {
        return Some(format!(
            "bodhi composer finished waiting for {} to hit the master mirror",
            repo()
        ));
    }
    let build = || override_nvr(m).unwrap_or_else(|| "None".into());
    let submitter = || override_author(m).unwrap_or_else(|| "None".into());
    if m.has("bodhi.buildroot_override.tag") {
        return Some(format!(
            "{} submitted a buildroot override for {}",
            submitter(),
            build()
        ));
    }
    if m.has("bodhi.buildroot_override.untag") {
        return Some(format!(
            "{} expired a buildroot override for {}",
            submitter(),
            build()
        ));
    }
    if m.has("bodhi.stack.save") {
        return Some(format!(
            "{} updated the \"{}\" stack",
            f("agent"),
            f("stack.name")
        ));
    }
    if m.has("bodhi.stack.delete") {
        return Some(format!(
            "{} deleted the \"{}\" stack",
            f("agent"),
            f("stack.name")
        ));
    }
    if m.has("bodhi.update.karma.threshold") {
        return Some(format!(
            "{} reached the {} karma threshold",
            pkgs(),
            f("status")
        ));
    }
    if m.has("bodhi.update.requirements_met") {
        return Some(format!(
            "{} reached the {} testing threshold",
            pkgs(),
            m.last()
        ));
    }
    if m.has("bodhi.errata.publish") {
        return m.fmt("subject");
    }
    None
}

fn link(m: &Ctx) -> Option<String> {
    if UPDATE_TOPICS.iter().any(|t| m.has(t)) {
        return Some(format!("{BASE}/updates/{}", title_or_alias(m)));
    }
    if m.has("bodhi.stack") {
        return Some(format!("{BASE}/stacks/{}", m.fmt_or_none("stack.name")));
    }
    if m.has("bodhi.buildroot_override") {
        return Some(format!(
            "{BASE}/overrides/{}",
            override_nvr(m).unwrap_or_else(|| "None".into())
        ));
    }
    if is_ftp_sync(m) {
        let repo = m.fmt_or_none("repo");
        let (release, modular) = sync_release(m);
        let product = sync_product_raw(m).to_lowercase();
        let mut link = format!("https://download.fedoraproject.org/pub/{product}/");
        if product == "fedora" {
            link.push_str(if repo == "atomic" {
                "linux/atomic/"
            } else {
                "linux/updates/"
            });
        }
        if repo.ends_with("testing") {
            link.push_str("testing/");
        }
        link.push_str(&release);
        link.push('/');
        if modular {
            link.push_str("Modular/");
        } else if let Ok(n) = release.parse::<u32>() {
            if (product == "fedora" && n > 27) || (product == "epel" && n > 7) {
                link.push_str("Everything/");
            }
        }
        return Some(link);
    }
    Some(BASE.to_owned())
}

/// A comment's text, or an update's notes and karma.
fn long_form(m: &Ctx, meta: &Metadata) -> Option<String> {
    let sub = meta.subtitle.as_deref();
    if m.has("bodhi.update.comment") {
        let text = m.str("comment.text")?;
        let karma = m.fmt("comment.karma").unwrap_or_else(|| "0".into());
        return long::under(sub, format!("{}\n\nKarma: {karma}", text.trim_end()));
    }
    let update = m.get("update").filter(|u| py::truthy(u))?;
    let mut text = String::new();
    if let Some(notes) = update.get("notes").and_then(Value::as_str) {
        if !notes.trim().is_empty() {
            text.push_str(&format!("Notes:\n{}\n\n", notes.trim_end()));
        }
    }
    text.push_str(&long::fields(
        m,
        &[
            ("Update", "update.alias"),
            ("Release", "update.release.long_name"),
            ("Type", "update.type"),
            ("Status", "update.status"),
            ("Request", "update.request"),
            ("Karma", "update.karma"),
            ("Stable karma", "update.stable_karma"),
            ("Critical path", "update.critpath"),
        ],
    ));
    let builds: Vec<&str> = m
        .arr("update.builds")
        .iter()
        .filter_map(|b| b.get("nvr").and_then(Value::as_str))
        .collect();
    if !builds.is_empty() {
        text.push_str(&format!("Builds: {}\n", builds.join(" ")));
    }
    long::under(sub, text)
}

impl Processor for Bodhi {
    fn services(&self) -> &'static [&'static str] {
        &["bodhi"]
    }

    fn app(&self) -> &'static str {
        "bodhi"
    }

    fn long_form(&self, m: &Ctx<'_>, meta: &Metadata) -> Option<String> {
        long_form(m, meta)
    }

    fn extract(&self, m: &Ctx<'_>, out: &mut Metadata) {
        out.subtitle = subtitle(m);
        out.link = link(m);

        // Packages.
        if UPDATE_TOPICS.iter().any(|t| m.has(t)) {
            let title = titlestring(m);
            for p in u2p(&title) {
                out.package(p);
            }
        } else if m.has("bodhi.buildroot_override.") {
            if let Some(nvr) = override_nvr(m) {
                for p in u2p(&nvr) {
                    out.package(p);
                }
            }
        } else if m.has("bodhi.stack") {
            for p in m.arr("stack.packages") {
                if let Some(name) = p.get("name").and_then(Value::as_str) {
                    out.package(name);
                }
            }
        } else if m.has("bodhi.masher.start") {
            for u in m.strs("updates") {
                for p in u2p(u) {
                    out.package(p);
                }
            }
        }

        // Users: comment author, update submitter, override submitter, @mentions, agent.
        for user in [comment_author(m), update_author(m), override_author(m)]
            .into_iter()
            .flatten()
        {
            out.user(user);
        }
        if let Some(text) = m.str("comment.text") {
            for mention in mentions(text) {
                out.user(mention);
            }
        }
        if let Some(agent) = m.get("agent").filter(|a| !a.is_null()) {
            out.set_agent(py::str(agent));
        }
    }
}

/// The `@name` mentions in a comment (Python's `@\w+`).
fn mentions(text: &str) -> impl Iterator<Item = &str> {
    text.match_indices('@').filter_map(move |(i, _)| {
        let rest = &text[i + 1..];
        let end = rest
            .char_indices()
            .find(|(_, c)| !(c.is_alphanumeric() || *c == '_'))
            .map_or(rest.len(), |(j, _)| j);
        (end > 0).then(|| &rest[..end])
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Envelope;
    use crate::meta::Registry;

    #[test]
    fn update_comment() {
        let env = Envelope::from_json(
            r#"{"topic":"org.fedoraproject.prod.bodhi.update.comment","msg":{"comment":{
            "author":"ralph","karma":-1,"text":"can you fix it @codeblock?",
            "update_title":"fedmsg-1.0-1"},"agent":"ralph"}}"#,
        )
        .unwrap();
        let meta = Registry::default().extract(&env);
        assert_eq!(
            meta.subtitle.as_deref(),
            Some("ralph commented on bodhi update fedmsg-1.0-1 (karma: -1)")
        );
        assert_eq!(
            meta.link.as_deref(),
            Some("https://bodhi.fedoraproject.org/updates/fedmsg-1.0-1")
        );
        assert_eq!(
            meta.usernames.iter().collect::<Vec<_>>(),
            ["codeblock", "ralph"]
        );
        assert_eq!(meta.packages.iter().collect::<Vec<_>>(), ["fedmsg"]);
        assert_eq!(meta.agent.as_deref(), Some("ralph"));
    }

    #[test]
    fn ftp_sync() {
        let env = Envelope::from_json(
            r#"{"topic":"org.fedoraproject.prod.bodhi.updates.fedora.sync","msg":{
            "bytes":"404 MiB","deleted":"412","release":"30m","repo":"updates"}}"#,
        )
        .unwrap();
        let meta = Registry::default().extract(&env);
        assert_eq!(
            meta.subtitle.as_deref(),
            Some("New Fedora 30 updates modular content synced out (404 MiB changed with 412 files deleted)")
        );
        assert_eq!(
            meta.link.as_deref(),
            Some("https://download.fedoraproject.org/pub/fedora/linux/updates/30/Modular/")
        );
    }

    #[test]
    fn mention_parsing() {
        let got: Vec<_> = mentions("hi @a_b, @ and @c!").collect();
        assert_eq!(got, ["a_b", "c"]);
    }
}
