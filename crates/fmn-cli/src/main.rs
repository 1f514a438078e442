//! `fmn`, the admin command. One module per subcommand.

use clap::Parser;

mod bench;
mod bench_e2e;
mod explain;
mod meta;
mod ownership;
mod resources;
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
    /// Print the rule catalogue (every rule kind with its arguments) as JSON.
    Rules,
    /// Synthetic benchmarks of the hot paths (e.g. `fmn bench match --users 100000`).
    Bench(bench::BenchArgs),
}

// `fmn bench e2e …`, parsed on its own until `bench::BenchKind` (being reworked in
// `bench.rs`) gains an `E2e(bench_e2e::E2eArgs)` kind.
#[derive(Parser)]
#[command(
    name = "e2e",
    bin_name = "fmn bench e2e",
    about = "Bus-to-delivery latency of the whole local system at a steady rate (needs the emulators)"
)]
struct BenchE2e {
    #[command(flatten)]
    args: bench_e2e::E2eArgs,
}

fn main() -> anyhow::Result<()> {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if argv.get(1).is_some_and(|a| a == "bench") && argv.get(2).is_some_and(|a| a == "e2e") {
        return bench_e2e::run(BenchE2e::parse_from(&argv[2..]).args);
    }
    match Command::parse() {
        Command::Resources => resources::run(),
        Command::Meta(args) => meta::run(args),
        Command::Bench(args) => bench::run(args),
        Command::User(command) => user::run(command),
        Command::Ownership(command) => ownership::run(command),
        Command::Explain(args) => explain::run(args),
        Command::Rules => {
            println!(
                "{}",
                serde_json::to_string_pretty(&fmn_core::rules::catalog())?
            );
            Ok(())
        }
    }
}
