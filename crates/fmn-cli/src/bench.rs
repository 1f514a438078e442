//! `fmn bench`: synthetic benchmarks of the hot paths.

use clap::{Args, Subcommand};

/// `fmn bench <kind>`.
#[derive(Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    kind: BenchKind,
}

#[derive(Subcommand)]
enum BenchKind {
    /// Match the corpus against N synthetic users' preferences.
    Match(MatchArgs),
}

#[derive(Args)]
struct MatchArgs {
    /// Number of synthetic users.
    #[arg(long, default_value_t = 10_000)]
    users: usize,
}

pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    match args.kind {
        BenchKind::Match(a) => anyhow::bail!("not implemented yet ({} users)", a.users),
    }
}
