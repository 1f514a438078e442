//! `fmn sync`: one full refresh of ownership, groups and accounts from FASJSON and dist-git,
//! now (what the hourly sync function does), with the settings of the function
//! (`FMN_FASJSON_URL`, `FMN_PAGURE_URL`, …).

use clap::Args;
use fmn_sources::SourceSettings;
use fmn_sync::SyncHandler;

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Print what the run did as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: SyncArgs) -> anyhow::Result<()> {
    let settings = SourceSettings::from_env()?;
    let runtime = tokio::runtime::Runtime::new()?;
    let outcome = runtime.block_on(async {
        let clients = fmn_aws::AwsClients::from_env().await?;
        anyhow::Ok(SyncHandler::new(&clients, &settings).run().await?)
    })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&outcome)?);
    } else {
        println!(
            "read {} artifacts, {} groups ({} from Pagure only), {} accounts ({} locked), {} aliases in {} ms",
            outcome.artifacts,
            outcome.groups,
            outcome.pagure_only_groups,
            outcome.accounts,
            outcome.locked_accounts,
            outcome.aliases,
            outcome.fetch_ms
        );
        println!(
            "wrote {} items ({} unchanged), {} write units, in {} ms; {}",
            outcome.store.items_written(),
            outcome.store.unchanged,
            outcome.store.write_units,
            outcome.write_ms,
            match outcome.store.version {
                Some(v) => format!("ownership version now {v}"),
                None => "nothing changed".to_string(),
            }
        );
    }
    Ok(())
}
