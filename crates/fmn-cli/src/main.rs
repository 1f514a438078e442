//! `fmn`, the admin command. One module per subcommand.

use clap::Parser;

mod bench;
mod bench_burst;
mod bench_coldstart;
mod bench_cost;
mod bench_e2e;
mod bench_sync;
mod dlq;
mod explain;
mod meta;
mod ownership;
mod replay;
mod resources;
mod sync;
mod user;

#[derive(Parser)]
#[command(
    name = "fmn",
    version,
    about = "Fedora notification router: admin command"
)]
enum Command {
    /// Print the physical name of every queue, table and function for FMN_RESOURCE_PREFIX.
    Resources,
    /// Read fedmsg envelopes as JSON Lines on stdin; write their metadata as JSON Lines.
    Meta(meta::MetaArgs),
    /// Manage accounts: create (with default filters), disable, enable, show.
    #[command(subcommand)]
    User(user::UserCommand),
    /// Import who maintains which package, container, module and flatpak.
    #[command(subcommand)]
    Ownership(ownership::OwnershipCommand),
    /// Why a user did or did not get a message (per filter and rule).
    Explain(explain::ExplainArgs),
    /// Print the whole rule catalogue as one JSON array: every rule kind with its arguments,
    /// then every event of the service catalogue.
    Rules,
    /// The dead-letter queues: list and show what waits there, move it back (redrive).
    #[command(subcommand)]
    Dlq(dlq::DlqCommand),
    /// Route the stored messages of a time window again and deliver what was missed; delivery
    /// records keep what went out from going out twice.
    Replay(replay::ReplayArgs),
    /// Copy ownership, groups and accounts from FASJSON and dist-git now (as the hourly sync
    /// function does).
    Sync(sync::SyncArgs),
    /// Synthetic benchmarks of the hot paths (e.g. `fmn bench match --users 100000`).
    Bench(bench::BenchArgs),
}

fn main() -> anyhow::Result<()> {
    match Command::parse() {
        Command::Resources => resources::run(),
        Command::Meta(args) => meta::run(args),
        Command::Bench(args) => bench::run(args),
        Command::User(command) => user::run(command),
        Command::Ownership(command) => ownership::run(command),
        Command::Explain(args) => explain::run(args),
        Command::Dlq(command) => {
            fmn_aws::telemetry::init_for_command();
            dlq::run(command)
        }
        Command::Replay(args) => {
            fmn_aws::telemetry::init_for_command();
            replay::run(args)
        }
        Command::Sync(args) => {
            fmn_aws::telemetry::init_for_command();
            sync::run(args)
        }
        Command::Rules => {
            println!(
                "{}",
                serde_json::to_string_pretty(&fmn_core::rules::full_catalogue())?
            );
            Ok(())
        }
    }
}
