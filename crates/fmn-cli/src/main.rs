//! `fmn`, the admin command. One module per subcommand.

use clap::Parser;

mod resources;

#[derive(Parser)]
#[command(name = "fmn", version, about = "Fedora notification router: admin command")]
enum Command {
    /// Print the physical name of every queue, table and function for FMN_RESOURCE_PREFIX.
    Resources,
}

fn main() -> anyhow::Result<()> {
    match Command::parse() {
        Command::Resources => resources::run(),
    }
}
