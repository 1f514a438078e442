//! `fmn ownership import`: who maintains what, from dist-git's `pagure_owner_alias.json` and a
//! group-members file, into the ownership table (replacing what was there).

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use fmn_aws::ownership_store::OwnershipStore;
use fmn_core::ownership::{parse_group_members, parse_owner_alias};

#[derive(Debug, Subcommand)]
pub enum OwnershipCommand {
    /// Import ownership (replaces the stored artifacts, and the groups when --groups is given).
    Import(ImportArgs),
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// `pagure_owner_alias.json` as published at
    /// https://src.fedoraproject.org/extras/pagure_owner_alias.json
    pub file: PathBuf,
    /// A group-members file: {"group": ["member", ...]}.
    #[arg(long)]
    pub groups: Option<PathBuf>,
}

pub fn run(command: OwnershipCommand) -> anyhow::Result<()> {
    let OwnershipCommand::Import(args) = command;
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("reading {}", args.file.display()))?;
    let alias =
        parse_owner_alias(&text).with_context(|| format!("parsing {}", args.file.display()))?;
    let groups = match &args.groups {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            Some(
                parse_group_members(&text)
                    .with_context(|| format!("parsing {}", path.display()))?,
            )
        }
        None => None,
    };
    if !alias.skipped_namespaces.is_empty() {
        eprintln!(
            "skipping namespaces that hold no tracked artifacts: {}",
            alias.skipped_namespaces.join(", ")
        );
    }
    eprintln!(
        "importing {} artifacts{}",
        alias.artifacts.len(),
        groups
            .as_ref()
            .map(|g| format!(" and {} groups", g.len()))
            .unwrap_or_default()
    );
    let runtime = tokio::runtime::Runtime::new()?;
    let report = runtime.block_on(async {
        let clients = fmn_aws::AwsClients::from_env().await?;
        let store = OwnershipStore::from_clients(&clients);
        anyhow::Ok(
            store
                .import(Some(&alias.artifacts), groups.as_ref(), |done, total| {
                    eprintln!("progress: {done}/{total} writes");
                })
                .await?,
        )
    })?;
    println!(
        "imported: {} artifacts written, {} removed; {} groups written, {} removed; ownership version {}",
        report.artifacts_written,
        report.artifacts_removed,
        report.groups_written,
        report.groups_removed,
        report.version
    );
    Ok(())
}
