//! `fmn meta`: metadata of bus messages read as JSON Lines on stdin.
//!
//! Each input line is a fedmsg envelope (bare, or held under `message`) or a fedora-messaging
//! message in the form `fedora-messaging` dumps and datagrepper serves (`id`, `topic`,
//! `headers`, `body`). Each output line, in input order, is for a fedmsg envelope
//! `{"usernames", "packages", "title", "subtitle", "link", "agent", "app"}` (lists sorted); for
//! a fedora-messaging message the schema's properties under their Python names, `{"app_name",
//! "agent_name", "usernames", "groups", "packages", "containers", "modules", "flatpaks",
//! "severity" (10..40), "summary", "__str__", "url"}`; or `{"line": N, "error": "..."}` for a
//! line that is neither. Blank lines are skipped. Only a failure to read stdin or write stdout
//! is an error.

use std::io::{self, BufRead, BufWriter, Write};

use anyhow::Context;
use clap::Args;
use fmn_core::message::{Envelope, EnvelopeError};
use fmn_core::meta::{Aliases, Metadata, Registry};
use serde_json::{json, Value};

/// Options of `fmn meta`.
#[derive(Debug, Args)]
pub struct MetaArgs {
    /// Resolve a nickname or e-mail to an account name, as ALIAS=ACCOUNT (repeatable).
    #[arg(long = "alias", value_name = "ALIAS=ACCOUNT", value_parser = parse_alias)]
    aliases: Vec<(String, String)>,
}

fn parse_alias(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((a, b)) if !a.is_empty() && !b.is_empty() => Ok((a.to_owned(), b.to_owned())),
        _ => Err(format!("expected ALIAS=ACCOUNT, got {s:?}")),
    }
}

/// The output object for one message.
pub fn render(meta: &Metadata) -> Value {
    json!({
        "usernames": meta.usernames,
        "packages": meta.packages,
        "title": meta.title,
        "subtitle": meta.subtitle,
        "link": meta.link,
        "agent": meta.agent,
        "app": meta.app,
    })
}

/// The output object for a fedora-messaging message: the schema class's properties.
pub fn render_fedora_messaging(meta: &Metadata) -> Value {
    json!({
        "app_name": (!meta.app.is_empty()).then_some(&meta.app),
        "agent_name": meta.agent,
        "usernames": meta.usernames,
        "groups": meta.groups,
        "packages": meta.packages,
        "containers": meta.containers,
        "modules": meta.modules,
        "flatpaks": meta.flatpaks,
        "severity": meta.severity.level(),
        "summary": meta.subtitle,
        "__str__": meta.long_text,
        "url": meta.link,
    })
}

/// Processes every line of `input` into `output`.
pub fn process(
    registry: &Registry,
    input: impl BufRead,
    mut output: impl Write,
) -> anyhow::Result<()> {
    for (index, line) in input.lines().enumerate() {
        let line = line.context("reading stdin")?;
        if line.trim().is_empty() {
            continue;
        }
        let parsed = serde_json::from_str::<Value>(&line).map_err(EnvelopeError::from);
        let fedora_messaging = parsed
            .as_ref()
            .is_ok_and(Envelope::is_fedora_messaging_form);
        let value = match parsed.and_then(Envelope::from_record_value) {
            Ok(envelope) if fedora_messaging => {
                render_fedora_messaging(&registry.extract(&envelope))
            }
            Ok(envelope) => render(&registry.extract(&envelope)),
            Err(error) => json!({"line": index + 1, "error": error.to_string()}),
        };
        serde_json::to_writer(&mut output, &value).context("writing stdout")?;
        output.write_all(b"\n").context("writing stdout")?;
    }
    output.flush().context("writing stdout")?;
    Ok(())
}

pub fn run(args: MetaArgs) -> anyhow::Result<()> {
    let aliases: Aliases = args.aliases.into_iter().collect();
    let registry = Registry::default().with_aliases(aliases);
    let stdin = io::stdin().lock();
    let stdout = BufWriter::new(io::stdout().lock());
    process(&registry, stdin, stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_bad_and_wrapped_lines() {
        let input = concat!(
            r#"{"topic":"org.fedoraproject.prod.fas.user.create","msg":{"agent":"ralph","user":"bob"}}"#,
            "\n\nnot json\n",
            r#"{"id":"x","message":{"topic":"org.fedoraproject.prod.git.pkgdb2branch.start","msg":{"agent":"threebean"}}}"#,
            "\n"
        );
        let registry =
            Registry::default().with_aliases([("threebean", "ralph")].into_iter().collect());
        let mut out = Vec::new();
        process(&registry, input.as_bytes(), &mut out).unwrap();
        let lines: Vec<Value> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0]["usernames"], json!(["bob", "ralph"]));
        assert_eq!(lines[0]["app"], "fas");
        assert_eq!(lines[1]["line"], 3);
        assert!(lines[1]["error"]
            .as_str()
            .unwrap()
            .contains("not a fedmsg envelope"));
        assert_eq!(lines[2]["title"], "git.pkgdb2branch.start");
        assert_eq!(parse_alias("a=b").unwrap(), ("a".into(), "b".into()));
        assert!(parse_alias("ab").is_err());
    }

    #[test]
    fn fedora_messaging_lines_get_the_schema_properties() {
        let input = concat!(
            r#"{"id":"a1","topic":"org.fedoraproject.prod.fedocal.calendar.new","#,
            r#""headers":{"fedora_messaging_schema":"fedocal.calendar.new","fedora_messaging_severity":30,"#,
            r#""fedora_messaging_user_bob":true},"body":{"agent":"bob","calendar":{"calendar_name":"infra"}}}"#,
            "\n",
            r#"{"id":"a2","topic":"org.fedoraproject.prod.mystery","headers":{"fedora_messaging_schema":"x.y"},"body":{}}"#,
            "\n",
            r#"{"id":"","topic":"org.fedoraproject.prod.x","body":{}}"#,
            "\n"
        );
        let mut out = Vec::new();
        process(&Registry::default(), input.as_bytes(), &mut out).unwrap();
        let lines: Vec<Value> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        // The key order is pinned on every corpus line by tests/meta.rs.
        assert_eq!(lines[0].as_object().unwrap().len(), 12);
        assert_eq!(lines[0]["app_name"], "fedocal");
        assert_eq!(lines[0]["agent_name"], Value::Null);
        assert_eq!(lines[0]["usernames"], json!(["bob"]));
        assert_eq!(lines[0]["severity"], 30);
        assert_eq!(lines[0]["summary"], "bob has created a new calendar infra");
        assert_eq!(lines[0]["__str__"], lines[0]["summary"]);
        // An unknown schema: named in the summary, with the base class's dump.
        assert_eq!(lines[1]["app_name"], "mystery");
        assert_eq!(lines[1]["summary"], "x.y: org.fedoraproject.prod.mystery");
        assert!(lines[1]["__str__"]
            .as_str()
            .unwrap()
            .starts_with("Id: a2\nTopic: "));
        assert_eq!(lines[2]["line"], 3);
        assert!(lines[2]["error"].as_str().unwrap().contains("message id"));
    }
}
