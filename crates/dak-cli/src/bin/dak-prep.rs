//! dak-prep: make source shards — the demo dataset, and converters for
//! Human3.6M, MPI-INF-3DHP and 3DPW — inspect them, and merge sharded runs.

use std::process::ExitCode;

use clap::Parser;
use dak_cli::app::PrepCommand;

#[derive(Debug, Parser)]
#[command(name = "dak-prep", version, about = "Convert pose datasets into versioned Parquet shards and inspect them")]
struct Cli {
    /// Only warnings and errors; no progress bars.
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: PrepCommand,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    dak_cli::init(cli.quiet, false);
    dak_cli::report(cli.command.run(cli.quiet))
}
