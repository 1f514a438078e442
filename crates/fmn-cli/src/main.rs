//! `fmn`, the admin command. One module per subcommand.

use clap::Parser;

mod bench;
mod meta;
mod resources;

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
    /// Synthetic benchmarks of the hot paths (e.g. `fmn bench match --users 100000`).
    Bench(bench::BenchArgs),
}

fn main() -> anyhow::Result<()> {
    match Command::parse() {
        Command::Resources => resources::run(),
        Command::Meta(args) => meta::run(args),
        Command::Bench(args) => bench::run(args),
    }
}
