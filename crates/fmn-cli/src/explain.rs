//! `fmn explain USER MSG_ID`: why a user did or did not get a message, per filter and rule.
//! The message comes from the recent-messages table (kept 14 days).

use anyhow::{bail, Context};
use clap::Args;
use fmn_aws::explain::{explain_recent, KnownFacts};
use fmn_aws::ownership_store::OwnershipStore;
use fmn_aws::prefs_store::PrefsStore;
use fmn_aws::recent::RecentMessages;
use fmn_core::matching::Explanation;

#[derive(Debug, Args)]
pub struct ExplainArgs {
    pub user: String,
    pub msg_id: String,
    /// Print the explanation as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: ExplainArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    let explanation = runtime.block_on(async {
        let clients = fmn_aws::AwsClients::from_env().await?;
        let Some(prefs) = PrefsStore::from_clients(&clients).get(&args.user).await? else {
            bail!("no user `{}`", args.user);
        };
        let known = KnownFacts::new(
            OwnershipStore::from_clients(&clients)
                .load_everything()
                .await?,
        );
        let explained = explain_recent(
            &RecentMessages::from_clients(&clients),
            &known,
            &prefs,
            &args.msg_id,
        )
        .await
        .context("explaining")?;
        match explained {
            Some(e) => anyhow::Ok(e),
            None => bail!(
                "message `{}` is not among the recent messages (kept 14 days)",
                args.msg_id
            ),
        }
    })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&explanation)?);
    } else {
        print!("{}", render(&explanation));
    }
    Ok(())
}

/// The explanation as text for a terminal.
pub fn render(e: &Explanation) -> String {
    let mut out = format!(
        "{} and {} ({}):\n{}\n",
        e.user, e.msg_id, e.topic, e.summary
    );
    for p in &e.provenance {
        out.push_str(&format!("  ({p})\n"));
    }
    for f in &e.filters {
        let state = match (f.enabled, f.matched) {
            (false, _) => "disabled",
            (true, true) => "matched",
            (true, false) => "did not match",
        };
        out.push_str(&format!("\nfilter `{}` ({}): {state}\n", f.name, f.id));
        for r in &f.rules {
            let mark = if r.held { "+" } else { "-" };
            out.push_str(&format!("  {mark} {}\n", r.why));
        }
        for d in &f.destinations {
            out.push_str(&format!("  -> {} {}: {}\n", d.kind, d.address, d.outcome));
        }
    }
    out
}
