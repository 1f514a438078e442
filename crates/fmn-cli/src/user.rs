//! `fmn user`: create, disable, enable and show accounts (the old `fmn-create-user`).
//!
//! Addresses given here are taken as confirmed: the administrator vouches for them (as
//! Fedora's account system vouched for a packager's e-mail). Addresses users add themselves go
//! through the web confirmation instead.

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use fmn_aws::prefs_store::{PrefsStore, PrefsStoreError};
use fmn_core::accounts::{DefaultFilter, GroupDefaults};
use fmn_core::defaults::{new_account, NewAccount};
use fmn_core::prefs::{validate_account_name, DestinationKind, UserPrefs};

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an account.
    Create(CreateArgs),
    /// Disable an account: it receives nothing until enabled again.
    Disable { name: String },
    /// Enable a disabled account.
    Enable { name: String },
    /// Print an account's preferences as JSON.
    Show { name: String },
    /// What accounts created for a group's members (on sign-in, joining packager, a first
    /// Badges login) start with: print every group's setting as JSON, or set one group's.
    Defaults(DefaultsArgs),
}

#[derive(Debug, Args)]
pub struct DefaultsArgs {
    /// The FAS group to set (none: print every group's setting).
    pub group: Option<String>,
    /// The default filters switched on for the group's members: `packages`, `about-me`
    /// (comma-separated or repeated; none: every filter off, which removes the setting).
    #[arg(long, value_delimiter = ',', requires = "group")]
    pub on: Vec<String>,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The account name (FAS username).
    pub name: String,
    /// An e-mail address to deliver to (repeatable).
    #[arg(long)]
    pub email: Vec<String>,
    /// An IRC nick to deliver to (repeatable).
    #[arg(long)]
    pub irc: Vec<String>,
    /// Add the default filters (events on my packages, events referring to me) feeding every
    /// destination given.
    #[arg(long)]
    pub create_defaults: bool,
    /// An admin-managed bot account (a mailing list), not a person.
    #[arg(long)]
    pub bot: bool,
}

/// The preferences `fmn user create` stores.
pub fn new_user(args: &CreateArgs) -> anyhow::Result<UserPrefs> {
    if args.create_defaults && args.email.is_empty() && args.irc.is_empty() {
        bail!("--create-defaults needs at least one --email or --irc to deliver to");
    }
    let destinations: Vec<(DestinationKind, String)> = args
        .email
        .iter()
        .map(|a| (DestinationKind::Email, a.clone()))
        .chain(args.irc.iter().map(|a| (DestinationKind::Irc, a.clone())))
        .collect();
    let options = NewAccount {
        bot: args.bot,
        destinations,
        confirmed: true,
        with_defaults: args.create_defaults,
    };
    new_account(&args.name, &options).context("invalid account")
}

/// `--on` read as the default filters it names.
fn group_defaults(on: &[String]) -> anyhow::Result<GroupDefaults> {
    let on = on
        .iter()
        .map(|f| {
            DefaultFilter::parse(f.trim())
                .with_context(|| format!("`{f}` is not a default filter (packages, about-me)"))
        })
        .collect::<anyhow::Result<_>>()?;
    Ok(GroupDefaults { on })
}

pub fn run(command: UserCommand) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let clients = fmn_aws::AwsClients::from_env().await?;
        let store = PrefsStore::from_clients(&clients);
        match command {
            UserCommand::Create(args) => {
                let prefs = new_user(&args)?;
                match store.create(&prefs).await {
                    Ok(stored) => {
                        println!(
                            "created {} ({} destinations, {} filters)",
                            stored.name,
                            stored.destinations.len(),
                            stored.filters.len()
                        );
                        Ok(())
                    }
                    Err(PrefsStoreError::Exists(name)) => bail!("user `{name}` already exists"),
                    Err(e) => Err(e).context(format!("storing user in {}", store.table())),
                }
            }
            UserCommand::Disable { name } => set_enabled(&store, &name, false).await,
            UserCommand::Enable { name } => set_enabled(&store, &name, true).await,
            UserCommand::Defaults(args) => {
                let defaults = match &args.group {
                    None => store.account_defaults().await?,
                    Some(group) => {
                        validate_account_name("group", group)?;
                        let on = group_defaults(&args.on)?;
                        store.set_group_defaults(group, on).await?
                    }
                };
                println!("{}", serde_json::to_string_pretty(&defaults)?);
                Ok(())
            }
            UserCommand::Show { name } => match store.get(&name).await? {
                Some(prefs) => {
                    println!("{}", serde_json::to_string_pretty(&prefs)?);
                    Ok(())
                }
                None => bail!("no user `{name}`"),
            },
        }
    })
}

async fn set_enabled(store: &PrefsStore, name: &str, enabled: bool) -> anyhow::Result<()> {
    store
        .update(name, |p| {
            p.enabled = enabled;
            Ok(())
        })
        .await
        .map_err(|e| match e {
            PrefsStoreError::NotFound(n) => anyhow::anyhow!("no user `{n}`"),
            other => anyhow::Error::new(other),
        })?;
    println!("{name} {}", if enabled { "enabled" } else { "disabled" });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(email: &[&str], defaults: bool) -> CreateArgs {
        CreateArgs {
            name: "alice".into(),
            email: email.iter().map(|s| s.to_string()).collect(),
            irc: vec!["alice_".into()],
            create_defaults: defaults,
            bot: false,
        }
    }

    #[test]
    fn defaults_feed_every_destination() {
        let p = new_user(&args(&["alice@example.org"], true)).unwrap();
        assert_eq!(p.destinations.len(), 2);
        assert_eq!(p.filters.len(), 2);
        assert_eq!(p.filters[0].destinations, ["email-1", "irc-1"]);
        assert!(p.destinations.iter().all(|d| d.confirmed));
    }

    #[test]
    fn default_filters_are_named() {
        let on = group_defaults(&["packages".into(), " about-me".into()]).unwrap();
        assert_eq!(on.on.len(), 2);
        assert!(group_defaults(&["all".into()]).is_err());
        assert!(group_defaults(&[]).unwrap().on.is_empty());
    }

    #[test]
    fn bad_addresses_are_refused() {
        let e = new_user(&args(&["not an address"], false)).unwrap_err();
        assert!(
            format!("{e:#}").contains("destinations[0].address"),
            "{e:#}"
        );
    }
}
