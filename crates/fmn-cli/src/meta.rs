//! `fmn meta`: metadata of fedmsg envelopes read as JSON Lines on stdin.
//!
//! Each input line is a bare envelope or an object holding it under `message`. Each output
//! line is `{"usernames", "packages", "title", "subtitle", "link", "agent", "app"}` (lists
//! sorted), or `{"line": N, "error": "..."}` for a line that is not an envelope. Blank lines
//! are skipped. Only a failure to read stdin or write stdout is an error.

use std::io::{self, BufRead, BufWriter, Write};

use anyhow::Context;
use clap::Args;
use fmn_core::message::Envelope;
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
        let value = match Envelope::from_json_record(&line) {
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
}
